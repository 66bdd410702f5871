"""Sliding-window filters and mask helpers against scipy / numpy / librosa references."""

import librosa
import numpy as np
import pytest
import scipy.ndimage as ndi
import torch

from bootsep.dsp import STFT
from bootsep.primitives._filters import (
    background_foreground,
    high_pass_bins,
    masked_lower_median,
    max_filter_1d,
    mean_filter_1d,
    median_filter_1d,
    pad_indices,
    ratio_mask,
    sliding_max,
    soft_ratio,
)


@pytest.mark.parametrize("mode,np_mode", [("reflect", "symmetric"), ("wrap", "wrap"), ("edge", "edge")])
@pytest.mark.parametrize("n,before,after", [(7, 3, 2), (5, 0, 4), (3, 8, 9)])
def test_pad_indices_match_numpy_pad(mode, np_mode, n, before, after):
    ref = np.pad(np.arange(n), (before, after), mode=np_mode)
    got = pad_indices(n, before, after, mode).numpy()
    np.testing.assert_array_equal(got, ref)


def _median_ref(x: np.ndarray, size: int, axis: int) -> np.ndarray:
    """Brute force: symmetric padding + lower median of every window."""
    pad = [(0, 0)] * x.ndim
    pad[axis] = (size // 2, size - 1 - size // 2)
    win = np.lib.stride_tricks.sliding_window_view(np.pad(x, pad, mode="symmetric"), size, axis)
    return np.sort(win, axis=-1)[..., (size - 1) // 2]


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 17, 31, 33, 64, 65, 101])
@pytest.mark.parametrize("dim", [0, 1, 2])
def test_median_filter_matches_brute_force(size, dim):
    rng = np.random.default_rng(size + dim)
    x = rng.random((2, 40, 11)).astype(np.float32)  # axes shorter than the window: multi-reflection
    got = median_filter_1d(torch.from_numpy(x), size, dim=dim, chunk_elements=257).numpy()
    np.testing.assert_array_equal(got, _median_ref(x, size, dim))


def test_median_filter_matches_scipy():
    x = np.random.default_rng(1).random((3, 80, 60)).astype(np.float32)
    for dim in (1, 2):
        footprint = [1, 1, 1]
        footprint[dim] = 31
        ref = ndi.median_filter(x, size=footprint, mode="reflect")
        np.testing.assert_array_equal(median_filter_1d(torch.from_numpy(x), 31, dim).numpy(), ref)


@pytest.mark.parametrize("size", [2, 4, 35])
def test_max_and_mean_filters_match_scipy_wrap(size):
    rng = np.random.default_rng(size)
    x = rng.random((3, 50, 9)).astype(np.float64)
    t = torch.from_numpy(x)
    np.testing.assert_allclose(max_filter_1d(t, size, dim=1).numpy(),
                               ndi.maximum_filter1d(x, size, axis=1, mode="wrap"))
    np.testing.assert_allclose(mean_filter_1d(t, size, dim=1).numpy(),
                               ndi.uniform_filter1d(x, size, axis=1, mode="wrap"), atol=1e-12)
    np.testing.assert_allclose(max_filter_1d(t, 3, dim=-1).numpy(),
                               ndi.maximum_filter1d(x, 3, axis=-1, mode="wrap"))


@pytest.mark.parametrize("power", [1.0, 2.0, 0.5, float("inf")])
def test_soft_ratio_matches_librosa_softmask(power):
    rng = np.random.default_rng(0)
    a = rng.random((20, 30)).astype(np.float32)
    b = rng.random((20, 30)).astype(np.float32)
    ref = librosa.util.softmask(a, b, power=power).astype(np.float32)
    got = soft_ratio(torch.from_numpy(a), torch.from_numpy(b), power).numpy()
    np.testing.assert_allclose(got, ref, atol=1e-6)
    zero = soft_ratio(torch.zeros(3), torch.zeros(3), power)
    assert torch.equal(zero, torch.full((3,), 0.5))


def test_ratio_mask_powers():
    mix = torch.tensor([1.0, 2.0, 4.0, 0.0])
    model = torch.tensor([0.25, 1.0, 3.0, 0.0])
    r1 = ratio_mask(model, mix, 1.0)
    assert torch.allclose(r1, torch.tensor([0.25, 0.5, 0.75, 1.0]), atol=1e-6)
    r2 = ratio_mask(model, mix, 2.0)  # r^2 / (r^2 + (1-r)^2)
    assert torch.allclose(r2[:3], torch.tensor([0.1, 0.5, 0.9]), atol=1e-6)
    assert torch.equal(ratio_mask(model, mix, float("inf")), torch.tensor([0.0, 1.0, 1.0, 1.0]))


def test_background_foreground_high_pass_and_binary():
    bg = torch.full((2, 4, 9), 0.3)
    m = background_foreground(bg, hp_bins=2)
    assert m.shape == (2, 2, 4, 9)
    assert torch.all(m[:, 0, :, :2] == 1) and torch.all(m[:, 1, :, :2] == 0)
    assert torch.allclose(m.sum(1), torch.ones(2, 4, 9))
    mb = background_foreground(bg, mask_type="binary")
    assert torch.all(mb[:, 0] == 0) and torch.all(mb[:, 1] == 1)
    with pytest.raises(ValueError):
        background_foreground(bg, mask_type="hard")


def test_high_pass_bins():
    stft = STFT(512, 128)
    assert high_pass_bins(stft, 16000, 100) == 4  # 0, 31.25, 62.5, 93.75 Hz
    assert high_pass_bins(stft, 16000, 0) == 0
    assert high_pass_bins(stft, 16000, 250) == 8


@pytest.mark.parametrize("n,size", [(10, 1), (10, 3), (10, 10), (37, 5), (100, 249 // 10)])
def test_sliding_max_matches_brute_force(n, size):
    x = torch.from_numpy(np.random.default_rng(n + size).standard_normal((3, n)))
    ref = np.stack([x.numpy()[:, i:i + size].max(axis=1) for i in range(n - size + 1)], axis=1)
    np.testing.assert_array_equal(sliding_max(x, size).numpy(), ref)
    with pytest.raises(ValueError):
        sliding_max(x, n + 1)


@pytest.mark.parametrize("k", [1, 2, 7, 30, 31, 64, 70])
def test_masked_lower_median_matches_numpy(k):
    rng = np.random.default_rng(k)
    values = rng.standard_normal((4, k, 5))
    count = rng.integers(1, k + 1, size=(4, 1))
    count[0, 0] = k
    got = masked_lower_median(torch.from_numpy(values), torch.from_numpy(count), dim=1).numpy()
    for i in range(4):
        c = count[i, 0]
        ref = np.sort(values[i, :c], axis=0)[(c - 1) // 2]
        np.testing.assert_array_equal(got[i], ref)
