"""Quick timing of every primitive (not a test; pytest does not collect ``bench_*``).

Run: ``.venv/bin/python tests/primitives/bench_primitives.py [--seconds 30] [--repeats 3]``.
Times ``Separator.separate`` (STFT, masks, iSTFT) on noise-like synthetic music at 16 kHz and
prints the real-time factor (audio seconds per wall second; higher is faster) of the median and
of the best of the repeats after one warm-up run (on a shared machine the best is the fairer
figure: other processes only ever slow a run down).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch


def music(seconds: float, sr: int = 16000, seed: int = 0) -> np.ndarray:
    """Noise-like music: a 1.6 s noisy drum/bass loop, a wandering harmonic voice, hiss."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    t = np.arange(n) / sr
    bar = int(1.6 * sr)
    loop = np.zeros(bar)
    for at in range(0, bar, bar // 8):
        m = min(bar - at, 2400)
        loop[at:at + m] += rng.standard_normal(m) * np.exp(-np.arange(m) / 300)
    loop += 0.3 * np.sin(2 * np.pi * 55 * np.arange(bar) / sr)
    drums = np.tile(loop, n // bar + 1)[:n]
    f0 = 220 * 2 ** (np.cumsum(rng.standard_normal(n)) / n * 4)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    voice = sum(np.sin(k * phase) / k for k in range(1, 12))
    return (0.3 * drums + 0.1 * voice + 0.01 * rng.standard_normal(n)).astype(np.float32) * (
        1 + 0.0 * t)


def main() -> None:
    from bootsep.primitives import (
        FT2D,
        HPSS,
        MixAsEstimate,
        Repet,
        RepetSim,
        TimbreClustering,
        primitive_clustering,
    )

    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    ap.add_argument("--only", nargs="*", help="names to time (default all)")
    args = ap.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    x = torch.from_numpy(music(args.seconds)).to(args.device)
    dev = args.device
    seps = {
        "Repet": Repet(device=dev),
        "RepetSim": RepetSim(device=dev),
        "2DFT-R": FT2D(neighborhood_size=(1, 35), high_pass_cutoff=250, device=dev),
        "2DFT-M": FT2D(neighborhood_size=(1, 35), high_pass_cutoff=250, use_bg_2dft=False,
                       device=dev),
        "HPSS": HPSS(device=dev),
        "TimbreClustering": TimbreClustering(device=dev),
        "PrimitiveClustering (no pitch)": primitive_clustering(device=dev),
        "PrimitiveClustering kmeans": primitive_clustering(device=dev, clustering="kmeans"),
        "PrimitiveClustering gmm": primitive_clustering(device=dev, clustering="gmm"),
        "MixAsEstimate": MixAsEstimate(device=dev),
    }
    print(f"{args.seconds:.0f} s of 16 kHz audio, torch threads={torch.get_num_threads()}, "
          f"device={dev}")
    for name, sep in seps.items():
        if args.only and name not in args.only:
            continue
        sep.separate(x)  # warm-up
        times = []
        for _ in range(args.repeats):
            if dev.startswith("cuda"):
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            sep.separate(x)
            if dev.startswith("cuda"):
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
        med, best = statistics.median(times), min(times)
        print(f"{name:32s} median {med:7.3f} s (RTF {args.seconds / med:7.1f}x)   "
              f"best {best:7.3f} s (RTF {args.seconds / best:7.1f}x)")


if __name__ == "__main__":
    main()
