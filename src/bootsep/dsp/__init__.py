"""Signal processing shared by every component: the one STFT, features, filterbanks."""

from .stft import STFT, STFTParams, make_window

__all__ = ["STFT", "STFTParams", "make_window"]
