"""Training targets on the shared STFT: magnitude / phase-sensitive approximations, the IBM
and the per-T-F confidence weights of bootstrapped targets (:func:`confidence_weights`).

Shapes: mixture ``(batch, time, freq)``, sources ``(batch, n_src, time, freq)``; every target
is ``(batch, n_src, time, freq)`` real, in the mixture's magnitude units.
"""

from __future__ import annotations

import torch


def _check(mix: torch.Tensor, sources: torch.Tensor) -> None:
    if sources.dim() != mix.dim() + 1 or sources.shape[0] != mix.shape[0] \
            or sources.shape[2:] != mix.shape[1:]:
        raise ValueError(f"sources {tuple(sources.shape)} must be (batch, n_src, time, freq) "
                         f"matching the mixture {tuple(mix.shape)} = (batch, time, freq)")


def msa_target(mix_mag: torch.Tensor, source_mags: torch.Tensor) -> torch.Tensor:
    """Magnitude spectrum approximation target ``min(|S|, |X|)``.

    Args:
        mix_mag: ``(batch, time, freq)`` mixture magnitude (complex input is abs'ed).
        source_mags: ``(batch, n_src, time, freq)`` source magnitudes (complex input is abs'ed).
    Returns:
        ``(batch, n_src, time, freq)``: each source magnitude truncated at the mixture's.
    """
    _check(mix_mag, source_mags)
    mix_mag = mix_mag.abs() if mix_mag.is_complex() else mix_mag
    source_mags = source_mags.abs() if source_mags.is_complex() else source_mags
    return torch.minimum(source_mags, mix_mag.unsqueeze(1))


def psa_target(mix_spec: torch.Tensor, source_specs: torch.Tensor) -> torch.Tensor:
    """Phase-sensitive approximation target ``clip(|S| cos(∠S - ∠X), 0, |X|)``.

    Args:
        mix_spec: ``(batch, time, freq)`` complex mixture STFT.
        source_specs: ``(batch, n_src, time, freq)`` complex source STFTs.
    Returns:
        ``(batch, n_src, time, freq)`` real; 0 where the mixture is exactly 0.
    """
    _check(mix_spec, source_specs)
    if not (mix_spec.is_complex() and source_specs.is_complex()):
        raise ValueError("psa_target needs complex spectrograms (use bootsep.dsp.STFT)")
    mix = mix_spec.unsqueeze(1)
    mix_mag = mix.abs()
    # |S| cos(∠S - ∠X) = Re(S X*) / |X|
    proj = (source_specs * mix.conj()).real / mix_mag.clamp_min(torch.finfo(mix_mag.dtype).tiny)
    return torch.minimum(proj.clamp_min(0.0), mix_mag)


def ibm(source_mags: torch.Tensor, mix_mag: torch.Tensor | None = None,
        silence_db: float | None = -40.0) -> torch.Tensor:
    """Ideal binary mask / deep-clustering assignments ``(batch, n_src, time, freq)``.

    Thin alias of :func:`bootsep.dsp.features.ideal_binary_mask`: one-hot dominant source per
    bin; with ``mix_mag`` given, bins more than ``-silence_db`` dB below the example's peak
    (default 40 dB) get an all-zero row, which the clustering losses leave out.
    """
    from ..dsp.features import ideal_binary_mask

    return ideal_binary_mask(source_mags, mix_mag, silence_db=silence_db)


# ---------------------------------------------------------------------------- confidence weights
# Bootstrapped sources are a teacher's soft-masked mixtures, ``S_k = m_k X``, so the teacher's
# per-bin confidence can be recovered from the source magnitudes alone, on the device, at
# training time: ``p_k = |S_k| / sum_j |S_j|`` (= ``m_k`` for a coherent mixture) and
#
#     dominance = (K max_k p_k - 1) / (K - 1)    in [0, 1]
#
# (1 where one source owns the bin, 0 where the teacher split it evenly or the bin is silent).
# Multiplied with the deep-clustering magnitude weights it down-weights the bins the teacher was
# unsure about (:func:`confidence_weights`). On ground-truth sources it is the dominance of the
# strongest source, which is harmless.
def dominance(source_magnitudes: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """``(batch, n_src, time, freq)`` magnitudes (complex input is abs'ed) -> ``(batch, time,
    freq)`` in [0, 1]: how much the strongest source owns each bin (see above)."""
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
    ``(batch, time, freq)``, from ``mix_magnitude`` ``(batch, time, freq)`` and
    ``source_magnitudes`` ``(batch, n_src, time, freq)``; pass them as the clustering losses'
    ``weights`` (the ``train.confidence_power`` targets)."""
    from ..dsp.features import magnitude_weights

    return magnitude_weights(mix_magnitude) * dominance(source_magnitudes) ** float(power)
