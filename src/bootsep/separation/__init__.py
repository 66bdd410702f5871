"""Separation algorithms for inference: one interface for primitive, oracle and deep methods."""

from .base import Separation, Separator

__all__ = ["Separation", "Separator"]
