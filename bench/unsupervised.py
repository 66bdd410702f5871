"""Three ways to learn separation without ground truth, side by side on the demo (issue 16).

On the demo's unlabelled mixtures, with the demo student's model (Open-Unmix-style BLSTM mask
model) and step budget (16 epochs x 150 steps x 16 excerpts of 1.5 s):

* ``bootstrapped``  the paper's one-round student on the primitive ensemble's confident
                    separations (from ``make demo``);
* ``remixit``       RemixIT started from the same primitive teacher (its confident separations,
                    remixed across each batch); after 8 epochs the student becomes the teacher,
                    updated by an exponential moving average (musdb/demo/unsupervised/remixit.gin);
* ``mixit``         MixIT on mixtures of two unlabelled mixtures, 4 outputs
                    (musdb/demo/unsupervised/mixit.gin), its outputs grouped into accompaniment
                    and vocals by ONE grouping chosen on the labelled validation excerpts;
* ``mixit_oracle``  the same MixIT model, grouped per test song with the ORACLE grouping (best
                    SI-SDR against that song's references): an upper bound, not a system;

next to ``mixture``, ``ensemble`` (the teacher) and ``supervised`` (same model and budget on the
ground-truth stems), all from the same demo test songs. Everything resumes: finished runs and
evaluations are not redone.

Usage (from the repository root, after ``make demo``; runs it first when its comparison is
missing)::

    .venv/bin/python bench/unsupervised.py [--demo-runs runs/demo] [--output runs/demo/unsupervised]
                                           [--extra-config tiny.gin]

Prints the table (with wall time per system) and, last, one JSON line
``{system: {source: {"SI-SDR": mean, "SI-SDRi": mean}}}``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
D = "musdb/demo"
DATA = [f"{D}/env.gin", f"{D}/data.gin", f"{D}/bootstrap/paths.gin", f"{D}/bootstrap/model.gin"]
REMIXIT = [f"{D}/bootstrap/bootstrapped.gin", f"{D}/unsupervised/remixit.gin"]
MIXIT = [f"{D}/unsupervised/mixit.gin"]
SYSTEMS = ("mixture", "ensemble", "bootstrapped", "remixit", "mixit_oracle", "mixit", "supervised")


def main_py(args: list[str], env: dict) -> float:
    """Run ``python main.py ARGS``; returns its wall time in seconds (raises on failure)."""
    t0 = time.time()
    cmd = [sys.executable, str(ROOT / "main.py"), *args]
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, cwd=ROOT, env=env, check=True)
    return time.time() - t0


def run_seconds(run: Path) -> float | None:
    """Wall time of a run folder's successful invocations, from its provenance.json."""
    path = run / "provenance.json"
    if not path.is_file():
        return None
    records = json.loads(path.read_text())
    records = records if isinstance(records, list) else records.get("invocations", [])
    from datetime import datetime

    total = 0.0
    for r in records:
        if r.get("status") != "ok" or not r.get("start") or not r.get("end"):
            continue
        start, end = (datetime.fromisoformat(str(r[k])) for k in ("start", "end"))
        total += (end - start).total_seconds()
    return total or None


