"""Mixtures of mixtures for MixIT: two unlabelled mixtures added into one training item.

Wraps any dataset whose items carry a ``mix`` (e.g. excerpts of plain recordings:
``StemFolderDataset(..., sources=('mixture',), excerpt_seconds=...)`` or
:class:`~bootsep.data.user.MixtureFolderDataset`); several datasets are concatenated. Item ``i``
pairs the ``i``-th mixture with another one drawn from ``numpy.random.default_rng([seed, i])``,
so an item is the same in every worker, run and resume::

    item = {'mix': x1 + x2, 'sources': stack([x1, x2]), ...}

The trainer then treats the two mixtures as the "sources" of the mixture of mixtures: their
targets are what :class:`~bootsep.losses.combine.MixITLoss` assigns the model's outputs to.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import ConcatDataset, Dataset

from ..utils.errors import UserError


class MixtureOfMixtures(Dataset):
    """Sums of two different mixtures, deterministic per index.

    Args:
        datasets: one dataset or a list of them (concatenated); items need ``mix``
            ``(channels, samples)`` of one fixed length (use excerpts).
        seed: seed of the partner draw (default 0).
        gain_jitter_db: gain in ``[-g, g]`` dB applied to each mixture before adding (default 0).

    Items: ``mix (channels, samples)``, ``sources (2, channels, samples)`` (the two mixtures,
    after gains), ``name`` (``'a+b'``), ``index``.
    """

    #: the targets are two mixtures, not named sources: the model's outputs are unnamed
    #: (``train.source_labels`` names them, e.g. ``['out0', ..., 'out3']``)
    sources: tuple[str, ...] = ()

    def __init__(self, datasets: Dataset | Sequence[Dataset], seed: int = 0,
                 gain_jitter_db: float = 0.0):
        if isinstance(datasets, Dataset):
            datasets = [datasets]
        datasets = list(datasets)
        if not datasets:
            raise UserError("MixtureOfMixtures.datasets is empty: give at least one dataset of "
                            "unlabelled mixtures")
        self.dataset = datasets[0] if len(datasets) == 1 else ConcatDataset(datasets)
        if len(self.dataset) < 2:
            raise UserError(f"MixtureOfMixtures needs at least 2 mixtures, got {len(self.dataset)}")
        self.seed = int(seed)
        self.gain_jitter_db = float(gain_jitter_db)
        rates = {getattr(d, "sample_rate", None) for d in datasets} - {None}
        if len(rates) > 1:
            raise UserError(f"MixtureOfMixtures: the datasets have different sample rates "
                            f"{sorted(rates)}; bind one sample_rate for all of them")
        self.sample_rate = rates.pop() if rates else None

    def __len__(self) -> int:
        return len(self.dataset)

    def partner(self, index: int) -> tuple[int, np.ndarray]:
        """The other mixture's index and the two gains (linear) of item ``index``."""
        rng = np.random.default_rng([self.seed, int(index)])
        other = int(rng.integers(len(self) - 1))
        other += other >= index  # never the item itself
        g = self.gain_jitter_db
        gains_db = rng.uniform(-g, g, size=2) if g > 0 else np.zeros(2)
        return other, 10.0 ** (gains_db / 20.0)

    def __getitem__(self, index: int) -> dict:
        index = int(index)
        other, gains = self.partner(index)
        a, b = self.dataset[index], self.dataset[other]
        xa, xb = torch.as_tensor(a["mix"]) * float(gains[0]), torch.as_tensor(b["mix"]) * float(gains[1])
        if xa.shape != xb.shape:
            raise UserError(f"MixtureOfMixtures: mixtures {a.get('name')} {tuple(xa.shape)} and "
                            f"{b.get('name')} {tuple(xb.shape)} differ in shape; use fixed-length "
                            "excerpts (excerpt_seconds) and the same channel count")
        sources = torch.stack([xa, xb]).float()
        return {"mix": sources.sum(0), "sources": sources,
                "name": f"{a.get('name', index)}+{b.get('name', other)}", "index": index}
