"""The one overlap-add with cross-fade (separation.windowing): window plans, the ramp, the join."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bootsep.separation.windowing import OverlapAdd, fade_in, window_bounds


def _reference_bounds(length, window, overlap):
    """Windows stepping by ``window - overlap`` until one reaches the end (written as a loop,
    independently of window_bounds' closed form)."""
    bounds, start = [], 0
    while True:
        end = min(start + window, length)
        bounds.append((start, end))
        if end >= length:
            return bounds
        start += window - overlap


@pytest.mark.parametrize("window,overlap", [(1, 0), (10, 0), (10, 3), (10, 5), (64, 7)])
def test_window_bounds_step_by_window_minus_overlap_and_share_exactly_the_overlap(window, overlap):
    for length in range(0, 5 * window + 3):
        b = window_bounds(length, window, overlap)
        assert b == _reference_bounds(length, window, overlap), (length, window, overlap)
        assert b[0][0] == 0 and b[-1][1] == length
        assert all(e0 - s1 == overlap for (_, e0), (s1, _) in zip(b, b[1:]))
        assert all(e - s <= window for s, e in b)


def test_window_bounds_merges_a_short_last_window_and_checks_its_arguments():
    assert window_bounds(190, 100, 10) == [(0, 100), (90, 190)]
    assert window_bounds(191, 100, 10) == [(0, 100), (90, 190), (180, 191)]
    assert window_bounds(191, 100, 10, min_last=50) == [(0, 100), (90, 191)]
    assert window_bounds(236, 100, 10, min_last=50) == [(0, 100), (90, 190), (180, 236)]
    assert window_bounds(7, 100, 10, min_last=50) == [(0, 7)]
    for window, overlap in [(0, 0), (10, -1), (10, 6)]:
        with pytest.raises(ValueError, match="0 <= 2 \\* overlap <= window"):
            window_bounds(100, window, overlap)


@pytest.mark.parametrize("n", [1, 2, 7, 100, 4410])
def test_the_ramps_are_complementary_symmetric_and_the_same_in_numpy_and_torch(n):
    up_np = fade_in(n, np.zeros(1, dtype=np.float32))
    up_t = fade_in(n, torch.zeros(1))
    assert up_np.dtype == np.float32 and up_t.dtype == torch.float32 and up_np.shape == (n,)
    np.testing.assert_array_equal(up_np, up_t.numpy())
    np.testing.assert_allclose(up_np, (np.arange(n) + 0.5) / n, rtol=0, atol=1e-7)
    assert np.all((up_np + (1.0 - up_np)) == 1.0)                  # weights sum to one
    np.testing.assert_allclose(up_np[::-1], 1.0 - up_np, atol=1e-6)  # fade-out = fade-in reversed
    assert 0.0 < up_np.min() and up_np.max() < 1.0


def _join(bounds, outputs, dim=-1, align=None):
    ola = OverlapAdd(bounds, dim=dim)
    parts, done = [], []
    for y in outputs:
        parts.append(ola.push(y, align))
        done.append(ola.done)
    cat = torch.cat if isinstance(parts[0], torch.Tensor) else np.concatenate
    return cat(parts, dim), done


def test_constant_windows_give_a_linear_cross_fade_over_each_overlap():
    length, window, overlap = 100, 30, 8
    bounds = window_bounds(length, window, overlap)
    outputs = [np.full((1, e - s), float(k + 1), dtype=np.float32)
               for k, (s, e) in enumerate(bounds)]
    y, done = _join(bounds, outputs)
    assert y.shape == (1, length)
    assert done == [s for s, _ in bounds[1:]] + [length]        # each part ends where the next starts
    expected = np.zeros(length)
    for k, (s, e) in enumerate(bounds):                          # frame by frame
        for t in range(s, e):
            if k + 1 < len(bounds) and t >= bounds[k + 1][0]:
                a = (t - bounds[k + 1][0] + 0.5) / overlap
                expected[t] = (1 - a) * (k + 1) + a * (k + 2)
            elif k == 0 or t >= bounds[k - 1][1]:
                expected[t] = k + 1
    np.testing.assert_allclose(y[0], expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_windows_that_agree_are_joined_back_into_the_signal_on_any_axis(kind):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 1001)).astype(np.float32)
    if kind == "torch":
        x = torch.from_numpy(x)
    bounds = window_bounds(1001, 200, 50, min_last=100)
    y, _ = _join(bounds, [x[..., s:e] for s, e in bounds])
    np.testing.assert_allclose(np.asarray(y), np.asarray(x), rtol=0, atol=1e-6)
    xt = x.swapaxes(1, 2) if kind == "numpy" else x.transpose(1, 2)          # time on dim 1
    y1, _ = _join(bounds, [xt[:, s:e] for s, e in bounds], dim=1)
    np.testing.assert_allclose(np.asarray(y1), np.asarray(xt), rtol=0, atol=1e-6)


def test_align_sees_the_unfaded_overlap_and_can_reorder_the_window():
    """A window whose sources come out swapped is put back in order by ``align``."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 1, 500)).astype(np.float32)
    bounds = window_bounds(500, 120, 20)
    outputs = [x[..., s:e][::-1] if k % 2 else x[..., s:e] for k, (s, e) in enumerate(bounds)]
    seen = []

    def align(tail, y):
        seen.append(tail.copy())
        same = np.sum(tail * y[..., :tail.shape[-1]])
        swapped = np.sum(tail * y[::-1, :, :tail.shape[-1]])
        return y if same >= swapped else y[::-1]

    y, _ = _join(bounds, outputs, align=align)
    np.testing.assert_allclose(y, x, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(seen[0], x[..., bounds[1][0]:bounds[0][1]])   # un-faded
    assert len(seen) == len(bounds) - 1


def test_overlap_add_refuses_a_wrong_length_or_an_extra_window():
    ola = OverlapAdd([(0, 10), (8, 20)])
    with pytest.raises(ValueError, match="has 10 steps; its output has 9"):
        ola.push(np.zeros((1, 9)))
    ola.push(np.zeros((1, 10)))
    ola.push(np.zeros((1, 12)))
    with pytest.raises(ValueError, match="more than its 2 windows"):
        ola.push(np.zeros((1, 12)))
