"""One registry: every name table is a :class:`~bootsep.utils.registry.Registry`, gin registers
each entry under its object's name, handlers resolve by name or as bound objects, and the
config modules import each other without a cycle."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import gin
import pytest

import bootsep
from bootsep.config import experiment, registry
from bootsep.engine.handlers import HANDLERS, AutoClip, Handler
from bootsep.losses.combine import LOSS_CLASSES
from bootsep.models.base import MODELS
from bootsep.utils.errors import UserError
from bootsep.utils.registry import Registry, UnknownNameError

CONFIG = Path(bootsep.__file__).parent / "config"


def test_every_name_table_is_a_registry():
    for table in (*registry.tables(), LOSS_CLASSES):
        assert isinstance(table, Registry)
    assert registry.tables() == (registry.BLOCKS, MODELS, HANDLERS)


def test_gin_names_are_the_object_names_and_every_entry_is_registered():
    registry.register_all()
    for table in (registry.BLOCKS, MODELS):  # a config's name is the table's name
        for name in table:
            assert table[name].__name__ == name
    objects = {table[k].__name__: table[k] for table in registry.tables() for k in table}
    assert len(objects) == sum(map(len, registry.tables())), "one object name in two tables"
    for name, obj in objects.items():  # what commands get from gin is what configs name
        assert registry.configured(name) is gin.get_configurable(obj)
    with pytest.raises(UnknownNameError, match=r"unknown configurable 'Chimaera'; known: \["):
        registry.configured("Chimaera")


def test_handlers_table_lists_every_handler_under_its_checkpoint_name():
    import bootsep.engine.curriculum
    import bootsep.engine.remixit  # noqa: F401

    for name in HANDLERS:
        assert issubclass(HANDLERS[name], Handler) and HANDLERS[name].name == name
    defined = {cls for cls in _subclasses(Handler) if "name" in vars(cls)}
    assert defined == {HANDLERS[n] for n in HANDLERS}  # none missing (curriculum was)


def _subclasses(cls):
    for sub in cls.__subclasses__():
        if sub.__module__.startswith("bootsep."):
            yield sub
        yield from _subclasses(sub)


def test_train_handlers_by_name_through_gin_or_bound_as_objects():
    registry.register_all()
    gin.parse_config("AutoClip.clip_percentile = 5\nCurriculum.initial_fraction = 0.5")
    assert experiment.build_handler("autoclip").clip_percentile == 5
    assert experiment.build_handler("curriculum").initial_fraction == 0.5
    mine = AutoClip(clip_percentile=7)
    assert experiment.build_handler(mine) is mine
    gin.parse_config("bound_handlers.handlers = [@AutoClip(), @AutoClip]")
    built = [experiment.build_handler(h) for h in bound_handlers()]
    assert [type(h) for h in built] == [AutoClip, AutoClip]
    assert [h.clip_percentile for h in built] == [5, 5]
    with pytest.raises(UserError) as err:
        experiment.build_handler("autoclap")
    assert "train.handlers: unknown training handler 'autoclap'; known: [" in str(err.value)
    assert "'curriculum'" in str(err.value)
    with pytest.raises(UserError, match="is not a training handler"):
        experiment.build_handler(3)


@gin.configurable(module="tests")
def bound_handlers(handlers=()):
    """What ``train.handlers = [...]`` hands ``train`` (gin builds ``@AutoClip()``)."""
    return handlers


def test_unknown_handler_is_one_error_line_in_the_cli(write_config, tmp_path, capsys):
    from bootsep.cli.main import main

    cfg = write_config(**{"train.handlers": "['autoclip', 'nope']"})
    assert main(["train", "-c", str(cfg), "-o", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: train.handlers: unknown training handler 'nope'; known: "
                   f"{sorted(HANDLERS)}"]


def _config_imports(path: Path) -> set[str]:
    """The config modules ``path`` imports anywhere (function-level imports included)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                out.add(node.module.split(".")[0])
            else:
                out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("bootsep.config."):
            out.add(node.module.split(".")[2])
    return out


def test_config_modules_import_each_other_without_a_cycle():
    graph = {p.stem: _config_imports(p) & {q.stem for q in CONFIG.glob("*.py")}
             for p in CONFIG.glob("*.py") if p.stem != "__init__"}
    assert "experiment" in graph["registry"]  # registry imports the commands ...
    done, stack = set(), []

    def visit(mod):  # depth-first search for a back edge
        assert mod not in stack, f"import cycle: {' -> '.join(stack + [mod])}"
        if mod in done:
            return
        stack.append(mod)
        for dep in sorted(graph.get(mod, ())):
            visit(dep)
        stack.pop()
        done.add(mod)

    for mod in sorted(graph):
        visit(mod)


@pytest.mark.parametrize("module", ["registry", "experiment"])
def test_each_config_module_imports_alone(module):
    code = (f"import bootsep.config.{module} as m, sys; "
            f"assert 'bootsep.config.{'experiment' if module == 'registry' else 'registry'}' "
            f"not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_command_modules_get_configured_objects_from_gin_not_from_the_registry():
    for path in CONFIG.glob("*.py"):
        if path.stem not in ("registry", "__init__"):
            assert "registry" not in _config_imports(path), path.name


def test_a_misspelt_gin_name_is_one_error_line_with_the_known_names(tmp_path, capsys):
    from bootsep.cli.main import main

    cfg = tmp_path / "bad.gin"
    cfg.write_text("train.batch_size = 2\ntrain.model = @Chimaera\n")
    assert main(["train", "-c", str(cfg), "-o", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {cfg}:2: No configurable matching")
    assert "(did you mean 'Chimera'" in err[0]
    assert "'StemFolderDataset'" in err[0] and "'train'" in err[0] and "'AutoClip'" in err[0]


def test_a_handler_named_twice_is_an_error():
    registry.register_all()
    with pytest.raises(UserError, match=r"\['autoclip'\] more than once"):
        experiment._build_handlers(["autoclip", "lr_scheduler", AutoClip()])
    assert [h.name for h in experiment._build_handlers(["clip", "autoclip"])] == ["clip", "autoclip"]
