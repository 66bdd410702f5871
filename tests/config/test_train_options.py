"""``train``'s flat gin keys grouped by what they decide, and ``debug`` without global rebinding."""

from __future__ import annotations

import dataclasses
import inspect

import gin

from bootsep.cli.main import parse_configs
from bootsep.config import experiment
from bootsep.config.experiment import TrainOptions, train


def test_every_train_key_is_in_exactly_one_group_with_the_same_default():
    params = inspect.signature(train).parameters
    fields = [f for group in dataclasses.fields(TrainOptions)
              for f in dataclasses.fields(experiment._TRAIN_GROUPS[group.name])]
    assert sorted(f.name for f in fields) == sorted(params)  # none left out, none twice
    for f in fields:
        default = params[f.name].default
        if default is not gin.REQUIRED:
            assert f.default == default, f.name
        else:
            assert f.default is dataclasses.MISSING, f.name


def test_groups_are_built_from_the_train_arguments():
    values = {name: p.default for name, p in inspect.signature(train).parameters.items()}
    values.update(model="M", loss_dictionary={"l": {}}, optimizer="O", num_epochs=3,
                  batch_size=4, resume=False, seed=7)
    opts = TrainOptions.from_arguments(values)
    assert (opts.task.model, opts.optimisation.optimizer, opts.optimisation.num_epochs) == \
        ("M", "O", 3)
    assert (opts.data.batch_size, opts.checkpoints.resume, opts.runtime.seed) == (4, False, 7)
    assert opts.optimisation.handlers == ("autoclip", "lr_scheduler")


def test_debug_leaves_the_global_gin_config_unchanged(write_config, tmp_path, monkeypatch):
    """``debug`` hands its overrides over as arguments: no binding is added or changed, even
    though ``evaluate.separator = @deep_separator()`` points at the run's own (missing)
    checkpoint."""
    cfg = write_config(**{"debug.num_epochs": 1, "debug.epoch_length": 2})
    parse_configs([cfg], [f"output_folder._output_folder = '{tmp_path / 'run'}'"])
    before = gin.config_str()

    def no_rebinding(*args, **kwargs):
        raise AssertionError(f"debug rebound gin: {args}")

    monkeypatch.setattr(gin, "bind_parameter", no_rebinding)
    monkeypatch.setattr(gin.config, "bind_parameter", no_rebinding)
    experiment.debug()
    assert gin.config_str() == before
    assert (tmp_path / "run" / "debug" / "results" / "debug_item0.json").is_file()
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_the_signature_lists_the_keys_group_by_group():
    order = [f.name for group in dataclasses.fields(TrainOptions)
             for f in dataclasses.fields(experiment._TRAIN_GROUPS[group.name])]
    assert list(inspect.signature(train).parameters) == order
