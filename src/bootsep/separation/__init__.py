"""Separation algorithms for inference: one interface for primitive, oracle and deep methods.

- :mod:`~bootsep.separation.base`: :class:`Separator` (mixture in, :class:`Separation` out;
  one :meth:`~Separator.analyze` call gives masks and confidence features as an
  :class:`Analysis`).
- :mod:`~bootsep.separation.deep`: trained models as separators, loaded from checkpoints.
- :mod:`~bootsep.separation.grouped`: a separator's outputs grouped into the dataset's sources.
- :mod:`~bootsep.separation.windowing`: the one overlap-add with cross-fade (window plans, the
  linear ramp, the streaming join) of deep chunks and file-mode windows.

Plain classes, no gin. May import: dsp, engine (checkpoint reading only), losses, metrics,
models, utils.
"""

from .base import Analysis, Separation, Separator, describe, fingerprint
from .deep import DeepClusteringSeparator, DeepMaskSeparator, load_separator
from .grouped import GroupedSeparator, choose_grouping
from .windowing import OverlapAdd, fade_in, window_bounds

__all__ = ["Analysis", "DeepClusteringSeparator", "DeepMaskSeparator", "GroupedSeparator",
           "OverlapAdd", "Separation", "Separator", "choose_grouping", "describe", "fade_in", "fingerprint",
           "load_separator", "window_bounds"]
