"""Named tables of building blocks: one :class:`Registry` per kind, one mechanism for all.

A registry maps a short name (what a ``.gin`` file, a loss spec, ``train.handlers`` or a
checkpoint writes) to a class or function. Entries are objects or dotted paths
(``'bootsep.models.recurrent.Chimera'``), imported on first use so that a table costs nothing at
import time. An unknown name is one error that lists the known names.

The tables (each lives next to what it names; ``bootsep.config.registry`` registers them with
gin):

- :data:`bootsep.models.base.MODELS`: separation models (checkpoints and ``@Chimera``);
- :data:`bootsep.losses.combine.LOSS_CLASSES`: the loss classes a loss spec names;
- :data:`bootsep.engine.handlers.HANDLERS`: training handlers (``train.handlers``);
- :data:`bootsep.config.registry.BLOCKS`: the other gin configurables (STFT, datasets,
  separators, primitives).

Example:
    >>> SHAPES = Registry("shape", {"Dict": "builtins.dict"})
    >>> @SHAPES.register
    ... class Square:
    ...     pass
    >>> sorted(SHAPES), SHAPES["Dict"] is dict, SHAPES.path("Square").rpartition(".")[2]
    (['Dict', 'Square'], True, 'Square')
    >>> SHAPES.lookup("Circle")
    Traceback (most recent call last):
    ...
    bootsep.utils.registry.UnknownNameError: unknown shape 'Circle'; known: ['Dict', 'Square']
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping

from .errors import UserError


class UnknownNameError(UserError, ValueError):
    """A name that is not in a registry: one ``error:`` line listing the known names (and a
    ``ValueError`` for callers that catch those)."""


def _path_of(obj) -> str:
    return f"{obj.__module__}.{obj.__qualname__}"


class Registry(Mapping):
    """Short name -> class or function, for one kind of building block.

    Args:
        kind: what the entries are, for messages (``'model class'``, ``'training handler'``).
        entries: initial ``{name: object or dotted path}``; paths are imported on first access.
        error: the exception :meth:`lookup` raises for an unknown name (default
            :class:`UnknownNameError`; it is called with the message).

    A ``Mapping``: ``name in reg`` and ``sorted(reg)`` never import anything; ``reg[name]``
    imports a path entry (``KeyError`` for an unknown name); :meth:`lookup` is the same with
    the one-line error.
    """

    def __init__(self, kind: str, entries: Mapping | None = None,
                 error: type[Exception] = UnknownNameError):
        self.kind = kind
        self.error = error
        self._entries: dict[str, object] = {}
        for name, target in (entries or {}).items():
            self.add(name, target)

    # ----------------------------------------------------------------- filling
    def add(self, name: str, target) -> None:
        """Add ``name`` -> ``target`` (an object, or a dotted path imported lazily). Adding a
        name again is allowed only with the same target (``ValueError`` otherwise)."""
        if isinstance(target, str) and "." not in target:
            raise ValueError(f"{self.kind} {name!r}: {target!r} is not a dotted path")
        old = self._entries.get(name)
        if old is not None and self.path(name) != (target if isinstance(target, str)
                                                    else _path_of(target)):
            raise ValueError(f"{self.kind} {name!r} is already registered as {self.path(name)}")
        if old is None or not isinstance(target, str):
            self._entries[name] = target

    def register(self, obj=None, *, name: str | None = None):
        """Decorator adding a class/function under ``name`` (default: its ``__name__``);
        ``@reg.register`` or ``@reg.register(name='short')``. Returns the object unchanged."""
        def add(target):
            self.add(name or target.__name__, target)
            return target

        return add if obj is None else add(obj)

    # ----------------------------------------------------------------- reading
    def __contains__(self, name) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __getitem__(self, name: str):
        target = self._entries[name]  # KeyError for an unknown name (the Mapping protocol)
        if isinstance(target, str):
            module, _, attr = target.rpartition(".")
            target = getattr(importlib.import_module(module), attr)
            self._entries[name] = target
        return target

    def path(self, name: str) -> str:
        """The dotted path of ``name``'s entry, without importing it (``KeyError`` if unknown)."""
        target = self._entries[name]
        return target if isinstance(target, str) else _path_of(target)

    def lookup(self, name: str, where: str = ""):
        """The entry named ``name``, or ``self.error`` with ``'{where}unknown {kind} {name!r};
        known: [...]'`` (``where`` e.g. ``'train.handlers: '``)."""
        if name not in self._entries:
            raise self.error(f"{where}unknown {self.kind} {name!r}; known: {sorted(self)}")
        return self[name]

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {sorted(self)})"
