"""Negative SI-SDR (or SNR) losses on waveforms ``(batch, n_src, samples)``.

Lower is better. ``neg_si_sdr_loss`` averages over sources and returns ``(batch,)``;
``pairwise_neg_si_sdr_loss`` returns ``(batch, n_src_est, n_src_ref)`` for
:class:`~bootsep.losses.pit.PITLossWrapper`.
"""

from __future__ import annotations

import torch


def _sdr(est: torch.Tensor, ref: torch.Tensor, eps: float, scaling: bool,
         zero_mean: bool) -> torch.Tensor:
    """Elementwise over leading dims: SI-SDR (``scaling``) or SNR in dB, last dim = samples."""
    if zero_mean:
        est = est - est.mean(dim=-1, keepdim=True)
        ref = ref - ref.mean(dim=-1, keepdim=True)
    if scaling:
        alpha = (est * ref).sum(dim=-1, keepdim=True) / (
            ref.square().sum(dim=-1, keepdim=True) + eps)
        ref = alpha * ref
    num = ref.square().sum(dim=-1)
    den = (est - ref).square().sum(dim=-1)
    return 10.0 * torch.log10((num + eps) / (den + eps))


def _check(est: torch.Tensor, ref: torch.Tensor, pairwise: bool) -> None:
    ok = est.dim() == 3 and ref.dim() == 3 and est.shape[0] == ref.shape[0] \
        and est.shape[-1] == ref.shape[-1] and (pairwise or est.shape[1] == ref.shape[1])
    if not ok:
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
    _check(est_audio, ref_audio, pairwise=False)
    return -_sdr(est_audio, ref_audio, eps, scaling, zero_mean).mean(dim=-1)


def pairwise_neg_si_sdr_loss(est_audio: torch.Tensor, ref_audio: torch.Tensor,
                             eps: float = 1e-8, scaling: bool = True,
                             zero_mean: bool = True) -> torch.Tensor:
    """``(batch, n_est, samples)``, ``(batch, n_ref, samples)`` -> ``(batch, n_est, n_ref)``.

    Entry ``[b, i, j]`` is the negative SI-SDR (dB) of estimate ``i`` against reference ``j``.
    Memory: materialises ``batch * n_est * n_ref * samples`` values.
    """
    _check(est_audio, ref_audio, pairwise=True)
    return -_sdr(est_audio.unsqueeze(2), ref_audio.unsqueeze(1), eps, scaling, zero_mean)
