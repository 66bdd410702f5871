"""The gin-configurable experiment commands: prepare, cache, train, evaluate, analyze, debug.

This is the edge where configuration meets the plain building blocks: everything here reads gin
bindings and hands explicit arguments to ``bootsep.engine``, ``bootsep.separation``,
``bootsep.metrics`` and ``bootsep.report``.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import dataclasses
import logging
import os
import random
import re
import typing
from pathlib import Path

import gin
import numpy as np
import torch

from ..bootstrap.segments import safe_name
from ..utils.errors import UserError
from ..utils.io import atomic_write_audio, atomic_write_json
from .paths import output_folder as _output_folder

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------- helpers
def resolve_device(device: str | None = "auto") -> torch.device:
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        log.warning("device %r requested but CUDA is not available: using the CPU", device)
        return torch.device("cpu")
    try:
        return torch.device(device)
    except (RuntimeError, TypeError):
        raise UserError(f"device {device!r} is not a torch device: use 'auto', 'cpu', 'cuda' or "
                        f"'cuda:N'") from None


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def run_dir(folder: str | None = None) -> Path:
    """The current run folder, or a UserError telling how to set it."""
    folder = folder or _output_folder()
    if folder is None:
        raise UserError("no run folder: pass -o RUN_FOLDER, or run `instantiate` and use the "
                        "compiled <run>/config.gin (it binds output_folder._output_folder)")
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    return path


@gin.configurable
def build_dataset(dataset=None):
    """Holds a dataset per scope: ``train/build_dataset.dataset = @train/StemFolderDataset()``."""
    return dataset


def scoped_dataset(scope: str, required: bool = True):
    with gin.config_scope(scope):
        ds = build_dataset()
    if ds is None and required:
        raise UserError(f"no {scope} dataset configured: bind "
                        f"{scope}/build_dataset.dataset = @{scope}/StemFolderDataset() (see musdb/demo/data.gin)")
    return ds


def _instantiate(obj, **kwargs):
    """Accept either an instance or a (gin-configured) class/factory."""
    if isinstance(obj, torch.nn.Module) or not callable(obj):
        return obj
    return obj(**kwargs)


# ---------------------------------------------------------------------------- prepare / cache
@gin.configurable
def prepare(task=gin.REQUIRED):
    """Run a data-preparation task, e.g. ``prepare.task = @generate_demo_dataset``."""
    return task()


@gin.configurable
def cache(scopes=("train", "val", "test"), num_workers: int = 0):
    """Decode and resample the audio of each scoped dataset into its AudioCache."""
    done = {}
    for scope in scopes:
        ds = scoped_dataset(scope, required=False)
        if ds is None:
            continue
        c = getattr(ds, "cache", None)
        if c is None:
            log.info("%s dataset has no cache configured (set %s/StemFolderDataset.cache); skipping",
                     scope, scope)
            continue
        done[scope] = c.populate(ds)
        log.info("cached %s audio in %s", scope, c.folder)
    return done


# ---------------------------------------------------------------------------- train
# ``train``'s gin keys (``train.num_epochs``, ...) stay flat, as every config writes them; inside,
# they are grouped by what they decide, one small frozen dataclass per group, so a reader (and a
# new key) finds its place: every ``train`` parameter belongs to exactly one group (tested).
@dataclasses.dataclass(frozen=True)
class TrainTask:
    """What is learnt, from what signal.

    ``model``: a gin-configured class (``@Chimera``) or a built model, built after seeding with
    ``num_features`` from the STFT. ``loss_dictionary`` / ``val_loss_dictionary``: loss specs
    (:class:`~bootsep.losses.combine.LossDict`; validation defaults to the training one).
    ``stft``: the STFT (default None: the config's ``STFT.*`` bindings). ``sample_rate`` (Hz,
    recorded in the checkpoint) and ``source_labels`` default to the train dataset's; bound
    values are checked against them (:mod:`bootsep.config.contract`). ``target_type``: 'psa'
    (default) or 'msa'. ``confidence_power`` (e.g. 1.0) weights the deep-clustering losses' T-F
    bins by the bootstrapped targets' per-bin confidence (the teacher's mask margin,
    :func:`bootsep.losses.targets.confidence_weights`); None (default) = off.
    """

    model: object
    loss_dictionary: object
    val_loss_dictionary: object = None
    stft: object = None
    sample_rate: int | None = None
    source_labels: object = None
    target_type: str = "psa"
    confidence_power: float | None = None


@dataclasses.dataclass(frozen=True)
class Optimisation:
    """How the weights are updated.

    ``optimizer``: a class taking the parameters (``@torch.optim.Adam``); ``scheduler``: a class
    taking the optimizer, or None. ``num_epochs``: total (a resumed run continues to it);
    ``epoch_length``: iterations per epoch (None: one pass over the training set).
    ``handlers``: names in :data:`bootsep.engine.handlers.HANDLERS` (``'autoclip'``, ``'clip'``,
    ``'auto_balance'``, ``'early_stopping'``, ``'lr_scheduler'``, ``'curriculum'``,
    ``'remixit'``), configured through their own bindings (``AutoClip.clip_percentile = 10``),
    or handlers bound as objects (``@AutoClip()``); see :func:`build_handler`. ``amp``: None,
    'bf16' or 'fp16' autocast (CUDA only).
    """

    optimizer: object
    scheduler: object = None
    num_epochs: int = 10
    epoch_length: int | None = None
    handlers: tuple = ("autoclip", "lr_scheduler")
    amp: str | None = None


@dataclasses.dataclass(frozen=True)
class DataLoading:
    """What the training and validation loaders read and how.

    ``train_dataset`` / ``val_dataset``: default None, the ``train`` / ``val`` scoped datasets
    (``train/build_dataset.dataset = ...``; validation is optional). ``batch_size``: items per
    step over all DDP ranks; ``val_batch_size`` (1); ``num_workers``: loader processes (at most
    the CPU count; validation uses at most 1).
    """

    train_dataset: object = None
    val_dataset: object = None
    batch_size: int = 8
    val_batch_size: int = 1
    num_workers: int = 2


@dataclasses.dataclass(frozen=True)
class Checkpointing:
    """Where the run lives and how it starts.

    ``output_folder``: the run folder (default: ``-o``). ``resume`` (True): continue from
    ``checkpoints/latest.pth`` when it exists. A fresh start into a folder that holds
    checkpoints is refused unless ``force`` (the CLI's ``--force``), which moves them to
    ``checkpoints/previous/<n>/`` first. ``init_from_checkpoint``: a checkpoint whose weights a
    fresh start loads (lineage.json records it). ``save_by_epoch``: also keep
    ``checkpoints/epoch<N>.pth`` every N epochs (None = off).
    """

    output_folder: str | None = None
    resume: bool = True
    force: bool = False
    init_from_checkpoint: str | None = None
    save_by_epoch: int | None = None


@dataclasses.dataclass(frozen=True)
class Runtime:
    """Where and how it runs: ``device`` ('auto', 'cpu', 'cuda[:N]'; DDP sets its own), ``seed``
    (model initialisation, sampling order, workers) and ``progress`` (a progress bar)."""

    device: str = "auto"
    seed: int = 0
    progress: bool = True


@dataclasses.dataclass(frozen=True)
class TrainOptions:
    """``train``'s arguments by group (:class:`TrainTask`, :class:`Optimisation`,
    :class:`DataLoading`, :class:`Checkpointing`, :class:`Runtime`)."""

    task: TrainTask
    optimisation: Optimisation
    data: DataLoading
    checkpoints: Checkpointing
    runtime: Runtime

    @classmethod
    def from_arguments(cls, values: dict) -> TrainOptions:
        """Group ``train``'s arguments (``locals()`` of a call) by field name."""
        groups = {}
        for group in dataclasses.fields(cls):
            kind = _TRAIN_GROUPS[group.name]
            groups[group.name] = kind(**{f.name: values[f.name]
                                         for f in dataclasses.fields(kind)})
        return cls(**groups)


