"""2DFT-R / 2DFT-M: peak picking against scipy, R/M sharing, quadrants, separation."""

import numpy as np
import pytest
import scipy.ndimage as ndi
import torch

from bootsep.primitives.ft2d import FT2D, mirror, quadrant_mask

from ._signals import separate_np, si_sdr, spec_of


def _reference_peaks(mag: np.ndarray, size_ft: tuple) -> np.ndarray:
    """numpy/scipy local_std peaks of |fft2(mag)| ``(time, freq)``, mirrored by index loops."""
    data = np.abs(np.fft.fft2(mag))
    data = data / (data.max() + 1e-7)
    size = (size_ft[1], size_ft[0])  # (time, freq) axes
    dmax = ndi.maximum_filter(data, size, mode="wrap")
    mean = ndi.uniform_filter(data, size, mode="wrap")
    sq = ndi.uniform_filter(data ** 2, size, mode="wrap")
    std = np.sqrt(np.maximum(sq - mean ** 2, 0)) + 1e-7
    m = (dmax - mean) / std * (data == dmax)
    m = m / (m.max() + 1e-7)
    t, f = m.shape
    out = np.empty_like(m)
    for i in range(t):
        for j in range(f):
            out[i, j] = max(m[i, j], m[-i % t, j], m[i, -j % f], m[-i % t, -j % f])
    return out


@pytest.mark.parametrize("size", [(1, 35), (3, 5)])
def test_peaks_match_scipy_reference(size):
    rng = np.random.default_rng(0)
    loop = rng.random((10, 12))
    mag = np.tile(loop, (6, 1))[:57] + 0.2 * rng.random((57, 12))
    sep = FT2D(neighborhood_size=size)
    got = sep.peaks(torch.fft.fft2(torch.from_numpy(mag)).abs()[None])[0].numpy()
    np.testing.assert_allclose(got, _reference_peaks(mag, size), atol=1e-9)


def test_mirror_is_conjugate_symmetric():
    m = torch.rand(1, 9, 6)
    s = mirror(m)
    idx_t = (-torch.arange(9)) % 9
    idx_f = (-torch.arange(6)) % 6
    assert torch.equal(s, s[:, idx_t][:, :, idx_f])
    assert torch.equal(s, s[:, idx_t])
    assert torch.all(s >= m)


def test_quadrants_partition_the_plane():
    total = sum(quadrant_mask((8, 7), (q,)).int() for q in range(4))
    assert torch.equal(total, torch.ones(8, 7, dtype=torch.int32))
    with pytest.raises(ValueError):
        FT2D(quadrants_to_keep=(4,))


def test_both_masks_equal_the_single_variants(stft, repetition_mix):
    X = spec_of(stft, repetition_mix[0][:48000])
    r, m = FT2D().both_masks(X)
    torch.testing.assert_close(r, FT2D(use_bg_2dft=True).masks(X), atol=0, rtol=0)
    torch.testing.assert_close(m, FT2D(use_bg_2dft=False).masks(X), atol=1e-6, rtol=0)
    assert not torch.allclose(r, m)
    # with a quadrant subset the M part needs its own inverse FFT; both paths still agree
    rq, mq = FT2D(quadrants_to_keep=(0, 2)).both_masks(X)
    torch.testing.assert_close(mq, FT2D(quadrants_to_keep=(0, 2), use_bg_2dft=False).masks(X))
    assert not torch.allclose(rq, r)


def test_mask_definition(stft, repetition_mix):
    """R background mask = min(|ifft2(peaks * FFT2)|, |X|) / |X| normalised to max 1."""
    X = spec_of(stft, repetition_mix[0][:32000])
    sep = FT2D(high_pass_cutoff=0.0)
    mag = X.to(torch.complex128).abs()
    spec2d = torch.fft.fft2(mag)
    est = torch.fft.ifft2(spec2d * sep.peaks(spec2d.abs())).abs()
    ref = torch.minimum(est, mag + 1e-7) / (mag + 1e-7)
    ref = ref / (ref + 1e-7).max()
    got = sep.masks(X.to(torch.complex128))[:, 0]
    torch.testing.assert_close(got, ref, atol=1e-9, rtol=0)


@pytest.mark.parametrize("use_bg", [True, False])
def test_ft2d_separates_drum_loop_from_glide(repetition_mix, use_bg):
    mix, (drums, voice) = repetition_mix
    est = separate_np(FT2D(use_bg_2dft=use_bg, device="cpu"), mix)
    assert si_sdr(mix, voice) < 1.0
    assert si_sdr(est[1], voice) > 5.0
    assert si_sdr(est[0], drums) > 4.0


def test_high_pass_bins_are_background(stft, repetition_mix):
    X = spec_of(stft, repetition_mix[0][:32000])
    for use_bg in (True, False):
        m = FT2D(use_bg_2dft=use_bg, high_pass_cutoff=250.0).masks(X)
        assert torch.all(m[:, 0, :, :8] == 1.0)
        assert not torch.all(m[:, 0, :, 8:] == 1.0)


def test_binary_and_original(stft, repetition_mix):
    X = spec_of(stft, repetition_mix[0][:32000])
    mb = FT2D(mask_type="binary").masks(X)
    assert set(mb.unique().tolist()) == {0.0, 1.0}
    p = FT2D(filter_approach="original").peaks(torch.fft.fft2(X.abs()).abs())
    assert set(p.unique().tolist()) == {0.0, 1.0}


def test_invalid_arguments():
    with pytest.raises(ValueError):
        FT2D(neighborhood_size=(0, 3))
    with pytest.raises(ValueError):
        FT2D(filter_approach="median")
