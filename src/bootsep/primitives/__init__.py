"""Primitive separators (repetition, micromodulation, HPSS, timbre, pitch, spatial), oracle baselines,
the primitive ensemble and confidence measures.

Names are resolved lazily on first access (``from bootsep.primitives import Repet``), so
importing the package does no work. Names not listed below are looked up in the optional
``pitch`` and ``confidence`` modules, if they exist.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "Repet": "repet",
    "beat_spectrum": "repet",
    "RepetSim": "repet_sim",
    "FT2D": "ft2d",
    "HPSS": "hpss",
    "TimbreClustering": "timbre",
    "SpatialClustering": "spatial",
    "IdealBinaryMask": "oracle",
    "IdealRatioMask": "oracle",
    "WienerFilter": "oracle",
    "MixAsEstimate": "oracle",
    "HighLowPassFilter": "oracle",
    "EnsembleClustering": "ensemble",
    "AdaptiveEnsemble": "ensemble",
    "primitive_clustering": "ensemble",
}
_OPTIONAL_MODULES = ("pitch", "confidence")

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    if not name.startswith("_"):
        for mod_name in _OPTIONAL_MODULES:
            try:
                mod = importlib.import_module(f".{mod_name}", __name__)
            except ImportError:
                continue
            if hasattr(mod, name):
                value = getattr(mod, name)
                globals()[name] = value
                return value
        if name in globals():  # a submodule that the imports above just bound
            return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
