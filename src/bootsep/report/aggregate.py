"""Read the per-item result JSONs written by ``evaluate`` into one table.

Each ``<run>/results/<item>.json`` holds, per source, a list of values per metric: one value
per audio *channel*, because channels are separated and scored independently (a mono model on
stereo input). :func:`load_results` reduces each list to one number per (item, source) with
``nanmedian`` (the reference behaviour) or ``nanmean``.

The file's layout, its one writer (:func:`~bootsep.utils.results.write_result`) and its
one reader (:func:`~bootsep.utils.results.read_result`) live in :mod:`bootsep.utils.results`,
which ``evaluate`` and ``separate`` may import too. In short::

    {"item": "song003",
     "sources": {"vocals": {"SI-SDR": [ch0, ch1], ...}, "accompaniment": {...}},
     "permutation": [...],
     "metadata": {"mixture_path": ..., "reference_paths": {...}, "estimate_paths": {...}, ...}}

Values: a number in dB; ``null`` = undefined (a silent reference: NaN here); ``"-inf"`` /
``"inf"`` = a degenerate estimate (e.g. a silent one), kept so it shows in the means rather
than being mistaken for an undefined value. In ``metrics.csv`` undefined is ``NaN``. The report
card leaves undefined values out of each mean and says how many (see
:func:`~bootsep.report.card.report_card`).
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..utils.errors import UserError
from ..utils.results import MalformedResult, read_result

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

#: Metric rows of the report card, in order (``#`` is the count and is not a column).
METRICS: tuple[str, ...] = (
    "SI-SDR", "SI-SIR", "SI-SAR", "SD-SDR", "SNR", "SRR",
    "SI-SDRi", "SD-SDRi", "SNRi", "MIX-SI-SDR", "MIX-SD-SDR", "MIX-SNR",
)

#: BSS-Eval v4 rows (``evaluate.metrics`` with ``'bsseval_v4'``): per item, museval's SDR, ISR,
#: SIR, SAR as the median over its frames; they follow :data:`METRICS` on the card.
BSSEVAL_METRICS: tuple[str, ...] = ("SDR", "ISR", "SIR", "SAR")

#: Per-(item, source) counts in a result file, read like metrics but not metrics: the BSS-Eval v4
#: frames of the item and how many were left out of its medians (undefined or infinite).
COUNT_COLUMNS: tuple[str, ...] = ("v4-frames", "v4-frames-excluded")

CHANNEL_AGGREGATORS = ("median", "mean")


class ResultsWarning(UserWarning):
    """A result file was skipped (malformed JSON, wrong layout, non-numeric values)."""


def load_results(results_dir: str | os.PathLike,
                 channel_aggregator: str = "median",
                 separator_fingerprint: str | None = None) -> pd.DataFrame:
    """Load every ``*.json`` in ``results_dir`` into one row per (item, source).

    Args:
        results_dir: folder of per-item result JSONs (``<run>/results``).
        channel_aggregator: how the per-channel values of a metric are reduced to one number:
            ``'median'`` (default, ``np.nanmedian``, the reference behaviour) or ``'mean'``
            (``np.nanmean``). NaN/null channels (silent references) are ignored; a metric whose
            channels are all NaN stays NaN. Infinite values are kept (they flag degenerate
            estimates rather than being hidden).
        separator_fingerprint: the evaluation's separator (``evaluation.json``); a file whose
            ``metadata.separator_fingerprint`` names another one is skipped with a warning.

    Returns:
        DataFrame with columns ``item``, ``source``, then one float column per metric: the known
        metrics in :data:`METRICS` order (those present), then any other metric alphabetically.
        Rows are sorted by item then source. ``df.attrs['metadata']`` maps item -> the file's
        ``metadata`` dict (``{}`` when absent).

    Raises:
        UserError: the folder does not exist, holds no ``*.json``, or holds no valid one.

    Malformed files are skipped with a :class:`ResultsWarning` naming the file. A second file
    for an item already read is skipped with a warning too, and so is a file that ``evaluate``
    did not write: a segment record of ``separate`` (its metadata has ``recording`` and
    ``offset``; older bootsep versions wrote them into a run's ``results/``) or a result of
    another separator than ``separator_fingerprint``.
    """
    import numpy as np
    import pandas as pd

    if channel_aggregator not in CHANNEL_AGGREGATORS:
        raise UserError(f"channel_aggregator={channel_aggregator!r} is not supported; "
                        f"use one of {', '.join(CHANNEL_AGGREGATORS)}")
    reduce = np.nanmedian if channel_aggregator == "median" else np.nanmean

    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise UserError(f"no results: folder {results_dir} does not exist; "
                        "run `evaluate` on this run first")
    files = sorted(results_dir.glob("*.json"))
    if not files:
        raise UserError(f"no results: {results_dir} holds no *.json files; "
                        "run `evaluate` on this run first")

    rows: list[dict[str, Any]] = []
    metadata: dict[str, dict] = {}
    seen: dict[str, Path] = {}
    metric_names: set[str] = set()
    for path in files:
        try:
            item, sources, meta = read_result(path)
        except MalformedResult as exc:
            warnings.warn(f"skipping malformed results file {path}: {exc}", ResultsWarning,
                          stacklevel=2)
            continue
        if item in seen:
            warnings.warn(f"skipping results file {path}: item {item!r} was already read from "
                          f"{seen[item]}", ResultsWarning, stacklevel=2)
            continue
        foreign = _not_evaluated(meta, separator_fingerprint)
        if foreign:
            warnings.warn(f"skipping results file {path}: {foreign}", ResultsWarning,
                          stacklevel=2)
            continue
        seen[item] = path
        metadata[item] = meta
        for source, metrics in sources.items():
            row: dict[str, Any] = {"item": item, "source": source}
            for name, values in metrics.items():
                row[name] = _reduce(values, reduce)
                metric_names.add(name)
            rows.append(row)

    if not rows:
        raise UserError(f"no results: none of the {len(files)} *.json files in {results_dir} "
                        "could be read (see the warnings); run `evaluate` again")

    known = [m for m in (*METRICS, *BSSEVAL_METRICS) if m in metric_names]
    extra = sorted(metric_names.difference(known))
    df = pd.DataFrame(rows)
    for name in known + extra:
        df[name] = pd.to_numeric(df[name], errors="coerce").astype("float64")
    df = df[["item", "source", *known, *extra]]
    df = df.sort_values(["item", "source"], kind="stable").reset_index(drop=True)
    df.attrs["metadata"] = metadata
    return df


def _not_evaluated(meta: dict, fingerprint: str | None) -> str | None:
    """Why a result file's ``metadata`` shows it is not part of this evaluation (or None)."""
    if "recording" in meta and "offset" in meta:
        return ("a segment record of `separate`, not an evaluation result (separate writes "
                "to <run>/separated now; move it there)")
    fp = meta.get("separator_fingerprint")
    if fingerprint is not None and fp is not None and fp != fingerprint:
        return (f"evaluated by separator {fp}, not by this evaluation's {fingerprint} "
                "(evaluation.json)")
    return None


def load_metadata(results_dir: str | os.PathLike) -> dict[str, dict]:
    """Map item -> ``metadata`` dict of every readable result file (malformed ones silently
    skipped). Used when a DataFrame lost its ``attrs``."""
    out: dict[str, dict] = {}
    for path in sorted(Path(results_dir).glob("*.json")):
        try:
            item, _, meta = read_result(path)
        except MalformedResult:
            continue
        out.setdefault(item, meta)
    return out


def _reduce(values: list[float], reduce) -> float:
    import numpy as np

    arr = np.asarray(values, dtype=np.float64)  # +/-inf kept: a silent estimate must show
    if arr.size == 0 or np.all(np.isnan(arr)):
        return math.nan
    return float(reduce(arr))
