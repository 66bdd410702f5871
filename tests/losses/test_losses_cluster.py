"""Deep-clustering and whitened k-means losses against explicit TF x TF / matrix formulas."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch

from bootsep.losses import deep_clustering_loss, whitened_kmeans_loss

SHAPES = [(1, 3, 4, 2, 2), (2, 5, 3, 4, 2), (3, 4, 6, 3, 3), (2, 2, 7, 6, 4)]  # B, T, F, D, C


def _inputs(shape, weighted: bool, seed: int):
    b, t, f, d, c = shape
    g = torch.Generator().manual_seed(seed)
    emb = torch.randn(b, t, f, d, generator=g, dtype=torch.float64)
    emb[0, 0, 0] = 0.0  # an all-zero embedding row
    labels = torch.randint(0, c, (b, t, f), generator=g)
    assign = torch.nn.functional.one_hot(labels, c).permute(0, 3, 1, 2).to(torch.float64)
    assign[:, :, 0, :2] = 0.0  # silent bins: all-zero assignment rows
    assign[-1, :, -1, -1] = 1.0  # a bin shared by every source (row is normalised)
    weights = torch.rand(b, t, f, generator=g, dtype=torch.float64) if weighted else None
    return emb, assign, weights


def _rows_np(emb, assign, weights):
    b, t, f, d = emb.shape
    v = emb.numpy().reshape(b, t * f, d)
    y = assign.numpy().transpose(0, 2, 3, 1).reshape(b, t * f, -1)
    w = np.ones((b, t * f)) if weights is None else weights.numpy().reshape(b, t * f)
    nv = np.linalg.norm(v, axis=-1, keepdims=True)
    ny = np.linalg.norm(y, axis=-1, keepdims=True)
    v = np.where(nv > 0, v / np.where(nv > 0, nv, 1), 0)
    y = np.where(ny > 0, y / np.where(ny > 0, ny, 1), 0)
    return v, y, w


def _dc_brute(emb, assign, weights):
    """Explicit (TF x TF) affinity matrices: ||W (VVᵀ - YYᵀ) W||² / (Σw²)²."""
    v, y, w = _rows_np(emb, assign, weights)
    out = []
    for vb, yb, wb in zip(v, y, w):
        diff = vb @ vb.T - yb @ yb.T
        weighted = diff * np.outer(wb, wb) ** 2  # each pair counts with w_i² w_j²
        out.append(np.sum(diff * weighted) / np.sum(wb ** 2) ** 2)
    return np.array(out)


def _wkm_brute(emb, assign, weights):
    """(D + C) - 2||Aᵀ B||²_F, A = V(VᵀV+I)^-1/2, B = Y(YᵀY+I)^-1/2 (matrix square roots)."""
    v, y, w = _rows_np(emb, assign, weights)
    out = []
    for vb, yb, wb in zip(v, y, w):
        vb, yb = vb * wb[:, None], yb * wb[:, None]
        d, c = vb.shape[1], yb.shape[1]
        a = vb @ np.linalg.inv(scipy.linalg.sqrtm(vb.T @ vb + np.eye(d)).real)
        bm = yb @ np.linalg.inv(scipy.linalg.sqrtm(yb.T @ yb + np.eye(c)).real)
        out.append(d + c - 2 * np.sum((a.T @ bm) ** 2))
    return np.array(out)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("weighted", [False, True])
def test_deep_clustering_matches_explicit_affinities(shape, weighted):
    emb, assign, weights = _inputs(shape, weighted, seed=sum(shape) + weighted)
    got = deep_clustering_loss(emb, assign, weights)
    assert got.shape == (shape[0],)
    np.testing.assert_allclose(got.numpy(), _dc_brute(emb, assign, weights), rtol=1e-10)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("weighted", [False, True])
def test_whitened_kmeans_matches_explicit_formula(shape, weighted):
    emb, assign, weights = _inputs(shape, weighted, seed=100 + sum(shape) + weighted)
    got = whitened_kmeans_loss(emb, assign, weights)
    assert got.shape == (shape[0],)
    np.testing.assert_allclose(got.numpy(), _wkm_brute(emb, assign, weights), rtol=1e-8)
    # and the literal trace formula with explicit inverses
    v, y, w = _rows_np(emb, assign, weights)
    for i, (vb, yb, wb) in enumerate(zip(v, y, w)):
        vb, yb = vb * wb[:, None], yb * wb[:, None]
        d, c = vb.shape[1], yb.shape[1]
        tr = np.trace(np.linalg.inv(vb.T @ vb + np.eye(d)) @ vb.T @ yb
                      @ np.linalg.inv(yb.T @ yb + np.eye(c)) @ yb.T @ vb)
        assert got[i].item() == pytest.approx(d + c - 2 * tr, rel=1e-9)


def test_perfect_embedding_gives_zero_dc_and_minimal_wkm():
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 3, (2, 20, 30), generator=g)
    onehot = torch.nn.functional.one_hot(labels, 3).double()  # (B, T, F, C)
    assign = onehot.permute(0, 3, 1, 2)
    emb = torch.cat([onehot * 2.5, torch.zeros(2, 20, 30, 2, dtype=torch.float64)], dim=-1)
    weights = torch.rand(2, 20, 30, generator=g, dtype=torch.float64) + 0.5
    dc = deep_clustering_loss(emb, assign, weights)
    torch.testing.assert_close(dc, torch.zeros(2, dtype=torch.float64), atol=1e-12, rtol=0)
    wkm = whitened_kmeans_loss(emb, assign, weights)
    # VᵀV = YᵀY = diag(n_c), n_c = Σ w² over the bins of source c: D + C - 2 Σ (n_c/(n_c+1))²
    n_c = (weights.unsqueeze(1) ** 2 * assign).sum((2, 3))
    torch.testing.assert_close(wkm, 5 + 3 - 2 * (n_c / (n_c + 1)).square().sum(1))
    assert torch.all(wkm < 2.1)
    # invariant to a permutation of the embedding dims; a random embedding is far worse
    torch.testing.assert_close(whitened_kmeans_loss(emb.flip(-1), assign, weights), wkm)
    rand = torch.randn(emb.shape, generator=g, dtype=torch.float64)
    assert torch.all(whitened_kmeans_loss(rand, assign, weights) > 6)
    assert torch.all(deep_clustering_loss(rand, assign, weights) > 0.1)


def test_confidence_is_a_weights_product_and_gradients_flow():
    emb, assign, weights = _inputs((2, 4, 5, 3, 2), True, seed=7)
    conf = torch.rand(2, 4, 5, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    for fn in (deep_clustering_loss, whitened_kmeans_loss):
        torch.testing.assert_close(fn(emb, assign, weights, confidence=conf),
                                   fn(emb, assign, weights * conf))
        torch.testing.assert_close(fn(emb, assign, None, confidence=conf),
                                   fn(emb, assign, conf))
        assert not torch.allclose(fn(emb, assign, weights, confidence=conf),
                                  fn(emb, assign, weights))
        x = emb.float().requires_grad_(True)
        fn(x, assign.float(), weights.float()).sum().backward()
        assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_shape_errors():
    with pytest.raises(ValueError, match="assignments"):
        deep_clustering_loss(torch.zeros(1, 4, 5, 3), torch.zeros(1, 2, 5, 4))
    with pytest.raises(ValueError, match="weights"):
        whitened_kmeans_loss(torch.zeros(1, 4, 5, 3), torch.zeros(1, 2, 4, 5), torch.ones(1, 5, 4))
