"""Reruns over existing run folders: evaluate resumes only the same model's results (stale ones
are moved aside, kept); train resumes only the same model."""

from __future__ import annotations

import json

from conftest import run_main


def test_more_training_then_all_again_re_evaluates_and_keeps_the_old_results(tmp_path,
                                                                              write_config):
    run = tmp_path / "run"
    cfg = write_config(**{"train.num_epochs": 1, "train.epoch_length": 2})
    r = run_main(["all", "-c", cfg, "-o", run])
    assert r.returncode == 0, r.stderr[-2000:]
    first = json.loads((run / "evaluation.json").read_text())
    assert first["checkpoint_epoch"] == 1 and len(first["separator_fingerprint"]) == 12
    old_results = {p.name: p.read_text() for p in (run / "results").glob("*.json")}
    assert len(old_results) == 2

    # the same command again: nothing to redo, the results stay
    r = run_main(["evaluate", "-c", cfg, "-o", run])
    assert r.returncode == 0, r.stderr[-2000:]
    assert not (run / "previous_evaluations").exists()

    # training goes on to epoch 2: the epoch-1 results must not be reported as epoch 2's
    more = write_config("more.gin", **{"train.num_epochs": 2, "train.epoch_length": 2})
    r = run_main(["all", "-c", more, "-o", run])
    assert r.returncode == 0, r.stderr[-2000:]
    second = json.loads((run / "evaluation.json").read_text())
    assert second["checkpoint_epoch"] == 2
    assert second["separator_fingerprint"] != first["separator_fingerprint"]
    kept = run / "previous_evaluations" / f"1_{first['separator_fingerprint']}"
    assert {p.name: p.read_text() for p in (kept / "results").glob("*.json")} == old_results
    assert (kept / "report_card.txt").is_file() and (kept / "evaluation.json").is_file()
    assert len(list((run / "results").glob("*.json"))) == 2
    assert (run / "report_card.txt").is_file()
    assert "moved them to" in r.stdout + r.stderr


def test_resuming_with_another_model_config_is_a_clear_error(tmp_path, write_config):
    run = tmp_path / "run"
    cfg = write_config(**{"train.num_epochs": 1, "train.epoch_length": 1})
    r = run_main(["train", "-c", cfg, "-o", run])
    assert r.returncode == 0, r.stderr[-2000:]
    r = run_main(["train", "-c", cfg, "-o", run, "-b", "Chimera.hidden_size = 8",
                  "-b", "train.num_epochs = 2"])
    assert r.returncode == 2
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and "hidden_size: 16 -> 8" in err[0] and "another -o folder" in err[0]
    r = run_main(["train", "-c", cfg, "-o", run, "-b", "train.model = @MaskInference",
                  "-b", "MaskInference.num_features = 129"])
    assert r.returncode == 2 and "holds a bootsep.models" in r.stderr


def test_a_second_training_of_a_run_folder_in_use_is_refused(tmp_path, write_config):
    """Two trainings writing one run folder would interleave their checkpoints: while one
    holds the folder's training lock, another gets one error line naming its pid."""
    import fcntl
    import os

    run = tmp_path / "run"
    run.mkdir()
    cfg = write_config(**{"train.num_epochs": 1, "train.epoch_length": 1})
    with open(run / ".train.lock", "a+") as f:  # what a running training holds
        fcntl.flock(f, fcntl.LOCK_EX)
        f.write(str(os.getpid()))
        f.flush()
        r = run_main(["train", "-c", cfg, "-o", run])
        assert r.returncode == 2
        err = r.stderr.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ")
        assert f"pid {os.getpid()}" in err[0] and "another output folder" in err[0]
        assert not (run / "checkpoints").exists()
    # released (the holder ended): the same command trains
    r = run_main(["train", "-c", cfg, "-o", run])
    assert r.returncode == 0, r.stderr[-2000:]
    assert (run / "checkpoints" / "latest.pth").is_file()
