#!/usr/bin/env python3
"""Data-pipeline overhead and metric throughput.

1. Training-step time (DataLoader workers + STFT/targets on the device + forward/backward +
   handlers, i.e. what ``train`` runs) against the bare forward+backward of the same model on a
   batch already on the device. ``overhead_ratio`` = step time / bare time (1.0 = no overhead).
2. Metric throughput: our full scale-aware metric family vs museval's BSS-Eval v4 on the same
   items (``bench/metrics_speed.py``).

Uses the demo data in $BOOTSEP_DEMO_ROOT (default data/demo) when present, else generates a
small set in a temporary folder. Prints one JSON object as its last line.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as main.py: before torch loads OpenMP

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "src"))


def _demo_root() -> Path:
    root = Path(os.environ.get("BOOTSEP_DEMO_ROOT", "data/demo"))
    if (root / "train").is_dir():
        return root
    from bootsep.data.demo import generate_demo_dataset

    tmp = Path(tempfile.mkdtemp(prefix="bootsep-bench-"))
    generate_demo_dataset(tmp, n_train=6, n_valid=1, n_test=1, duration=8.0, seed=0, progress=False)
    return tmp


def measure_pipeline(steps: int = 20, warmup: int = 3, batch_size: int = 8, workers: int = 2) -> dict:
    from bootsep.data.folder import StemFolderDataset
    from bootsep.data.mixing import Remixer
    from bootsep.dsp import STFT
    from bootsep.engine.handlers import AutoClip
    from bootsep.engine.samplers import ResumableSampler, seed_worker
    from bootsep.engine.trainer import Trainer, fold_channels, make_targets
    from bootsep.losses.combine import LossDict
    from bootsep.models.recurrent import Chimera

    torch.manual_seed(0)
    root = _demo_root()
    ds = StemFolderDataset(root, "train", sources=("accompaniment", "vocals"), sample_rate=16000,
                           mono=True, excerpt_seconds=2.0, num_items=10_000, remix=Remixer(0.2, 3.0))
    stft = STFT(512, 128)
    model = Chimera(num_features=257, hidden_size=128, num_layers=2, dropout=0.1,
                    embedding_size=10, num_sources=2)
    loss = LossDict({"MaskInferenceLoss": {"class": "L1Loss", "weight": 1.0},
                     "DeepClusteringLoss": {"class": "DeepClusteringLoss", "weight": 0.01}})
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    loader = torch.utils.data.DataLoader(ds, batch_size=batch_size, num_workers=workers,
                                         sampler=ResumableSampler(len(ds)),
                                         worker_init_fn=seed_worker, persistent_workers=workers > 0)
    tmp = Path(tempfile.mkdtemp(prefix="bootsep-bench-run-"))
    trainer = Trainer(model, loss, opt, loader, tmp, stft=stft, sample_rate=16000,
                      source_labels=["accompaniment", "vocals"], handlers=[AutoClip(10)],
                      num_epochs=1, epoch_length=10**6, tensorboard=False, progress=False)

    # full training step: fetch batch from the loader + everything the trainer does
    it = iter(loader)
    full = []
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        batch = next(it)
        trainer._train_step(trainer.engine, batch)
        if i >= warmup:
            full.append(time.perf_counter() - t0)

    # bare forward+backward on one batch already prepared on the device
    mix, sources = fold_channels(batch)
    targets = make_targets(stft, mix.float(), sources.float(), "psa")
    bare = []
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        opt.zero_grad()
        out = model(targets["mix_magnitude"])
        loss(out, targets)["loss"].backward()
        opt.step()
        if i >= warmup:
            bare.append(time.perf_counter() - t0)
    t_full, t_bare = statistics.median(full), statistics.median(bare)
    return {"train_step_s": round(t_full, 4), "bare_forward_backward_s": round(t_bare, 4),
            "overhead_ratio": round(t_full / t_bare, 3), "batch_size": batch_size,
            "excerpt_s": 2.0, "data_workers": workers, "steps_timed": steps}


def main() -> None:
    from metrics_speed import measure as measure_metrics

    out = {"cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
           "device": "cuda" if torch.cuda.is_available() else "cpu"}
    out.update(measure_pipeline())
    m = measure_metrics()
    out.update({k: m[k] for k in m})
    print(json.dumps(out))


if __name__ == "__main__":
    main()
