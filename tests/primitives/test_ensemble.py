"""The primitive ensemble: features, fixed/fitted soft clustering, sharing, caching, factory."""

import numpy as np
import pytest
import torch

from bootsep.dsp import STFT
from bootsep.primitives import (
    FT2D,
    HPSS,
    EnsembleClustering,
    IdealBinaryMask,
    Repet,
    RepetSim,
    primitive_clustering,
)
from bootsep.separation.base import Separator

from ._signals import separate_np, si_sdr, spec_of


class Counting(Separator):
    """Wraps a separator and counts ``masks`` calls."""

    def __init__(self, inner: Separator):
        super().__init__(inner.sample_rate, inner.stft, inner.source_labels, "cpu")
        self.inner = inner
        self.calls = 0

    def masks(self, mix_spec, source_specs=None):
        self.calls += 1
        return self.inner.masks(mix_spec)


class FakePitch(Separator):
    """A stand-in pitch primitive: foreground = bins above 1 kHz."""

    def masks(self, mix_spec, source_specs=None):
        fg = torch.zeros(mix_spec.shape, dtype=torch.float32)
        fg[..., 32:] = 1.0
        return torch.stack([1 - fg, fg], dim=1)


@pytest.fixture(scope="module")
def X(stft, repetition_mix, second_mix):
    return spec_of(stft, repetition_mix[0][:48000], second_mix[0][:48000])


def test_features_stack_returned_masks_with_weights(X):
    rep, hpss = Repet(), HPSS()
    ens = EnsembleClustering([rep, hpss], returns=[[1], [0, 1]], weights=[2, 1])
    f = ens.analyze(X, with_features=True).features
    assert ens.dim == 4 and f.shape == (*X.shape, 4)
    mr, mh = rep.masks(X), hpss.masks(X)
    ref = torch.stack([mr[:, 1], mr[:, 1], mh[:, 0], mh[:, 1]], dim=-1)
    torch.testing.assert_close(f, ref, atol=0, rtol=0)


def test_fixed_responsibilities_formula(X):
    ens = EnsembleClustering([FT2D(), HPSS()], returns=[[1], [0]], weights=[3, 1], beta=2.5)
    f = ens.analyze(X, with_features=True).features.double().numpy()
    d0 = np.linalg.norm(f, axis=-1)
    d1 = np.linalg.norm(f - 1.0, axis=-1)
    vocals = np.exp(-2.5 * d1) / (np.exp(-2.5 * d0) + np.exp(-2.5 * d1))
    np.testing.assert_allclose(ens.masks(X)[:, 1].numpy(), vocals, atol=1e-5)
    centers = [[0.2] * 4, [0.7] * 4]
    custom = EnsembleClustering([FT2D(), HPSS()], [[1], [0]], [3, 1], centers=centers, beta=1.0)
    c1 = np.exp(-np.linalg.norm(f - 0.7, axis=-1))
    c0 = np.exp(-np.linalg.norm(f - 0.2, axis=-1))
    np.testing.assert_allclose(custom.masks(X)[:, 1].numpy(), c1 / (c0 + c1), atol=1e-5)


def test_time_smoothing_is_a_running_mean_of_the_masks(X):
    """``smoothing`` seconds -> the odd frame count nearest to seconds * sr / hop; the masks
    are the unsmoothed ones averaged over that many frames (brute force, border frame
    repeated) and still sum to 1."""
    from bootsep.primitives.ensemble import smoothing_frames

    assert [smoothing_frames(s, 16000, 128) for s in (0, 0.01, 0.024, 0.04, 0.056)] == [1, 1, 3, 5, 7]
    assert smoothing_frames(0.04, 44100, 1024) == 1 and smoothing_frames(0.1, 44100, 1024) == 5
    plain = EnsembleClustering([FT2D(), HPSS()], [[1], [0]], [3, 1])
    smooth = EnsembleClustering([FT2D(), HPSS()], [[1], [0]], [3, 1], smoothing=0.04)
    assert smooth.smoothing_frames == 5 and plain.smoothing_frames == 1
    m, ms = plain.masks(X).double().numpy(), smooth.masks(X).double().numpy()
    T = m.shape[-2]
    ref = np.stack([m[..., np.clip(np.arange(T) + k, 0, T - 1), :] for k in range(-2, 3)]).mean(0)
    np.testing.assert_allclose(ms, ref, atol=1e-5)
    np.testing.assert_allclose(ms.sum(axis=1), 1.0, atol=1e-5)
    assert not np.allclose(ms, m, atol=1e-3)
    with pytest.raises(ValueError, match="smoothing"):
        EnsembleClustering([FT2D()], [[1]], smoothing=-0.1)


