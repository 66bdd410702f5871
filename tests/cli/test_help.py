"""Per-command help: `main.py COMMAND --help` lists options and gin parameters with defaults."""

from __future__ import annotations

import inspect

import pytest

from bootsep.cli import help as cli_help
from bootsep.cli.main import COMMANDS, main


def _page(capsys, *argv) -> str:
    assert main(list(argv)) == 0
    return capsys.readouterr().out


def test_train_help_lists_its_parameters_with_defaults(capsys):
    out = _page(capsys, "train", "--help")
    assert out.startswith("usage: main.py train")
    assert COMMANDS["train"] in out
    # a parameter of train with its default, read from train's signature
    from bootsep.config.experiment import train

    sig = inspect.signature(inspect.unwrap(train)).parameters
    assert f"train.num_epochs = {sig['num_epochs'].default!r}" in out
    assert "train.model = <required>" in out
    # the bindings that keep runs small, and the cache bindings, with defaults
    assert "debug.num_epochs = 20" in out
    assert "test/StemFolderDataset.songs = None" in out
    assert "StemFolderDataset.cache = None" in out and "AudioCache.folder = <required>" in out
    # options of other commands are not listed; common ones are
    assert "--config" in out and "--bind" in out and "--gpus-per-run" not in out
    # not the global help
    assert "commands:" not in out


def test_each_command_has_a_page_with_its_own_options(capsys):
    out = _page(capsys, "instantiate", "-h")
    assert "--gpus-per-run" in out and "sweep.parameters = None" in out
    out = _page(capsys, "separate", "--help")
    assert "--input" in out and "separate.min_loudness = -40.0" in out
    out = _page(capsys, "evaluate", "-c", "whatever.gin", "--help")  # -h anywhere after it
    assert "evaluate.max_items = None" in out and "deep_separator.checkpoint = 'best'" in out
    for command in COMMANDS:
        assert _page(capsys, command, "--help").startswith(f"usage: main.py {command}")


@pytest.mark.parametrize("key", [k for k, _ in cli_help.SMALL_RUN_KEYS + cli_help.CACHE_KEYS])
def test_curated_keys_exist(key):
    """The hand-picked keys resolve to real parameters (the page cannot go stale silently)."""
    cli_help.default_of(key)


def test_unknown_key_is_an_error():
    with pytest.raises(KeyError):
        cli_help.default_of("train.no_such_parameter")


def test_options_are_matched_to_the_commands_their_help_names():
    from bootsep.cli.help import _commands_named

    commands = set(COMMANDS)
    assert _commands_named("separate/organize: destination", commands) == {"separate", "organize"}
    assert _commands_named("separate (segment mode), evaluate: do shard I of N", commands) == \
        {"separate", "evaluate"}
    assert _commands_named("organize: replace x; separate --input: replace y; train/all: z",
                           commands) == {"organize", "separate", "train", "all"}
    # a common option whose help mentions a command in passing names none
    assert _commands_named("run folder (for instantiate: the sweep folder)", commands) is None
    assert _commands_named("debug logging", commands) is None


def test_the_pages_list_the_options_of_their_command(capsys):
    def options(command):
        page = _page(capsys, command, "--help")
        block = page.split("options:\n", 1)[1].split("\n\n", 1)[0]
        return {tok for line in block.splitlines() for tok in line.split() if tok.startswith("--")}

    assert {"--config", "--output-folder", "--bind", "--verbose"} <= options("train")
    assert "--input" in options("separate") and "--input" not in options("train")
    assert "--output" in options("organize") and "--output" not in options("evaluate")
