"""gin's missing-binding errors become one line naming the keys; the argument lists in gin's
message are read as text, never evaluated (issue 12 item 7)."""

from __future__ import annotations

import gin
import pytest

from bootsep.cli.main import _arg_names, _gin_runtime_error


@gin.configurable("needs_two", module="test_gin_errors")
def _needs_two(a=gin.REQUIRED, b=gin.REQUIRED):
    return a, b


@gin.configurable("takes_two", module="test_gin_errors")
def _takes_two(x, y):
    return x, y


@pytest.mark.parametrize("call, line", [
    (_needs_two, "missing required gin binding(s): needs_two.a, needs_two.b (add them to a "
                 "config file or pass -b 'needs_two.KEY = VALUE')"),
    (_takes_two, "missing gin binding(s): takes_two.x, takes_two.y ("),
])
def test_missing_bindings_name_every_key(call, line):
    with pytest.raises(Exception) as err:
        call()
    assert str(_gin_runtime_error(err.value)).startswith(line)


def test_argument_lists_are_never_evaluated():
    assert _arg_names("['step_size', 'gamma']") == ["step_size", "gamma"]
    hostile = "[(_ for _ in ()).throw(RuntimeError('evaluated'))]"  # raises if eval'd
    assert _arg_names(hostile) == []
    text = f"Required bindings for `f` not provided in config: {hostile}"
    assert str(_gin_runtime_error(RuntimeError(text))) == text  # shown as it is, not run
