"""One comparison per sweep: ``python -m bootsep.report.compare --sweep runs/sweep``.

Reads the sweep folder written by ``instantiate`` (``sweep.json``: each run's swept setting)
and every run's ``results/*.json``, then writes into the sweep folder:

    comparison.md     a table: run, each swept parameter, the headline metric per source and
                      its mean over sources, items scored (runs not evaluated yet are listed)
    comparison.json   {"metric", "parameters", "runs": {run: {"setting", "items", "scores"}}}
    comparison.png    the headline metric against each swept parameter (one panel each; the
                      runs sharing the other parameters' values are joined by a line)
    hparams/<run>/    TensorBoard HParams events: the swept parameters with the final metrics,
                      so ``tensorboard --logdir <sweep>`` shows the sweep in its HParams tab

and prints the table, then the path of ``comparison.md`` as the last line. Gin-free.
"""

from __future__ import annotations

import ast
import json
import math
import re
from collections.abc import Sequence
from pathlib import Path

from ..utils.errors import UserError
from ..utils.io import atomic_write_json, atomic_write_text

SWEEP_JSON = "sweep.json"
HEADLINE = "SI-SDR"
_RUN_RE = re.compile(r"^run(\d+)(:|$)")


def run_folders(folder: Path) -> list[Path]:
    """The ``run<N>[:...]`` folders of a sweep folder, by N."""
    if not folder.is_dir():
        return []
    runs = [p for p in folder.iterdir() if p.is_dir() and _RUN_RE.match(p.name)]
    return sorted(runs, key=lambda p: (int(_RUN_RE.match(p.name).group(1)), p.name))


def load_sweep(folder: str | Path) -> dict:
    """``<folder>/sweep.json``: ``{"runs": {run_name: {"setting": {key: value},
    "gpus_per_run": N}}}`` (``{"runs": {}}`` when absent). Run folders it does not list (made
    before it existed) are read from their ``config.gin`` header (``# sweep setting: {...}``).

    Raises:
        UserError: ``sweep.json`` exists but is not valid JSON.
    """
    folder = Path(folder)
    path = folder / SWEEP_JSON
    data: dict = {"runs": {}}
    if path.is_file():
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise UserError(f"{path}: unreadable ({e}); it lists the sweep's runs, restore or "
                            "delete it") from None
    runs = data.setdefault("runs", {})
    for run in run_folders(folder):
        if run.name in runs or not (run / "config.gin").is_file():
            continue
        setting = {}
        for line in (run / "config.gin").read_text().splitlines()[:5]:
            if line.startswith("# sweep setting: "):
                text = line[len("# sweep setting: "):].strip()
                try:
                    setting = {} if text == "none" else ast.literal_eval(text)
                except (ValueError, SyntaxError):
                    setting = {}
        runs[run.name] = {"setting": setting, "gpus_per_run": 1}
    return data


def _scores(run: Path, metric: str) -> tuple[dict[str, float], int]:
    """Mean of ``metric`` (and its improvement ``metric + 'i'`` when present) per source over
    the run's items, and the item count; ``({}, 0)`` for a run without results."""
    from .aggregate import load_results

    if not (run / "results").is_dir() or not any((run / "results").glob("*.json")):
        return {}, 0
    df = load_results(run / "results")
    if metric not in df.columns:
        raise UserError(f"{run}/results has no {metric!r} scores; choose --metric from "
                        f"{[c for c in df.columns if c not in ('item', 'source')]}")
    out = {}
    for source in sorted(df["source"].astype(str).unique()):
        rows = df[df["source"].astype(str) == source]
        out[source] = float(rows[metric].mean())
    return out, int(df["item"].nunique())


def _hparam_value(v):
    if isinstance(v, bool) or isinstance(v, (int, float, str)):
        return v
    return str(v)


def write_hparams(folder: Path, runs: dict[str, dict], metric: str) -> Path:
    """TensorBoard HParams events under ``<folder>/hparams/<run>/`` (one session per evaluated
    run: its setting as hparams, ``final/<metric>/<source>`` and ``final/<metric>`` as metrics).
    A rerun replaces the event files an earlier comparison wrote there."""
    from torch.utils.tensorboard import SummaryWriter
    from torch.utils.tensorboard.summary import hparams as hparams_summaries

    root = folder / "hparams"
    for name, entry in runs.items():
        if not entry["scores"]:
            continue
        logdir = root / name
        if logdir.is_dir():
            for old in logdir.glob("events.out.tfevents.*"):  # ours, from a previous comparison
                old.unlink()
        hparams = {k: _hparam_value(v) for k, v in entry["setting"].items()} or {"run": name}
        metrics = {f"final/{metric}/{s}": v for s, v in entry["scores"].items()}
        metrics[f"final/{metric}"] = entry["mean"]
        # what SummaryWriter.add_hparams writes, but into this run's own folder (add_hparams
        # opens a second event file in a sub-folder per call)
        with SummaryWriter(log_dir=str(logdir)) as w:
            for summary in hparams_summaries(hparams, metrics):
                w._get_file_writer().add_summary(summary)  # noqa: SLF001
            for tag, value in metrics.items():
                w.add_scalar(tag, value, 0)
    return root


