"""Separation models (``torch.nn.Module``): deep clustering, mask inference, chimera, and the
paper's zoo (dual-path chimera, Open-Unmix-style, BLSTM mel baseline, conditional centroids).

Every model takes a magnitude ``(batch, time, freq)`` and returns a dict with keys among
``'embedding'`` ``(batch, time, freq, dim)``, ``'mask'`` and ``'estimates'``
``(batch, n_src, time, freq)``. See :mod:`bootsep.models.base` for (de)serialisation.

Plain ``nn.Module``s, no gin. May import: dsp, utils.
"""

from .base import (
    MODELS,
    SeparationModel,
    build_model,
    load_model,
    register_model,
    resolve_model_class,
)
from .centroids import ConditionalCentroids
from .dualpath import DualPathChimera
from .mel_baseline import MelMaskBLSTM
from .openunmix import OpenUnmix
from .recurrent import Chimera, DeepClustering, MaskInference, RecurrentStack

__all__ = [
    "MODELS",
    "Chimera",
    "ConditionalCentroids",
    "DualPathChimera",
    "MelMaskBLSTM",
    "OpenUnmix",
    "DeepClustering",
    "MaskInference",
    "RecurrentStack",
    "SeparationModel",
    "build_model",
    "load_model",
    "register_model",
    "resolve_model_class",
]
