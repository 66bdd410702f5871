"""BSS-Eval v4 results through the reports: evaluate's per-item writer (in process), the card's
SiSEC aggregation and frame counts, metrics.csv, and `report.compare`'s BSS-Eval table."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from bootsep.config.experiment import _check_metric_families, _finish_item
from bootsep.report.aggregate import load_results
from bootsep.report.analyze import analyze
from bootsep.report.card import report_card
from bootsep.report.compare import compare
from bootsep.utils.errors import UserError

SR = 8000
LABELS = ["accompaniment", "vocals"]


def _item(run, name, seed, noise, silent_vocals_seconds=0, families=("si_sdr", "bsseval_v4")):
    rng = np.random.default_rng(seed)
    refs = 0.1 * rng.standard_normal((2, 2, 3 * SR))
    refs[1, :, :silent_vocals_seconds * SR] = 0.0
    est = refs + noise * rng.standard_normal(refs.shape) + 0.1 * refs[::-1]
    _finish_item(run, name, LABELS, est, refs, refs.sum(0), False, {}, False, SR,
                 families, {"window": 1.0, "hop": 1.0, "device": "cpu"})


@pytest.fixture
def runs(tmp_path):
    good, bad = tmp_path / "good", tmp_path / "bad"
    for i, name in enumerate(["a", "b", "c"]):
        _item(good, name, i, 0.01, silent_vocals_seconds=1 if name == "b" else 0)
        _item(bad, name, i, 0.1, silent_vocals_seconds=1 if name == "b" else 0)
    return good, bad


def test_results_card_and_csv(runs):
    good, _ = runs
    rec = json.loads((good / "results" / "b.json").read_text())
    assert rec["sources"]["vocals"]["v4-frames"] == [3]
    assert rec["sources"]["vocals"]["v4-frames-excluded"] == [1]  # the silent first second
    assert rec["metadata"]["bsseval_v4"]["undefined_frames"] == {"accompaniment": 1, "vocals": 1}
    df = load_results(good / "results")  # the museval/ subfolder is not read as a result
    assert list(df["item"].unique()) == ["a", "b", "c"]
    assert [c for c in df.columns if c in ("SDR", "ISR", "SIR", "SAR")] == ["SDR", "ISR", "SIR",
                                                                           "SAR"]
    card = report_card(df)
    lines = card.splitlines()
    # SiSEC: the median table's SDR is the median over items of the per-item medians
    median_block = card.split("MEDIAN OF METRICS")[1]
    sdr_row = next(x for x in median_block.splitlines() if x.startswith("| SDR "))
    vocals = df[df.source == "vocals"]["SDR"].median()
    assert f"{vocals:.2f}" in sdr_row
    assert not any(x.startswith("| v4-frames") for x in lines)
    assert "frames left out of those medians: 2 of 18 (ACCOMPANIMENT 1 of 9, VOCALS 1 of 9)" \
        in card
    out = analyze(good, print_card=False)
    csv = pd.read_csv(out["metrics_csv"])
    assert {"SDR", "ISR", "SIR", "SAR", "v4-frames", "v4-frames-excluded"} <= set(csv.columns)
    assert "BSS-EVAL V4" in out["report_card"].read_text()


def test_compare_tabulates_bsseval(runs, tmp_path):
    good, bad = runs
    res = compare({"bad": bad, "good": good}, tmp_path / "cmp", sources=LABELS)
    v4 = json.loads(res["bsseval_json"].read_text())
    for name, run in (("bad", bad), ("good", good)):
        df = load_results(run / "results")
        want = df[df.source == "vocals"]["SDR"]
        assert v4[name]["vocals"]["SDR"]["median"] == pytest.approx(want.median())
        assert v4[name]["vocals"]["SDR"]["mean"] == pytest.approx(want.mean())
    assert v4["good"]["vocals"]["SDR"]["median"] > v4["bad"]["vocals"]["SDR"]["median"]
    md = res["md"].read_text()
    assert "## BSS-Eval v4 (museval)" in md and "vocals SDR" in md


def test_bsseval_only_and_bad_families(tmp_path):
    _item(tmp_path / "only", "a", 0, 0.01, families=("bsseval_v4",))
    rec = json.loads((tmp_path / "only" / "results" / "a.json").read_text())
    assert "SI-SDR" not in rec["sources"]["vocals"] and "SDR" in rec["sources"]["vocals"]
    with pytest.raises(UserError, match="no SI-SDR results"):
        compare({"only": tmp_path / "only"}, tmp_path / "cmp", sources=LABELS)
    assert _check_metric_families("bsseval_v4") == ("bsseval_v4",)
    for bad in (["sdr"], [], "museval"):
        with pytest.raises(UserError, match="evaluate.metrics"):
            _check_metric_families(bad)
