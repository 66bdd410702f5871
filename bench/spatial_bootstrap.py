#!/usr/bin/env python3
"""Speech separation bootstrapped from space (issue 17), end to end with the CLI commands.

1. ``prepare`` spatializes a WHAM!-layout folder (default the devdata ``data/espeak_wham``) into
   2-channel reverberant mixtures (``wham/exp/spatial/spatialize.gin``);
2. ``evaluate`` scores the spatial teacher on the 2-channel test mixtures (``teacher.gin``);
3. ``separate`` runs the teacher over the 2-channel training mixtures, recording its
   confidences (and, for the figure below only, its SI-SDR against the references);
4. ``organize`` keeps the top 40 % by the spatial confidence (``--bin above_q2``: 80 %);
5. ``all`` trains and evaluates the single-channel student on microphone 0 of those
   pseudo-sources (``student.gin``) and the same model and budget on the ground truth
   (``supervised.gin``); both are tested on microphone 0 of the test mixtures. The network is a
   2x100 BLSTM mask-inference model (``model.gin`` + ``mi.gin``; ``--model chimera``: with a
   deep-clustering head too, evaluated with its masks; ``--model dc``: the deep-clustering
   network alone, which did not learn to split the talkers at a tenth of this budget).

The devdata set it was measured on (``../shared/devdata``; 3000 training utterances of 96
voices, 100 test mixtures of 32 voices no training mixture uses, about 4 min on 2 cores)::

    .devdata-venv/bin/python ../shared/devdata/make_espeak_wham.py --out data/espeak_wham \
        --n-tr 3000 --n-cv 40 --n-tt 100 --n-spk-trcv 96 --n-spk-tt 32 --seed 1

Options: ``--confidence margin`` (default; organize by ``spatial_margin`` on the teacher's
posteriors) or ``js`` (the predecessor's ``spatial`` JS x balance on the IPD features,
``confidence_js.gin``); ``--epochs`` / ``--epoch-length`` (default model.gin's 60 of 100 steps
of 8 two-second excerpts); ``--rooms-per-utterance`` (training rooms per tr utterance, default
1); ``--parallel`` trains the student and the supervised model at once (one core each; each
logs to ``<run>.log`` next to its folder). Spatializing 3000 utterances takes about 8 min,
the teacher's ``separate`` over them about 25 min, each training about 40 min (2 cores).

Prints per-system figures, then as its LAST line one JSON object::

    {"teacher": dB, "student": dB, "supervised": dB, "teacher_ci95": [lo, hi],
     "student_improved": "k/N", ..., "student_minus_teacher": dB, "mixture_si_sdr": dB,
     "confidence_spearman": rho, "confidence_p": p, "kept_teacher": dB, "dropped_teacher": dB,
     "train_mixtures": n, "kept": n, "test_mixtures": n, ...}

``teacher``/``student``/``supervised``: mean SI-SDRi (dB) over the test mixtures and both
talkers, on microphone 0, with ``<system>_ci95`` its 95 % percentile-bootstrap interval over
the test mixtures (``bootsep.report.mean_ci``, seeded) and ``<system>_improved`` how many
mixtures it improved; ``student_minus_teacher`` / ``student_minus_supervised``: the paired
difference on the same mixtures, with its interval. The teacher separates both channels; its
channel-0 estimates are scored against the same references as the single-channel models.
``confidence_spearman``:
Spearman rho of the spatial confidence against the teacher's SI-SDRi (mean of the two talkers,
microphone 0) over the training mixtures; ``kept_/dropped_teacher``: the teacher's mean SI-SDRi
on the mixtures organize kept / dropped.

Everything lands under ``--runs`` (default ``runs/spatial_bench``) and ``--spatial-root``
(default ``data/spatial_wham``); a rerun resumes every step. Run it in the background::

    nice -n 5 .venv/bin/python bench/spatial_bootstrap.py > /tmp/spatial_bootstrap.log 2>&1 &
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
EXP = "wham/exp/spatial"
BASE = ["wham/env.gin", "wham/wham8k.gin", f"{EXP}/env.gin"]


def run(cmd: list[str], env: dict, log: Path) -> float:
    t0 = time.time()
    print("$", " ".join(cmd), flush=True)
    with open(log, "a") as f:
        f.write("$ " + " ".join(cmd) + "\n")
        f.flush()
        subprocess.run(cmd, cwd=ROOT, env=env, stdout=f, stderr=subprocess.STDOUT, check=True)
    dt = time.time() - t0
    print(f"  {dt:.0f} s", flush=True)
    return dt


def results(folder: Path, metric: str = "SI-SDRi", channel: int = 0) -> dict[str, float]:
    """``{item: mean over sources of metric[channel]}`` from ``folder/*.json``."""
    out = {}
    for p in sorted(folder.glob("*.json")):
        rec = json.loads(p.read_text())
        vals = [v[metric][channel] for v in rec.get("sources", {}).values()
                if v.get(metric) and v[metric][channel] is not None]
        if vals:
            out[rec["item"]] = statistics.fmean(vals)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--wham-root", default="data/espeak_wham")
    ap.add_argument("--spatial-root", default="data/spatial_wham")
    ap.add_argument("--runs", default="runs/spatial_bench")
    ap.add_argument("--rooms-per-utterance", type=int, default=1,
                    help="training rooms per tr utterance (more pseudo-labelled mixtures)")
    ap.add_argument("--epochs", type=int, default=None, help="default model.gin's 60")
    ap.add_argument("--epoch-length", type=int, default=None,
                    help="steps per epoch (default model.gin's 100)")
    ap.add_argument("--bin", default="above_q4",
                    help="organize's confidence bin: 'above_q4' (default, the top 40 %%) or "
                         "'above_q2' (the top 80 %%), or another name of organize's BINS")
    ap.add_argument("--confidence", choices=("margin", "js"), default="margin",
                    help="organize by 'spatial_margin' on the teacher's posteriors (default) or by "
                         "the predecessor's 'spatial' JS(GMM1, GMM2) x balance on its IPD features")
    ap.add_argument("--model", choices=("dc", "chimera", "mi"), default="mi",
                    help="student/supervised network: model.gin's deep clustering, with "
                         "chimera.gin its chimera (evaluated with the mask head), or with mi.gin "
                         "the same BLSTM with a mask head only (default)")
    ap.add_argument("--bind", action="append", default=[],
                    help="extra -b binding for both trainings (e.g. 'train.confidence_power = None')")
    ap.add_argument("--parallel", action="store_true",
                    help="train the student and the supervised model at the same time (one "
                         "process each, e.g. one CPU core each) instead of one after the other")
    ap.add_argument("--suffix", default="",
                    help="appended to the student / supervised run folders, so a variant "
                         "(--bind) trains next to the earlier ones and reuses the teacher's "
                         "separate / organize outputs under the same --runs")
    args = ap.parse_args()

    runs = (ROOT / args.runs).resolve()
    runs.mkdir(parents=True, exist_ok=True)
    log = runs / "bench.log"
    env = dict(os.environ, WHAM_ROOT=str((ROOT / args.wham_root).resolve()),
               SPATIAL_WHAM_ROOT=str((ROOT / args.spatial_root).resolve()),
               SPATIAL_RUNS=str(runs), OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    py = sys.executable
    main_py = str(ROOT / "main.py")
    times = {}
    # 1. spatialize: tr with several rooms per utterance, cv / tt with one
    for splits, rooms, sub in ((["tr"], args.rooms_per_utterance, "tr"), (["cv", "tt"], 1, "cvtt")):
        sroot = (ROOT / args.spatial_root).resolve() / sub
        times[f"spatialize_{sub}"] = run(
            [py, main_py, "prepare", "-c", *BASE, f"{EXP}/spatialize.gin",
             "-b", f"spatialize_wham.output = '{sroot}'", "-b", f"spatialize_wham.splits = {splits}",
             "-b", f"spatialize_wham.rooms_per_utterance = {rooms}"], env, log)
    # one WHAM! root holding all three splits (symlinks to the two renders)
    top = (ROOT / args.spatial_root).resolve() / "all" / "wav8k" / "min"
    top.mkdir(parents=True, exist_ok=True)
    for split, sub in (("tr", "tr"), ("cv", "cvtt"), ("tt", "cvtt")):
        link = top / split
        if not link.exists():
            link.symlink_to((ROOT / args.spatial_root).resolve() / sub / "wav8k" / "min" / split)
    env["SPATIAL_WHAM_ROOT"] = str(top.parent.parent)
    data = [*BASE, f"{EXP}/data.gin"]
    tag = args.confidence
    measure = "spatial_margin" if tag == "margin" else "spatial"
    conf = ([f"{EXP}/confidence_js.gin"] if tag == "js" else [])
    where = ["-b", f"spatial_separated/join_path.relative_path = 'separated_{tag}'",
             "-b", f"spatial_bootstrap/join_path.relative_path = 'bootstrap_data_{tag}/{args.bin}'"]
    # 2. teacher on the 2-channel test mixtures
    times["teacher_eval"] = run([py, main_py, "evaluate", "-c", *data, f"{EXP}/teacher.gin",
                                 *conf, "-o", str(runs / f"teacher_{tag}")], env, log)
    # 3. teacher over the training mixtures; 4. organize
    times["separate"] = run([py, main_py, "separate", "-c", *BASE, f"{EXP}/teacher.gin",
                             f"{EXP}/separate.gin", *conf, *where], env, log)
    times["organize"] = run([py, main_py, "organize", "-c", f"{EXP}/env.gin",
                             f"{EXP}/organize.gin", *conf, *where,
                             "-b", f"organize.bin = '{args.bin}'", "--force"], env, log)
    # 5. student and supervised, same model and budget
    binds = [] if args.epochs is None else ["-b", f"train.num_epochs = {args.epochs}"]
    if args.epoch_length is not None:
        binds += ["-b", f"train.epoch_length = {args.epoch_length}"]
    for b in args.bind:
        binds += ["-b", b]
    sfx, extra = {"dc": ("", []), "chimera": ("_chimera", [f"{EXP}/chimera.gin"]),
                  "mi": ("_mi", [f"{EXP}/mi.gin"])}[args.model]
    bin_sfx = {"above_q2": "", "above_q4": "_q4"}.get(args.bin, f"_{args.bin}")
    dirs = {"teacher": f"teacher_{tag}",
            "student": f"student_{tag}{sfx}{args.suffix}{bin_sfx}",
            "supervised": f"supervised{sfx}{args.suffix}"}
    trainings = {name: [py, main_py, "all", "-c", *data, f"{EXP}/model.gin", f"{EXP}/{name}.gin",
                        *extra, "-o", str(runs / dirs[name]), *where, *binds]
                 for name in ("student", "supervised")}
    if args.parallel:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(2) as pool:
            futures = {name: pool.submit(run, cmd, env, runs / f"{dirs[name]}.log")
                       for name, cmd in trainings.items()}
            times.update({name: f.result() for name, f in futures.items()})
    else:
        for name, cmd in trainings.items():
            times[name] = run(cmd, env, log)

    # ------------------------------------------------------------------ figures
    from scipy.stats import spearmanr

    from bootsep.report import mean_ci

    figures, per_item, intervals = {}, {}, {}
    for name in ("teacher", "student", "supervised"):
        r = per_item[name] = results(runs / dirs[name] / "results")
        figures[name], lo, hi = mean_ci(list(r.values()))
        intervals[f"{name}_ci95"] = [round(lo, 2), round(hi, 2)]
        intervals[f"{name}_improved"] = f"{sum(v > 0 for v in r.values())}/{len(r)}"
        print(f"{name:>10}: SI-SDRi {figures[name]:6.2f} dB (95 % CI {lo:.2f} to {hi:.2f}) over "
              f"{len(r)} test mixtures (mic 0), above the mixture on "
              f"{intervals[f'{name}_improved']}")
    for other in ("teacher", "supervised"):  # paired: the same test mixtures
        common = sorted(set(per_item["student"]) & set(per_item[other]))
        d = [per_item["student"][k] - per_item[other][k] for k in common]
        m, lo, hi = mean_ci(d)
        intervals[f"student_minus_{other}"] = round(m, 2)
        intervals[f"student_minus_{other}_ci95"] = [round(lo, 2), round(hi, 2)]
        print(f"student - {other}: {m:+.2f} dB (95 % CI {lo:+.2f} to {hi:+.2f}), student better "
              f"on {sum(x > 0 for x in d)}/{len(d)}")
    mix = results(runs / dirs["student"] / "results", metric="MIX-SI-SDR")
    sep_dir = runs / f"separated_{tag}" / "results"
    rows = []  # (segment, spatial confidence, teacher SI-SDRi on mic 0)
    for p in sorted(sep_dir.glob("*.json")):
        rec = json.loads(p.read_text())
        c = rec.get("confidence", {}).get(measure)
        q = [v["SI-SDRi"][0] for v in rec.get("sources", {}).values() if v.get("SI-SDRi")]
        if c is not None and q and all(x is not None for x in q):
            rows.append((rec["item"], c, statistics.fmean(q)))
    rho, pval = spearmanr([r[1] for r in rows], [r[2] for r in rows])
    import csv

    with open(runs / f"bootstrap_data_{tag}" / args.bin / "manifest.csv") as f:
        kept_names = {row["segment"] for row in csv.DictReader(f)}
    kept_q = [q for item, _, q in rows if item in kept_names]
    dropped_q = [q for item, _, q in rows if item not in kept_names]
    out = {"teacher": round(figures["teacher"], 2), "student": round(figures["student"], 2),
           "supervised": round(figures["supervised"], 2), **intervals,
           "mixture_si_sdr": round(statistics.fmean(mix.values()), 2) if mix else None,
           "confidence_spearman": round(float(rho), 3), "confidence_p": float(f"{pval:.3g}"),
           "kept_teacher": round(statistics.fmean(kept_q), 2) if kept_q else None,
           "dropped_teacher": round(statistics.fmean(dropped_q), 2) if dropped_q else None,
           "train_mixtures": len(rows), "kept": len(kept_q),
           "test_mixtures": len(results(runs / dirs["student"] / "results")),
           "confidence": measure, "bin": args.bin,
           "epochs": args.epochs, "epoch_length": args.epoch_length, "model": args.model, "suffix": args.suffix,
           "binds": args.bind, "seconds": {k: round(v) for k, v in times.items()}}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
