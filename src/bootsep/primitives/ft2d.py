"""2DFT separation: repetition ("2DFT-R") and micromodulation ("2DFT-M") primitives.

Seetharaman, Pishdadian & Pardo (2017), with the soft ``local_std`` peak picking of
Seetharaman's thesis (2019). Repeating patterns in the magnitude spectrogram concentrate in
isolated peaks of its 2-D Fourier transform; the peak part inverts to the repeating
background, the peak-free part to the foreground.

Layout: the 2-D FFT is taken over the last two dims of ``|X|`` ``(batch, time, freq)``, so its
axes are (rate = temporal modulation, scale = spectral modulation). Filtering is circular (the
2-D spectrum is periodic), in the unshifted layout.
"""

from __future__ import annotations

import torch

from ..dsp import STFT
from ..separation.base import Separator
from ._filters import (
    background_foreground,
    check_mask_type,
    filter_2d,
    high_pass_bins,
    magnitude,
    max_filter_1d,
    mean_filter_1d,
)

FILTER_APPROACHES = ("local_std", "original")
_EPS = 1e-7


def _reflect(x: torch.Tensor, dim: int) -> torch.Tensor:
    """``y[k] = x[-k mod n]`` along ``dim`` (the frequency reflection of a DFT axis)."""
    return torch.roll(torch.flip(x, dims=(dim,)), 1, dims=dim)


def mirror(m: torch.Tensor) -> torch.Tensor:
    """Four-fold symmetric version of a 2-D spectral filter ``(..., rate, scale)``.

    The maximum of ``m`` and its reflections along either axis and both, so that a kept
    peak keeps its conjugate partner (the inverse stays real) and its mirror images.
    """
    r = _reflect(m, -2)
    return torch.maximum(torch.maximum(m, r), torch.maximum(_reflect(m, -1), _reflect(r, -1)))


def quadrant_mask(shape: tuple[int, int], quadrants, device=None) -> torch.Tensor:
    """0/1 mask ``(rate, scale)`` keeping the listed quadrants of the unshifted 2-D spectrum.

    Quadrants (first half of an axis = non-negative frequencies): 0 = (rate >= 0, scale < 0),
    1 = (rate >= 0, scale >= 0), 2 = (rate < 0, scale >= 0), 3 = (rate < 0, scale < 0).
    (0, 2) keep one direction of spectro-temporal sweeps, (1, 3) the other.
    """
    t, f = shape
    rate_neg = torch.arange(t, device=device) >= t // 2
    scale_neg = torch.arange(f, device=device) >= f // 2
    keep = torch.zeros(t, f, dtype=torch.bool, device=device)
    for q in quadrants:
        if q == 0:
            keep |= (~rate_neg)[:, None] & scale_neg[None, :]
        elif q == 1:
            keep |= (~rate_neg)[:, None] & (~scale_neg)[None, :]
        elif q == 2:
            keep |= rate_neg[:, None] & (~scale_neg)[None, :]
        elif q == 3:
            keep |= rate_neg[:, None] & scale_neg[None, :]
        else:
            raise ValueError(f"quadrants_to_keep must be in 0..3, got {q}")
    return keep


