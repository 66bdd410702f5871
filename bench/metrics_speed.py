"""Speed of our scale-aware metrics (``bss_eval_scale``) against museval's BSS-Eval v4.

Both are timed on the same synthetic items (random references, noisy estimates with leakage),
one call per item as ``evaluate`` does it: ours gets ``(channels, n_src, samples)`` and
computes all twelve metrics; museval gets ``(n_src, samples, channels)`` with 1 s windows and
hops (MUSDB convention), ``mode='v4'``. museval is slow, so it can be timed on a subset of the
items (``museval_items``, default all); its rate is items timed / seconds spent on them. One untimed warm-up call of ours precedes its timing.

``museval`` imports ``musdb`` -> ``stempeg``, which refuses to import without ffmpeg. If that
happens, the same computation is run through ``museval/metrics.py`` loaded on its own, with the
exact arguments ``museval.evaluate`` passes (``bss_eval(..., compute_permutation=False,
window=win, hop=hop, framewise_filters=False, bsseval_sources_version=False)``); the result
says which entry point was used.

Usage: ``python bench/metrics_speed.py [--n-items 8] [--seconds 30] ...``; the last line
printed is the JSON result.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import time

import numpy as np


def _museval_bss_eval():
    """Return ``(evaluate(references, estimates, win, hop), description)``."""
    try:
        import museval

        def run(refs, ests, win, hop):
            return museval.evaluate(refs, ests, win=win, hop=hop, mode="v4")

        return run, "museval.evaluate"
    except Exception as err:  # noqa: BLE001 - any import failure: fall back, and say so
        reason = f"{type(err).__name__}: {err}".splitlines()[0][:120]
    spec = importlib.util.find_spec("museval")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("museval is not installed")
    path = f"{list(spec.submodule_search_locations)[0]}/metrics.py"
    mod_spec = importlib.util.spec_from_file_location("_museval_metrics", path)
    metrics = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(metrics)

    def run(refs, ests, win, hop):
        out = metrics.bss_eval(refs, ests, compute_permutation=False, window=win, hop=hop,
                               framewise_filters=False, bsseval_sources_version=False)
        return out[:4]

    return run, f"museval.metrics.bss_eval loaded from file (import museval failed: {reason})"


def make_items(n_items: int, seconds: float, sample_rate: int, n_src: int, channels: int,
               seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """``[(references, estimates)]``, each ``(channels, n_src, samples)`` float32.

    References: per source, a harmonic tone with a random f0 plus gated noise at a random
    level. Estimates: 0.9 x the reference + 0.2 x each other source + white noise at -20 dB.
    """
    rng = np.random.default_rng(seed)
    n = int(round(seconds * sample_rate))
    t = np.arange(n) / sample_rate
    items = []
    for _ in range(n_items):
        refs = np.empty((channels, n_src, n), dtype=np.float32)
        for j in range(n_src):
            f0 = rng.uniform(80, 800)
            tone = sum(np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 6)) / k for k in range(1, 6))
            gate = np.sin(2 * np.pi * rng.uniform(0.2, 2) * t) > 0
            base = 10 ** (rng.uniform(-10, 0) / 20) * (0.3 * tone + gate * rng.standard_normal(n))
            for c in range(channels):
                refs[c, j] = base * rng.uniform(0.7, 1.0) + 0.01 * rng.standard_normal(n)
        est = 0.9 * refs + 0.2 * (refs.sum(axis=1, keepdims=True) - refs)
        est += 0.1 * refs.std(axis=-1, keepdims=True) * rng.standard_normal(refs.shape)
        items.append((refs, est.astype(np.float32)))
    return items


def measure(n_items: int = 8, seconds: float = 30.0, sample_rate: int = 16000, n_src: int = 2,
            channels: int = 1, seed: int = 0, museval_items: int | None = None) -> dict:
    """Time ``bss_eval_scale`` and museval v4 on the same synthetic items.

    Args:
        n_items: items built and scored by ours (default 8).
        seconds: item length in seconds (default 30).
        sample_rate: Hz (default 16000); museval windows/hops are 1 s = ``sample_rate`` samples.
        n_src: sources per item (default 2).
        channels: channels per item (default 1), scored independently by ours (batch dim).
        seed: RNG seed for the items (default 0).
        museval_items: how many of the items museval scores (default None = all of them).
    Returns:
        ``ours_items_per_s``, ``museval_items_per_s``, ``metrics_speedup_vs_museval`` (ratio of
        the two rates), ``n_items``, ``seconds_per_item``, plus what exactly was timed.
    """
    import torch

    from bootsep.metrics import bss_eval_scale

    items = make_items(n_items, seconds, sample_rate, n_src, channels, seed)
    museval_items = n_items if museval_items is None else min(museval_items, n_items)

    bss_eval_scale(items[0][1], items[0][0])  # warm-up (untimed)
    start = time.perf_counter()
    for refs, est in items:
        bss_eval_scale(est, refs)  # (channels, n_src, samples): all twelve metrics
    ours_s = time.perf_counter() - start

    run, entry = _museval_bss_eval()
    start = time.perf_counter()
    for refs, est in items[:museval_items]:
        run(refs.transpose(1, 2, 0), est.transpose(1, 2, 0), sample_rate, sample_rate)
    museval_s = time.perf_counter() - start

    ours_rate = n_items / ours_s
    museval_rate = museval_items / museval_s if museval_items else float("nan")
    return {
        "ours_items_per_s": round(ours_rate, 3),
        "museval_items_per_s": round(museval_rate, 4),
        "metrics_speedup_vs_museval": round(ours_rate / museval_rate, 1),
        "n_items": n_items,
        "seconds_per_item": seconds,
        "ours_items_timed": n_items,
        "ours_seconds": round(ours_s, 4),
        "museval_items_timed": museval_items,
        "museval_seconds": round(museval_s, 3),
        "museval_entry": entry,
        "museval_mode": "v4, win = hop = 1 s, filters_len 512",
        "sample_rate": sample_rate,
        "n_src": n_src,
        "channels": channels,
        "torch_threads": torch.get_num_threads(),
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-items", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--sample-rate", type=int, default=16000)
    parser.add_argument("--n-src", type=int, default=2)
    parser.add_argument("--channels", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--museval-items", type=int, default=None)
    args = parser.parse_args(argv)
    result = measure(args.n_items, args.seconds, args.sample_rate, args.n_src, args.channels,
                     args.seed, args.museval_items)
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
