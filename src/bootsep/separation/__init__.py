"""Separation algorithms for inference: one interface for primitive, oracle and deep methods.

- :mod:`~bootsep.separation.base`: :class:`Separator` (mixture in, :class:`Separation` out).
- :mod:`~bootsep.separation.deep`: trained models as separators, loaded from checkpoints.
- :mod:`~bootsep.separation.grouped`: a separator's outputs grouped into the dataset's sources.

Plain classes, no gin. May import: dsp, engine (checkpoint reading only), losses, metrics,
models, utils.
"""

from .base import Separation, Separator, describe, fingerprint
from .deep import DeepClusteringSeparator, DeepMaskSeparator, load_separator
from .grouped import GroupedSeparator, choose_grouping

__all__ = ["DeepClusteringSeparator", "DeepMaskSeparator", "GroupedSeparator", "Separation",
           "Separator", "choose_grouping", "describe", "fingerprint", "load_separator"]
