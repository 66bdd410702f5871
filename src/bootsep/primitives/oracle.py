"""Benchmark separators: oracle masks from the reference sources, and trivial baselines.

Oracles (``needs_references = True``) take the reference source spectrograms
``source_specs (batch, n_src, time, freq)`` complex; their output order is the order of the
references. ``MixAsEstimate`` and ``HighLowPassFilter`` use no references.
"""

from __future__ import annotations

import math

import torch

from ..dsp import STFT
from ..separation.base import Separator
from ._filters import high_pass_bins

_EPS = 1e-8
IRM_TYPES = ("msa", "psa", "ratio")


def _check_refs(mix_spec: torch.Tensor, source_specs: torch.Tensor | None, who: str) -> torch.Tensor:
    if source_specs is None:
        raise ValueError(f"{who} is an oracle: it needs source_specs (batch, n_src, time, freq)")
    if source_specs.dim() != 4 or source_specs.shape[0] != mix_spec.shape[0] or \
            source_specs.shape[-2:] != mix_spec.shape[-2:]:
        raise ValueError(f"{who}: source_specs {tuple(source_specs.shape)} does not match "
                         f"mix_spec {tuple(mix_spec.shape)} as (batch, n_src, time, freq)")
    return source_specs.to(mix_spec.device)


class IdealBinaryMask(Separator):
    """Oracle: each bin goes entirely to the source with the largest magnitude.

    Masks ``(batch, n_src, time, freq)`` one-hot over sources (ties -> the first source).
    Args as :class:`Separator`; ``source_labels`` must match the number of references.
    """

    needs_references = True

    def masks(self, mix_spec: torch.Tensor, source_specs: torch.Tensor | None = None) -> torch.Tensor:
        refs = _check_refs(mix_spec, source_specs, type(self).__name__)
        mags = refs.abs()
        idx = mags.argmax(dim=1, keepdim=True)
        return torch.zeros_like(mags).scatter_(1, idx, 1.0)


class IdealRatioMask(Separator):
    """Oracle soft masks.

    Args:
        mask_type: ``'msa'`` (default): ``clip(|S_i| / |X|, 0, 1)`` (magnitude spectrum
            approximation); ``'psa'``: ``clip(|S_i| cos(angle(S_i) - angle(X)) / |X|, 0, 1)``
            (phase-sensitive); ``'ratio'``: ``|S_i|^p / sum_j |S_j|^p``.
        power: exponent for ``'ratio'`` (default 1).
        normalize: divide the masks by their sum over sources so they sum to 1 (default False:
            ``msa``/``psa`` masks are upper bounds and need not sum to 1; ``ratio`` always does).
            With ``power=inf`` the ratio mask is the ideal binary mask.
        (plus sample_rate, stft, source_labels, device as :class:`Separator`.)
    """

    needs_references = True

    def __init__(self, sample_rate: int = 16000, stft: STFT | None = None,
                 mask_type: str = "msa", power: float = 1.0, normalize: bool = False,
                 source_labels=("accompaniment", "vocals"), device: str | None = None):
        super().__init__(sample_rate, stft, source_labels, device)
        if mask_type not in IRM_TYPES:
            raise ValueError(f"unknown mask_type {mask_type!r}; choose one of {IRM_TYPES}")
        if not power > 0:
            raise ValueError(f"power must be > 0, got {power}")
        self.mask_type = mask_type
        self.power = float(power)
        self.normalize = bool(normalize)

    def masks(self, mix_spec: torch.Tensor, source_specs: torch.Tensor | None = None) -> torch.Tensor:
        refs = _check_refs(mix_spec, source_specs, type(self).__name__)
        mags = refs.abs()
        mix = mix_spec.abs().unsqueeze(1)
        if self.mask_type == "ratio":
            if math.isinf(self.power):  # limit of the ratio: the ideal binary mask
                return torch.zeros_like(mags).scatter_(1, mags.argmax(dim=1, keepdim=True), 1.0)
            p = mags.pow(self.power)
            total = p.sum(dim=1, keepdim=True)
            n = refs.shape[1]
            return torch.where(total > 0, p / total.clamp_min(torch.finfo(p.dtype).tiny),
                               torch.full_like(p, 1.0 / n))
        if self.mask_type == "msa":
            m = mags / (mix + _EPS)
        else:
            cos = torch.cos(torch.angle(refs) - torch.angle(mix_spec).unsqueeze(1))
            m = mags * cos / (mix + _EPS)
        m = m.clamp(0.0, 1.0)
        if self.normalize:
            total = m.sum(dim=1, keepdim=True)
            m = torch.where(total > 0, m / total.clamp_min(_EPS), torch.full_like(m, 1.0 / m.shape[1]))
        return m


class WienerFilter(IdealRatioMask):
    """Oracle Wiener filter: power ratio ``|S_i|^2 / sum_j |S_j|^2`` (``power`` default 2)."""

    def __init__(self, sample_rate: int = 16000, stft: STFT | None = None, power: float = 2.0,
                 source_labels=("accompaniment", "vocals"), device: str | None = None):
        super().__init__(sample_rate, stft, "ratio", power, True, source_labels, device)


class MixAsEstimate(Separator):
    """Baseline: the mixture itself is the estimate of every source (mask 1 everywhere).

    Masks are all ones ``(batch, n_src, time, freq)``, so they sum to ``n_src``, not 1; the
    scores of this separator are the "MIX-" baselines (SI-SDRi = 0 by definition).
    """

    def masks(self, mix_spec: torch.Tensor, source_specs: torch.Tensor | None = None) -> torch.Tensor:
        b, t, f = mix_spec.shape
        dtype = mix_spec.real.dtype if torch.is_complex(mix_spec) else mix_spec.dtype
        return torch.ones(b, self.num_sources, t, f, dtype=dtype, device=mix_spec.device)


class HighLowPassFilter(Separator):
    """Baseline: bins below ``cutoff_hz`` go to one source, the rest to the other.

    Args:
        cutoff_hz: split frequency in Hz (default 500); bins whose centre frequency is below
            it are "low".
        low_index: which output gets the low band (default 0 = ``'accompaniment'``); the other
            of the two outputs gets the high band.
        source_labels: two labels (default ``('accompaniment', 'vocals')``).
        (plus sample_rate, stft, device as :class:`Separator`.)
    """

    def __init__(self, sample_rate: int = 16000, stft: STFT | None = None,
                 cutoff_hz: float = 500.0, low_index: int = 0,
                 source_labels=("accompaniment", "vocals"), device: str | None = None):
        super().__init__(sample_rate, stft, source_labels, device)
        if self.num_sources != 2:
            raise ValueError(f"HighLowPassFilter has 2 outputs, got labels {self.source_labels}")
        if low_index not in (0, 1):
            raise ValueError(f"low_index must be 0 or 1, got {low_index}")
        if cutoff_hz < 0:
            raise ValueError(f"cutoff_hz must be >= 0, got {cutoff_hz}")
        self.cutoff_hz = float(cutoff_hz)
        self.low_index = int(low_index)

    def masks(self, mix_spec: torch.Tensor, source_specs: torch.Tensor | None = None) -> torch.Tensor:
        b, t, f = mix_spec.shape
        dtype = mix_spec.real.dtype if torch.is_complex(mix_spec) else mix_spec.dtype
        low = torch.zeros(b, t, f, dtype=dtype, device=mix_spec.device)
        low[..., :high_pass_bins(self.stft, self.sample_rate, self.cutoff_hz)] = 1.0
        pair = [low, 1.0 - low] if self.low_index == 0 else [1.0 - low, low]
        return torch.stack(pair, dim=1)
