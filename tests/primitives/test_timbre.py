"""Timbre clustering: NMF, DCT, and separation of a dark low instrument from a bright high one."""

import numpy as np
import pytest
import scipy.fft
import torch

from bootsep.primitives.timbre import TimbreClustering, dct_matrix, nmf

from ._signals import SR, normalise, separate_np, si_sdr


def _notes(freqs, note_s, envelope, offset_s, duration_s=6.0):
    """Harmonic notes cycling through ``freqs``; partial amplitude ``envelope(frequency)``."""
    t = np.arange(int(duration_s * SR)) / SR
    out = np.zeros_like(t)
    n = int(note_s * SR)
    seg = t[:n]
    env = np.minimum(1.0, seg / 0.01) * np.exp(-seg / 0.8)
    pos, i = int(offset_s * SR), 0
    while pos < len(t):
        f0 = freqs[i % len(freqs)]
        note = sum(envelope(f0 * k) * np.sin(2 * np.pi * f0 * k * seg)
                   for k in range(1, 40) if f0 * k < 7900)
        m = min(n, len(t) - pos)
        out[pos:pos + m] += (note * env)[:m]
        pos, i = pos + n, i + 1
    return out


@pytest.fixture(scope="module")
def two_timbres():
    low = normalise(_notes([110, 147, 131, 165], 0.5, lambda f: np.exp(-f / 300), 0.0))
    high = normalise(_notes([392, 523, 440], 0.7, lambda f: np.exp(-(((f - 3000) / 800) ** 2)), 0.2))
    return (low + high).astype(np.float32), low, high


def test_separates_two_timbres(two_timbres):
    mix, low, high = two_timbres
    est = separate_np(TimbreClustering(device="cpu"), mix)
    assert si_sdr(mix, low) < 1.0 and si_sdr(mix, high) < 1.0
    # darker group first
    assert si_sdr(est[0], low) > 6.0
    assert si_sdr(est[1], high) > 6.0


def test_dct_matrix_matches_scipy():
    x = np.random.default_rng(0).standard_normal(40)
    ref = scipy.fft.dct(x, type=2, norm="ortho")[:13]
    got = (dct_matrix(13, 40, dtype=torch.float64) @ torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, ref, atol=1e-12)


@pytest.mark.parametrize("beta_loss", ["kl", "frobenius"])
def test_nmf_fits_a_low_rank_matrix(beta_loss):
    g = torch.Generator().manual_seed(0)
    v = torch.rand(2, 30, 3, generator=g, dtype=torch.float64) @ torch.rand(
        2, 3, 50, generator=g, dtype=torch.float64)
    w0, h0 = nmf(v, 3, n_iter=1, beta_loss=beta_loss)
    w, h = nmf(v, 3, n_iter=400, beta_loss=beta_loss)
    err0 = (w0 @ h0 - v).norm() / v.norm()
    err = (w @ h - v).norm() / v.norm()
    assert err < 0.03 < err0
    assert torch.all(w >= 0) and torch.all(h >= 0)
    torch.testing.assert_close(w.norm(dim=1), torch.ones(2, 3, dtype=torch.float64))
    with pytest.raises(ValueError):
        nmf(v, 3, beta_loss="is")


def test_labels_and_validation():
    assert TimbreClustering().source_labels == ["accompaniment", "vocals"]
    assert TimbreClustering(num_sources=3).source_labels == ["source0", "source1", "source2"]
    with pytest.raises(ValueError):
        TimbreClustering(num_sources=3, n_components=2)
    with pytest.raises(ValueError):
        TimbreClustering(num_sources=2, source_labels=("a",))