def choose_groups(configs: list[str], checkpoint: Path, env: dict) -> dict:
    """The one grouping of the MixIT model's outputs with the best mean SI-SDR on the labelled
    validation excerpts of the demo config (never the test songs)."""
    os.environ.update({k: v for k, v in env.items() if k.startswith("BOOTSEP_")})
    from bootsep.cli.main import parse_configs
    from bootsep.config.experiment import scoped_dataset
    from bootsep.separation.deep import load_separator
    from bootsep.separation.grouped import choose_grouping

    parse_configs([str(ROOT / c) for c in configs], [])
    val = scoped_dataset("val")
    sep = load_separator(str(checkpoint), device="cpu")
    items = []
    for i in range(len(val)):
        item = val[i]
        items.append((sep.separate(item["mix"]).estimates, item["sources"]))
    return choose_grouping(items, list(val.sources))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--demo-runs", default=os.environ.get("BOOTSEP_DEMO_RUNS", "runs/demo"),
                   help="the make-demo run folder (ensemble, bootstrapped, supervised, organize output)")
    p.add_argument("--output", default=None, help="where remixit/mixit runs go "
                   "(default <demo-runs>/unsupervised)")
    p.add_argument("--extra-config", default=None, help="a gin file parsed last in every step "
                   "(e.g. to shrink everything for a smoke test)")
    args = p.parse_args(argv)
    demo = Path(args.demo_runs)
    out = Path(args.output) if args.output else demo / "unsupervised"
    extra = [args.extra_config] if args.extra_config else []
    env = dict(os.environ, BOOTSEP_DEMO_RUNS=str(demo), PYTHONUNBUFFERED="1")
    env.setdefault("OMP_NUM_THREADS", "1")
    times: dict[str, float | None] = {}

    if not (demo / "comparison.json").is_file():
        print(f"== {demo}/comparison.json missing: running the paper demo first", flush=True)
        script_env = dict(env, PY=sys.executable)
        if args.extra_config:
            script_env["BOOTSEP_DEMO_EXTRA_CONFIG"] = args.extra_config
        subprocess.run(["sh", f"{D}/paper_demo.sh"], cwd=ROOT, env=script_env, check=True)
    # the demo's runs (`bootstrap` stage folders): the teacher's evaluation, the student, the
    # organize output both students train on, and the supervised reference
    demo_runs = {"ensemble": demo / "teacher", "bootstrapped": demo / "student",
                 "supervised": demo / "supervised"}
    organized = demo / "organize" / "data"
    for name, run in demo_runs.items():
        times[name] = run_seconds(run)

    print("== RemixIT from the primitive teacher", flush=True)
    times["remixit"] = main_py(["all", "-c", *DATA, *REMIXIT, *extra, "-o", str(out / "remixit"),
                                "-b", f"BootstrappedDataset.folder = '{organized}'"], env)

    print("== MixIT", flush=True)
    mixit = out / "mixit"
    times["mixit"] = main_py(["train", "-c", *DATA, *MIXIT, *extra, "-o", str(mixit)], env)
    groups = choose_groups(DATA + MIXIT + extra, mixit / "checkpoints" / "latest.pth", env)
    print(f"grouping chosen on the validation excerpts: {groups}", flush=True)
    times["mixit"] += main_py(["evaluate", "-c", *DATA, *MIXIT, *extra, "-o", str(mixit),
                               "-b", f"GroupedSeparator.groups = {groups!r}"], env)
    times["mixit_oracle"] = times["mixit"] + main_py(
        ["evaluate", "-c", *DATA, *MIXIT, f"{D}/unsupervised/oracle.gin", *extra,
         "-o", str(out / "mixit_oracle"),
         "-b", f"deep_separator.checkpoint = '{mixit / 'checkpoints' / 'latest.pth'}'"], env)

    from bootsep.report.compare import compare

    systems = {"ensemble": demo_runs["ensemble"], "bootstrapped": demo_runs["bootstrapped"],
               "remixit": out / "remixit", "mixit_oracle": out / "mixit_oracle",
               "mixit": mixit, "supervised": demo_runs["supervised"]}
    result = compare(systems, out, title="Unsupervised methods on the demo test songs "
                     "(mixit: grouping chosen on validation excerpts; mixit_oracle: per-song "
                     "oracle grouping, an upper bound)")
    table = json.loads(Path(result["json"]).read_text())
    print()
    print("| system | vocals SI-SDR | vocals SI-SDRi | acc. SI-SDR | acc. SI-SDRi | wall time |")
    print("|---|---|---|---|---|---|")
    for name in SYSTEMS:
        row = table[name]
        t = times.get(name)
        wall = "-" if t is None else f"{t / 60:.1f} min"
        print(f"| {name} | {row['vocals']['SI-SDR']:.2f} | {row['vocals']['SI-SDRi']:.2f} | "
              f"{row['accompaniment']['SI-SDR']:.2f} | {row['accompaniment']['SI-SDRi']:.2f} | "
              f"{wall} |")
    print(f"(mixit grouping: {groups}; wall times from each run's provenance or this script, "
          f"{os.cpu_count()} cores)")
    print(json.dumps({name: table[name] for name in SYSTEMS}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
