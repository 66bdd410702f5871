"""Fixtures for the primitive tests: synthetic 16 kHz mixtures (see ``_signals``)."""

from __future__ import annotations

import numpy as np
import pytest

from bootsep.dsp import STFT

from ._signals import drum_loop, glide, normalise


@pytest.fixture(scope="session")
def stft() -> STFT:
    return STFT(512, 128, "sqrt_hann")


@pytest.fixture(scope="session")
def repetition_mix():
    """``(mix, [drums, glide])`` float32 numpy arrays, 6 s at 16 kHz, 0 dB."""
    drums = normalise(drum_loop())
    voice = normalise(glide())
    return (drums + voice).astype(np.float32), [drums.astype(np.float32), voice.astype(np.float32)]


@pytest.fixture(scope="session")
def second_mix():
    """A different 6 s mixture (other loop period and glide), for batch-vs-single checks."""
    drums = normalise(drum_loop(period=1.2, seed=1))
    voice = normalise(glide(f_start=520.0, f_end=210.0, n_harmonics=5))
    return (drums + voice).astype(np.float32), [drums.astype(np.float32), voice.astype(np.float32)]
