"""bootsep: deep audio source separation bootstrapped from primitive auditory grouping.

Plain, gin-free building blocks live in role folders (``dsp``, ``data``, ``models``,
``losses``, ``primitives``, ``separation``, ``metrics``); gin wiring lives in ``config`` and
``cli``. Importing the package does no work.
"""

__version__ = "0.1.0"
