"""report.compare: the comparison table from evaluated runs."""

from __future__ import annotations

import json

import pytest

from bootsep.report.compare import compare, main


def fake_run(folder, items):
    """``items``: {item: {source: (SI-SDR per channel list, MIX-SI-SDR)}}."""
    (folder / "results").mkdir(parents=True)
    for item, sources in items.items():
        rec = {"item": item, "sources": {
            s: {"SI-SDR": v, "SI-SDRi": [x - m for x in v], "MIX-SI-SDR": [m] * len(v)}
            for s, (v, m) in sources.items()}}
        (folder / "results" / f"{item}.json").write_text(json.dumps(rec))
    return folder


def test_table_means_mixture_row_and_outputs(tmp_path, capsys):
    a = fake_run(tmp_path / "a", {"x": {"vocals": ([1.0, 3.0], -2.0), "accompaniment": ([5.0], 2.0)},
                                  "y": {"vocals": ([4.0], -4.0), "accompaniment": ([7.0], 4.0)}})
    b = fake_run(tmp_path / "b", {"x": {"vocals": ([2.0], -2.0), "accompaniment": ([6.0], 2.0)},
                                  "y": {"vocals": ([6.0], -4.0), "accompaniment": ([8.0], 4.0)}})
    res = compare({"ensemble": a, "bootstrapped": b}, tmp_path)
    t = json.loads((tmp_path / "comparison.json").read_text())
    assert list(t) == ["mixture", "ensemble", "bootstrapped"]
    assert t["mixture"]["vocals"] == {"SI-SDR": -3.0, "SI-SDRi": 0.0}
    assert t["ensemble"]["vocals"]["SI-SDR"] == pytest.approx(3.0)   # (median(1, 3) + 4) / 2
    assert t["ensemble"]["vocals"]["SI-SDRi"] == pytest.approx(6.0)
    assert t["bootstrapped"]["accompaniment"] == {"SI-SDR": 7.0, "SI-SDRi": 4.0}
    md = (tmp_path / "comparison.md").read_text()
    assert "| bootstrapped | 4.00 | 7.00 | 7.00 | 4.00 |" in md and res["md"].name == "comparison.md"
    capsys.readouterr()
    assert main(["--output", str(tmp_path), "--system", f"e={a}"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == str(tmp_path / "comparison.md")


def test_refuses_runs_on_different_test_items(tmp_path, capsys):
    a = fake_run(tmp_path / "a", {"x": {"vocals": ([1.0], -2.0)}})
    b = fake_run(tmp_path / "b", {"z": {"vocals": ([1.0], 5.0)}})
    assert main(["--output", str(tmp_path), "--sources", "vocals", "--system", f"a={a}",
                 "--system", f"b={b}"]) == 2
    assert "other test items" in capsys.readouterr().err
    assert main(["--output", str(tmp_path), "--system", f"a={tmp_path / 'none'}"]) == 2


def test_confidence_plot_and_selection_summary_match_organize(tmp_path):
    a = fake_run(tmp_path / "a", {"x": {"vocals": ([1.0], -2.0)}})
    sep = tmp_path / "separated" / "results"
    sep.mkdir(parents=True)
    for i in range(10):   # confidence i/10, teacher quality 2*i dB
        (sep / f"s{i}.json").write_text(json.dumps({
            "item": f"s{i}", "confidence": {"combined": i / 10},
            "sources": {"vocals": {"SI-SDR": [2.0 * i]}}, "metadata": {"collection": "train"}}))
    res = compare({"ensemble": a}, tmp_path, sources=["vocals"],
                  separated=[tmp_path / "separated"], cut_percentile=20)
    assert res["png"].is_file() and res["png"].stat().st_size > 1000
    md = res["md"].read_text()
    assert "Spearman rho = 1.00" in md
    # organize's above_q2 keeps percentiles (20, 100]: s2..s9 (mean 11 dB); s0, s1 below (1 dB)
    assert "percentile (8): teacher's mean vocals/SI-SDR 11.00 dB; below it (2): 1.00 dB" in md
