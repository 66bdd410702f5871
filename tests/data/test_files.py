"""data.files: the one audio-extension table, stem table and file listing, and the one dataset
base that every labelled dataset subclasses (issue 12 item 2)."""

from __future__ import annotations

import numpy as np
import pytest

from bootsep.data import files
from bootsep.data.audio import save_audio
from bootsep.data.files import (
    AUDIO_EXTENSIONS,
    DERIVED,
    find_audio,
    find_audio_files,
    is_audio_file,
    list_audio_files,
    subfolders,
)
from bootsep.data.tracks import TrackDataset, item_index
from bootsep.utils.errors import UserError


def _touch_audio(path):
    save_audio(path, np.zeros(80, np.float32), 8000)


def test_one_table_everywhere():
    from bootsep.bootstrap import segments
    from bootsep.data import musdb, user

    assert segments.AUDIO_EXTENSIONS is AUDIO_EXTENSIONS is user.AUDIO_EXTENSIONS
    assert musdb.TARGETS["accompaniment"] is DERIVED["accompaniment"]
    assert musdb.MUSDB_STEMS is files.MUSDB_STEMS is DERIVED["mixture"]
    assert musdb.PREPARED_STEMS == ("bass", "drums", "other", "vocals", "accompaniment",
                                    "mixture")


def test_every_labelled_dataset_is_a_track_dataset():
    from bootsep.data.bootstrapped import BootstrappedDataset
    from bootsep.data.folder import StemFolderDataset
    from bootsep.data.musdb import MUSDBDataset
    from bootsep.data.wham import WHAMDataset

    for cls in (StemFolderDataset, BootstrappedDataset, MUSDBDataset, WHAMDataset):
        assert issubclass(cls, TrackDataset), cls
        # the item logic lives in the base only
        for name in ("__getitem__", "__len__", "_render", "_plan", "item_names"):
            assert name not in vars(cls), (cls, name)


def test_listing_rules(tmp_path):
    for rel in ("b.wav", "a.FLAC", "sub/c.ogg", ".hidden.wav", ".dir/d.wav", "notes.txt",
                "sub/.e.wav"):
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        _touch_audio(p) if rel.endswith(".wav") else p.write_text("x")
    (tmp_path / "folder.wav").mkdir()  # a folder with an audio name is not a file
    assert [p.relative_to(tmp_path).as_posix() for p in list_audio_files(tmp_path)] == [
        "a.FLAC", "b.wav", "sub/c.ogg"]
    assert [p.name for p in list_audio_files(tmp_path, recursive=False)] == ["a.FLAC", "b.wav"]
    assert [p.name for p in list_audio_files(tmp_path, ("wav",))] == ["b.wav"]
    assert is_audio_file(tmp_path / "b.wav") and not is_audio_file(tmp_path / ".hidden.wav")
    assert not is_audio_file(tmp_path / "folder.wav")
    assert [d.name for d in subfolders(tmp_path)] == ["folder.wav", "sub"]
    assert find_audio_files(tmp_path / "b.wav") == [tmp_path / "b.wav"]
    with pytest.raises(UserError, match=r"^no audio files \(.wav, .flac.*\) in .* \(not searched"):
        find_audio_files(tmp_path / "folder.wav", recursive=False)


def test_find_audio_prefers_the_table_order(tmp_path):
    assert find_audio(tmp_path, "vocals") is None
    _touch_audio(tmp_path / "vocals.flac")
    assert find_audio(tmp_path, "vocals") == tmp_path / "vocals.flac"
    _touch_audio(tmp_path / "vocals.wav")
    assert find_audio(tmp_path, "vocals") == tmp_path / "vocals.wav"  # .wav comes first
    assert AUDIO_EXTENSIONS[0] == ".wav"


def test_item_index():
    assert item_index(2, 3) == 2 and item_index(-1, 3) == 2 and item_index(np.int64(0), 3) == 0
    for bad in (3, -4):
        with pytest.raises(IndexError, match="out of range for 3 items"):
            item_index(bad, 3)