#: group field name -> its dataclass, read off TrainOptions' annotations (not a second table)
_TRAIN_GROUPS = typing.get_type_hints(TrainOptions)


@gin.configurable
def train(*,
          # what is learnt (TrainTask)
          model=gin.REQUIRED, loss_dictionary=gin.REQUIRED, val_loss_dictionary=None,
          stft=None, sample_rate: int | None = None, source_labels=None,
          target_type: str = "psa", confidence_power: float | None = None,
          # how (Optimisation)
          optimizer=gin.REQUIRED, scheduler=None, num_epochs: int = 10,
          epoch_length: int | None = None, handlers=("autoclip", "lr_scheduler"),
          amp: str | None = None,
          # from what (DataLoading)
          train_dataset=None, val_dataset=None, batch_size: int = 8, val_batch_size: int = 1,
          num_workers: int = 2,
          # where (Checkpointing)
          output_folder: str | None = None, resume: bool = True, force: bool = False,
          init_from_checkpoint: str | None = None, save_by_epoch: int | None = None,
          # on what (Runtime)
          device: str = "auto", seed: int = 0, progress: bool = True):
    """Train a model; rerunning the same command resumes from ``checkpoints/latest.pth``.

    The arguments (gin keys ``train.<name>``) are documented by group: what is learnt
    (:class:`TrainTask`: model, losses, STFT, rate, labels, targets), how
    (:class:`Optimisation`: optimizer, scheduler, epochs, handlers, amp), from what
    (:class:`DataLoading`: datasets, batch sizes, workers), where (:class:`Checkpointing`: run
    folder, resume, force, init_from_checkpoint, save_by_epoch) and on what
    (:class:`Runtime`: device, seed, progress bar). Typed arguments are checked first
    (``train.num_epochs = 'two'`` is a UserError). Returns the epoch history.
    """
    _check_train_args(locals())
    return _run_training(TrainOptions.from_arguments(locals()))


