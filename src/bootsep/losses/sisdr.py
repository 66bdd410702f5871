"""Negative SI-SDR (or SNR) losses on waveforms ``(batch, n_src, samples)``.

Lower is better. ``neg_si_sdr_loss`` averages over sources and returns ``(batch,)``;
``pairwise_neg_si_sdr_loss`` returns ``(batch, n_src_est, n_src_ref)`` for
:class:`~bootsep.losses.pit.PITLossWrapper`. Both are the negated metrics
:func:`bootsep.metrics.bsseval.si_sdr` / :func:`~bootsep.metrics.bsseval.pairwise_si_sdr` (the
one training SI-SDR).
"""

from __future__ import annotations

import torch

from ..metrics.bsseval import pairwise_si_sdr, si_sdr


def _check(est: torch.Tensor, ref: torch.Tensor) -> None:
    if est.dim() != 3 or est.shape != ref.shape:
        raise ValueError(f"estimates {tuple(est.shape)} and references {tuple(ref.shape)} must "
                         "both be (batch, n_src, samples) with the same batch and length")


def neg_si_sdr_loss(est_audio: torch.Tensor, ref_audio: torch.Tensor, eps: float = 1e-8,
                    scaling: bool = True, zero_mean: bool = True) -> torch.Tensor:
    """Negative SI-SDR in dB, averaged over sources.

    Args:
        est_audio: ``(batch, n_src, samples)`` estimated waveforms.
        ref_audio: ``(batch, n_src, samples)`` reference waveforms, same order.
        eps: stabiliser (default 1e-8) added to ``||s||²`` in the scale and to both energies.
        scaling: True (default) = SI-SDR; False = SNR (no optimal rescaling of the reference).
        zero_mean: subtract each signal's mean first (default True).
    Returns:
        ``(batch,)``; differentiable.
    """
    _check(est_audio, ref_audio)
    return -si_sdr(est_audio, ref_audio, eps, scaling, zero_mean).mean(dim=-1)


def pairwise_neg_si_sdr_loss(est_audio: torch.Tensor, ref_audio: torch.Tensor,
                             eps: float = 1e-8, scaling: bool = True,
                             zero_mean: bool = True) -> torch.Tensor:
    """``(batch, n_est, samples)``, ``(batch, n_ref, samples)`` -> ``(batch, n_est, n_ref)``.

    Entry ``[b, i, j]`` is the negative SI-SDR (dB) of estimate ``i`` against reference ``j``
    (``ValueError`` unless both are ``(batch, n_src, samples)`` with the same batch and length).
    Memory: materialises ``batch * n_est * n_ref * samples`` values.
    """
    return -pairwise_si_sdr(est_audio, ref_audio, eps, scaling, zero_mean)
