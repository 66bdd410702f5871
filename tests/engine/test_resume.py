"""An interrupted training run, resumed, ends where an uninterrupted one does."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest
import torch

from bootsep.engine.checkpoint import checkpoint_path, load_checkpoint

from conftest import ROOT, tiny_config
from conftest import train_config as _train


def test_resume_matches_uninterrupted_run(tmp_path, tiny_demo):
    cfg = tmp_path / "c.gin"
    cfg.write_text(tiny_config(tiny_demo))
    full, broken = tmp_path / "full", tmp_path / "broken"
    _train(cfg, full)
    _train(cfg, broken, crash_at=6)  # dies mid-epoch 2 (epoch_length 4)
    assert load_checkpoint(checkpoint_path(broken, "latest"))["epoch"] == 1
    _train(cfg, broken)  # the same command again resumes
    a = load_checkpoint(checkpoint_path(full, "latest"))
    b = load_checkpoint(checkpoint_path(broken, "latest"))
    assert a["epoch"] == b["epoch"] == 3
    assert [h["epoch"] for h in b["history"]] == [1, 2, 3]
    for k, v in a["model"]["state_dict"].items():
        torch.testing.assert_close(v, b["model"]["state_dict"][k], rtol=1e-5, atol=1e-6)
    assert a["history"][-1]["train"]["loss"] == pytest.approx(b["history"][-1]["train"]["loss"],
                                                              rel=1e-5)
    # a finished run is not trained again
    _train(cfg, broken)
    assert load_checkpoint(checkpoint_path(broken, "latest"))["iteration"] == b["iteration"]


@pytest.mark.slow
def test_killed_process_resumes_to_configured_epochs(tmp_path, tiny_demo):
    cfg = tmp_path / "c.gin"
    cfg.write_text(tiny_config(tiny_demo, **{"train.num_epochs": 6, "train.epoch_length": 6}))
    run = tmp_path / "run"
    cmd = [sys.executable, str(ROOT / "main.py"), "train", "-c", str(cfg), "-o", str(run)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    latest = checkpoint_path(run, "latest")
    deadline = time.time() + 240
    while not latest.is_file() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = load_checkpoint(latest)["epoch"]
    assert done < 6, "the run finished before it could be killed"
    r = subprocess.run([sys.executable, str(ROOT / "main.py"), "resume", "-c", str(cfg), "-o",
                        str(run)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    ckpt = load_checkpoint(latest)
    assert ckpt["epoch"] == 6
    assert [h["epoch"] for h in ckpt["history"]] == list(range(1, 7))
    assert (run / "report_card.txt").is_file()
    assert f"resuming from {latest}" in r.stdout
