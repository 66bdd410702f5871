"""Per-T-F confidence of bootstrapped training targets, for weighting clustering losses.

Bootstrapped sources are a teacher's soft-masked mixtures, ``S_k = m_k X``, so the teacher's
per-bin confidence can be recovered from the source magnitudes alone, on the device, at
training time: ``p_k = |S_k| / sum_j |S_j|`` (= ``m_k`` for a coherent mixture) and

    dominance = (K max_k p_k - 1) / (K - 1)    in [0, 1]

(1 where one source owns the bin, 0 where the teacher split it evenly or the bin is silent).
Multiplied with the deep-clustering magnitude weights it down-weights the bins the teacher was
unsure about (:func:`confidence_weights`). On ground-truth sources it is the dominance of the
strongest source, which is harmless.
"""

from __future__ import annotations

import torch


def dominance(source_magnitudes: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """``(batch, n_src, time, freq)`` magnitudes -> ``(batch, time, freq)`` in [0, 1]."""
    mags = source_magnitudes.abs() if source_magnitudes.is_complex() else source_magnitudes
    k = mags.shape[1]
    if k < 2:
        return torch.ones_like(mags[:, 0])
    total = mags.sum(dim=1)
    p_max = mags.amax(dim=1) / total.clamp_min(eps)
    d = (k * p_max - 1.0) / (k - 1.0)
    return torch.where(total > eps, d.clamp(0.0, 1.0), torch.zeros_like(d))


def confidence_weights(mix_magnitude: torch.Tensor, source_magnitudes: torch.Tensor,
                       power: float = 1.0) -> torch.Tensor:
    """Deep-clustering weights ``sqrt(|X| / sum|X| * T * F) * dominance ** power``,
    ``(batch, time, freq)``; pass them as the clustering losses' ``weights``."""
    from ..dsp.features import magnitude_weights

    return magnitude_weights(mix_magnitude) * dominance(source_magnitudes) ** float(power)
