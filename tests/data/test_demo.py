import json

import numpy as np
import pytest
import soundfile as sf

from bootsep.data.demo import FILES, generate_demo_dataset, synthesize_song


@pytest.fixture(scope="module")
def small_demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    generate_demo_dataset(root, n_train=2, n_valid=1, n_test=1, duration=2.0, seed=7,
                          progress=False)
    return root


def _files(root):
    return sorted(p for p in root.rglob("*") if p.is_file())


def _mtimes(root):
    return {p: p.stat().st_mtime_ns for p in _files(root)}


def test_layout_sums_and_levels(small_demo):
    songs = sorted(p.parent.relative_to(small_demo).as_posix()
                   for p in small_demo.glob("*/*/mixture.wav"))
    assert songs == ["test/song000", "train/song000", "train/song001", "valid/song000"]
    assert "seed=7" in (small_demo / "README.txt").read_text()
    for song in songs:
        folder = small_demo / song
        audio = {}
        for name in FILES:
            x, sr = sf.read(folder / f"{name}.wav", dtype="float32")
            assert sr == 16000 and x.shape == (32000,)
            assert sf.info(folder / f"{name}.wav").subtype == "PCM_16"
            assert np.abs(x).max() <= 0.99
            audio[name] = x
        np.testing.assert_array_equal(audio["mixture"], audio["vocals"] + audio["accompaniment"])
        np.testing.assert_array_equal(audio["accompaniment"],
                                      audio["drums"] + audio["bass"] + audio["other"])
        for name in FILES:  # every stem is really there
            assert np.sqrt(np.mean(audio[name] ** 2)) > 1e-3
        meta = json.loads((folder / "meta.json").read_text())
        assert -3.5 <= meta["vocals_to_accompaniment_db"] <= 3.5


def test_deterministic_and_independent_of_song_count(small_demo, tmp_path):
    other = generate_demo_dataset(tmp_path / "one", n_train=1, n_valid=0, n_test=0,
                                  duration=2.0, seed=7, progress=False)
    for name in FILES:
        a = (small_demo / "train/song000" / f"{name}.wav").read_bytes()
        assert (other / "train/song000" / f"{name}.wav").read_bytes() == a
    assert not (other / "train/song001").exists() and not (other / "test").exists()
    x = synthesize_song(seed=7, split="test", index=0, duration=1.0)
    y = synthesize_song(seed=7, split="test", index=0, duration=1.0)
    z = synthesize_song(seed=8, split="test", index=0, duration=1.0)
    w = synthesize_song(seed=7, split="train", index=0, duration=1.0)
    for name in FILES:
        np.testing.assert_array_equal(x.audio[name], y.audio[name])
    assert not np.array_equal(x.audio["mixture"], z.audio["mixture"])
    assert not np.array_equal(x.audio["mixture"], w.audio["mixture"])


def test_resumable_writes_nothing_new(small_demo):
    before = _mtimes(small_demo)
    generate_demo_dataset(small_demo, n_train=2, n_valid=1, n_test=1, duration=2.0, seed=7,
                          progress=False)
    assert _mtimes(small_demo) == before
    victim = small_demo / "train/song001/vocals.wav"
    original = victim.read_bytes()
    victim.unlink()
    generate_demo_dataset(small_demo, n_train=2, n_valid=1, n_test=1, duration=2.0, seed=7,
                          progress=False)
    after = _mtimes(small_demo)
    changed = {p for p in after if after[p] != before.get(p)}
    assert changed and all(p.parent.name == "song001" and p.parent.parent.name == "train"
                           for p in changed)
    assert victim.read_bytes() == original
    assert not list(small_demo.rglob(".*.wav"))  # no temp files left behind


@pytest.fixture(scope="module")
def long_song():
    return synthesize_song(seed=0, split="test", index=3, duration=12.0)


def test_accompaniment_repeats_and_vocals_do_not(long_song):
    a, meta = long_song.audio, long_song.meta
    n = len(a["mixture"])
    p = meta["drum_period_samples"]
    np.testing.assert_array_equal(a["drums"][p:], a["drums"][:-p])
    c = meta["chord_period_bars"] * meta["bar_samples"]
    assert c < n
    for stem in ("bass", "other"):
        np.testing.assert_array_equal(a[stem][c:], a[stem][:-c])

    def corr(x, lag):
        u, v = x[lag:].astype(np.float64), x[:-lag].astype(np.float64)
        return float(u @ v / np.sqrt((u @ u) * (v @ v)))

    assert meta["accompaniment_period_samples"] == c
    np.testing.assert_array_equal(a["accompaniment"][c:], a["accompaniment"][:-c])
    assert corr(a["drums"], p) > 0.999
    assert abs(corr(a["vocals"], p)) < 0.3 and abs(corr(a["vocals"], c)) < 0.3


def test_vocal_pitch_truth_and_vibrato_by_independent_estimate(long_song):
    import librosa

    v, meta = long_song.audio["vocals"], long_song.meta
    hop = 160  # 10 ms, like the meta track
    f0 = librosa.yin(v, fmin=70, fmax=1000, sr=16000, frame_length=1024, hop_length=hop,
                     center=True)
    ref = np.asarray(meta["f0_hz"])
    m = min(len(f0), len(ref))
    f0, ref = f0[:m], ref[:m]
    voiced = ref > 0
    assert 0.4 < voiced.mean() < 0.95  # phrases and rests
    cents = 1200 * np.abs(np.log2(f0[voiced] / ref[voiced]))
    assert np.median(cents) < 15 and np.mean(cents < 50) > 0.9
    # vibrato seen in the estimated pitch of long notes: 5-6 Hz, 20-50 cents
    rates, depths = [], []
    for start, dur, _midi, _vowel in meta["notes"]:
        if dur < 0.7:
            continue
        i0, i1 = int((start + 0.35) * 100), int((start + dur - 0.05) * 100)
        seg = 1200 * np.log2(f0[i0:i1])
        seg = seg - np.polyval(np.polyfit(np.arange(len(seg)), seg, 1), np.arange(len(seg)))
        spec = np.abs(np.fft.rfft(seg * np.hanning(len(seg)), n=1024))
        rates.append(np.fft.rfftfreq(1024, 0.01)[np.argmax(spec)])
        depths.append(np.sqrt(2) * seg.std())
    assert rates, "expected at least one long note"
    assert 4.5 <= np.median(rates) <= 6.5
    assert 12 <= np.median(depths) <= 60
