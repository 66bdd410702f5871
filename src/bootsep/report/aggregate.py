"""Read the per-item result JSONs written by ``evaluate`` into one table.

Each ``<run>/results/<item>.json`` holds, per source, a list of values per metric: one value
per audio *channel*, because channels are separated and scored independently (a mono model on
stereo input). :func:`load_results` reduces each list to one number per (item, source) with
``nanmedian`` (the reference behaviour) or ``nanmean``.

Schema read (extra keys are ignored)::

    {"item": "song003",
     "sources": {"vocals": {"SI-SDR": [ch0, ch1], ...}, "accompaniment": {...}},
     "permutation": [...],
     "metadata": {"mixture_path": ..., "reference_paths": {...}, "estimate_paths": {...}, ...}}

The older flat layout (source labels at the top level next to ``combination`` /
``permutation`` / ``metadata``) is read too.

Values: a number in dB; ``null`` = undefined (the reference of that channel is silent, so its
scale and every ratio against it are undefined: :mod:`bootsep.metrics.bsseval` gives NaN);
``"-inf"`` / ``"inf"`` = a degenerate estimate (e.g. a silent one: SI-SDR is -inf), kept so it
shows in the means rather than being mistaken for an undefined value. :func:`result_value`
writes them; in ``metrics.csv`` undefined is ``NaN``. The report card leaves undefined values
out of each mean and says how many (see :func:`~bootsep.report.card.report_card`).
"""

from __future__ import annotations

import json
import math
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..utils.errors import UserError

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

#: Top-level keys of a result file that are not sources (flat layout).
NON_SOURCE_KEYS = frozenset({"item", "sources", "combination", "permutation", "metadata"})

CHANNEL_AGGREGATORS = ("median", "mean")


class ResultsWarning(UserWarning):
    """A result file was skipped (malformed JSON, wrong layout, non-numeric values)."""


class _Malformed(ValueError):
    pass


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
            item, sources, meta = _parse(path)
        except _Malformed as exc:
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
            item, _, meta = _parse(path)
        except _Malformed:
            continue
        out.setdefault(item, meta)
    return out


def _parse(path: Path) -> tuple[str, dict[str, dict[str, list]], dict]:
    """Return (item, {source: {metric: [values]}}, metadata); raise _Malformed on bad input."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _Malformed(f"not valid JSON ({exc})") from None
    if not isinstance(record, dict):
        raise _Malformed(f"top level is a {type(record).__name__}, expected an object")

    item = record.get("item", path.stem)
    if not isinstance(item, (str, int)) or isinstance(item, bool) or str(item) == "":
        raise _Malformed(f"'item' must be a non-empty string, got {item!r}")
    item = str(item)

    if "sources" in record:
        sources = record["sources"]
        if not isinstance(sources, dict):
            raise _Malformed("'sources' must be an object {source: {metric: [values]}}")
    else:  # flat (reference) layout
        sources = {k: v for k, v in record.items()
                   if k not in NON_SOURCE_KEYS and isinstance(v, dict)}
    if not sources:
        raise _Malformed("no sources found")

    parsed: dict[str, dict[str, list]] = {}
    for source, metrics in sources.items():
        if not isinstance(metrics, dict):
            raise _Malformed(f"source {source!r} must map metric names to value lists")
        parsed[str(source)] = {str(name): _values(values, source, name)
                               for name, values in metrics.items()}

    meta = record.get("metadata") or {}
    if not isinstance(meta, dict):
        meta = {}
    return item, parsed, meta


def result_value(x: float) -> float | str | None:
    """One metric value as a result JSON holds it: NaN (undefined) -> ``None``; ``±inf`` ->
    ``"inf"`` / ``"-inf"`` (strict JSON has no infinities); else the float."""
    x = float(x)
    if math.isnan(x):
        return None
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


_INFINITIES = {"inf": math.inf, "+inf": math.inf, "infinity": math.inf, "-inf": -math.inf,
               "-infinity": -math.inf}


def _values(values: Any, source: str, name: str) -> list[float]:
    """Per-channel values as floats (None -> NaN, "-inf"/"inf" -> ±inf); a scalar counts as
    one channel."""
    if not isinstance(values, list):
        values = [values]
    out = []
    for v in values:
        if v is None:
            out.append(math.nan)
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out.append(float(v))
        elif isinstance(v, str) and v.strip().lower() in _INFINITIES:
            out.append(_INFINITIES[v.strip().lower()])
        else:
            raise _Malformed(f"{source}/{name} holds a non-numeric value {v!r}")
    return out


def _reduce(values: list[float], reduce) -> float:
    import numpy as np

    arr = np.asarray(values, dtype=np.float64)  # +/-inf kept: a silent estimate must show
    if arr.size == 0 or np.all(np.isnan(arr)):
        return math.nan
    return float(reduce(arr))
