"""Pinned items of the datasets built on :class:`~bootsep.data.tracks.TrackDataset` (folder,
bootstrapped, MUSDB, WHAM!) and of :class:`~bootsep.data.user.MixtureFolderDataset`.

The digests below were produced by the code before the datasets shared one base class (issue
12, item 2): the same seed and index must keep giving the same excerpt (song, start, redraws,
remix picks and gains) and the same samples, bit for bit. The folders are generated here at
their native rate (no resampler involved), so every digest is exact float32 arithmetic.
A digest that changes means items changed: training data, figures and resumes with it.
"""

from __future__ import annotations

import csv
import hashlib
import json

import numpy as np
import pytest
import soundfile as sf

from bootsep.data.audio import save_audio
from bootsep.data.bootstrapped import BootstrappedDataset
from bootsep.data.folder import StemFolderDataset
from bootsep.data.mixing import Remixer
from bootsep.data.musdb import MUSDBDataset
from bootsep.data.user import MixtureFolderDataset
from bootsep.data.wham import WHAMDataset

from .test_musdb import make_hq
from .test_wham import make_wham

SR = 8000


def _signal(rng: np.random.Generator, n: int, channels: int) -> np.ndarray:
    """Noise that is -50 dB quiet over its first 40 % (so excerpts there are redrawn)."""
    x = rng.standard_normal((channels, n)).astype(np.float32) * np.float32(0.2)
    x[:, : int(0.4 * n)] *= np.float32(10 ** (-50 / 20))
    return x


def write_folder(root, layout: str, channels: int = 1, mixture: bool = True):
    """Five songs of different lengths with drums/bass/other/vocals (no accompaniment file: it is
    derived) and a mixture file (their sum) unless ``mixture`` is False."""
    for k in range(5):
        rng = np.random.default_rng([11, k])
        n = int((0.6 + 0.15 * k) * SR)
        stems = {s: _signal(rng, n, 1 if s == "bass" else channels)
                 for s in ("drums", "bass", "other", "vocals")}
        if mixture:
            stems["mixture"] = np.sum([np.broadcast_to(x, (channels, n)) for x in stems.values()],
                                      axis=0, dtype=np.float32)
        for stem, x in stems.items():
            path = (root / "train" / f"song{k}" / f"{stem}.wav" if layout == "song"
                    else root / "train" / stem / f"song{k}.wav")
            save_audio(path, x, SR)
    return root


def digest(item: dict) -> str:
    h = hashlib.sha256()
    for key in ("mix", "sources"):
        x = item[key].numpy()
        h.update(f"{key}{x.dtype}{x.shape}".encode())
        h.update(np.ascontiguousarray(x).tobytes())
    meta = {k: item[k] for k in ("name", "index", "coherent") if k in item}
    for k in ("offset", "sample_rate"):
        if k in item:
            meta[k] = repr(float(item[k]))
    for k in ("offsets", "gains_db"):
        if k in item:
            meta[k] = [repr(float(v)) for v in item[k]]
    meta["keys"] = sorted(item)
    h.update(json.dumps(meta, sort_keys=True).encode())
    return h.hexdigest()[:16]


def digests(ds, n: int = 4) -> list[str]:
    return [digest(ds[i]) for i in range(n)]


EXC = dict(sample_rate=SR, excerpt_seconds=0.25, num_items=8, seed=3, silence_db=-35.0)
SOURCES = ("accompaniment", "vocals")


@pytest.fixture(scope="module")
def song_root(tmp_path_factory):
    return write_folder(tmp_path_factory.mktemp("song"), "song")


@pytest.fixture(scope="module")
def stem_root(tmp_path_factory):
    return write_folder(tmp_path_factory.mktemp("stem"), "stem", channels=2, mixture=False)


def test_stem_folder_pins(song_root, stem_root):
    got = {
        "excerpts": digests(StemFolderDataset(song_root, "train", sources=SOURCES, **EXC)),
        "whole": digests(StemFolderDataset(song_root, "train", sources=SOURCES, sample_rate=SR), 2),
        "remix": digests(StemFolderDataset(song_root, "train", sources=("vocals", "bass", "other"),
                                           remix=Remixer(0.5, 6.0), **EXC)),
        "stereo_derived_mix": digests(StemFolderDataset(stem_root, "train", sources=SOURCES,
                                                        mono=False, **EXC)),
        "stereo_whole": digests(StemFolderDataset(stem_root, "train", sources=("bass", "vocals"),
                                                  mono=False, sample_rate=SR), 2),
    }
    assert got == PINS["folder"]


