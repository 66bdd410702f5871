"""`evaluate.metrics = ['si_sdr', 'bsseval_v4']` end to end: `python main.py evaluate` with the
shipped 44.1 kHz yardstick config on a tiny generated MUSDB18-HQ layout writes museval's JSON
(read back by museval's own reader), SDR/ISR/SIR/SAR in results, metrics.csv and the card."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import soundfile as sf

from conftest import run_main

SR = 44100
STEMS = ("vocals", "drums", "bass", "other")
TRACKS = {"train": ["Alpha - One"], "test": ["Delta - Four", "Epsilon - Five"]}
CONFIGS = ["musdb/env.gin", "musdb/musdb.gin", "musdb/exp/eval_bsseval_44k.gin",
           "musdb/exp/primitives/ideal_ratio_mask.gin"]
QUIET = ["evaluate.progress = False", "evaluate.num_workers = 1"]


def _stems(rng, seconds: float) -> dict[str, np.ndarray]:
    n = int(seconds * SR)
    t = np.arange(n) / SR
    out = {}
    for k, stem in enumerate(STEMS):
        f0 = 110 * (k + 1) * rng.uniform(0.9, 1.1)
        tone = sum(np.sin(2 * np.pi * h * f0 * t + rng.uniform(0, 6)) / h for h in range(1, 5))
        gate = np.sin(2 * np.pi * rng.uniform(0.5, 2) * t) > -0.5
        x = 0.1 * (tone * gate + 0.3 * rng.standard_normal(n))
        pan = rng.uniform(0.3, 0.7)
        out[stem] = np.stack([x * pan, x * (1 - pan)], 1)
    out["vocals"][:SR] = 0.0  # the first second has no vocals: an undefined frame
    return out


@pytest.fixture(scope="module")
def musdb_hq(tmp_path_factory):
    """MUSDB18-HQ layout: ROOT/<subset>/<track>/{mixture,vocals,drums,bass,other}.wav."""
    root = tmp_path_factory.mktemp("musdb_hq")
    rng = np.random.default_rng(0)
    for subset, names in TRACKS.items():
        for name in names:
            d = root / subset / name
            d.mkdir(parents=True)
            stems = _stems(rng, 3.4)
            for s, x in stems.items():
                sf.write(d / f"{s}.wav", x, SR, subtype="PCM_16")
            sf.write(d / "mixture.wav", sum(stems.values()), SR, subtype="PCM_16")
    return root


def _evaluate(run, root, *binds):
    args = ["evaluate", "-c", *CONFIGS, "-o", run]
    for b in (*QUIET, *binds):
        args += ["-b", b]
    return run_main(args, env={"MUSDB_ROOT": str(root)})


def test_evaluate_writes_museval_json_and_sdr_card(tmp_path, musdb_hq):
    run = tmp_path / "run"
    r = _evaluate(run, musdb_hq, "evaluate.metrics = ['si_sdr', 'bsseval_v4']")
    assert r.returncode == 0, r.stderr[-3000:]
    for name in TRACKS["test"]:
        rec = json.loads((run / "results" / f"{name}.json").read_text())
        museval_file = run / "results" / "museval" / "test" / f"{name}.json"
        assert rec["metadata"]["bsseval_v4"]["museval_json"] == str(museval_file.relative_to(run))
        mj = json.loads(museval_file.read_text())
        assert {t["name"] for t in mj["targets"]} == {"vocals", "accompaniment"}
        for target in mj["targets"]:
            frames = target["frames"]
            assert [f["time"] for f in frames] == [0.0, 1.0, 2.0]  # 3.4 s: three 1 s frames
            assert all(f["duration"] == 1.0 for f in frames)
            assert math.isnan(frames[0]["metrics"]["SDR"])  # silent vocals: undefined frame
            src = rec["sources"][target["name"]]
            for m in ("SDR", "ISR", "SIR", "SAR"):
                values = [f["metrics"][m] for f in frames]
                assert abs(src[m][0] - np.nanmedian(values)) < 1e-4, (m, src[m], values)
            assert src["v4-frames"] == [3] and src["v4-frames-excluded"] == [1]
            assert len(src["SI-SDR"]) == 2  # the SI-SDR family per channel, as before
        assert rec["metadata"]["bsseval_v4"]["undefined_frames"] == {"accompaniment": 1,
                                                                     "vocals": 1}
    card = (run / "report_card.txt").read_text()
    assert "| SDR " in card and "| SAR " in card and "| SI-SDR " in card
    assert "v4-frames" not in card.split("BSS-EVAL V4")[0]  # counts are not metric rows
    assert "frames left out of those medians: 4 of 12 (ACCOMPANIMENT 2 of 6, VOCALS 2 of 6)" \
        in card
    with open(run / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert {"SDR", "ISR", "SIR", "SAR", "SI-SDR", "v4-frames-excluded"} <= set(rows[0])
    assert len(rows) == 4

    try:  # museval's own reader and aggregation (museval imports musdb -> stempeg -> ffmpeg)
        from museval.aggregate import EvalStore
    except Exception as err:  # noqa: BLE001
        pytest.skip(f"museval cannot be imported here ({type(err).__name__}: {err})")
    store = EvalStore()
    store.add_eval_dir(run / "results" / "museval")
    per_track = store.agg_frames_scores()
    for row in rows:
        assert abs(per_track[(row["item"], row["source"], "SDR")] - float(row["SDR"])) < 1e-4


@pytest.mark.slow  # three evaluate runs
def test_bsseval_only_then_resume_adds_missing_family(tmp_path, musdb_hq):
    run = tmp_path / "run"
    r = _evaluate(run, musdb_hq, "evaluate.metrics = ['si_sdr']")
    assert r.returncode == 0, r.stderr[-3000:]
    assert not (run / "results" / "museval").exists()
    # asking for BSS-Eval v4 later scores the items again (same separator) and adds it
    r = _evaluate(run, musdb_hq, "evaluate.metrics = ['si_sdr', 'bsseval_v4']")
    assert r.returncode == 0, r.stderr[-3000:]
    rec = json.loads((run / "results" / "Delta - Four.json").read_text())
    assert {"SDR", "SI-SDR"} <= set(rec["sources"]["vocals"])
    assert len(list((run / "results" / "museval" / "test").glob("*.json"))) == 2

    only = tmp_path / "only"
    r = _evaluate(only, musdb_hq, "evaluate.metrics = ['bsseval_v4']")
    assert r.returncode == 0, r.stderr[-3000:]
    rec = json.loads((only / "results" / "Delta - Four.json").read_text())
    assert set(rec["sources"]["vocals"]) == {"SDR", "ISR", "SIR", "SAR", "v4-frames",
                                             "v4-frames-excluded"}
    assert "| SDR " in (only / "report_card.txt").read_text()


def test_unknown_metric_family_is_one_error_line(tmp_path, musdb_hq):
    r = _evaluate(tmp_path / "run", musdb_hq, "evaluate.metrics = ['sdr']")
    assert r.returncode == 2
    assert "error: evaluate.metrics = ['sdr']" in r.stderr and "bsseval_v4" in r.stderr
    assert "Traceback" not in r.stderr
