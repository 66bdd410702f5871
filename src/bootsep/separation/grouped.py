"""Named sources as sums of another separator's outputs (e.g. a MixIT model's M outputs).

A MixIT model separates into ``M`` unnamed outputs; evaluating it against named references needs
a mapping of outputs to sources. Two are provided, and every table must say which it used:

* **oracle** (:func:`oracle_grouping`): per item, the assignment of outputs to references with
  the best mean SI-SDR *on the test references* — an upper bound, not a usable system;
* **fixed** (:class:`GroupedSeparator` with ``groups``): one mapping for every item, chosen
  once (e.g. :func:`choose_grouping` on a few labelled validation songs) and then applied blind.

Shapes: estimates ``(M, channels, samples)``, references ``(n_src, channels, samples)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from ..losses.mixit import mixit_assignments
from ..utils.errors import UserError
from .base import Separator


def _check_groups(groups: Mapping, n_outputs: int | None) -> dict[str, list[int]]:
    if not isinstance(groups, Mapping) or not groups:
        raise UserError(f"GroupedSeparator.groups must be a non-empty dict {{source: [output "
                        f"indices]}}, got {groups!r}")
    out, seen = {}, set()
    for label, idx in groups.items():
        idx = [idx] if isinstance(idx, int) else list(idx)
        if not idx or not all(isinstance(i, int) and not isinstance(i, bool) for i in idx):
            raise UserError(f"GroupedSeparator.groups[{label!r}] = {idx!r}: give a non-empty list "
                            "of output indices")
        bad = [i for i in idx if i < 0 or (n_outputs is not None and i >= n_outputs)]
        if bad:
            raise UserError(f"GroupedSeparator.groups[{label!r}]: output indices {bad} out of range "
                            f"for a separator with {n_outputs} outputs")
        if seen & set(idx):
            raise UserError(f"GroupedSeparator.groups: outputs {sorted(seen & set(idx))} are in "
                            "more than one group")
        seen |= set(idx)
        out[str(label)] = idx
    return out


class GroupedSeparator(Separator):
    """Sum the masks of ``separator``'s outputs into named groups.

    Args:
        separator: any :class:`~bootsep.separation.base.Separator` (e.g. a deep MixIT model).
        groups: ``{source label: [output indices]}`` in output order, disjoint; outputs left
            out are discarded (e.g. a noise output). ``'oracle'``: per item, the grouping with
            the best mean SI-SDR against the item's references (then ``labels`` names the
            sources, and evaluation hands the references over as to any oracle separator).
        labels: source labels for the oracle (default ``('accompaniment', 'vocals')``).
    """

    def __init__(self, separator: Separator, groups: Mapping | str,
                 labels: Sequence[str] = ("accompaniment", "vocals")):
        n_out = getattr(separator, "num_sources", None)
        if isinstance(groups, str) and groups != "oracle":
            raise UserError(f"GroupedSeparator.groups = {groups!r}: give {{source: [output "
                            "indices]}} or 'oracle'")
        self.groups = None if groups == "oracle" else _check_groups(groups, n_out)
        self.needs_references = self.groups is None
        names = list(labels) if self.groups is None else list(self.groups)
        super().__init__(separator.sample_rate, separator.stft, names, str(separator.device))
        self.separator = separator

    def masks(self, mix_spec: torch.Tensor, source_specs: torch.Tensor | None = None) -> torch.Tensor:
        m = self.separator.masks(mix_spec)  # (batch, M, time, freq)
        groups = self.groups
        if groups is None:
            if source_specs is None:
                raise ValueError("the oracle grouping needs the reference sources")
            est = self.stft.apply_masks(m, mix_spec)  # (channels, M, samples)
            ref = self.stft.inverse(source_specs)  # (channels, n_src, samples)
            groups = oracle_grouping(est.transpose(0, 1), ref.transpose(0, 1), self.source_labels)
        return torch.stack([m[:, idx].sum(dim=1) if idx else torch.zeros_like(m[:, 0])
                            for idx in groups.values()], dim=1).clamp(0, 1)


def grouping_scores(estimates: torch.Tensor, references: torch.Tensor) -> tuple[torch.Tensor,
                                                                                 torch.Tensor]:
    """Mean SI-SDR (dB) of every assignment of ``M`` outputs to ``n_src`` references.

    Args:
        estimates: ``(M, channels, samples)``.
        references: ``(n_src, channels, samples)``.
    Returns:
        ``(scores (A,), assignments (A, M) long)`` with ``A = n_src ** M``; assignment ``a`` sends
        output ``m`` to reference ``assignments[a, m]``; the score is the SI-SDR of each
        reference's summed outputs, averaged over references and channels (a reference that gets
        no output scores with a silent estimate).
    """
    from ..metrics.bsseval import si_sdr

    est = torch.as_tensor(estimates, dtype=torch.float64)
    ref = torch.as_tensor(references, dtype=torch.float64)
    n_out, n_src = est.shape[0], ref.shape[0]
    A = mixit_assignments(n_out, n_src).to(torch.float64)  # (A, n_src, M)
    target = ref.transpose(0, 1)  # (channels, n_src, samples)
    scores = []
    for a in A:  # one assignment at a time: memory stays O(channels * n_src * samples)
        grouped = torch.einsum("km,mcs->cks", a, est)
        value = torch.nan_to_num(si_sdr(grouped, target), nan=0.0, neginf=-100.0, posinf=100.0)
        scores.append(value.mean())
    return torch.stack(scores), A.argmax(dim=1)


def assignment_to_groups(assignment: Sequence[int], labels: Sequence[str]) -> dict[str, list[int]]:
    """``[source index of each output]`` -> ``{label: [output indices]}`` (every label kept)."""
    return {str(label): [m for m, k in enumerate(assignment) if int(k) == j]
            for j, label in enumerate(labels)}


def oracle_grouping(estimates: torch.Tensor, references: torch.Tensor,
                    labels: Sequence[str]) -> dict[str, list[int]]:
    """ORACLE: the grouping with the best mean SI-SDR against this item's own references
    (among those that give every source an output)."""
    scores, assignments = grouping_scores(estimates, references)
    best = _best_covering(scores, assignments, len(labels))
    return assignment_to_groups(assignments[best].tolist(), labels)


def choose_grouping(items: Sequence[tuple[torch.Tensor, torch.Tensor]],
                    labels: Sequence[str]) -> dict[str, list[int]]:
    """One fixed grouping for a model: the best mean SI-SDR over labelled ``items``
    ``[(estimates, references), ...]`` (e.g. a few validation songs) among the groupings that
    give every source at least one output; ties to the first."""
    if not items:
        raise UserError("choose_grouping needs at least one labelled item")
    total = None
    assignments = None
    for est, ref in items:
        scores, assignments = grouping_scores(est, ref)
        total = scores if total is None else total + scores
    return assignment_to_groups(assignments[_best_covering(total, assignments, len(labels))]
                                .tolist(), labels)


def _best_covering(scores: torch.Tensor, assignments: torch.Tensor, n_src: int) -> int:
    """Index of the best score among the assignments that give every source at least one
    output (all of them when there are fewer outputs than sources)."""
    covers = torch.stack([(assignments == k).any(dim=1) for k in range(n_src)]).all(dim=0)
    if covers.any():
        scores = torch.where(covers, scores, torch.full_like(scores, -torch.inf))
    return int(scores.argmax())


__all__ = ["GroupedSeparator", "assignment_to_groups", "choose_grouping", "grouping_scores",
           "oracle_grouping"]
