"""The one interface every separation algorithm follows: primitive, ensemble, oracle or deep.

A separator maps a mixture to per-source soft masks on the shared :class:`~bootsep.dsp.STFT`
and inverts ``mask * mixture STFT`` with the same STFT. Channels are separated independently
(they are folded into the batch dimension).

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
class Separation:
    """Result of :meth:`Separator.separate`.

    Attributes:
        estimates: ``(n_src, channels, samples)`` float waveforms.
        masks: ``(channels, n_src, time, freq)`` soft masks (None if the method has none).
        features: ``(channels, time, freq, dim)`` per-bin features for confidence, or None.
        mix_magnitude: ``(channels, time, freq)`` mixture magnitude (for loud-bin selection).
        labels: source names, in the order of ``estimates``.
    """

    estimates: torch.Tensor
    labels: list
    masks: torch.Tensor | None = None
    features: torch.Tensor | None = None
    mix_magnitude: torch.Tensor | None = None
    extra: dict = field(default_factory=dict)


class Separator:
    """Base class. Subclasses implement :meth:`masks` (and optionally :meth:`features`).

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

    def masks(self, mix_spec: torch.Tensor, source_specs: torch.Tensor | None = None) -> torch.Tensor:
        """Complex ``(batch, time, freq)`` -> masks ``(batch, n_src, time, freq)``.

        ``source_specs`` ``(batch, n_src, time, freq)`` is given only to oracle separators.
        """
        raise NotImplementedError

    def features(self, mix_spec: torch.Tensor) -> torch.Tensor | None:
        """Per-bin features ``(batch, time, freq, dim)`` for confidence measures, or None."""
        return None

    @torch.no_grad()
    def separate(self, mix: torch.Tensor, sources: torch.Tensor | None = None,
                 with_features: bool = False) -> Separation:
        """Separate a mixture.

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
        m = self.masks(X, S)
        est = self.stft.inverse(m * X.unsqueeze(1), length=length)  # (channels, n_src, samples)
        feats = self.features(X) if with_features else None
        return Separation(estimates=est.transpose(0, 1).contiguous().cpu(), labels=self.source_labels,
                          masks=m.cpu(), features=None if feats is None else feats.cpu(),
                          mix_magnitude=X.abs().cpu())


def describe(obj, depth: int = 0):
    """A JSON-able description of a separator's settings, for provenance and for telling two
    separators apart (e.g. ensembles that differ only in their weights).

    Public attributes are walked recursively (nested separators, lists, dicts); STFTs give
    their parameters, small tensors their values, large tensors their shape and sum, models
    (``torch.nn.Module``) their class only (a checkpoint path identifies the weights). Left
    out: the device, private attributes (``_x``) and fitted state (``x_``, scikit-learn's
    convention, e.g. the cluster centres of the last call), so the description is the same
    before and after any number of calls.
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
