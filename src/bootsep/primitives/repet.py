"""REPET: the REpeating Pattern Extraction Technique (Rafii & Pardo, 2013).

The repeating background of a mixture is modelled by one period-long "repeating segment":
the element-wise median of all period-aligned segments of the magnitude spectrogram. Whatever
does not repeat (typically the voice) is the foreground.
"""

from __future__ import annotations

import torch

from ..dsp import STFT
from ..separation.base import Separator
from ._filters import (
    background_foreground,
    check_mask_type,
    high_pass_bins,
    magnitude,
    ratio_mask,
)


def beat_spectrum(mag: torch.Tensor) -> torch.Tensor:
    """Beat spectrum of magnitudes ``(batch, time, freq)`` -> ``(batch, time)`` (lags in frames).

    The autocorrelation over time of each frequency row of the power spectrogram ``|X|^2``,
    computed with a zero-padded FFT, made unbiased (divided by the number of overlapping
    frames), averaged over frequency and normalised so that lag 0 is 1.
    """
    power = mag.pow(2)
    t = power.shape[-2]
    n_fft = 1 << (2 * t - 1).bit_length()
    spec = torch.fft.rfft(power, n=n_fft, dim=-2)
    acf = torch.fft.irfft(spec.real.pow(2) + spec.imag.pow(2), n=n_fft, dim=-2)[..., :t, :]
    overlap = torch.arange(t, 0, -1, device=mag.device, dtype=acf.dtype)
    b = (acf / overlap[:, None]).mean(dim=-1)
    return b / b[..., :1].clamp_min(torch.finfo(b.dtype).tiny)


def repeating_model(mag: torch.Tensor, period: int) -> torch.Tensor:
    """Median repeating spectrogram of one example ``(time, freq)`` for ``period`` frames.

    Frames are cut into ``ceil(time / period)`` period-aligned segments (the last one is
    padded with NaN and ignored by the median); the segment-wise median is tiled back to
    ``(time, freq)`` and capped by the mixture (``min(model, |X|)``).
    """
    t, f = mag.shape
    period = int(max(1, min(period, t)))
    n_seg = -(-t // period)
    padded = torch.full((n_seg * period, f), float("nan"), dtype=mag.dtype, device=mag.device)
    padded[:t] = mag
    segment = padded.view(n_seg, period, f).nanmedian(dim=0).values  # (period, freq)
    tiled = segment.repeat(n_seg, 1)[:t]
    return torch.minimum(tiled, mag)


class Repet(Separator):
    """REPET with a single repeating period per example.

    Args:
        sample_rate: Hz (default 16000).
        stft: the shared STFT (default 512/128 sqrt-Hann).
        min_period: shortest allowed period in seconds (default 0.8).
        max_period: longest allowed period in seconds (default 8); it is further capped at a
            third of the excerpt's duration so that at least three repetitions are compared.
            If the excerpt is shorter than ``3 * min_period`` the range collapses to
            ``min_period`` (capped at the excerpt length).
        period: fix the period in seconds instead of picking it from the beat spectrum.
        high_pass_cutoff: bins below this frequency (Hz) go to the background (default 100).
        mask_power: 1 (default) gives REPET's ``min(model, |X|) / |X|``; other values compare
            the model with the residual Wiener-style (see ``_filters.ratio_mask``).
        mask_type: ``'soft'`` (default) or ``'binary'`` (threshold 0.5).
        source_labels: default ``('accompaniment', 'vocals')`` = [background, foreground].
        device: see :class:`Separator`.

    ``masks`` returns ``(batch, 2, time, freq)`` = [repeating background, foreground]; each
    example of the batch gets its own period. Cost is O(T F log T) plus a median over
    ``T / period`` segments.
    """

    def __init__(self, sample_rate: int = 16000, stft: STFT | None = None,
                 min_period: float = 0.8, max_period: float = 8.0, period: float | None = None,
                 high_pass_cutoff: float = 100.0, mask_power: float = 1.0,
                 mask_type: str = "soft", source_labels=("accompaniment", "vocals"),
                 device: str | None = None):
        super().__init__(sample_rate, stft, source_labels, device)
        if min_period <= 0 or max_period <= 0:
            raise ValueError("min_period and max_period must be positive (seconds)")
        if period is not None and period <= 0:
            raise ValueError(f"period must be positive (seconds), got {period}")
        self.min_period = float(min_period)
        self.max_period = float(max_period)
        self.period = None if period is None else float(period)
        self.high_pass_cutoff = float(high_pass_cutoff)
        self.mask_power = float(mask_power)
        self.mask_type = check_mask_type(mask_type)

    def _frames(self, seconds: float) -> int:
        return int(round(seconds * self.sample_rate / self.stft.hop_length))

    def period_range(self, num_frames: int) -> tuple[int, int]:
        """Allowed period range ``(min, max)`` in frames for an excerpt of ``num_frames``."""
        duration = num_frames * self.stft.hop_length / self.sample_rate
        lo = max(1, self._frames(self.min_period))
        hi = self._frames(min(self.max_period, duration / 3.0))
        lo = min(lo, num_frames)
        return lo, min(max(hi, lo), num_frames)

    def beat_spectrum(self, mix_spec: torch.Tensor) -> torch.Tensor:
        """``(batch, time, freq)`` complex -> beat spectrum ``(batch, time)`` (see module fn)."""
        return beat_spectrum(magnitude(mix_spec))

    def repeating_period(self, mix_spec: torch.Tensor) -> torch.Tensor:
        """Period in frames per example, ``(batch,)`` long tensor."""
        return self._periods(magnitude(mix_spec))

    def _periods(self, mag: torch.Tensor) -> torch.Tensor:
        b, t, _ = mag.shape
        if self.period is not None:
            p = min(max(1, self._frames(self.period)), t)
            return torch.full((b,), p, dtype=torch.long, device=mag.device)
        lo, hi = self.period_range(t)
        if hi >= t:  # lag t is undefined: whole excerpt = one segment
            hi = t - 1
        if hi < lo:
            return torch.full((b,), min(lo, t), dtype=torch.long, device=mag.device)
        bs = beat_spectrum(mag)[:, lo:hi + 1]
        return bs.argmax(dim=-1) + lo

    def masks(self, mix_spec: torch.Tensor, source_specs: torch.Tensor | None = None) -> torch.Tensor:
        mag = magnitude(mix_spec)
        periods = self._periods(mag).tolist()
        model = torch.stack([repeating_model(mag[i], p) for i, p in enumerate(periods)])
        bg = ratio_mask(model, mag, self.mask_power)
        hp = high_pass_bins(self.stft, self.sample_rate, self.high_pass_cutoff)
        return background_foreground(bg, hp, self.mask_type)
