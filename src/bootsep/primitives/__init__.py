"""Primitive separators (repetition, micromodulation, HPSS, timbre, pitch, spatial), oracle
baselines, the primitive ensemble and confidence measures.

Every separator is a :class:`~bootsep.separation.base.Separator` (plain class, no gin; gin names
are in ``config.registry``). The names below are imported plainly: every module but
``confidence`` needs torch anyway, and importing all of them after torch took 0.2 s
(sklearn is imported only when a clustering runs).
May import: dsp, separation, utils.
"""

from .confidence import MEASURES, compute_confidences, select_loud_bins
from .ensemble import AdaptiveEnsemble, EnsembleClustering, primitive_clustering
from .ft2d import FT2D
from .hpss import HPSS
from .oracle import HighLowPassFilter, IdealBinaryMask, IdealRatioMask, MixAsEstimate, WienerFilter
from .pitch import PitchContinuity
from .repet import Repet, beat_spectrum
from .repet_sim import RepetSim
from .spatial import SpatialClustering
from .timbre import TimbreClustering

__all__ = [
    "FT2D", "HPSS", "MEASURES", "AdaptiveEnsemble", "EnsembleClustering", "HighLowPassFilter",
    "IdealBinaryMask", "IdealRatioMask", "MixAsEstimate", "PitchContinuity", "Repet", "RepetSim",
    "SpatialClustering", "TimbreClustering", "WienerFilter", "beat_spectrum",
    "compute_confidences", "primitive_clustering", "select_loud_bins",
]
