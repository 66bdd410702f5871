"""Pinned outputs of ``separate`` (segment and file mode) for a small generated stereo song.

The masks, features, estimates and confidences that each kind of separator gives through
:meth:`Separator.separate` and through ``separate_segments`` / ``separate_files`` were recorded
in ``pinned_separate.json`` before the separators' feature side channels were replaced by
:meth:`Separator.analyze`; they must stay the same (1e-6 per value, block sums compared with
a tolerance scaled by the block size). Arrays are pinned as float64 sums over 64 consecutive
blocks of their flattened values (of the values and of their absolute values), so a change
in any part of the signal shows.

Regenerate only on purpose: ``BOOTSEP_REPIN=1 pytest tests/separation/test_pinned_separate.py``.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from bootsep.bootstrap.segments import find_recordings, plan_segments, read_segment
from bootsep.bootstrap.separate import separate_files, separate_segments
from bootsep.dsp import STFT
from bootsep.models import Chimera, DeepClustering, MaskInference
from bootsep.primitives.ensemble import AdaptiveEnsemble, primitive_clustering
from bootsep.primitives.ft2d import FT2D
from bootsep.primitives.hpss import HPSS
from bootsep.primitives.spatial import SpatialClustering
from bootsep.separation.deep import DeepClusteringSeparator, DeepMaskSeparator
from bootsep.separation.grouped import GroupedSeparator

SR = 16000
PINNED = Path(__file__).with_name("pinned_separate.json")
BLOCKS = 64
STFT_SMALL = STFT(window_length=256, hop_length=64)


def _song(n: int) -> tuple[np.ndarray, np.ndarray]:
    """``(vocals, accompaniment)`` float32 ``(2, n)``: a vibrato voice panned centre over a
    repeating low chord + clicks panned left with a 3-sample delay, plus a little noise."""
    rng = np.random.default_rng(7)
    t = np.arange(n) / SR
    f0 = 440.0 * (1 + 0.02 * np.sin(2 * np.pi * 5 * t))
    phase = 2 * np.pi * np.cumsum(f0) / SR
    voc = sum(0.15 / k * np.sin(k * phase) for k in range(1, 6)) * (0.6 + 0.4 * np.sin(np.pi * t))
    chord = sum(0.1 * np.sin(2 * np.pi * f * t) for f in (110.0, 138.6, 164.8))
    clicks = np.zeros(n)
    clicks[:: SR // 4] = 0.8
    clicks = np.convolve(clicks, np.exp(-np.arange(200) / 30.0), mode="same")
    acc = chord + clicks
    vocals = np.stack([voc, voc]) + 0.003 * rng.standard_normal((2, n))
    left = 0.9 * acc
    right = 0.3 * np.concatenate([np.zeros(3), acc[:-3]])
    accompaniment = np.stack([left, right]) + 0.003 * rng.standard_normal((2, n))
    return vocals.astype(np.float32), accompaniment.astype(np.float32)


def _write(path: Path, x: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), x.T, SR, subtype="FLOAT")
    return path


@pytest.fixture(scope="module")
def song(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("pinned") / "songs"
    voc, acc = _song(int(2.0 * SR))
    _write(root / "song0" / "vocals.wav", voc)
    _write(root / "song0" / "accompaniment.wav", acc)
    _write(root / "song0" / "mixture.wav", voc + acc)
    return root


def _seeded(cls, *args, **kwargs):
    torch.manual_seed(0)
    return cls(*args, **kwargs).eval()


def _separators() -> dict:
    """name -> (separator factory, confidence measures of the segment run)."""
    nf = STFT_SMALL.n_freq
    small = dict(hidden_size=8, num_layers=1, dropout=0.0)

    def adaptive():
        common = dict(sample_rate=SR, stft=STFT(), device="cpu")
        r = FT2D(neighborhood_size=(1, 35), use_bg_2dft=True, **common)
        m = FT2D(neighborhood_size=(1, 35), use_bg_2dft=False, **common)
        h = HPSS(kernel_size=31, **common)
        return AdaptiveEnsemble([r, m, h], [[1], [1], [0]], [3, 1, 1], **common)

    return {
        "ensemble": (lambda: primitive_clustering(SR, STFT(), device="cpu"), None),
        "ensemble_kmeans": (lambda: primitive_clustering(SR, STFT(), device="cpu",
                                                         clustering="kmeans"),
                            ("combined", "fixed_posterior")),
        "adaptive": (adaptive, ("combined", "fixed_posterior")),
        "spatial": (lambda: SpatialClustering(SR, STFT(), device="cpu"),
                    ("spatial", "combined")),
        "spatial_delay": (lambda: SpatialClustering(SR, STFT(), model="delay",
                                                    confidence_features="posteriors",
                                                    device="cpu"),
                          ("spatial_margin", "posterior")),
        "mask": (lambda: DeepMaskSeparator(_seeded(MaskInference, nf, **small), SR, STFT_SMALL,
                                           device="cpu", chunk_frames=200, overlap_frames=20),
                 None),
        "chimera": (lambda: DeepMaskSeparator(_seeded(Chimera, nf, embedding_size=4, **small),
                                              SR, STFT_SMALL, device="cpu", chunk_frames=200,
                                              overlap_frames=20),
                    None),
        "dpcl": (lambda: DeepClusteringSeparator(_seeded(DeepClustering, nf, embedding_size=4,
                                                         **small),
                                                 sample_rate=SR, stft=STFT_SMALL, device="cpu",
                                                 chunk_frames=200, overlap_frames=20),
                 None),
        "dpcl_stream": (lambda: DeepClusteringSeparator(_seeded(DeepClustering, nf,
                                                                embedding_size=4, **small),
                                                        sample_rate=SR, stft=STFT_SMALL,
                                                        device="cpu", chunk_frames=200,
                                                        overlap_frames=20, cache_bytes=0,
                                                        mask_type="soft"),
                        None),
        "grouped": (lambda: GroupedSeparator(
            DeepMaskSeparator(_seeded(MaskInference, nf, num_sources=3, **small), SR,
                              STFT_SMALL, device="cpu"),
            {"accompaniment": [0, 2], "vocals": [1]}), None),
    }


def _blocks(x) -> dict:
    a = np.asarray(x.double().numpy() if torch.is_tensor(x) else x, dtype=np.float64)
    flat = a.ravel()
    edges = np.linspace(0, flat.size, BLOCKS + 1).round().astype(int)
    pieces = [flat[lo:hi] for lo, hi in zip(edges[:-1], edges[1:])]
    return {"shape": list(a.shape), "sum": [float(f"{p.sum():.10g}") for p in pieces],
            "abs": [float(f"{np.abs(p).sum():.10g}") for p in pieces],
            "per_block": int(-(-flat.size // BLOCKS))}


def _clean(v):
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_clean(x) for x in v]
    return v


def _record(name: str, song: Path, tmp: Path) -> dict:
    factory, measures = _separators()[name]
    sep = factory()
    rec = find_recordings(song)
    segs = plan_segments(rec, SR, 1.0, 0.5)
    mix, _ = read_segment(segs[1])
    direct = sep.separate(torch.from_numpy(mix), with_features=True)
    out: dict = {"masks": _blocks(direct.masks), "estimates": _blocks(direct.estimates),
                 "features": None if direct.features is None else _blocks(direct.features)}
    plain = factory().separate(torch.from_numpy(mix))
    assert plain.features is None
    out["plain_estimates"] = _blocks(plain.estimates)
    dest = tmp / name / "segments"
    kw = {} if measures is None else {"confidence": list(measures)}
    separate_segments(factory(), segs, dest, progress=False, num_workers=1, min_loudness=None,
                      **kw)
    out["segments"] = {}
    for seg in segs:
        r = json.loads((dest / "results" / f"{seg.name}.json").read_text())
        audio = np.stack([sf.read(str(dest / p), dtype="float32", always_2d=True)[0].T
                          for p in r["metadata"]["estimate_paths"].values()])
        out["segments"][seg.name] = {"confidence": r["confidence"], "sources": r["sources"],
                                     "audio": _blocks(audio)}
    files = tmp / name / "files"
    separate_files(factory(), [song / "song0" / "mixture.wav"], files, progress=False,
                   window_seconds=1.0, overlap_seconds=0.25)
    out["files"] = {p.stem: _blocks(sf.read(str(p), dtype="float32", always_2d=True)[0].T)
                    for p in sorted(files.glob("*.wav"))}
    return _clean(json.loads(json.dumps(out)))


def _compare(got, want, where: str):
    if isinstance(want, dict) and "per_block" in want:
        assert got["shape"] == want["shape"], where
        tol = 1e-6 * max(want["per_block"], 1)
        np.testing.assert_allclose(got["sum"], want["sum"], rtol=0, atol=tol, err_msg=where)
        np.testing.assert_allclose(got["abs"], want["abs"], rtol=0, atol=tol, err_msg=where)
    elif isinstance(want, dict):
        assert sorted(got) == sorted(want), where
        for k in want:
            _compare(got[k], want[k], f"{where}.{k}")
    elif isinstance(want, list):
        assert len(got) == len(want), where
        for i, (g, w) in enumerate(zip(got, want)):
            _compare(g, w, f"{where}[{i}]")
    elif isinstance(want, float):
        assert got == pytest.approx(want, abs=1e-6, rel=1e-6), where
    else:
        assert got == want, where


NAMES = list(_separators())


@pytest.mark.parametrize("name", NAMES)
def test_separate_outputs_are_pinned(name, song, tmp_path):
    got = _record(name, song, tmp_path)
    if os.environ.get("BOOTSEP_REPIN"):
        pinned = json.loads(PINNED.read_text()) if PINNED.is_file() else {}
        pinned[name] = got
        PINNED.write_text(json.dumps(pinned, sort_keys=True) + "\n")
        pytest.skip("re-pinned")
    want = json.loads(PINNED.read_text())[name]
    _compare(got, want, name)