def _run_training(opts: TrainOptions) -> list[dict]:
    from ..engine import distributed as dist

    run = run_dir(opts.checkpoints.output_folder)
    if not dist.context().is_main:  # the main rank holds the run's lock for all of them
        return _train_in(run, opts)
    with _run_lock(run, "train", wait=False):
        return _train_in(run, opts)


def _train_in(run: Path, opts: TrainOptions) -> list[dict]:
    """:func:`_run_training`'s body, under the run folder's training lock."""
    from ignite.engine import Events

    from ..engine import distributed as dist
    from ..engine.checkpoint import checkpoint_path, load_checkpoint
    from ..engine.trainer import Trainer
    from ..losses.combine import LossDict
    from ..report.figures import mask_figure
    from . import contract

    task, optim, data, ckpts = opts.task, opts.optimisation, opts.data, opts.checkpoints
    ctx = dist.context()
    dev = resolve_device(opts.runtime.device) if not ctx.distributed else ctx.device
    seed_everything(opts.runtime.seed)
    stft = task.stft or contract.config_stft()
    train_dataset = data.train_dataset if data.train_dataset is not None else scoped_dataset("train")
    val_dataset = data.val_dataset
    if val_dataset is None:
        val_dataset = scoped_dataset("val", required=False)
    # the signal contract: rate and labels from the datasets, num_features from the STFT
    sample_rate, labels = contract.check_train(task.sample_rate, train_dataset, val_dataset,
                                               task.source_labels)
    contract.check_audible(train_dataset, "train")
    latest = checkpoint_path(run, "latest")
    will_resume = bool(ckpts.resume) and latest.is_file()
    old_checkpoints = [] if will_resume else _refuse_fresh_start(run, ckpts.resume, ckpts.force)
    try:
        net = contract.build_model(task.model, stft, sample_rate).to(dev)
    except (TypeError, ValueError) as e:  # a bad model binding: one error line
        raise e if isinstance(e, UserError) else UserError(f"cannot build train.model: {e}") from None
    if ckpts.init_from_checkpoint and not will_resume:
        _init_from_checkpoint(net, ckpts.init_from_checkpoint, run, ctx.is_main)
    ddp_net = dist.wrap_model(net, ctx)
    opt, sched = _build_optimizer(optim, net)
    loss_fn = LossDict(task.loss_dictionary)
    val_loss_fn = LossDict(task.val_loss_dictionary) if task.val_loss_dictionary else None
    loader, val_loader, epoch_length = _build_loaders(data, train_dataset, val_dataset,
                                                      optim.epoch_length, opts.runtime.seed,
                                                      dev, ctx)
    handler_objs = _build_handlers(optim.handlers)
    trainer = Trainer(ddp_net, loss_fn, opt, loader, run, stft=stft, sample_rate=sample_rate,
                      source_labels=labels, val_loader=val_loader, val_loss_fn=val_loss_fn,
                      scheduler=sched, handlers=handler_objs, num_epochs=optim.num_epochs,
                      epoch_length=epoch_length, target_type=task.target_type,
                      confidence_power=task.confidence_power, device=dev, amp=optim.amp,
                      gin_config=gin.operative_config_str(), save_by_epoch=ckpts.save_by_epoch,
                      is_main=ctx.is_main, progress=opts.runtime.progress, unwrapped_model=net,
                      tensorboard=ctx.is_main, dist_ctx=ctx, figure=mask_figure)
    if will_resume:
        ckpt = load_checkpoint(latest, map_location=dev)
        _check_same_model(latest, ckpt, net)
        trainer.load_state_dict(ckpt)
        log.info("resuming from %s (epoch %d of %d)", latest, ckpt["epoch"], optim.num_epochs)
    else:
        if old_checkpoints and ctx.is_main:
            from ..engine.checkpoint import move_checkpoints_aside

            aside = move_checkpoints_aside(run)
            log.warning("--force: moved the previous checkpoints to %s (kept)", aside)
        log.info("no checkpoint to resume in %s: training starts from scratch (epoch 1 of %d)",
                 latest.parent, optim.num_epochs)
    # the run's config is frozen (config.gin) once its first checkpoint is written
    trainer.engine.add_event_handler(Events.EPOCH_COMPLETED, lambda _: config_validated())
    history = trainer.run()
    dist.barrier(ctx)
    return history


def build_handler(spec):
    """One entry of ``train.handlers`` as a handler object: a name in
    :data:`~bootsep.engine.handlers.HANDLERS` is built through gin (so ``AutoClip.*`` bindings
    apply); a handler bound as an object (``@AutoClip()``) or class (``@AutoClip``) is used as
    is or built. Anything else is a UserError listing the names."""
    from ..engine.handlers import HANDLERS, Handler

    if isinstance(spec, Handler):
        return spec
    if isinstance(spec, type) and issubclass(spec, Handler):
        return spec()
    if not isinstance(spec, str):
        raise UserError(f"train.handlers: {spec!r} is not a training handler; use the names "
                        f"{sorted(HANDLERS)} or bound handlers such as @AutoClip()")
    return gin.get_configurable(HANDLERS.lookup(spec, where="train.handlers: "))()


