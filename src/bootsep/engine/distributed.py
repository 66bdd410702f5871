"""Distributed data parallel (DDP) plumbing for ``torchrun``, through ignite's ``idist``.

``torchrun --nproc_per_node=N main.py train -c ...`` (or multi-node with ``--nnodes`` and a
rendezvous) sets ``WORLD_SIZE``/``RANK``/``LOCAL_RANK``; :func:`context` then initialises the
process group with ``ignite.distributed`` (NCCL on GPUs, gloo on CPU) and ``idist.auto_model``
wraps the model in DistributedDataParallel. ``train.batch_size`` is the global batch: each rank
takes ``batch_size / world_size`` items of a shared, resumable index stream; gradients are
averaged by DDP; rank 0 alone validates, writes checkpoints, logs and TensorBoard, and broadcasts
the validation results so that every rank steps its scheduler and stopping rules identically.
A single process needs none of this and skips it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from ..utils.errors import UserError


@dataclass
class DistContext:
    distributed: bool = False
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0


_CTX: DistContext | None = None


def context() -> DistContext:
    """The process's distributed context (initialised once, from torchrun's environment)."""
    global _CTX
    if _CTX is not None:
        return _CTX
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        _CTX = DistContext()
        return _CTX
    import ignite.distributed as idist

    local = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        torch.cuda.set_device(local)
        backend = "nccl"
    else:
        backend = "gloo"
    if idist.get_world_size() <= 1:
        idist.initialize(backend)
    device = torch.device("cuda", local) if backend == "nccl" else torch.device("cpu")
    _CTX = DistContext(True, idist.get_rank(), idist.get_world_size(), local, device)
    return _CTX


def wrap_model(model: torch.nn.Module, ctx: DistContext) -> torch.nn.Module:
    """DDP-wrap ``model`` when distributed (``idist.auto_model``), else return it."""
    if not ctx.distributed:
        return model
    import ignite.distributed as idist

    return idist.auto_model(model)


def per_rank_batch_size(batch_size: int, ctx: DistContext) -> int:
    if batch_size % ctx.world_size:
        raise UserError(f"train.batch_size={batch_size} is the global batch and must be divisible "
                        f"by the number of processes ({ctx.world_size})")
    return batch_size // ctx.world_size


def barrier(ctx: DistContext) -> None:
    if ctx.distributed:
        import ignite.distributed as idist

        idist.barrier()


def broadcast_object(obj, ctx: DistContext, src: int = 0):
    """Rank ``src``'s ``obj`` on every rank (any picklable object)."""
    if not ctx.distributed:
        return obj
    import torch.distributed as dist

    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def all_reduce_mean(values: dict, ctx: DistContext) -> dict:
    """Average a dict of floats over all ranks (identity when not distributed)."""
    if not ctx.distributed or not values:
        return values
    import torch.distributed as dist

    keys = sorted(values)
    t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=ctx.device)
    dist.all_reduce(t)
    return {k: float(v) / ctx.world_size for k, v in zip(keys, t.tolist())}
