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

**BSS-Eval v4** (:func:`bootsep.metrics.bss_eval_v4`, the MUSDB18 yardstick) is timed against
``museval.evaluate(..., mode='v4')`` on the same generated items, in the same run: by default 4
items of 30 s, stereo, 44.1 kHz, 4 targets, 1 s windows and hops (``--v4-*`` options). The JSON
gains ``bsseval_v4_speedup_vs_museval`` (ratio of the two rates), ``bsseval_v4_max_track_diff_db``
(max over tracks, sources and metrics of |track-level median ours - museval|, museval's medians
taken as its JSON stores them: ``inf`` as NaN, then ``nanmedian``),
``bsseval_v4_max_frame_diff_db`` (largest per-frame difference where both are finite) and
whether both mark the same frames undefined. ``--memory-minutes 10`` (default) also scores one
10-minute stereo 4-target track with ours alone in a fresh process and reports its peak
resident memory beyond the (float32) inputs; 0 skips it. ``--demo-root data/demo`` (optional,
repeatable) checks every test song of a MUSDB-layout folder (ideal-ratio-mask estimates, all of
its targets as museval groups them) and reports the largest track-level difference there.

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


def _museval_track_medians(frames: np.ndarray) -> np.ndarray:
    """museval's track-level number from raw frames ``(..., frames)``: its JSON stores ``inf``
    as NaN, then ``nanmedian`` (``EvalStore``)."""
    import warnings

    arr = np.where(np.isfinite(frames), frames, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmedian(arr, axis=-1)


def compare_v4(ours: dict, theirs: dict) -> dict:
    """Differences between ``{metric: (n_src, frames)}`` of ours and of museval."""
    from bootsep.metrics import BSSEVAL_V4_METRICS, frame_medians

    medians, _ = frame_medians({k: ours[k] for k in BSSEVAL_V4_METRICS})
    frame_diff, track_diff, same_undefined = 0.0, 0.0, True
    for name in BSSEVAL_V4_METRICS:
        a, b = ours[name].cpu().numpy(), np.asarray(theirs[name], dtype=np.float64)
        same_undefined &= bool(np.array_equal(np.isnan(a), np.isnan(b)))
        both = np.isfinite(a) & np.isfinite(b)
        if both.any():
            frame_diff = max(frame_diff, float(np.abs(a[both] - b[both]).max()))
        ma, mb = medians[name], _museval_track_medians(b)
        ok = np.isfinite(ma) & np.isfinite(mb)
        same_undefined &= bool(np.array_equal(np.isfinite(ma), np.isfinite(mb)))
        if ok.any():
            track_diff = max(track_diff, float(np.abs(ma[ok] - mb[ok]).max()))
    return {"frame": frame_diff, "track": track_diff, "same_undefined": same_undefined}


def measure_v4(n_items: int = 4, seconds: float = 30.0, sample_rate: int = 44100, n_src: int = 4,
               channels: int = 2, seed: int = 1, museval_items: int | None = None) -> dict:
    """Time BSS-Eval v4, ours against museval's, on the same generated items (module docstring).

    Items come from :func:`make_items` (float32, given to both as float64 ``(n_src, channels,
    samples)`` / museval's ``(n_src, samples, channels)``), one call per item as ``evaluate``
    does it, windows and hops of 1 s. Returns the ``bsseval_v4_*`` figures.
    """
    import torch

    from bootsep.metrics import bss_eval_v4

    items = [(r.transpose(1, 0, 2).astype(np.float64), e.transpose(1, 0, 2).astype(np.float64))
             for r, e in make_items(n_items, seconds, sample_rate, n_src, channels, seed)]
    museval_items = n_items if museval_items is None else min(museval_items, n_items)
    warm = make_items(1, 2.0, sample_rate, n_src, channels, seed + 1)[0]
    bss_eval_v4(warm[1].transpose(1, 0, 2)[None], warm[0].transpose(1, 0, 2)[None],
                sample_rate)  # warm-up (untimed)
    ours, start = [], time.perf_counter()
    for refs, est in items:
        ours.append({k: v[0] for k, v in bss_eval_v4(est[None], refs[None], sample_rate).items()})
    ours_s = time.perf_counter() - start

    run, entry = _museval_bss_eval()
    theirs, start = [], time.perf_counter()
    for refs, est in items[:museval_items]:
        out = run(refs.transpose(0, 2, 1), est.transpose(0, 2, 1), sample_rate, sample_rate)
        theirs.append(dict(zip(("SDR", "ISR", "SIR", "SAR"), out)))
    museval_s = time.perf_counter() - start
    diffs = [compare_v4(a, b) for a, b in zip(ours, theirs)]
    ours_rate, museval_rate = n_items / ours_s, museval_items / museval_s
    return {
        "bsseval_v4_speedup_vs_museval": round(ours_rate / museval_rate, 1),
        "bsseval_v4_max_track_diff_db": max(d["track"] for d in diffs),
        "bsseval_v4_max_frame_diff_db": max(d["frame"] for d in diffs),
        "bsseval_v4_same_undefined_frames": all(d["same_undefined"] for d in diffs),
        "bsseval_v4_ours_seconds_per_item": round(ours_s / n_items, 3),
        "bsseval_v4_museval_seconds_per_item": round(museval_s / museval_items, 2),
        "bsseval_v4_items": n_items, "bsseval_v4_museval_items": museval_items,
        "bsseval_v4_item": f"{seconds:g} s, {channels} channels, {sample_rate} Hz, {n_src} "
                           "targets, win = hop = 1 s, 512 taps",
        "bsseval_v4_museval_entry": entry,
        "bsseval_v4_device": "cpu", "torch_threads": torch.get_num_threads(),
    }


def memory_probe(minutes: float, sample_rate: int = 44100, n_src: int = 4,
                 channels: int = 2) -> dict:
    """Score one long generated track with ours (in this process); peak RSS beyond the inputs.

    Returns ``{'seconds', 'input_mb', 'baseline_rss_mb', 'peak_rss_mb', 'working_mb',
    'frames'}``; ``working_mb`` = peak RSS - RSS with the float32 inputs in memory.
    """
    import resource

    import torch

    from bootsep.metrics import bss_eval_v4

    def rss_mb():
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return float("nan")

    n = int(minutes * 60 * sample_rate)
    gen = torch.Generator().manual_seed(0)
    refs = torch.randn(1, n_src, channels, n, generator=gen)
    est = torch.randn(1, n_src, channels, n, generator=gen).mul_(0.1).add_(refs, alpha=0.9)
    baseline = rss_mb()
    start = time.perf_counter()
    out = bss_eval_v4(est, refs, sample_rate)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": round(seconds, 1), "input_mb": round(2 * refs.numel() * 4 / 2**20),
            "baseline_rss_mb": round(baseline), "peak_rss_mb": round(peak),
            "working_mb": round(peak - baseline), "frames": int(out["SDR"].shape[-1]),
            "minutes": minutes, "n_src": n_src, "channels": channels}


