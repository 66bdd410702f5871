"""Shards: one of ``N`` deterministic, disjoint parts of a sorted work list.

``separate`` (segment mode) and ``evaluate`` take a shard ``I/N`` (0 <= I < N) and do only the
items whose rank in the *sorted* list of item names is ``I`` modulo ``N`` (round-robin, so long
and short recordings spread evenly). Every shard computes the same sorted list, so the shards
are disjoint, their union is the whole list, and a rerun of one shard resumes it.

The shard comes from ``--shard I/N`` or, when that is not given, from the environment
(:func:`shard_from_env`): a Slurm array task (``SLURM_ARRAY_TASK_ID`` minus
``SLURM_ARRAY_TASK_MIN``, divided by ``SLURM_ARRAY_TASK_STEP``, of ``SLURM_ARRAY_TASK_COUNT``)
or a torchrun process (``RANK`` of ``WORLD_SIZE``). ``--shard 0/1`` turns sharding off.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence

from .errors import UserError

Shard = tuple[int, int]
_SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


def parse_shard(text: str | Sequence[int] | None, where: str = "--shard") -> Shard:
    """``'I/N'`` (or ``(I, N)``) -> ``(I, N)``; ``None`` -> ``(0, 1)`` (no sharding).

    Raises:
        UserError: anything but two integers with ``0 <= I < N``.
    """
    if text is None:
        return (0, 1)
    if isinstance(text, (tuple, list)) and len(text) == 2 and \
            all(isinstance(x, int) and not isinstance(x, bool) for x in text):
        i, n = int(text[0]), int(text[1])
    else:
        m = _SHARD.match(str(text))
        if not m:
            raise UserError(f"{where} {text!r}: expected I/N, shard I of N counted from 0 "
                            "(e.g. --shard 0/4 ... --shard 3/4)")
        i, n = int(m.group(1)), int(m.group(2))
    if n < 1 or not 0 <= i < n:
        raise UserError(f"{where} {i}/{n}: need 0 <= I < N (shards are counted from 0; the "
                        f"last of {max(n, 1)} is {max(n, 1) - 1}/{max(n, 1)})")
    return (i, n)


def _env_int(env: Mapping[str, str], key: str) -> int:
    try:
        return int(env[key])
    except ValueError:
        raise UserError(f"environment variable {key}={env[key]!r} is not an integer; unset it "
                        "or pass --shard I/N") from None


def shard_from_env(environ: Mapping[str, str] | None = None) -> tuple[Shard, str] | None:
    """``((I, N), where)`` from a Slurm array task or torchrun's ``RANK``/``WORLD_SIZE``, or
    None when neither is set (or the array / world has one task)."""
    env = os.environ if environ is None else environ
    if "SLURM_ARRAY_TASK_ID" in env and "SLURM_ARRAY_TASK_COUNT" in env:
        task = _env_int(env, "SLURM_ARRAY_TASK_ID")
        count = _env_int(env, "SLURM_ARRAY_TASK_COUNT")
        low = _env_int(env, "SLURM_ARRAY_TASK_MIN") if "SLURM_ARRAY_TASK_MIN" in env else 0
        step = _env_int(env, "SLURM_ARRAY_TASK_STEP") if "SLURM_ARRAY_TASK_STEP" in env else 1
        where = (f"SLURM_ARRAY_TASK_ID={task} of SLURM_ARRAY_TASK_COUNT={count}"
                 f" (first {low}, step {step})")
        if step < 1 or (task - low) % step:
            raise UserError(f"{where} is not one of the array's tasks; pass --shard I/N")
        shard = parse_shard(((task - low) // step, count), where)
        return (shard, where) if shard[1] > 1 else None
    if "WORLD_SIZE" in env and "RANK" in env:
        where = f"RANK={env['RANK']} of WORLD_SIZE={env['WORLD_SIZE']}"
        shard = parse_shard((_env_int(env, "RANK"), _env_int(env, "WORLD_SIZE")), where)
        return (shard, where) if shard[1] > 1 else None
    return None


def resolve_shard(text: str | None, environ: Mapping[str, str] | None = None) -> tuple[Shard, str]:
    """The shard to run: ``--shard`` when given, else the environment's, else ``(0, 1)``;
    with a phrase saying where it came from."""
    if text is not None:
        return parse_shard(text), f"--shard {text}"
    found = shard_from_env(environ)
    return found if found is not None else ((0, 1), "no sharding")


def shard_of(names: Sequence[str], shard: Shard) -> list[int]:
    """Indices into ``names`` of the items of ``shard``: those whose rank in ``sorted(names)``
    is ``I`` modulo ``N``. ``names`` must be unique."""
    i, n = parse_shard(shard)
    if n == 1:
        return list(range(len(names)))
    order = sorted(range(len(names)), key=lambda k: names[k])
    return sorted(k for rank, k in enumerate(order) if rank % n == i)


def owners(names: Sequence[str], n: int) -> dict[str, int]:
    """``{name: shard index I}`` for ``N = n`` shards over ``names``."""
    return {name: rank % int(n) for rank, name in enumerate(sorted(names))}
