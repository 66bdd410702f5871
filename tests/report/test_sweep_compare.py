"""report.compare --sweep: table, plot and TensorBoard hparams of a 2x2 sweep."""

from __future__ import annotations

import json
from pathlib import Path

import gin
import pytest

from bootsep.cli.main import main as cli
from bootsep.report.compare import main as compare_main

SWEEP = ("train.batch_size = 4\nAutoClip.clip_percentile = 50\n"
         "sweep.parameters = {'AutoClip.clip_percentile': [10, 90], 'train.batch_size': [2, 8]}\n")


def _fake_evaluation(run: Path, setting: dict, items=("song0", "song1", "song2")) -> dict:
    """results/*.json as `evaluate` writes them; scores follow the setting (known means)."""
    base = setting["AutoClip.clip_percentile"] / 10 + setting["train.batch_size"]
    (run / "results").mkdir()
    for k, item in enumerate(items):
        sources = {"vocals": {"SI-SDR": [base + k, base + k], "SI-SDRi": [1.0, 1.0]},
                   "accompaniment": {"SI-SDR": [base - 1, base - 1], "SI-SDRi": [1.0, 1.0]}}
        (run / "results" / f"{item}.json").write_text(json.dumps(
            {"item": item, "sources": sources, "metadata": {}}))
    return {"vocals": base + 1, "accompaniment": base - 1}


@pytest.fixture
def sweep(tmp_path):
    cfg = tmp_path / "exp.gin"
    cfg.write_text(SWEEP)
    out = tmp_path / "sweep"
    gin.clear_config()
    assert cli(["instantiate", "-c", str(cfg), "-o", str(out)]) == 0
    gin.clear_config()
    return out


def _events(folder: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    acc = EventAccumulator(str(folder))
    acc.Reload()
    content = acc.PluginTagToContent("hparams")
    session = plugin_data_pb2.HParamsPluginData.FromString(
        content["_hparams_/session_start_info"]).session_start_info
    hparams = {k: v.number_value if v.HasField("number_value") else v.string_value
               for k, v in session.hparams.items()}
    scalars = {tag: acc.Scalars(tag)[-1].value for tag in acc.Tags()["scalars"]}
    return hparams, scalars


def test_sweep_comparison_table_plot_and_hparams(sweep, capsys):
    runs = sorted(p for p in sweep.iterdir() if p.is_dir())
    assert len(runs) == 4
    settings = json.loads((sweep / "sweep.json").read_text())["runs"]
    expected = {}
    for run in runs[:3]:  # the fourth is not evaluated yet
        expected[run.name] = _fake_evaluation(run, settings[run.name]["setting"])
    assert compare_main(["--sweep", str(sweep)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[-1] == str(sweep / "comparison.md")
    md = (sweep / "comparison.md").read_text()
    head = ("| run | AutoClip.clip_percentile | train.batch_size | accompaniment SI-SDR | "
            "vocals SI-SDR | mean SI-SDR | items |")
    assert head in md
    for name, means in expected.items():
        s = settings[name]["setting"]
        mean = (means["vocals"] + means["accompaniment"]) / 2
        row = (f"| {name} | {s['AutoClip.clip_percentile']} | {s['train.batch_size']} | "
               f"{means['accompaniment']:.2f} | {means['vocals']:.2f} | {mean:.2f} | 3 |")
        assert row in md, (row, md)
    assert f"| {runs[3].name} | 90 | 8 | n/a | n/a | not evaluated | 0 |" in md
    best = max(expected, key=lambda n: sum(expected[n].values()))
    assert f"Best: {best} " in md
    # rows ranked by the headline metric, unevaluated last
    order = [ln.split(" | ")[0][2:] for ln in md.splitlines() if ln.startswith("| run")][1:]
    assert order[-1] == runs[3].name
    png = sweep / "comparison.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    data = json.loads((sweep / "comparison.json").read_text())
    assert data["parameters"] == ["AutoClip.clip_percentile", "train.batch_size"]
    # TensorBoard HParams: one session per evaluated run, the swept values and final metrics
    for name, means in expected.items():
        hparams, scalars = _events(sweep / "hparams" / name)
        s = settings[name]["setting"]
        assert hparams == {"AutoClip.clip_percentile": s["AutoClip.clip_percentile"],
                           "train.batch_size": s["train.batch_size"]}
        assert scalars["final/SI-SDR/vocals"] == pytest.approx(means["vocals"])
        assert scalars["final/SI-SDR"] == pytest.approx(sum(means.values()) / 2)
    assert not (sweep / "hparams" / runs[3].name).exists()
    # a second comparison replaces its own events instead of adding sessions
    assert compare_main(["--sweep", str(sweep)]) == 0
    assert len(list((sweep / "hparams" / runs[0].name).glob("events.out.tfevents.*"))) == 1


def test_sweep_comparison_of_a_folder_without_runs_is_an_error(tmp_path, capsys):
    assert compare_main(["--sweep", str(tmp_path)]) == 2
    assert "no run*/ folders" in capsys.readouterr().err
