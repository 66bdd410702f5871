"""Confidences of segment mode: which measures, on which loud bins (:class:`ConfidencePlan`).

:data:`DEFAULT_CONFIDENCE` records the paper's ``combined`` = silhouette x posterior and the
ensemble's own ``fixed_posterior`` margin above 250 Hz. The measures themselves are
:mod:`bootsep.primitives.confidence`; this module groups the named measures by their loud-bin
selection, selects those bins once per group (:meth:`ConfidencePlan.select`, in the separating
thread, so the large feature tensors are freed at once) and computes the measures on them
(:meth:`ConfidencePlan.compute`, in a writer thread).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import torch

from ..utils.errors import UserError

#: ``{output name: options}``; options: ``measure`` (a name of
#: :data:`bootsep.primitives.confidence.MEASURES`, default the output name),
#: ``min_frequency_hz`` (ignore bins below, default 0), ``threshold_percentile`` (default the
#: run's), and any keyword of :func:`~bootsep.primitives.confidence.compute_confidences`.
DEFAULT_CONFIDENCE = {
    "silhouette": {},
    "posterior": {},
    "combined": {},
    "fixed_posterior": {"min_frequency_hz": 250.0},
    "combined_top10_above250": {"measure": "combined", "threshold_percentile": 90.0,
                                "min_frequency_hz": 250.0},
}


class ConfidencePlan:
    """Groups named measures by their loud-bin selection and computes them.

    Args:
        measures: ``{name: options}`` (see :data:`DEFAULT_CONFIDENCE`) or a list of measure
            names (no options).
        sample_rate, n_fft: to turn ``min_frequency_hz`` into a bin index
            (``ceil(hz * n_fft / sample_rate)``).
        threshold_percentile: default loud-bin percentile (99 = loudest 1 %).
        num_sources: clusters K.
        centers, beta: fixed centres / sharpness for ``fixed_posterior`` (default: those of the
            separator when it has them, else zeros/ones and 2.5).
        seed: seeds the k-means fits and subsamples.
    """

    def __init__(self, measures: Mapping | Sequence[str] | None, sample_rate: int, n_fft: int,
                 threshold_percentile: float = 99.0, num_sources: int = 2, centers=None,
                 beta: float | None = None, seed: int = 0):
        from ..primitives.confidence import MEASURES

        if measures is None:
            measures = {}
        if not isinstance(measures, Mapping):
            measures = {str(m): {} for m in measures}
        self.groups: dict[tuple, dict] = {}
        for name, opts in measures.items():
            opts = dict(opts or {})
            base = opts.pop("measure", name)
            if base not in MEASURES:
                raise UserError(f"confidence measure {name!r}: unknown measure {base!r}; "
                                f"choose from {list(MEASURES)}")
            hz = float(opts.pop("min_frequency_hz", 0.0) or 0.0)
            pct = float(opts.pop("threshold_percentile", threshold_percentile))
            min_bin = int(math.ceil(hz * n_fft / sample_rate)) if hz > 0 else 0
            if base == "fixed_posterior":
                if centers is not None:
                    opts.setdefault("centers", centers)
                if beta is not None:
                    opts.setdefault("fixed_beta", beta)
            key = (min_bin, pct, tuple(sorted((k, _hashable(v)) for k, v in opts.items())))
            group = self.groups.setdefault(key, {"options": opts, "names": {}})
            group["names"][name] = base
        self.num_sources = int(num_sources)
        self.seed = int(seed)

    @property
    def names(self) -> list[str]:
        return [n for g in self.groups.values() for n in g["names"]]

    def select(self, features: torch.Tensor | None, mix_magnitude: torch.Tensor) -> dict:
        """Loud-bin features per group, ``{group key: (N, dim) float64 array}`` (cheap; run it
        in the separating thread so the large feature tensors are freed at once)."""
        from ..primitives.confidence import select_loud_bins

        if features is None or not self.groups:
            return {}
        return {key: select_loud_bins(features, mix_magnitude, key[1], key[0])
                for key in self.groups}

    def compute(self, points: dict) -> dict:
        """``{name: float or nan}`` from the output of :meth:`select` (the bins were already
        selected, so every point is kept: unit magnitudes, percentile 0)."""
        from ..primitives.confidence import compute_confidences

        out = {}
        for key, group in self.groups.items():
            if key not in points:
                continue
            x = points[key]
            measures = tuple(dict.fromkeys(group["names"].values()))
            vals = compute_confidences(x[None, :, None, :], np.ones((1, x.shape[0], 1)),
                                       measures=measures, num_sources=self.num_sources,
                                       threshold_percentile=0.0, seed=self.seed,
                                       **group["options"])
            for name, base in group["names"].items():
                out[name] = float(vals[base])
        return out


def _hashable(v):
    if isinstance(v, (list, tuple)):
        return tuple(_hashable(x) for x in v)
    if isinstance(v, torch.Tensor | np.ndarray):
        return tuple(np.asarray(v, dtype=np.float64).ravel().tolist())
    return v


__all__ = ["DEFAULT_CONFIDENCE", "ConfidencePlan"]
