"""instantiate: cartesian sweeps, run folder names, self-contained configs, run.sh, refusals."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess

import gin
import pytest

from bootsep.cli.main import main
from bootsep.config.sweep import expand_sweep, sanitize
from bootsep.utils.errors import UserError


def test_sanitize_matches_reference_rules():
    assert sanitize("clip_percentile:10") == "clip_percentile_10"
    assert sanitize("Value:[1, 2]_name:'A B'") == "value_1_2_name_ab"
    assert sanitize("x:{a}\\") == "x_a"


def test_expand_is_sorted_cartesian_product():
    out = expand_sweep({"b.y": [1, 2], "a.x": ["p", "q", "r"]})
    assert len(out) == 6
    assert out[0] == ("x_p_y_1", {"a.x": "p", "b.y": 1})
    assert out[-1] == ("x_r_y_2", {"a.x": "r", "b.y": 2})
    assert expand_sweep(None) == [("", {})]


@pytest.mark.parametrize("bad", [{}, [1, 2], {"a.x": []}, {"nodot": [1]}, {"a.x": 3}, "a.x"])
def test_malformed_sweep_is_an_error(bad):
    with pytest.raises(UserError):
        expand_sweep(bad)


def _cfg(tmp_path, text):
    p = tmp_path / "exp.gin"
    p.write_text(text)
    return p


BASE = """
train.batch_size = 4
AutoClip.clip_percentile = 50
MY_MACRO = 7
train.num_epochs = %MY_MACRO
"""


def test_instantiate_writes_runs_configs_and_run_sh(tmp_path, capsys):
    cfg = _cfg(tmp_path, BASE + "sweep.parameters = {'AutoClip.clip_percentile': [1, 10], "
                                "'train.batch_size': [2]}\n")
    out = tmp_path / "sweep"
    assert main(["instantiate", "-c", str(cfg), "-o", str(out)]) == 0
    runs = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert runs == ["run0:clip_percentile_1_batch_size_2", "run1:clip_percentile_10_batch_size_2"]
    text = (out / runs[1] / "config.gin").read_text()
    assert f"output_folder._output_folder = '{out / runs[1]}'" in text
    assert "AutoClip.clip_percentile = 10" in text
    assert "MY_MACRO = 7" in text and "%MY_MACRO" in text
    assert "sweep.parameters = None" in text  # re-instantiating a compiled config cannot re-sweep
    # the compiled config is self-contained: it parses alone and reproduces the bindings
    gin.clear_config()
    from bootsep.cli.main import parse_configs

    parse_configs([out / runs[1] / "config.gin"], [])
    assert gin.query_parameter("AutoClip.clip_percentile") == 10
    assert gin.query_parameter("train.batch_size") == 2
    sh = (out / "run.sh").read_text()
    assert sh.startswith("#!/bin/sh")
    for r in runs:
        cfg_arg = shlex.quote(str(out / r / "config.gin"))
        assert f"allocate.py $ALLOCATE_FLAGS 1 \"$PY\" main.py all -c {cfg_arg}" in sh
    # a second instantiate continues the numbering (run.sh does not count) and never overwrites
    gin.clear_config()
    cfg2 = _cfg(tmp_path, BASE)
    assert main(["instantiate", "-c", str(cfg2), "-o", str(out)]) == 0
    assert (out / "run2").is_dir()
    sh2 = (out / "run.sh").read_text()
    for r in runs + ["run2"]:  # run.sh is rewritten for every run of the folder, once each
        assert sh2.count(f"main.py all -c {shlex.quote(str(out / r / 'config.gin'))}") == 1


def test_bad_sweep_key_writes_nothing(tmp_path, capsys):
    cfg = _cfg(tmp_path, BASE + "sweep.parameters = {'NoSuch.param': [1, 2]}\n")
    out = tmp_path / "sweep"
    assert main(["instantiate", "-c", str(cfg), "-o", str(out)]) == 2
    assert "NoSuch.param" in capsys.readouterr().err
    assert not out.exists() or not any(out.iterdir())


def test_malformed_sweep_via_cli(tmp_path, capsys):
    cfg = _cfg(tmp_path, BASE + "sweep.parameters = {'train.batch_size': 3}\n")
    assert main(["instantiate", "-c", str(cfg), "-o", str(tmp_path / "s")]) == 2
    assert "non-empty list" in capsys.readouterr().err


def test_slurm_launcher_writes_array_script(tmp_path):
    cfg = _cfg(tmp_path, BASE + "sweep.parameters = {'train.batch_size': [1, 2, 3]}\n")
    out = tmp_path / "s"
    assert main(["instantiate", "-c", str(cfg), "-o", str(out), "--launcher", "slurm",
                 "--gpus-per-run", "2"]) == 0
    text = (out / "sbatch.sh").read_text()
    assert "#SBATCH --array=0-2" in text and "--gres=gpu:2" in text
    assert text.count("config.gin") == 3 and "nproc_per_node=2" in text


def test_gpus_per_run_launches_torchrun_in_run_sh(tmp_path):
    cfg = _cfg(tmp_path, BASE + "sweep.parameters = {'train.batch_size': [1, 2]}\n")
    out = tmp_path / "s"
    assert main(["instantiate", "-c", str(cfg), "-o", str(out), "--gpus-per-run", "2"]) == 0
    gin.clear_config()
    assert main(["instantiate", "-c", str(_cfg(tmp_path, BASE)), "-o", str(out)]) == 0
    lines = [ln for ln in (out / "run.sh").read_text().splitlines() if ln.startswith("queue ")]
    assert len(lines) == 3
    for ln in lines[:2]:
        assert ('allocate.py $ALLOCATE_FLAGS 2 "$PY" -m torch.distributed.run --standalone '
                '--nproc_per_node=2 main.py all -c') in ln
    assert 'allocate.py $ALLOCATE_FLAGS 1 "$PY" main.py all -c' in lines[2]
    assert "torch.distributed" not in lines[2]
    runs = json.loads((out / "sweep.json").read_text())["runs"]
    assert runs["run0:batch_size_1"] == {"setting": {"train.batch_size": 1}, "gpus_per_run": 2}
    assert runs["run2"] == {"setting": {}, "gpus_per_run": 1}


def test_run_sh_follows_the_umask(tmp_path):
    old = os.umask(0o002)
    try:
        assert main(["instantiate", "-c", str(_cfg(tmp_path, BASE)), "-o", str(tmp_path / "s")]) == 0
    finally:
        os.umask(old)
    assert (tmp_path / "s" / "run.sh").stat().st_mode & 0o777 == 0o775


@pytest.mark.skipif(shutil.which("tsp") is None, reason="task-spooler (tsp) not installed")
def test_instantiate_twice_then_run_sh_queues_each_run_once(tmp_path):
    """A real tsp server with one slot kept busy: run.sh queues every run once, and running it
    again (or after another instantiate) queues nothing twice; finished runs are skipped."""
    out = tmp_path / "sweep"
    cfg = _cfg(tmp_path, BASE + "sweep.parameters = {'AutoClip.clip_percentile': [1, 10]}\n")
    assert main(["instantiate", "-c", str(cfg), "-o", str(out)]) == 0
    gin.clear_config()
    assert main(["instantiate", "-c", str(cfg), "-o", str(out)]) == 0
    names = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert len(names) == 4
    (out / names[3] / "report_card.txt").write_text("done\n")  # a finished run
    removed = out / "run9:removed"  # a run folder deleted after instantiate: nothing queued
    removed.mkdir()
    (removed / "config.gin").write_text("")
    gin.clear_config()
    assert main(["instantiate", "-c", str(_cfg(tmp_path, BASE)), "-o", str(out)]) == 0
    (removed / "config.gin").unlink()
    removed.rmdir()
    names.append("run5")
    env = dict(os.environ, TS_SOCKET=str(tmp_path / "ts.sock"), TS_SAVELIST=str(tmp_path / "tsl"),
               TMPDIR=str(tmp_path), BOOTSEP_PYTHON="/bin/echo")
    tsp = ["tsp"]
    try:
        subprocess.run(tsp + ["-S", "1"], env=env, check=True, capture_output=True)
        subprocess.run(tsp + ["sleep", "60"], env=env, check=True, capture_output=True)  # busy
        for _ in range(2):
            r = subprocess.run(["sh", str(out / "run.sh")], env=env, capture_output=True,
                               text=True, timeout=60)
            assert r.returncode == 0, r.stderr
        table = subprocess.run(tsp, env=env, capture_output=True, text=True).stdout
        queued = [ln for ln in table.splitlines() if " queued " in ln]
        for name in names[:3] + names[4:]:
            assert sum(f"[{name}]" in ln for ln in queued) == 1, table
        assert "[run9:removed]" not in table and "removed?" in r.stderr
        assert not any(f"[{names[3]}]" in ln for ln in queued), table
        assert "already queued" in r.stdout and f"finished {names[3]}" in r.stdout
    finally:
        subprocess.run(tsp + ["-K"], env=env, capture_output=True)
