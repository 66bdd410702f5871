import os
import pickle

import numpy as np
import pytest
import soundfile

from bootsep.data.audio import load_audio, save_audio
from bootsep.data.cache import AudioCache
from bootsep.data.folder import StemFolderDataset

from ._tagged import write_tagged


def _noise(n, ch=2, seed=0):
    return (0.2 * np.random.default_rng(seed).standard_normal((ch, n))).astype(np.float32)


def _forbid_decoding(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("soundfile.read called although the audio is cached")

    monkeypatch.setattr(soundfile, "read", fail)


def test_cache_matches_load_audio_and_avoids_second_decode(tmp_path, monkeypatch):
    p = tmp_path / "x.wav"
    save_audio(p, _noise(22050), 22050)
    cache = AudioCache(tmp_path / "cache")
    full = cache.load(p, sample_rate=16000, mono=True)
    np.testing.assert_array_equal(full, load_audio(p, sample_rate=16000, mono=True))
    assert cache.misses == 1 and len(list((tmp_path / "cache").glob("*.npy"))) == 1
    ref_excerpt = load_audio(p, sample_rate=16000, mono=True, offset=0.2, duration=0.3)

    _forbid_decoding(monkeypatch)
    fresh = AudioCache(tmp_path / "cache")  # new process-like object: reads the .npy
    e = fresh.load(p, sample_rate=16000, mono=True, offset=0.2, duration=0.3)
    assert fresh.hits == 1 and fresh.misses == 0 and e.shape == (1, 4800)
    np.testing.assert_array_equal(e, full[:, 3200:8000])
    np.testing.assert_allclose(e, ref_excerpt, atol=1e-5)
    # settings are part of the key: stereo at the native rate is another entry (needs decoding)
    with pytest.raises(AssertionError, match="cached"):
        fresh.load(p, mono=False)


def test_changed_file_gets_new_entry(tmp_path):
    p = tmp_path / "x.wav"
    save_audio(p, _noise(8000, seed=1), 8000)
    cache = AudioCache(tmp_path / "cache")
    a = cache.load(p)
    save_audio(p, _noise(8000, seed=2), 8000)
    st = p.stat()
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # a clearly different mtime
    b = cache.load(p)
    np.testing.assert_array_equal(b, load_audio(p))
    assert not np.array_equal(a, b)
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 2


def test_damaged_entry_is_rebuilt_and_cache_pickles(tmp_path):
    p = tmp_path / "x.wav"
    save_audio(p, _noise(4000), 8000)
    cache = AudioCache(tmp_path / "cache")
    cache.cache_path(p).parent.mkdir(parents=True)
    cache.cache_path(p).write_bytes(b"garbage")
    np.testing.assert_array_equal(AudioCache(tmp_path / "cache").load(p), load_audio(p))
    cache.load(p)
    clone = pickle.loads(pickle.dumps(cache))
    assert clone.folder == cache.folder and len(clone._open) == 0


def test_populate_dataset_then_items_need_no_decoding(tmp_path, monkeypatch):
    root = write_tagged(tmp_path / "d", n_songs=3)
    cache = AudioCache(tmp_path / "cache")
    ds = StemFolderDataset(root, "train", excerpt_seconds=0.25, num_items=6, cache=cache)
    assert len(ds.audio_files()) == 9  # 3 songs x (mixture, vocals, accompaniment)
    assert cache.populate(ds, progress=False) == 9
    assert cache.populate(ds, progress=False) == 0
    expected = [StemFolderDataset(root, "train", excerpt_seconds=0.25, num_items=6)[i]["mix"]
                for i in range(6)]
    _forbid_decoding(monkeypatch)
    fresh = StemFolderDataset(root, "train", excerpt_seconds=0.25, num_items=6,
                              cache=tmp_path / "cache")
    for i in range(6):
        assert np.array_equal(fresh[i]["mix"].numpy(), expected[i].numpy())
