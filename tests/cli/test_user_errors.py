"""The user mistakes that used to end in a traceback or a silent loss: each is one ``error:``
line and exit code 2, and a failed invocation leaves the run folder as it was."""

from __future__ import annotations

import gin
import pytest
import torch

from bootsep.cli.main import main
from bootsep.engine import trainer as trainer_mod
from bootsep.engine.checkpoint import checkpoint_path, load_checkpoint


def _error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    assert "In call to configurable" not in err, err
    return err


def _train(cfg, run, *binds, force=False):
    gin.clear_config()  # each in-process invocation parses its configs afresh, as a new process
    args = ["train", "-c", str(cfg), "-o", str(run)]
    for b in binds:
        args += ["-b", b]
    return main(args + (["--force"] if force else []))


@pytest.mark.parametrize("binding, named", [
    ("train.num_epochs = 'two'", "train.num_epochs = 'two': expected int, got str"),
    ("train.batch_size = 2.5", "train.batch_size = 2.5: expected int, got float"),
    ("train.batch_size = 0", "train.batch_size = 0: must be an integer >= 1"),
    ("Chimera.hidden_size = 'big'", "Chimera.hidden_size = 'big': expected int, got str"),
    ("Chimera.rnn_type = 'cnn'", "cnn"),
    ("torch.optim.Adam.lr = 'fast'", "cannot build the optimizer/scheduler (Adam"),
    ("train.scheduler = @torch.optim.lr_scheduler.StepLR", "missing gin binding(s): StepLR.step_size"),
    ("train.device = 'tpu'", "device 'tpu' is not a torch device"),
])
def test_a_binding_of_the_wrong_type_is_one_line_and_freezes_nothing(tmp_path, write_config,
                                                                     capsys, binding, named):
    cfg = write_config(**{"train.num_epochs": 1, "train.epoch_length": 1})
    run = tmp_path / "run"
    assert _train(cfg, run, binding) == 2
    err = _error(capsys)
    assert named in err and "divisible" not in err
    # the bad binding was not frozen into the run folder for later `-o RUN` invocations
    assert not (run / "config.gin").exists() and not (run / "checkpoints").exists()


def test_a_failed_train_freezes_nothing_and_a_valid_one_then_works(tmp_path, write_config,
                                                                    capsys):
    cfg = write_config(**{"train.num_epochs": 1, "train.epoch_length": 1})
    run = tmp_path / "run"
    assert _train(cfg, run, "Chimera.rnn_type = 'cnn'") == 2  # fails while building the model
    assert "cnn" in _error(capsys)
    assert not (run / "config.gin").exists() and not (run / "checkpoints").exists()
    assert _train(cfg, run) == 0
    assert (run / "config.gin").is_file() and "cnn" not in (run / "config.gin").read_text()
    assert load_checkpoint(checkpoint_path(run, "latest"))["epoch"] == 1
    gin.clear_config()  # and the frozen config alone now drives the run
    assert main(["train", "-o", str(run), "-b", "train.num_epochs = 2"]) == 0
    assert load_checkpoint(checkpoint_path(run, "latest"))["epoch"] == 2


def test_a_failed_evaluate_leaves_no_config(tmp_path, write_config, capsys):
    run = tmp_path / "run"
    cfg = write_config()
    gin.clear_config()
    assert main(["evaluate", "-c", str(cfg), "-o", str(run), "-b",
                 "deep_separator.checkpoint = 'nosuch'"]) == 2
    assert "nosuch" in _error(capsys)
    assert not (run / "config.gin").exists()


def test_init_from_a_model_of_another_size_names_the_arguments(tmp_path, write_config, capsys):
    cfg = write_config(**{"train.num_epochs": 1, "train.epoch_length": 1})
    parent = tmp_path / "parent"
    assert _train(cfg, parent) == 0
    child = tmp_path / "child"
    assert _train(cfg, child, "Chimera.hidden_size = 8", "train.init_from_checkpoint = "
                  f"'{checkpoint_path(parent, 'best')}'") == 2
    err = _error(capsys)
    assert "train.init_from_checkpoint" in err and "hidden_size: 16 -> 8" in err
    assert not checkpoint_path(child, "latest").exists()
    # another dropout only: the weights fit, fine-tuning goes ahead
    assert _train(cfg, child, "Chimera.dropout = 0.1", "train.init_from_checkpoint = "
                  f"'{checkpoint_path(parent, 'best')}'") == 0