def test_each_member_runs_once_and_ft2d_is_shared(repetition_mix, monkeypatch):
    calls = {"fft2": 0}
    real_fft2 = torch.fft.fft2

    def counting_fft2(*a, **k):
        calls["fft2"] += 1
        return real_fft2(*a, **k)

    monkeypatch.setattr(torch.fft, "fft2", counting_fft2)
    hpss = Counting(HPSS())
    r, m = FT2D(use_bg_2dft=True), FT2D(use_bg_2dft=False)
    ens = EnsembleClustering([r, m, hpss, hpss], returns=[[1], [1], [0], [1]], weights=[3, 1, 1, 1])
    out = ens.separate(torch.as_tensor(repetition_mix[0][:32000]), with_features=True)
    assert hpss.calls == 1  # same instance twice, masks + features: one run
    assert calls["fft2"] == 1  # 2DFT-R and 2DFT-M from one 2-D FFT
    assert out.features.shape[-1] == 6
    X = spec_of(ens.stft, repetition_mix[0][:32000])
    first = ens.analyze(X, with_features=True)
    assert hpss.calls == 2 and ens.analyze(X).features is None  # features only when asked
    assert hpss.calls == 3  # nothing is kept between calls
    X.mul_(0.5)  # in-place change: seen by the next call
    again = ens.analyze(X, with_features=True)
    assert hpss.calls == 4 and not torch.equal(again.features, first.features)


def test_ensemble_beats_its_worst_member(repetition_mix):
    mix, (drums, voice) = repetition_mix
    members = {
        "2dft_r": FT2D(use_bg_2dft=True, device="cpu"),
        "2dft_m": FT2D(use_bg_2dft=False, device="cpu"),
        "hpss": HPSS(device="cpu"),
    }
    member_voc = {
        "2dft_r": si_sdr(separate_np(members["2dft_r"], mix)[1], voice),
        "2dft_m": si_sdr(separate_np(members["2dft_m"], mix)[1], voice),
        "hpss": si_sdr(separate_np(members["hpss"], mix)[0], voice),  # harmonic -> vocals
    }
    ens = primitive_clustering(device="cpu")
    est = separate_np(ens, mix)
    voc, acc = si_sdr(est[1], voice), si_sdr(est[0], drums)
    assert voc > min(member_voc.values()) + 3.0
    assert voc > 8.0 and acc > 8.0
    assert si_sdr(mix, voice) < 1.0


@pytest.mark.parametrize("clustering", ["kmeans", "gmm"])
def test_fitted_clusterings_keep_accompaniment_vocals_order(repetition_mix, clustering):
    mix, (drums, voice) = repetition_mix
    ens = primitive_clustering(device="cpu", clustering=clustering)
    est = separate_np(ens, mix)
    assert si_sdr(est[1], voice) > 6.0
    assert si_sdr(est[0], drums) > 6.0


def test_factory_with_pitch_has_seven_features(X):
    ens = primitive_clustering(pitch=FakePitch(device="cpu"))
    assert ens.weights == [3, 1, 2, 1] and ens.returns == [[1], [1], [1], [0]]
    assert ens.dim == 7 and ens.analyze(X, with_features=True).features.shape[-1] == 7
    assert primitive_clustering().dim == 5
    assert ens.source_labels == ["accompaniment", "vocals"]


def test_validation():
    with pytest.raises(ValueError, match="oracle"):
        EnsembleClustering([IdealBinaryMask()], [[0]])
    with pytest.raises(ValueError, match="runs at"):
        EnsembleClustering([Repet(), RepetSim(stft=STFT(1024, 256))], [[1], [1]])
    with pytest.raises(ValueError, match="returns"):
        EnsembleClustering([Repet()], [[2]])
    with pytest.raises(ValueError, match="separators"):
        EnsembleClustering([Repet(), HPSS()], [[1]])
    with pytest.raises(ValueError, match="centers"):
        EnsembleClustering([Repet()], [[1]], num_sources=3,
                           source_labels=("a", "b", "c"))
    with pytest.raises(ValueError, match="centers"):
        EnsembleClustering([Repet()], [[1]], weights=[2], centers=[[0.0], [1.0]])
    with pytest.raises(ValueError, match="clustering"):
        EnsembleClustering([Repet()], [[1]], clustering="spectral")
