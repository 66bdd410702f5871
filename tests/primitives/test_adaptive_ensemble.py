"""The adaptive ensemble: per-mixture member weights from reference-free cues."""

import numpy as np
import pytest
import torch

from bootsep.primitives import AdaptiveEnsemble, EnsembleClustering
from bootsep.primitives.ensemble import adaptive_weights, member_cues, weighted_fixed_assign
from bootsep.separation.base import Separator

from ._signals import si_sdr


class MaskFrom(Separator):
    """A stand-in primitive whose foreground (vocals) mask is ``fn(|X|, truth)``: it sees the
    ideal binary mask of the test mixture, which a real primitive would have to estimate."""

    def __init__(self, stft, truth_fn, kind: str, seed: int = 0):
        super().__init__(16000, stft, ("background", "foreground"), "cpu")
        self.truth_fn, self.kind, self.seed = truth_fn, kind, seed

    def masks(self, mix_spec, source_specs=None):
        ibm = self.truth_fn(mix_spec)
        gen = torch.Generator().manual_seed(self.seed)
        noise = torch.rand(ibm.shape, generator=gen)
        if self.kind == "good":  # right on 85 % of the bins
            fg = torch.where(noise < 0.85, ibm, 1 - ibm)
        elif self.kind == "wrong":  # the inverted mask (e.g. a cue locked onto the backing)
            fg = 1 - ibm
        else:  # "noise": uninformative
            fg = noise
        return torch.stack([1 - fg, fg], dim=1)


@pytest.fixture(scope="module")
def mixture(stft, repetition_mix):
    mix, (drums, voice) = repetition_mix
    n = 3 * 16000
    mix, drums, voice = mix[:n], drums[:n], voice[:n]
    D, V = stft(torch.from_numpy(drums)[None]), stft(torch.from_numpy(voice)[None])
    ibm = (V.abs() > D.abs()).float()

    def truth(mix_spec):
        assert mix_spec.shape == ibm.shape
        return ibm

    return mix, voice, truth


def members(stft, truth, wrong="wrong"):
    return [MaskFrom(stft, truth, "good", seed=1), MaskFrom(stft, truth, "good", seed=2),
            MaskFrom(stft, truth, "good", seed=3), MaskFrom(stft, truth, wrong, seed=4)]


@pytest.mark.parametrize("wrong", ["wrong", "noise"])
def test_a_clearly_wrong_member_gets_a_lower_weight(stft, mixture, wrong):
    mix, voice, truth = mixture
    ens = AdaptiveEnsemble(members(stft, truth, wrong), [[1]] * 4, weights=[1, 1, 1, 2],
                           gamma=2.0)
    w = ens.separate(mix).extra["weights"][0]
    assert w.shape == (4,)
    assert torch.isclose(w.sum(), torch.tensor(5.0, dtype=w.dtype))  # base sum kept
    assert w[3] < 0.25 * w[:3].min()  # the bad member, though its base weight is the largest


def test_adaptive_beats_fixed_weights_when_a_member_is_wrong(stft, mixture):
    mix, voice, truth = mixture
    seps = members(stft, truth)
    fixed = EnsembleClustering(seps, [[1]] * 4, weights=[1, 1, 1, 2], beta=2.5)
    adaptive = AdaptiveEnsemble(seps, [[1]] * 4, weights=[1, 1, 1, 2], beta=2.5, gamma=2.0)
    sdr_fixed = si_sdr(fixed.separate(mix).estimates[1, 0].numpy(), voice)
    sdr_adaptive = si_sdr(adaptive.separate(mix).estimates[1, 0].numpy(), voice)
    assert sdr_adaptive > sdr_fixed + 3.0


def test_deterministic(stft, mixture):
    mix, _, truth = mixture
    a = AdaptiveEnsemble(members(stft, truth), [[1]] * 4, cue="agreement")
    r1, r2 = a.separate(mix), a.separate(mix)
    m1, w1 = r1.masks, r1.extra["weights"]
    m2, w2 = r2.masks, r2.extra["weights"]
    torch.testing.assert_close(m1, m2, atol=0, rtol=0)
    torch.testing.assert_close(w1, w2, atol=0, rtol=0)


def test_gamma_zero_is_the_fixed_ensemble(stft, mixture):
    mix, _, truth = mixture
    seps = members(stft, truth)
    fixed = EnsembleClustering(seps, [[1]] * 4, weights=[2, 1, 0, 3], beta=1.5)
    adaptive = AdaptiveEnsemble(seps, [[1]] * 4, weights=[2, 1, 0, 3], beta=1.5, gamma=0.0)
    torch.testing.assert_close(adaptive.separate(mix).masks, fixed.separate(mix).masks,
                               atol=1e-5, rtol=0)
    # the confidence features are the base ensemble's
    X = stft(torch.from_numpy(mix)[None])
    torch.testing.assert_close(adaptive.analyze(X, with_features=True).features,
                               fixed.analyze(X, with_features=True).features)


def test_weighted_assign_equals_repeated_features():
    gen = torch.Generator().manual_seed(0)
    cols = torch.rand(5, 7, 3, generator=gen)
    w = [2, 0, 3]
    rep = cols[..., [0, 0, 2, 2, 2]]
    d = torch.stack([rep.norm(dim=-1), (rep - 1).norm(dim=-1)])
    torch.testing.assert_close(weighted_fixed_assign(cols, torch.tensor(w), 2.5),
                               torch.softmax(-2.5 * d, dim=0))