def _numeric(values: Sequence) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def plot_sweep(runs: dict[str, dict], parameters: list[str], metric: str, path: Path) -> Path:
    """The mean ``metric`` over sources against each swept parameter (one panel each)."""
    from .plots import _figure, _save

    done = {k: v for k, v in runs.items() if v["scores"]}
    params = parameters or ["run"]
    fig = _figure(max(4.5, 4.2 * len(params)), 3.6)
    axes = fig.subplots(1, len(params), squeeze=False)[0]
    for ax, p in zip(axes, params):
        if not done:
            ax.text(0.5, 0.5, "no evaluated run yet", ha="center", va="center",
                    transform=ax.transAxes)
            ax.set_axis_off()
            continue
        values = [v["setting"].get(p, name) if p != "run" else name for name, v in done.items()]
        numeric = _numeric(values)
        order = sorted(set(values), key=lambda v: (v if numeric else str(v)))
        xpos = {v: (float(v) if numeric else i) for i, v in enumerate(order)}
        groups: dict[str, list[tuple[float, float]]] = {}
        for entry, v in zip(done.values(), values):
            others = {k: entry["setting"].get(k) for k in parameters if k != p}
            label = ", ".join(f"{k.split('.')[-1]}={o}" for k, o in others.items()) or metric
            groups.setdefault(label, []).append((xpos[v], entry["mean"]))
        for label, pts in groups.items():
            pts.sort()
            ax.plot([x for x, _ in pts], [y for _, y in pts], marker="o", label=label)
        if numeric and len(order) > 1 and min(order) > 0 and max(order) / min(order) >= 10:
            ax.set_xscale("log")
        if not numeric:
            ax.set_xticks(range(len(order)), [str(v) for v in order], rotation=20)
        elif len(order) <= 8:
            ax.set_xticks([float(v) for v in order], [str(v) for v in order])
        ax.set_xlabel(p)
        ax.set_ylabel(f"{metric} (dB), mean over sources")
        ax.grid(alpha=0.3)
        if len(groups) > 1 or parameters:
            ax.legend(fontsize=7, loc="best")
        ax.set_title(f"{metric} vs {p.split('.')[-1]}", fontsize=10)
    return _save(fig, path)


def compare_sweep(folder: str | Path, metric: str = HEADLINE) -> dict:
    """Build the sweep comparison (module docstring). Returns ``{'md', 'json', 'png',
    'hparams', 'text', 'runs'}``.

    Raises:
        UserError: ``folder`` holds no ``run*`` folders.
    """
    folder = Path(folder)
    data = load_sweep(folder)
    names = [r.name for r in run_folders(folder)]
    if not names:
        raise UserError(f"{folder} has no run*/ folders; pass the -o folder of "
                        "`main.py instantiate`")
    parameters = sorted({k for n in names for k in data["runs"].get(n, {}).get("setting", {})})
    runs: dict[str, dict] = {}
    for name in names:
        setting = data["runs"].get(name, {}).get("setting", {})
        scores, items = _scores(folder / name, metric)
        mean = float(sum(scores.values()) / len(scores)) if scores else math.nan
        runs[name] = {"setting": setting, "items": items, "scores": scores, "mean": mean}
    sources = sorted({s for r in runs.values() for s in r["scores"]})

    head = ["run", *parameters, *(f"{s} {metric}" for s in sources), f"mean {metric}", "items"]
    lines = [f"# Sweep {folder.name}: {metric} per run", "",
             f"Mean over test items (channels: median) of {metric} in dB; `mean` is over sources. "
             "Runs without results are not evaluated yet.", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    ranked = sorted(runs.items(), key=lambda kv: -kv[1]["mean"] if kv[1]["scores"] else math.inf)
    for name, r in ranked:
        cells = [name, *(str(r["setting"].get(p, "")) for p in parameters)]
        if r["scores"]:
            cells += [_fmt(r["scores"].get(s)) for s in sources] + [_fmt(r["mean"]), str(r["items"])]
        else:
            cells += ["n/a"] * len(sources) + ["not evaluated", "0"]
        lines.append("| " + " | ".join(cells) + " |")
    best = next(((n, r) for n, r in ranked if r["scores"]), None)
    if best:
        lines += ["", f"Best: {best[0]} ({_fmt(best[1]['mean'])} dB mean {metric})."]
    result = {"md": folder / "comparison.md", "json": folder / "comparison.json",
              "png": folder / "comparison.png", "runs": runs}
    plot_sweep(runs, parameters, metric, result["png"])
    result["hparams"] = write_hparams(folder, runs, metric)
    lines += ["", f"Plot: {result['png'].name}; TensorBoard HParams: "
              f"`tensorboard --logdir {folder}` (events in {result['hparams'].name}/)."]
    atomic_write_json(result["json"], {"metric": metric, "parameters": parameters, "runs": runs})
    atomic_write_text(result["md"], "\n".join(lines) + "\n")
    result["text"] = "\n".join(lines)
    return result


def _fmt(x) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:.2f}"
