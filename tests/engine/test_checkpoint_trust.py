"""No code runs from a checkpoint: every loader reads plain data (``weights_only=True``), a file
that needs pickles is refused with one line saying how to convert it, and converting is an
explicit, trusting opt-in."""

from __future__ import annotations

import pickle

import gin
import numpy as np
import pytest
import soundfile as sf
import torch

from bootsep.cli.main import main
from bootsep.engine.checkpoint import (
    checkpoint_path,
    convert_checkpoint,
    load_checkpoint,
    save_checkpoint,
    set_rng_state,
)
from bootsep.models.base import load_model
from bootsep.models.recurrent import Chimera
from bootsep.separation.deep import load_separator
from bootsep.utils.errors import UserError
from bootsep.utils.io import PickledFileError


class _Hostile:
    """Unpickling this calls ``open(marker, 'w')``: a file appears if any code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _model():
    return Chimera(num_features=129, hidden_size=16, num_layers=1, dropout=0.0, embedding_size=4,
                   num_sources=2)


def _hostile_checkpoint(path, marker):
    """A checkpoint that looks like bootsep's but whose payload runs code when unpickled."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": _model().serialize(), "stft": {"window_length": 256, "hop_length": 64,
                                                        "window_type": "sqrt_hann"},
                "sample_rate": 16000, "source_labels": ["accompaniment", "vocals"],
                "epoch": 1, "rng": _Hostile(marker)}, path)
    return path


def _main(args) -> int:
    gin.clear_config()  # each in-process invocation parses its configs afresh, as a new process
    return main([str(a) for a in args])


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    return err


def test_every_loader_refuses_a_pickled_checkpoint_and_runs_nothing(tmp_path, write_config,
                                                                     capsys):
    marker = tmp_path / "MARKER"
    hostile = _hostile_checkpoint(tmp_path / "hostile.pth", marker)
    cfg = write_config(**{"train.num_epochs": 1, "train.epoch_length": 1})

    # the Python loaders
    with pytest.raises(UserError, match="convert --checkpoint"):
        load_checkpoint(hostile)
    with pytest.raises(PickledFileError, match="convert --checkpoint") as e:
        load_model(hostile)
    assert isinstance(e.value, UserError)
    with pytest.raises(UserError, match="convert --checkpoint"):
        load_separator(hostile)
    for legacy in (True, False):  # torch's old (non-zip) format, and a bare pickle
        old = tmp_path / f"legacy_{legacy}.pth"
        if legacy:
            torch.save({"model": _Hostile(marker)}, old, _use_new_zipfile_serialization=False)
        else:
            old.write_bytes(pickle.dumps({"model": _Hostile(marker)}))
        with pytest.raises(UserError, match=str(old)):
            load_checkpoint(old)

    # train resuming from a run folder whose latest.pth is hostile
    run = tmp_path / "run"
    _hostile_checkpoint(checkpoint_path(run, "latest"), marker)
    assert _main(["train", "-c", str(cfg), "-o", str(run)]) == 2
    err = _one_line(capsys)
    assert str(checkpoint_path(run, "latest")) in err and "convert --checkpoint" in err

    # evaluate (deep_separator.checkpoint = 'latest' of the run folder)
    assert _main(["evaluate", "-c", str(cfg), "-o", str(run)]) == 2
    assert "convert --checkpoint" in _one_line(capsys)

    # separate your own audio with the run's model
    wav = tmp_path / "in.wav"
    sf.write(wav, np.random.default_rng(0).normal(0, 0.1, 8000).astype(np.float32), 16000)
    assert _main(["separate", "-c", str(cfg), "-o", str(run), "--input", str(wav),
                 "--output", str(tmp_path / "sep")]) == 2
    assert "convert --checkpoint" in _one_line(capsys)

    # a new run initialised from the hostile file
    assert _main(["train", "-c", str(cfg), "-o", str(tmp_path / "run2"), "-b",
                 f"train.init_from_checkpoint = '{hostile}'"]) == 2
    assert str(hostile) in _one_line(capsys)
    assert not checkpoint_path(tmp_path / "run2", "latest").exists()

    # converting without --trust refuses before reading
    assert _main(["convert", "--checkpoint", str(hostile), "--output",
                 str(tmp_path / "new.pth")]) == 2
    assert "--trust" in _one_line(capsys)

    assert not marker.exists(), "a loader executed code from the checkpoint"
    # control: the payload really is hostile, and --trust really trusts it
    with pytest.raises(UserError):  # trusted: its code ran, but the result is no checkpoint
        convert_checkpoint(hostile, tmp_path / "new.pth", trust=True)
    assert marker.exists()
    assert not (tmp_path / "new.pth").exists()


def test_checkpoints_are_plain_data_and_an_old_one_converts(tmp_path, write_config, capsys):
    run = tmp_path / "run"
    cfg = write_config(**{"train.num_epochs": 1, "train.epoch_length": 2})
    assert _main(["train", "-c", str(cfg), "-o", str(run)]) == 0
    for which in ("latest", "best"):
        ckpt = torch.load(checkpoint_path(run, which), weights_only=True)  # no pickles needed
        assert ckpt["epoch"] == 1 and "gin_config" in ckpt and ckpt["history"]
    assert isinstance(load_model(checkpoint_path(run, "latest")), Chimera)

    # a checkpoint as an older bootsep wrote it: numpy RNG state and handler arrays pickled
    ckpt = load_checkpoint(checkpoint_path(run, "latest"))
    np.random.seed(5)
    numpy_state = np.random.get_state()
    want = np.random.rand(4)
    old = dict(ckpt, rng=dict(ckpt["rng"], numpy=numpy_state),
               handlers={"autoclip": {"history": np.arange(3, dtype=np.float32)}})
    old_path = tmp_path / "old.pth"
    torch.save(old, old_path)
    with pytest.raises(UserError, match=r"old\.pth.*convert --checkpoint .*old\.pth"):
        load_checkpoint(old_path)

    new_path = tmp_path / "new.pth"
    assert _main(["convert", "--checkpoint", str(old_path), "--output", str(new_path),
                 "--trust"]) == 0
    assert capsys.readouterr().out.strip().endswith("new.pth")
    new = torch.load(new_path, weights_only=True)
    torch.testing.assert_close(new["handlers"]["autoclip"]["history"],
                               torch.arange(3, dtype=torch.float32))
    set_rng_state(new["rng"])  # the converted numpy RNG state restores the same stream
    np.testing.assert_array_equal(np.random.rand(4), want)
    # converting never overwrites
    assert _main(["convert", "--checkpoint", str(old_path), "--output", str(new_path),
                 "--trust"]) == 2
    assert "never overwrites" in _one_line(capsys)


def test_save_checkpoint_refuses_objects_it_could_not_load_safely(tmp_path):
    with pytest.raises(TypeError, match=r"\['handlers'\]\['x'\]"):
        save_checkpoint(tmp_path / "c.pth", {"model": {}, "handlers": {"x": object()}})
    assert not (tmp_path / "c.pth").exists()
