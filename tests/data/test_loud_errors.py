"""Silent wrong numbers become loud (issue 11 item 8, item 7's mixed channel counts): stems of
different lengths, a dataset mixing mono and stereo songs, an all-silent training set."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from bootsep.data.audio import check_same_length, save_audio
from bootsep.data.folder import StemFolderDataset
from bootsep.data.musdb import MUSDB_STEMS, MusdbTrack, stem_info
from bootsep.utils.errors import UserError

from conftest import run_main, tiny_config

SR = 16000


def _song(root, name, n=SR, channels=1, split="train", truncate=None, rate=SR):
    """A song of three equal stems; ``truncate`` = length of a cut-short vocals.wav."""
    t = np.arange(n) / rate
    tone = (0.1 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    x = tone if channels == 1 else np.stack([tone] * channels)
    for stem in ("mixture", "accompaniment", "vocals"):
        y = x[..., :truncate] if stem == "vocals" and truncate is not None else x
        save_audio(root / split / name / f"{stem}.wav", y, rate)


def test_check_same_length_rule():
    # equal frames at one rate: fine; one frame short: refused, naming both files and lengths
    check_same_length({"a.wav": (16000, 16000, 1), "b.wav": (16000, 16000, 2)}, "song 'x'")
    with pytest.raises(UserError, match=r"song 'x' have different lengths: b.wav has 15999 "
                                        r"samples at 16000 Hz .* but a.wav has 16000"):
        check_same_length({"a.wav": (16000, 16000, 1), "b.wav": (16000, 15999, 1)}, "song 'x'")
    # different rates: equal within one sample of the lower rate
    check_same_length({"a.wav": (44100, 44101, 1), "b.wav": (16000, 16000, 1)}, "s")
    with pytest.raises(UserError, match="different lengths"):
        check_same_length({"a.wav": (44100, 44100 + 3, 1), "b.wav": (16000, 16000, 1)}, "s")


def test_truncated_stem_is_an_error_not_a_crop(tmp_path):
    _song(tmp_path, "a")
    _song(tmp_path, "b", truncate=SR - 100)
    with pytest.raises(UserError) as err:
        StemFolderDataset(tmp_path, "train")
    msg = str(err.value)
    assert "song 'b'" in msg and "different lengths" in msg
    assert str(tmp_path / "train" / "b" / "vocals.wav") in msg and "15900 samples" in msg
    assert "16000" in msg
    # stems at other rates of the same duration are fine (resampled)
    _song(tmp_path / "ok", "c")
    _song(tmp_path / "ok", "d", n=44100, rate=44100)
    ok = StemFolderDataset(tmp_path / "ok", "train")
    assert [ok[i]["mix"].shape[-1] / ok.sample_rate for i in range(len(ok))] == [1.0, 1.0]


def test_dataset_mixing_mono_and_stereo_songs_names_the_files(tmp_path):
    _song(tmp_path, "a", channels=2)
    _song(tmp_path, "b", channels=1)
    with pytest.raises(UserError) as err:
        StemFolderDataset(tmp_path, "train", mono=False)
    msg = str(err.value)
    assert "mixes songs with 1 and 2 channels" in msg
    assert str(tmp_path / "train" / "b") in msg and str(tmp_path / "train" / "a") in msg
    assert "mono = True" in msg
    assert len(StemFolderDataset(tmp_path, "train", mono=True)) == 2  # the fix works


def test_musdb_hq_truncated_stem(tmp_path):
    files = {}
    for s in MUSDB_STEMS:
        files[s] = str(tmp_path / f"{s}.wav")
        n = 4410 if s != "bass" else 4000
        sf.write(files[s], np.zeros((n, 2), np.float32), 44100)
    track = MusdbTrack("Alpha - One", "train", str(tmp_path), True, files=files)
    with pytest.raises(UserError, match=r"MUSDB18-HQ track 'Alpha - One' have different "
                                        r"lengths: .*bass.wav has 4000 samples"):
        stem_info(track)


def test_track_dataset_refuses_mixed_channel_counts():
    from bootsep.data.tracks import TrackDataset

    ds = TrackDataset()
    with pytest.raises(UserError, match=r"mixes tracks with 1 and 2 channels \(e.g. 'm' and "
                                        r"'s'\).*mono=True"):
        ds._setup(names=["s", "m"], lengths=[100, 100], channels=[2, 1], sources=["a", "b"],
                  sample_rate=SR, excerpt_seconds=None, num_items=None, seed=0, remix=None,
                  silence_db=-60.0, max_retries=5, min_seconds=None, where="ROOT")


def _silent_root(root):
    for split, names in (("train", ["a", "b"]), ("valid", ["v"]), ("test", ["t"])):
        for name in names:
            for stem in ("mixture", "accompaniment", "vocals"):
                save_audio(root / split / name / f"{stem}.wav", np.zeros(SR, np.float32), SR)
    return root


def test_check_audible_unit(tmp_path):
    from bootsep.config.contract import check_audible

    root = _silent_root(tmp_path / "silent")
    ds = StemFolderDataset(root, "train", excerpt_seconds=0.25, num_items=20, max_retries=2)
    with pytest.raises(UserError, match=r"the train dataset StemFolderDataset \(.*silent\) is "
                                        r"silent: its first 8 items all have a mixture below "
                                        r"-60 dBFS \(after 2 redraws each\)"):
        check_audible(ds)
    _song(tmp_path / "loud", "a")
    check_audible(StemFolderDataset(tmp_path / "loud", "train", excerpt_seconds=0.25,
                                    num_items=4))


def test_cli_train_on_silence_is_one_error_line(tmp_path):
    root = _silent_root(tmp_path / "silent")
    cfg = tmp_path / "c.gin"
    cfg.write_text(tiny_config(root))
    r = run_main(["train", "-c", cfg, "-o", tmp_path / "run"])
    assert r.returncode == 2, r.stderr[-2000:]
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: the train dataset StemFolderDataset")
    assert "is silent" in lines[0]
    assert not (tmp_path / "run" / "checkpoints" / "latest.pth").exists()


def test_cli_truncated_stem_is_one_error_line(tmp_path, tiny_demo):
    import shutil

    root = tmp_path / "demo"
    shutil.copytree(tiny_demo, root)
    victim = root / "test" / sorted(p.name for p in (root / "test").iterdir())[0] / "vocals.wav"
    x, sr = sf.read(victim, dtype="float32", always_2d=True)
    sf.write(victim, x[: len(x) - 441], sr)
    cfg = tmp_path / "c.gin"
    cfg.write_text(tiny_config(root, **{"evaluate.separator": "@MixAsEstimate()",
                                        "MixAsEstimate.stft": "@STFT()"}))
    r = run_main(["evaluate", "-c", cfg, "-o", tmp_path / "run"])
    assert r.returncode == 2, r.stderr[-2000:]
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "different lengths" in lines[0] and str(victim) in lines[0]


def test_separate_segment_mode_refuses_a_truncated_reference(tmp_path):
    from bootsep.bootstrap.segments import find_recordings, plan_segments

    _song(tmp_path, "a")
    _song(tmp_path, "b", truncate=SR // 2)
    recs = find_recordings(tmp_path / "train")
    with pytest.raises(UserError, match=r"recording 'b' .* different lengths: .*vocals.wav has "
                                        r"8000 samples"):
        plan_segments(recs, SR, 0.5, 0.25)
