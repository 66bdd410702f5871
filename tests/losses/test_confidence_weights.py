"""Per-T-F confidence weights recovered from bootstrapped source magnitudes (the loss targets'
``train.confidence_power`` weighting)."""

from __future__ import annotations

import pytest
import torch

from bootsep.dsp import STFT
from bootsep.dsp.features import magnitude_weights
from bootsep.losses.cluster import deep_clustering_loss
from bootsep.losses.targets import confidence_weights, dominance


def test_dominance_recovers_the_teachers_mask_margin():
    g = torch.Generator().manual_seed(0)
    stft = STFT(256, 64)
    mix = torch.randn(2, 8000, generator=g)
    X = stft(mix)
    t = torch.arange(X.shape[1]).view(-1, 1)
    f = torch.arange(X.shape[2]).view(1, -1)
    m = torch.sigmoid(3 * torch.sin(f / 15.0 + t / 40.0)).expand(2, 1, *X.shape[1:])
    masks = torch.cat([m, 1 - m], dim=1)                        # a smooth soft teacher
    sources = stft.inverse(masks * X.unsqueeze(1), length=8000)  # what organize links
    S = stft(sources).abs()
    d = dominance(S)
    expected = (2 * masks.amax(1) - 1)                           # (K max m - 1) / (K - 1)
    loud = X.abs() > 0.05 * X.abs().amax()
    assert d.shape == X.shape
    # the masks are not consistent STFTs, so the round trip blurs them a little
    assert (d - expected)[loud].abs().median() < 0.03  # shuffled in time: about 0.2
    three = torch.zeros(1, 3, 2, 2)
    three[0, 1] = 1.0
    assert torch.equal(dominance(three), torch.ones(1, 2, 2))
    assert torch.equal(dominance(torch.ones(1, 3, 2, 2)), torch.zeros(1, 2, 2))
    assert torch.equal(dominance(torch.zeros(1, 2, 2, 2)), torch.zeros(1, 2, 2))


def test_confidence_weights_drop_uncertain_bins_from_the_dc_loss():
    mag = torch.rand(1, 5, 7) + 0.1
    src = torch.stack([mag * 0.5, mag * 0.5], dim=1)            # teacher unsure everywhere ...
    src[:, 0, :2] = mag[:, :2]                                   # ... except in frames 0-1
    src[:, 1, :2] = 0.0
    w = confidence_weights(mag, src)
    assert torch.allclose(w[:, :2], magnitude_weights(mag)[:, :2])
    assert torch.equal(w[:, 2:], torch.zeros_like(w[:, 2:]))
    # a wrong embedding in the uncertain frames costs nothing with these weights
    y = torch.zeros(1, 2, 5, 7)
    y[:, 0] = 1.0
    emb = torch.zeros(1, 5, 7, 2)
    emb[:, :2, :, 0] = 1.0
    emb[:, 2:, :, 1] = 1.0
    assert float(deep_clustering_loss(emb, y, w)) < 1e-6
    assert float(deep_clustering_loss(emb, y, magnitude_weights(mag))) > 0.1


def test_make_targets_uses_confidence_weights_only_when_asked():
    from bootsep.engine.trainer import make_targets

    g = torch.Generator().manual_seed(1)
    stft = STFT(256, 64)
    sources = torch.randn(2, 2, 4000, generator=g)
    sources[:, 1] *= torch.linspace(0, 1, 4000)                # uneven dominance over time
    mix = sources.sum(1)
    plain = make_targets(stft, mix, sources)
    weighted = make_targets(stft, mix, sources, confidence_power=2.0)
    X = stft(mix).abs()
    S = stft(sources).abs()
    assert torch.allclose(plain["weights"], magnitude_weights(X))
    assert torch.allclose(weighted["weights"], magnitude_weights(X) * dominance(S) ** 2)
    assert not torch.allclose(weighted["weights"], plain["weights"])


def test_weighted_mask_losses_match_brute_force_and_pit():
    import itertools

    from bootsep.losses.combine import LossDict
    from bootsep.losses.spectral import l1_loss, mse_loss, pairwise_l1_loss

    g = torch.Generator().manual_seed(0)
    est = torch.rand(2, 3, 4, 5, generator=g)
    ref = torch.rand(2, 3, 4, 5, generator=g)
    w = torch.rand(2, 4, 5, generator=g)
    for fn, p in ((l1_loss, 1), (mse_loss, 2)):  # brute force, bin by bin
        for b in range(2):
            num = sum(float(w[b, t, f]) * abs(float(est[b, s, t, f] - ref[b, s, t, f])) ** p
                      for s in range(3) for t in range(4) for f in range(5))
            den = 3 * float(w[b].sum())
            assert float(fn(est, ref, weights=w)[b]) == pytest.approx(num / den, rel=1e-5)
        # unit weights: the plain mean
        torch.testing.assert_close(fn(est, ref, weights=torch.ones_like(w)), fn(est, ref))
    # the pairwise matrix averaged over a permutation is the weighted loss of the permuted estimates
    pw = pairwise_l1_loss(est, ref, weights=w)
    for perm in itertools.permutations(range(3)):
        diag = torch.stack([pw[:, perm[j], j] for j in range(3)], dim=1).mean(dim=1)
        torch.testing.assert_close(diag, l1_loss(est[:, list(perm)], ref, weights=w))
    # LossDict: weights only when the spec maps them, PIT = the best permutation
    targets = {"source_magnitudes": ref, "confidence": w}
    out = {"estimates": est[:, [2, 0, 1]]}
    plain = LossDict({"m": {"class": "L1Loss", "pit": True}})(out, targets)
    weighted = LossDict({"m": {"class": "L1Loss", "pit": True,
                               "keys": {"weights": "confidence"}}})(out, targets)
    per_perm = torch.stack([l1_loss(est[:, [2, 0, 1]][:, list(p)], ref, weights=w)
                            for p in itertools.permutations(range(3))])  # (perms, batch)
    best = float(per_perm.amin(dim=0).mean())  # the best permutation of each example
    assert float(weighted["loss"]) == pytest.approx(best, rel=1e-5)
    assert float(plain["loss"]) != pytest.approx(float(weighted["loss"]), rel=1e-3)
    with pytest.raises(KeyError, match="confidence"):  # mapped but not there: no silent fallback
        LossDict({"m": {"class": "L1Loss", "keys": {"weights": "confidence"}}})(
            out, {"source_magnitudes": ref})


def test_make_targets_confidence_only_with_a_power():
    from bootsep.dsp.stft import STFT
    from bootsep.engine.trainer import make_targets
    from bootsep.losses.targets import dominance

    stft = STFT(window_length=64, hop_length=16)
    g = torch.Generator().manual_seed(1)
    sources = torch.randn(2, 2, 800, generator=g)
    mix = sources.sum(dim=1)
    assert "confidence" not in make_targets(stft, mix, sources)
    t = make_targets(stft, mix, sources, confidence_power=2.0)
    torch.testing.assert_close(t["confidence"], dominance(stft(sources).abs()) ** 2)
