"""SpatialClustering: separation by inter-channel cues, deterministic order, spatial confidence."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bootsep.dsp import STFT
from bootsep.metrics.bsseval import si_sdr
from bootsep.primitives.confidence import (
    compute_confidences,
    spatial_confidence,
    spatial_tf_confidence,
)
from bootsep.primitives.spatial import SpatialClustering, channel_pairs
from bootsep.utils.errors import UserError

SR = 16000
N = SR * 2


def _source(f0s, seed):
    """Gated harmonic tones: sparse in time-frequency, like speech."""
    r = np.random.default_rng(seed)
    t = np.arange(N) / SR
    x = np.zeros(N)
    for i, f0 in enumerate(f0s):
        gate = (np.sin(2 * np.pi * (0.9 + 0.5 * i) * t + r.uniform(0, 6)) > 0.2).astype(float)
        for h in range(1, 12):
            x += gate * np.sin(2 * np.pi * f0 * h * t + r.uniform(0, 6)) / h
    return 0.3 * x / np.abs(x).max()


def _place(x, delay, gain):
    """Channel 0 = x, channel 1 = x delayed by ``delay`` samples and scaled by ``gain``."""
    return np.stack([x, gain * np.roll(x, delay)])


A = _source([220, 330], 1)
B = _source([180, 270, 410], 2)


def _mix(da, ga, db, gb):
    refs = np.stack([_place(A, da, ga), _place(B, db, gb)])  # (2, C, N)
    return torch.tensor(refs.sum(0), dtype=torch.float32), torch.tensor(refs, dtype=torch.float32)


def _best_si_sdr(est, refs):
    """Mean SI-SDR (dB) over sources and channels under the best source permutation."""
    return max(float(si_sdr(est[list(p)], refs).mean()) for p in ((0, 1), (1, 0)))


@pytest.mark.parametrize("kw", [dict(model="gmm"), dict(model="delay"),
                                dict(model="gmm", pca_components=1, covariance_type="diag")])
def test_separates_sources_at_distinct_delays_and_levels(kw):
    mix, refs = _mix(3, 0.5, -4, 1.6)
    sep = SpatialClustering(sample_rate=SR, stft=STFT(512, 128), order="azimuth", device="cpu",
                            **kw)
    out = sep.separate(mix)
    assert out.estimates.shape == (2, 2, N)
    mix_score = _best_si_sdr(torch.stack([mix, mix]), refs)
    score = _best_si_sdr(out.estimates, refs)
    assert mix_score < 1.0
    assert score > 6.0, (kw, score, mix_score)
    assert torch.allclose(out.masks.sum(1), torch.ones(()), atol=1e-4)
    # the same mask for both channels of the recording
    assert torch.equal(out.masks[0], out.masks[1])


def test_center_order_puts_the_central_source_last_as_vocals():
    # A at the centre (no delay, equal level), B panned hard to one side
    mix, refs = _mix(0, 1.0, 0, 0.2)
    sep = SpatialClustering(sample_rate=SR, stft=STFT(512, 128), device="cpu")
    assert sep.source_labels == ["accompaniment", "vocals"] and not sep.arbitrary_order
    est = sep.separate(mix).estimates
    vocals = float(si_sdr(est[1], refs[0]).mean())
    wrong = float(si_sdr(est[1], refs[1]).mean())
    assert vocals > wrong + 6.0, (vocals, wrong)


def test_deterministic_and_batched_like_one_by_one():
    m1, _ = _mix(3, 0.5, -4, 1.6)
    m2, _ = _mix(-2, 1.3, 5, 0.7)
    stft = STFT(512, 128)
    sep = SpatialClustering(sample_rate=SR, stft=stft, order="azimuth", device="cpu")
    one = [sep.masks(stft(m)) for m in (m1, m2)]
    assert torch.equal(one[0], sep.masks(stft(m1)))
    batched = SpatialClustering(sample_rate=SR, stft=stft, order="azimuth", num_channels=2,
                                device="cpu")
    both = batched.masks(stft(torch.cat([m1, m2])))
    assert torch.allclose(both, torch.cat(one), atol=1e-5)


def test_channel_pairs_and_errors():
    assert channel_pairs(3, "all") == [(0, 1), (0, 2), (1, 2)]
    assert channel_pairs(3, "adjacent") == [(0, 1), (1, 2)]
    assert channel_pairs(4, [(3, 0)]) == [(3, 0)]
    with pytest.raises(UserError, match="at least 2 channels"):
        SpatialClustering(sample_rate=SR, device="cpu").separate(torch.zeros(1, 4000))
    with pytest.raises(UserError, match="pairs"):
        channel_pairs(2, [(0, 2)])
    with pytest.raises(UserError, match="covariance_type"):
        SpatialClustering(covariance_type="tied")
    # three channels, all pairs: more features, still separates
    mix, refs = _mix(3, 0.5, -4, 1.6)
    mix3 = torch.cat([mix, mix[1:] * 0.9])
    sep = SpatialClustering(sample_rate=SR, stft=STFT(512, 128), pairs="all", order="azimuth",
                            device="cpu")
    feats = sep.analyze(sep.stft(mix3), with_features=True).features
    assert feats.shape[-1] == 9 and feats.shape[0] == 3
    assert _best_si_sdr(sep.separate(mix3).estimates[:, :2], refs) > 6.0


def test_spatial_confidence_higher_when_sources_are_apart():
    stft = STFT(512, 128)
    sep = SpatialClustering(sample_rate=SR, stft=stft, device="cpu")

    def conf(mix):
        X = stft(mix)
        return spatial_confidence(sep.analyze(X, with_features=True).features, X.abs(),
                                  threshold_percentile=80.0)

    # delays within one sample (a close pair: no spatial aliasing), where the frequency-
    # normalised IPD of one position stays compact; co-located = same delay and level
    apart, _ = _mix(1, 0.5, -1, 1.6)
    together, _ = _mix(1, 0.5, 1, 0.5)
    c_apart, c_together = conf(apart), conf(together)
    assert c_apart > c_together + 0.1, (c_apart, c_together)
    X = stft(apart)
    both = compute_confidences(sep.analyze(X, with_features=True).features, X.abs(),
                               measures=("spatial", "jensen_shannon"), threshold_percentile=80.0)
    assert both["spatial"] <= both["jensen_shannon"] * 2.001
    assert both["spatial"] == pytest.approx(c_apart)


def test_tf_confidence_is_the_training_dominance_of_pseudo_sources():
    from bootsep.losses.targets import dominance

    post = torch.softmax(torch.randn(3, 2, 10, 7), dim=1)
    mag = torch.rand(3, 10, 7) + 0.1
    tf = spatial_tf_confidence(post, weight=1.0, eps=0.0)
    assert torch.allclose(tf, dominance(post * mag[:, None]), atol=1e-6)
    assert torch.allclose(spatial_tf_confidence(post, weight=0.5, eps=0.0), 0.5 * tf)
    assert np.allclose(spatial_tf_confidence(post.numpy(), 1.0, 0.0), tf.numpy(), atol=1e-6)


def test_ensemble_member_on_stereo():
    from bootsep.primitives import HPSS, EnsembleClustering

    stft = STFT(512, 128)
    c = dict(sample_rate=SR, stft=stft, device="cpu")
    mix, _ = _mix(0, 1.0, 0, 0.2)
    ens = EnsembleClustering([HPSS(kernel_size=31, **c), SpatialClustering(**c)],
                             returns=[[0], [1]], weights=[1, 2], **c)
    out = ens.separate(mix)
    assert out.estimates.shape == (2, 2, N)


def test_spatial_margin_on_the_delay_models_posteriors():
    stft = STFT(512, 128)
    sep = SpatialClustering(sample_rate=SR, stft=stft, model="delay", use_ild=False,
                            order="azimuth", confidence_features="posteriors", device="cpu")

    def conf(mix):
        X = stft(mix)
        result = sep.analyze(X, with_features=True)
        feats = result.features
        assert result.extra["delays"].shape == (1, 2)  # one recording, K delays
        assert feats.shape[-1] == 2 and torch.allclose(feats.sum(-1), torch.ones(()), atol=1e-4)
        return compute_confidences(feats, X.abs(), measures=("spatial_margin",),
                                   threshold_percentile=80.0)["spatial_margin"]

    apart, _ = _mix(3, 1.0, -4, 1.0)
    together, _ = _mix(3, 1.0, 3, 1.0)
    c_apart, c_together = conf(apart), conf(together)
    assert 0.0 <= c_together < c_apart <= 1.0
    assert c_apart > c_together + 0.2, (c_apart, c_together)
    # not posteriors (3 columns for 2 sources): not applicable
    odd = compute_confidences(torch.rand(5, 6, 3), torch.rand(5, 6), measures=("spatial_margin",))
    assert np.isnan(odd["spatial_margin"])
