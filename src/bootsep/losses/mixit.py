"""Mixture invariant training (MixIT; Wisdom et al., NeurIPS 2020).

Two unlabelled mixtures ``x1``, ``x2`` are added into a mixture of mixtures ``x = x1 + x2``; the
model separates ``x`` into ``M`` outputs, and the loss is that of the best assignment of the
outputs back to the two mixtures: every output goes to exactly one mixture, the outputs of a
mixture are summed and compared with it. With ``n_mix`` mixtures there are ``n_mix ** M``
assignments; all of them are scored, vectorised (in chunks of assignments to bound memory).

Shapes: ``estimates (batch, M, ...)``, ``mixtures (batch, n_mix, ...)`` with the same trailing
dimensions (magnitude spectrograms ``(time, freq)`` or waveforms ``(samples,)``); masks sum
linearly, so summing mask-based magnitude estimates of an assignment's group is exact.

Over-separation (MixIT's known failure: more active outputs than sources) can be discouraged with
``sparsity``: the paper's sparsity loss, the L1/L2 ratio of the outputs' RMS values, here
``mean_m sqrt(p_m / sum_m p_m)`` with ``p_m`` output ``m``'s mean power (smallest when one
output carries everything); 0 (default) is plain MixIT.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import torch

from .spectral import l1_loss, mse_loss

#: the largest number of assignments scored in one vectorised chunk
ASSIGNMENT_CHUNK = 64


def mixit_assignments(n_outputs: int, n_mixtures: int = 2, device=None) -> torch.Tensor:
    """Every assignment of ``n_outputs`` outputs to ``n_mixtures`` mixtures, as one-hot matrices.

    Returns:
        ``(n_mixtures ** n_outputs, n_mixtures, n_outputs)`` float; entry ``[a, k, m]`` is 1 when
        assignment ``a`` sends output ``m`` to mixture ``k``. Assignments are in
        ``itertools.product`` order (output 0 varies slowest).
    """
    if n_outputs < 1 or n_mixtures < 1:
        raise ValueError(f"need n_outputs >= 1 and n_mixtures >= 1, got {n_outputs}, {n_mixtures}")
    combos = torch.tensor(list(itertools.product(range(n_mixtures), repeat=n_outputs)),
                          dtype=torch.long, device=device)  # (A, M)
    onehot = torch.nn.functional.one_hot(combos, n_mixtures)  # (A, M, n_mix)
    return onehot.transpose(1, 2).float()


def mixit_loss(estimates: torch.Tensor, mixtures: torch.Tensor,
               loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = l1_loss,
               sparsity: float = 0.0, eps: float = 1e-8
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """MixIT loss: the per-example minimum over assignments of ``loss(grouped, mixtures)``.

    Args:
        estimates: ``(batch, M, ...)`` outputs of the model for the mixture of mixtures.
        mixtures: ``(batch, n_mix, ...)`` the mixtures that were added (``n_mix`` >= 1, often 2).
        loss: plain loss ``(est (b, n_mix, ...), target (b, n_mix, ...)) -> (b,)`` (default
            :func:`~bootsep.losses.spectral.l1_loss`; any function of that shape works, e.g.
            ``neg_si_sdr_loss`` on waveforms).
        sparsity: weight of the over-separation penalty (module docstring); default 0.
        eps: stabiliser of the sparsity penalty's energy shares.
    Returns:
        ``(loss (batch,), assignment (batch, M) long)``: the loss of the best assignment
        (differentiable) plus the penalty, and the mixture index each output was assigned to.
    """
    if estimates.dim() < 2 or mixtures.dim() != estimates.dim() \
            or estimates.shape[0] != mixtures.shape[0] or estimates.shape[2:] != mixtures.shape[2:]:
        raise ValueError(f"estimates {tuple(estimates.shape)} and mixtures {tuple(mixtures.shape)} "
                         "must be (batch, M, ...) and (batch, n_mix, ...) with matching dims")
    batch, n_out = estimates.shape[:2]
    n_mix = mixtures.shape[1]
    A = mixit_assignments(n_out, n_mix, device=estimates.device).to(estimates.dtype)
    flat_est = estimates.reshape(batch, n_out, -1)
    trailing = estimates.shape[2:]
    values = []
    for start in range(0, A.shape[0], ASSIGNMENT_CHUNK):
        a = A[start:start + ASSIGNMENT_CHUNK]  # (c, n_mix, M)
        grouped = torch.einsum("ckm,bmx->bckx", a, flat_est)  # (B, c, n_mix, X)
        c = a.shape[0]
        grouped = grouped.reshape(batch * c, n_mix, *trailing)
        target = mixtures.unsqueeze(1).expand(batch, c, *mixtures.shape[1:])
        target = target.reshape(batch * c, n_mix, *trailing)
        values.append(loss(grouped, target).reshape(batch, c))
    per_assignment = torch.cat(values, dim=1)  # (B, A)
    best = per_assignment.detach().argmin(dim=1)
    value = per_assignment.gather(1, best.unsqueeze(1)).squeeze(1)
    assignment = A[best].argmax(dim=1)  # (B, M): mixture of each output
    if sparsity:
        energy = flat_est.float().square().mean(dim=2)  # (B, M)
        share = energy / (energy.sum(dim=1, keepdim=True) + eps)
        value = value + float(sparsity) * (share + eps).sqrt().mean(dim=1).to(value.dtype)
    return value, assignment


def mixit_l1(estimates: torch.Tensor, mixtures: torch.Tensor, **kwargs):
    """:func:`mixit_loss` with the L1 loss (the default)."""
    return mixit_loss(estimates, mixtures, l1_loss, **kwargs)


def mixit_mse(estimates: torch.Tensor, mixtures: torch.Tensor, **kwargs):
    """:func:`mixit_loss` with the MSE loss."""
    return mixit_loss(estimates, mixtures, mse_loss, **kwargs)
