"""Curriculum on excerpt length: short excerpts for the first part of training, then full length.

The reference (paper-system.md §8.3) trained on only the first ``initial_length`` fraction of
each example (0.2: 0.64 s of 3.2 s) for the first ``num_epochs / 5`` epochs, then on the whole
excerpt. :class:`Curriculum` does this for any model as a training handler: its
``before_step(trainer, batch)`` hook crops ``batch['mix']`` ``(B, C, S)`` and
``batch['sources']`` ``(B, n, C, S)`` to ``round(initial_fraction * S)`` samples while the trainer's iteration is
within the first ``curriculum_fraction`` of ``num_epochs * epoch_length`` iterations.

The decision depends only on the iteration number (and, for ``position='random'``, on
``seed`` and the iteration), so a resumed run crops exactly as an uninterrupted one would.
Validation batches are never cropped.

Example:
    >>> import torch
    >>> class T:  # a stand-in for the trainer
    ...     iteration, num_epochs, epoch_length, iteration_scalars = 1, 10, 100, {}
    >>> batch = {'mix': torch.zeros(2, 1, 1000), 'sources': torch.zeros(2, 4, 1, 1000)}
    >>> out = Curriculum(initial_fraction=0.2).before_step(T(), batch)
    >>> out['mix'].shape[-1], out['sources'].shape[-1]
    (200, 200)
"""

from __future__ import annotations

import torch

from .handlers import Handler

POSITIONS = ("start", "random")


class Curriculum(Handler):
    """Crop training excerpts to a fraction of their length early in training.

    Args:
        initial_fraction: fraction of each excerpt's samples kept while the curriculum is
            active, in (0, 1] (default 0.2).
        curriculum_fraction: fraction of all training iterations
            (``num_epochs * epoch_length``) during which excerpts are cropped, in [0, 1]
            (default 0.2 = the first fifth of training, as the reference).
        num_iterations: crop during exactly this many iterations instead (default None:
            use ``curriculum_fraction``).
        position: ``'start'`` (default; the first part of each excerpt, as the reference) or
            ``'random'`` (one random offset per step, drawn from ``seed`` and the iteration,
            shared by the whole batch).
        seed: for ``position='random'`` (default 0).

    Writes ``curriculum_fraction`` (the fraction of samples kept this step) to the trainer's
    iteration scalars.
    """

    name = "curriculum"

    def __init__(self, initial_fraction: float = 0.2, curriculum_fraction: float = 0.2,
                 num_iterations: int | None = None, position: str = "start", seed: int = 0):
        if not 0.0 < float(initial_fraction) <= 1.0:
            raise ValueError(f"initial_fraction must be in (0, 1], got {initial_fraction}")
        if not 0.0 <= float(curriculum_fraction) <= 1.0:
            raise ValueError(f"curriculum_fraction must be in [0, 1], got {curriculum_fraction}")
        if num_iterations is not None and int(num_iterations) < 0:
            raise ValueError(f"num_iterations must be >= 0, got {num_iterations}")
        if position not in POSITIONS:
            raise ValueError(f"position {position!r} not in {POSITIONS}")
        self.initial_fraction = float(initial_fraction)
        self.curriculum_fraction = float(curriculum_fraction)
        self.num_iterations = None if num_iterations is None else int(num_iterations)
        self.position, self.seed = position, int(seed)

    def last_iteration(self, trainer) -> int:
        """The last (1-based) iteration whose batch is cropped."""
        if self.num_iterations is not None:
            return self.num_iterations
        total = int(trainer.num_epochs) * int(trainer.epoch_length)
        return int(round(self.curriculum_fraction * total))

    def active(self, trainer) -> bool:
        return int(trainer.iteration) <= self.last_iteration(trainer)

    def before_step(self, trainer, batch: dict) -> dict:
        """Return ``batch`` with its audio cropped while the curriculum is active (a new dict;
        the input batch is not modified)."""
        mix = batch["mix"]
        total = mix.shape[-1]
        if not self.active(trainer) or self.initial_fraction >= 1.0:
            trainer.iteration_scalars["curriculum_fraction"] = 1.0
            return batch
        length = max(1, int(round(self.initial_fraction * total)))
        start = 0
        if self.position == "random" and total > length:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + int(trainer.iteration))
            start = int(torch.randint(0, total - length + 1, (1,), generator=g))
        out = dict(batch)
        for key in ("mix", "sources"):
            if torch.is_tensor(batch.get(key)):
                out[key] = batch[key][..., start:start + length]
        trainer.iteration_scalars["curriculum_fraction"] = length / total
        return out