def test_a_non_finite_loss_names_the_iteration_and_keeps_the_finite_checkpoint(
        tmp_path, write_config, capsys, monkeypatch):
    cfg = write_config(**{"train.num_epochs": 1, "train.epoch_length": 2})
    run = tmp_path / "run"
    assert _train(cfg, run) == 0
    good = checkpoint_path(run, "latest").read_bytes()

    orig_forward = trainer_mod.Trainer.forward

    def nan_at_3(self, batch):
        output, targets = orig_forward(self, batch)
        if self.model.training and self.engine.state.iteration == 3:
            output = {k: v * float("nan") for k, v in output.items()}
        return output, targets

    monkeypatch.setattr(trainer_mod.Trainer, "forward", nan_at_3)
    assert _train(cfg, run, "train.num_epochs = 2") == 2
    err = _error(capsys)
    assert "non-finite training loss at iteration 3" in err
    assert f"{checkpoint_path(run, 'latest')} (epoch 1) is the last finite checkpoint" in err
    assert "learning rate" in err and "clip" in err and "data" in err
    assert checkpoint_path(run, "latest").read_bytes() == good

    # weights that turn non-finite in an epoch's last step are never saved either
    monkeypatch.setattr(trainer_mod.Trainer, "forward", orig_forward)
    orig_step = trainer_mod.Trainer._train_step

    def poison_at_4(self, engine, batch):
        out = orig_step(self, engine, batch)
        if engine.state.iteration == 4:
            with torch.no_grad():
                next(self.raw_model.parameters()).fill_(float("nan"))
        return out

    monkeypatch.setattr(trainer_mod.Trainer, "_train_step", poison_at_4)
    assert _train(cfg, run, "train.num_epochs = 2") == 2
    assert "non-finite model weights" in _error(capsys)
    assert checkpoint_path(run, "latest").read_bytes() == good


def test_an_absurd_learning_rate_is_one_line(tmp_path, write_config, capsys):
    cfg = write_config(**{"train.num_epochs": 1, "train.epoch_length": 2})
    assert _train(cfg, tmp_path / "run", "torch.optim.Adam.lr = 1e300") == 2
    err = _error(capsys)
    assert "iteration 1" in err and "no checkpoint was written" in err


def test_a_fresh_start_over_checkpoints_refuses_unless_forced(tmp_path, write_config, capsys):
    cfg = write_config(**{"train.num_epochs": 1, "train.epoch_length": 2})
    run = tmp_path / "run"
    assert _train(cfg, run) == 0
    assert "training starts from scratch" in capsys.readouterr().out
    old = {p.name: p.read_bytes() for p in (run / "checkpoints").glob("*.pth")}
    assert set(old) == {"latest.pth", "best.pth"}

    assert _train(cfg, run, "train.resume = False") == 2
    err = _error(capsys)
    assert str(run / "checkpoints") in err and "--force" in err and "train.resume = False" in err
    assert {p.name: p.read_bytes() for p in (run / "checkpoints").glob("*.pth")} == old

    # latest.pth gone but best.pth there: starting over would overwrite best.pth, so refuse too
    (run / "checkpoints" / "latest.pth").rename(tmp_path / "latest.pth")
    assert _train(cfg, run) == 2
    assert "best.pth" in _error(capsys)
    (tmp_path / "latest.pth").rename(run / "checkpoints" / "latest.pth")

    # forced: the old checkpoints are moved aside, byte for byte, and a new training starts
    assert _train(cfg, run, "train.resume = False", force=True) == 0
    kept = run / "checkpoints" / "previous" / "1"
    assert {p.name: p.read_bytes() for p in kept.glob("*.pth")} == old
    assert load_checkpoint(checkpoint_path(run, "latest"))["epoch"] == 1
    assert _train(cfg, run, "train.resume = False", force=True) == 0
    assert (run / "checkpoints" / "previous" / "2" / "best.pth").is_file()
