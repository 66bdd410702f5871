"""A silent reference is "undefined" (left out of the means and counted), never a number; a
silent estimate stays -inf and is not mistaken for an undefined value (issue 11 item 8)."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd

from bootsep.config.experiment import _finish_item
from bootsep.report.aggregate import load_results
from bootsep.report.analyze import analyze
from bootsep.report.card import report_card
from bootsep.utils.results import result_value

SR = 8000


def _item(run, name, silent_ref=False, silent_est=False):
    rng = np.random.default_rng(len(name))
    refs = rng.standard_normal((2, 1, SR)).astype(np.float32) * 0.1  # acc, vocals; mono
    if silent_ref:
        refs[1] = 0.0
    mix = refs.sum(0)
    est = refs + 0.01 * rng.standard_normal(refs.shape).astype(np.float32)
    if silent_est:
        est[0] = 0.0
    _finish_item(run, name, ["accompaniment", "vocals"], est, refs, mix, False, {}, False, SR)


def test_result_value_round_trip():
    assert result_value(float("nan")) is None
    assert result_value(-math.inf) == "-inf" and result_value(math.inf) == "inf"
    assert result_value(3.5) == 3.5


def test_silent_reference_is_undefined_and_counted(tmp_path):
    run = tmp_path / "run"
    _item(run, "a")
    _item(run, "b", silent_ref=True)
    _item(run, "c")
    rec = json.loads((run / "results" / "b.json").read_text())
    assert rec["sources"]["vocals"]["SI-SDR"] == [None]  # undefined, not -100 or -inf
    assert isinstance(rec["sources"]["accompaniment"]["SI-SDR"][0], float)
    df = load_results(run / "results")
    assert df[df.source == "vocals"]["SI-SDR"].isna().sum() == 1
    card = report_card(df)
    # the mean of the two defined vocals items, not dragged down by the silent one
    want = df[(df.source == "vocals") & df["SI-SDR"].notna()]["SI-SDR"].mean()
    assert f"{want:.2f} +/-" in card
    assert "LEFT OUT OF THE MEANS AND MEDIANS: undefined values (silent reference)" in card
    line = next(x for x in card.splitlines() if "SI-SDR," in x)
    assert line.startswith("  1 of 6 items (ACCOMPANIMENT 0 of 3, VOCALS 1 of 3): SI-SDR")
    assert "-100" not in card and "-inf" not in card
    out = analyze(run, print_card=False)
    csv = pd.read_csv(out["metrics_csv"])
    assert csv[(csv.item == "b") & (csv.source == "vocals")]["SI-SDR"].isna().all()


def test_only_undefined_values_read_undefined(tmp_path):
    run = tmp_path / "run"
    _item(run, "a", silent_ref=True)
    card = report_card(load_results(run / "results"))
    row = next(x for x in card.splitlines() if x.startswith("| SI-SDR "))
    assert "undefined" in row and "nan +/-" not in row


def test_silent_estimate_is_minus_inf_not_excluded(tmp_path):
    run = tmp_path / "run"
    _item(run, "a")
    _item(run, "b", silent_est=True)
    rec = json.loads((run / "results" / "b.json").read_text())
    assert rec["sources"]["accompaniment"]["SI-SDR"] == ["-inf"]
    df = load_results(run / "results")
    acc = df[df.source == "accompaniment"]["SI-SDR"]
    assert acc.isna().sum() == 0 and np.isneginf(acc).sum() == 1
    card = report_card(df)
    assert "LEFT OUT" not in card  # nothing undefined: the failure shows in the mean
    row = next(x for x in card.splitlines() if x.startswith("| SI-SDR "))
    assert row.split("|")[2].strip() == "-inf"  # OVERALL: the silent estimate shows
