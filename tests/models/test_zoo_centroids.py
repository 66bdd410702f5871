"""Conditional-centroid model: Gaussian algebra and unfolded EM against brute-force float64
references, covariance types, the variance floor, attractor variants, soft k-means."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from bootsep.models.centroids import (
    COVARIANCE_TYPES,
    ConditionalCentroids,
    gaussian_log_likelihoods,
    tie_variances,
    weighted_moments,
)

F = 33


def _mag(batch=2, frames=9, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, frames, F, generator=g) ** 2 + 1e-4


def _model(**kw):
    base = dict(num_features=F, num_sources=3, hidden_size=6, num_layers=1, dropout=0.0,
                n_mels=None, embedding_size=4)
    base.update(kw)
    torch.manual_seed(0)
    return ConditionalCentroids(**base).eval()


# --------------------------------------------------------------------------- numpy references
def _np_tie(var, cov_type, counts=None):
    """var (K, E) float64 -> typed variances, written per case."""
    k, e = var.shape
    if cov_type == "diag":
        return var.copy()
    if cov_type == "spherical":
        return np.repeat(var.mean(axis=1, keepdims=True), e, axis=1)
    w = np.full(k, 1.0 / k) if counts is None else counts / counts.sum()
    if cov_type == "tied_diag":
        return np.tile(np.einsum("k,ke->e", w, var), (k, 1))
    return np.full((k, e), float(np.einsum("k,k->", w, var.mean(axis=1))))


def _np_em(x, w, means, var, log_pi, iters, cov_type, floor):
    """Brute-force unfolded EM on one example: x (N, E), w (N,); returns posteriors (N, K) and
    the final parameters."""
    k = means.shape[0]

    def e_step(means, var, log_pi):
        ll = np.stack([multivariate_normal(means[j], np.diag(var[j])).logpdf(x)
                       for j in range(k)], axis=1) + log_pi
        return np.exp(ll - logsumexp(ll, axis=1, keepdims=True))

    post = e_step(means, var, log_pi)
    for _ in range(iters):
        counts = np.array([np.sum(w * post[:, j]) for j in range(k)])
        means = np.stack([np.average(x, axis=0, weights=w * post[:, j]) for j in range(k)])
        raw = np.stack([np.average((x - means[j]) ** 2, axis=0, weights=w * post[:, j])
                        for j in range(k)])
        var = _np_tie(raw, cov_type, counts) + floor + 1e-6
        log_pi = np.log(counts / counts.sum())
        post = e_step(means, var, log_pi)
    return post, means, var, log_pi


# --------------------------------------------------------------------------- building blocks
def test_gaussian_log_likelihoods_match_scipy():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 50, 4, generator=g, dtype=torch.float64) * 2
    mu = torch.randn(2, 3, 4, generator=g, dtype=torch.float64)
    var = torch.rand(2, 3, 4, generator=g, dtype=torch.float64) + 0.1
    ll = gaussian_log_likelihoods(x, mu, var).numpy()
    for b in range(2):
        for k in range(3):
            ref = multivariate_normal(mu[b, k].numpy(), np.diag(var[b, k].numpy())).logpdf(
                x[b].numpy())
            np.testing.assert_allclose(ll[b, :, k], ref, rtol=1e-10, atol=1e-9)


def test_weighted_moments_match_loops():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(1, 40, 3))
    resp = rng.dirichlet(np.ones(4), size=40)[None]
    w = rng.uniform(size=(1, 40))
    counts, means, var = weighted_moments(torch.from_numpy(x), torch.from_numpy(resp),
                                          torch.from_numpy(w))
    for k in range(4):
        wk = w[0] * resp[0, :, k]
        assert np.isclose(counts[0, k].item(), wk.sum())
        m = (wk[:, None] * x[0]).sum(0) / wk.sum()
        v = (wk[:, None] * (x[0] - m) ** 2).sum(0) / wk.sum()
        np.testing.assert_allclose(means[0, k].numpy(), m, rtol=1e-10)
        np.testing.assert_allclose(var[0, k].numpy(), v, rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("cov_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("weighted", [False, True])
def test_tie_variances_match_reference(cov_type, weighted):
    rng = np.random.default_rng(2)
    var = rng.uniform(0.1, 2.0, size=(5, 3))
    counts = rng.uniform(0.5, 3.0, size=5) if weighted else None
    got = tie_variances(torch.from_numpy(var)[None], cov_type,
                        None if counts is None else torch.from_numpy(counts)[None])[0].numpy()
    np.testing.assert_allclose(got, _np_tie(var, cov_type, counts), rtol=1e-12)
    with pytest.raises(ValueError, match="covariance_type"):
        tie_variances(torch.from_numpy(var)[None], "full")


# --------------------------------------------------------------------------- the model
def _trunk_and_embedding(model, mag):
    feats = model.input_features(mag)
    h = model.trunk(mag, feats)
    return feats, h, model.embedding_head(h)


@pytest.mark.parametrize("cov_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("iters,gaussians", [(0, 1), (0, 2), (2, 1), (3, 2)])
def test_masks_equal_brute_force_em(cov_type, iters, gaussians):
    model = _model(covariance_type=cov_type, num_em_iterations=iters, num_gaussians=gaussians,
                   weight_threshold=0.2 if iters == 3 else None, covariance_min=0.05)
    with torch.no_grad():  # spread the embedding and means so that the soft counts differ
        model.embedding_head.linear.weight.mul_(4.0)
        model.attractor_function.weight.mul_(3.0)
    mag = _mag()
    with torch.no_grad():
        out = model(mag)
        feats, h, emb = _trunk_and_embedding(model, mag)
        init = model.initial_parameters(h)
    torch.testing.assert_close(out["embedding"], emb)
    n, k = 3, 3 * gaussians
    for b in range(2):
        x = emb[b].reshape(-1, 4).double().numpy()
        f = feats[b].flatten().double().numpy()
        w = (f - f.min()) / (f.max() - f.min())
        if iters == 3:
            w = np.where(w >= 0.2, w, 0.0)
        post, means, var, log_pi = _np_em(
            x, w, init["means"][b].double().numpy(), init["variances"][b].double().numpy(),
            init["log_priors"][b].double().numpy(), iters, cov_type, 0.05)
        ref_mask = post.reshape(9, F, n, gaussians).sum(-1).transpose(2, 0, 1)
        np.testing.assert_allclose(out["mask"][b].numpy(), ref_mask, atol=2e-4)
        np.testing.assert_allclose(out["means"][b].numpy(), means, atol=2e-4)
        np.testing.assert_allclose(out["variances"][b].numpy(), var, rtol=1e-4)
        np.testing.assert_allclose(out["log_priors"][b].numpy(), log_pi, atol=1e-3)
    assert out["means"].shape == (2, k, 4)
    torch.testing.assert_close(out["mask"].sum(1), torch.ones(2, 9, F))


def test_zero_iterations_are_class_conditioned_posteriors():
    """0 EM iterations: the attractor's parameters are used as they are."""
    model = _model(num_em_iterations=0, covariance_type="diag")
    with torch.no_grad():
        out = model(_mag())
        _, h, _ = _trunk_and_embedding(model, _mag())
        init = model.initial_parameters(h)
    for key in ("means", "variances", "log_priors"):
        torch.testing.assert_close(out[key], init[key])
    # linear attractor: the parameters do not depend on the example
    torch.testing.assert_close(out["means"][0], out["means"][1])


