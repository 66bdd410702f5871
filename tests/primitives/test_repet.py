"""REPET: beat spectrum, period, repeating model and separation of a drum loop from a glide."""

import numpy as np
import pytest
import torch

from bootsep.primitives.repet import Repet, beat_spectrum, repeating_model

from ._signals import SR, separate_np, si_sdr, spec_of


def test_beat_spectrum_matches_brute_force():
    rng = np.random.default_rng(0)
    mag = rng.random((2, 37, 5))
    p = mag ** 2
    t = p.shape[1]
    ref = np.zeros((2, t))
    for lag in range(t):
        ref[:, lag] = (p[:, lag:] * p[:, :t - lag]).sum(axis=1).mean(axis=-1) / (t - lag)
    ref /= ref[:, :1]
    got = beat_spectrum(torch.from_numpy(mag)).numpy()
    np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-12)


def test_repeating_model_matches_numpy_median():
    rng = np.random.default_rng(1)
    mag = rng.random((23, 6))  # period 4 -> 6 segments, the last one of 3 frames
    period = 4
    got = repeating_model(torch.from_numpy(mag), period).numpy()
    for i in range(23):
        seg = np.sort(mag[i % period::period], axis=0)  # frames with the same phase
        lower_median = seg[(len(seg) - 1) // 2]
        np.testing.assert_allclose(got[i], np.minimum(lower_median, mag[i]))


def test_period_of_drum_loop(stft, repetition_mix, second_mix):
    X = spec_of(stft, repetition_mix[0], second_mix[0])
    periods = Repet().repeating_period(X).tolist()
    assert periods == [125, 150]  # 1.0 s and 1.2 s at hop 128 / 16 kHz


def test_period_range():
    rep = Repet(min_period=0.8, max_period=8.0)
    assert rep.period_range(751) == (100, 250)  # 6 s: capped at duration / 3 = 2 s
    assert rep.period_range(10001) == (100, 1000)  # 80 s: capped at 8 s
    assert rep.period_range(200) == (100, 100)  # too short for 3 repetitions
    assert rep.period_range(50) == (50, 50)


def test_repet_separates_drum_loop_from_glide(repetition_mix):
    mix, (drums, voice) = repetition_mix
    est = separate_np(Repet(device="cpu"), mix)
    assert si_sdr(mix, voice) < 1.0 and si_sdr(mix, drums) < 1.0  # mixture fails
    assert si_sdr(est[1], voice) > 12.0
    assert si_sdr(est[0], drums) > 12.0


def test_fixed_period_and_wrong_period(repetition_mix, stft):
    mix, (drums, voice) = repetition_mix
    good = separate_np(Repet(period=1.0, device="cpu"), mix)
    bad = separate_np(Repet(period=0.83, device="cpu"), mix)
    assert si_sdr(good[1], voice) > si_sdr(bad[1], voice) + 6.0


def test_high_pass_goes_to_background(repetition_mix, stft):
    X = spec_of(stft, repetition_mix[0])
    m = Repet(high_pass_cutoff=300.0).masks(X)
    assert torch.all(m[:, 0, :, :10] == 1.0) and torch.all(m[:, 1, :, :10] == 0.0)


def test_short_input_is_handled(stft):
    x = np.random.default_rng(0).standard_normal(SR // 2).astype(np.float32)
    m = Repet().masks(spec_of(stft, x))
    assert torch.isfinite(m).all() and torch.allclose(m.sum(1), torch.ones(1))


def test_invalid_arguments():
    with pytest.raises(ValueError):
        Repet(min_period=0)
    with pytest.raises(ValueError):
        Repet(period=-1.0)
    with pytest.raises(ValueError):
        Repet(mask_type="hard")
