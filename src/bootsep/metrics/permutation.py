"""Matching estimates to references: the one permutation search, and alignment by label.

Every place that pairs a separator's outputs with references uses these two functions:
``bss_eval_scale(compute_permutation=True)`` (maximise a metric), ``PITLossWrapper`` (minimise a
pairwise loss), the trainer's validation SI-SDR, ``separate --input``'s matching of a window's
outputs to the previous window's, and ``evaluate``/``separate`` deciding between alignment by
label and a search.

One convention: a pairwise matrix ``(batch, n_est, n_ref)`` (entry ``[b, i, j]``: estimate ``i``
against reference ``j``, the ``pairwise_*`` losses' layout), an explicit objective
(``maximize``), and the result ``(batch, n_ref)`` long: the estimate index used for each
reference (``reorder``/``gather`` it to put the estimates in reference order).

Plain functions (torch; scipy only for the Hungarian search), no gin.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import torch

#: largest number of estimates for which :func:`best_permutation` enumerates all assignments
#: by default (Hungarian above)
BRUTE_FORCE_MAX_SOURCES = 4


def best_permutation(pairwise, maximize: bool,
                     brute_force_max: int = BRUTE_FORCE_MAX_SOURCES) -> torch.Tensor:
    """The assignment of estimates to references with the best total (= mean) score, per item.

    Args:
        pairwise: ``(batch, n_est, n_ref)`` torch tensor or numpy array, ``n_est >= n_ref``
            (extra estimates are left out); entry ``[b, i, j]`` scores estimate ``i`` against
            reference ``j``. Not differentiated (detached, searched in float64).
        maximize: True for scores (metrics, correlations), False for losses.
        brute_force_max: largest ``n_est`` searched exhaustively (default 4): every
            ``itertools.permutations(range(n_est), n_ref)``, the first best one in that order
            wins a tie. Above it the Hungarian algorithm
            (``scipy.optimize.linear_sum_assignment``, on CPU) finds an optimum too.
    Returns:
        ``(batch, n_ref)`` long on the input's device: entry ``[b, j]`` is the estimate index
        assigned to reference ``j``.

    ``nan`` counts as 0 (e.g. a silent reference, which scores the same for every estimate) and
    ``±inf`` as ``±1e300``, after the sign flip of ``maximize=False``.

    Example:
        >>> import torch
        >>> loss = torch.tensor([[[5.0, 0.0], [0.0, 5.0]]])  # estimate 0 fits reference 1
        >>> best_permutation(loss, maximize=False).tolist(), best_permutation(loss, True).tolist()
        ([[1, 0]], [[0, 1]])
    """
    scores = torch.as_tensor(pairwise)
    if scores.dim() != 3 or scores.shape[1] < scores.shape[2]:
        raise ValueError(f"pairwise matrix {tuple(scores.shape)} must be (batch, n_est, n_ref) "
                         "with n_est >= n_ref")
    scores = scores.detach().to(torch.float64).transpose(1, 2)  # (B, n_ref, n_est)
    if not maximize:
        scores = -scores
    scores = torch.nan_to_num(scores, nan=0.0, posinf=1e300, neginf=-1e300)
    batch, n_ref, n_est = scores.shape
    if n_est <= brute_force_max:
        perms = torch.tensor(list(itertools.permutations(range(n_est), n_ref)),
                             dtype=torch.long, device=scores.device).reshape(-1, n_ref)  # (P, N)
        rows = torch.arange(n_ref, device=scores.device)
        total = scores[:, rows, perms].sum(dim=-1)  # (B, P)
        return perms[total.argmax(dim=-1)]
    from scipy.optimize import linear_sum_assignment

    out = np.empty((batch, n_ref), dtype=np.int64)
    for b, mat in enumerate(scores.cpu().numpy()):
        rows, cols = linear_sum_assignment(mat, maximize=True)
        out[b, rows] = cols
    return torch.from_numpy(out).to(scores.device)


def align_labels(estimate_labels: Sequence[str], reference_labels: Sequence[str],
                 search: bool | None = None) -> tuple[list[int], bool]:
    """Which estimate is scored against each reference: by label, or by a search.

    Args:
        estimate_labels: the separator's source labels, in output order.
        reference_labels: the references' labels, in order.
        search: ``None`` (default): align by label when both are the same set (in any order),
            otherwise search; ``False``: always by label (every reference label must be an
            estimate label; extra estimates are dropped); ``True``: always search.
    Returns:
        ``(order, search)``: with ``search`` False, ``order[j]`` is the index of the estimate
        labelled ``reference_labels[j]``; with ``search`` True, ``order`` is
        ``range(len(reference_labels))`` and the caller searches with :func:`best_permutation`
        (e.g. ``bss_eval_scale(compute_permutation=True)``).
    Raises:
        ValueError: ``search=False`` and a reference label is not an estimate label (the message
            names both lists and the missing labels).
    """
    mine, refs = list(estimate_labels), list(reference_labels)
    if search is None:
        search = sorted(mine) != sorted(refs)
    if search:
        return list(range(len(refs))), True
    missing = [r for r in refs if r not in mine]
    if missing:
        raise ValueError(f"the separator's sources {mine} do not include {missing}")
    return [mine.index(r) for r in refs], False