def test_bootstrapped_pins(tmp_path):
    folder = tmp_path / "above"
    for k in range(4):
        rng = np.random.default_rng([12, k])
        n = int((0.5 + 0.2 * k) * SR)
        for label in ("accompaniment", "vocals"):
            save_audio(folder / label / f"seg{k}.wav", _signal(rng, n, 2), SR)
    with open(folder / "manifest.csv", "w", newline="") as f:
        csv.writer(f).writerow(["segment"])
    kw = dict(sample_rate=SR, excerpt_seconds=0.25, num_items=8, seed=5, silence_db=-35.0)
    got = {"balanced": digests(BootstrappedDataset(folder, balance=0.5, gain_jitter_db=3.0, **kw)),
           "channel1": digests(BootstrappedDataset(folder, channel=1, **kw))}
    assert got == PINS["bootstrapped"]


def test_musdb_pins(tmp_path):
    root = make_hq(tmp_path / "hq", tracks={"test": ["Delta - Four", "Epsilon - Five"]})
    kw = dict(sample_rate=44100, setup_file="setup.yaml")
    got = {
        "excerpts": digests(MUSDBDataset(root, "test", excerpt_seconds=0.2, num_items=4, seed=1,
                                         silence_db=-30.0, **kw)),
        "remix": digests(MUSDBDataset(root, "test", sources=("vocals", "drums", "accompaniment"),
                                      excerpt_seconds=0.2, num_items=4, seed=2, mono=False,
                                      remix=Remixer(0.7, 4.0), **kw)),
        "whole": digests(MUSDBDataset(root, "test", **kw), 1),
    }
    assert got == PINS["musdb"]


def test_wham_pins(tmp_path):
    root = make_wham(tmp_path / "wham", counts={"tr": 3})
    kw = dict(excerpt_seconds=0.3, num_items=4, seed=4, silence_db=-20.0)
    got = {
        "excerpts": digests(WHAMDataset(root, "tr", **kw)),
        "remix": digests(WHAMDataset(root, "tr", task="enhance-both", remix=Remixer(0.5, 2.0),
                                     **kw)),
        "whole": digests(WHAMDataset(root, "tr", task="enhance-single"), 2),
    }
    assert got == PINS["wham"]


def test_mixture_folder_pins(song_root):
    ds = MixtureFolderDataset(song_root / "train", sample_rate=SR)
    assert ds.item_names()[:2] == ["song0/bass", "song0/drums"]
    assert digests(ds, 3) == PINS["mixtures"]
    one = song_root / "train" / "song1" / "vocals.wav"
    assert sf.info(str(one)).samplerate == SR
    assert digests(MixtureFolderDataset(one, sample_rate=None), 1) == PINS["mixture_file"]


# produced by the pre-refactor code (commit de41189); do not update to make a test pass
PINS: dict = {
    'folder': {
        'excerpts': ['d02b889992de3448', '4df7b75c17795074', '944f015a68303719', '2fc450b6c228d89b'],
        'whole': ['c13a5618a77b7ff2', '0357777877368be8'],
        'remix': ['62d8e17424ee363a', 'f4b2df703f7e7a89', '2ef83515803de564', '6c380791b98d7a99'],
        'stereo_derived_mix': ['638818d658cbbb56', 'df675fd7489a16f7', '6768c5673dfc144f', '34c6be3c2e52c7b0'],
        'stereo_whole': ['68fbbf96b19b272d', '490954a9b4450330'],
    },
    'bootstrapped': {
        'balanced': ['2e82c432ecd12d27', '5289141212cd289f', '4c78c2395d26b8f4', 'aaf0fa905c1cae8e'],
        'channel1': ['5100afbd2847032d', 'a673889f68fc8c0d', 'd46a8b72177ffaf2', '459afd6f92237827'],
    },
    'musdb': {
        'excerpts': ['6b8a9e09ec5f97e3', 'd91082fcde85e98f', '602e296948eedbb6', 'aa61224f95fe0fc4'],
        'remix': ['046ce66d6bc2b6ed', '7ea8e355d62be137', '151b977e775c4c42', 'e20e418bd34e9172'],
        'whole': ['421647c5465732a8'],
    },
    'wham': {
        'excerpts': ['43cf035f161b666e', '7cf3b760eae765e2', '880bad2912307181', 'a24bd6e372f94daa'],
        'remix': ['ff52238202a9b74e', '738c45dbbcd6881b', 'f8d4e2899a5f3621', '3f5ceb76e93591ed'],
        'whole': ['9c373f8eb3d5b712', '8b0e62f42cd5e9cb'],
    },
    'mixtures': ['28e09cd6f5ba55e4', 'f5792a540c9f983a', 'e8f9485c771e13a4'],
    'mixture_file': ['68c0f17e56cb7e59'],
}
