"""RemixIT (Tzinis et al., IEEE JSTSP 2022): continual bootstrapping with in-batch remixing.

A teacher separates each batch of unlabelled mixtures; its estimates of every source but the
first are permuted across the batch and the permuted estimates are added into new mixtures,
whose targets are exactly those permuted estimates. The student trains on them, and the teacher
is updated from the student. As a training handler (``train.handlers = [..., 'remixit']``), its
``before_step`` hook replaces each training batch by its remix.

Teachers:
    * a **primitive** teacher (no gradient, too slow to run per step): its estimates come with
      the batch, as ``batch['sources']`` (``separate`` + ``organize`` output read by
      :class:`~bootsep.data.bootstrapped.BootstrappedDataset` with ``balance = 0``: each item is
      one segment's estimates, so the remix happens here, across the batch);
    * a **deep** teacher run on the fly on ``batch['mix']``: a trained model
      (``teacher_checkpoint``), or a copy of the student itself once ``teacher_start_epoch``
      epochs have passed (the primitive teacher hands over to the student: the paper's second
      round made continual).

Teacher updates (``update``): ``'frozen'`` (never), ``'ema'`` (after every step,
``θ_T ← d·θ_T + (1 − d)·θ_S`` with ``d = ema_decay``), ``'replace'`` (``θ_T ← θ_S`` every
``replace_every`` epochs). The teacher's weights and counters are in every checkpoint
(:meth:`state_dict`), and the permutations depend only on ``seed`` and the iteration, so a
resumed run is exactly an uninterrupted one.

Shapes: ``batch['mix']`` ``(B, C, S)``, ``batch['sources']`` ``(B, n_src, C, S)``.
"""

from __future__ import annotations

import logging

import torch

from .handlers import Handler

log = logging.getLogger(__name__)

UPDATES = ("frozen", "ema", "replace")


def remix_batch(estimates: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor,
                                                                              torch.Tensor]:
    """Permute every source but the first across the batch and add the results.

    Args:
        estimates: ``(B, n_src, ...)`` teacher estimates.
        generator: draws one permutation of ``B`` per source ``1 .. n_src-1``.
    Returns:
        ``(mix (B, ...), sources (B, n_src, ...))`` with ``sources[b, k] =
        estimates[perm_k[b], k]`` (``perm_0`` = identity) and ``mix = sources.sum(1)``.
    """
    batch, n_src = estimates.shape[:2]
    perms = [torch.arange(batch)] + [torch.randperm(batch, generator=generator)
                                     for _ in range(n_src - 1)]
    sources = torch.stack([estimates[p.to(estimates.device), k] for k, p in enumerate(perms)],
                          dim=1)
    return sources.sum(dim=1), sources


