"""A weighted dictionary of named losses, built from a plain spec (what gin binds).

Spec: ``{name: {'class': <registered name>, 'weight': float, 'pit': bool, 'kwargs': {...},
'keys': {...}}}``. Every field is optional: ``class`` defaults to ``name``, ``weight`` to 1.0,
``pit`` to False. A weight of 0 means "monitored only": the loss is reported (computed without
gradient) but left out of the total. Example (BCA's chimera training loss)::

    LossDict({'MaskInferenceLoss': {'class': 'L1Loss', 'weight': 1},
              'WhitenedKMeansLoss': {'weight': 20000}})

Registered classes and what they read (``keys`` renames any role; shapes as in the model output
and training targets of the project):

==================== ================================= ==================================
class                model output                      targets
==================== ================================= ==================================
DeepClusteringLoss   embedding (B,T,F,D)                assignments (B,n_src,T,F),
                                                        weights (B,T,F) (optional)
WhitenedKMeansLoss   embedding                          assignments, weights (optional)
L1Loss, MSELoss      estimates (B,n_src,T,F)            source_magnitudes (B,n_src,T,F),
                                                        weights (B,T,F) (only when mapped)
SISDRLoss            audio (B,n_src,S)                  source_audio (B,n_src,S)
MixITLoss            estimates (B,M,T,F)                source_magnitudes (B,n_mix,T,F)
==================== ================================= ==================================

``pit`` (L1Loss, MSELoss, SISDRLoss only) makes the loss permutation invariant; the chosen
permutations are kept in :attr:`LossDict.permutations`.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Mapping

import torch

from ..utils.errors import UserError
from ..utils.registry import Registry
from .cluster import deep_clustering_loss, whitened_kmeans_loss
from .pit import PITLossWrapper
from .sisdr import neg_si_sdr_loss, pairwise_neg_si_sdr_loss
from .spectral import l1_loss, mse_loss, pairwise_l1_loss, pairwise_mse_loss


class LossSpecError(UserError, ValueError):
    """An invalid loss spec: a ``ValueError`` that the CLI reports as a user error."""


def _lookup(source: Mapping, key: str, where: str, loss: str, required: bool = True):
    if key in source:
        return source[key]
    if required:
        raise KeyError(f"loss {loss!r} needs {where}[{key!r}]; {where} has {sorted(source)}")
    return None


class _Loss:
    """Base of the registered losses: ``__call__(output, targets) -> (batch,)``."""

    #: role -> (dict it comes from, default key, required)
    roles: dict = {}
    supports_pit = False

    def __init__(self, name: str, keys: Mapping | None = None, pit: bool = False):
        self.name = name
        unknown = set(keys or {}) - set(self.roles)
        if unknown:
            raise LossSpecError(f"loss {name!r}: unknown keys {sorted(unknown)}; "
                                f"{type(self).__name__} reads {sorted(self.roles)}")
        if pit and not self.supports_pit:
            raise LossSpecError(f"loss {name!r}: 'pit' is not supported by "
                                f"{type(self).__name__}; it applies to L1Loss, MSELoss, SISDRLoss")
        self.keys = {role: (keys or {}).get(role, default)
                     for role, (_, default, _) in self.roles.items()}
        self._mapped = set(keys or {})  # an explicitly mapped role is required
        self.pit = bool(pit)
        self.last_permutation: torch.Tensor | None = None

    def _args(self, output: Mapping, targets: Mapping) -> dict:
        sources = {"output": output, "targets": targets}
        return {role: _lookup(sources[where], self.keys[role], where, self.name,
                              required or role in self._mapped)
                for role, (where, _, required) in self.roles.items()}


class DeepClusteringLoss(_Loss):
    """:func:`~bootsep.losses.cluster.deep_clustering_loss` on output/targets dicts."""

    roles = {"embedding": ("output", "embedding", True),
             "assignments": ("targets", "assignments", True),
             "weights": ("targets", "weights", False)}
    function = staticmethod(deep_clustering_loss)

    def __call__(self, output: Mapping, targets: Mapping) -> torch.Tensor:
        a = self._args(output, targets)
        return self.function(a["embedding"], a["assignments"], a["weights"])


class WhitenedKMeansLoss(DeepClusteringLoss):
    """:func:`~bootsep.losses.cluster.whitened_kmeans_loss` on output/targets dicts."""

    function = staticmethod(whitened_kmeans_loss)


class _PairLoss(_Loss):
    supports_pit = True
    plain = staticmethod(l1_loss)
    pairwise = staticmethod(pairwise_l1_loss)

    def __init__(self, name: str, keys: Mapping | None = None, pit: bool = False, **kwargs):
        super().__init__(name, keys, pit)
        allowed = [p for p in list(inspect.signature(self.plain).parameters)[2:] if p != "weights"]
        unknown = set(kwargs) - set(allowed)
        if unknown:
            raise LossSpecError(f"loss {name!r}: unknown kwargs {sorted(unknown)} for "
                                f"{type(self).__name__}; allowed: {allowed}")
        self.kwargs = kwargs
        self._pit = PITLossWrapper(self._pairwise) if self.pit else None

    def _pairwise(self, est, target):
        return self.pairwise(est, target, **self.kwargs)

    def __call__(self, output: Mapping, targets: Mapping) -> torch.Tensor:
        a = self._args(output, targets)
        w = a.get("weights")
        if self._pit is None:
            kw = self.kwargs if w is None else {**self.kwargs, "weights": w}
            return self.plain(a["estimate"], a["target"], **kw)
        pit = self._pit if w is None else PITLossWrapper(
            lambda est, ref: self.pairwise(est, ref, weights=w, **self.kwargs))
        loss, self.last_permutation = pit(a["estimate"], a["target"])
        return loss


class L1Loss(_PairLoss):
    """Mean absolute error of ``estimates`` against ``source_magnitudes`` (optionally PIT).

    Unweighted unless the spec maps the ``weights`` role to a target, e.g.
    ``'keys': {'weights': 'confidence'}`` (the teacher's per-bin confidence that
    ``train.confidence_power`` adds to the targets): a weighted mean over the T-F bins.
    """

    roles = {"estimate": ("output", "estimates", True),
             "target": ("targets", "source_magnitudes", True),
             "weights": ("targets", None, False)}


class MSELoss(L1Loss):
    """Mean squared error of ``estimates`` against ``source_magnitudes`` (optionally PIT)."""

    plain = staticmethod(mse_loss)
    pairwise = staticmethod(pairwise_mse_loss)


class SISDRLoss(_PairLoss):
    """Negative SI-SDR of ``audio`` against ``source_audio`` (optionally PIT).

    kwargs: ``eps`` (1e-8), ``scaling`` (True; False gives negative SNR), ``zero_mean`` (True).
    """

    roles = {"estimate": ("output", "audio", True),
             "target": ("targets", "source_audio", True)}
    plain = staticmethod(neg_si_sdr_loss)
    pairwise = staticmethod(pairwise_neg_si_sdr_loss)


class MixITLoss(_Loss):
    """MixIT (:func:`~bootsep.losses.mixit.mixit_loss`): ``estimates`` (B,M,T,F) of a mixture of
    mixtures against the two mixtures' targets ``source_magnitudes`` (B,2,T,F).

    kwargs: ``metric`` ('l1', default, or 'mse'), ``sparsity`` (0.0; the over-separation
    penalty). The best assignment of each example is kept in :attr:`last_assignment` (B,M).
    """

    roles = {"estimate": ("output", "estimates", True),
             "target": ("targets", "source_magnitudes", True)}

    def __init__(self, name: str, keys: Mapping | None = None, pit: bool = False,
                 metric: str = "l1", sparsity: float = 0.0, **unknown):
        super().__init__(name, keys, pit)
        from .mixit import mixit_l1, mixit_mse

        if unknown:
            raise LossSpecError(f"loss {name!r}: unknown kwargs {sorted(unknown)} for MixITLoss; "
                                "allowed: ['metric', 'sparsity']")
        functions = {"l1": mixit_l1, "mse": mixit_mse}
        if metric not in functions:
            raise LossSpecError(f"loss {name!r}: metric must be one of {sorted(functions)}, "
                                f"got {metric!r}")
        self.function = functions[metric]
        self.sparsity = float(sparsity)
        self.last_assignment: torch.Tensor | None = None

    def __call__(self, output: Mapping, targets: Mapping) -> torch.Tensor:
        a = self._args(output, targets)
        value, self.last_assignment = self.function(a["estimate"], a["target"],
                                                    sparsity=self.sparsity)
        return value


#: The loss classes a spec's ``'class'`` names (a :class:`~bootsep.utils.registry.Registry`).
LOSS_CLASSES = Registry("class", {cls.__name__: cls for cls in (
    DeepClusteringLoss, WhitenedKMeansLoss, L1Loss, MSELoss, SISDRLoss, MixITLoss)},
    error=LossSpecError)
_FIELDS = ("class", "weight", "pit", "kwargs", "keys")


class LossDict:
    """Named, weighted losses combined by sum.

    Args:
        spec: ``{name: {'class', 'weight', 'pit', 'kwargs', 'keys'}}`` (module docstring).

    Attributes:
        losses: ``{name: loss object}``.
        weights: ``{name: float}``, mutable (auto-balancing rewrites it between steps).
        permutations: ``{name: (batch, n_src) long}`` from the last call of each PIT loss.

    Calling it with ``(output, targets)`` returns ``{name: scalar batch-mean loss, ...,
    'loss': Σ weight·loss}`` over the nonzero weights ('loss' is a zero tensor if all are 0).

    Raises:
        LossSpecError (a ValueError): unknown class (the message lists the valid ones),
        unknown field, bad weight, or ``pit`` on a clustering loss.
    """

    def __init__(self, spec: Mapping):
        if not isinstance(spec, Mapping) or not spec:
            raise LossSpecError(f"loss spec must be a non-empty dict of named losses, got {spec!r}")
        self.losses: dict = {}
        self.weights: dict[str, float] = {}
        self.permutations: dict[str, torch.Tensor] = {}
        for name, entry in spec.items():
            entry = {} if entry is None else entry
            if name == "loss":
                raise LossSpecError("'loss' is reserved for the weighted total; rename that loss")
            if not isinstance(entry, Mapping):
                raise LossSpecError(f"loss {name!r}: expected a dict with {_FIELDS}, got {entry!r}")
            unknown = set(entry) - set(_FIELDS)
            if unknown:
                raise LossSpecError(f"loss {name!r}: unknown fields {sorted(unknown)}; "
                                    f"allowed: {list(_FIELDS)}")
            cls_name = entry.get("class", name)
            cls = LOSS_CLASSES.lookup(cls_name, where=f"loss {name!r}: ")
            try:
                weight = float(entry.get("weight", 1.0))
            except (TypeError, ValueError):
                raise LossSpecError(f"loss {name!r}: weight must be a number, "
                                    f"got {entry.get('weight')!r}") from None
            kwargs = dict(entry.get("kwargs") or {})
            if not issubclass(cls, (_PairLoss, MixITLoss)) and kwargs:
                raise LossSpecError(f"loss {name!r}: {cls_name} takes no kwargs, got {kwargs}")
            extra = {"pit": bool(entry.get("pit", False)), "keys": entry.get("keys")}
            self.losses[name] = cls(name, **extra, **kwargs)
            self.weights[name] = weight

    def __call__(self, output: Mapping, targets: Mapping) -> dict[str, torch.Tensor]:
        result: dict[str, torch.Tensor] = {}
        total = None
        for name, loss in self.losses.items():
            weight = float(self.weights.get(name, 0.0))
            context = torch.no_grad() if weight == 0.0 else contextlib.nullcontext()
            with context:
                value = loss(output, targets).mean()
            result[name] = value
            if loss.last_permutation is not None:
                self.permutations[name] = loss.last_permutation
            if weight != 0.0:
                total = weight * value if total is None else total + weight * value
        if total is None:
            first = next(iter(result.values()))
            total = torch.zeros((), dtype=first.dtype, device=first.device)
        result["loss"] = total
        return result

    def __repr__(self) -> str:
        parts = ", ".join(f"{n}={type(v).__name__}(w={self.weights.get(n)}"
                          f"{', pit' if getattr(v, 'pit', False) else ''})"
                          for n, v in self.losses.items())
        return f"LossDict({parts})"
