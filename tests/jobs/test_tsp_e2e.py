"""instantiate's run.sh, queued in a real task-spooler, runs both sweep runs to report cards."""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import pytest

from bootsep.cli.main import main

from conftest import tiny_config

TSP = shutil.which("tsp")


@pytest.mark.slow
@pytest.mark.skipif(TSP is None, reason="task-spooler (tsp) not installed; `make test` installs it")
def test_run_sh_under_real_tsp(tmp_path, tiny_demo):
    cfg = tmp_path / "exp.gin"
    cfg.write_text(tiny_config(tiny_demo, **{"train.num_epochs": 1, "train.epoch_length": 2})
                   + "sweep.parameters = {'AutoClip.clip_percentile': [10, 50]}\n")
    sweep = tmp_path / "sweep"
    assert main(["instantiate", "-c", str(cfg), "-o", str(sweep)]) == 0
    runs = sorted(p for p in sweep.iterdir() if p.is_dir())
    assert [r.name for r in runs] == ["run0:clip_percentile_10", "run1:clip_percentile_50"]
    env = dict(os.environ, TS_SOCKET=str(tmp_path / "tsp.sock"), TS_SAVELIST=str(tmp_path / "tsl"),
               TMPDIR=str(tmp_path), ALLOCATE_FLAGS="--allow-cpu", OMP_NUM_THREADS="1")
    try:
        subprocess.run([TSP, "-S", "2"], env=env, check=True, capture_output=True)
        r = subprocess.run(["sh", str(sweep / "run.sh")], env=env, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        assert r.stdout.count("queued") == 2
        deadline = time.time() + 540
        finished = []
        while time.time() < deadline:
            table = subprocess.run([TSP], env=env, capture_output=True, text=True).stdout
            finished = [ln for ln in table.splitlines() if " finished " in ln]
            if len(finished) == 2:
                break
            time.sleep(1)
        assert len(finished) == 2, table
        for run in runs:
            assert (run / "report_card.txt").is_file(), table
        # allocate.py propagated the runs' exit codes: both jobs finished with E-Level 0
        assert all(ln.split()[3] == "0" for ln in finished), table
    finally:
        subprocess.run([TSP, "-K"], env=env, capture_output=True)
