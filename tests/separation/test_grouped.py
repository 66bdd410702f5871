"""Mapping M unnamed outputs to named sources: oracle per item, or one fixed grouping."""

from __future__ import annotations

import pytest
import torch

from bootsep.separation.base import Separator
from bootsep.separation.grouped import (
    GroupedSeparator,
    choose_grouping,
    grouping_scores,
    oracle_grouping,
)
from bootsep.utils.errors import UserError


def _parts(seed=0, n=4, samples=4000):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, samples, generator=g)


def test_oracle_grouping_recovers_the_true_grouping():
    parts = _parts()
    refs = torch.stack([parts[0] + parts[3], parts[1] + parts[2]])
    assert oracle_grouping(parts, refs, ["a", "b"]) == {"a": [0, 3], "b": [1, 2]}
    scores, assignments = grouping_scores(parts, refs)
    assert scores.shape == (16,) and assignments.shape == (16, 4)
    assert float(scores.max()) > 60  # exact sums


def test_choose_grouping_takes_the_best_mean_over_items():
    items = []
    for seed in range(3):
        parts = _parts(seed)
        items.append((parts, torch.stack([parts[0] + parts[1], parts[2] + parts[3]])))
    assert choose_grouping(items, ["x", "y"]) == {"x": [0, 1], "y": [2, 3]}
    with pytest.raises(UserError):
        choose_grouping([], ["x", "y"])
    # a model that put everything into output 0: the oracle may leave a source empty, a fixed
    # grouping still gives each source an output
    parts = _parts(5)
    est = torch.stack([parts.sum(0), 0 * parts[0], 0 * parts[0], 0 * parts[0]])
    refs = torch.stack([parts[0] + parts[1], parts[2] + parts[3]])
    chosen = choose_grouping([(est, refs)], ["x", "y"])
    assert all(chosen.values())


class _Four(Separator):
    """Four fixed masks over frequency bands."""

    def masks(self, mix_spec, source_specs=None):
        b, t, f = mix_spec.shape
        m = torch.zeros(b, 4, t, f)
        for k, band in enumerate(torch.arange(f).chunk(4)):
            m[:, k, :, band] = 1.0
        return m


def test_grouped_separator_sums_masks_and_checks_groups():
    inner = _Four(source_labels=["o0", "o1", "o2", "o3"], device="cpu")
    sep = GroupedSeparator(inner, {"low": [0, 1], "high": [2, 3]})
    mix = torch.randn(1, 8000)
    out = sep.separate(mix)
    assert out.labels == ["low", "high"]
    torch.testing.assert_close(out.estimates.sum(0), mix, atol=1e-4, rtol=1e-4)
    for groups in ({"a": [0, 4]}, {"a": [0], "b": [0]}, {}, {"a": []}, "best"):
        with pytest.raises(UserError):
            GroupedSeparator(inner, groups)


def test_oracle_grouped_separator_uses_the_references():
    inner = _Four(source_labels=["o0", "o1", "o2", "o3"], device="cpu")
    sep = GroupedSeparator(inner, "oracle", labels=["a", "b"])
    assert sep.needs_references
    g = torch.Generator().manual_seed(0)
    mix = torch.randn(1, 8000, generator=g)
    X = sep.stft(mix)
    bands = inner.masks(X)  # the four band signals of the mixture
    parts = sep.stft.inverse(bands * X.unsqueeze(1), length=8000)[0]  # (4, samples)
    refs = torch.stack([parts[1] + parts[2], parts[0] + parts[3]])[:, None]  # a = 1+2, b = 0+3
    out = sep.separate(mix, refs)
    torch.testing.assert_close(out.estimates, refs, atol=1e-4, rtol=1e-4)
    with pytest.raises(ValueError, match="reference sources"):
        sep.separate(mix)
