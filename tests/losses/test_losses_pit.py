"""PITLossWrapper against an explicit loop over every permutation with the plain loss."""

from __future__ import annotations

import itertools

import pytest
import torch

from bootsep.losses import (
    PITLossWrapper,
    l1_loss,
    mse_loss,
    neg_si_sdr_loss,
    pairwise_l1_loss,
    pairwise_mse_loss,
    pairwise_neg_si_sdr_loss,
    reorder,
)

LOSSES = {
    "l1": (pairwise_l1_loss, l1_loss, (6, 5)),
    "mse": (pairwise_mse_loss, mse_loss, (6, 5)),
    "sisdr": (pairwise_neg_si_sdr_loss, neg_si_sdr_loss, (300,)),
}


def _loop(plain, est, target):
    """Min over all permutations of the plain loss, per example."""
    n_est, n_ref = est.shape[1], target.shape[1]
    losses, perms = [], []
    for b in range(est.shape[0]):
        best = min(((plain(est[b:b + 1, list(p)], target[b:b + 1]).item(), list(p))
                    for p in itertools.permutations(range(n_est), n_ref)), key=lambda x: x[0])
        losses.append(best[0])
        perms.append(best[1])
    return torch.tensor(losses, dtype=torch.float64), perms


@pytest.mark.parametrize("name", sorted(LOSSES))
@pytest.mark.parametrize("n_src", [2, 3, 4])  # 4 -> Hungarian
def test_pit_matches_explicit_permutation_loop(name, n_src):
    pairwise, plain, trailing = LOSSES[name]
    g = torch.Generator().manual_seed(10 * n_src + len(name))
    batch = 4
    target = torch.randn(batch, n_src, *trailing, generator=g, dtype=torch.float64)
    shuffles = [torch.randperm(n_src, generator=g) for _ in range(batch)]
    est = torch.stack([target[b, s] for b, s in enumerate(shuffles)])
    est = est + 0.5 * torch.randn(est.shape, generator=g, dtype=torch.float64)
    loss, perm = PITLossWrapper(pairwise)(est, target)
    ref_loss, ref_perm = _loop(plain, est, target)
    assert loss.shape == (batch,) and perm.shape == (batch, n_src) and perm.dtype == torch.long
    torch.testing.assert_close(loss, ref_loss, rtol=1e-9, atol=1e-9)
    assert perm.tolist() == ref_perm
    for b, s in enumerate(shuffles):  # the noisy shuffle is undone
        assert s[perm[b]].tolist() == list(range(n_src))
    torch.testing.assert_close(plain(reorder(est, perm), target), loss, rtol=1e-9, atol=1e-9)


def test_hungarian_and_brute_force_agree_and_gradients_flow():
    g = torch.Generator().manual_seed(3)
    target = torch.rand(5, 4, 8, 3, generator=g)
    est = torch.rand(5, 4, 8, 3, generator=g, requires_grad=True)
    brute = PITLossWrapper(pairwise_l1_loss, brute_force_max=4)(est, target)
    hung = PITLossWrapper(pairwise_l1_loss, brute_force_max=1)(est, target)
    assert torch.equal(brute[1], hung[1])
    torch.testing.assert_close(brute[0], hung[0])
    hung[0].sum().backward()
    assert est.grad is not None and est.grad.abs().sum() > 0


def test_more_estimates_than_references():
    g = torch.Generator().manual_seed(4)
    target = torch.rand(3, 2, 10, generator=g, dtype=torch.float64)
    est = torch.rand(3, 4, 10, generator=g, dtype=torch.float64)
    est[:, 3], est[:, 1] = target[:, 0], target[:, 1]
    loss, perm = PITLossWrapper(pairwise_l1_loss)(est, target)
    assert perm.tolist() == [[3, 1]] * 3 and torch.all(loss == 0)
    ref_loss, ref_perm = _loop(l1_loss, est, target)
    assert perm.tolist() == ref_perm
    with pytest.raises(ValueError):
        PITLossWrapper(pairwise_l1_loss)(target, est)
