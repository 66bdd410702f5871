#!/usr/bin/env python3
"""How good are a teacher's pseudo-labels, and the students' own estimates, on the TRAINING
mixtures? (issue 16: why a teacher that follows the student does or does not help.)

RemixIT's premise is that the student soon separates the unlabelled training mixtures better
than its teacher, so handing the teacher role over gives better targets. Where the unlabelled
songs have references (the demo's procedural songs, the dev chorales), that premise can be
measured: ``separate`` already scored the primitive teacher on every segment (its
``results/*.json``, kept or not by ``organize``); this script runs each given student
checkpoint on the same segments (the same mixture samples, all channels) and scores it the same
way.

Usage (after ``make demo`` and ``make unsupervised``)::

    .venv/bin/python bench/teacher_student_quality.py --separate runs/demo/separate/data \\
        --organize runs/demo/organize/data \\
        --student bootstrapped=runs/demo/student/checkpoints/best.pth \\
        --student remixit=runs/demo/unsupervised/remixit/checkpoints/best.pth

Prints mean SI-SDR (dB, mean over channels per segment) per system and source over all scored
segments, the ones organize kept and the ones it dropped, and last one JSON line
``{system: {"all"|"kept"|"dropped": {source: mean SI-SDR}}}`` (``teacher`` = the separator that
``separate`` ran).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def read_slice(path: str, start: int, stop: int, sample_rate: int) -> torch.Tensor:
    """``(channels, stop - start)`` float32 samples of a file at ``sample_rate``."""
    import soundfile as sf

    from bootsep.utils.errors import UserError

    info = sf.info(path)
    if info.samplerate != sample_rate:
        raise UserError(f"{path}: {info.samplerate} Hz, but separate ran at {sample_rate} Hz; "
                        "this script reads the references as they are (no resampling)")
    x, _ = sf.read(path, start=start, stop=stop, dtype="float32", always_2d=True)
    return torch.from_numpy(x.T.copy())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--separate", required=True, help="separate's output folder (has results/)")
    p.add_argument("--organize", default=None,
                   help="organize's output folder (its manifest.csv says which segments were "
                        "kept); without it only 'all' is reported")
    p.add_argument("--student", action="append", default=[], metavar="NAME=CHECKPOINT",
                   help="a trained model to score on the same segments (repeatable)")
    p.add_argument("--every", type=int, default=1, help="score every N-th segment (default 1)")
    args = p.parse_args()
    torch.set_num_threads(1)

    from tqdm import tqdm

    from bootsep.metrics import si_sdr
    from bootsep.separation.deep import load_separator
    from bootsep.utils.errors import UserError

    results = sorted((Path(args.separate) / "results").glob("*.json"))[:: max(1, args.every)]
    if not results:
        raise UserError(f"{args.separate}/results has no per-segment results; pass the folder "
                        "`separate` wrote (its `-o`/data)")
    kept = None
    if args.organize:
        manifest = Path(args.organize) / "manifest.csv"
        if not manifest.is_file():
            raise UserError(f"{manifest} does not exist; pass organize's output folder")
        with open(manifest, newline="") as f:
            kept = {row["segment"] for row in csv.DictReader(f)}
    students = {}
    for spec in args.student:
        name, sep, path = spec.partition("=")
        if not sep or not name or name == "teacher":
            raise UserError(f"--student {spec!r}: give NAME=CHECKPOINT (NAME not 'teacher')")
        students[name] = load_separator(path, device="cpu")

    rows = []
    for path in tqdm(results, desc="segments", disable=None):
        rec = json.loads(path.read_text())
        meta = rec.get("metadata", {})
        refs = meta.get("reference_paths") or {}
        if not refs:
            continue
        sr, start, stop = meta["sample_rate"], meta["start"], meta["stop"]
        row = {"segment": rec["item"], "kept": None if kept is None else rec["item"] in kept,
               "teacher": {s: float(np.mean(m["SI-SDR"])) for s, m in rec["sources"].items()}}
        mix = read_slice(meta["mixture_path"], start, stop, sr)
        ref = {s: sum(read_slice(f, start, stop, sr) for f in files) for s, files in refs.items()}
        for name, sep in students.items():
            if sep.sample_rate != sr:
                raise UserError(f"--student {name}: runs at {sep.sample_rate} Hz, the segments "
                                f"are at {sr} Hz")
            with torch.no_grad():
                out = sep.separate(mix)
            row[name] = {}
            for s in ref:
                if s in out.labels:
                    est = out.estimates[out.labels.index(s)]
                    row[name][s] = float(si_sdr(est.double(), ref[s].double()).mean())
        rows.append(row)
    if not rows:
        raise UserError(f"no segment in {args.separate} has references; this needs unlabelled "
                        "songs with stems (the demo's or the dev chorales')")

    systems = ["teacher", *students]
    sources = sorted(rows[0]["teacher"])
    subsets = {"all": rows}
    if kept is not None:
        subsets["kept"] = [r for r in rows if r["kept"]]
        subsets["dropped"] = [r for r in rows if not r["kept"]]
    summary: dict = {}
    print(f"SI-SDR (dB) on separate's segments ({len(rows)} scored)")
    print(f"{'system':20s}" + "".join(f"{sub + ' ' + s:>26s}" for sub in subsets for s in sources))
    for system in systems:
        summary[system] = {}
        cells = []
        for sub, sel in subsets.items():
            summary[system][sub] = {}
            for s in sources:
                vals = [r[system][s] for r in sel if s in r.get(system, {})]
                mean = round(float(np.mean(vals)), 3) if vals else None
                summary[system][sub][s] = mean
                cells.append(f"{mean if mean is not None else float('nan'):>20.2f} (n={len(vals):3d})")
        print(f"{system:20s}" + "".join(f"{c:>26s}" for c in cells))
    print(json.dumps(summary))


if __name__ == "__main__":
    from bootsep.utils.errors import run_main

    sys.exit(run_main(main))  # a user mistake: one error line, exit 2
