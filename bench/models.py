#!/usr/bin/env python3
"""Forward + backward time per batch of every model-zoo config at the reference size.

For each reference config in ``musdb/exp/models`` (``dualpath_2src``, ``dualpath_4src``,
``openunmix_*``, ``mel_baseline_*``, ``centroids_*``) the model, its training loss dictionary and
its STFT are built from the config (with the demo env and the matching 2- or 4-source data
config); one batch of the config's ``train.batch_size`` excerpts of ``--seconds`` seconds
(default 10 s, the BCA excerpt length) of random audio is turned into training targets on the
device, then ``model(mix_magnitude)`` + the loss + ``backward()`` is timed (the targets are not
part of the timing). The device is CUDA when available, else the CPU (``--device`` overrides).

Defaults: 1 warm-up and 3 timed repetitions on a GPU; no warm-up and 1 repetition on the CPU,
where one reference batch takes tens of seconds. The reported number is the median.

Prints a table, then as its LAST line one JSON object ``{config name: seconds per batch}``.

    python bench/models.py                       # all reference configs, reference batch
    python bench/models.py --configs dualpath_2src --batch-size 2 --seconds 2   # quick look
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

MODELS_DIR = ROOT / "musdb" / "exp" / "models"
ENV = ROOT / "musdb" / "demo" / "env.gin"
DATA2 = ROOT / "musdb" / "demo" / "data.gin"
DATA4 = MODELS_DIR / "data4.gin"

# config name -> (model gin name, data config)
CONFIGS = {
    "dualpath_2src": ("DualPathChimera", DATA2),
    "dualpath_4src": ("DualPathChimera", DATA4),
    "openunmix_2src": ("OpenUnmix", DATA2),
    "openunmix_4src": ("OpenUnmix", DATA4),
    "mel_baseline_2src": ("MelMaskBLSTM", DATA2),
    "mel_baseline_4src": ("MelMaskBLSTM", DATA4),
    "centroids_2src": ("ConditionalCentroids", DATA2),
    "centroids_4src": ("ConditionalCentroids", DATA4),
}

def _registry():
    """The gin registry (it lists the zoo's models and the curriculum handler)."""
    from bootsep.config import registry

    registry.register_all()
    return registry


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench_config(name: str, device: torch.device, batch_size: int | None, seconds: float,
                 warmup: int, repeats: int) -> dict:
    import gin

    from bootsep.cli.main import parse_configs
    from bootsep.engine.trainer import make_targets
    from bootsep.losses.combine import LossDict

    model_name, data = CONFIGS[name]
    registry = _registry()
    gin.clear_config()
    parse_configs([ENV, data, MODELS_DIR / f"{name}.gin"], [])
    batch = int(batch_size or gin.query_parameter("train.batch_size"))
    sources = gin.query_parameter("%SOURCES")
    sample_rate = int(gin.query_parameter("%SAMPLE_RATE"))
    loss_spec = gin.query_parameter("train.loss_dictionary")
    target_type = gin.query_parameter("train.target_type")
    torch.manual_seed(0)
    stft = registry.configured("STFT")()
    model = registry.configured(model_name)().to(device).train()
    loss_fn = LossDict(loss_spec)
    samples = int(round(seconds * sample_rate))
    g = torch.Generator().manual_seed(0)
    src = 0.1 * torch.randn(batch, len(sources), samples, generator=g)
    with torch.no_grad():
        targets = make_targets(stft, src.sum(1).to(device), src.to(device), target_type)
    mag = targets["mix_magnitude"]
    times = []
    for i in range(warmup + repeats):
        model.zero_grad(set_to_none=True)
        _sync(device)
        t0 = time.perf_counter()
        out = model(mag)
        loss = loss_fn(out, targets)["loss"]
        loss.backward()
        _sync(device)
        if i >= warmup:
            times.append(time.perf_counter() - t0)
        del out, loss
    params = sum(p.numel() for p in model.parameters())
    gin.clear_config()
    return {"seconds": statistics.median(times), "batch": batch, "frames": int(mag.shape[1]),
            "params": params, "times": times}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", nargs="*", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--batch-size", type=int, default=None,
                        help="default: the config's train.batch_size")
    parser.add_argument("--seconds", type=float, default=10.0, help="excerpt length (default 10)")
    parser.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    parser.add_argument("--warmup", type=int, default=None, help="default: 1 on GPU, 0 on CPU")
    parser.add_argument("--repeats", type=int, default=None, help="default: 3 on GPU, 1 on CPU")
    args = parser.parse_args(argv)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    gpu = device.type == "cuda"
    warmup = args.warmup if args.warmup is not None else (1 if gpu else 0)
    repeats = args.repeats if args.repeats is not None else (3 if gpu else 1)
    where = torch.cuda.get_device_name(device) if gpu else f"cpu ({torch.get_num_threads()} threads)"
    print(f"device: {where}; excerpts of {args.seconds:g} s; warm-up {warmup}, "
          f"repeats {repeats} (median)")
    print(f"{'config':<20} {'params':>10} {'batch':>6} {'frames':>7} {'s/batch':>9}")
    result = {}
    for name in args.configs:
        r = bench_config(name, device, args.batch_size, args.seconds, warmup, repeats)
        result[name] = round(r["seconds"], 4)
        print(f"{name:<20} {r['params']:>10,} {r['batch']:>6} {r['frames']:>7} "
              f"{r['seconds']:>9.3f}", flush=True)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
