#!/usr/bin/env python3
"""`separate` over long recordings: peak memory, speed, and resuming after a kill.

Builds stereo 44.1 kHz 16-bit recordings of ``--minutes`` (default 2 and 10) from the demo
song generator, then runs ``main.py separate`` (segment mode, the paper's primitive ensemble
at 16 kHz, 30 s segments with a 15 s hop, the reference settings) over each in a fresh
process and records that process's peak resident memory (``ru_maxrss``). Bounded memory means
the peak does not grow with the recording's length: ``peak_rss_growth_mb`` is the 10-minute
peak minus the 2-minute peak.

File mode (``separate --input FILE``, the everyday path) is measured on the same recordings:
files longer than ``separate.window_seconds`` (120 s) are separated in cross-faded windows, so
its peak should not grow with length either (``file_peak_rss_growth_mb``).

Then the kill test: a fresh ``separate`` over the longest recording is SIGKILLed once
``--kill-after`` segments are finished, and the same command is run again. The rerun must
report the finished segments as done before and leave their files untouched
(``resume_redone`` counts finished result files whose modification time changed; it must be 0).

Prints one JSON object as its last line. Everything is written under ``--workdir`` (default a
new temporary folder, removed at the end unless ``--keep``); recordings already there are
reused, every output goes to a new folder.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "src"))

CONFIGS = ["musdb/demo/env.gin", "musdb/demo/data.gin",
           "musdb/exp/primitives/primitive_clustering_reference.gin"]
BINDS = ["separate.segment_length = 30.0", "separate.hop_length = 15.0",
         "separate.num_workers = 2", "separate.progress = False"]

# Runs the command given in argv and prints the peak RSS (kB) of its process tree as JSON.
_MEASURE = (
    "import json, resource, subprocess, sys, time\n"
    "t = time.perf_counter()\n"
    "rc = subprocess.run(sys.argv[1:]).returncode\n"
    "print(json.dumps({'rc': rc, 'wall_s': time.perf_counter() - t,\n"
    "                  'maxrss_kb': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))\n"
)


def write_recording(path: Path, minutes: float, sample_rate: int = 44100) -> None:
    """A stereo PCM_16 recording of back-to-back 12 s demo songs (right channel delayed 2 ms)."""
    import soundfile as sf

    from bootsep.data.demo import synthesize_song

    n = int(round(minutes * 60 * sample_rate))
    song = 12 * sample_rate
    path.parent.mkdir(parents=True, exist_ok=True)
    with sf.SoundFile(str(path), "w", sample_rate, 2, "PCM_16") as f:
        for i in range((n + song - 1) // song):
            x = synthesize_song(7, "train", i % 32, duration=12.0,
                                sample_rate=sample_rate).audio["mixture"]
            x = 0.5 * x / max(1e-9, float(np.max(np.abs(x))))
            st = np.stack([x, np.roll(x, int(0.002 * sample_rate))], 1)
            f.write(st[: n - i * song])


def _main_cmd(*args: str) -> list[str]:
    """``python main.py separate -c CONFIGS ARGS...``"""
    return [sys.executable, str(ROOT / "main.py"), "separate", "-c", *CONFIGS, *args]


def separate_cmd(folder: Path, out: Path) -> list[str]:
    binds = BINDS + [f"separate.folders = '{folder}'", f"separate.output = '{out}'"]
    return _main_cmd(*[x for b in binds for x in ("-b", b)])


def file_cmd(wav: Path, out: Path) -> list[str]:
    return _main_cmd("-b", "separate.progress = False", "--input", str(wav), "--output", str(out))


def env() -> dict:
    e = dict(os.environ)
    e.setdefault("OMP_NUM_THREADS", "1")
    return e


def _peak(cmd: list[str], what: str) -> dict:
    cmd = [sys.executable, "-c", _MEASURE, *cmd]
    res = subprocess.run(cmd, cwd=ROOT, env=env(), capture_output=True, text=True)
    last = res.stdout.strip().splitlines()[-1] if res.stdout.strip() else ""
    try:
        stats = json.loads(last)
    except json.JSONDecodeError:
        stats = {"rc": res.returncode}
    if stats.get("rc") != 0:
        sys.exit(f"error: separate failed on {what}:\n{res.stderr[-3000:]}")
    return stats


def measure(folder: Path, out: Path) -> dict:
    stats = _peak(separate_cmd(folder, out), str(folder))
    manifest = json.loads((out / "separate.json").read_text())
    fstats = _peak(file_cmd(folder / "recording.wav", out.with_name(out.name + "_file")),
                   str(folder / "recording.wav"))
    return {"peak_rss_mb": stats["maxrss_kb"] / 1024.0, "wall_s": stats["wall_s"],
            "segments": manifest["segments"], "file_peak_rss_mb": fstats["maxrss_kb"] / 1024.0,
            "file_wall_s": fstats["wall_s"]}


def kill_and_resume(folder: Path, out: Path, kill_after: int) -> dict:
    results = out / "results"
    proc = subprocess.Popen(separate_cmd(folder, out), cwd=ROOT, env=env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    while proc.poll() is None:
        if results.is_dir() and len(list(results.glob("*.json"))) >= kill_after:
            os.killpg(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.05)
    proc.wait()
    finished = {p: p.stat().st_mtime_ns for p in results.glob("*.json")}
    res = subprocess.run(separate_cmd(folder, out), cwd=ROOT, env=env(), capture_output=True,
                         text=True)
    if res.returncode != 0:
        sys.exit(f"error: resumed separate failed:\n{res.stderr[-3000:]}")
    manifest = json.loads((out / "shards" / "0-of-1.json").read_text())  # what the rerun did
    redone = sum(1 for p, t in finished.items() if p.stat().st_mtime_ns != t)
    return {"killed_after": len(finished), "resume_done_before": manifest["done_before"],
            "resume_separated": manifest["separated"], "resume_redone": redone,
            "resume_status": manifest["status"], "segments": manifest["segments"]}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--minutes", type=float, nargs="+", default=[2.0, 10.0])
    p.add_argument("--kill-after", type=int, default=10,
                   help="segments before the SIGKILL (0: skip the kill test)")
    p.add_argument("--workdir", default=None)
    p.add_argument("--keep", action="store_true", help="keep the work folder")
    args = p.parse_args()

    work = Path(args.workdir or tempfile.mkdtemp(prefix="bootsep_sepmem_"))
    out: dict = {"cpu_count": os.cpu_count(), "omp_num_threads": env()["OMP_NUM_THREADS"]}
    try:
        for minutes in args.minutes:
            tag = f"{minutes:g}min"
            folder = work / tag
            wav = folder / "recording.wav"
            if not wav.exists():
                write_recording(wav, minutes)
            m = measure(folder, Path(tempfile.mkdtemp(prefix=f"out_{tag}_", dir=work)))
            print(f"{tag}: {m['segments']} segments, peak RSS {m['peak_rss_mb']:.0f} MB, "
                  f"{m['wall_s']:.1f} s; file mode {m['file_peak_rss_mb']:.0f} MB, "
                  f"{m['file_wall_s']:.1f} s", flush=True)
            out[tag] = m
        peaks = [out[f"{m:g}min"]["peak_rss_mb"] for m in args.minutes]
        out["peak_rss_growth_mb"] = peaks[-1] - peaks[0]
        fpeaks = [out[f"{m:g}min"]["file_peak_rss_mb"] for m in args.minutes]
        out["file_peak_rss_growth_mb"] = fpeaks[-1] - fpeaks[0]
        if args.kill_after > 0:
            longest = work / f"{args.minutes[-1]:g}min"
            kr = kill_and_resume(longest, Path(tempfile.mkdtemp(prefix="out_kill_", dir=work)),
                                 args.kill_after)
            print(f"killed after {kr['killed_after']} segments; the rerun found "
                  f"{kr['resume_done_before']} done, separated {kr['resume_separated']}, "
                  f"redid {kr['resume_redone']}", flush=True)
            out.update(kr)
    finally:
        if not args.keep and args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
