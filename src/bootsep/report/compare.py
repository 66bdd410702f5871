"""Compare evaluated runs in one table: ``python -m bootsep.report.compare``.

Reads ``<run>/results/*.json`` of each system (written by ``evaluate``), takes the mean over
items of SI-SDR and SI-SDRi per source (channels reduced by their median, as in the report
card) and adds the ``mixture`` row (the mixture itself as the estimate: SI-SDR =
``MIX-SI-SDR``, SI-SDRi = 0). Writes, next to each other::

    comparison.md      the table (Markdown) with the item counts and where each row comes from
    comparison.json    {system: {source: {"SI-SDR": mean, "SI-SDRi": mean}}}
    comparison_bsseval_v4.json   {system: {source: {"SDR" | "SIR" | "SAR" | "ISR":
                       {"median": over items, "mean": over items, "items": n}}}}, when every
                       system was evaluated with BSS-Eval v4 (``evaluate.metrics``); the
                       Markdown then gets a SiSEC-style table (median over items of each
                       item's median over frames)
    confidence_vs_sisdr.png   confidence against SI-SDR per separated segment (with --separated)

and prints the table, then, as its last line, the path of ``comparison.md``.

Usage::

    python -m bootsep.report.compare --output runs/demo \\
        --system ensemble=runs/demo/ensemble --system bootstrapped=runs/demo/bootstrapped \\
        --system supervised=runs/demo/supervised \\
        --separated runs/demo/separated --measure combined

Without ``--system``, the systems are ``ensemble``, ``bootstrapped`` and ``supervised`` in
sub-folders of ``--output`` (default ``runs/demo``).

A sweep folder made by ``instantiate`` gets its own comparison (table, plot of the headline
metric against the swept values, TensorBoard hparams; :mod:`bootsep.report.sweep`)::

    python -m bootsep.report.compare --sweep runs/sweep [--metric SI-SDR]
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from ..utils.errors import UserError, report
from ..utils.io import atomic_write_json, atomic_write_text

METRICS = ("SI-SDR", "SI-SDRi")
DEFAULT_SYSTEMS = ("ensemble", "bootstrapped", "supervised")


def system_means(run_dir: str | Path, sources: Sequence[str] | None = None) -> tuple[dict, dict, int]:
    """``({source: {metric: mean}}, {source: MIX-SI-SDR mean}, items)`` of one evaluated run."""
    from .aggregate import load_results

    df = load_results(Path(run_dir) / "results")
    if "MIX-SI-SDR" not in df.columns:
        raise UserError(f"{run_dir} has no SI-SDR results (it was evaluated with "
                        "evaluate.metrics = ['bsseval_v4'] alone); evaluate it again with "
                        "evaluate.metrics = ['si_sdr', 'bsseval_v4'] to compare it")
    srcs = list(sources) if sources is not None else sorted(df["source"].unique())
    out, mix = {}, {}
    for s in srcs:
        rows = df[df["source"] == s]
        if rows.empty:
            raise UserError(f"{run_dir} has no results for source {s!r}")
        out[s] = {m: float(rows[m].mean()) for m in METRICS}
        mix[s] = float(rows["MIX-SI-SDR"].mean())
    return out, mix, int(df["item"].nunique())


def compare(systems: Mapping[str, str | Path], output: str | Path,
            sources: Sequence[str] = ("vocals", "accompaniment"), separated=None,
            measure: str = "combined", title: str | None = None,
            cut_percentile: float | None = None, segments_label: str | None = None) -> dict:
    """Build the comparison (module docstring); returns ``{'table', 'json', 'md', 'png'}``.

    ``cut_percentile`` (e.g. 20 for organize's ``above_q2``) marks that confidence percentile on
    the plot and reports the teacher's mean quality of the segments above and below it.
    ``segments_label`` names the plotted segments in the text (default ``'training segments'``).
    """
    from .plots import spearman

    output = Path(output)
    table: dict[str, dict] = {}
    info: dict[str, tuple] = {}
    mixture = None
    for name, run in systems.items():
        run = Path(run)
        if not (run / "results").is_dir():
            raise UserError(f"system {name!r}: {run}/results not found; run `evaluate` first")
        means, mix, items = system_means(run, sources)
        table[name] = means
        info[name] = (str(run), items)
        if mixture is None:
            mixture = mix
        elif any(abs(mixture[s] - mix[s]) > 1e-6 for s in sources):
            raise UserError(f"system {name!r} was evaluated on other test items than the first "
                            f"system (MIX-SI-SDR differs); compare runs on the same test set")
    table = {"mixture": {s: {"SI-SDR": mixture[s], "SI-SDRi": 0.0} for s in sources}, **table}
    result = {"json": output / "comparison.json", "md": output / "comparison.md",
              "table": table}
    atomic_write_json(result["json"], table)
    lines = [f"# {title or 'Separation quality on the test set'}", "",
             "Mean over test items (channels: median) of SI-SDR and SI-SDRi in dB.", ""]
    head = "| system | " + " | ".join(f"{s} {m}" for s in sources for m in METRICS) + " |"
    lines += [head, "|" + "---|" * (1 + len(sources) * len(METRICS))]
    for name, row in table.items():
        cells = " | ".join(_fmt(row[s][m]) for s in sources for m in METRICS)
        lines.append(f"| {name} | {cells} |")
    lines += ["", "Runs: " + "; ".join(f"{k}: {v[0]} ({v[1]} items)" for k, v in info.items())]
    lines += per_song_lines(systems, sources)
    v4 = bsseval_table(systems, sources)
    if v4 is not None:
        result["bsseval_json"] = output / "comparison_bsseval_v4.json"
        atomic_write_json(result["bsseval_json"], v4)
        lines += bsseval_lines(v4, sources)
    if separated is not None:
        from ..bootstrap.organize import load_segments
        from .plots import plot_scatter

        df = load_segments(separated, measure)
        col = "vocals/SI-SDR" if "vocals/SI-SDR" in df.columns else next(
            (c for c in df.columns if c.endswith("/SI-SDR")), None)
        if col is not None:
            cut, kept = None, None
            if cut_percentile is not None:   # organize's own selection (p_min < percentile)
                from ..bootstrap.organize import select_segments

                chosen = set(select_segments(df, float(cut_percentile), 100.0)["segment"])
                kept = df["segment"].isin(chosen)
                if kept.any():
                    cut = float(df.loc[kept, "confidence"].min())
            png = output / "confidence_vs_sisdr.png"
            plot_scatter(df["confidence"], df[col], png, xlabel=f"confidence ({measure})",
                         ylabel=f"{col} (dB)",
                         title="Teacher's confidence vs quality per segment",
                         vline=cut, vline_label=None if cut is None else
                         f"kept: above the {cut_percentile:g}th percentile")
            rho, p, n = spearman(df["confidence"], df[col])
            result["png"] = png
            lines += ["", f"Confidence ({measure}) against {col} of the teacher's separations of "
                      f"{n} {segments_label or 'training segments'}: Spearman rho = {rho:.2f} (p = {p:.2g}); "
                      f"plot: {png.name}"]
            if kept is not None:
                lines += [f"Segments above the {cut_percentile:g}th confidence percentile "
                          f"({int(kept.sum())}): teacher's mean {col} "
                          f"{_fmt(float(df.loc[kept, col].mean()))} dB; below it "
                          f"({int((~kept).sum())}): {_fmt(float(df.loc[~kept, col].mean()))} dB."]
    atomic_write_text(result["md"], "\n".join(lines) + "\n")
    result["text"] = "\n".join(lines)
    return result


def per_song_lines(systems: Mapping[str, str | Path], sources: Sequence[str],
                   metric: str = "SI-SDR") -> list[str]:
    """Markdown sections computed from the per-song scores (the claims made about a
    comparison, computed rather than typed): the spread of ``metric`` over songs per system
    (mean ± std, min .. max; ``n = 1`` when one song), a win matrix per source (songs where
    the row system scores strictly higher than the column one, over the songs all systems
    share; ``mixture`` = the mixture as the estimate), each system against the previous one,
    and, for three systems in a row, how much of the gap from the first to the third the
    middle one closes."""
    import numpy as np

    from .aggregate import load_results

    per: dict[str, dict[str, dict[str, float]]] = {}
    for name, run in systems.items():
        df = load_results(Path(run) / "results")
        for s in sources:
            rows = df[df["source"].astype(str) == s]
            per.setdefault(name, {})[s] = dict(zip(rows["item"].astype(str), rows[metric]))
            if "mixture" not in per or s not in per["mixture"]:
                per.setdefault("mixture", {})[s] = dict(zip(rows["item"].astype(str),
                                                            rows["MIX-" + metric]))
    names = ["mixture", *systems]
    out = ["", f"## Spread over songs ({metric}, dB)", "",
           "Mean ± standard deviation over songs, then the range.", "",
           "| system | " + " | ".join(sources) + " |", "|" + "---|" * (1 + len(sources))]
    for name in names:
        cells = []
        for s in sources:
            v = np.array([x for x in per[name][s].values() if np.isfinite(x)], dtype=float)
            if v.size == 0:
                cells.append("n/a")
            elif v.size == 1:
                cells.append(f"{v[0]:.2f} (n = 1)")
            else:
                cells.append(f"{v.mean():.2f} ± {v.std(ddof=1):.2f} "
                             f"({v.min():.2f} .. {v.max():.2f}, n = {v.size})")
        out.append(f"| {name} | " + " | ".join(cells) + " |")
    for s in sources:
        common = sorted(set.intersection(*(set(per[n][s]) for n in names)))
        out += ["", f"## Per-song wins: {s} {metric}", "",
                f"Songs (of the {len(common)} all systems share) where the row system scores "
                "higher than the column system.", "",
                "| row beats column | " + " | ".join(names) + " |", "|" + "---|" * (1 + len(names))]
        for a in names:
            cells = ["–" if a == b else str(sum(per[a][s][i] > per[b][s][i] for i in common))
                     for b in names]
            out.append(f"| {a} | " + " | ".join(cells) + " |")
        runs = list(systems)
        for prev, cur in zip(runs, runs[1:]):
            wins = sum(per[cur][s][i] > per[prev][s][i] for i in common)
            out.append(f"\n{cur} beats {prev} on {wins} of {len(common)} songs ({s}).")
        for a, b, c in zip(runs, runs[1:], runs[2:]):
            ma, mb, mc = (float(np.nanmean([per[n][s][i] for i in common])) for n in (a, b, c))
            if common and abs(mc - ma) > 1e-9:
                out.append(f"{b} closes {100 * (mb - ma) / (mc - ma):.0f} % of the gap from "
                           f"{a} to {c} ({s}, mean {metric} over these songs).")
    return out


BSSEVAL_METRICS = ("SDR", "SIR", "SAR", "ISR")


def bsseval_table(systems: Mapping[str, str | Path], sources: Sequence[str]) -> dict | None:
    """``{system: {source: {metric: {'median', 'mean', 'items'}}}}`` of the BSS-Eval v4 rows
    (each item's median over frames, then the median and mean over items: SiSEC), or None
    unless every system has them."""
    from .aggregate import load_results

    table = {}
    for name, run in systems.items():
        df = load_results(Path(run) / "results")
        if not set(BSSEVAL_METRICS) <= set(df.columns):
            return None
        table[name] = {}
        for s in sources:
            rows = df[df["source"].astype(str) == s]
            table[name][s] = {m: {"median": float(rows[m].median()),
                                  "mean": float(rows[m].mean()),
                                  "items": int(rows[m].notna().sum())} for m in BSSEVAL_METRICS}
    return table


def bsseval_lines(table: dict, sources: Sequence[str]) -> list[str]:
    """The Markdown section of :func:`bsseval_table`."""
    out = ["", "## BSS-Eval v4 (museval)", "",
           "Median over items (mean in brackets) of each item's median over its frames, in dB: "
           "the SiSEC / MUSDB18 aggregation.", "",
           "| system | " + " | ".join(f"{s} {m}" for s in sources for m in BSSEVAL_METRICS)
           + " |", "|" + "---|" * (1 + len(sources) * len(BSSEVAL_METRICS))]
    for name, row in table.items():
        cells = " | ".join(f"{_fmt(row[s][m]['median'])} ({_fmt(row[s][m]['mean'])})"
                           for s in sources for m in BSSEVAL_METRICS)
        out.append(f"| {name} | {cells} |")
    return out


def _fmt(x: float) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:.2f}"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bootsep.report.compare",
                                description="compare evaluated runs in one table")
    p.add_argument("--output", default="runs/demo", help="folder for comparison.md/.json/.png")
    p.add_argument("--system", action="append", default=[], metavar="NAME=RUN",
                   help="a system and its run folder (repeatable; default: "
                        + ", ".join(DEFAULT_SYSTEMS) + " under --output)")
    p.add_argument("--sources", nargs="+", default=["vocals", "accompaniment"])
    p.add_argument("--separated", nargs="*", default=None,
                   help="separate output folder(s) for the confidence-vs-SI-SDR plot")
    p.add_argument("--measure", default="combined", help="confidence measure of the plot")
    p.add_argument("--cut-percentile", type=float, default=None,
                   help="mark this confidence percentile (the selection) on the plot")
    p.add_argument("--title", default=None)
    p.add_argument("--sweep", default=None, metavar="SWEEP_FOLDER",
                   help="compare the runs of an `instantiate` sweep folder instead: table, plot "
                        "of --metric against the swept values, TensorBoard hparams (written "
                        "into that folder; see bootsep.report.sweep)")
    p.add_argument("--metric", default="SI-SDR", help="--sweep: the headline metric (SI-SDR)")
    args = p.parse_args(argv)
    try:
        if args.sweep is not None:
            from .sweep import compare_sweep

            res = compare_sweep(args.sweep, metric=args.metric)
            print(res["text"])
            print(res["md"])
            return 0
        systems = {}
        for s in args.system:
            if "=" not in s:
                raise UserError(f"--system {s!r}: expected NAME=RUN_FOLDER")
            k, v = s.split("=", 1)
            systems[k] = v
        if not systems:
            systems = {k: str(Path(args.output) / k) for k in DEFAULT_SYSTEMS}
        res = compare(systems, args.output, args.sources, args.separated or None, args.measure,
                      args.title, args.cut_percentile)
    except UserError as e:
        return report(e)
    print(res["text"])
    print(res["md"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
