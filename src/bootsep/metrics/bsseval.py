"""Scale-aware BSS-Eval family (Le Roux et al. 2019, "SDR - half-baked or well done?").

Every metric is computed in float64 from inner products of zero-mean signals, batched over
``batch`` (channels or items) and sources, on the device of the input. For a reference ``s``
and an estimate ``ŝ`` (both zero-mean) with ``α = <s, ŝ> / ||s||²``:

============  ================================================================
SNR           ``10 log10 ||s||² / ||ŝ - s||²``
SI-SDR        ``10 log10 ||αs||² / ||ŝ - αs||²``
SD-SDR        ``10 log10 ||αs||² / ||ŝ - s||²``  (= SNR + 10 log10 α²)
SRR           ``10 log10 ||αs||² / ||αs - s||²``  (= -10 log10 (1 - 1/α)²)
SI-SIR        ``10 log10 ||αs||² / ||e_int||²``
SI-SAR        ``10 log10 ||αs||² / ||e_art||²``
============  ================================================================

The SI-SDR residual ``e = ŝ - αs`` is split into ``e_int``, its projection onto the span of
*all* references, and ``e_art = e - e_int``. This is the nussl ``BSSEvalScale`` / Le Roux
definition (the one behind the paper's report cards), for which
``10^(-SI-SDR/10) = 10^(-SI-SIR/10) + 10^(-SI-SAR/10)`` holds exactly.
SI-SDR and SI-SIR equal ``fast_bss_eval.si_bss_eval_sources``; its SI-SAR instead uses
``||αs + e_int||²`` as numerator (the classic BSS-Eval convention), i.e.
``fast SI-SAR = SI-SAR + 10 log10(1 + 10^(-SI-SIR/10))``.

``SI-SDRi``, ``SD-SDRi`` and ``SNRi`` are the metric minus the same metric with the mixture as the
estimate; ``MIX-SI-SDR``, ``MIX-SD-SDR`` and ``MIX-SNR`` are those mixture values.

Edge cases (documented behaviour, never an exception):
    * a silent reference (zero-mean energy ``<= eps``) gets ``nan`` for every metric of that
      reference (its scale ``α`` is undefined); the other references of the row are unaffected;
    * a silent estimate gets ``-inf`` for the scale-dependent ratios whose numerator is 0
      (SI-SDR, SI-SIR, SI-SAR, SD-SDR, SRR) and SNR ≈ 0 dB (their mathematical limits);
    * a perfect estimate (``ŝ = c·s``) gets a large finite SI-SDR (``eps`` in the denominator).
"""

from __future__ import annotations

import numpy as np
import torch

from .permutation import best_permutation

METRIC_NAMES = ["SI-SDR", "SI-SIR", "SI-SAR", "SD-SDR", "SNR", "SRR", "SI-SDRi", "SD-SDRi", "SNRi",
                "MIX-SI-SDR", "MIX-SD-SDR", "MIX-SNR"]

_BASE_NAMES = ("SI-SDR", "SI-SIR", "SI-SAR", "SD-SDR", "SNR", "SRR")
_IMPROVEMENTS = {"SI-SDRi": "SI-SDR", "SD-SDRi": "SD-SDR", "SNRi": "SNR"}
_MIXTURE = {"MIX-SI-SDR": "SI-SDR", "MIX-SD-SDR": "SD-SDR", "MIX-SNR": "SNR"}
#: relative eigenvalue cut-off of the pseudo-inverse of the reference correlation matrix
_PINV_RTOL = 1e-12


def _to_float64(x, name: str) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(x))
    elif not isinstance(x, torch.Tensor):
        x = torch.as_tensor(np.asarray(x))
    if x.is_complex():
        raise ValueError(f"{name} must be real-valued, got dtype {x.dtype}")
    return x.detach().to(torch.float64)


def _zero_mean(x: torch.Tensor) -> torch.Tensor:
    return x - x.mean(dim=-1, keepdim=True)


def _db(num: torch.Tensor, den: torch.Tensor, eps: float) -> torch.Tensor:
    """``10 log10(num / (den + eps))`` with negative round-off in ``den``/``num`` clipped to 0."""
    return 10.0 * torch.log10(num.clamp_min(0.0) / (den.clamp_min(0.0) + eps))


