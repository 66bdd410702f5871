"""Check the literal values of every gin binding against its configurable's annotations, right
after the configs are parsed, so ``evaluate.max_items = 'all'`` or ``Chimera.hidden_size = 'big'``
is one ``error:`` line before any command runs (instead of a traceback deep inside it).

Only plain literals are checked (numbers, strings, booleans, None and containers of them);
references (``@Chimera``, ``%MACRO``) and annotations outside the simple vocabulary of
:mod:`bootsep.utils.argtypes` are left to the callee.
"""

from __future__ import annotations

import inspect

from ..utils.argtypes import check_arg_types


def _plain(value) -> bool:
    if value is None or isinstance(value, bool | int | float | str):
        return True
    if isinstance(value, list | tuple):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(_plain(v) for v in value.values())
    return False


def check_bound_types() -> None:
    """Raise :class:`~bootsep.utils.argtypes.ArgumentTypeError` (a UserError) naming the first
    binding ``scope/Configurable.param = value`` whose value does not fit the annotation."""
    from gin import config as gin_config

    for (scope, selector), params in list(gin_config._CONFIG.items()):
        try:
            configurable = gin_config._REGISTRY.get_match(selector)
        except Exception:  # noqa: BLE001 - ambiguous/unknown selectors are gin's to report
            continue
        if configurable is None:
            continue
        fn = configurable.wrapped
        if inspect.isclass(fn):
            fn = fn.__init__
        values = {k: v for k, v in params.items() if _plain(v)}
        if not values:
            continue
        try:
            inspect.signature(fn)
        except (TypeError, ValueError):  # builtins without a signature
            continue
        # the key as configs write it: bootsep's short names (Chimera), others' full selectors
        name = (configurable.name if str(configurable.module).startswith("bootsep")
                else configurable.selector)
        check_arg_types(fn, values, f"{scope}/{name}" if scope else name)
