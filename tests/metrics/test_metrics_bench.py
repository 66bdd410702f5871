"""bench/metrics_speed.py runs end to end on a tiny configuration and reports what it timed."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parents[2] / "bench" / "metrics_speed.py"


def _load():
    spec = importlib.util.spec_from_file_location("_metrics_speed", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_measure_tiny(capsys):
    bench = _load()
    items = bench.make_items(2, 0.5, 8000, 3, 2, seed=1)
    assert len(items) == 2 and items[0][0].shape == (2, 3, 4000)
    assert not np.allclose(items[0][0], items[0][1])
    result = bench.main(["--n-items", "2", "--seconds", "2", "--sample-rate", "8000",
                         "--museval-items", "1"])
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == result
    assert result["n_items"] == 2 and result["museval_items_timed"] == 1
    assert result["ours_items_per_s"] > 0 and result["museval_items_per_s"] > 0
    ratio = result["ours_items_per_s"] / result["museval_items_per_s"]
    assert abs(result["metrics_speedup_vs_museval"] - ratio) <= 0.05 * ratio + 0.1