class FT2D(Separator):
    """2DFT repetition (``use_bg_2dft=True``, "2DFT-R") / micromodulation ("2DFT-M") separator.

    Args:
        sample_rate: Hz (default 16000).
        stft: the shared STFT (default 512/128 sqrt-Hann).
        neighborhood_size: peak-picking window ``(scale, rate)`` = (along frequency, along
            time) in 2-D FFT bins, the reference's ``(f, t)`` order; default ``(1, 35)``.
        high_pass_cutoff: bins below this frequency (Hz) are forced to background (250).
        use_bg_2dft: True (default) builds the mask from the peak part (background = repeating
            part, "2DFT-R"); False from the peak-free part (foreground, "2DFT-M").
        quadrants_to_keep: quadrants of the 2-D spectrum kept before inversion (default all
            four; see :func:`quadrant_mask`).
        filter_approach: ``'local_std'`` (default): soft peaks
            ``(local max - local mean) / local std``, kept only at local maxima, normalised to
            max 1 per example; ``'original'``: binary peaks = local maxima whose local range
            exceeds the standard deviation of the normalised 2-D magnitude.
        mask_type: ``'soft'`` (default) or ``'binary'``.
        source_labels: default ``('accompaniment', 'vocals')`` = [background, foreground].
        device: see :class:`Separator`.

    The peaks are mirrored (:func:`mirror`); ``part = peaks * FFT2`` (R) or
    ``(1 - peaks) * FFT2`` (M); ``mask = min(|ifft2(part)|, |X|) / |X|`` normalised to max 1
    per example; the other source gets ``1 - mask``. :meth:`both_masks` returns the R and M
    masks from one 2-D FFT and one inverse FFT (the M part is ``|X| - ifft2(R part)``).
    """

    def __init__(self, sample_rate: int = 16000, stft: STFT | None = None,
                 neighborhood_size: tuple[int, int] = (1, 35), high_pass_cutoff: float = 250.0,
                 use_bg_2dft: bool = True, quadrants_to_keep: tuple[int, ...] = (0, 1, 2, 3),
                 filter_approach: str = "local_std", mask_type: str = "soft",
                 source_labels=("accompaniment", "vocals"), device: str | None = None):
        super().__init__(sample_rate, stft, source_labels, device)
        size = tuple(int(s) for s in neighborhood_size)
        if len(size) != 2 or min(size) < 1:
            raise ValueError(f"neighborhood_size must be two positive ints, got {neighborhood_size}")
        if filter_approach not in FILTER_APPROACHES:
            raise ValueError(f"unknown filter_approach {filter_approach!r}; "
                             f"choose one of {FILTER_APPROACHES}")
        quadrant_mask((2, 2), quadrants_to_keep)  # validates
        self.neighborhood_size = size
        self.high_pass_cutoff = float(high_pass_cutoff)
        self.use_bg_2dft = bool(use_bg_2dft)
        self.quadrants_to_keep = tuple(sorted(set(int(q) for q in quadrants_to_keep)))
        self.filter_approach = filter_approach
        self.mask_type = check_mask_type(mask_type)

    def analysis_key(self) -> tuple:
        """Settings that determine both the R and the M masks (everything but ``use_bg_2dft``).

        Two FT2D instances with equal keys share one computation in an ensemble.
        """
        return ("FT2D", self.sample_rate, self.stft.params, self.neighborhood_size,
                self.high_pass_cutoff, self.quadrants_to_keep, self.filter_approach,
                self.mask_type)

    def peaks(self, spec2d_mag: torch.Tensor) -> torch.Tensor:
        """Soft (or binary) peak map in [0, 1] of ``|FFT2|`` ``(batch, rate, scale)``, mirrored."""
        data = spec2d_mag / (spec2d_mag.flatten(1).amax(dim=1).view(-1, 1, 1) + _EPS)
        # our axes are (rate, scale); neighborhood_size is given as (scale, rate)
        size = (self.neighborhood_size[1], self.neighborhood_size[0])
        local_max = filter_2d(max_filter_1d, data, size)
        if self.filter_approach == "local_std":
            mean = filter_2d(mean_filter_1d, data, size)
            mean_sq = filter_2d(mean_filter_1d, data * data, size)
            std = (mean_sq - mean * mean).clamp_min(0).sqrt() + _EPS
            m = (local_max - mean) / std * (data == local_max).to(data.dtype)
            m = m / (m.flatten(1).amax(dim=1).view(-1, 1, 1) + _EPS)
        else:
            local_min = -filter_2d(max_filter_1d, -data, size)
            thresh = data.flatten(1).std(dim=1).view(-1, 1, 1)
            m = ((data == local_max) & ((local_max - local_min) > thresh)).to(data.dtype)
        return mirror(m)

    def both_masks(self, mix_spec: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(masks_R, masks_M)``, each ``(batch, 2, time, freq)`` = [background, foreground]."""
        return self._compute(mix_spec, want_r=True, want_m=True)

    def _compute(self, mix_spec: torch.Tensor, want_r: bool, want_m: bool):
        mag = magnitude(mix_spec)
        spec2d = torch.fft.fft2(mag)
        bg_part = spec2d * self.peaks(spec2d.abs())
        all_quadrants = len(self.quadrants_to_keep) == 4
        keep = None if all_quadrants else quadrant_mask(mag.shape[-2:], self.quadrants_to_keep,
                                                        mag.device)
        bg_est = None
        if want_r or all_quadrants:
            bg_est = torch.fft.ifft2(bg_part if keep is None else bg_part * keep)
        hp = high_pass_bins(self.stft, self.sample_rate, self.high_pass_cutoff)
        denom = mag + _EPS
        masks_r = masks_m = None
        if want_r:
            r = self._normalised(torch.minimum(bg_est.abs(), denom) / denom)
            masks_r = background_foreground(r, hp, self.mask_type)
        if want_m:
            if keep is None:  # linearity: ifft2((1 - peaks) * FFT2) = |X| - ifft2(peaks * FFT2)
                fg_est = mag - bg_est
            else:
                fg_est = torch.fft.ifft2((spec2d - bg_part) * keep)
            m = self._normalised(torch.minimum(fg_est.abs(), denom) / denom)
            masks_m = background_foreground(1.0 - m, hp, self.mask_type)
        return masks_r, masks_m

    @staticmethod
    def _normalised(mask: torch.Tensor) -> torch.Tensor:
        return mask / (mask + _EPS).flatten(1).amax(dim=1).view(-1, 1, 1)

    def masks(self, mix_spec: torch.Tensor, source_specs: torch.Tensor | None = None) -> torch.Tensor:
        masks_r, masks_m = self._compute(mix_spec, self.use_bg_2dft, not self.use_bg_2dft)
        return masks_r if self.use_bg_2dft else masks_m
