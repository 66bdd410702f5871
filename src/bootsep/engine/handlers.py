"""Training handlers, selected by name in gin (``train.handlers = ['autoclip', ...]``, names
in :data:`HANDLERS`) or bound as objects (``train.handlers = [@AutoClip(), ...]``).

Each handler is a plain object with ``attach(trainer)`` and, when it carries state that a resumed
run needs, ``state_dict()`` / ``load_state_dict()`` (saved in every checkpoint).

Hooks a handler may implement (called by :class:`~bootsep.engine.trainer.Trainer`):
    before_step(trainer, batch) -> batch   may transform the training batch (e.g. a curriculum)
    after_backward(trainer)          between ``backward()`` and ``optimizer.step()``
    after_iteration(trainer, losses) with the float losses of the step
    after_validation(trainer, val)   with the epoch's validation losses (dict of floats)
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from ..utils.registry import Registry

log = logging.getLogger(__name__)


def grad_norm(parameters) -> float:
    """Total L2 norm of the gradients of ``parameters`` (0 if none)."""
    norms = [p.grad.detach().norm(2) for p in parameters if p.grad is not None]
    if not norms:
        return 0.0
    return float(torch.linalg.vector_norm(torch.stack(norms), 2))


class Handler:
    name = "handler"

    def attach(self, trainer) -> None:
        trainer.handlers.append(self)

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class ClipGradient(Handler):
    """Clip the total gradient norm to a fixed ``clip_value`` (default 100)."""

    name = "clip"

    def __init__(self, clip_value: float = 100.0):
        self.clip_value = float(clip_value)

    def after_backward(self, trainer) -> None:
        torch.nn.utils.clip_grad_norm_(trainer.model.parameters(), self.clip_value)
        trainer.iteration_scalars["grad_clip"] = self.clip_value


class AutoClip(Handler):
    """AutoClip (Seetharaman et al. 2020): clip to the ``clip_percentile``-th percentile of all
    gradient norms seen so far (the current one included). Default percentile 10.

    The history is a float32 array (one entry per step), saved in checkpoints so that a resumed
    run clips exactly as an uninterrupted one would.
    """

    name = "autoclip"

    def __init__(self, clip_percentile: float = 10.0):
        if not 0 <= clip_percentile <= 100:
            raise ValueError(f"clip_percentile must be in [0, 100], got {clip_percentile}")
        self.clip_percentile = float(clip_percentile)
        self.history: list[float] = []

    def after_backward(self, trainer) -> None:
        norm = grad_norm(trainer.model.parameters())
        if np.isfinite(norm):
            self.history.append(norm)
        if not self.history:
            return
        clip = float(np.percentile(self.history, self.clip_percentile))
        torch.nn.utils.clip_grad_norm_(trainer.model.parameters(), clip)
        trainer.iteration_scalars["grad_clip"] = clip

    def state_dict(self) -> dict:
        return {"history": np.asarray(self.history, dtype=np.float32)}

    def load_state_dict(self, state: dict) -> None:
        self.history = [float(x) for x in state.get("history", [])]


class AutoBalanceLoss(Handler):
    """Turn the configured loss weights into target *ratios* of loss magnitudes.

    Every ``update_frequency`` iterations the current loss values are recorded; the weights
    become ``x_i ∝ r_i / L_i`` (normalised to sum 1), where ``r_i`` is the configured weight and
    ``L_i`` the ``ref_percentile``-th percentile of loss i's history, so that
    ``x_i L_i / r_i`` is equal across losses. Losses with weight 0 stay monitored only.
    """

    name = "auto_balance"

    def __init__(self, ref_percentile: float = 100.0, update_frequency: int = 1):
        self.ref_percentile = float(ref_percentile)
        self.update_frequency = max(1, int(update_frequency))
        self.history: dict[str, list[float]] = {}
        self.ratios: dict[str, float] | None = None

    def attach(self, trainer) -> None:
        super().attach(trainer)
        if self.ratios is None:
            self.ratios = {k: float(w) for k, w in trainer.loss_fn.weights.items() if w != 0}

    def after_iteration(self, trainer, losses: dict) -> None:
        if trainer.iteration % self.update_frequency:
            return
        for name in self.ratios:
            if name in losses and np.isfinite(losses[name]):
                self.history.setdefault(name, []).append(float(losses[name]))
        if len(self.history) < len(self.ratios) or len(self.ratios) < 2:
            return
        refs = {k: float(np.percentile(v, self.ref_percentile)) for k, v in self.history.items()}
        raw = {k: self.ratios[k] / max(refs[k], 1e-12) for k in self.ratios}
        total = sum(raw.values())
        for k, v in raw.items():
            trainer.loss_fn.weights[k] = v / total
            trainer.iteration_scalars[f"weight/{k}"] = v / total

    def state_dict(self) -> dict:
        return {"history": self.history, "ratios": self.ratios}

    def load_state_dict(self, state: dict) -> None:
        self.history = {k: list(v) for k, v in state.get("history", {}).items()}
        self.ratios = state.get("ratios", self.ratios)


class EarlyStopping(Handler):
    """Stop when the validation loss has not improved for ``patience`` epochs (default 10)."""

    name = "early_stopping"

    def __init__(self, patience: int = 10, min_delta: float = 0.0):
        self.patience, self.min_delta = int(patience), float(min_delta)
        self.best = float("inf")
        self.bad_epochs = 0

    def after_validation(self, trainer, val: dict) -> None:
        loss = val.get("loss")
        if loss is None:
            return
        if loss < self.best - self.min_delta:
            self.best, self.bad_epochs = loss, 0
        else:
            self.bad_epochs += 1
            if self.bad_epochs >= self.patience:
                log.info("early stopping: no improvement for %d epochs", self.patience)
                trainer.request_stop()

    def state_dict(self) -> dict:
        return {"best": self.best, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state: dict) -> None:
        self.best = state.get("best", self.best)
        self.bad_epochs = state.get("bad_epochs", 0)


class LRScheduler(Handler):
    """Step the trainer's scheduler once per epoch (ReduceLROnPlateau gets the validation loss)."""

    name = "lr_scheduler"

    def after_validation(self, trainer, val: dict) -> None:
        sched = trainer.scheduler
        if sched is None:
            return
        if isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau):
            loss = val.get("loss", trainer.last_train_loss)
            if loss is not None and np.isfinite(loss):
                sched.step(loss)
        else:
            sched.step()


#: Every training handler by the name ``train.handlers`` uses (= its class's ``name``, the key
#: of its state in checkpoints): the one table, registered with gin under the class names
#: (``AutoClip.clip_percentile = 10``) by ``bootsep.config.registry``. Paths are imported on
#: first use (the curriculum and RemixIT modules import this one).
HANDLERS = Registry("training handler", {
    "autoclip": "bootsep.engine.handlers.AutoClip",
    "clip": "bootsep.engine.handlers.ClipGradient",
    "auto_balance": "bootsep.engine.handlers.AutoBalanceLoss",
    "early_stopping": "bootsep.engine.handlers.EarlyStopping",
    "lr_scheduler": "bootsep.engine.handlers.LRScheduler",
    "curriculum": "bootsep.engine.curriculum.Curriculum",
    "remixit": "bootsep.engine.remixit.RemixIT",
})
