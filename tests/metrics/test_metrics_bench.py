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
                         "--museval-items", "1", "--v4-items", "0", "--memory-minutes", "0"])
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == result
    assert result["n_items"] == 2 and result["museval_items_timed"] == 1
    assert result["ours_items_per_s"] > 0 and result["museval_items_per_s"] > 0
    ratio = result["ours_items_per_s"] / result["museval_items_per_s"]
    assert abs(result["metrics_speedup_vs_museval"] - ratio) <= 0.05 * ratio + 0.1


def test_bsseval_v4_figures_tiny(capsys, tmp_path):
    """The BSS-Eval v4 part: speed ratio, agreement with museval on the generated items and on a
    MUSDB-layout folder's test songs, and the long-track memory probe (in a child process)."""
    import soundfile as sf

    bench = _load()
    rng = np.random.default_rng(0)
    for song in ("a", "b"):
        d = tmp_path / "test" / song
        d.mkdir(parents=True)
        for stem in ("vocals", "drums", "bass", "other"):
            x = rng.standard_normal((8000 * 2, 1)) * rng.uniform(0.05, 0.2)  # mono: fast
            x[:8000 if stem == "vocals" and song == "a" else 0] = 0.0  # a silent first second
            sf.write(d / f"{stem}.wav", x, 8000, subtype="PCM_16")
    result = bench.main(["--n-items", "1", "--seconds", "1", "--sample-rate", "8000",
                         "--v4-items", "2", "--v4-seconds", "2", "--v4-sample-rate", "8000",
                         "--v4-sources", "2", "--v4-museval-items", "1",
                         "--memory-minutes", "0.02", "--demo-root", str(tmp_path)])
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == result
    assert result["bsseval_v4_speedup_vs_museval"] > 0
    assert result["bsseval_v4_max_track_diff_db"] < 0.01
    assert result["bsseval_v4_max_frame_diff_db"] < 0.01
    assert result["bsseval_v4_same_undefined_frames"] is True
    assert result["bsseval_v4_items"] == 2 and result["bsseval_v4_museval_items"] == 1
    demo = result["bsseval_v4_demo"][0]
    assert demo["tracks"] == 2 and demo["max_track_diff_db"] < 0.01 and demo["same_undefined_frames"]
    memory = result["bsseval_v4_memory"]
    assert memory["frames"] == int(0.02 * 60) and memory["peak_rss_mb"] >= memory["baseline_rss_mb"]
    assert result["bsseval_v4_long_track_working_mb"] == memory["working_mb"]