def pairwise_bss_eval_scale(estimates: torch.Tensor, references: torch.Tensor,
                            eps: float = 1e-10) -> dict[str, torch.Tensor]:
    """The six base metrics for every (reference, estimate) pair.

    Args:
        estimates: ``(batch, n_est, samples)``, any real dtype; zero-meaned here.
        references: ``(batch, n_ref, samples)``; the projection for SI-SIR/SI-SAR is onto the
            span of all ``n_ref`` references.
        eps: added to every denominator (energies are sums of squares, unit²·samples);
            references with zero-mean energy ``<= eps`` are silent and give ``nan``.
    Returns:
        ``{name: (batch, n_ref, n_est) float64}`` for SI-SDR, SI-SIR, SI-SAR, SD-SDR, SNR, SRR.
    """
    est = _zero_mean(_to_float64(estimates, "estimates"))
    ref = _zero_mean(_to_float64(references, "references"))
    gram = ref @ ref.transpose(-1, -2)  # (B, N, N)
    cross = ref @ est.transpose(-1, -2)  # (B, N, K)
    est_energy = est.square().sum(dim=-1).unsqueeze(-2)  # (B, 1, K)
    ref_energy = torch.diagonal(gram, dim1=-2, dim2=-1)  # (B, N)
    silent = ref_energy <= eps
    safe_energy = torch.where(silent, torch.ones_like(ref_energy), ref_energy)
    energy = safe_energy.unsqueeze(-1)  # (B, N, 1)

    alpha = cross / energy
    target = alpha * cross  # ||αs||² = <s,ŝ>² / ||s||²
    si_noise = est_energy - target  # ||ŝ - αs||²
    noise = est_energy - 2.0 * cross + energy  # ||ŝ - s||²
    srr_noise = (alpha - 1.0).square() * energy  # ||αs - s||²

    # Energy of the projection of each estimate onto span(references), via the pseudo-inverse
    # of the correlation matrix of unit-norm references (silent ones get a zero row/column).
    inv_norm = torch.where(silent, torch.zeros_like(ref_energy), safe_energy.rsqrt())
    corr = gram * inv_norm.unsqueeze(-1) * inv_norm.unsqueeze(-2)
    cross_n = cross * inv_norm.unsqueeze(-1)
    coef = torch.linalg.pinv(corr, hermitian=True, rtol=_PINV_RTOL) @ cross_n
    projected = (cross_n * coef).sum(dim=-2, keepdim=True)  # (B, 1, K): ||P ŝ||²
    interference = projected - target  # ||P ŝ - αs||²
    artifacts = est_energy - projected  # ||ŝ - P ŝ||²

    out = {
        "SI-SDR": _db(target, si_noise, eps),
        "SI-SIR": _db(target, interference, eps),
        "SI-SAR": _db(target, artifacts, eps),
        "SD-SDR": _db(target, noise, eps),
        "SNR": _db(energy.expand_as(noise), noise, eps),
        "SRR": _db(target, srr_noise, eps),
    }
    nan = torch.tensor(float("nan"), dtype=torch.float64, device=est.device)
    mask = silent.unsqueeze(-1)
    return {k: torch.where(mask, nan, v) for k, v in out.items()}


def _check_inputs(est: torch.Tensor, ref: torch.Tensor, mix: torch.Tensor | None,
                  compute_permutation: bool) -> None:
    if est.dim() != 3 or ref.dim() != 3:
        raise ValueError("estimates and references must be (batch, n_src, samples); got "
                         f"estimates {tuple(est.shape)} and references {tuple(ref.shape)} "
                         "(put channels in the batch dimension)")
    if est.shape[0] != ref.shape[0] or est.shape[-1] != ref.shape[-1]:
        raise ValueError(f"estimates {tuple(est.shape)} and references {tuple(ref.shape)} differ "
                         "in batch size or length; trim or pad them to the same length first")
    n_est, n_ref = est.shape[1], ref.shape[1]
    if n_ref == 0:
        raise ValueError("references has no sources")
    if n_est != n_ref and not (compute_permutation and n_est > n_ref):
        raise ValueError(f"estimates {tuple(est.shape)} and references {tuple(ref.shape)} have "
                         "different numbers of sources (more estimates than references needs "
                         "compute_permutation=True)")
    if mix is not None and tuple(mix.shape) != (ref.shape[0], ref.shape[-1]):
        raise ValueError(f"mixture {tuple(mix.shape)} must be (batch, samples) = "
                         f"{(ref.shape[0], ref.shape[-1])} to match references {tuple(ref.shape)}")


