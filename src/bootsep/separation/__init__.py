"""Separation algorithms for inference: one interface for primitive, oracle and deep methods."""

from .base import Separation, Separator
from .deep import DeepClusteringSeparator, DeepMaskSeparator, load_separator

__all__ = ["Separation", "Separator", "DeepClusteringSeparator", "DeepMaskSeparator",
           "load_separator"]
