import math

import numpy as np
import pandas as pd
import pytest

from bootsep.report.aggregate import METRICS, load_results
from bootsep.report.card import fmt, report_card


def _parse_tables(card: str) -> dict[str, dict[str, dict[str, str]]]:
    """Card text -> {heading: {row: {column: cell}}} (parses tabulate's grid format)."""
    tables, heading, header = {}, None, None
    for line in card.splitlines():
        if line.endswith("OF METRICS"):
            heading, header = line, None
            tables[heading] = {}
        elif line.startswith("|") and heading:
            cells = [c.strip() for c in line.strip("|").split("|")]
            if header is None:
                header = cells
            else:
                tables[heading][cells[0]] = dict(zip(header[1:], cells[1:]))
    return tables


def _independent(df: pd.DataFrame):
    """mean/std/median per column group computed directly with numpy (NaN skipped)."""
    groups = {"OVERALL": df}
    for s in sorted(df["source"].unique()):
        groups[s.upper()] = df[df["source"] == s]
    out = {}
    for name, sub in groups.items():
        for m in [c for c in METRICS if c in df.columns]:
            v = sub[m].to_numpy(dtype=float)
            v = v[~np.isnan(v)]
            out[name, m] = (np.mean(v) if v.size else math.nan,
                            np.std(v, ddof=1) if v.size > 1 else math.nan,
                            np.median(v) if v.size else math.nan, len(sub))
    return out


def _r2(x):
    return "nan" if math.isnan(x) else f"{round(x, 2):.2f}".replace("-0.00", "0.00")


def test_card_numbers_match_independent_stats(make_run, random_scores):
    scores = random_scores(n_items=9, seed=3)
    scores["song001"]["vocals"]["SI-SIR"] = [None, None]  # a silent reference
    df = load_results(make_run(scores) / "results")
    card = report_card(df)
    tables = _parse_tables(card)
    mean_t, med_t = tables["MEAN +/- STD OF METRICS"], tables["MEDIAN OF METRICS"]
    assert list(mean_t) == ["#", *METRICS]
    assert list(med_t) == ["#", *METRICS]
    assert list(mean_t["#"]) == ["OVERALL", "ACCOMPANIMENT", "VOCALS"]
    assert mean_t["#"] == {"OVERALL": "18", "ACCOMPANIMENT": "9", "VOCALS": "9"}
    assert med_t["#"] == mean_t["#"]
    for (col, m), (mean, std, median, _) in _independent(df).items():
        want = "undefined" if math.isnan(mean) else f"{_r2(mean)} +/- {_r2(std)}"
        assert mean_t[m][col] == want, (m, col)
        assert med_t[m][col] == _r2(median), (m, col)
        # and the text is within rounding of the exact value
        assert float(med_t[m][col]) == pytest.approx(median, abs=0.005 + 1e-12)
    # the undefined value is left out and counted, overall and per source
    assert "  1 of 18 items (ACCOMPANIMENT 0 of 9, VOCALS 1 of 9): SI-SIR\n" in card


def _df(values_by_source: dict[str, list[float]], metric="SI-SDR") -> pd.DataFrame:
    rows = [{"item": f"i{k}", "source": s, metric: v}
            for s, vals in values_by_source.items() for k, v in enumerate(vals)]
    return pd.DataFrame(rows)


def test_rounds_instead_of_truncating():
    # mean 1.239 -> 1.24 (truncation would give 1.23); -1.239 -> -1.24
    df = _df({"vocals": [1.238, 1.240], "accompaniment": [-1.238, -1.240]})
    t = _parse_tables(report_card(df))
    assert t["MEDIAN OF METRICS"]["SI-SDR"]["VOCALS"] == "1.24"
    assert t["MEDIAN OF METRICS"]["SI-SDR"]["ACCOMPANIMENT"] == "-1.24"
    assert t["MEAN +/- STD OF METRICS"]["SI-SDR"]["OVERALL"] == "0.00 +/- 1.43"


def test_missing_rows_skipped_nan_and_single_values():
    df = _df({"vocals": [float("nan"), float("nan")], "drums": [2.0]})
    df["SNR"] = [1.0, 3.0, 7.0]
    t = _parse_tables(report_card(df))
    mean_t = t["MEAN +/- STD OF METRICS"]
    assert list(mean_t) == ["#", "SI-SDR", "SNR"]  # only metrics present
    assert list(mean_t["#"]) == ["OVERALL", "DRUMS", "VOCALS"]
    assert mean_t["SI-SDR"]["VOCALS"] == "undefined"  # no defined value: not a number
    assert mean_t["SI-SDR"]["DRUMS"] == "2.00 (n = 1)"  # one value: no spread, not +/- nan
    assert mean_t["SI-SDR"]["OVERALL"] == "2.00 (n = 1)"
    assert mean_t["SNR"]["OVERALL"] == "3.67 +/- 3.06"
    assert t["MEDIAN OF METRICS"]["SNR"]["VOCALS"] == "2.00"


def test_notes_and_title():
    df = _df({"vocals": [1.0, 2.0]})
    card = report_card(df, notes="trained 3 epochs\nseed 0", title="my run")
    lines = card.splitlines()
    assert lines[0] == "my run"
    assert lines[-3:] == ["NOTES", "trained 3 epochs", "seed 0"]
    assert card.endswith("\n")
    assert "NOTES" not in report_card(df)


def test_fmt():
    assert fmt(float("nan")) == "nan"
    assert fmt(-0.001) == "0.00"
    assert fmt(2.675) == f"{2.675:.2f}"
    assert fmt(np.float32(1.005)) == f"{float(np.float32(1.005)):.2f}"
    assert fmt(float("-inf")) == "-inf"