def _key_matrix(pairwise: dict, mix_row: dict, key: str) -> torch.Tensor:
    """``(B, N, K)`` score of ``key`` for every (reference, estimate) pair."""
    if key in _IMPROVEMENTS:
        base = _IMPROVEMENTS[key]
        return pairwise[base] - mix_row[base].unsqueeze(-1)
    if key in _MIXTURE:  # independent of the estimates: any permutation is optimal
        return torch.zeros_like(pairwise["SI-SDR"])
    return pairwise[key]


def bss_eval_scale(estimates, references, mixture=None, compute_permutation: bool = False,
                   best_permutation_key: str = "SI-SDR", eps: float = 1e-10
                   ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """All of :data:`METRIC_NAMES` for a batch of separations (see the module docstring).

    Args:
        estimates: ``(batch, n_src, samples)`` torch tensor or numpy array; batch = channels or
            items, scored independently. With ``compute_permutation`` there may be more
            estimates than references (the best subset is picked).
        references: ``(batch, n_src, samples)``, same length as ``estimates``.
        mixture: ``(batch, samples)``; default (None) = sum of the references.
        compute_permutation: if True, per batch row pick the assignment of estimates to
            references that maximises the mean of ``best_permutation_key`` over references;
            otherwise estimate ``i`` is scored against reference ``i``.
        best_permutation_key: one of :data:`METRIC_NAMES` (default ``"SI-SDR"``).
        eps: added to every energy denominator (default 1e-10); references with zero-mean
            energy ``<= eps`` are treated as silent and get ``nan``.
    Returns:
        ``(metrics, permutation)``: ``metrics`` maps every name in :data:`METRIC_NAMES` to a
        ``(batch, n_src)`` float64 tensor in dB (column ``j`` = reference ``j``);
        ``permutation`` is ``(batch, n_src)`` long, the estimate index used for each reference.
        Both live on the input's device.
    Raises:
        ValueError: on shape mismatch (the message names both shapes) or an unknown key.

    Example:
        >>> import torch
        >>> ref = torch.randn(2, 2, 8000, dtype=torch.float64)
        >>> est = ref.flip(1) + 0.1 * torch.randn_like(ref)
        >>> m, perm = bss_eval_scale(est, ref, compute_permutation=True)
        >>> perm.tolist(), bool((m["SI-SDR"] > 15).all())
        ([[1, 0], [1, 0]], True)
    """
    if best_permutation_key not in METRIC_NAMES:
        raise ValueError(f"unknown best_permutation_key {best_permutation_key!r}; "
                         f"choose one of {METRIC_NAMES}")
    est = _to_float64(estimates, "estimates")
    ref = _to_float64(references, "references").to(est.device)
    mix = None if mixture is None else _to_float64(mixture, "mixture").to(est.device)
    _check_inputs(est, ref, mix, compute_permutation)
    if mix is None:
        mix = ref.sum(dim=1)
    n_est = est.shape[1]
    pairwise = pairwise_bss_eval_scale(torch.cat([est, mix.unsqueeze(1)], dim=1), ref, eps=eps)
    mix_row = {k: v[..., n_est] for k, v in pairwise.items()}  # (B, N)
    pairwise = {k: v[..., :n_est] for k, v in pairwise.items()}  # (B, N, K)

    batch, n_ref = ref.shape[:2]
    if compute_permutation:
        perm = best_permutation(_key_matrix(pairwise, mix_row, best_permutation_key)
                                .transpose(1, 2), maximize=True)
    else:
        perm = torch.arange(n_ref, device=est.device).expand(batch, n_ref).clone()
    index = perm.unsqueeze(-1)
    metrics = {k: v.gather(-1, index).squeeze(-1) for k, v in pairwise.items()}
    for name, base in _IMPROVEMENTS.items():
        metrics[name] = metrics[base] - mix_row[base]
    for name, base in _MIXTURE.items():
        metrics[name] = mix_row[base]
    return {k: metrics[k] for k in METRIC_NAMES}, perm


def _sdr_db(est: torch.Tensor, ref: torch.Tensor, eps: float, scaling: bool,
            zero_mean: bool) -> torch.Tensor:
    """The training SI-SDR (or SNR) in dB, elementwise over broadcast leading dims."""
    if zero_mean:
        est = _zero_mean(est)
        ref = _zero_mean(ref)
    if scaling:
        alpha = (est * ref).sum(dim=-1, keepdim=True) / (ref.square().sum(dim=-1, keepdim=True)
                                                         + eps)
        ref = alpha * ref
    num = ref.square().sum(dim=-1)
    den = (est - ref).square().sum(dim=-1)
    return 10.0 * torch.log10((num + eps) / (den + eps))


def si_sdr(estimates: torch.Tensor, references: torch.Tensor, eps: float = 1e-8,
           scaling: bool = True, zero_mean: bool = True) -> torch.Tensor:
    """Cheap, differentiable SI-SDR in dB for use during training (the losses' SI-SDR).

    Unlike :func:`bss_eval_scale` (float64, ``nan`` for a silent reference, the evaluation
    figures), every energy here is stabilised by ``eps``, so a silent reference gives a finite
    (about -80 dB) value; both agree to ~1e-6 dB on ordinary signals (tested).

    Args:
        estimates: ``(batch, n_src, samples)`` (any leading dims work), float32 or float64.
        references: same shape as ``estimates``.
        eps: stabiliser (default 1e-8) added to ``||s||²`` in ``α`` and to both energies of the
            ratio.
        scaling: True (default) = SI-SDR ``10 log10 ||αs||² / ||ŝ - αs||²``; False = SNR
            ``10 log10 ||s||² / ||ŝ - s||²`` (no optimal rescaling of the reference).
        zero_mean: subtract each signal's mean first (default True).
    Returns:
        ``(batch, n_src)`` in dB, in the input dtype; gradients flow to ``estimates``.
    """
    estimates = torch.as_tensor(estimates)
    references = torch.as_tensor(references, device=estimates.device)
    if estimates.shape != references.shape:
        raise ValueError(f"estimates {tuple(estimates.shape)} and references "
                         f"{tuple(references.shape)} must have the same shape")
    return _sdr_db(estimates, references.to(estimates.dtype), eps, scaling, zero_mean)


def pairwise_si_sdr(estimates: torch.Tensor, references: torch.Tensor, eps: float = 1e-8,
                    scaling: bool = True, zero_mean: bool = True) -> torch.Tensor:
    """:func:`si_sdr` of every (estimate, reference) pair, for :func:`best_permutation`.

    Args:
        estimates: ``(batch, n_est, samples)``.
        references: ``(batch, n_ref, samples)``, same batch and length.
        eps, scaling, zero_mean: as in :func:`si_sdr`.
    Returns:
        ``(batch, n_est, n_ref)`` in dB: entry ``[b, i, j]`` is estimate ``i`` against reference
        ``j``. Memory: materialises ``batch * n_est * n_ref * samples`` values.
    """
    estimates = torch.as_tensor(estimates)
    references = torch.as_tensor(references, device=estimates.device)
    if estimates.dim() != 3 or references.dim() != 3 or estimates.shape[0] != references.shape[0] \
            or estimates.shape[-1] != references.shape[-1]:
        raise ValueError(f"estimates {tuple(estimates.shape)} and references "
                         f"{tuple(references.shape)} must both be (batch, n_src, samples) with "
                         "the same batch and length")
    return _sdr_db(estimates.unsqueeze(2), references.to(estimates.dtype).unsqueeze(1), eps,
                   scaling, zero_mean)