def test_initial_variances_and_floor():
    for cov_type in COVARIANCE_TYPES:
        model = _model(covariance_type=cov_type, covariance_min=0.25)
        with torch.no_grad():
            out = model(_mag())
        # the variance rows of the attractor start at 1 -> variance 1^2 + floor
        torch.testing.assert_close(out["variances"], torch.full_like(out["variances"], 1.25 + 1e-6))
    model = _model(covariance_min=0.3, num_em_iterations=2, covariance_type="diag")
    with torch.no_grad():
        model.attractor_function.weight.mul_(5.0)
        out = model(_mag())
    assert (out["variances"] >= 0.3).all()
    fixed = _model(fixed_variance=True, covariance_min=0.4, num_em_iterations=1)
    with torch.no_grad():
        out = fixed(_mag())
    torch.testing.assert_close(out["variances"], torch.full_like(out["variances"], 0.4 + 1e-6))
    # fixed variance: the attractor only produces means and prior logits
    assert fixed.attractor_function.out_features == 4 + 1
    assert _model().attractor_function.out_features == 2 * 4 + 1


def test_conditional_attractor_reads_time_averaged_trunk():
    model = _model(attractor="conditional")
    assert model.attractor_function.in_features == 3 + model.trunk.output_size
    mag = torch.cat([_mag(batch=1, seed=1), _mag(batch=1, seed=2) * 0.0 + 1e-3])
    with torch.no_grad():
        out = model(mag)
        _, h, _ = _trunk_and_embedding(model, mag)
    assert not torch.allclose(out["means"][0], out["means"][1])
    # brute force: Linear on [one-hot, mean_t h]
    w = model.attractor_function.weight
    inp = torch.cat([torch.eye(3), h[0].mean(0).expand(3, -1)], dim=1)
    raw = (inp @ w.t()).view(3, -1)
    torch.testing.assert_close(out["means"][0], torch.tanh(raw[:, :4]))