def _build_handlers(specs) -> list:
    """``train.handlers`` built (:func:`build_handler`); a handler named twice is a UserError
    (checkpoints keep one state per handler name)."""
    handlers = [build_handler(h) for h in specs]
    names = [h.name for h in handlers]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise UserError(f"train.handlers = {list(specs)!r}: {twice} more than once; list each "
                        f"handler once (its state is saved in checkpoints under its name)")
    return handlers


def _init_from_checkpoint(net, source: str, run: Path, is_main: bool) -> None:
    """``train.init_from_checkpoint``: load the parent's weights, record lineage.json."""
    from ..engine.checkpoint import load_checkpoint

    parent = load_checkpoint(source)
    _init_weights(net, parent, source)
    if is_main:
        atomic_write_json(run / "lineage.json", {
            "init_from_checkpoint": str(Path(source).resolve()),
            "parent_epoch": parent.get("epoch"), "parent_model": parent["model"]["class"],
            "parent_gin_config": parent.get("gin_config", "")})
    log.info("initialised weights from %s (epoch %s)", source, parent.get("epoch"))


def _build_optimizer(optim: Optimisation, net):
    """The optimizer over ``net``'s parameters and the scheduler (or None); a bad binding
    (``lr = 'fast'``) is one error line."""
    try:
        opt = optim.optimizer(net.parameters())
        sched = optim.scheduler(opt) if optim.scheduler is not None else None
    except (TypeError, ValueError) as e:
        if isinstance(e, UserError) or "No values supplied by Gin" in str(e):
            raise
        names = " / ".join(getattr(x, "__name__", type(x).__name__)
                           for x in (optim.optimizer, optim.scheduler) if x is not None)
        raise UserError(f"cannot build the optimizer/scheduler ({names}): {e}; check their "
                        f"bindings (e.g. torch.optim.Adam.lr = 1e-3)") from None
    return opt, sched


def _build_loaders(data: DataLoading, train_dataset, val_dataset, epoch_length, seed: int,
                   dev: torch.device, ctx):
    """``(train loader, validation loader or None, epoch_length)``: a resumable, seeded sampler
    split over the DDP ranks; ``epoch_length`` None = one pass over the training set."""
    from ..engine import distributed as dist
    from ..engine.samplers import ResumableSampler, seed_worker

    workers = min(int(data.num_workers), os.cpu_count() or 1)
    per_rank_batch = dist.per_rank_batch_size(data.batch_size, ctx)
    sampler = ResumableSampler(len(train_dataset), seed=seed, num_replicas=ctx.world_size,
                               rank=ctx.rank)
    if epoch_length is None:
        epoch_length = len(train_dataset) // (per_rank_batch * ctx.world_size)
    if epoch_length < 1:
        raise UserError(f"the training set has {len(train_dataset)} items, fewer than one batch of "
                        f"{data.batch_size}: lower train.batch_size or raise the dataset's "
                        f"num_items")
    loader = torch.utils.data.DataLoader(
        train_dataset, batch_size=per_rank_batch, sampler=sampler, num_workers=workers,
        pin_memory=dev.type == "cuda", worker_init_fn=seed_worker,
        generator=torch.Generator().manual_seed(seed), persistent_workers=workers > 0)
    val_loader = None
    if val_dataset is not None:
        val_loader = torch.utils.data.DataLoader(val_dataset, batch_size=data.val_batch_size,
                                                 shuffle=False, num_workers=min(workers, 1))
    return loader, val_loader, epoch_length


def _check_same_model(path: Path, ckpt: dict, net) -> None:
    """A resumed run must build the model its checkpoint holds (class and arguments)."""
    saved = ckpt.get("model", {})
    now = {"class": net.class_path(), "args": net.init_args}
    if saved.get("class") != now["class"]:
        raise UserError(f"{path} holds a {saved.get('class')} but the config builds a "
                        f"{now['class']}; train into another -o folder, or use the run's own "
                        f"config ({path.parent.parent / 'config.gin'})")
    shown = _model_arg_diff(saved, net)
    if shown:
        raise UserError(f"{path} was trained with other model arguments ({shown}); resuming "
                        "would not fit them: train into another -o folder, or restore those "
                        "bindings")


def _model_arg_diff(saved: dict, net) -> str:
    """``'hidden_size: 16 -> 8, ...'``: the constructor arguments where ``net`` differs from a
    checkpoint's ``saved`` model (keys an older version lacked are not compared)."""
    old_args, now = saved.get("args", {}) or {}, net.init_args
    diff = {k: (old_args[k], v) for k, v in now.items() if k in old_args and old_args[k] != v}
    return ", ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in list(diff.items())[:4])


