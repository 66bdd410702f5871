"""A sampler whose stream of indices depends only on (seed, position), so that a resumed run
(or any rank of a distributed one) sees exactly the data an uninterrupted run would.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch
from torch.utils.data import Sampler


class ResumableSampler(Sampler[int]):
    """An endless stream of shuffled passes over ``range(n)``, resumable at any position.

    Global stream element ``p`` is ``permutation(seed, p // n)[p % n]``: every pass over the
    data is a fresh permutation seeded by ``[seed, pass]``. Rank ``r`` of ``num_replicas`` takes
    elements ``start + r, start + r + R, ...``. Set ``start`` (in global elements, i.e.
    ``iterations * batch_size * num_replicas``) with :meth:`set_position` before iterating.

    The stream never ends: the training loop decides the epoch length.

    Args:
        n: dataset length.
        seed: base seed (default 0).
        shuffle: False gives ``0, 1, ..., n-1, 0, 1, ...``.
        num_replicas, rank: distributed sharding (default single process).
    """

    def __init__(self, n: int, seed: int = 0, shuffle: bool = True, num_replicas: int = 1,
                 rank: int = 0):
        if n <= 0:
            raise ValueError("cannot sample from an empty dataset")
        self.n, self.seed, self.shuffle = int(n), int(seed), bool(shuffle)
        self.num_replicas, self.rank = int(num_replicas), int(rank)
        self.start = 0

    def set_position(self, start: int) -> None:
        self.start = int(start)

    def _order(self, k: int) -> np.ndarray:
        if not self.shuffle:
            return np.arange(self.n)
        return np.random.default_rng([self.seed, k]).permutation(self.n)

    def __iter__(self):
        cached_pass, order = -1, None
        for p in itertools.count(self.start + self.rank, self.num_replicas):
            k = p // self.n
            if k != cached_pass:
                cached_pass, order = k, self._order(k)
            yield int(order[p % self.n])


def seed_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: distinct, reproducible numpy/python seeds per worker."""
    import random

    s = torch.initial_seed() % 2**32
    np.random.seed(s)
    random.seed(s)
