"""L1 / MSE losses on spectrogram-shaped tensors ``(batch, n_src, ...)``.

The plain losses average over every non-batch dimension and return ``(batch,)``. The
``pairwise_*`` variants return ``(batch, n_src_est, n_src_ref)``, entry ``[b, i, j]`` being the
loss of estimate ``i`` against reference ``j`` averaged over the trailing dimensions, for
:class:`~bootsep.losses.pit.PITLossWrapper`. Averaging the pairwise matrix over a permutation
equals the plain loss of the permuted estimates.
"""

from __future__ import annotations

import torch


def _check(est: torch.Tensor, target: torch.Tensor, pairwise: bool) -> None:
    same = est.shape == target.shape if not pairwise else (
        est.dim() >= 2 and est.dim() == target.dim() and est.shape[0] == target.shape[0]
        and est.shape[2:] == target.shape[2:])
    if not same:
        raise ValueError(f"estimate {tuple(est.shape)} and target {tuple(target.shape)} must "
                         "both be (batch, n_src, ...) with matching shapes")


def _weighted_mean(x: torch.Tensor, weights: torch.Tensor | None, start: int) -> torch.Tensor:
    """Mean of ``x`` over its dims from ``start`` on; with ``weights`` ``(batch, ...)`` (the
    trailing dims of ``x``, broadcast over the dims in between) the weighted mean
    ``sum(w x) / sum(w)`` (0 where every weight is 0)."""
    if weights is None:
        return x.flatten(start).mean(dim=start)
    if weights.shape[0] != x.shape[0] or weights.shape[1:] != x.shape[start:]:
        raise ValueError(f"loss weights {tuple(weights.shape)} must be (batch, ...) with the "
                         f"trailing dims of {tuple(x.shape)} from dim {start}")
    w = weights.reshape(weights.shape[0], *([1] * (start - 1)), *weights.shape[1:]).to(x.dtype)
    total = (w * x).flatten(start).sum(dim=start)
    norm = weights.flatten(1).sum(dim=1).to(x.dtype).clamp_min(1e-8)
    return total / norm.view(-1, *([1] * (start - 1)))


def l1_loss(est: torch.Tensor, target: torch.Tensor,
            weights: torch.Tensor | None = None) -> torch.Tensor:
    """Mean absolute error over all non-batch dims: ``(batch, ...)`` x2 -> ``(batch,)``.

    ``weights``: optional ``(batch, ...)`` per-bin weights of the trailing dims (e.g.
    ``(batch, time, freq)`` for ``(batch, n_src, time, freq)`` inputs), shared by the sources;
    the loss is then the weighted mean ``sum(w |d|) / (n_src sum(w))``.
    """
    _check(est, target, pairwise=False)
    if weights is None:
        return _weighted_mean((est - target).abs(), None, 1)
    return _weighted_mean((est - target).abs(), weights, 2).mean(dim=1)


def mse_loss(est: torch.Tensor, target: torch.Tensor,
             weights: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared error over all non-batch dims: ``(batch, ...)`` x2 -> ``(batch,)``;
    ``weights`` as in :func:`l1_loss`."""
    _check(est, target, pairwise=False)
    if weights is None:
        return _weighted_mean((est - target).square(), None, 1)
    return _weighted_mean((est - target).square(), weights, 2).mean(dim=1)


def _pairwise_diff(est: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    _check(est, target, pairwise=True)
    return est.unsqueeze(2) - target.unsqueeze(1)  # (B, n_est, n_ref, ...)


def pairwise_l1_loss(est: torch.Tensor, target: torch.Tensor,
                     weights: torch.Tensor | None = None) -> torch.Tensor:
    """``(batch, n_est, ...)``, ``(batch, n_ref, ...)`` -> ``(batch, n_est, n_ref)`` mean |diff|
    (weighted mean with ``weights`` ``(batch, ...)``, as in :func:`l1_loss`).

    Memory: materialises ``batch * n_est * n_ref * prod(...)`` differences.
    """
    return _weighted_mean(_pairwise_diff(est, target).abs(), weights, 3)


def pairwise_mse_loss(est: torch.Tensor, target: torch.Tensor,
                      weights: torch.Tensor | None = None) -> torch.Tensor:
    """``(batch, n_est, ...)``, ``(batch, n_ref, ...)`` -> ``(batch, n_est, n_ref)`` mean diff²
    (weighted mean with ``weights``, as in :func:`l1_loss`)."""
    return _weighted_mean(_pairwise_diff(est, target).square(), weights, 3)
