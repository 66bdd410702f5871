"""Signal processing shared by every component: the one STFT, features, filterbanks.

Plain functions and classes (no gin); the base layer. May import: nothing else from bootsep.
"""

from .features import (
    amplitude_to_db,
    ideal_binary_mask,
    log_magnitude_features,
    magnitude_weights,
    mel_filterbank,
    rank_percentile,
    standardize,
)
from .stft import STFT, STFTParams, make_window

__all__ = ["STFT", "STFTParams", "amplitude_to_db", "ideal_binary_mask",
           "log_magnitude_features", "magnitude_weights", "make_window", "mel_filterbank",
           "rank_percentile", "standardize"]
