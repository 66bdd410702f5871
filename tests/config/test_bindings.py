"""A bound literal of the wrong type is one error line at parse time, for any configurable."""

from __future__ import annotations

import pytest

from bootsep.cli.main import main, parse_configs
from bootsep.utils.errors import UserError


@pytest.mark.parametrize("binding, message", [
    ("evaluate.max_items = 'all'", "evaluate.max_items = 'all': expected int or None, got str"),
    ("train/StemFolderDataset.excerpt_seconds = 'x'",
     "train/StemFolderDataset.excerpt_seconds = 'x': expected float or None, got str"),
    ("STFT.window_length = 256.0", "STFT.window_length = 256.0: expected int, got float"),
    ("Chimera.bidirectional = 'yes'", "Chimera.bidirectional = 'yes': expected bool, got str"),
    ("torch.optim.Adam.weight_decay = 'x'", "torch.optim.Adam.weight_decay = 'x': expected float"),
])
def test_wrong_literal_types_are_refused_before_anything_runs(tmp_path, write_config, capsys,
                                                              binding, message):
    run = tmp_path / "run"
    assert main(["evaluate", "-c", str(write_config()), "-o", str(run), "-b", binding]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and message in err, err
    assert not run.exists()  # nothing was created for a command that never started


def test_references_macros_and_right_types_pass(write_config):
    parse_configs([write_config()], ["Chimera.hidden_size = 32", "evaluate.max_items = None",
                                     "StemFolderDataset.excerpt_seconds = 2",  # int for float
                                     "LABELS = ['a', 'b']", "train.source_labels = %LABELS"])


def test_programmatic_train_checks_its_arguments_too():
    from bootsep.config import experiment

    with pytest.raises(UserError, match="train.num_epochs = 'two': expected int"):
        experiment.train(model=None, loss_dictionary={}, optimizer=None, num_epochs="two")
