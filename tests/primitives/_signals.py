"""Synthetic test signals and a reference SI-SDR for the primitive separators (16 kHz)."""

from __future__ import annotations

import numpy as np
import torch

from bootsep.dsp import STFT

SR = 16000


def si_sdr(estimate, reference) -> float:
    """Scale-invariant SDR in dB of one ``(samples,)`` estimate against its reference."""
    est = np.asarray(estimate, dtype=np.float64)
    ref = np.asarray(reference, dtype=np.float64)
    est = est - est.mean()
    ref = ref - ref.mean()
    alpha = np.dot(est, ref) / max(np.dot(ref, ref), 1e-12)
    target = alpha * ref
    noise = est - target
    return float(10 * np.log10(max(np.dot(target, target), 1e-12) / max(np.dot(noise, noise), 1e-12)))


def _env(n: int, sr: int, decay_s: float) -> np.ndarray:
    return np.exp(-np.arange(n) / (decay_s * sr))


def drum_loop(duration: float = 6.0, period: float = 1.0, sr: int = SR, seed: int = 0) -> np.ndarray:
    """An exactly repeating drum pattern (kick, snare, hi-hats) of ``period`` seconds."""
    rng = np.random.default_rng(seed)
    n = int(round(period * sr))
    bar = np.zeros(n)
    t = np.arange(n) / sr

    def add(at: float, sig: np.ndarray):
        i = int(at * sr)
        m = min(len(sig), n - i)
        bar[i:i + m] += sig[:m]

    kick_len = int(0.25 * sr)
    tk = t[:kick_len]
    kick = np.sin(2 * np.pi * (55 * tk + 60 * (1 - np.exp(-tk / 0.03)) * 0.03)) * _env(kick_len, sr, 0.08)
    snare = rng.standard_normal(int(0.2 * sr)) * _env(int(0.2 * sr), sr, 0.04)
    snare += 0.5 * np.sin(2 * np.pi * 190 * t[:len(snare)]) * _env(len(snare), sr, 0.05)
    for at in (0.0, 0.5 * period):
        add(at, 1.0 * kick)
    for at in (0.25 * period, 0.75 * period):
        add(at, 0.6 * snare)
    for j in range(8):
        hat = rng.standard_normal(int(0.05 * sr)) * _env(int(0.05 * sr), sr, 0.008)
        hat = np.diff(hat, prepend=0.0)  # bright
        add(j * period / 8, 0.3 * hat)
    reps = int(np.ceil(duration / period))
    return np.tile(bar, reps)[: int(duration * sr)]


def glide(duration: float = 6.0, sr: int = SR, f_start: float = 260.0, f_end: float = 640.0,
          n_harmonics: int = 8) -> np.ndarray:
    """A non-repeating voice-like harmonic glide with vibrato and irregular phrases."""
    t = np.arange(int(duration * sr)) / sr
    f0 = f_start * (f_end / f_start) ** (t / duration) * (1 + 0.03 * np.sin(2 * np.pi * 5.3 * t))
    phase = 2 * np.pi * np.cumsum(f0) / sr
    sig = sum(np.sin(k * phase) / k for k in range(1, n_harmonics + 1))
    gate = np.ones_like(t)
    for a, b in ((1.3, 1.55), (3.1, 3.4), (4.7, 4.85)):  # irregular breaths
        gate[(t > a) & (t < b)] = 0.0
    gate = np.convolve(gate, np.hanning(801) / np.hanning(801).sum(), mode="same")
    return sig * gate


def normalise(x: np.ndarray, rms: float = 0.1) -> np.ndarray:
    return x * (rms / np.sqrt(np.mean(x ** 2)))


def separate_np(separator, mix: np.ndarray, sources=None) -> np.ndarray:
    """Run ``separator.separate`` on a mono numpy mixture; returns ``(n_src, samples)``."""
    src = None if sources is None else torch.as_tensor(np.stack(sources))[:, None]
    out = separator.separate(torch.as_tensor(mix), src)
    return out.estimates[:, 0].numpy()


def spec_of(stft: STFT, *signals) -> torch.Tensor:
    """Complex ``(batch, time, freq)`` spectrogram of equally long numpy signals."""
    return stft(torch.as_tensor(np.stack(signals)))
