"""The training loop: an ignite ``Engine`` driving one training step, validation at every epoch
end, atomic checkpoints, TensorBoard summaries and resume.

The trainer is gin-free: the ``train`` command (``bootsep.config.experiment``) builds its parts
from the configuration and hands them over.

Data flow of one step (everything after the DataLoader runs on ``device``):

    batch['mix']      (batch, channels, samples)        -> channels folded into the batch
    batch['sources']  (batch, n_src, channels, samples)
    X = stft(mix)     (B, time, freq) complex; S = stft(sources) (B, n_src, time, freq)
    targets = {mix_magnitude, source_magnitudes (PSA/MSA), assignments (IBM), weights, source_audio}
    output  = model(|X|)  -> {'embedding', 'mask', 'estimates'}
    losses  = loss_fn(output, targets)
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from pathlib import Path

import numpy as np
import torch
from ignite.engine import Engine, Events

from ..dsp import STFT
from ..dsp.features import ideal_binary_mask, magnitude_weights
from ..utils.errors import UserError
from .checkpoint import checkpoint_path, rng_state, save_checkpoint, set_rng_state
from .handlers import grad_norm

log = logging.getLogger(__name__)


class NonFiniteLossError(UserError, RuntimeError):
    """Raised when the training loss (or a weight) becomes NaN/inf: one ``error:`` line in the
    CLI naming the iteration, the last finite checkpoint and the usual fixes. No checkpoint is
    written from a non-finite state, so the files on disk stay the last finite ones."""


def fold_channels(batch: dict) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``mix (B,C,S)``, ``sources (B,n,C,S)`` -> ``(B*C, S)``, ``(B*C, n, S)``."""
    mix = batch["mix"]
    if mix.dim() == 2:
        mix = mix.unsqueeze(1)
    b, c, s = mix.shape
    mix = mix.reshape(b * c, s)
    sources = batch.get("sources")
    if sources is not None:
        if sources.dim() == 3:
            sources = sources.unsqueeze(2)
        n = sources.shape[1]
        sources = sources.permute(0, 2, 1, 3).reshape(b * c, n, s)
    return mix, sources


def make_targets(stft: STFT, mix: torch.Tensor, sources: torch.Tensor, target_type: str = "psa",
                 silence_db: float = -40.0, confidence_power: float | None = None) -> dict:
    """STFT-domain training targets, computed on the device of ``mix``.

    Returns a dict with ``mix_spec`` (B,T,F) complex, ``mix_magnitude`` (B,T,F),
    ``source_magnitudes`` (B,n,T,F) (PSA or MSA target), ``assignments`` (B,n,T,F) IBM with
    silent bins zeroed, ``weights`` (B,T,F) magnitude weights, ``source_audio`` (B,n,S).
    With ``confidence_power`` (e.g. 1.0) the weights are multiplied by the per-bin dominance of
    the strongest source to that power (:func:`bootsep.losses.targets.confidence_weights`):
    on bootstrapped data, the teacher's confidence in each bin; that dominance to the power is
    also returned alone as ``confidence`` (B,T,F), for mask losses whose spec maps their
    ``weights`` to it.
    """
    from ..losses.targets import confidence_weights, dominance, msa_target, psa_target

    X = stft(mix)
    S = stft(sources)
    mix_mag = X.abs()
    src_mag = S.abs()
    if target_type == "psa":
        target = psa_target(X, S)
    elif target_type == "msa":
        target = msa_target(mix_mag, src_mag)
    else:
        raise ValueError(f"target_type must be 'psa' or 'msa', got {target_type!r}")
    extra = ({} if confidence_power is None
             else {"confidence": dominance(src_mag) ** float(confidence_power)})
    return {
        **extra,
        "mix_spec": X,
        "mix_magnitude": mix_mag,
        "source_magnitudes": target,
        "assignments": ideal_binary_mask(src_mag, mix_mag, silence_db),
        "weights": (magnitude_weights(mix_mag) if confidence_power is None
                    else confidence_weights(mix_mag, src_mag, confidence_power)),
        "source_audio": sources,
        "mix_audio": mix,
    }


