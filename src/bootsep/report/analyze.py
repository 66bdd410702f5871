"""``analyze``: turn ``<run>/results/*.json`` into the report card, metrics.csv, plots and
report.html."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from ..utils.errors import UserError
from ..utils.io import atomic_path


def _write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def summarize(df) -> dict[str, dict[str, float]]:
    """Mean of every metric, ``{'OVERALL' | source: {metric: mean, '#': rows}}`` (NaN skipped;
    a metric with no value is NaN). Source keys keep their original case."""
    from .card import OVERALL, group_stat, sources_of

    mean = group_stat(df, "mean")
    summary: dict[str, dict[str, float]] = {}
    for key, col, n in [(OVERALL, OVERALL, len(df))] + [
            (s, s.upper(), int((df["source"].astype(str) == s).sum())) for s in sources_of(df)]:
        entry: dict[str, float] = {"#": n}
        for metric, value in mean[col].items():
            entry[str(metric)] = math.nan if value is None else float(value)
        summary[key] = entry
    return summary


def read_evaluation(run_dir: str | os.PathLike) -> dict:
    """``<run>/evaluation.json`` (which separator and checkpoint ``evaluate`` scored), or {}."""
    import json

    try:
        rec = json.loads((Path(run_dir) / "evaluation.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return rec if isinstance(rec, dict) else {}


def describe_evaluation(evaluation: dict) -> str:
    """One line: ``separator: NAME (fingerprint FP), checkpoint: PATH (epoch N)``."""
    text = f"separator: {evaluation.get('separator')} (fingerprint " \
           f"{evaluation.get('separator_fingerprint')})"
    if evaluation.get("checkpoint"):
        text += f", checkpoint: {evaluation['checkpoint']} (epoch {evaluation.get('checkpoint_epoch')})"
    return text


def analyze(run_dir: str | os.PathLike, notes: str | None = None,
            channel_aggregator: str = "median", print_card: bool = True,
            link_audio: bool = False) -> dict[str, Any]:
    """Aggregate a run's per-item results and write its reports.

    Reads ``<run_dir>/results/*.json`` (one per test item, from ``evaluate``; files that
    ``evaluate`` did not write for the separator in ``evaluation.json`` are skipped with a
    warning, see :func:`~bootsep.report.aggregate.load_results`) and writes, each atomically
    (the card's second line names the separator and checkpoint from ``evaluation.json``):

    - ``report_card.txt``: mean +/- std and median tables (see
      :func:`~bootsep.report.card.report_card`), with ``notes`` appended;
    - ``metrics.csv``: one row per (item, source): ``item``, ``source`` and every metric (dB,
      per-channel values reduced by ``channel_aggregator``);
    - ``metrics.png``: SI-SDR and SI-SDRi per source;
    - ``report.html``: self-contained page with the above, audio examples and provenance.

    Args:
        run_dir: the run folder.
        notes: optional free text for the card's NOTES block.
        channel_aggregator: ``'median'`` (default) or ``'mean'`` over channels (channels are
            scored separately by ``evaluate``).
        print_card: print the card to stdout (default True).
        link_audio: report.html links the audio files instead of embedding clips (default
            False; gin ``analyze.link_audio``), for pages that must stay small.

    Returns:
        ``{'report_card': Path, 'metrics_csv': Path, 'metrics_png': Path, 'report_html': Path,
        'summary': {'OVERALL' | source: {metric: mean, '#': count}}}``.

    Raises:
        UserError: ``run_dir`` is not a folder, or it has no readable results.
    """
    from .aggregate import load_results
    from .card import report_card
    from .html import write_report_html
    from .plots import plot_metrics

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"run folder {run_dir} does not exist; pass the output folder of a run "
                        "that was evaluated")
    evaluation = read_evaluation(run_dir)
    df = load_results(run_dir / "results", channel_aggregator=channel_aggregator,
                      separator_fingerprint=evaluation.get("separator_fingerprint"))

    title = f"{run_dir.name} (channels reduced by {channel_aggregator})"
    if evaluation:
        title += "\n" + describe_evaluation(evaluation)
    card = report_card(df, notes=notes, title=title)
    paths = {
        "report_card": run_dir / "report_card.txt",
        "metrics_csv": run_dir / "metrics.csv",
        "metrics_png": run_dir / "metrics.png",
    }
    _write_text(paths["report_card"], card)
    _write_text(paths["metrics_csv"], df.to_csv(index=False, na_rep="NaN"))
    plot_metrics(df, paths["metrics_png"])
    paths["report_html"] = write_report_html(run_dir, df, card, [paths["metrics_png"]],
                                             link_audio=link_audio)
    if print_card:
        print(card, end="")
    return {**paths, "summary": summarize(df)}
