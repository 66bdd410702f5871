import math
import statistics

import numpy as np
import pandas as pd
import pytest

from bootsep.report import analyze
from bootsep.report.aggregate import METRICS
from bootsep.utils.errors import UserError


def test_analyze_end_to_end(make_run, random_scores, capsys):
    scores = random_scores(n_items=6, seed=7)
    scores["song002"]["vocals"]["SI-SDR"] = [None, None]  # silent reference
    run = make_run(scores, audio_items=("song000", "song003", "song005"), seconds=2.0,
                   provenance={"command": "bootsep evaluate", "git_commit": "deadbeef"})
    out = analyze(run, notes="unit test run")
    printed = capsys.readouterr().out

    assert set(out) == {"report_card", "metrics_csv", "metrics_png", "report_html", "summary"}
    for key, name in (("report_card", "report_card.txt"), ("metrics_csv", "metrics.csv"),
                      ("metrics_png", "metrics.png"), ("report_html", "report.html")):
        assert out[key] == run / name and out[key].is_file()
    card = (run / "report_card.txt").read_text()
    assert printed == card
    assert "MEAN +/- STD OF METRICS" in card and "MEDIAN OF METRICS" in card
    assert card.rstrip().endswith("NOTES\nunit test run")
    assert (run / "metrics.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    html = (run / "report.html").read_text()
    assert html.count("data:audio/wav;base64,") >= 5 and "deadbeef" in html
    assert [p.name for p in run.iterdir() if p.name.startswith(".")] == []

    csv = pd.read_csv(run / "metrics.csv")
    assert list(csv.columns) == ["item", "source", *METRICS]
    assert len(csv) == 6 * 2
    assert set(zip(csv["item"], csv["source"])) == {
        (i, s) for i in scores for s in ("accompaniment", "vocals")}
    row = csv[(csv["item"] == "song004") & (csv["source"] == "vocals")].iloc[0]
    assert row["SI-SDRi"] == pytest.approx(
        statistics.median(scores["song004"]["vocals"]["SI-SDRi"]))
    assert math.isnan(csv[(csv["item"] == "song002") & (csv["source"] == "vocals")]
                      ["SI-SDR"].iloc[0])

    summary = out["summary"]
    assert set(summary) == {"OVERALL", "accompaniment", "vocals"}
    for key, sub in (("OVERALL", csv), ("vocals", csv[csv["source"] == "vocals"]),
                     ("accompaniment", csv[csv["source"] == "accompaniment"])):
        assert summary[key]["#"] == len(sub)
        for m in METRICS:
            v = sub[m].to_numpy(dtype=float)
            assert summary[key][m] == pytest.approx(float(np.mean(v[~np.isnan(v)])), abs=1e-9)


def test_analyze_mean_channel_aggregator(make_run, random_scores):
    scores = random_scores(n_items=3, channels=3, seed=2)
    run = make_run(scores)
    out = analyze(run, channel_aggregator="mean", print_card=False)
    csv = pd.read_csv(out["metrics_csv"])
    row = csv[(csv["item"] == "song001") & (csv["source"] == "accompaniment")].iloc[0]
    assert row["SNR"] == pytest.approx(
        statistics.fmean(scores["song001"]["accompaniment"]["SNR"]))
    assert "channels reduced by mean" in out["report_card"].read_text()


def test_analyze_user_errors(tmp_path, capsys):
    with pytest.raises(UserError, match="does not exist"):
        analyze(tmp_path / "missing")
    with pytest.raises(UserError, match="evaluate"):
        analyze(tmp_path)  # no results/ folder
    (tmp_path / "results").mkdir()
    with pytest.raises(UserError, match="no results"):
        analyze(tmp_path)
    assert not (tmp_path / "report_card.txt").exists()
    assert capsys.readouterr().out == ""