def _memory_in_subprocess(minutes: float) -> dict:
    import subprocess
    import sys

    out = subprocess.run([sys.executable, __file__, "--memory-probe", str(minutes)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def check_demo(root: str) -> dict:
    """Every test song of a MUSDB-layout folder (``<root>/test/<song>/<target>.wav``): ideal
    ratio mask estimates (phase-sensitive, bootsep's STFT), all targets present grouped as
    museval groups them, ours against museval; the largest track-level and frame differences."""
    from pathlib import Path

    import soundfile as sf
    import torch

    from bootsep.metrics import bss_eval_v4, museval_groups
    from bootsep.primitives.oracle import IdealRatioMask

    songs = sorted(p for p in (Path(root) / "test").iterdir() if p.is_dir())
    if not songs:
        raise SystemExit(f"{root}/test holds no songs")
    order = ["vocals", "drums", "bass", "other", "accompaniment"]
    run, entry = _museval_bss_eval()
    track, frame, same, n_tracks = 0.0, 0.0, True, 0
    for song in songs:
        targets = [t for t in order if (song / f"{t}.wav").is_file()]
        audio = {t: sf.read(song / f"{t}.wav", always_2d=True) for t in targets}
        rate = audio[targets[0]][1]
        refs = np.stack([audio[t][0].T for t in targets])  # (n_src, channels, samples) float64
        for joint, kept in museval_groups(targets):
            r = refs[joint]
            sep = IdealRatioMask(sample_rate=rate, mask_type="psa",
                                 source_labels=[targets[j] for j in joint])
            est = sep.separate(torch.from_numpy(r.sum(0)), torch.from_numpy(r)).estimates
            est = est.numpy().astype(np.float64)
            ours = {k: v[0] for k, v in bss_eval_v4(est[None], r[None], rate).items()}
            out = run(r.transpose(0, 2, 1), est.transpose(0, 2, 1), rate, rate)
            d = compare_v4({k: v[[joint.index(i) for i in kept]] for k, v in ours.items()},
                           {k: np.asarray(v)[[joint.index(i) for i in kept]]
                            for k, v in zip(("SDR", "ISR", "SIR", "SAR"), out)})
            track, frame = max(track, d["track"]), max(frame, d["frame"])
            same &= d["same_undefined"]
        n_tracks += 1
    return {"root": str(root), "tracks": n_tracks, "max_track_diff_db": track,
            "max_frame_diff_db": frame, "same_undefined_frames": same, "museval_entry": entry}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-items", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--sample-rate", type=int, default=16000)
    parser.add_argument("--n-src", type=int, default=2)
    parser.add_argument("--channels", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--museval-items", type=int, default=None)
    parser.add_argument("--v4-items", type=int, default=4, help="BSS-Eval v4 items (0: skip)")
    parser.add_argument("--v4-seconds", type=float, default=30.0)
    parser.add_argument("--v4-sample-rate", type=int, default=44100)
    parser.add_argument("--v4-sources", type=int, default=4)
    parser.add_argument("--v4-channels", type=int, default=2)
    parser.add_argument("--v4-museval-items", type=int, default=None)
    parser.add_argument("--memory-minutes", type=float, default=10.0,
                        help="length of the long track for the peak-memory figure (0: skip)")
    parser.add_argument("--demo-root", action="append", default=[],
                        help="MUSDB-layout folder whose test songs are checked against museval")
    parser.add_argument("--memory-probe", type=float, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_probe is not None:  # the child process of --memory-minutes
        result = memory_probe(args.memory_probe)
        print(json.dumps(result))
        return result
    result = measure(args.n_items, args.seconds, args.sample_rate, args.n_src, args.channels,
                     args.seed, args.museval_items)
    if args.v4_items > 0:
        v4 = measure_v4(args.v4_items, args.v4_seconds, args.v4_sample_rate, args.v4_sources,
                        args.v4_channels, args.seed + 1, args.v4_museval_items)
        print(json.dumps(v4))
        result.update(v4)
    for root in args.demo_root:
        demo = check_demo(root)
        print(json.dumps(demo))
        result.setdefault("bsseval_v4_demo", []).append(demo)
    if args.memory_minutes > 0:
        memory = _memory_in_subprocess(args.memory_minutes)
        result["bsseval_v4_memory"] = memory
        result["bsseval_v4_long_track_working_mb"] = memory["working_mb"]
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
