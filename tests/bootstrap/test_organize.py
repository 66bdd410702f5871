"""organize: percentile bins, the top item, collection filters, links, manifest, --force."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest

from bootsep.bootstrap.organize import (
    BINS,
    bins_table,
    load_segments,
    organize,
    percentile_range,
    percentiles,
    select_segments,
)
from bootsep.utils.errors import UserError

from ._fakes import tree


def fake_separated(folder: Path, confidences: dict, collection="train", labels=("a", "v"),
                   metrics=True) -> Path:
    """A separate output with one segment per ``{name: confidence}`` (estimates are tiny
    files with distinct content)."""
    for name, c in confidences.items():
        paths = {}
        for label in labels:
            rel = f"audio/{label}/{name}.wav"
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            (folder / rel).write_text(f"{label}:{name}")
            paths[label] = rel
        rec = {"item": name, "confidence": {"combined": c, "fixed_posterior": 1.0 - c},
               "sources": {"vocals": {"SI-SDR": [10 * c, 10 * c + 2]}} if metrics else {},
               "metadata": {"collection": collection, "estimate_paths": paths}}
        (folder / "results").mkdir(parents=True, exist_ok=True)
        (folder / "results" / f"{name}.json").write_text(json.dumps(rec))
    return folder


def test_percentile_ranks_and_named_ranges():
    assert percentiles([0.3, 0.1, 0.2, 0.4], list("abcd")) == [75.0, 25.0, 50.0, 100.0]
    assert percentiles([1.0, 1.0, 0.5], ["z", "a", "m"]) == pytest.approx([100, 200 / 3, 100 / 3])
    assert percentile_range("Q3") == (40.0, 60.0)
    assert percentile_range("above_q2") == (20.0, 100.0)
    assert percentile_range("above_q4") == (60.0, 100.0)
    assert percentile_range(None, 10, 90) == (10.0, 90.0)
    for bad in [dict(bin="Q6"), dict(bin=None, p_min=50, p_max=40),
                dict(bin=None, p_min=-1), dict(bin="Q1", p_min=1)]:
        with pytest.raises(UserError):
            percentile_range(**bad)


@pytest.mark.parametrize("n", [1, 4, 5, 7, 10, 23])
def test_quintiles_partition_and_keep_the_top_item(tmp_path, n):
    rng = np.random.default_rng(n)
    conf = {f"s{i:02d}": float(c) for i, c in enumerate(rng.random(n))}
    df = load_segments(fake_separated(tmp_path / "sep", conf), "combined")
    parts = [set(select_segments(df, *BINS[q])["segment"]) for q in ("Q1", "Q2", "Q3", "Q4", "Q5")]
    assert set().union(*parts) == set(conf) and sum(map(len, parts)) == n  # a partition
    if n >= 5:
        assert max(map(len, parts)) - min(map(len, parts)) <= 1
    top = max(conf, key=conf.get)
    assert top in parts[4]
    assert top in set(select_segments(df, *BINS["above_q2"])["segment"])
    # brute force: Q_k (k = 1..5) holds the items whose rank r has 20(k-1) < 100 (r+1) / n <= 20 k
    ranked = sorted(conf, key=lambda s: (conf[s], s))
    for k, part in enumerate(parts):
        assert part == {s for r, s in enumerate(ranked)
                        if 20 * k < 100 * (r + 1) / n <= 20 * (k + 1)}
    if n >= 5:
        assert ranked[0] in parts[0]
    # the bins are ordered by confidence
    for lo, hi in zip(parts, parts[1:]):
        if lo and hi:
            assert max(conf[s] for s in lo) <= min(conf[s] for s in hi)


def test_boundaries_of_ten_items(tmp_path):
    conf = {f"s{i}": i / 10 for i in range(10)}
    df = load_segments(fake_separated(tmp_path / "sep", conf), "combined")
    pick = lambda lo, hi: sorted(select_segments(df, lo, hi)["segment"])  # noqa: E731
    assert pick(*BINS["Q1"]) == ["s0", "s1"]
    assert pick(*BINS["Q5"]) == ["s8", "s9"]
    assert pick(*BINS["above_q2"]) == [f"s{i}" for i in range(2, 10)]
    assert pick(*BINS["above_q4"]) == [f"s{i}" for i in range(6, 10)]
    assert pick(30, 50) == ["s3", "s4"]     # percentiles 10, 20, ..., 100: (30, 50]
    assert pick(40, 50) == ["s4"]           # lower bound exclusive, upper inclusive
    assert pick(95, 100) == ["s9"]          # the top item, inclusive at 100


def test_collection_filter_is_exact_and_percentiles_are_within_it(tmp_path):
    a = fake_separated(tmp_path / "a", {f"pop{i}": i / 10 for i in range(5)}, collection="pop")
    b = fake_separated(tmp_path / "b", {f"pop2_{i}": 0.5 + i / 10 for i in range(5)},
                       collection="pop2")
    df = load_segments([a, b], "combined")
    only = select_segments(df, 60, 100, collections=["pop"])
    assert sorted(only["segment"]) == ["pop3", "pop4"]  # 'pop' does not match 'pop2'
    with pytest.raises(UserError, match="not found"):
        select_segments(df, 0, 100, collections=["rock"])
    with pytest.raises(UserError, match="both"):
        load_segments([a, a], "combined")
    with pytest.raises(UserError, match="measure"):
        load_segments(a, "nope")


def test_organize_writes_links_and_manifest_and_touches_nothing_else(tmp_path):
    conf = {f"s{i}": i / 10 for i in range(10)}
    sep = fake_separated(tmp_path / "sep", conf)
    (tmp_path / "bystander.txt").write_text("keep me")
    before = tree(tmp_path)
    dest = tmp_path / "data" / "above_q2"
    summary = organize(sep, dest, measure="combined", bin="above_q2")
    assert summary["segments_selected"] == 8 and summary["files"] == 16
    assert summary["mean_metrics"]["vocals/SI-SDR"] == pytest.approx(
        np.mean([10 * (i / 10) + 1 for i in range(2, 10)]))
    for label in ("a", "v"):
        files = sorted(p.name for p in (dest / label).iterdir())
        assert files == [f"s{i}.wav" for i in range(2, 10)]
        link = dest / label / "s9.wav"
        assert link.is_symlink() and link.read_text() == f"{label}:s9"
        assert Path(os.readlink(link)) == (sep / "audio" / label / "s9.wav").resolve()
    with open(dest / "manifest.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 16 and {r["path"] for r in rows} == {
        f"{lab}/s{i}.wav" for lab in "av" for i in range(2, 10)}
    assert json.loads((dest / "organize.json").read_text())["p_min"] == 20.0
    after = tree(tmp_path)
    assert {k: v for k, v in after.items() if not k.startswith(str(tmp_path / "data"))} == before
    # copies instead of links
    organize(sep, tmp_path / "copies", measure="combined", bin="Q5", link="copy")
    c = tmp_path / "copies" / "v" / "s9.wav"
    assert not c.is_symlink() and c.read_text() == "v:s9"


def test_force_replaces_only_what_the_manifest_lists(tmp_path):
    sep = fake_separated(tmp_path / "sep", {f"s{i}": i / 10 for i in range(10)})
    dest = tmp_path / "dest"
    organize(sep, dest, measure="combined", bin="Q5")
    foreign = dest / "v" / "mine.wav"
    foreign.write_text("user file")
    (dest / "notes.txt").write_text("user notes")
    outside = tree(tmp_path / "sep")
    with pytest.raises(UserError, match="--force"):
        organize(sep, dest, measure="combined", bin="Q1")
    assert sorted(p.name for p in (dest / "v").iterdir()) == ["mine.wav", "s8.wav", "s9.wav"]
    organize(sep, dest, measure="combined", bin="Q1", force=True)
    assert sorted(p.name for p in (dest / "v").iterdir()) == ["mine.wav", "s0.wav", "s1.wav"]
    assert sorted(p.name for p in (dest / "a").iterdir()) == ["s0.wav", "s1.wav"]
    assert foreign.read_text() == "user file" and (dest / "notes.txt").read_text() == "user notes"
    assert tree(tmp_path / "sep") == outside  # the estimates themselves are never touched
    # a file in the way that the manifest does not list is never replaced
    (dest / "a" / "s9.wav").write_text("in the way")
    with pytest.raises(UserError, match="not listed"):
        organize(sep, dest, measure="combined", bin="Q5", force=True)
    assert (dest / "a" / "s9.wav").read_text() == "in the way"


def test_refuses_foreign_or_file_destinations_and_bad_manifests(tmp_path):
    sep = fake_separated(tmp_path / "sep", {"s0": 0.1, "s1": 0.9})
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "x.txt").write_text("x")
    for force in (False, True):
        with pytest.raises(UserError, match="not written by organize"):
            organize(sep, foreign, measure="combined", bin="all", force=force)
    assert (foreign / "x.txt").read_text() == "x" and len(list(foreign.iterdir())) == 1
    (tmp_path / "afile").write_text("x")
    with pytest.raises(UserError, match="not a folder"):
        organize(sep, tmp_path / "afile", measure="combined")
    # a tampered manifest pointing outside the destination is refused, nothing deleted
    dest = tmp_path / "dest"
    organize(sep, dest, measure="combined", bin="all")
    victim = tmp_path / "victim.wav"
    victim.write_text("precious")
    with open(dest / "manifest.csv", "a") as f:
        f.write("../victim.wav,a,s9,train,0.5,50,/x\n")
    with pytest.raises(UserError, match="not inside"):
        organize(sep, dest, measure="combined", bin="all", force=True)
    assert victim.read_text() == "precious"
    # an empty range and missing estimates are clear errors
    empty = tmp_path / "e"
    with pytest.raises(UserError, match="no segment"):
        organize(fake_separated(tmp_path / "one", {"only": 0.5}), empty, measure="combined",
                 bin=None, p_min=50, p_max=60)
    (sep / "audio" / "v" / "s1.wav").unlink()
    with pytest.raises(UserError, match="missing"):
        organize(sep, tmp_path / "m", measure="combined", bin="Q5")
    assert not (tmp_path / "m").exists() and not empty.exists()


def test_bins_table_reports_quality_per_quintile(tmp_path):
    sep = fake_separated(tmp_path / "sep", {f"s{i}": i / 10 for i in range(10)})
    table = bins_table(sep, "combined")
    assert [r["bin"] for r in table] == ["Q1", "Q2", "Q3", "Q4", "Q5"]
    assert [r["segments"] for r in table] == [2] * 5
    assert [r["vocals/SI-SDR"] for r in table] == pytest.approx([1.5, 3.5, 5.5, 7.5, 9.5])


def _append_row(dest: Path, path: str) -> None:
    with open(dest / "manifest.csv", "a") as f:
        f.write(f"{path},a,s9,train,0.5,50,/x\n")


@pytest.mark.parametrize("row", ["../victim.wav", "a/../../victim.wav", "{victim}",
                                 "escape/victim.wav", "."])
def test_force_refuses_any_manifest_row_that_leaves_the_destination(tmp_path, row):
    sep = fake_separated(tmp_path / "sep", {f"s{i}": i / 10 for i in range(4)})
    dest = tmp_path / "dest"
    organize(sep, dest, measure="combined", bin="all")
    victim = tmp_path / "victim.wav"
    victim.write_text("precious")
    (dest / "escape").symlink_to(tmp_path, target_is_directory=True)  # a folder leading out
    _append_row(dest, row.format(victim=victim))
    before = tree(tmp_path / "sep"), tree(dest), victim.read_text()
    with pytest.raises(UserError, match=r"manifest.csv lists .*, which is not inside .*dest "
                                        r"\(.*\); refusing to touch anything"):
        organize(sep, dest, measure="combined", bin="Q5", force=True)
    # nothing removed, not even the rows listed before the hostile one
    assert (tree(tmp_path / "sep"), tree(dest), victim.read_text()) == before


def test_item_names_and_estimate_paths_from_result_jsons_cannot_leave(tmp_path):
    sep = tmp_path / "sep"
    fake_separated(sep, {"ok": 0.9})
    hostile = {"item": "../../../evil", "confidence": {"combined": 0.8},
               "metadata": {"collection": "train",
                            "estimate_paths": {"../../x": "audio/a/ok.wav", "v": "audio/v/ok.wav"}}}
    (sep / "results" / "zz.json").write_text(json.dumps(hostile))
    (sep / "results" / "ok.json").write_text(json.dumps({**hostile, "item": "ok"}))
    outside = tree(tmp_path)
    dest = tmp_path / "deep" / "dest"
    organize(sep, dest, measure="combined", bin="all", labels=["../../x", "v"])
    written = {str(p.relative_to(dest)) for p in dest.rglob("*") if not p.is_dir()}
    assert written == {"manifest.csv", "organize.json", "___.._x/ok.wav", "v/ok.wav",
                       "___.._x/___.._.._evil.wav", "v/___.._.._evil.wav"}
    assert {k: v for k, v in tree(tmp_path).items() if not k.startswith(str(dest))} == \
        {**outside, str(tmp_path / "deep"): ("dir",)}
    # an estimate path that points out of its separate folder is refused
    hostile["metadata"]["estimate_paths"] = {"v": "../../../etc/passwd"}
    (sep / "results" / "zz.json").write_text(json.dumps(hostile))
    with pytest.raises(UserError, match=r"zz.json gives estimate path '../../../etc/passwd', "
                                        r"which is not inside"):
        organize(sep, tmp_path / "d2", measure="combined", bin="all")
    assert not (tmp_path / "d2").exists()


def test_a_label_folder_that_is_a_symlink_is_refused(tmp_path):
    sep = fake_separated(tmp_path / "sep", {f"s{i}": i / 10 for i in range(10)})
    dest, elsewhere = tmp_path / "dest", tmp_path / "elsewhere"
    organize(sep, dest, measure="combined", bin="Q5")
    elsewhere.mkdir()
    (dest / "v").rename(elsewhere / "v")
    (dest / "v").symlink_to(elsewhere / "v", target_is_directory=True)
    before = tree(elsewhere), tree(dest)
    with pytest.raises(UserError, match=r"dest/v is a link or a file, not a folder of"):
        organize(sep, dest, measure="combined", bin="Q1", force=True)
    assert (tree(elsewhere), tree(dest)) == before


def test_unreadable_result_jsons_and_manifests_are_user_errors(tmp_path):
    sep = fake_separated(tmp_path / "sep", {f"s{i}": i / 10 for i in range(5)})
    dest = tmp_path / "dest"
    organize(sep, dest, measure="combined", bin="all")
    (dest / "manifest.csv").write_bytes(b"\xff\xfe\x00garbage")
    before = tree(dest)
    with pytest.raises(UserError, match=r"manifest.csv cannot be read .*nothing is replaced"):
        organize(sep, dest, measure="combined", bin="Q5", force=True)
    assert tree(dest) == before
    (sep / "results" / "s0.json").write_text("{not json")
    with pytest.raises(UserError, match=r"s0.json is not a readable result JSON"):
        organize(sep, tmp_path / "d2", measure="combined", bin="all")
    (sep / "results" / "s0.json").write_text("[1, 2]")
    with pytest.raises(UserError, match=r"s0.json is not a result JSON of `separate`"):
        organize(sep, tmp_path / "d2", measure="combined", bin="all")
    assert not (tmp_path / "d2").exists()
