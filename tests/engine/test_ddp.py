"""torchrun with 2 CPU processes (gloo) trains like one process with the same global batch."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
import torch

from bootsep.engine.checkpoint import checkpoint_path, load_checkpoint

from conftest import ROOT, tiny_config


def _run(args, timeout=300):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    r = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    return r


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("torchrun") is None and
                    not os.path.exists(os.path.join(os.path.dirname(sys.executable), "torchrun")),
                    reason="torchrun not installed")
def test_torchrun_two_processes_match_single_process_and_resume(tmp_path, tiny_demo):
    # dropout 0: the only difference between the runs is how the global batch is split
    cfg = tmp_path / "c.gin"
    cfg.write_text(tiny_config(tiny_demo, **{"train.batch_size": 4, "train.num_epochs": 2,
                                             "train.epoch_length": 3}))
    single, ddp = tmp_path / "single", tmp_path / "ddp"
    main = str(ROOT / "main.py")
    _run([sys.executable, main, "train", "-c", cfg, "-o", single])
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    _run([*torchrun, main, "train", "-c", cfg, "-o", ddp])
    a = load_checkpoint(checkpoint_path(single, "latest"))
    b = load_checkpoint(checkpoint_path(ddp, "latest"))
    assert b["world_size"] == 2 and a["world_size"] == 1
    for k, v in a["model"]["state_dict"].items():
        torch.testing.assert_close(b["model"]["state_dict"][k], v, rtol=1e-4, atol=1e-5)
    # epoch means are averaged over ranks, so they match the single process too
    assert b["history"][-1]["train"]["loss"] == pytest.approx(a["history"][-1]["train"]["loss"],
                                                              rel=1e-4)
    # one writer: one log file, one provenance record, no temp files left behind
    assert len(list((ddp / "logs").glob("*.log"))) == 1
    assert len(json.loads((ddp / "provenance.json").read_text())["invocations"]) == 1
    assert not [p for p in (ddp / "checkpoints").iterdir() if p.name.startswith(".")]
    # resume under DDP: the same command with more epochs continues from latest.pth
    cfg.write_text(tiny_config(tiny_demo, **{"train.batch_size": 4, "train.num_epochs": 3,
                                             "train.epoch_length": 3}))
    r = _run([*torchrun, main, "train", "-c", cfg, "-o", ddp])
    c = load_checkpoint(checkpoint_path(ddp, "latest"))
    assert c["epoch"] == 3 and [h["epoch"] for h in c["history"]] == [1, 2, 3]
    assert "resuming from" in r.stdout + r.stderr
