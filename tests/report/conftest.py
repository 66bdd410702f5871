"""Fake run folders for the report tests: generated result JSONs and small generated wavs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from bootsep.utils.results import write_result

ALL_METRICS = ["SI-SDR", "SI-SIR", "SI-SAR", "SD-SDR", "SNR", "SRR", "SI-SDRi", "SD-SDRi",
               "SNRi", "MIX-SI-SDR", "MIX-SD-SDR", "MIX-SNR"]


def _tone_mix(n: int, sr: int, seed: int, burst_at: float | None) -> dict[str, np.ndarray]:
    """Two 'sources' (stereo): a quiet harmonic tone and noise; an optional loud 1 s burst."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / sr
    voc = 0.05 * np.sin(2 * np.pi * 440 * t)
    acc = 0.02 * rng.standard_normal(n)
    if burst_at is not None:
        i0, i1 = int(burst_at * sr), int((burst_at + 1.0) * sr)
        voc[i0:i1] += 0.8 * np.sin(2 * np.pi * 220 * t[i0:i1])
    return {"vocals": np.stack([voc, 0.9 * voc]), "accompaniment": np.stack([acc, acc])}


@pytest.fixture
def make_run(tmp_path):
    """Factory: ``make_run(scores, audio_items=(), ...) -> run_dir``.

    ``scores`` maps item -> {source: {metric: [per-channel values]}} (None = null). Items in
    ``audio_items`` get mixture/reference/estimate wavs (``seconds`` long at ``sr``, stereo,
    a loud burst starting at ``burst_at`` s); estimates are stored relative to the run.
    """

    def factory(scores: dict, audio_items=(), seconds: float = 3.0, sr: int = 16000,
                burst_at: float | None = 1.5, name: str = "run",
                provenance: dict | None = None) -> Path:
        run = tmp_path / name
        (run / "results").mkdir(parents=True)
        data_root = tmp_path / f"{name}_data"
        for k, (item, sources) in enumerate(scores.items()):
            meta = {"sample_rate": sr, "duration": seconds, "channels": 2,
                    "separator": "Fake(n_src=2)"}
            if item in audio_items:
                srcs = _tone_mix(int(seconds * sr), sr, seed=k, burst_at=burst_at)
                d = data_root / item
                d.mkdir(parents=True)
                mix = sum(srcs.values())
                sf.write(d / "mixture.wav", mix.T, sr, subtype="PCM_16")
                meta["mixture_path"] = str(d / "mixture.wav")
                meta["reference_paths"] = {}
                meta["estimate_paths"] = {}
                for s, x in srcs.items():
                    sf.write(d / f"{s}.wav", x.T, sr, subtype="PCM_16")
                    meta["reference_paths"][s] = str(d / f"{s}.wav")
                    rel = Path("estimates") / item / f"{s}.wav"
                    (run / rel).parent.mkdir(parents=True, exist_ok=True)
                    sf.write(run / rel, (0.9 * x).T, sr, subtype="FLOAT")
                    meta["estimate_paths"][s] = str(rel)
            write_result(run / "results" / f"{item}.json", item, sources, meta,
                         permutation=[[0, 1]])  # the writer evaluate uses
        if provenance is not None:
            (run / "provenance.json").write_text(json.dumps(provenance))
        return run

    return factory


def _random_scores(n_items: int = 7, sources=("accompaniment", "vocals"), channels: int = 2,
                  seed: int = 0, metrics=ALL_METRICS) -> dict:
    """Random per-channel scores, item -> source -> metric -> list."""
    rng = np.random.default_rng(seed)
    out = {}
    for i in range(n_items):
        out[f"song{i:03d}"] = {
            s: {m: [round(float(v), 4) for v in rng.normal(3.0 if s == "vocals" else 8.0, 4.0,
                                                            channels)]
                for m in metrics}
            for s in sources}
    return out


@pytest.fixture
def random_scores():
    """The score generator: ``random_scores(n_items=7, sources=..., channels=2, seed=0)``."""
    return _random_scores


@pytest.fixture
def scores():
    return _random_scores()
