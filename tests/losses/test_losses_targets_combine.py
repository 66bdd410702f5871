"""Targets (MSA, PSA, IBM) and the LossDict."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bootsep.dsp import STFT
from bootsep.dsp.features import ideal_binary_mask, magnitude_weights
from bootsep.losses import (
    LossDict,
    LossSpecError,
    deep_clustering_loss,
    ibm,
    l1_loss,
    msa_target,
    mse_loss,
    neg_si_sdr_loss,
    pairwise_l1_loss,
    psa_target,
    whitened_kmeans_loss,
)
from bootsep.losses.pit import PITLossWrapper
from bootsep.utils.errors import UserError


def _specs(seed=0):
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(4000) / 8000
    src = torch.stack([torch.sin(2 * torch.pi * 300 * t),
                       0.5 * torch.randn(4000, generator=g)]).unsqueeze(0)  # (1, 2, S)
    src = torch.cat([src, 0.7 * src.flip(1)])  # (2, 2, S)
    stft = STFT(256, 64)
    return src, stft(src.sum(1)), stft(src)  # audio, mix (B,T,F), sources (B,2,T,F)


def test_msa_and_psa_targets_against_numpy():
    _, mix, srcs = _specs()
    msa = msa_target(mix.abs(), srcs.abs())
    np.testing.assert_allclose(msa.numpy(), np.minimum(np.abs(srcs.numpy()),
                                                       np.abs(mix.numpy())[:, None]), rtol=1e-6)
    psa = psa_target(mix, srcs)
    x, s = mix.numpy()[:, None], srcs.numpy()
    expected = np.clip(np.abs(s) * np.cos(np.angle(s) - np.angle(x)), 0, np.abs(x))
    np.testing.assert_allclose(psa.numpy(), expected, atol=1e-5)
    assert psa.shape == srcs.shape and (psa >= 0).all()
    # a source equal to the mixture gets |X|; an anti-phase source gets 0
    both = torch.stack([mix, -mix], dim=1)
    torch.testing.assert_close(psa_target(mix, both)[:, 0], mix.abs())
    assert torch.all(psa_target(mix, both)[:, 1] == 0)
    assert torch.isfinite(psa_target(torch.zeros_like(mix), srcs)).all()
    with pytest.raises(ValueError):
        msa_target(mix.abs(), srcs.abs()[:, :, :-1])
    torch.testing.assert_close(ibm(srcs.abs(), mix.abs()),
                               ideal_binary_mask(srcs.abs(), mix.abs()))


def _batch(seed=0, d=4):
    audio, mix, srcs = _specs(seed)
    g = torch.Generator().manual_seed(seed)
    b, _, t, f = srcs.shape
    output = {"embedding": torch.randn(b, t, f, d, generator=g, requires_grad=True),
              "estimates": torch.rand(b, 2, t, f, generator=g, requires_grad=True),
              "audio": (audio.flip(1) + 0.1 * torch.randn(audio.shape, generator=g))
              .requires_grad_(True)}
    targets = {"mix_magnitude": mix.abs(), "source_magnitudes": msa_target(mix.abs(), srcs.abs()),
               "assignments": ibm(srcs.abs(), mix.abs()), "weights": magnitude_weights(mix.abs()),
               "source_audio": audio}
    return output, targets


def test_loss_dict_values_total_and_weights():
    output, targets = _batch()
    spec = {"MaskInferenceLoss": {"class": "L1Loss", "weight": 1},
            "WhitenedKMeansLoss": {"weight": 2.0},
            "DeepClusteringLoss": {"weight": 0},
            "pit_mse": {"class": "MSELoss", "pit": True, "weight": 0.5},
            "sisdr": {"class": "SISDRLoss", "pit": True, "weight": 0.1,
                      "kwargs": {"eps": 1e-6}}}
    losses = LossDict(spec)
    out = losses(output, targets)
    assert set(out) == set(spec) | {"loss"}
    emb, a, w = output["embedding"], targets["assignments"], targets["weights"]
    expected = {
        "MaskInferenceLoss": l1_loss(output["estimates"], targets["source_magnitudes"]).mean(),
        "WhitenedKMeansLoss": whitened_kmeans_loss(emb, a, w).mean(),
        "DeepClusteringLoss": deep_clustering_loss(emb, a, w).mean(),
        "pit_mse": torch.minimum(  # PIT over the two orders, per example
            mse_loss(output["estimates"], targets["source_magnitudes"]),
            mse_loss(output["estimates"].flip(1), targets["source_magnitudes"])).mean(),
        "sisdr": neg_si_sdr_loss(output["audio"].flip(1), targets["source_audio"],
                                 eps=1e-6).mean(),
    }
    for k, v in expected.items():
        assert out[k].dim() == 0
        torch.testing.assert_close(out[k], v, rtol=1e-5, atol=1e-6)
    assert not out["DeepClusteringLoss"].requires_grad  # weight 0: monitored only
    total = (expected["MaskInferenceLoss"] + 2 * expected["WhitenedKMeansLoss"]
             + 0.5 * expected["pit_mse"] + 0.1 * expected["sisdr"])
    torch.testing.assert_close(out["loss"], total, rtol=1e-5, atol=1e-6)
    assert losses.permutations["sisdr"].tolist() == [[1, 0], [1, 0]]
    out["loss"].backward()
    assert all(t.grad is not None and torch.isfinite(t.grad).all() for t in output.values())
    # weights is a mutable dict read at every call
    losses.weights["WhitenedKMeansLoss"] = 0.0
    losses.weights["DeepClusteringLoss"] = 3.0
    out2 = losses(output, targets)
    total2 = (expected["MaskInferenceLoss"] + 3 * expected["DeepClusteringLoss"]
              + 0.5 * expected["pit_mse"] + 0.1 * expected["sisdr"])
    torch.testing.assert_close(out2["loss"], total2, rtol=1e-5, atol=1e-6)


def test_loss_dict_pit_and_keys():
    output, targets = _batch(1)
    output["estimates"] = targets["source_magnitudes"].flip(1)
    out = LossDict({"pit": {"class": "L1Loss", "pit": True},
                    "fixed": {"class": "L1Loss", "weight": 0}})(output, targets)
    assert out["pit"].item() == 0 and out["fixed"].item() > 0
    pw = PITLossWrapper(pairwise_l1_loss)(output["estimates"], targets["source_magnitudes"])
    assert pw[0].mean().item() == 0
    output["mask"] = output.pop("estimates")
    out = LossDict({"m": {"class": "L1Loss", "keys": {"estimate": "mask"}}})(output, targets)
    assert out["m"].item() > 0
    with pytest.raises(KeyError, match="estimates"):
        LossDict({"L1Loss": {}})(output, targets)
    # DC without weights in targets: uniform weights
    del targets["weights"]
    out = LossDict({"DeepClusteringLoss": {}})(output, targets)
    torch.testing.assert_close(out["DeepClusteringLoss"], deep_clustering_loss(
        output["embedding"], targets["assignments"]).mean())


@pytest.mark.parametrize("spec,match", [
    ({"x": {"class": "L2Loss"}}, "DeepClusteringLoss.*L1Loss.*SISDRLoss"),
    ({"Nope": {}}, "unknown class 'Nope'"),
    ({"DeepClusteringLoss": {"pit": True}}, "pit"),
    ({"L1Loss": {"wieght": 1}}, "unknown fields"),
    ({"L1Loss": {"weight": "heavy"}}, "weight"),
    ({"SISDRLoss": {"kwargs": {"scale": False}}}, "unknown kwargs"),
    ({"L1Loss": {"keys": {"estimates": "mask"}}}, "unknown keys"),
    ({"loss": {"class": "L1Loss"}}, "reserved"),
    ({}, "non-empty"),
])
def test_loss_dict_spec_errors(spec, match):
    with pytest.raises(ValueError, match=match) as info:
        LossDict(spec)
    assert isinstance(info.value, (LossSpecError, UserError))
