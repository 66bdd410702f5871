import json
import math
import statistics

import numpy as np
import pytest

from bootsep.report.aggregate import METRICS, ResultsWarning, load_metadata, load_results
from bootsep.utils.errors import UserError


def _expected(values, how):
    vals = [v for v in values if v is not None and not math.isnan(v)]
    if not vals:
        return math.nan
    return statistics.median(vals) if how == "median" else statistics.fmean(vals)


@pytest.mark.parametrize("how", ["median", "mean"])
def test_channel_reduction_matches_independent_stats(make_run, random_scores, how):
    scores = random_scores(n_items=4, channels=3, seed=1)
    run = make_run(scores)
    df = load_results(run / "results", channel_aggregator=how)
    assert list(df.columns) == ["item", "source", *METRICS]
    assert len(df) == 4 * 2
    assert list(df["item"]) == sorted(df["item"])  # sorted by item then source
    for item, sources in scores.items():
        for source, metrics in sources.items():
            row = df[(df["item"] == item) & (df["source"] == source)]
            assert len(row) == 1
            for m, values in metrics.items():
                assert row[m].iloc[0] == pytest.approx(_expected(values, how), abs=1e-12)


def test_nan_channels_are_skipped_and_all_nan_stays_nan(make_run):
    scores = {"a": {"vocals": {"SI-SDR": [1.0, None, 5.0], "SNR": [None, None],
                               "SRR": [float("nan"), 2.0]}}}
    run = make_run(scores)
    df = load_results(run / "results")
    assert df.loc[0, "SI-SDR"] == pytest.approx(3.0)
    assert math.isnan(df.loc[0, "SNR"])
    assert df.loc[0, "SRR"] == pytest.approx(2.0)
    # missing metrics are simply absent columns; order follows METRICS
    assert list(df.columns) == ["item", "source", "SI-SDR", "SNR", "SRR"]


def test_scalar_values_and_extra_metrics(tmp_path):
    res = tmp_path / "results"
    res.mkdir()
    # scalar values, an unknown metric, no 'item' key
    (res / "x.json").write_text(json.dumps({
        "sources": {"vocals": {"SI-SDR": 2.5, "ZZZ": [1, 3]}, "accompaniment": {"SI-SDR": [4, 6]}},
        "permutation": [[0, 1]], "metadata": {"duration": 1.0}}))
    df = load_results(res)
    assert list(df.columns) == ["item", "source", "SI-SDR", "ZZZ"]
    assert list(df["source"]) == ["accompaniment", "vocals"]
    assert list(df["item"]) == ["x", "x"]  # item falls back to the file stem
    assert df["SI-SDR"].tolist() == [5.0, 2.5]
    assert df.attrs["metadata"] == {"x": {"duration": 1.0}}


def test_a_file_without_sources_is_skipped(make_run, scores):
    """Nothing writes source labels at the top level (no "sources" object): such a file is not
    read as one (its labels would be guessed from whatever objects it holds)."""
    run = make_run(scores)
    (run / "results" / "flat.json").write_text(json.dumps({
        "item": "flat", "vocals": {"SI-SDR": [2.5]}, "metadata": {"duration": 1.0}}))
    with pytest.warns(ResultsWarning, match=r"flat.json.*no 'sources' object"):
        df = load_results(run / "results")
    assert "flat" not in set(df["item"])


def test_malformed_files_warn_and_are_skipped(make_run, scores):
    run = make_run(scores)
    res = run / "results"
    (res / "broken.json").write_text('{"item": "broken", "sources": {')
    (res / "list.json").write_text("[1, 2, 3]")
    (res / "text.json").write_text(json.dumps(
        {"item": "text", "sources": {"vocals": {"SI-SDR": ["high"]}}}))
    (res / "nosrc.json").write_text(json.dumps({"item": "nosrc", "sources": {}}))
    with pytest.warns(ResultsWarning) as record:
        df = load_results(res)
    messages = " ".join(str(w.message) for w in record)
    for name in ("broken.json", "list.json", "text.json", "nosrc.json"):
        assert name in messages
    assert len(record) == 4
    assert sorted(df["item"].unique()) == sorted(scores)
    assert "broken" not in load_metadata(res)


def test_duplicate_item_is_warned_and_skipped(make_run, scores):
    run = make_run(scores)
    first = sorted(scores)[0]
    dup = json.loads((run / "results" / f"{first}.json").read_text())
    dup["sources"]["vocals"]["SI-SDR"] = [99.0, 99.0]
    (run / "results" / "zz_dup.json").write_text(json.dumps(dup))
    with pytest.warns(ResultsWarning, match="zz_dup.json"):
        df = load_results(run / "results")
    assert len(df) == 2 * len(scores)
    assert not np.any(df["SI-SDR"] == 99.0)


def test_empty_or_missing_folder_raises_user_error(tmp_path):
    (tmp_path / "results").mkdir()
    with pytest.raises(UserError, match="no results.*evaluate"):
        load_results(tmp_path / "results")
    with pytest.raises(UserError, match="evaluate"):
        load_results(tmp_path / "nope")


def test_only_malformed_files_raise_user_error(tmp_path):
    (tmp_path / "bad.json").write_text("{")
    with pytest.warns(ResultsWarning), pytest.raises(UserError, match="no results"):
        load_results(tmp_path)


def test_unknown_channel_aggregator(make_run, scores):
    run = make_run(scores)
    with pytest.raises(UserError, match="channel_aggregator"):
        load_results(run / "results", channel_aggregator="max")