class RemixIT(Handler):
    """In-batch remixing of a teacher's estimates, with a teacher that follows the student.

    Args:
        update: ``'frozen'``, ``'ema'`` (default) or ``'replace'`` (module docstring).
        ema_decay: ``d`` of the EMA update, in [0, 1) (default 0.99).
        replace_every: epochs between replacements for ``'replace'`` (default 1).
        teacher_checkpoint: a trained run's checkpoint (path) used as the deep teacher from the
            start (default None: the batch's ``sources`` are the teacher's estimates).
        teacher_start_epoch: with no ``teacher_checkpoint``, the number of epochs after which
            the student becomes the teacher (default None: never; the cached estimates are used
            throughout, i.e. the one-round bootstrapped student with in-batch remixing).
        seed: seed of the permutations (default 0).
    """

    name = "remixit"

    def __init__(self, update: str = "ema", ema_decay: float = 0.99, replace_every: int = 1,
                 teacher_checkpoint: str | None = None, teacher_start_epoch: int | None = None,
                 seed: int = 0):
        from ..utils.errors import UserError

        if update not in UPDATES:
            raise UserError(f"RemixIT.update = {update!r}: choose one of {list(UPDATES)}")
        if not 0.0 <= float(ema_decay) < 1.0:
            raise UserError(f"RemixIT.ema_decay = {ema_decay}: must be in [0, 1)")
        if int(replace_every) < 1:
            raise UserError(f"RemixIT.replace_every = {replace_every}: must be >= 1")
        if teacher_start_epoch is not None and int(teacher_start_epoch) < 0:
            raise UserError(f"RemixIT.teacher_start_epoch = {teacher_start_epoch}: must be >= 0")
        self.update = update
        self.ema_decay = float(ema_decay)
        self.replace_every = int(replace_every)
        self.teacher_checkpoint = teacher_checkpoint
        self.teacher_start_epoch = None if teacher_start_epoch is None else int(teacher_start_epoch)
        self.seed = int(seed)
        self.teacher = None  # a SeparationModel once a deep teacher is active
        self.teacher_updates = 0
        self._device = torch.device("cpu")

    # ------------------------------------------------------------------ teacher
    def attach(self, trainer) -> None:
        super().attach(trainer)
        self._device = trainer.device
        if self.teacher_checkpoint:
            from ..models.base import load_model

            self.teacher = load_model(self.teacher_checkpoint, device=trainer.device)
            self._freeze(self.teacher)
            log.info("RemixIT: deep teacher from %s", self.teacher_checkpoint)
        elif self.teacher_start_epoch == 0:
            self._copy_student(trainer)

    @staticmethod
    def _freeze(model) -> None:
        model.eval()
        for p in model.parameters():
            p.requires_grad_(False)

    def _copy_student(self, trainer) -> None:
        from ..models.base import load_model

        self.teacher = load_model(trainer.raw_model.serialize(), device=trainer.device)
        self._freeze(self.teacher)
        self.teacher_updates += 1

    @torch.no_grad()
    def teacher_estimates(self, trainer, mix: torch.Tensor) -> torch.Tensor:
        """The deep teacher's estimates of ``mix`` ``(B, C, S)`` -> ``(B, n_src, C, S)``."""
        b, c, s = mix.shape
        flat = mix.reshape(b * c, s).to(trainer.device).float()
        X = trainer.stft(flat)
        masks = self.teacher(X.abs())["mask"]
        est = trainer.stft.apply_masks(masks, X, length=s)  # (B*C, n, S)
        n = est.shape[1]
        return est.reshape(b, c, n, s).transpose(1, 2)

    # ------------------------------------------------------------------ hooks
    def before_step(self, trainer, batch: dict) -> dict:
        mix = torch.as_tensor(batch["mix"])
        if mix.dim() == 2:
            mix = mix.unsqueeze(1)
        if self.teacher is not None:
            estimates = self.teacher_estimates(trainer, mix)
        else:
            estimates = batch.get("sources")
            if estimates is None or estimates.shape[1] == 0:
                from ..utils.errors import UserError

                raise UserError("RemixIT without a deep teacher needs the teacher's estimates as "
                                "the batch's sources (train on an organize output with "
                                "BootstrappedDataset.balance = 0), or set "
                                "RemixIT.teacher_checkpoint / teacher_start_epoch = 0")
            if estimates.dim() == 3:
                estimates = estimates.unsqueeze(2)
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + int(trainer.iteration))
        new_mix, sources = remix_batch(estimates, g)
        trainer.iteration_scalars["remixit_deep_teacher"] = float(self.teacher is not None)
        return {**batch, "mix": new_mix, "sources": sources}

    @torch.no_grad()
    def after_iteration(self, trainer, losses: dict) -> None:
        if self.teacher is None or self.update != "ema":
            return
        d = self.ema_decay
        for t, s in zip(self.teacher.parameters(), trainer.raw_model.parameters()):
            t.mul_(d).add_(s.detach(), alpha=1.0 - d)
        for t, s in zip(self.teacher.buffers(), trainer.raw_model.buffers()):
            t.copy_(s)

    def after_validation(self, trainer, val: dict) -> None:
        epoch = int(trainer.engine.state.epoch)
        if self.teacher is None:
            if self.teacher_start_epoch is not None and epoch >= self.teacher_start_epoch:
                self._copy_student(trainer)
                log.info("RemixIT: the student becomes the teacher after epoch %d", epoch)
        elif self.update == "replace" and epoch % self.replace_every == 0:
            self.teacher.load_state_dict(trainer.raw_model.state_dict())
            self.teacher_updates += 1

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict:
        return {"teacher": None if self.teacher is None else self.teacher.serialize(),
                "teacher_updates": self.teacher_updates}

    def load_state_dict(self, state: dict) -> None:
        from ..models.base import load_model

        self.teacher_updates = int(state.get("teacher_updates", 0))
        if state.get("teacher") is not None:
            self.teacher = load_model(state["teacher"], device=self._device)
            self._freeze(self.teacher)