def test_soft_kmeans_variant():
    model = _model(clustering="soft_kmeans", kmeans_beta=2.5, num_em_iterations=0)
    assert set(model.output_keys) == {"embedding", "mask", "estimates", "means"}
    with torch.no_grad():
        out = model(_mag())
    torch.testing.assert_close(torch.nn.functional.softplus(model.kmeans_beta),
                               torch.tensor(2.5))
    e = out["embedding"].reshape(2, -1, 4).double()
    d2 = ((e.unsqueeze(2) - out["means"].double().unsqueeze(1)) ** 2).sum(-1)
    ref = torch.softmax(-2.5 * d2, dim=-1).transpose(1, 2).reshape(2, 3, 9, F)
    torch.testing.assert_close(out["mask"].double(), ref, atol=1e-5, rtol=1e-5)
    # one iteration: means become the weighted means of the embedding under the posteriors
    model = _model(clustering="soft_kmeans", num_em_iterations=1)
    mag = _mag()
    with torch.no_grad():
        out = model(mag)
        feats, h, emb = _trunk_and_embedding(model, mag)
        init = model.initial_parameters(h)
    x = emb.reshape(2, -1, 4)
    d2 = ((x.unsqueeze(2) - init["means"].unsqueeze(1)) ** 2).sum(-1)
    post = torch.softmax(-d2, dim=-1)  # beta 1
    w = model.em_weights(feats).unsqueeze(-1) * post
    means = (w.transpose(1, 2) @ x) / w.sum(1).unsqueeze(-1)
    torch.testing.assert_close(out["means"], means, atol=1e-5, rtol=1e-4)


def test_em_weights_minmax_and_threshold():
    model = _model(weight_threshold=0.5)
    feats = torch.tensor([[[0.0, 1.0], [2.0, 4.0]]])
    w = model.em_weights(feats)
    torch.testing.assert_close(w, torch.tensor([[0.0, 0.0, 0.5, 1.0]]))
    torch.testing.assert_close(_model().em_weights(feats), torch.tensor([[0.0, 0.25, 0.5, 1.0]]))


def test_fixed_source_order_for_two_and_four_sources():
    """Masks follow the class vectors: permuting the attractor's class columns permutes masks."""
    for n in (2, 4):
        model = _model(num_sources=n, num_em_iterations=1)
        mag = _mag()
        with torch.no_grad():
            out = model(mag)
            perm = torch.arange(n).flip(0)
            model.attractor_function.weight.copy_(model.attractor_function.weight[:, perm])
            # the one-hot input order is fixed, so swapping the class columns swaps the sources
            out2 = model(mag)
        assert out["mask"].shape[1] == n
        torch.testing.assert_close(out2["mask"], out["mask"][:, perm], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("bad", [dict(attractor="vae"), dict(clustering="kmeans"),
                                 dict(covariance_type="full"), dict(num_em_iterations=-1),
                                 dict(num_gaussians=0), dict(covariance_min=-1.0),
                                 dict(kmeans_beta=0.0), dict(embedding_activation="swish")])
def test_invalid_arguments(bad):
    with pytest.raises(ValueError):
        _model(**bad)
