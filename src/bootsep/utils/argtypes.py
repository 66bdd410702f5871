"""Check call arguments against a function's simple type annotations, with a user-facing message.

Only the plain annotation vocabulary of bootsep's constructors and commands is checked: ``int``,
``float``, ``bool``, ``str``, ``None``, unions of them, ``list``/``tuple``/``Sequence[...]`` and
``dict``/``Mapping``. Anything else (a class, ``Callable``, an unresolvable name) is accepted, so
a check never rejects what the function itself could take.

Example:
    >>> def f(num_epochs: int = 10, lr: float | None = None): ...
    >>> check_arg_types(f, {"num_epochs": "two"}, "train")
    Traceback (most recent call last):
    ...
    bootsep.utils.argtypes.ArgumentTypeError: train.num_epochs = 'two': expected int, got str (fix that binding)
"""

from __future__ import annotations

import collections.abc as cabc
import inspect
import numbers
import types
import typing
from collections.abc import Callable, Mapping

from .errors import UserError


class ArgumentTypeError(UserError, TypeError):
    """An argument of the wrong type: a :class:`UserError` (one CLI line, exit 2) and a
    ``TypeError`` for plain Python callers."""


_UNKNOWN = object()
_SEQUENCES = (list, tuple, cabc.Sequence, typing.Sequence)
_MAPPINGS = (dict, cabc.Mapping, typing.Mapping, cabc.MutableMapping)


def _hints(fn: Callable) -> dict:
    """Evaluated annotations per parameter; ones that cannot be evaluated are left out."""
    out = {}
    globalns = getattr(inspect.unwrap(fn), "__globals__", {})
    for name, param in inspect.signature(fn).parameters.items():
        ann = param.annotation
        if ann is inspect.Parameter.empty:
            continue
        if isinstance(ann, str):
            try:
                ann = eval(ann, dict(globalns))  # noqa: S307 - the function's own annotation
            except Exception:  # noqa: BLE001 - unresolvable: not checked
                continue
        out[name] = ann
    return out


def _matches(value, hint) -> bool | object:
    """True/False, or ``_UNKNOWN`` when ``hint`` is outside the checked vocabulary."""
    if hint is typing.Any:
        return True
    if hint is None or hint is type(None):
        return value is None
    origin = typing.get_origin(hint)
    if origin is typing.Union or isinstance(hint, types.UnionType):
        results = [_matches(value, h) for h in typing.get_args(hint)]
        if any(r is True for r in results):
            return True
        return _UNKNOWN if any(r is _UNKNOWN for r in results) else False
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, numbers.Real) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    base = origin or hint
    if base in _SEQUENCES:
        if not isinstance(value, list | tuple):
            return False
        args = [a for a in typing.get_args(hint) if a is not Ellipsis]
        if len(args) != 1:  # fixed-length tuple annotations: the container type only
            return True
        results = [_matches(v, args[0]) for v in value]
        return False if any(r is False for r in results) else True
    if base in _MAPPINGS:
        return isinstance(value, Mapping)
    return _UNKNOWN


def _describe(hint) -> str:
    if hint is None or hint is type(None):
        return "None"
    if typing.get_origin(hint) is typing.Union or isinstance(hint, types.UnionType):
        return " or ".join(_describe(h) for h in typing.get_args(hint))
    if typing.get_origin(hint) in _SEQUENCES or hint in _SEQUENCES:
        args = [a for a in typing.get_args(hint) if a is not Ellipsis]
        return f"a list of {_describe(args[0])}" if len(args) == 1 else "a list"
    if hint in _MAPPINGS or typing.get_origin(hint) in _MAPPINGS:
        return "a dict"
    return getattr(hint, "__name__", str(hint))


def check_arg_types(fn: Callable, values: Mapping, owner: str) -> None:
    """Raise :class:`ArgumentTypeError` for the first value in ``values`` (parameter name ->
    value) that does not fit ``fn``'s annotation; the message reads
    ``"<owner>.<name> = <value>: expected <type>, got <type>"`` (``owner`` is the gin name)."""
    hints = _hints(fn)
    for name, value in values.items():
        if name not in hints:
            continue
        if _matches(value, hints[name]) is False:
            raise ArgumentTypeError(f"{owner}.{name} = {value!r}: expected {_describe(hints[name])}, "
                                    f"got {type(value).__name__} (fix that binding)")