def test_cues_brute_force():
    gen = torch.Generator().manual_seed(1)
    cols = torch.rand(6, 5, 3, generator=gen)
    mag = torch.rand(6, 5, generator=gen)
    w = torch.tensor([1.0, 2.0, 3.0])
    cues = member_cues(cols, mag, w, percentile=0.0)  # all bins
    x = cols.reshape(-1, 3).double().numpy()
    c = np.corrcoef(x.T)
    for j in range(3):
        others = [k for k in range(3) if k != j]
        assert cues["agreement"][j].item() == pytest.approx(c[j, others].mean())
        assert cues["decisiveness"][j].item() == pytest.approx(np.abs(2 * x[:, j] - 1).mean())
    # a column with base weight 0 does not vote
    cues0 = member_cues(cols, mag, torch.tensor([1.0, 0.0, 1.0]), percentile=0.0)
    assert cues0["agreement"][0].item() == pytest.approx(c[0, 2])
    assert cues0["agreement"][1].item() == pytest.approx(c[1, [0, 2]].mean())
    # only the loud bins count: garbage in the quiet half does not change the cues
    loud = torch.cat([torch.ones(15), torch.zeros(15)]).reshape(6, 5)
    noisy = torch.where(loud[..., None] > 0, cols, torch.rand(6, 5, 3, generator=gen))
    cues_loud = member_cues(noisy, loud + 1, w, percentile=60.0)
    cues_ref = member_cues(cols.reshape(-1, 3)[:15].reshape(3, 5, 3), torch.ones(3, 5), w, 0.0)
    torch.testing.assert_close(cues_loud["agreement"], cues_ref["agreement"])
    w2 = adaptive_weights(w, torch.tensor([0.5, -0.2, 1.5]), 2.0)
    torch.testing.assert_close(w2, torch.tensor([0.25, 0.0, 3.0], dtype=torch.float64) * 6 / 3.25)


def test_bad_options(stft, mixture):
    _, _, truth = mixture
    with pytest.raises(ValueError, match="cue"):
        AdaptiveEnsemble(members(stft, truth), [[1]] * 4, cue="vibes")
    with pytest.raises(ValueError, match="gamma"):
        AdaptiveEnsemble(members(stft, truth), [[1]] * 4, gamma=-1)


def test_predictor_blends_candidate_weights(stft, mixture):
    mix, voice, truth = mixture
    seps = members(stft, truth)  # member 3 is the inverted mask
    zeros = [0.0] * 8
    coef = [zeros, [0.0, 0.0, 0.0, -20.0] + [0.0] * 4]  # low agreement of column 3 -> candidate 1
    ens = AdaptiveEnsemble(seps, [[1]] * 4, weights=[1, 1, 1, 2], cue="predictor",
                           candidates=[[1, 1, 1, 2], [1, 1, 1, 0]], coef=coef, intercept=[0, 0],
                           feature_mean=zeros, feature_scale=[1.0] * 8)
    res = ens.separate(mix)
    est = res.estimates[1, 0].numpy()
    torch.testing.assert_close(res.extra["weights"][0], torch.tensor([1, 1, 1, 0.0], dtype=torch.float64),
                               atol=1e-4, rtol=0)
    X = stft(torch.from_numpy(mix)[None])
    cols, _ = ens.columns(X)
    p, w = ens.predict(cols[0], X.abs()[0])
    assert p[1] > 0.999 and torch.isclose(p.sum(), torch.tensor(1.0, dtype=p.dtype))
    fixed = EnsembleClustering(seps, [[1]] * 4, weights=[1, 1, 1, 2], beta=2.5)
    assert si_sdr(est, voice) > si_sdr(fixed.separate(mix).estimates[1, 0].numpy(), voice) + 3.0
    # the same inputs with the opposite sign keep candidate 0
    coef_flip = [zeros, [0.0, 0.0, 0.0, 20.0] + [0.0] * 4]
    ens2 = AdaptiveEnsemble(seps, [[1]] * 4, weights=[1, 1, 1, 2], cue="predictor",
                            candidates=[[1, 1, 1, 2], [1, 1, 1, 0]], coef=coef_flip,
                            intercept=[0, 0], feature_mean=zeros, feature_scale=[1.0] * 8)
    torch.testing.assert_close(ens2.separate(mix).extra["weights"][0], torch.tensor([1, 1, 1, 2.0], dtype=torch.float64),
                               atol=1e-4, rtol=0)


def test_predictor_needs_consistent_tables(stft, mixture):
    _, _, truth = mixture
    ok = dict(candidates=[[1, 1, 1, 1]], coef=[[0.0] * 8], intercept=[0.0],
              feature_mean=[0.0] * 8, feature_scale=[1.0] * 8)
    AdaptiveEnsemble(members(stft, truth), [[1]] * 4, cue="predictor", **ok)
    for key, bad in [("candidates", [[1, 1, 1]]), ("coef", [[0.0] * 7]), ("intercept", [0.0, 1.0]),
                     ("feature_scale", [0.0] * 8), ("candidates", [[-1, 1, 1, 1]])]:
        with pytest.raises(ValueError):
            AdaptiveEnsemble(members(stft, truth), [[1]] * 4, cue="predictor", **{**ok, key: bad})
    with pytest.raises(ValueError, match="coef"):
        AdaptiveEnsemble(members(stft, truth), [[1]] * 4, cue="predictor",
                         **{k: v for k, v in ok.items() if k != "coef"})
