"""gin wiring: the registry of configurables and the commands they drive.

- :mod:`~bootsep.config.registry`: the plain building blocks registered under short names.
- :mod:`~bootsep.config.experiment`: prepare, cache, train, evaluate, analyze, debug.
- :mod:`~bootsep.config.separate`, :mod:`~bootsep.config.organize`,
  :mod:`~bootsep.config.bootstrap`: the bootstrapping commands.
- :mod:`~bootsep.config.sweep`: sweeps and ``instantiate``; :mod:`~bootsep.config.paths`: the
  run folder and data roots; :mod:`~bootsep.config.contract`: the signal contract checks;
  :mod:`~bootsep.config.bindings`: type checks of bound literals.

The only package besides ``cli`` that uses gin. Importing the package imports none of its
modules (``paths`` and ``registry`` need no torch).
May import: bootstrap, data, dsp, engine, losses, metrics, models, primitives, report,
separation, utils.
"""

__all__ = ["bindings", "bootstrap", "contract", "experiment", "organize", "paths", "registry",
           "separate", "sweep"]
