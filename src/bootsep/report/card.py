"""The report card: mean +/- std and median of every metric, overall and per source."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from .aggregate import BSSEVAL_METRICS, COUNT_COLUMNS, METRICS

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

OVERALL = "OVERALL"
ID_COLUMNS = ("item", "source")


def metric_columns(df: pd.DataFrame) -> list[str]:
    """Metric columns of ``df``: those of :data:`METRICS` present (in that order), then any
    other numeric column except ``item``/``source`` (in ``df`` order)."""
    from pandas.api.types import is_numeric_dtype

    known = [m for m in (*METRICS, *BSSEVAL_METRICS) if m in df.columns]
    extra = [c for c in df.columns if c not in known and c not in ID_COLUMNS
             and c not in COUNT_COLUMNS and is_numeric_dtype(df[c])]
    return known + extra


def sources_of(df: pd.DataFrame) -> list[str]:
    """Source labels of ``df``, sorted alphabetically."""
    return sorted(str(s) for s in df["source"].unique())


def group_stat(df: pd.DataFrame, stat: str) -> pd.DataFrame:
    """One statistic of every metric, overall and per source.

    Args:
        df: one row per (item, source), as from :func:`~bootsep.report.aggregate.load_results`.
        stat: ``'mean'``, ``'std'`` (sample std, ddof=1), ``'median'`` or ``'count'`` (rows in
            the group, NaNs included). NaNs are skipped by mean/std/median.

    Returns:
        DataFrame indexed by metric name, columns ``OVERALL`` then each source in upper case.
    """
    import pandas as pd

    metrics = metric_columns(df)
    groups = [(OVERALL, df)] + [(s.upper(), df[df["source"].astype(str) == s])
                                for s in sources_of(df)]
    out = {}
    for name, sub in groups:
        if stat == "count":
            out[name] = pd.Series(len(sub), index=metrics, dtype="float64")
            continue
        values = sub[metrics].astype("float64")
        if stat == "mean":
            out[name] = values.mean(skipna=True)
        elif stat == "std":
            import numpy as np

            with np.errstate(invalid="ignore"):  # -inf (a silent estimate): std is nan
                out[name] = values.std(ddof=1, skipna=True)
        elif stat == "median":
            out[name] = values.median(skipna=True)
        else:
            raise ValueError(f"unknown stat {stat!r}; use mean, std, median or count")
    return pd.DataFrame(out, index=metrics)


def fmt(x: float) -> str:
    """Round to 2 decimals (not truncate); NaN -> 'nan'; no negative zero."""
    x = math.nan if x is None else float(x)
    if math.isnan(x):
        return "nan"
    s = f"{x:.2f}"
    return "0.00" if s == "-0.00" else s


def bsseval_lines(df: pd.DataFrame) -> list[str]:
    """The card's note on the BSS-Eval v4 rows (empty without them): how they aggregate (SiSEC:
    median over an item's frames, then the mean and the median over items) and how many frames
    were left out of the per-item medians (``v4-frames-excluded`` of ``v4-frames``), overall and
    per source."""
    if "SDR" not in df.columns or not set(COUNT_COLUMNS) <= set(df.columns):
        return []
    frames, left = COUNT_COLUMNS
    window = {m.get("bsseval_v4", {}).get("window_seconds")
              for m in df.attrs.get("metadata", {}).values() if isinstance(m, dict)} - {None}
    size = f"{window.pop():g} s " if len(window) == 1 else ""
    per = ", ".join(f"{s.upper()} {int(sub[left].sum())} of {int(sub[frames].sum())}"
                    for s in sources_of(df) for sub in [df[df["source"].astype(str) == s]])
    return ["BSS-EVAL V4 (museval): SDR, ISR, SIR, SAR are each item's median over its "
            f"{size}frames; the tables give their mean and median (SiSEC) over items",
            f"  frames left out of those medians: {int(df[left].sum())} of {int(df[frames].sum())} "
            f"({per}): silent reference or estimate (undefined: NaN in museval) or infinite", ""]


def report_card(df: pd.DataFrame, notes: str | None = None, title: str | None = None) -> str:
    """Render the two-table report card as plain text.

    Tables "MEAN +/- STD OF METRICS" and "MEDIAN OF METRICS"; rows ``#`` (number of
    (item, source) rows) then each metric present (order of
    :data:`~bootsep.report.aggregate.METRICS`, then any extra metric); columns ``OVERALL`` plus
    one per source in upper case. Values are rounded to 2 decimals; std is the sample std
    (ddof=1). Undefined values (NaN: the reference is silent, so no ratio against it exists)
    are left out of every mean, std and median, and the card says how many items each
    statistic left out, overall and per source (:func:`undefined_lines`); a statistic with no
    defined value reads ``undefined``, never a number such as -100 dB.

    Args:
        df: one row per (item, source) (see :func:`~bootsep.report.aggregate.load_results`).
        notes: optional free text appended as a NOTES block.
        title: optional first line (e.g. the run folder).

    Returns:
        The card, ending with a newline.
    """
    from tabulate import tabulate

    metrics = metric_columns(df)
    mean, std, median = (group_stat(df, s) for s in ("mean", "std", "median"))
    columns = list(mean.columns)
    n_rows = ["#"] + [str(len(df))] + [
        str(int((df["source"].astype(str) == s).sum())) for s in sources_of(df)]

    mean_rows = [n_rows] + [
        [m] + [_mean_cell(mean.at[m, c], std.at[m, c]) for c in columns]
        for m in metrics]
    median_rows = [n_rows] + [[m] + [fmt(median.at[m, c]) for c in columns] for m in metrics]
    headers = ["METRIC", *columns]

    parts = []
    if title:
        parts += [str(title), ""]
    for heading, rows in (("MEAN +/- STD OF METRICS", mean_rows),
                          ("MEDIAN OF METRICS", median_rows)):
        parts += [heading, tabulate(rows, headers=headers, tablefmt="grid", disable_numparse=True,
                                    colalign=("left",) + ("right",) * len(columns)), ""]
    parts += undefined_lines(df, metrics)
    parts += bsseval_lines(df)
    if notes:
        parts += ["NOTES", str(notes).rstrip(), ""]
    return "\n".join(parts).rstrip() + "\n"


def _mean_cell(mean: float, std: float) -> str:
    """``undefined`` (no defined value), ``-inf`` (a degenerate estimate: no spread), ``mean
    (n = 1)`` (one value) or ``mean +/- std``."""
    if mean is None or math.isnan(float(mean)):
        return "undefined"
    if math.isinf(float(mean)):
        return fmt(mean)
    if std is None or math.isnan(float(std)):  # one value: no spread to show
        return f"{fmt(mean)} (n = 1)"
    return f"{fmt(mean)} +/- {fmt(std)}"


def undefined_lines(df: pd.DataFrame, metrics: list[str] | None = None) -> list[str]:
    """The card's account of undefined values left out of the means (empty when none).

    One line per distinct set of counts, e.g.
    ``  1 of 18 items (ACCOMPANIMENT 0 of 9, VOCALS 1 of 9): SI-SDR, SI-SIR, ...``
    under the heading ``LEFT OUT OF THE MEANS AND MEDIANS: undefined values (silent
    reference)``, followed by an empty line.
    """
    metrics = metric_columns(df) if metrics is None else metrics
    sources = sources_of(df)
    masks = [("", df)] + [(s.upper(), df[df["source"].astype(str) == s]) for s in sources]
    groups: dict[tuple, list[str]] = {}
    for m in metrics:
        counts = tuple((name, int(sub[m].isna().sum()), len(sub)) for name, sub in masks)
        if counts[0][1]:
            groups.setdefault(counts, []).append(m)
    if not groups:
        return []
    lines = ["LEFT OUT OF THE MEANS AND MEDIANS: undefined values (silent reference)"]
    for counts, names in groups.items():
        (_, k, n), per = counts[0], counts[1:]
        detail = ", ".join(f"{name} {k_s} of {n_s}" for name, k_s, n_s in per)
        lines.append(f"  {k} of {n} items ({detail}): {', '.join(names)}")
    return lines + [""]
