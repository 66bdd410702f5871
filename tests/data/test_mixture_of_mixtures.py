"""Mixtures of mixtures (MixIT's training items): deterministic, never an item with itself."""

from __future__ import annotations

import pytest
import torch

from bootsep.data.mixture_of_mixtures import MixtureOfMixtures
from bootsep.utils.errors import UserError


class _Mixes(torch.utils.data.Dataset):
    def __init__(self, n, length=32, offset=0.0, sample_rate=16000):
        self.n, self.length, self.offset, self.sample_rate = n, length, offset, sample_rate

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return {"mix": torch.full((1, self.length), float(i) + self.offset), "name": f"m{i}"}


def test_items_are_the_sum_of_two_different_mixtures_and_deterministic():
    ds = MixtureOfMixtures(_Mixes(5), seed=3)
    for i in range(len(ds)):
        item = ds[i]
        a, b = item["sources"][:, 0, 0].tolist()
        assert a == i and b != i and 0 <= b < 5
        assert torch.equal(item["mix"], item["sources"].sum(0))
        assert torch.equal(ds[i]["sources"], item["sources"])


def test_several_datasets_are_concatenated_and_rates_checked():
    ds = MixtureOfMixtures([_Mixes(2), _Mixes(3, offset=100.0)])
    assert len(ds) == 5
    assert ds[4]["sources"][0, 0, 0] == 102.0
    with pytest.raises(UserError, match="sample rates"):
        MixtureOfMixtures([_Mixes(2), _Mixes(2, sample_rate=44100)])
    with pytest.raises(UserError, match="at least 2"):
        MixtureOfMixtures(_Mixes(1))


def test_gain_jitter_scales_each_mixture():
    ds = MixtureOfMixtures(_Mixes(4, offset=1.0), gain_jitter_db=6.0)
    item = ds[0]
    _, gains = ds.partner(0)
    assert item["sources"][0, 0, 0] == pytest.approx(1.0 * gains[0])
    assert not torch.allclose(torch.as_tensor(gains), torch.ones(2, dtype=torch.float64))


def test_mismatched_lengths_are_a_user_error():
    class Uneven(_Mixes):
        def __getitem__(self, i):
            return {"mix": torch.zeros(1, 10 + i), "name": f"m{i}"}

    with pytest.raises(UserError, match="excerpt_seconds"):
        MixtureOfMixtures(Uneven(3))[0]
