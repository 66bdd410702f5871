"""Separation models (``torch.nn.Module``): deep clustering, mask inference, chimera.

Every model takes a magnitude ``(batch, time, freq)`` and returns a dict with keys among
``'embedding'`` ``(batch, time, freq, dim)``, ``'mask'`` and ``'estimates'``
``(batch, n_src, time, freq)``. See :mod:`bootsep.models.base` for (de)serialisation.
"""

from .base import (
    MODELS,
    SeparationModel,
    build_model,
    load_model,
    register_model,
    resolve_model_class,
)
from .recurrent import Chimera, DeepClustering, MaskInference, RecurrentStack

__all__ = [
    "MODELS",
    "Chimera",
    "DeepClustering",
    "MaskInference",
    "RecurrentStack",
    "SeparationModel",
    "build_model",
    "load_model",
    "register_model",
    "resolve_model_class",
]
