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


def l1_loss(est: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error over all non-batch dims: ``(batch, ...)`` x2 -> ``(batch,)``."""
    _check(est, target, pairwise=False)
    return (est - target).abs().flatten(1).mean(dim=1)


def mse_loss(est: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error over all non-batch dims: ``(batch, ...)`` x2 -> ``(batch,)``."""
    _check(est, target, pairwise=False)
    return (est - target).square().flatten(1).mean(dim=1)


def _pairwise_diff(est: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    _check(est, target, pairwise=True)
    return est.unsqueeze(2) - target.unsqueeze(1)  # (B, n_est, n_ref, ...)


def pairwise_l1_loss(est: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``(batch, n_est, ...)``, ``(batch, n_ref, ...)`` -> ``(batch, n_est, n_ref)`` mean |diff|.

    Memory: materialises ``batch * n_est * n_ref * prod(...)`` differences.
    """
    return _pairwise_diff(est, target).abs().flatten(3).mean(dim=3)


def pairwise_mse_loss(est: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``(batch, n_est, ...)``, ``(batch, n_ref, ...)`` -> ``(batch, n_est, n_ref)`` mean diff²."""
    return _pairwise_diff(est, target).square().flatten(3).mean(dim=3)
