#!/usr/bin/env python3
"""DDP scaling on this machine: training samples/s with 1 vs 2 processes (same global batch).

Runs the real Trainer under ``torch.distributed.run`` (gloo on CPU, NCCL on GPUs) on demo data
(``$BOOTSEP_DEMO_ROOT``, or a small generated set) with the demo's small chimera, and times
``--steps`` steps after a warm-up. Prints one JSON object as its last line:
``{"samples_per_s": {"1": ..., "2": ...}, "speedup_2_vs_1": ..., ...}``.
On a 2-core CPU machine each process gets one thread, so ideal scaling is about 2x.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))


def worker(args) -> None:
    import torch

    from bootsep.data.folder import StemFolderDataset
    from bootsep.dsp import STFT
    from bootsep.engine import distributed as dist
    from bootsep.engine.samplers import ResumableSampler
    from bootsep.engine.trainer import Trainer
    from bootsep.losses.combine import LossDict
    from bootsep.models.recurrent import Chimera

    ctx = dist.context()
    torch.manual_seed(0)
    ds = StemFolderDataset(args.root, "train", excerpt_seconds=2.0, num_items=100_000)
    model = Chimera(num_features=257, hidden_size=128, num_layers=2, dropout=0.0,
                    embedding_size=10, num_sources=2)
    ddp = dist.wrap_model(model, ctx)
    per_rank = dist.per_rank_batch_size(args.batch_size, ctx)
    loader = torch.utils.data.DataLoader(
        ds, batch_size=per_rank, num_workers=1,
        sampler=ResumableSampler(len(ds), num_replicas=ctx.world_size, rank=ctx.rank))
    loss = LossDict({"MaskInferenceLoss": {"class": "L1Loss", "weight": 1.0},
                     "DeepClusteringLoss": {"class": "DeepClusteringLoss", "weight": 0.01}})
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    trainer = Trainer(ddp, loss, opt, loader, tempfile.mkdtemp(), stft=STFT(512, 128),
                      sample_rate=16000, source_labels=["accompaniment", "vocals"],
                      epoch_length=10**6, tensorboard=False, progress=False,
                      is_main=ctx.is_main, unwrapped_model=model, dist_ctx=ctx)
    it = iter(loader)
    for i in range(args.warmup + args.steps):
        if i == args.warmup:
            dist.barrier(ctx)
            t0 = time.perf_counter()
        trainer._train_step(trainer.engine, next(it))
    dist.barrier(ctx)
    dt = time.perf_counter() - t0
    if ctx.is_main:
        print(json.dumps({"world_size": ctx.world_size,
                          "samples_per_s": args.steps * args.batch_size / dt}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--root", default=None)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--procs", type=int, nargs="+", default=[1, 2])
    args = p.parse_args()
    if args.worker:
        return worker(args)
    root = args.root or os.environ.get("BOOTSEP_DEMO_ROOT", "data/demo")
    if not (Path(root) / "train").is_dir():
        from bootsep.data.demo import generate_demo_dataset

        root = tempfile.mkdtemp(prefix="bootsep-ddp-")
        generate_demo_dataset(root, n_train=6, n_valid=1, n_test=1, duration=8.0, progress=False)
    out = {"cpu_count": os.cpu_count(), "global_batch": args.batch_size, "steps": args.steps,
           "samples_per_s": {}}
    for n in args.procs:
        env = dict(os.environ, OMP_NUM_THREADS=str(max(1, (os.cpu_count() or 1) // n)),
                   OMP_WAIT_POLICY="PASSIVE")
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               f"--nproc_per_node={n}", __file__, "--worker", "--root", str(root),
               "--batch-size", str(args.batch_size), "--steps", str(args.steps),
               "--warmup", str(args.warmup)]
        r = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if r.returncode != 0:
            sys.exit(f"torchrun with {n} processes failed:\n{r.stderr[-3000:]}")
        line = [x for x in r.stdout.splitlines() if x.startswith("{")][-1]
        out["samples_per_s"][str(n)] = round(json.loads(line)["samples_per_s"], 3)
    s = out["samples_per_s"]
    if "1" in s and "2" in s:
        out["speedup_2_vs_1"] = round(s["2"] / s["1"], 3)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
