"""Median-filtering harmonic/percussive separation (Fitzgerald, 2010), as in librosa's ``hpss``.

Harmonic sounds are smooth along time, percussive ones along frequency: a running median over
time keeps the former, over frequency the latter; the two filtered spectrograms give
Wiener-style soft masks.
"""

from __future__ import annotations

import math

import torch

from ..dsp import STFT
from ..separation.base import Separator
from ._filters import magnitude, median_filter_1d, soft_ratio


class HPSS(Separator):
    """Harmonic/percussive soft masks from median filters of ``|X|``.

    Args:
        sample_rate: Hz (default 16000).
        stft: the shared STFT (default 512/128 sqrt-Hann).
        kernel_size: median length in frames (harmonic, along time) and bins (percussive, along
            frequency); an int for both or a pair ``(harmonic, percussive)``; default 31.
        power: mask exponent, ``H^p / (H^p + P^p)`` (default 2.0; ``inf`` = binary mask).
        source_labels: default ``('harmonic', 'percussive')``.
        device: see :class:`Separator`.

    ``masks`` returns ``(batch, 2, time, freq)`` = [harmonic, percussive], summing to 1
    (bins where both medians are 0 get 0.5 each). Borders use half-sample symmetric
    reflection, so the masks equal ``librosa.decompose.hpss(S, mask=True)`` on non-silent
    input. In the ensemble the harmonic mask is the vocals-like feature (``returns=[[0]]``).
    """

    def __init__(self, sample_rate: int = 16000, stft: STFT | None = None,
                 kernel_size: int | tuple[int, int] = 31, power: float = 2.0,
                 source_labels=("harmonic", "percussive"), device: str | None = None):
        super().__init__(sample_rate, stft, source_labels, device)
        if isinstance(kernel_size, int):
            kernel_size = (kernel_size, kernel_size)
        kernel_size = tuple(int(k) for k in kernel_size)
        if len(kernel_size) != 2 or min(kernel_size) < 1:
            raise ValueError(f"kernel_size must be a positive int or pair, got {kernel_size}")
        if not (power > 0 or math.isinf(power)):
            raise ValueError(f"power must be > 0, got {power}")
        self.kernel_size = kernel_size
        self.power = float(power)

    def filtered(self, mix_spec: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Median-filtered magnitudes ``(harmonic, percussive)``, each ``(batch, time, freq)``."""
        mag = magnitude(mix_spec)
        harm = median_filter_1d(mag, self.kernel_size[0], dim=-2)
        perc = median_filter_1d(mag, self.kernel_size[1], dim=-1)
        return harm, perc

    def masks(self, mix_spec: torch.Tensor, source_specs: torch.Tensor | None = None) -> torch.Tensor:
        harm, perc = self.filtered(mix_spec)
        mask_h = soft_ratio(harm, perc, self.power)
        return torch.stack([mask_h, 1.0 - mask_h], dim=1)
