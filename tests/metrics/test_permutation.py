"""The one permutation search and label alignment, against brute force; the values its users
(PIT losses, validation SI-SDR, evaluation, file-mode windows) gave before they shared it."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from bootsep.metrics import align_labels, best_permutation, pairwise_si_sdr, si_sdr


def _brute(pairwise: torch.Tensor, maximize: bool) -> tuple[list[list[int]], list[float]]:
    """Best total over every injective assignment, by an explicit loop (nan counts as 0)."""
    perms, totals = [], []
    sign = 1.0 if maximize else -1.0
    for mat in pairwise.double():
        n_est, n_ref = mat.shape
        best = max((sign * sum(float(torch.nan_to_num(mat[p[j], j])) for j in range(n_ref)), p)
                   for p in itertools.permutations(range(n_est), n_ref))
        perms.append(list(best[1]))
        totals.append(sign * best[0])
    return perms, totals


def _total(pairwise, perm):
    return [sum(float(torch.nan_to_num(pairwise[b, p[j], j])) for j in range(len(p)))
            for b, p in enumerate(perm)]


@pytest.mark.parametrize("maximize", [True, False])
@pytest.mark.parametrize("n_est,n_ref", [(1, 1), (2, 2), (3, 3), (4, 2), (4, 4), (5, 5), (6, 4)])
def test_matches_brute_force_for_both_objectives(maximize, n_est, n_ref):
    g = torch.Generator().manual_seed(100 * n_est + 10 * n_ref + maximize)
    pairwise = torch.randn(7, n_est, n_ref, generator=g)
    pairwise[0, 0, 0] = float("nan")
    want_perm, want_total = _brute(pairwise, maximize)
    for brute_force_max in (1, 4, 6):  # Hungarian, the default, exhaustive
        perm = best_permutation(pairwise, maximize=maximize, brute_force_max=brute_force_max)
        assert perm.shape == (7, n_ref) and perm.dtype == torch.long
        assert all(len(set(p)) == n_ref for p in perm.tolist())  # injective
        np.testing.assert_allclose(_total(pairwise, perm.tolist()), want_total, rtol=1e-12,
                                   atol=1e-12)
        if n_est <= brute_force_max:  # exhaustive: the first optimum in permutations order
            assert perm.tolist() == want_perm


def test_numpy_input_ties_infinities_and_bad_shapes():
    assert best_permutation(np.zeros((2, 3, 3)), maximize=True).tolist() == [[0, 1, 2]] * 2
    inf = torch.tensor([[[float("-inf"), 0.0], [0.0, float("-inf")]]])  # a silent estimate
    assert best_permutation(inf, maximize=True).tolist() == [[1, 0]]
    assert best_permutation(-inf, maximize=False).tolist() == [[1, 0]]
    with pytest.raises(ValueError, match=r"\(batch, n_est, n_ref\) with n_est >= n_ref"):
        best_permutation(torch.zeros(1, 2, 3), maximize=True)
    with pytest.raises(ValueError):
        best_permutation(torch.zeros(2, 2), maximize=True)


def test_pairwise_si_sdr_is_si_sdr_of_every_pair():
    g = torch.Generator().manual_seed(5)
    est, ref = torch.randn(2, 3, 50, generator=g), torch.randn(2, 2, 50, generator=g)
    pw = pairwise_si_sdr(est, ref)
    assert pw.shape == (2, 3, 2)
    for i in range(3):
        for j in range(2):
            torch.testing.assert_close(pw[:, i, j], si_sdr(est[:, i:i + 1], ref[:, j:j + 1])[:, 0])
            torch.testing.assert_close(pairwise_si_sdr(est, ref, scaling=False)[:, i, j],
                                       si_sdr(est[:, i], ref[:, j], scaling=False))
    with pytest.raises(ValueError, match="same batch and length"):
        pairwise_si_sdr(est, ref[..., :40])


def test_snr_variant_is_the_plain_ratio():
    g = torch.Generator().manual_seed(6)
    est, ref = torch.randn(2, 2, 80, generator=g, dtype=torch.float64), \
        torch.randn(2, 2, 80, generator=g, dtype=torch.float64)
    want = 10 * torch.log10((ref.square().sum(-1) + 1e-8) / ((est - ref).square().sum(-1) + 1e-8))
    torch.testing.assert_close(si_sdr(est, ref, scaling=False, zero_mean=False), want)


@pytest.mark.parametrize("labels,refs,search,want", [
    (["a", "b"], ["a", "b"], None, ([0, 1], False)),
    (["b", "a"], ["a", "b"], None, ([1, 0], False)),      # same set, other order: by name
    (["s0", "s1"], ["a", "b"], None, ([0, 1], True)),     # another set: search
    (["a", "b", "c"], ["c", "a"], None, ([0, 1], True)),  # a superset: search by default...
    (["a", "b", "c"], ["c", "a"], False, ([2, 0], False)),  # ...or by name when asked
    (["b", "a"], ["a", "b"], True, ([0, 1], True)),       # a search when asked
])
def test_align_labels(labels, refs, search, want):
    assert align_labels(labels, refs, search) == want


def test_align_labels_by_name_needs_every_reference_label():
    with pytest.raises(ValueError, match=r"sources \['s0', 's1'\] do not include \['a', 'b'\]"):
        align_labels(("s0", "s1"), ("a", "b"), search=False)


# --------------------------------------------------------------------------- pinned values
# Computed before PIT losses, validation SI-SDR, evaluation and file-mode windows shared the
# search (each had its own loop or wrapper): sharing it changed no choice and no value.
def _pinned_inputs():
    g = torch.Generator().manual_seed(123)
    ref = torch.randn(2, 3, 64, generator=g, dtype=torch.float64)
    est = ref[:, [2, 0, 1]] + 0.7 * torch.randn(2, 3, 64, generator=g, dtype=torch.float64)
    return est, ref


def test_users_of_the_search_give_the_pinned_values():
    from bootsep.bootstrap.separate_files import _best_order
    from bootsep.engine.trainer import pit_si_sdr
    from bootsep.losses import (
        PITLossWrapper,
        neg_si_sdr_loss,
        pairwise_l1_loss,
        pairwise_neg_si_sdr_loss,
    )
    from bootsep.metrics import bss_eval_scale

    est, ref = _pinned_inputs()
    exact = {"rtol": 0, "atol": 1e-12}
    loss, perm = PITLossWrapper(pairwise_neg_si_sdr_loss)(est, ref)
    assert perm.tolist() == [[1, 2, 0], [1, 2, 0]]
    torch.testing.assert_close(loss, torch.tensor([-3.06199048407487950, -1.51249264804493966],
                                                  dtype=torch.float64), **exact)
    loss, perm = PITLossWrapper(pairwise_l1_loss)(est, ref)
    assert perm.tolist() == [[1, 2, 0], [1, 2, 0]]
    torch.testing.assert_close(loss, torch.tensor([0.53418935842974202, 0.59599891443309316],
                                                  dtype=torch.float64), **exact)
    torch.testing.assert_close(neg_si_sdr_loss(est.float(), ref.float()),
                               torch.tensor([17.30330657958984375, 16.36906814575195312]),
                               rtol=0, atol=1e-5)
    torch.testing.assert_close(pit_si_sdr(est, ref),
                               torch.tensor([3.06199048407487950, 1.51249264804493966],
                                            dtype=torch.float64), **exact)
    metrics, perm = bss_eval_scale(est, ref, compute_permutation=True)
    assert perm.tolist() == [[1, 2, 0], [1, 2, 0]]
    torch.testing.assert_close(metrics["SI-SDR"], torch.tensor(
        [[3.25377892028894777, 1.48058670093377165, 4.45160583794423825],
         [2.45682250460720919, -0.40976501065508986, 2.49042045586786820]],
        dtype=torch.float64), **exact)
    rng = np.random.default_rng(7)
    tail = rng.standard_normal((3, 2, 40)).astype(np.float32)
    head = tail[[1, 2, 0]] + 0.5 * rng.standard_normal((3, 2, 40)).astype(np.float32)
    assert _best_order(tail, head) == [2, 0, 1]


def test_window_order_matches_brute_force_correlation():
    from bootsep.bootstrap.separate_files import _best_order

    rng = np.random.default_rng(8)
    for n in (2, 3, 4, 5):
        tail = rng.standard_normal((n, 1, 30))
        head = tail[rng.permutation(n)] + 1.5 * rng.standard_normal((n, 1, 30))
        a = tail.reshape(n, -1) / np.linalg.norm(tail.reshape(n, -1), axis=1, keepdims=True)
        b = head.reshape(n, -1) / np.linalg.norm(head.reshape(n, -1), axis=1, keepdims=True)
        corr = a @ b.T
        want = max(itertools.permutations(range(n)),
                   key=lambda p: sum(corr[i, p[i]] for i in range(n)))
        assert _best_order(tail, head) == list(want)
