"""MixIT: the vectorised loss equals a brute-force search over every assignment."""

from __future__ import annotations

import itertools

import pytest
import torch

from bootsep.losses import LossDict, LossSpecError
from bootsep.losses.mixit import ASSIGNMENT_CHUNK, mixit_assignments, mixit_loss
from bootsep.losses.sisdr import neg_si_sdr_loss
from bootsep.losses.spectral import l1_loss, mse_loss


def _brute_force(est, mixtures, loss):
    """Loop over every example and every map output -> mixture, the slow obvious way."""
    batch, n_out = est.shape[:2]
    n_mix = mixtures.shape[1]
    best_values, best_maps = [], []
    for b in range(batch):
        best = None
        for mapping in itertools.product(range(n_mix), repeat=n_out):
            groups = []
            for k in range(n_mix):
                members = [est[b, m] for m in range(n_out) if mapping[m] == k]
                groups.append(torch.stack(members).sum(0) if members
                              else torch.zeros_like(mixtures[b, k]))
            value = float(loss(torch.stack(groups)[None], mixtures[b][None])[0])
            if best is None or value < best[0] - 1e-12:
                best = (value, mapping)
        best_values.append(best[0])
        best_maps.append(best[1])
    return torch.tensor(best_values, dtype=torch.float64), torch.tensor(best_maps)


@pytest.mark.parametrize("n_out,n_mix,loss", [(2, 2, l1_loss), (4, 2, l1_loss), (3, 3, mse_loss),
                                               (4, 2, neg_si_sdr_loss)])
def test_mixit_equals_brute_force(n_out, n_mix, loss):
    g = torch.Generator().manual_seed(n_out * 10 + n_mix)
    shape = (3, n_out, 6, 5) if loss is not neg_si_sdr_loss else (3, n_out, 64)
    est = torch.rand(shape, generator=g, dtype=torch.float64)
    mixtures = torch.rand((3, n_mix, *shape[2:]), generator=g, dtype=torch.float64)
    value, assignment = mixit_loss(est, mixtures, loss)
    want_value, want_map = _brute_force(est, mixtures, loss)
    torch.testing.assert_close(value, want_value)
    assert torch.equal(assignment, want_map)


def test_mixit_finds_the_true_grouping_and_is_zero_there():
    g = torch.Generator().manual_seed(0)
    parts = torch.rand(2, 4, 8, 3, generator=g)
    # outputs 0, 2 make mixture 0; outputs 1, 3 make mixture 1
    mixtures = torch.stack([parts[:, 0] + parts[:, 2], parts[:, 1] + parts[:, 3]], dim=1)
    value, assignment = mixit_loss(parts, mixtures)
    assert torch.allclose(value, torch.zeros(2), atol=1e-6)
    assert assignment.tolist() == [[0, 1, 0, 1]] * 2


def test_chunked_assignments_match_one_chunk(monkeypatch):
    g = torch.Generator().manual_seed(1)
    est = torch.rand(2, 7, 4, 3, generator=g, dtype=torch.float64)  # 2**7 = 128 > chunk
    mixtures = torch.rand(2, 2, 4, 3, generator=g, dtype=torch.float64)
    assert 2 ** 7 > ASSIGNMENT_CHUNK
    chunked = mixit_loss(est, mixtures)
    monkeypatch.setattr("bootsep.losses.mixit.ASSIGNMENT_CHUNK", 10_000)
    whole = mixit_loss(est, mixtures)
    torch.testing.assert_close(chunked[0], whole[0])
    assert torch.equal(chunked[1], whole[1])


def test_gradient_flows_through_the_chosen_assignment_only():
    est = torch.rand(1, 3, 4, 4, requires_grad=True)
    mixtures = torch.rand(1, 2, 4, 4)
    value, _ = mixit_loss(est, mixtures)
    value.sum().backward()
    assert est.grad is not None and torch.isfinite(est.grad).all()


def test_assignments_enumerate_every_map_once():
    A = mixit_assignments(3, 2)
    assert A.shape == (8, 2, 3)
    assert torch.equal(A.sum(dim=1), torch.ones(8, 3))  # every output in exactly one mixture
    assert len({tuple(a.argmax(0).tolist()) for a in A}) == 8


def test_sparsity_penalty_prefers_fewer_active_outputs():
    mixtures = torch.ones(1, 2, 4, 4)
    sparse = torch.zeros(1, 4, 4, 4)
    sparse[:, 0] = 1
    sparse[:, 1] = 1
    spread = torch.full((1, 4, 4, 4), 0.5)  # the same sums, four active outputs
    plain = [float(mixit_loss(x, mixtures)[0]) for x in (sparse, spread)]
    assert plain[0] == pytest.approx(plain[1], abs=1e-7)
    penal = [float(mixit_loss(x, mixtures, sparsity=0.1)[0]) for x in (sparse, spread)]
    assert penal[0] < penal[1]


def test_loss_dict_spec_and_errors():
    fn = LossDict({"mixit": {"class": "MixITLoss", "kwargs": {"metric": "mse"}}})
    est = torch.rand(2, 4, 5, 3)
    mixtures = torch.rand(2, 2, 5, 3)
    out = fn({"estimates": est}, {"source_magnitudes": mixtures})
    torch.testing.assert_close(out["loss"], mixit_loss(est, mixtures, mse_loss)[0].mean())
    assert fn.losses["mixit"].last_assignment.shape == (2, 4)
    with pytest.raises(LossSpecError, match="metric"):
        LossDict({"mixit": {"class": "MixITLoss", "kwargs": {"metric": "l3"}}})
    with pytest.raises(LossSpecError, match="unknown kwargs"):
        LossDict({"mixit": {"class": "MixITLoss", "kwargs": {"power": 2}}})
    with pytest.raises(ValueError, match="matching"):
        mixit_loss(torch.rand(2, 4, 5), torch.rand(2, 2, 6))
