"""check_arg_types: the simple annotation vocabulary, checked against brute-force expectations."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from bootsep.models.recurrent import Chimera
from bootsep.utils.argtypes import ArgumentTypeError, check_arg_types
from bootsep.utils.errors import UserError


def _f(a: int = 1, b: float | None = None, c: bool = True, d: str | Sequence[str] = ("x",),
       e: dict | None = None, f: tuple[int, int] = (1, 2), g: NotResolvable = None,  # noqa: F821
       h=None):
    pass


@pytest.mark.parametrize("values, ok", [
    ({"a": 3}, True), ({"a": True}, False), ({"a": 2.0}, False), ({"a": "3"}, False),
    ({"b": 2}, True), ({"b": 2.5}, True), ({"b": None}, True), ({"b": "x"}, False),
    ({"c": False}, True), ({"c": 1}, False),
    ({"d": "s"}, True), ({"d": ["s", "t"]}, True), ({"d": ("s",)}, True), ({"d": [1]}, False),
    ({"e": {"k": 1}}, True), ({"e": [1]}, False),
    ({"f": [1, 2]}, True), ({"f": 3}, False),
    ({"g": object()}, True), ({"h": object()}, True),
])
def test_vocabulary(values, ok):
    if ok:
        check_arg_types(_f, values, "F")
    else:
        with pytest.raises(ArgumentTypeError, match=f"F.{next(iter(values))} = "):
            check_arg_types(_f, values, "F")


def test_model_constructors_check_their_arguments_first():
    with pytest.raises(ArgumentTypeError, match="Chimera.hidden_size = 'big': expected int") as e:
        Chimera(num_features=129, hidden_size="big")
    assert isinstance(e.value, UserError) and isinstance(e.value, TypeError)
    Chimera(num_features=9, hidden_size=4, num_layers=1)  # right types build as before