def pit_si_sdr(est: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Mean SI-SDR (dB) per example under the best source permutation; ``(B, n, S)`` -> ``(B,)``.

    A silent reference (zero-mean energy <= 1e-8) has no SI-SDR: it is left out of its
    example's mean (which is NaN when every reference is silent) instead of counting as the
    ~-80 dB the stabilised formula would give it. The permutation is
    :func:`~bootsep.metrics.permutation.best_permutation`'s (silent references count 0 there)."""
    from ..metrics.bsseval import pairwise_si_sdr
    from ..metrics.permutation import best_permutation

    centred = ref - ref.mean(dim=-1, keepdim=True)
    silent = centred.square().sum(dim=-1) <= 1e-8  # (B, n)
    pairwise = pairwise_si_sdr(est, ref).masked_fill(silent.unsqueeze(1), float("nan"))
    perm = best_permutation(pairwise, maximize=True)  # (B, n)
    return pairwise.gather(1, perm.unsqueeze(1)).squeeze(1).nanmean(dim=1)


class Trainer:
    """Train ``model`` with ``loss_fn`` on ``train_loader``, validating every epoch.

    Args:
        model: a :class:`bootsep.models.base.SeparationModel`.
        loss_fn: a :class:`bootsep.losses.combine.LossDict` (mutable ``weights``).
        optimizer: a torch optimizer over ``model.parameters()``.
        train_loader: yields dicts with 'mix' (B,C,S) and 'sources' (B,n,C,S).
        output_folder: run folder; checkpoints go to ``<run>/checkpoints``.
        stft, sample_rate, source_labels: recorded in checkpoints for inference.
        val_loader: optional, same item format; ``val_loss_fn`` defaults to ``loss_fn``.
        scheduler: optional LR scheduler, stepped by the ``lr_scheduler`` handler.
        handlers: handler objects (``bootsep.engine.handlers``).
        num_epochs: total epochs (a resumed run continues to this number).
        epoch_length: iterations per epoch (required when the loader's sampler is endless).
        target_type: 'psa' (default) or 'msa'.
        confidence_power: weight the clustering losses' T-F bins by the targets' dominance to
            this power (None, the default: magnitude weights only); see :func:`make_targets`.
        device: torch device.
        amp: None, 'bf16' or 'fp16' autocast (CUDA only; ignored with a warning on CPU).
        gin_config: operative config text stored in checkpoints.
        save_by_epoch: also keep ``checkpoints/epoch<N>.pth`` every N epochs (None = off).
        tensorboard: write TensorBoard summaries under ``<run>/logs/tensorboard``.
        is_main: only the main process (rank 0) validates and writes files.
        dist_ctx: the :class:`~bootsep.engine.distributed.DistContext` when running under DDP.
        progress: show a tqdm progress bar.
        figure: optional ``(mix_magnitude (time, freq), masks (n_src, time, freq) or None,
            source_labels, sample_rate, hop_length) -> matplotlib Figure`` for the TensorBoard
            summary of each validation (the ``train`` command hands in
            :func:`bootsep.report.figures.mask_figure`); None = no figure.
    """

    def __init__(self, model, loss_fn, optimizer, train_loader, output_folder, *, stft: STFT,
                 sample_rate: int, source_labels, val_loader=None, val_loss_fn=None,
                 scheduler=None, handlers=(), num_epochs: int = 1, epoch_length: int | None = None,
                 target_type: str = "psa", confidence_power: float | None = None,
                 device="cpu", amp: str | None = None, gin_config: str = "", save_by_epoch: int | None = None, tensorboard: bool = True,
                 is_main: bool = True, progress: bool = True, log_every: int = 10,
                 unwrapped_model=None, dist_ctx=None, figure=None):
        self.model = model
        self.raw_model = unwrapped_model or model
        self.loss_fn = loss_fn
        self.val_loss_fn = val_loss_fn or loss_fn
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.train_loader = train_loader
        self.val_loader = val_loader
        self.output_folder = Path(output_folder)
        self.stft = stft
        self.sample_rate = int(sample_rate)
        self.source_labels = list(source_labels)
        self.num_epochs = int(num_epochs)
        self.epoch_length = int(epoch_length or len(train_loader))
        self.target_type = target_type
        self.confidence_power = confidence_power
        self.device = torch.device(device)
        self.gin_config = gin_config
        self.save_by_epoch = save_by_epoch
        self.is_main = is_main
        self.progress = progress
        self.log_every = max(1, int(log_every))
        self.dist_ctx = dist_ctx if dist_ctx is not None and dist_ctx.distributed else None
        self.figure = figure
        self.handlers: list = []
        for h in handlers:
            h.attach(self)
        self.history: list[dict] = []
        self.best_val_loss = float("inf")
        self.iteration_scalars: dict = {}
        self.last_train_loss = None
        self._stop = False
        self.amp_dtype = None
        if amp:
            if self.device.type != "cuda":
                log.warning("mixed precision %r requested but the device is %s: running in float32",
                            amp, self.device)
            else:
                self.amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[amp]
        self.scaler = torch.amp.GradScaler("cuda") if self.amp_dtype == torch.float16 else None
        self.needs_audio = any(type(x).__name__ == "SISDRLoss"
                               for lf in (self.loss_fn, self.val_loss_fn)
                               for x in getattr(lf, "losses", {}).values())
        self.writer = None
        if tensorboard and is_main:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(log_dir=str(self.output_folder / "logs" / "tensorboard"))
        self.engine = Engine(self._train_step)
        self._epoch_losses: dict[str, list[float]] = {}
        self._setup_events()

    # ------------------------------------------------------------------ steps
    @property
    def iteration(self) -> int:
        return self.engine.state.iteration

    def request_stop(self) -> None:
        self._stop = True

    def _autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def forward(self, batch: dict) -> tuple[dict, dict]:
        mix, sources = fold_channels(batch)
        mix = mix.to(self.device, non_blocking=True).float()
        sources = sources.to(self.device, non_blocking=True).float()
        targets = make_targets(self.stft, mix, sources, self.target_type,
                               confidence_power=self.confidence_power)
        with self._autocast():
            output = self.model(targets["mix_magnitude"])
        output = {k: v.float() if torch.is_tensor(v) and v.is_floating_point() else v
                  for k, v in output.items()}
        if self.needs_audio and "mask" in output:
            output["audio"] = self.stft.apply_masks(output["mask"], targets["mix_spec"],
                                                    length=mix.shape[-1])
        return output, targets

    def _train_step(self, engine, batch) -> dict:
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        self.iteration_scalars = {}
        for h in self.handlers:
            if hasattr(h, "before_step"):
                batch = h.before_step(self, batch)
        output, targets = self.forward(batch)
        losses = self.loss_fn(output, targets)
        loss = losses["loss"]
        if not torch.isfinite(loss):
            shown = ", ".join(f"{k} {float(torch.as_tensor(v).detach()):.4g}"
                              for k, v in losses.items())
            raise self._non_finite(f"non-finite training loss at iteration "
                                   f"{engine.state.iteration} ({shown})")
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
        else:
            loss.backward()
        self.iteration_scalars["grad_norm"] = grad_norm(self.model.parameters())
        for h in self.handlers:
            if hasattr(h, "after_backward"):
                h.after_backward(self)
        try:
            if self.scaler is not None:
                self.scaler.step(self.optimizer)
                self.scaler.update()
            else:
                self.optimizer.step()
        except RuntimeError as e:  # e.g. a learning rate beyond float range
            if "overflow" not in str(e):
                raise
            raise self._non_finite(f"the optimizer step overflowed at iteration "
                                   f"{engine.state.iteration} ({e})") from None
        out = {k: float(v.detach()) for k, v in losses.items()}
        for h in self.handlers:
            if hasattr(h, "after_iteration"):
                h.after_iteration(self, out)
        return out

    @torch.no_grad()
    def validate(self) -> dict:
        """Mean validation losses (and permutation-invariant SI-SDR when the model has masks)."""
        if self.val_loader is None:
            return {}
        model, self.model = self.model, self.raw_model  # no DDP collectives on rank 0 alone
        model.eval()
        sums: dict[str, float] = {}
        count = 0
        first = None
        sisdr = []  # per example; NaN (all references silent) is left out of the mean
        for batch in self.val_loader:
            output, targets = self.forward(batch)
            losses = {k: float(v) for k, v in self.val_loss_fn(output, targets).items()}
            if "mask" in output:
                audio = self.stft.apply_masks(output["mask"], targets["mix_spec"],
                                              length=targets["mix_audio"].shape[-1])
                sisdr.append(pit_si_sdr(audio, targets["source_audio"]).float().cpu())
                if first is None:
                    first = (targets, output, audio)
            elif first is None:
                first = (targets, output, None)
            for k, v in losses.items():
                sums[k] = sums.get(k, 0.0) + v
            count += 1
        self.model = model
        self.model.train()
        val = {k: v / max(count, 1) for k, v in sums.items()}
        if sisdr:
            val["SI-SDR"] = float(torch.cat(sisdr).nanmean())
        if self.writer is not None and first is not None:
            self._write_summaries(*first)
        return val

    # ------------------------------------------------------------------ events
    def _setup_events(self) -> None:
        eng = self.engine

        @eng.on(Events.ITERATION_COMPLETED)
        def _on_iteration(engine):
            out = engine.state.output
            for k, v in out.items():
                self._epoch_losses.setdefault(k, []).append(v)
            self.last_train_loss = out.get("loss")
            if self.writer is not None and engine.state.iteration % self.log_every == 0:
                it = engine.state.iteration
                for k, v in out.items():
                    self.writer.add_scalar(f"iteration/{k}", v, it)
                for k, v in self.iteration_scalars.items():
                    self.writer.add_scalar(f"iteration/{k}", v, it)
                self.writer.add_scalar("iteration/lr", self.optimizer.param_groups[0]["lr"], it)
            if self._stop:
                engine.terminate()

        @eng.on(Events.EPOCH_COMPLETED)
        def _on_epoch(engine):
            self._end_epoch(engine)

        if self.progress and self.is_main:
            from ignite.handlers import ProgressBar

            ProgressBar(persist=False).attach(eng, output_transform=lambda o: {"loss": o["loss"]})

    def _end_epoch(self, engine) -> None:
        t0 = time.time()
        self._check_finite_weights()  # never a NaN checkpoint over a finite one (every rank)
        train = {k: float(np.mean(v)) for k, v in self._epoch_losses.items()}
        self._epoch_losses = {}
        if self.dist_ctx is not None:
            from .distributed import all_reduce_mean

            train = all_reduce_mean(train, self.dist_ctx)
        val = self.validate() if self.is_main else {}
        if self.dist_ctx is not None:
            from .distributed import broadcast_object

            val = broadcast_object(val, self.dist_ctx)
        for h in self.handlers:
            if hasattr(h, "after_validation"):
                h.after_validation(self, val)
        epoch = engine.state.epoch
        record = {"epoch": epoch, "iteration": engine.state.iteration,
                  "lr": self.optimizer.param_groups[0]["lr"],
                  "train": train, "validation": val, "time": time.time()}
        self.history.append(record)
        val_loss = val.get("loss", train.get("loss", math.inf))
        is_best = val_loss < self.best_val_loss
        if is_best:
            self.best_val_loss = val_loss
        if self.is_main:
            self.save("latest")
            if is_best:
                self.save("best")
            if self.save_by_epoch and epoch % self.save_by_epoch == 0:
                self.save(f"epoch{epoch}")
            if self.writer is not None:
                for k, v in train.items():
                    self.writer.add_scalar(f"train/{k}", v, epoch)
                for k, v in val.items():
                    self.writer.add_scalar(f"validation/{k}", v, epoch)
                self.writer.add_scalar("train/lr", record["lr"], epoch)
                self.writer.flush()
        fmt = lambda d: ", ".join(f"{k} {v:.4g}" for k, v in d.items())  # noqa: E731
        log.info("epoch %d/%d  train: %s | validation: %s%s  (%.1fs validation)", epoch,
                 self.num_epochs, fmt(train), fmt(val) or "-", "  [best]" if is_best else "",
                 time.time() - t0)
        if self._stop:
            engine.terminate()

    def _non_finite(self, what: str) -> NonFiniteLossError:
        """The error for a NaN/inf: where it happened, the last finite checkpoint, the fixes."""
        latest = checkpoint_path(self.output_folder, "latest")
        if self.history and latest.is_file():
            last = f"{latest} (epoch {self.history[-1]['epoch']}) is the last finite checkpoint"
        else:
            last = f"no checkpoint was written to {latest.parent}"
        then = (f"then train again into a new -o folder with -b \"train.init_from_checkpoint = "
                f"'{latest}'\" (a resume keeps the checkpoint's learning rate)"
                if self.history and latest.is_file() else "then run the command again")
        return NonFiniteLossError(
            f"{what}; nothing was saved, {last}. Usual fixes: lower the learning rate (e.g. "
            f"-b 'torch.optim.Adam.lr = ...'), clip gradients (train.handlers with 'clip' or "
            f"'autoclip'), check the training data for silent or non-finite audio; {then}")

    def _check_finite_weights(self) -> None:
        bad = [n for n, p in self.raw_model.named_parameters() if not torch.isfinite(p).all()]
        if bad:
            raise self._non_finite(f"non-finite model weights ({', '.join(bad[:3])}) after "
                                   f"iteration {self.engine.state.iteration}")

    def _write_summaries(self, targets, output, audio) -> None:
        epoch = self.engine.state.epoch
        try:
            if self.figure is not None:
                fig = self.figure(targets["mix_magnitude"][0].cpu(),
                                  None if "mask" not in output else output["mask"][0].cpu(),
                                  self.source_labels, self.sample_rate, self.stft.hop_length)
                self.writer.add_figure("validation/masks", fig, epoch)
        except Exception as e:  # summaries must never kill training
            log.debug("could not write mask figure: %s", e)
        sr = self.sample_rate
        n = min(sr * 10, targets["mix_audio"].shape[-1])
        self.writer.add_audio("validation/mixture", targets["mix_audio"][0, :n].cpu(), epoch, sr)
        if audio is not None:
            for i, label in enumerate(self.source_labels[: audio.shape[1]]):
                clip = audio[0, i, :n].cpu()
                clip = clip / max(1.0, float(clip.abs().max()))
                self.writer.add_audio(f"validation/estimate_{label}", clip, epoch, sr)

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict:
        return {
            "model": self.raw_model.serialize(),
            "stft": self.stft.params.to_dict(),
            "sample_rate": self.sample_rate,
            "source_labels": self.source_labels,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
            "scaler": None if self.scaler is None else self.scaler.state_dict(),
            "engine": {"epoch": self.engine.state.epoch, "iteration": self.engine.state.iteration,
                       "epoch_length": self.epoch_length},
            "epoch": self.engine.state.epoch,
            "iteration": self.engine.state.iteration,
            "num_epochs": self.num_epochs,
            "rng": rng_state(),
            "history": self.history,
            "best_val_loss": self.best_val_loss,
            "loss_weights": dict(self.loss_fn.weights),
            "handlers": {h.name: h.state_dict() for h in self.handlers},
            "gin_config": self.gin_config,
            "world_size": 1 if self.dist_ctx is None else self.dist_ctx.world_size,
        }

    def save(self, which: str) -> Path:
        return save_checkpoint(checkpoint_path(self.output_folder, which), self.state_dict())

    def load_state_dict(self, ckpt: dict) -> None:
        """Restore everything needed to continue exactly where ``ckpt`` was written."""
        self.raw_model.load_state_dict(ckpt["model"]["state_dict"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        if self.scheduler is not None and ckpt.get("scheduler") is not None:
            self.scheduler.load_state_dict(ckpt["scheduler"])
        if self.scaler is not None and ckpt.get("scaler") is not None:
            self.scaler.load_state_dict(ckpt["scaler"])
        self.history = list(ckpt.get("history", []))
        self.best_val_loss = ckpt.get("best_val_loss", float("inf"))
        self.loss_fn.weights.update(ckpt.get("loss_weights", {}))
        states = ckpt.get("handlers", {})
        for h in self.handlers:
            if h.name in states:
                h.load_state_dict(states[h.name])
        if "rng" in ckpt:
            set_rng_state(ckpt["rng"])
        eng = ckpt["engine"]
        if eng.get("epoch_length") != self.epoch_length:
            log.warning("epoch_length changed from %s to %s since the checkpoint; continuing "
                        "from epoch %d", eng.get("epoch_length"), self.epoch_length, eng["epoch"])
        self.engine.load_state_dict({"iteration": eng["epoch"] * self.epoch_length,
                                     "epoch_length": self.epoch_length,
                                     "max_epochs": max(self.num_epochs, eng["epoch"])})

    # ------------------------------------------------------------------ run
    def run(self) -> list[dict]:
        """Train until ``num_epochs`` (or early stopping); returns the epoch history."""
        done = self.engine.state.epoch if self.engine.state.max_epochs else 0
        if done >= self.num_epochs:
            log.info("training already complete (%d/%d epochs); nothing to do", done, self.num_epochs)
            return self.history
        sampler = getattr(self.train_loader, "sampler", None)
        if hasattr(sampler, "set_position"):
            per_step = (self.train_loader.batch_size or 1) * getattr(sampler, "num_replicas", 1)
            sampler.set_position(self.engine.state.iteration * per_step)
        self.engine.run(self.train_loader, max_epochs=self.num_epochs, epoch_length=self.epoch_length)
        if self.writer is not None:
            self.writer.close()
        return self.history