def _init_weights(net, parent: dict, source) -> None:
    """``train.init_from_checkpoint``: load ``parent``'s weights into ``net`` (the same
    architecture; other arguments such as dropout may differ), or a UserError naming the
    constructor arguments that differ."""
    saved = parent["model"]
    try:
        res = net.load_state_dict(saved["state_dict"], strict=False)
        bad = res.missing_keys or res.unexpected_keys
    except RuntimeError:  # size mismatch
        bad = True
    if bad:
        shown = _model_arg_diff(saved, net)
        cls = str(saved.get("class", "?")).rpartition(".")[2]
        what = (f"other arguments ({shown})" if shown else
                f"another architecture ({cls}, this config builds {type(net).__name__})")
        raise UserError(f"train.init_from_checkpoint = {source}: its model was built with {what}, "
                        f"so its weights do not fit; bind the same model arguments as that run "
                        f"(its config.gin) or start without init_from_checkpoint")


_TRAIN_MINIMUM = {"batch_size": 1, "val_batch_size": 1, "num_epochs": 0, "epoch_length": 1,
                  "num_workers": 0, "save_by_epoch": 1}


def _check_train_args(values: dict) -> None:
    """Types (from ``train``'s annotations) and ranges of the bound train arguments."""
    from ..utils.argtypes import check_arg_types

    check_arg_types(train, values, "train")
    for key, low in _TRAIN_MINIMUM.items():
        v = values.get(key)
        if v is not None and v < low:
            raise UserError(f"train.{key} = {v!r}: must be an integer >= {low}")
    for key, allowed in (("target_type", ("psa", "msa")), ("amp", (None, "bf16", "fp16"))):
        if values.get(key) not in allowed:
            raise UserError(f"train.{key} = {values.get(key)!r}: must be one of {allowed}")


def _refuse_fresh_start(run: Path, resume: bool, force: bool) -> list:
    """Checkpoints a fresh start would replace; a UserError unless ``force``."""
    from ..engine.checkpoint import existing_checkpoints

    old = existing_checkpoints(run)
    if old and not force:
        why = ("train.resume = False" if not resume else
               "there is no checkpoints/latest.pth to resume from")
        names = ", ".join(p.name for p in old[:4])
        raise UserError(f"{run / 'checkpoints'} already holds {names} and {why}: a fresh "
                        f"training would replace them. Resume instead (train.resume = True, with "
                        f"latest.pth), train into another -o folder, or pass --force to move them "
                        f"to checkpoints/previous/ and start over")
    return old


#: Called once a command has validated its configuration (built what it needs from it); the CLI
#: registers a callback here that writes ``<run>/config.gin``. See :func:`config_validated`.
_on_config_validated: list = []


def config_validated() -> None:
    """Run (and clear) the callbacks registered in :data:`_on_config_validated`."""
    while _on_config_validated:
        _on_config_validated.pop(0)()


# ---------------------------------------------------------------------------- separators
@gin.configurable
def deep_separator(checkpoint: str = "best", kind: str = "auto", output_folder: str | None = None,
                   device: str = "auto", **kwargs):
    """Load a trained model as a separator. ``checkpoint``: 'best', 'latest' or a path."""
    from ..engine.checkpoint import checkpoint_path, load_checkpoint
    from ..separation.deep import load_separator

    if checkpoint in ("best", "latest") or re.fullmatch(r"epoch\d+", str(checkpoint)):
        path = checkpoint_path(run_dir(output_folder), checkpoint)
    else:
        path = Path(checkpoint)
    ckpt = load_checkpoint(path)
    sep = load_separator(ckpt, kind=kind, device=str(resolve_device(device)), **kwargs)
    sep.checkpoint_path = str(path.resolve())
    sep.checkpoint_epoch = ckpt.get("epoch")
    return sep


# ---------------------------------------------------------------------------- evaluate
def score_item(estimates, references, mixture, compute_permutation: bool):
    """Metrics for one item. ``estimates``/``references``: (n_src, channels, samples)."""
    from ..metrics.bsseval import bss_eval_scale

    est = torch.as_tensor(estimates).transpose(0, 1)
    ref = torch.as_tensor(references).transpose(0, 1)
    metrics, perm = bss_eval_scale(est, ref, torch.as_tensor(mixture),
                                   compute_permutation=compute_permutation)
    return metrics, perm


#: metric families ``evaluate.metrics`` can name: the scale-aware family per channel, and
#: museval's BSS-Eval v4 (multichannel, per 1 s frame, the MUSDB18 yardstick)
METRIC_FAMILIES = ("si_sdr", "bsseval_v4")


def _check_metric_families(metrics) -> tuple[str, ...]:
    """``evaluate.metrics`` as a tuple of known families, or a UserError naming the fix."""
    names = (metrics,) if isinstance(metrics, str) else tuple(metrics or ())
    bad = [m for m in names if m not in METRIC_FAMILIES]
    if bad or not names:
        raise UserError(f"evaluate.metrics = {list(names)!r}: choose one or more of "
                        f"{list(METRIC_FAMILIES)} ('si_sdr': SI-SDR, SI-SIR, ... per channel; "
                        "'bsseval_v4': museval's SDR, ISR, SIR, SAR), e.g. "
                        "evaluate.metrics = ['si_sdr', 'bsseval_v4']")
    return tuple(dict.fromkeys(names))


