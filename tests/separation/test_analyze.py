"""The one way a separator exposes masks and features: ``Separator.analyze`` -> ``Analysis``;
and the one mask x mixture -> iSTFT (``STFT.apply_masks``)."""

from __future__ import annotations

import pytest
import torch

from bootsep.dsp import STFT
from bootsep.models import Chimera, DeepClustering
from bootsep.primitives.ensemble import AdaptiveEnsemble, EnsembleClustering
from bootsep.primitives.hpss import HPSS
from bootsep.primitives.repet import Repet
from bootsep.primitives.spatial import SpatialClustering
from bootsep.separation.base import Analysis, Separator
from bootsep.separation.deep import DeepClusteringSeparator, DeepMaskSeparator

SR = 8000
SMALL = STFT(256, 64)


class MasksOnly(Separator):
    def masks(self, mix_spec, source_specs=None):
        v = (mix_spec.abs() > 0.1).float()
        return torch.stack([1 - v, v], dim=1)


def _mix(channels=2, seconds=1.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    n = int(seconds * SR)
    t = torch.arange(n) / SR
    tone = 0.3 * torch.sin(2 * torch.pi * 440 * t)
    noise = 0.1 * torch.randn(channels, n, generator=g)
    return tone + noise * torch.linspace(0.5, 1.0, channels)[:, None]


def _model_seps():
    torch.manual_seed(0)
    common = dict(hidden_size=8, num_layers=1, dropout=0.0, embedding_size=4)
    return [DeepMaskSeparator(Chimera(SMALL.n_freq, **common).eval(), SR, SMALL, device="cpu",
                              chunk_frames=40, overlap_frames=8),
            DeepClusteringSeparator(DeepClustering(SMALL.n_freq, **common).eval(), 2, SR, SMALL,
                                    device="cpu", chunk_frames=40, overlap_frames=8),
            DeepClusteringSeparator(DeepClustering(SMALL.n_freq, **common).eval(), 2, SR, SMALL,
                                    device="cpu", chunk_frames=40, overlap_frames=8,
                                    cache_bytes=0)]


def _separators():
    c = dict(sample_rate=SR, stft=SMALL, device="cpu")
    members = [Repet(**c), HPSS(kernel_size=17, **c)]
    return [EnsembleClustering(members, [[1], [0]], [2, 1], **c),
            EnsembleClustering(members, [[1], [0]], [2, 1], clustering="kmeans", **c),
            AdaptiveEnsemble(members, [[1], [0]], [2, 1], **c),
            SpatialClustering(**c), SpatialClustering(model="delay", **c),
            *_model_seps()]


def test_default_analyze_is_masks_without_features():
    sep = MasksOnly(SR, SMALL, device="cpu")
    X = SMALL(_mix())
    result = sep.analyze(X, with_features=True)
    assert isinstance(result, Analysis) and result.features is None and result.extra == {}
    assert torch.equal(result.masks, sep.masks(X))
    assert sep.separate(_mix(), with_features=True).features is None


def test_a_separator_must_implement_analyze_or_masks():
    class Nothing(Separator):
        pass

    with pytest.raises(NotImplementedError, match="neither analyze nor masks"):
        Nothing(SR, SMALL, device="cpu").masks(SMALL(_mix()))
    with pytest.raises(NotImplementedError, match="neither analyze nor masks"):
        Nothing(SR, SMALL, device="cpu").separate(_mix())


def test_overrides_that_separate_would_ignore_are_refused():
    with pytest.raises(TypeError, match="analyze"):
        class Old(MasksOnly):  # noqa: F841
            def features(self, mix_spec):
                return mix_spec.abs()[..., None]
    with pytest.raises(TypeError, match="override analyze"):
        class Flipped(EnsembleClustering):  # noqa: F841
            def masks(self, mix_spec, source_specs=None):
                return super().masks(mix_spec, source_specs).flip(1)

    class FlippedMasksOnly(MasksOnly):  # a masks-only parent: the override is used
        def masks(self, mix_spec, source_specs=None):
            return super().masks(mix_spec, source_specs).flip(1)

    X = SMALL(_mix())
    flipped = FlippedMasksOnly(SR, SMALL, device="cpu")
    assert torch.equal(flipped.analyze(X).masks, MasksOnly(SR, SMALL, device="cpu").masks(X).flip(1))


@pytest.mark.parametrize("index", range(8))
def test_one_call_gives_masks_and_features_and_keeps_no_state(index):
    sep = _separators()[index]
    mix = _mix()
    X = sep.stft(mix)
    before = dict(vars(sep))
    full = sep.analyze(X, with_features=True)
    plain = sep.analyze(X)
    res = sep.separate(mix, with_features=True)
    # nothing is stored on the separator by a call (no caches, flags or last-call results)
    assert vars(sep).keys() == before.keys()
    assert all(vars(sep)[k] is v for k, v in before.items())
    assert full.features is not None and full.features.shape[:3] == X.shape
    assert plain.features is None and sep.separate(mix).features is None
    torch.testing.assert_close(plain.masks, full.masks, atol=1e-6, rtol=0)
    torch.testing.assert_close(sep.masks(X), full.masks, atol=1e-6, rtol=0)
    torch.testing.assert_close(res.masks, full.masks, atol=1e-6, rtol=0)
    torch.testing.assert_close(res.features, full.features, atol=1e-6, rtol=0)
    assert res.extra.keys() == full.extra.keys()


def test_extra_carries_the_call_by_products():
    mix = _mix()
    ens, _, adaptive, _, delay, _, dpcl, _ = _separators()
    assert adaptive.analyze(adaptive.stft(mix)).extra["weights"].shape == (2, 2)
    assert delay.analyze(delay.stft(mix)).extra["delays"].shape == (1, 2)
    assert dpcl.separate(mix).extra["cluster_centers"].shape == (2, 4)
    assert ens.separate(mix).extra == {}


def test_apply_masks_is_mask_times_mixture_inverted():
    stft = STFT(128, 32)
    mix = torch.randn(3, 1000)
    X = stft(mix)
    masks = torch.rand(3, 2, *X.shape[1:], requires_grad=True)
    y = stft.apply_masks(masks, X, length=1000)
    assert y.shape == (3, 2, 1000)
    torch.testing.assert_close(y, stft.inverse(masks * X.unsqueeze(1), length=1000), atol=0,
                               rtol=0)
    torch.testing.assert_close(stft.apply_masks(torch.ones(3, 1, *X.shape[1:]), X, 1000)[:, 0],
                               mix, atol=1e-5, rtol=0)
    y.sum().backward()  # the trainer's audio losses differentiate through it
    assert masks.grad is not None
