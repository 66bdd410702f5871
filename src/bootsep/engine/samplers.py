"""Samplers whose order depends only on (seed, epoch), so a resumed run sees the same data."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Sampler


class EpochSeededSampler(Sampler[int]):
    """Shuffles ``range(n)`` with ``default_rng([seed, epoch])``; optional DDP sharding.

    Args:
        n: dataset length.
        seed: base seed (default 0).
        shuffle: if False, indices stay in order.
        num_replicas, rank: shard for distributed training (each rank gets every
            ``num_replicas``-th index of the shuffled order, padded to equal length).
    """

    def __init__(self, n: int, seed: int = 0, shuffle: bool = True, num_replicas: int = 1,
                 rank: int = 0):
        self.n, self.seed, self.shuffle = int(n), int(seed), shuffle
        self.num_replicas, self.rank = int(num_replicas), int(rank)
        self.epoch = 0
        self.num_samples = -(-self.n // self.num_replicas)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __iter__(self):
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(self.n)
        else:
            order = np.arange(self.n)
        total = self.num_samples * self.num_replicas
        if total > self.n:
            order = np.concatenate([order, order[: total - self.n]])
        return iter(order[self.rank:total:self.num_replicas].tolist())

    def __len__(self) -> int:
        return self.num_samples


def seed_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: distinct, reproducible numpy/python seeds per worker."""
    import random

    s = torch.initial_seed() % 2**32
    np.random.seed(s)
    random.seed(s)