def museval_json_path(results: Path, name: str) -> Path:
    """Where ``evaluate`` writes an item's museval JSON: ``results/museval/test/<item>.json``
    (museval's own layout, so ``museval.EvalStore().add_eval_dir(results / 'museval')`` reads
    the folder)."""
    return results / "museval" / "test" / f"{name}.json"


def _item_done(results: Path, name: str, families) -> bool:
    """An item is finished when its result JSON (and, with BSS-Eval v4, its museval JSON)
    exists."""
    if not (results / f"{name}.json").is_file():
        return False
    return "bsseval_v4" not in families or museval_json_path(results, name).is_file()


def score_bsseval_v4(run: Path, name: str, labels, estimates, references, sample_rate: int,
                     window: float = 1.0, hop: float = 1.0, device: str = "cpu"):
    """BSS-Eval v4 of one item; writes its museval JSON and returns
    ``({label: {metric: [median over frames], 'v4-frames': [n], 'v4-frames-excluded': [k]}},
    metadata)``. ``estimates``/``references``: ``(n_src, channels, samples)`` in label order;
    ``window``/``hop`` in seconds (museval: ``int(seconds * rate)`` samples)."""
    import json
    import math

    from ..metrics.bsseval_v4 import (
        BSSEVAL_V4_METRICS,
        bss_eval_v4_targets,
        frame_medians,
        museval_track_json,
    )
    from ..utils.io import atomic_write_text

    frames = bss_eval_v4_targets(np.asarray(estimates), np.asarray(references), labels,
                                 int(window * sample_rate), int(hop * sample_rate),
                                 device=resolve_device(device))
    medians, excluded = frame_medians(frames)
    path = museval_json_path(run / "results", name)
    atomic_write_text(path, json.dumps(museval_track_json(frames, labels, window, hop), indent=2,
                                       allow_nan=True) + "\n")
    n_frames = int(frames["SDR"].shape[-1])
    left_out = ~torch.stack([torch.isfinite(frames[m]) for m in BSSEVAL_V4_METRICS]).all(0)
    sources, undefined = {}, {}
    for i, label in enumerate(labels):
        sources[label] = {m: [None if not math.isfinite(medians[m][i]) else float(medians[m][i])]
                          for m in BSSEVAL_V4_METRICS}
        sources[label]["v4-frames"] = [n_frames]
        sources[label]["v4-frames-excluded"] = [int(left_out[i].sum())]
        undefined[label] = int(torch.isnan(frames["SDR"][i]).sum())
    meta = {"window_seconds": window, "hop_seconds": hop, "frames": n_frames,
            "undefined_frames": undefined,
            "excluded_frames": {label: {m: int(excluded[m][i]) for m in BSSEVAL_V4_METRICS}
                                for i, label in enumerate(labels)},
            "museval_json": str(path.relative_to(run))}
    return sources, meta


def _finish_item(run: Path, name: str, labels, estimates, references, mixture, compute_perm,
                 meta: dict, save_audio: bool, sample_rate: int, families=("si_sdr",),
                 bsseval: dict | None = None) -> str:
    from ..utils.results import write_result

    metrics, perm = score_item(estimates, references, mixture, compute_perm)
    est_paths = {}
    if save_audio:
        for i, label in enumerate(labels):
            j = int(perm[0, i]) if compute_perm else i
            rel = Path("estimates") / name / f"{label}.wav"
            audio = np.asarray(estimates[j], dtype=np.float32)
            atomic_write_audio(run / rel, np.clip(audio, -1, 1), sample_rate, subtype="PCM_16")
            est_paths[label] = str(rel)
    sources = {}
    for i, label in enumerate(labels):
        sources[label] = {k: v[:, i].tolist() for k, v in metrics.items()}
    if "si_sdr" not in families:  # scored above only for the permutation
        sources = {label: {} for label in labels}
    if "bsseval_v4" in families:  # estimates in the order saved (channel 0's permutation)
        chosen = np.asarray(estimates)[perm[0].numpy()] if compute_perm else estimates
        v4, v4_meta = score_bsseval_v4(run, name, labels, chosen, references, sample_rate,
                                       **(bsseval or {}))
        for label in labels:
            sources[label].update(v4[label])
        meta = dict(meta, bsseval_v4=v4_meta)
    meta = dict(meta, estimate_paths=est_paths)
    write_result(run / "results" / f"{name}.json", name, sources, meta,
                 permutation=perm.tolist())
    return name


#: what an evaluation leaves in its run folder (moved together when it goes stale)
EVALUATION_OUTPUTS = ("results", "estimates", "evaluation.json", "report_card.txt", "metrics.csv",
                      "metrics.png", "report.html")


