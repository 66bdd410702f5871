"""bootsep: deep audio source separation bootstrapped from primitive auditory grouping.

Plain, gin-free building blocks live in role folders (``dsp``, ``data``, ``models``,
``losses``, ``primitives``, ``separation``, ``metrics``); gin wiring lives in ``config`` and
``cli``; training in ``engine``, bootstrapping in ``bootstrap``, reports in ``report``,
queue tools in ``jobs``, shared helpers in ``utils``. Each package's docstring says what it may
import (checked by ``tests/test_packages.py``). Importing the package does no work (it only sets ``OMP_WAIT_POLICY=PASSIVE`` when
unset, see below).
"""

import os as _os

# Passive OpenMP waiting: with the default spin-waiting, torch's threads slow a training step
# down 40-80x as soon as another process competes for a core (measured on 2 cores: 0.9 s ->
# 42-85 s per step). Takes effect only if bootsep is imported before torch; main.py ensures it.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"

__all__ = ["__version__", "bootstrap", "cli", "config", "data", "dsp", "engine", "jobs", "losses",
           "metrics", "models", "primitives", "report", "separation", "utils"]
