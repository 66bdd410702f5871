"""The one interface every separation algorithm follows: primitive, ensemble, oracle or deep.

A separator maps a mixture to per-source soft masks on the shared :class:`~bootsep.dsp.STFT`
and inverts ``mask * mixture STFT`` with the same STFT (:meth:`~bootsep.dsp.STFT.apply_masks`).
Channels are separated independently (they are folded into the batch dimension).

One call computes everything a separator knows about a mixture: :meth:`Separator.analyze`
returns an :class:`Analysis` (masks, and per-bin features when asked for); :meth:`masks` is
``analyze(...).masks`` and :meth:`Separator.separate` inverts the masks. Nothing is kept
between calls (no caches, no flags, no "last call" attributes): what a call finds out is in
its :class:`Analysis`.

Shapes:
    mixture waveform      ``(channels, samples)``
    mixture spectrogram   ``(batch, time, freq)`` complex, batch = channels (or segments)
    masks                 ``(batch, n_src, time, freq)`` real, in [0, 1]
    features (optional)   ``(batch, time, freq, dim)``: what confidence measures cluster
    estimates             ``(n_src, channels, samples)``
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, field

import torch

from ..dsp import STFT


@dataclass
class Analysis:
    """Result of :meth:`Separator.analyze`: what one call finds out about a mixture.

    Attributes:
        masks: ``(batch, n_src, time, freq)`` real masks in [0, 1], on the input's device.
        features: ``(batch, time, freq, dim)`` per-bin features that the confidence measures
            (:mod:`bootsep.primitives.confidence`) cluster, or None: None whenever the call did
            not ask for them (``with_features=False``) or the separator has none. What they are:

            ========================== ================================================ ========
            separator                  features                                         dim
            ========================== ================================================ ========
            ``EnsembleClustering``     stacked member masks, each returned mask         sum of
            (and ``AdaptiveEnsemble``) repeated by its (base) weight                    weights
            ``SpatialClustering``      clustered IPD/ILD cues (after PCA), or the       cues or K
                                       posteriors (``confidence_features``)
            ``DeepMaskSeparator``      the model's embedding (chimera), else None       model's
            ``DeepClusteringSeparator`` the model's embedding                           model's
            others                     None
            ========================== ================================================ ========
        extra: by-products of this call, e.g. ``'cluster_centers'`` ``(n_src, dim)`` (deep
            clustering), ``'weights'`` ``(batch, n_cols)`` (adaptive ensemble), ``'delays'``
            ``(recordings, K)`` samples (spatial delay model). Copied to
            :attr:`Separation.extra`.
    """

    masks: torch.Tensor
    features: torch.Tensor | None = None
    extra: dict = field(default_factory=dict)


@dataclass
class Separation:
    """Result of :meth:`Separator.separate`.

    Attributes:
        estimates: ``(n_src, channels, samples)`` float waveforms.
        masks: ``(channels, n_src, time, freq)`` soft masks (None if the method has none).
        features: ``(channels, time, freq, dim)`` per-bin features for confidence
            (:attr:`Analysis.features`), or None.
        mix_magnitude: ``(channels, time, freq)`` mixture magnitude (for loud-bin selection).
        labels: source names, in the order of ``estimates``.
        extra: :attr:`Analysis.extra` of the call.
    """

    estimates: torch.Tensor
    labels: list
    masks: torch.Tensor | None = None
    features: torch.Tensor | None = None
    mix_magnitude: torch.Tensor | None = None
    extra: dict = field(default_factory=dict)


class Separator:
    """Base class. Subclasses implement :meth:`analyze` (masks and features from one call) or,
    when they have no features, just :meth:`masks`.

    Args:
        sample_rate: sample rate in Hz the algorithm runs at (default 16000).
        stft: the shared STFT (default 512/128 sqrt-Hann; the commands refuse a separator left
            on this default when the config's ``STFT`` differs, see ``config/contract.py``).
        source_labels: names of the output sources, in output order.
        device: ``None`` = CUDA when available, else CPU.
    """

    #: whether :meth:`masks` needs the reference sources (oracle baselines)
    needs_references = False
    #: whether the output order is arbitrary (clustering): evaluation then searches permutations
    arbitrary_order = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # overrides that analyze() (what separate() calls) would silently ignore
        if callable(cls.__dict__.get("features")):
            raise TypeError(f"{cls.__name__} defines features(); a separator returns its "
                            "features from analyze(mix_spec, source_specs, with_features) in "
                            "Analysis.features (bootsep.separation.base)")
        if ("masks" in cls.__dict__ and "analyze" not in cls.__dict__
                and cls.analyze is not Separator.analyze):
            raise TypeError(f"{cls.__name__} overrides masks() but inherits an analyze() that "
                            "computes the masks itself, so separate() would not use it; "
                            "override analyze() instead")

    def __init__(self, sample_rate: int = 16000, stft: STFT | None = None,
                 source_labels=("accompaniment", "vocals"), device: str | None = None):
        self.sample_rate = int(sample_rate)
        self.stft = stft or STFT()
        # an unbound stft falls back to the default; `config.contract.check_stft` refuses that
        # when the config binds another STFT (private: not part of describe/fingerprint)
        self._stft_defaulted = stft is None
        self.source_labels = list(source_labels)
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)

    @property
    def num_sources(self) -> int:
        return len(self.source_labels)

    def analyze(self, mix_spec: torch.Tensor, source_specs: torch.Tensor | None = None,
                with_features: bool = False) -> Analysis:
        """Complex ``(batch, time, freq)`` -> :class:`Analysis` (masks ``(batch, n_src, time,
        freq)`` and, with ``with_features``, features ``(batch, time, freq, dim)`` or None).

        ``source_specs`` ``(batch, n_src, time, freq)`` is given only to oracle separators.
        The default returns :meth:`masks` and no features.
        """
        if type(self).masks is Separator.masks:
            raise NotImplementedError(f"{type(self).__name__} implements neither analyze nor masks")
        return Analysis(self.masks(mix_spec, source_specs))

    def masks(self, mix_spec: torch.Tensor, source_specs: torch.Tensor | None = None) -> torch.Tensor:
        """Complex ``(batch, time, freq)`` -> masks ``(batch, n_src, time, freq)``:
        ``analyze(mix_spec, source_specs).masks``.

        ``source_specs`` ``(batch, n_src, time, freq)`` is given only to oracle separators.
        """
        if type(self).analyze is Separator.analyze:
            raise NotImplementedError(f"{type(self).__name__} implements neither analyze nor masks")
        return self.analyze(mix_spec, source_specs).masks

    @torch.no_grad()
    def separate(self, mix: torch.Tensor, sources: torch.Tensor | None = None,
                 with_features: bool = False) -> Separation:
        """Separate a mixture (one :meth:`analyze` call, then the masks are inverted).

        Args:
            mix: ``(channels, samples)`` or ``(samples,)`` waveform at ``self.sample_rate``.
            sources: ``(n_src, channels, samples)`` references, only for oracle separators.
            with_features: also return per-bin features for confidence measures.
        """
        mix = torch.as_tensor(mix, dtype=torch.float32)
        if mix.dim() == 1:
            mix = mix.unsqueeze(0)
        length = mix.shape[-1]
        mix = mix.to(self.device)
        X = self.stft(mix)  # (channels, time, freq)
        S = None
        if self.needs_references:
            if sources is None:
                raise ValueError(f"{type(self).__name__} is an oracle: it needs the reference sources")
            sources = torch.as_tensor(sources, dtype=torch.float32).to(self.device)
            if sources.dim() == 2:
                sources = sources.unsqueeze(1)
            S = self.stft(sources).transpose(0, 1)  # (channels, n_src, time, freq)
        result = self.analyze(X, S, with_features=with_features)
        m = result.masks
        est = self.stft.apply_masks(m, X, length=length)  # (channels, n_src, samples)
        feats = result.features if with_features else None
        return Separation(estimates=est.transpose(0, 1).contiguous().cpu(), labels=self.source_labels,
                          masks=m.cpu(), features=None if feats is None else feats.cpu(),
                          mix_magnitude=X.abs().cpu(), extra=dict(result.extra))


def describe(obj, depth: int = 0):
    """A JSON-able description of a separator's settings, for provenance and for telling two
    separators apart (e.g. ensembles that differ only in their weights).

    Public attributes are walked recursively (nested separators, lists, dicts); STFTs give
    their parameters, small tensors their values, large tensors their shape and sum, models
    (``torch.nn.Module``) their class only (a checkpoint path identifies the weights). Left
    out: the device, private attributes (``_x``) and fitted state (``x_``, scikit-learn's
    convention; separators keep none, a call's by-products are in :attr:`Analysis.extra`), so
    the description is the same before and after any number of calls.
    """
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else str(obj)
    if depth > 6:
        return type(obj).__name__
    if isinstance(obj, (list, tuple)):
        return [describe(x, depth + 1) for x in obj]
    if isinstance(obj, dict):
        return {str(k): describe(v, depth + 1) for k, v in obj.items()}
    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu()
        if t.numel() <= 64:
            return t.double().tolist()
        return {"shape": list(t.shape), "sum": float(t.double().sum())}
    if isinstance(obj, torch.nn.Module):
        return {"class": type(obj).__name__}
    params = getattr(obj, "params", None)
    if params is not None and hasattr(params, "to_dict"):
        return {"class": type(obj).__name__, **params.to_dict()}
    if hasattr(obj, "__dict__"):
        out = {"class": type(obj).__name__}
        for k, v in vars(obj).items():
            if (not k.startswith("_") and not k.endswith("_") and k != "device"
                    and not inspect.isroutine(v)):
                out[k] = describe(v, depth + 1)
        return out
    return repr(obj)


def fingerprint(obj) -> str:
    """12 hex digits identifying :func:`describe` ``(obj)``."""
    import hashlib
    import json

    text = json.dumps(describe(obj), sort_keys=True, default=str)
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:12]
