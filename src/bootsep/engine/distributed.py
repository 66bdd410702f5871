"""Distributed data parallel (DDP) plumbing for ``torchrun``.

``torchrun --nproc_per_node=N main.py train -c ...`` sets ``WORLD_SIZE``/``RANK``/``LOCAL_RANK``;
:func:`context` then initialises the process group (NCCL on GPUs, gloo on CPU). Each rank gets
``batch_size / world_size`` items per step (the configured batch size is the global batch), the
sampler shards the epoch order, gradients are averaged by DDP, and only rank 0 writes
checkpoints, logs and TensorBoard. A single process needs none of this and skips it.
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
    import torch.distributed as dist

    rank = int(os.environ["RANK"])
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        torch.cuda.set_device(local)
        device, backend = torch.device("cuda", local), "nccl"
    else:
        device, backend = torch.device("cpu"), "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    _CTX = DistContext(True, rank, world, local, device)
    return _CTX


def wrap_model(model: torch.nn.Module, ctx: DistContext) -> torch.nn.Module:
    if not ctx.distributed:
        return model
    from torch.nn.parallel import DistributedDataParallel as DDP

    ids = [ctx.local_rank] if ctx.device.type == "cuda" else None
    return DDP(model, device_ids=ids)


def per_rank_batch_size(batch_size: int, ctx: DistContext) -> int:
    if batch_size % ctx.world_size:
        raise UserError(f"train.batch_size={batch_size} is the global batch and must be divisible "
                        f"by the number of processes ({ctx.world_size})")
    return batch_size // ctx.world_size


def barrier(ctx: DistContext) -> None:
    if ctx.distributed:
        import torch.distributed as dist

        dist.barrier()


def all_reduce_mean(value: float, ctx: DistContext) -> float:
    if not ctx.distributed:
        return value
    import torch.distributed as dist

    t = torch.tensor([value], dtype=torch.float64, device=ctx.device)
    dist.all_reduce(t)
    return float(t.item()) / ctx.world_size
