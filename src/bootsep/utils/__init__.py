"""Small helpers every package may use: user errors, atomic writes, provenance, shards.

- :mod:`~bootsep.utils.errors`: :class:`~bootsep.utils.errors.UserError` (one ``error:`` line).
- :mod:`~bootsep.utils.io`: atomic writes (temp + rename) and checkpoint-safe loading.
- :mod:`~bootsep.utils.provenance`: how a run folder came to be.
- :mod:`~bootsep.utils.shards`: one of ``N`` disjoint parts of a work list.
- :mod:`~bootsep.utils.argtypes`: call arguments checked against simple annotations.
- :mod:`~bootsep.utils.results`: the per-item result file ``results/<item>.json`` (its one
  writer and reader; ``evaluate`` and ``separate`` write it, ``analyze`` reads it).
- :mod:`~bootsep.utils.registry`: :class:`~bootsep.utils.registry.Registry`, the one kind of
  name table (models, losses, training handlers, gin configurables).

No gin, no torch at import. Importing the package imports none of its modules.
May import: nothing else from bootsep.
"""

__all__ = ["argtypes", "errors", "io", "provenance", "registry", "results", "shards"]
