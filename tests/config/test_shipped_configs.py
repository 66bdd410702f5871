"""Every shipped .gin file parses, and the demo experiment runs end to end on tiny data."""

from __future__ import annotations

import csv
import json

import gin
import pytest

from bootsep.cli.main import parse_configs

from conftest import ROOT, run_main

SHIPPED = sorted(p for d in ("musdb", "wham") if (ROOT / d).is_dir()
                 for p in (ROOT / d).rglob("*.gin"))


def test_there_are_shipped_configs():
    assert any(p.parent.name == "demo" for p in SHIPPED)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(ROOT)))
def test_shipped_config_parses(path):
    gin.clear_config()
    parse_configs([path], [])


def test_no_absolute_paths_in_shipped_configs():
    for p in SHIPPED:
        for line in p.read_text().splitlines():
            code = line.split("#", 1)[0]
            assert "'/" not in code and '"/' not in code, f"{p}: absolute path in {line!r}"


DEMO = [ROOT / "musdb/demo/env.gin", ROOT / "musdb/demo/data.gin", ROOT / "musdb/demo/chimera.gin"]


def test_demo_experiment_end_to_end(tmp_path, tiny_demo):
    """The shipped demo configs, shrunk by --bind, run `all` and produce every output."""
    run = tmp_path / "run"
    binds = ["train.num_epochs = 1", "train.epoch_length = 2", "train.batch_size = 2",
             "train.num_workers = 0", "Chimera.hidden_size = 8", "Chimera.num_layers = 1",
             "train.progress = False", "evaluate.progress = False"]
    args = ["all", "-c", *DEMO, "-o", run]
    for b in binds:
        args += ["-b", b]
    r = run_main(args, env={"BOOTSEP_DEMO_ROOT": str(tiny_demo)})
    assert r.returncode == 0, r.stderr[-3000:]
    for name in ["config.gin", "report_card.txt", "metrics.csv", "report.html", "provenance.json",
                 "checkpoints/latest.pth", "checkpoints/best.pth", "evaluation.json"]:
        assert (run / name).is_file(), name
    assert list((run / "logs").glob("*.log"))
    assert list((run / "logs" / "tensorboard").glob("events.*"))
    results = sorted((run / "results").glob("*.json"))
    assert len(results) == 2  # two test songs
    rec = json.loads(results[0].read_text())
    assert set(rec["sources"]) == {"accompaniment", "vocals"}
    with open(run / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert {"item", "source", "SI-SDR", "SI-SDRi"} <= set(rows[0])
    assert len(rows) == 4
    prov = json.loads((run / "provenance.json").read_text())["invocations"][-1]
    assert prov["command"] == "all" and prov["status"] == "ok" and prov["end"]
    assert "torch" in prov["versions"] and "commit" in prov["git"]
    card = (run / "report_card.txt").read_text()
    assert "MEAN +/- STD OF METRICS" in card and "VOCALS" in card
    # evaluation resumes: a second evaluate skips the existing results
    mtimes = [p.stat().st_mtime_ns for p in results]
    r2 = run_main(["evaluate", "-c", *DEMO, "-o", run, *sum((["-b", b] for b in binds), [])],
                  env={"BOOTSEP_DEMO_ROOT": str(tiny_demo)})
    assert r2.returncode == 0, r2.stderr[-2000:]
    assert [p.stat().st_mtime_ns for p in results] == mtimes