def _archive_stale_evaluation(run: Path, fp: str, epoch=None) -> None:
    """Move the outputs of an evaluation by another separator to previous_evaluations/."""
    import json

    results = run / "results"
    if not (results.is_dir() and any(results.glob("*.json"))):
        return
    try:
        old = json.loads((run / "evaluation.json").read_text())
    except (OSError, ValueError):
        old = {}
    old_fp = old.get("separator_fingerprint")
    if old_fp == fp:
        return
    base = run / "previous_evaluations"
    base.mkdir(exist_ok=True)
    n = 1 + sum(1 for _ in base.iterdir())
    dest = base / f"{n}_{old_fp or 'unrecorded'}"
    dest.mkdir()
    for name in EVALUATION_OUTPUTS:
        if (run / name).exists():
            os.replace(run / name, dest / name)
    log.warning("the results in %s came from another separator or checkpoint (%s, epoch %s; now "
                "%s, epoch %s): moved them to %s and evaluating again", run, old_fp,
                old.get("checkpoint_epoch"), fp, epoch, dest)


@gin.configurable
def evaluate(separator=gin.REQUIRED, dataset=None, output_folder: str | None = None,
             num_workers: int = 2, compute_permutation: bool | None = None, save_audio: bool = True,
             metrics=("si_sdr",), bsseval_window: float = 1.0, bsseval_hop: float = 1.0,
             metrics_device: str = "cpu",
             max_items: int | None = None, shard=None, progress: bool = True):
    """Separate every test item, score it, write ``results/<item>.json`` (skips existing ones).

    ``metrics`` names the metric families: ``'si_sdr'`` (default; SI-SDR, SI-SIR, SI-SAR, SD-SDR,
    SNR, SRR and improvements, per channel) and/or ``'bsseval_v4'`` (museval's BSS-Eval v4 SDR,
    ISR, SIR, SAR over ``bsseval_window``-second frames hopped by ``bsseval_hop`` seconds, on
    ``metrics_device``): each item's museval JSON goes to ``results/museval/test/<item>.json``
    and its per-source medians over frames into ``results/<item>.json``
    (:func:`score_bsseval_v4`).

    ``shard`` (``'I/N'`` or ``(I, N)``; the CLI's ``--shard`` or the environment's, see
    :mod:`bootsep.utils.shards`) evaluates only the items whose rank among the sorted item
    names is ``I`` modulo ``N``; shards write into one ``results/`` without collisions, and the
    returned dict's ``pending`` counts the items (of every shard) still without results.

    Separation runs in this process (on the GPU when present) while a thread pool scores items
    and writes results. With ``compute_permutation=None`` a permutation search is used only when
    the separator's source labels differ from the dataset's.

    Existing results are resumed only when they came from the same separator (its
    :func:`~bootsep.separation.base.fingerprint`: settings, checkpoint path and epoch, recorded
    in ``evaluation.json``). Otherwise (e.g. training went on to more epochs) they are moved,
    with their report, to ``previous_evaluations/<n>_<fingerprint>/`` and the test set is
    evaluated again: a report never mixes two models, and nothing is deleted.
    """
    from tqdm import tqdm

    from ..separation.base import describe, fingerprint
    from . import contract

    families = _check_metric_families(metrics)
    bsseval = {"window": float(bsseval_window), "hop": float(bsseval_hop),
               "device": metrics_device}
    run = run_dir(output_folder)
    if callable(separator) and not hasattr(separator, "separate"):
        separator = separator()
    ds = dataset if dataset is not None else scoped_dataset("test")
    ref_labels = list(getattr(ds, "sources", None) or separator.source_labels)
    if compute_permutation is None and getattr(separator, "arbitrary_order", False):
        compute_permutation = True  # clustering: the output order carries no label
    contract.check_evaluate(separator, ds, compute_permutation, contract.config_stft())
    from ..metrics.permutation import align_labels

    try:  # by label, or a permutation search per item
        order, compute_perm = align_labels(separator.source_labels, ref_labels,
                                           compute_permutation)
    except ValueError as err:
        raise UserError(f"{err}; set evaluate.compute_permutation = True") from None
    from ..utils.shards import parse_shard, shard_of

    shard = parse_shard(shard)
    results = run / "results"
    fp = fingerprint(separator)
    raw_names = ds.item_names() if hasattr(ds, "item_names") else None
    names = [safe_name(n) for n in raw_names] if raw_names is not None else None
    info = {"separator": type(separator).__name__, "separator_fingerprint": fp,
            "checkpoint": getattr(separator, "checkpoint_path", None),
            "checkpoint_epoch": getattr(separator, "checkpoint_epoch", None),
            "dataset": repr(ds), "compute_permutation": compute_perm, "items": len(ds),
            "separator_config": describe(separator)}
    with _run_lock(run):   # shards of one evaluation: one archives, all write the same record
        _archive_stale_evaluation(run, fp, getattr(separator, "checkpoint_epoch", None))
        results.mkdir(parents=True, exist_ok=True)
        atomic_write_json(run / "evaluation.json", info)
    todo = shard_of(names if names is not None else [f"{i:09d}" for i in range(len(ds))], shard)
    if names is not None:
        todo = [i for i in todo if not _item_done(results, names[i], families)]
    if max_items is not None:
        todo = todo[:max_items]
    if not todo:
        log.info("all %d items already evaluated in %s", len(ds), results)
        return dict(info, pending=_pending(results, names))
    loader = torch.utils.data.DataLoader(torch.utils.data.Subset(ds, todo), batch_size=None,
                                         shuffle=False, num_workers=min(1, os.cpu_count() or 1))
    pool = cf.ThreadPoolExecutor(max_workers=max(1, int(num_workers)))
    futures = []
    try:
        for item in tqdm(loader, total=len(todo), desc="evaluate", disable=not progress):
            name = safe_name(item["name"])
            if _item_done(results, name, families):
                continue
            mix = item["mix"]
            refs = item["sources"]
            sep = separator.separate(mix, refs if separator.needs_references else None)
            est = sep.estimates[order] if not compute_perm else sep.estimates
            meta = {"name": item["name"], "sample_rate": separator.sample_rate,
                    "duration": mix.shape[-1] / separator.sample_rate, "channels": int(mix.shape[0]),
                    "separator": type(separator).__name__,
                    "checkpoint": info["checkpoint"], "separator_fingerprint": fp}
            if isinstance(item.get("paths"), dict):
                meta.update(item["paths"])
            futures.append(pool.submit(_finish_item, run, name, ref_labels, est.numpy(),
                                       refs.numpy(), mix.numpy(), compute_perm, meta, save_audio,
                                       separator.sample_rate, families, bsseval))
        for f in futures:
            f.result()
    finally:
        pool.shutdown(wait=True)
    log.info("evaluated %d items into %s", len(futures), results)
    return dict(info, pending=_pending(results, names))


