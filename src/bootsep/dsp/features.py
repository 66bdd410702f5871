"""Spectral features computed on the model's device (never in CPU data workers).

Shapes follow the project convention: magnitudes ``(batch, time, freq)``.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

EPS = 1e-8


def amplitude_to_db(mag: torch.Tensor, top_db: float | None = 80.0) -> torch.Tensor:
    """``20 log10 |X|`` in dB relative to each example's maximum, floored at ``-top_db``.

    Args:
        mag: magnitude ``(batch, ...)``, linear amplitude.
        top_db: dynamic range kept below each example's peak (dB); ``None`` keeps all.
    Returns:
        dB values ``(batch, ...)``, max 0 per example.
    """
    db = 20.0 * torch.log10(mag.clamp_min(EPS))
    peak = db.flatten(1).amax(dim=1).view(-1, *([1] * (db.dim() - 1)))
    db = db - peak
    if top_db is not None:
        db = db.clamp_min(-top_db)
    return db


def standardize(x: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Per-example zero mean / unit variance over all non-batch dimensions."""
    dims = tuple(range(1, x.dim()))
    mean = x.mean(dim=dims, keepdim=True)
    std = x.std(dim=dims, keepdim=True)
    return (x - mean) / (std + eps)


def standardize_per_frequency(x: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Per-example, per-frequency zero mean / unit variance over time (cepstral mean and
    variance normalisation on a spectrogram). ``(batch, time, freq)`` -> same shape.

    It removes each example's long-term average spectrum (a talker's or instrument's
    timbre, the room's and microphone's colouring) and keeps how each band moves over time.
    """
    mean = x.mean(dim=1, keepdim=True)
    std = x.std(dim=1, keepdim=True)
    return (x - mean) / (std + eps)


#: what :func:`log_magnitude_features` standardises over: the whole example (default) or each
#: frequency band separately
INPUT_NORMS = ("example", "frequency")


def log_magnitude_features(mag: torch.Tensor, top_db: float = 80.0,
                           norm: str = "example") -> torch.Tensor:
    """The model input: dB magnitude (re. each example's max, floored ``top_db`` below it),
    standardised per example (``norm='example'``, default: over time and frequency) or per
    example and frequency band (``'frequency'``: :func:`standardize_per_frequency`).
    ``(batch, time, freq)`` -> same shape."""
    db = amplitude_to_db(mag, top_db)
    if norm == "example":
        return standardize(db)
    if norm == "frequency":
        return standardize_per_frequency(db)
    raise ValueError(f"input normalisation must be one of {INPUT_NORMS}, got {norm!r}")


@functools.lru_cache(maxsize=16)
def _mel_np(sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float | None) -> np.ndarray:
    import warnings

    import librosa

    with warnings.catch_warnings():  # more bands than FFT bins (e.g. 300 on 257) leaves some empty
        warnings.filterwarnings("ignore", message="Empty filters detected")
        fb = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
    fb = fb / np.maximum(fb.sum(axis=1, keepdims=True), 1e-12)  # each filter sums to 1
    return fb.astype(np.float32)


def rank_percentile(values: torch.Tensor, percentile: float) -> torch.Tensor:
    """The ``percentile``-th (0-100) percentile of ``values`` (any shape, flattened) without
    interpolation: the value of rank ``round(percentile / 100 * (n - 1))`` in ascending order
    (0 = the smallest, 100 = the largest); a 0-d tensor. "Loud bins" are those ``>=`` it."""
    flat = values.reshape(-1)
    k = int(round(float(percentile) / 100.0 * (flat.numel() - 1))) + 1
    return flat.kthvalue(min(max(k, 1), flat.numel())).values


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, fmin: float = 0.0,
                   fmax: float | None = None) -> torch.Tensor:
    """Mel filterbank ``(n_mels, n_fft // 2 + 1)`` with each filter normalised to sum 1.

    With more bands than the FFT resolves (the reference's 300 bands on 257 bins), some filters
    are empty and stay all-zero rows.
    """
    return torch.from_numpy(_mel_np(int(sample_rate), int(n_fft), int(n_mels), float(fmin), fmax).copy())


def ideal_binary_mask(source_mags: torch.Tensor, mix_mag: torch.Tensor | None = None,
                      silence_db: float | None = -40.0) -> torch.Tensor:
    """One-hot dominant-source assignment per T-F bin.

    Args:
        source_mags: ``(batch, n_src, time, freq)`` source magnitudes.
        mix_mag: ``(batch, time, freq)``; with ``silence_db`` set, bins quieter than
            ``silence_db`` dB below the example's peak get an all-zero row.
    Returns:
        ``(batch, n_src, time, freq)`` float 0/1.
    """
    idx = source_mags.argmax(dim=1, keepdim=True)
    ibm = torch.zeros_like(source_mags).scatter_(1, idx, 1.0)
    if silence_db is not None and mix_mag is not None:
        loud = amplitude_to_db(mix_mag, top_db=None) > silence_db
        ibm = ibm * loud.unsqueeze(1).to(ibm.dtype)
    return ibm


def magnitude_weights(mix_mag: torch.Tensor) -> torch.Tensor:
    """Deep-clustering T-F weights ``sqrt(|X| / sum|X| * T * F)``, shape ``(batch, time, freq)``."""
    b = mix_mag.shape[0]
    flat = mix_mag.reshape(b, -1)
    w = flat / flat.sum(dim=1, keepdim=True).clamp_min(EPS) * flat.shape[1]
    return w.sqrt().reshape(mix_mag.shape)
