"""Confidence measures: loud-bin selection, exact values on toy data, blobs, seeds, degenerates."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from bootsep.primitives import confidence as C

SINGLE = {
    "silhouette": C.silhouette_confidence,
    "posterior": C.posterior_confidence,
    "combined": C.combined_confidence,
    # fixed centres at the two-blob positions (a one-blob mixture sits between them)
    "fixed_posterior": lambda f, m, **kw: C.fixed_posterior_confidence(
        f, m, centers=[[3.0, 0.0, 0.0], [0.0, 3.0, 0.0]],
        **{k: v for k, v in kw.items() if k not in ("seed", "max_points")}),
    "jensen_shannon": C.jensen_shannon_confidence,
    "loudness": C.loudness_confidence,
    "whitened_kmeans": C.whitened_kmeans_confidence,
    "dpcl_classic": C.dpcl_classic_confidence,
}


def blobs(centres, n_per=600, sigma=0.25, seed=0, shape=(40, 60)):
    """Features ``(T, F, D)`` drawn from Gaussian blobs, and a random mix magnitude ``(T, F)``."""
    rng = np.random.default_rng(seed)
    centres = np.asarray(centres, dtype=float)
    T, F = shape
    lab = rng.integers(0, len(centres), size=T * F)
    x = centres[lab] + sigma * rng.standard_normal((T * F, centres.shape[1]))
    return x.reshape(T, F, -1), rng.uniform(0.0, 1.0, size=(T, F))


TWO = [[3.0, 0.0, 0.0], [0.0, 3.0, 0.0]]
ONE = [[1.5, 1.5, 0.0]]


def test_select_loud_bins_matches_brute_force():
    rng = np.random.default_rng(1)
    mag = rng.uniform(size=(2, 20, 30))
    idx = np.arange(mag.size).reshape(mag.shape)
    feats = np.stack([idx, -idx], axis=-1).astype(float)  # feature encodes the bin
    for q in (50.0, 90.0, 99.0):
        got = C.select_loud_bins(feats, mag, q)
        thr = np.sort(mag.ravel())[int(np.ceil(q / 100 * (mag.size - 1)))]  # >= percentile
        want = sorted(int(i) for i, m in zip(idx.ravel(), mag.ravel()) if m >= thr)
        assert sorted(got[:, 0].astype(int).tolist()) == want
        assert np.all(got[:, 1] == -got[:, 0])
    # unbatched and torch input give the same as the numpy batch of one
    a = C.select_loud_bins(torch.tensor(feats[0]), torch.tensor(mag[0]), 90.0)
    b = C.select_loud_bins(feats[:1], mag[:1], 90.0)
    np.testing.assert_array_equal(a, b)
    # min_frequency_bin drops low bins before the percentile
    low = C.select_loud_bins(feats, mag, 0.0, min_frequency_bin=10)
    assert low.shape[0] == 2 * 20 * 20 and np.all(idx.ravel()[low[:, 0].astype(int)] % 30 >= 10)
    with pytest.raises(ValueError):
        C.select_loud_bins(feats, mag[:, :, :5], 90.0)


def test_exact_values_on_two_repeated_points():
    """Two distinct feature vectors, 30 % / 70 %: closed-form values of every measure."""
    T, F, L = 10, 10, 2.0
    feats = np.zeros((T, F, 3))
    feats[..., 0] = L
    feats[:3, :, 0] = 0.0
    feats[:3, :, 1] = L  # 30 bins at (0, L, 0), 70 at (L, 0, 0): orthogonal, distance L*sqrt(2)
    mag = np.ones((T, F))
    kw = dict(threshold_percentile=0.0)
    d = L * math.sqrt(2.0)
    assert C.silhouette_confidence(feats, mag, **kw) == pytest.approx(1.0)
    assert C.posterior_confidence(feats, mag, **kw) == pytest.approx(math.tanh(d / 2), abs=1e-9)
    assert C.posterior_confidence(feats, mag, beta=3.0, **kw) == pytest.approx(
        math.tanh(3 * d / 2), abs=1e-9)
    assert C.loudness_confidence(feats, mag, **kw) == pytest.approx(0.6)
    assert C.whitened_kmeans_confidence(feats, mag, **kw) == pytest.approx(1 - (3 - 2) / (3 + 2))
    assert C.dpcl_classic_confidence(feats, mag, **kw) == pytest.approx(1.0)
    assert C.jensen_shannon_confidence(feats, mag, **kw) > 0.9  # disjoint modes ~ 1 bit
    # fixed centres at the two points themselves: distance d between them, beta 2.5
    cen = np.array([[0.0, L, 0.0], [L, 0.0, 0.0]])
    assert C.fixed_posterior_confidence(feats, mag, centers=cen, **kw) == pytest.approx(
        math.tanh(2.5 * d / 2), abs=1e-9)


def test_fixed_posterior_on_mask_like_features():
    """Ensemble-like features: decisive masks near 0/1 beat undecided masks near 0.5."""
    rng = np.random.default_rng(4)
    dec = (rng.uniform(size=(30, 40, 1)) < 0.4) + 0.05 * rng.standard_normal((30, 40, 7))
    und = 0.5 + 0.05 * rng.standard_normal((30, 40, 7))
    mag = rng.uniform(size=(30, 40))
    hi = C.fixed_posterior_confidence(dec, mag, threshold_percentile=50.0)
    lo = C.fixed_posterior_confidence(und, mag, threshold_percentile=50.0)
    assert hi > 0.9 and lo < 0.2
    assert C.compute_confidences(dec, mag, measures=("fixed_posterior",),
                                 threshold_percentile=50.0)["fixed_posterior"] == hi
    with pytest.raises(ValueError):
        C.fixed_posterior_confidence(dec, mag, centers=np.zeros((2, 3)))


def skewed_blob(seed=0, shape=(40, 60)):
    """One source: a single blob with a one-sided (exponential) tail."""
    rng = np.random.default_rng(seed)
    x = np.array([1.5, 1.5, 0.0]) + rng.exponential(0.5, size=(shape[0] * shape[1], 3))
    return x.reshape(*shape, 3), rng.uniform(0.0, 1.0, size=shape)


@pytest.mark.parametrize("one_kind", ["isotropic", "skewed"])
@pytest.mark.parametrize("name", list(SINGLE))
def test_separated_blobs_beat_one_blob(name, one_kind):
    if name == "loudness" and one_kind == "isotropic":
        pytest.skip("by definition: KMeans halves a symmetric blob, so its share is balanced too")
    f2, m2 = blobs(TWO)
    f1, m1 = blobs(ONE) if one_kind == "isotropic" else skewed_blob()
    fn = SINGLE[name]
    two = fn(f2, m2, threshold_percentile=70.0)
    one = fn(f1, m1, threshold_percentile=70.0)
    assert np.isfinite(two) and np.isfinite(one)
    assert two > one + 0.05, (name, two, one)


def test_seed_determinism_and_compute_confidences_agree():
    f, m = blobs(TWO, sigma=0.8, seed=3)
    kw = dict(threshold_percentile=80.0, seed=7)
    a = C.compute_confidences(f, m, measures=C.MEASURES, **kw)
    b = C.compute_confidences(f, m, measures=C.MEASURES, **kw)
    assert a == b and list(a) == list(C.MEASURES)
    for name, fn in SINGLE.items():
        if name != "fixed_posterior":  # SINGLE passes its own centres
            assert fn(f, m, **kw) == pytest.approx(a[name], abs=1e-12), name
    # silhouette uses a seeded subsample: another seed is another (close) estimate
    s8 = C.silhouette_confidence(f, m, max_points=200, **{**kw, "seed": 8})
    s7 = C.silhouette_confidence(f, m, max_points=200, **kw)
    assert s7 != s8 and abs(s7 - s8) < 0.1
    with pytest.raises(ValueError):
        C.compute_confidences(f, m, measures=("nope",))


def test_combined_is_silhouette_times_posterior():
    f, m = blobs(TWO, sigma=0.6, seed=5)
    kw = dict(threshold_percentile=90.0, seed=2, max_points=300)
    comb = C.combined_confidence(f, m, **kw)
    sil = C.silhouette_confidence(f, m, **kw)
    post = C.posterior_confidence(f, m, threshold_percentile=90.0, seed=2)
    assert comb == pytest.approx(sil * post, rel=1e-12)
    assert 0 < comb < 1


def test_degenerate_features_give_zero_not_crash():
    feats = np.full((20, 30, 4), 0.5)
    mag = np.random.default_rng(0).uniform(size=(20, 30))
    out = C.compute_confidences(feats, mag, measures=C.MEASURES, threshold_percentile=90.0)
    assert out == {m: 0.0 for m in C.MEASURES}


def test_too_few_loud_bins_give_nan():
    feats = np.random.default_rng(0).standard_normal((10, 10, 3))
    mag = np.zeros((10, 10))
    mag[4, 4] = 1.0  # only one bin reaches the 99.9th percentile
    out = C.compute_confidences(feats, mag, measures=C.MEASURES, threshold_percentile=99.9)
    assert all(math.isnan(v) for v in out.values())
    for fn in SINGLE.values():
        assert math.isnan(fn(feats, mag, threshold_percentile=99.9))


def test_batched_torch_features_from_a_separator_layout():
    f, m = blobs(TWO, shape=(20, 30))
    fb = torch.tensor(np.stack([f, f]), dtype=torch.float32)
    mb = torch.tensor(np.stack([m, m]), dtype=torch.float32)
    out = C.compute_confidences(fb, mb, threshold_percentile=80.0)
    assert out["silhouette"] > 0.7 and out["posterior"] > 0.8
