"""User data: mixtures without references (MixtureFolderDataset), and user folders WITH
references, which StemFolderDataset reads with split='' (checked here so the docs stay true)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from bootsep.data.folder import StemFolderDataset
from bootsep.data.user import MixtureFolderDataset, find_audio_files
from bootsep.utils.errors import UserError


def tone(f: float, sr: int, seconds: float, channels: int = 1) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    x = 0.3 * np.sin(2 * np.pi * f * t)
    return np.stack([x * (c + 1) / channels for c in range(channels)], 1)


@pytest.fixture
def user_folder(tmp_path) -> Path:
    root = tmp_path / "recordings"
    (root / "album").mkdir(parents=True)
    (root / ".hidden").mkdir()
    sf.write(root / "b_song.wav", tone(440, 16000, 0.5, channels=2), 16000, subtype="FLOAT")
    sf.write(root / "album" / "a_song.flac", tone(220, 44100, 0.25), 44100)
    sf.write(root / ".hidden" / "skip.wav", tone(220, 16000, 0.1), 16000)
    sf.write(root / ".skip.wav", tone(220, 16000, 0.1), 16000)
    (root / "notes.txt").write_text("not audio")
    return root


def test_mixture_folder_items(user_folder):
    ds = MixtureFolderDataset(user_folder, sample_rate=16000)
    assert ds.item_names() == ["album/a_song", "b_song"] and len(ds) == 2
    assert ds.sources == ()
    a, b = ds[0], ds[1]
    assert a["mix"].shape == (1, 4000) and a["sources"].shape == (0, 1, 4000)  # 44.1k -> 16k
    assert b["mix"].shape == (2, 8000) and b["sources"].shape == (0, 2, 8000)
    assert a["paths"]["mixture_path"] == str(user_folder / "album" / "a_song.flac")
    assert a["sample_rate"] == 16000 and b["name"] == "b_song" and ds[-1]["index"] == 1
    # the stereo file keeps its channels (right = 2 x left), or is averaged with mono=True
    assert np.allclose(b["mix"][1].numpy(), 2 * b["mix"][0].numpy(), atol=1e-6)
    m = MixtureFolderDataset(user_folder, mono=True)[1]["mix"]
    assert m.shape == (1, 8000) and np.allclose(m[0].numpy(), 1.5 * b["mix"][0].numpy(),
                                                atol=1e-6)
    native = MixtureFolderDataset(user_folder, sample_rate=None)[0]
    assert native["sample_rate"] == 44100 and native["mix"].shape == (1, 11025)
    flat = MixtureFolderDataset(user_folder, recursive=False)
    assert flat.item_names() == ["b_song"]


def test_single_file_and_errors(user_folder, tmp_path):
    one = MixtureFolderDataset(user_folder / "b_song.wav")
    assert one.item_names() == ["b_song"] and one[0]["mix"].shape == (2, 8000)
    with pytest.raises(UserError, match="input not found"):
        MixtureFolderDataset(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no audio files"):
        MixtureFolderDataset(tmp_path / "empty")
    with pytest.raises(UserError, match="unsupported audio file type '.txt'"):
        find_audio_files(user_folder / "notes.txt")
    bad = user_folder / "broken.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    with pytest.raises(UserError, match=r"cannot read audio file .*broken.wav"):
        MixtureFolderDataset(user_folder)


def test_user_folders_with_references_are_stem_folder_datasets(tmp_path):
    """<root>/<mix_folder>/*.wav + one folder per source (any names), and per-song folders."""
    root = tmp_path / "mine"
    for name, f in (("a", 300.0), ("b", 500.0)):
        g = tone(f, 16000, 0.5)[:, 0]
        v = tone(2.5 * f, 16000, 0.5)[:, 0]
        for folder, x in (("mix", g + v), ("guitar", g), ("voice", v)):
            (root / folder).mkdir(parents=True, exist_ok=True)
            sf.write(root / folder / f"{name}.wav", x, 16000, subtype="FLOAT")
            (root / "songs" / name).mkdir(parents=True, exist_ok=True)
            sf.write(root / "songs" / name / f"{folder}.wav", x, 16000, subtype="FLOAT")
    stems = StemFolderDataset(root, "", sources=["guitar", "voice"], mix_name="mix",
                              layout="stem")
    songs = StemFolderDataset(root / "songs", "", sources=["guitar", "voice"], mix_name="mix",
                              layout="song")
    assert stems.item_names() == songs.item_names() == ["a", "b"]
    for ds in (stems, songs):
        item = ds[1]
        assert item["sources"].shape == (2, 1, 8000)
        assert (item["mix"] - item["sources"].sum(0)).abs().max() < 1e-6
