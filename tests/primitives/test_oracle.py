"""Oracle masks and trivial baselines."""

import numpy as np
import pytest
import torch

from bootsep.primitives.oracle import (
    HighLowPassFilter,
    IdealBinaryMask,
    IdealRatioMask,
    MixAsEstimate,
    WienerFilter,
)

from ._signals import SR, separate_np, si_sdr, spec_of

ORACLES = {
    "ibm": IdealBinaryMask,
    "irm_msa": lambda **kw: IdealRatioMask(mask_type="msa", **kw),
    "irm_psa": lambda **kw: IdealRatioMask(mask_type="psa", **kw),
    "irm_ratio": lambda **kw: IdealRatioMask(mask_type="ratio", **kw),
    "wiener": WienerFilter,
}


@pytest.mark.parametrize("name", sorted(ORACLES))
def test_oracles_are_near_perfect(name, repetition_mix):
    mix, (drums, voice) = repetition_mix
    est = separate_np(ORACLES[name](device="cpu"), mix, [drums, voice])
    assert si_sdr(est[0], drums) > 15.0
    assert si_sdr(est[1], voice) > 15.0


def test_mask_formulas(stft, repetition_mix):
    mix, srcs = repetition_mix
    X = spec_of(stft, mix[:SR])
    S = spec_of(stft, *[s[:SR] for s in srcs])[None]  # (1, 2, time, freq)
    mags = S.abs()
    ibm = IdealBinaryMask().masks(X, S)
    assert torch.equal(ibm[:, 0], (mags[:, 0] >= mags[:, 1]).float())
    ratio = IdealRatioMask(mask_type="ratio").masks(X, S)
    torch.testing.assert_close(ratio[:, 1], mags[:, 1] / (mags[:, 0] + mags[:, 1]))
    wiener = WienerFilter().masks(X, S)
    torch.testing.assert_close(wiener[:, 1], mags[:, 1] ** 2 / (mags ** 2).sum(1))
    msa = IdealRatioMask(mask_type="msa").masks(X, S)
    torch.testing.assert_close(msa, (mags / (X.abs()[:, None] + 1e-8)).clamp(0, 1))
    psa = IdealRatioMask(mask_type="psa").masks(X, S)
    assert torch.all(psa <= msa + 1e-6) and psa.min() >= 0
    for m in (ibm, ratio, wiener, IdealRatioMask(normalize=True).masks(X, S)):
        torch.testing.assert_close(m.sum(1), torch.ones_like(m[:, 0]))
    inf = IdealRatioMask(mask_type="ratio", power=float("inf")).masks(X, S)
    assert torch.equal(inf, ibm)


def test_oracles_need_references(stft, repetition_mix):
    with pytest.raises(ValueError, match="oracle"):
        IdealBinaryMask(device="cpu").separate(torch.as_tensor(repetition_mix[0]))
    X = spec_of(stft, repetition_mix[0][:SR])
    with pytest.raises(ValueError, match="does not match"):
        IdealRatioMask().masks(X, X[:, None, :10])
    with pytest.raises(ValueError):
        IdealRatioMask(mask_type="binary")


def test_mix_as_estimate(repetition_mix):
    mix, (drums, voice) = repetition_mix
    est = separate_np(MixAsEstimate(device="cpu"), mix)
    np.testing.assert_allclose(est, np.stack([mix, mix]), atol=1e-5)
    assert not MixAsEstimate.needs_references


def test_high_low_pass_filter(stft):
    t = np.arange(2 * SR) / SR
    low, high = np.sin(2 * np.pi * 150 * t), np.sin(2 * np.pi * 2000 * t)
    mix = (low + high).astype(np.float32)
    est = separate_np(HighLowPassFilter(cutoff_hz=500, device="cpu"), mix)
    assert si_sdr(est[0], low) > 20 and si_sdr(est[1], high) > 20
    swapped = separate_np(HighLowPassFilter(cutoff_hz=500, low_index=1, device="cpu"), mix)
    assert si_sdr(swapped[1], low) > 20 and si_sdr(swapped[0], high) > 20
    m = HighLowPassFilter(cutoff_hz=500).masks(spec_of(stft, mix))
    assert torch.all(m[:, 0, :, :16] == 1) and torch.all(m[:, 0, :, 16:] == 0)
    with pytest.raises(ValueError):
        HighLowPassFilter(low_index=2)
    with pytest.raises(ValueError):
        HighLowPassFilter(source_labels=("a", "b", "c"))