def _pending(results: Path, names) -> int:
    """Items without a result file (0 when the dataset does not name its items)."""
    return 0 if names is None else sum(1 for n in set(names)
                                       if not (results / f"{n}.json").is_file())


@contextlib.contextmanager
def _run_lock(run: Path, name: str = "evaluate", wait: bool = True):
    """An exclusive lock on ``<run>/.<name>.lock`` (``fcntl.flock``, released when the process
    ends however it ends; no lock where the OS lacks it).

    ``wait=True`` (evaluate: concurrent shards archive a stale evaluation once) blocks until
    the lock is free; ``wait=False`` (train: two trainings writing one run folder would
    interleave their checkpoints) raises a UserError naming the holder's pid instead.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on POSIX
        yield
        return
    with open(run / f".{name}.lock", "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "unknown"
            raise UserError(f"{run} is being used by another '{name}' process (pid {holder}); "
                            "wait for it to finish, or give this run another output folder (-o)"
                            ) from None
        f.seek(0)
        f.truncate()
        f.write(str(os.getpid()))
        f.flush()
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


# ---------------------------------------------------------------------------- analyze
@gin.configurable
def analyze(output_folder: str | None = None, notes: str | None = None,
            channel_aggregator: str = "median", link_audio: bool = False):
    """Aggregate ``results/*.json`` into report_card.txt, metrics.csv, metrics.png, report.html.

    ``link_audio = True``: report.html links the audio files (relative paths) instead of
    embedding clips, so the page stays small (default False: a self-contained page).
    """
    from ..report.analyze import analyze as _analyze

    return _analyze(run_dir(output_folder), notes=notes, channel_aggregator=channel_aggregator,
                    print_card=False, link_audio=link_audio)


# ---------------------------------------------------------------------------- debug
class RepeatItem(torch.utils.data.Dataset):
    """Always returns item ``index`` of ``dataset``; length ``length``. For overfit checks."""

    def __init__(self, dataset, index: int = 0, length: int = 100):
        self.dataset, self.index, self.length = dataset, int(index), int(length)
        self._item = None
        self.sources = getattr(dataset, "sources", None)

    def __len__(self):
        return self.length

    def __getitem__(self, i):
        if self._item is None:
            self._item = dict(self.dataset[self.index], name=f"debug_item{self.index}")
        return self._item

    def item_names(self):
        return [f"debug_item{self.index}"] * self.length


@gin.configurable
def debug(index: int = 0, num_epochs: int = 20, epoch_length: int = 10, output_folder=None):
    """Overfit one training item for a short run, then evaluate on it, in ``<run>/debug``.

    Every override is an explicit argument (the config's other ``train.*`` / ``evaluate.*``
    bindings apply); the global gin config is never rebound."""
    run = run_dir(output_folder) / "debug"
    base = scoped_dataset("train")
    item_ds = RepeatItem(base, index, 1)
    train_ds = RepeatItem(base, index, 1000)
    train(train_dataset=train_ds, val_dataset=item_ds, output_folder=str(run),
          num_epochs=num_epochs, epoch_length=epoch_length, num_workers=0)
    separator = deep_separator(checkpoint="latest", output_folder=str(run))
    # positional on purpose: gin builds a bound ``evaluate.separator = @...()`` reference even
    # when the caller passes ``separator=`` by keyword (it would load the run's own, maybe
    # missing, checkpoint), but drops a binding the caller passes positionally
    evaluate(separator, dataset=item_ds, output_folder=str(run))
    return analyze(output_folder=str(run))
