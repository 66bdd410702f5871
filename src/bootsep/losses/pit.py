"""Permutation-invariant training: one wrapper for every pairwise loss.

A pairwise loss maps ``(est (batch, n_est, ...), target (batch, n_ref, ...))`` to
``(batch, n_est, n_ref)`` (see ``pairwise_l1_loss``, ``pairwise_mse_loss``,
``pairwise_neg_si_sdr_loss``). The wrapper picks, per example, the assignment of estimates to
references with the lowest mean loss (:func:`bootsep.metrics.permutation.best_permutation`, the
one permutation search, with ``maximize=False``).

Example:
    >>> import torch
    >>> from bootsep.losses.spectral import pairwise_l1_loss
    >>> target = torch.rand(2, 3, 4, 5)
    >>> est = target[:, [2, 0, 1]]
    >>> loss, perm = PITLossWrapper(pairwise_l1_loss)(est, target)
    >>> loss.tolist(), perm.tolist()
    ([0.0, 0.0], [[1, 2, 0], [1, 2, 0]])
    >>> bool(torch.equal(reorder(est, perm), target))
    True
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..metrics.permutation import best_permutation


def reorder(est: torch.Tensor, perm: torch.Tensor) -> torch.Tensor:
    """``est[b, perm[b, j]]``: ``(batch, n_est, ...)`` -> ``(batch, n_ref, ...)`` in reference order."""
    index = perm.to(est.device).view(*perm.shape, *([1] * (est.dim() - 2)))
    return est.gather(1, index.expand(*perm.shape, *est.shape[2:]))


class PITLossWrapper:
    """Permutation-invariant version of a pairwise loss.

    Args:
        pairwise_loss: callable ``(est, target) -> (batch, n_est, n_ref)``.
        brute_force_max: largest ``n_est`` searched exhaustively (default 3); Hungarian above.

    Calling it with ``(est (batch, n_est, ...), target (batch, n_ref, ...))`` returns
    ``(loss (batch,), best_perm (batch, n_ref))``: the mean over references of the pairwise
    loss under the best assignment (differentiable), and the estimate index per reference.
    """

    def __init__(self, pairwise_loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                 brute_force_max: int = 3):
        self.pairwise_loss = pairwise_loss
        self.brute_force_max = int(brute_force_max)

    def __call__(self, est: torch.Tensor, target: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        pairwise = self.pairwise_loss(est, target)
        perm = best_permutation(pairwise, maximize=False, brute_force_max=self.brute_force_max)
        chosen = pairwise.gather(1, perm.unsqueeze(1)).squeeze(1)  # (B, n_ref)
        return chosen.mean(dim=1), perm

    def __repr__(self) -> str:
        name = getattr(self.pairwise_loss, "__name__", repr(self.pairwise_loss))
        return f"PITLossWrapper({name})"
