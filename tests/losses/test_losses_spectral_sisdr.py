"""L1/MSE and negative SI-SDR losses, plain and pairwise, against numpy and the metrics."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bootsep.losses import (
    l1_loss,
    mse_loss,
    neg_si_sdr_loss,
    pairwise_l1_loss,
    pairwise_mse_loss,
    pairwise_neg_si_sdr_loss,
)
from bootsep.metrics import bss_eval_scale


def _pair(shape, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(*shape, generator=g), torch.rand(*shape, generator=g)


@pytest.mark.parametrize("shape", [(2, 2, 5, 7), (3, 4, 6, 3), (1, 3, 11)])
def test_spectral_losses_match_numpy(shape):
    est, target = _pair(shape, seed=len(shape))
    e, t = est.double().numpy(), target.double().numpy()
    b = shape[0]
    np.testing.assert_allclose(l1_loss(est, target).numpy(),
                               np.abs(e - t).reshape(b, -1).mean(1), rtol=1e-5)
    np.testing.assert_allclose(mse_loss(est, target).numpy(),
                               ((e - t) ** 2).reshape(b, -1).mean(1), rtol=1e-5)
    n = shape[1]
    pw_l1, pw_mse = pairwise_l1_loss(est, target), pairwise_mse_loss(est, target)
    assert pw_l1.shape == (b, n, n)
    for i in range(n):
        for j in range(n):
            np.testing.assert_allclose(pw_l1[:, i, j].numpy(),
                                       np.abs(e[:, i] - t[:, j]).reshape(b, -1).mean(1), rtol=1e-5)
            np.testing.assert_allclose(pw_mse[:, i, j].numpy(),
                                       ((e[:, i] - t[:, j]) ** 2).reshape(b, -1).mean(1),
                                       rtol=1e-5)
    with pytest.raises(ValueError):
        l1_loss(est, target[:, :1])


def _audio(batch, n_src, n=4000, seed=0):
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(n, dtype=torch.float64) / 8000
    f0 = 100 + 400 * torch.rand(batch, n_src, 1, generator=g, dtype=torch.float64)
    ref = torch.sin(2 * torch.pi * f0 * t) + 0.3 * torch.randn(batch, n_src, n, generator=g,
                                                               dtype=torch.float64)
    est = 0.8 * ref + 0.4 * ref.roll(1, dims=1) + 0.2 * torch.randn(ref.shape, generator=g,
                                                                    dtype=torch.float64) + 0.1
    return est, ref


@pytest.mark.parametrize("n_src", [2, 3])
def test_neg_si_sdr_matches_metrics(n_src):
    est, ref = _audio(3, n_src, seed=n_src)
    full, _ = bss_eval_scale(est, ref)
    torch.testing.assert_close(neg_si_sdr_loss(est, ref), -full["SI-SDR"].mean(1),
                               atol=1e-3, rtol=0)
    torch.testing.assert_close(neg_si_sdr_loss(est, ref, scaling=False), -full["SNR"].mean(1),
                               atol=1e-3, rtol=0)
    pw = pairwise_neg_si_sdr_loss(est, ref)
    assert pw.shape == (3, n_src, n_src)
    for i in range(n_src):
        for j in range(n_src):
            m, _ = bss_eval_scale(est[:, i:i + 1], ref[:, j:j + 1])
            torch.testing.assert_close(pw[:, i, j], -m["SI-SDR"][:, 0], atol=1e-3, rtol=0)
    # gradient: one descent step lowers the loss
    x = est.float().requires_grad_(True)
    loss = neg_si_sdr_loss(x, ref.float())
    loss.sum().backward()
    assert torch.isfinite(x.grad).all()
    stepped = (x - 1e-2 * x.grad / x.grad.norm()).detach()
    assert torch.all(neg_si_sdr_loss(stepped, ref.float()) < loss.detach())
    with pytest.raises(ValueError):
        neg_si_sdr_loss(est[:, :, :-1], ref)
