"""The per-item result file ``results/<item>.json``: its one writer and its one reader.

Written by ``evaluate`` (one file per test item, ``<run>/results/``) and by segment-mode
``separate`` (one per segment, ``<separated>/results/``), both through :func:`write_result`;
read by :func:`read_result` (:func:`bootsep.report.aggregate.load_results` tabulates a folder
of them for ``analyze``, ``compare`` and sweeps; ``organize`` reads segment records). Outside
checkers read these files too: the layout below is stable.

Layout (keys in this order; ``confidence`` only from ``separate``, ``permutation`` when the
writer chose an assignment)::

    {"item": "song003",
     "sources": {"vocals": {"SI-SDR": [ch0, ch1], ...}, "accompaniment": {...}},
     "confidence": {"combined": 0.31, ...},
     "permutation": [[...], ...],
     "metadata": {"mixture_path": ..., "reference_paths": {...}, "estimate_paths": {...}, ...}}

``sources`` holds, per reference label, a list of values per metric: one value per audio
*channel* (channels are separated and scored independently), or a count (e.g. ``v4-frames``).

Values: a number in dB; ``null`` = undefined (the reference of that channel is silent, so its
scale and every ratio against it are undefined: :mod:`bootsep.metrics.bsseval` gives NaN);
``"-inf"`` / ``"inf"`` = a degenerate estimate (e.g. a silent one: SI-SDR is -inf), kept so it
shows in the means rather than being mistaken for an undefined value (strict JSON has no
infinities). :func:`result_value` encodes one value, :func:`read_values` decodes a list.

Plain functions on the standard library and :mod:`bootsep.utils.io` (no torch).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .io import atomic_write_json


class MalformedResult(ValueError):
    """A file is not a result file (the message says why)."""


def result_value(x: float) -> float | str | None:
    """One metric value as a result JSON holds it: NaN (undefined) -> ``None``; ``±inf`` ->
    ``"inf"`` / ``"-inf"``; else the float."""
    x = float(x)
    if math.isnan(x):
        return None
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


def _encode(v: Any) -> Any:
    """A value of ``sources``: ``None`` and integers (counts) as they are, numbers through
    :func:`result_value`."""
    if v is None or (isinstance(v, int) and not isinstance(v, bool)):
        return v
    return result_value(v)


def write_result(path: str | os.PathLike, item: str,
                 sources: Mapping[str, Mapping[str, Sequence[Any]]], metadata: Mapping, *,
                 confidence: Mapping | None = None, permutation: Sequence | None = None) -> Path:
    """Write one result file atomically (the layout in the module docstring).

    Args:
        path: the file, ``<folder>/results/<item>.json``.
        item: the item's (or segment's) name.
        sources: ``{reference label: {metric: [value per channel]}}``; floats (NaN and ±inf
            included) are encoded by :func:`result_value`, ``None`` and integers are kept;
            ``{}`` when there are no references.
        metadata: written as given (paths, rates, separator, ...).
        confidence: ``{measure: value}``, written as given (``separate`` only).
        permutation: per channel, the estimate index used for each reference.
    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    record: dict[str, Any] = {
        "item": item,
        "sources": {str(label): {str(name): [_encode(v) for v in values]
                                 for name, values in metrics.items()}
                    for label, metrics in sources.items()},
    }
    if confidence is not None:
        record["confidence"] = dict(confidence)
    if permutation is not None:
        record["permutation"] = permutation
    record["metadata"] = dict(metadata)
    path = Path(path)
    atomic_write_json(path, record)
    return path


_INFINITIES = {"inf": math.inf, "+inf": math.inf, "infinity": math.inf, "-inf": -math.inf,
               "-infinity": -math.inf}


def read_values(values: Any, where: str = "value") -> list[float]:
    """Per-channel values as floats (``None`` -> NaN, ``"-inf"``/``"inf"`` -> ±inf); a scalar
    counts as one channel. Raises :class:`MalformedResult` naming ``where`` on anything else."""
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
            raise MalformedResult(f"{where} holds a non-numeric value {v!r}")
    return out


def read_result(path: str | os.PathLike) -> tuple[str, dict[str, dict[str, list[float]]], dict]:
    """``(item, {source: {metric: [float per channel]}}, metadata)`` of one result file.

    ``item`` falls back to the file's stem, a missing or non-object ``metadata`` to ``{}``;
    extra keys are ignored. Raises :class:`MalformedResult` when the file is not valid JSON, not
    an object, has no non-empty ``sources`` object, or holds a non-numeric value.
    """
    path = Path(path)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedResult(f"not valid JSON ({exc})") from None
    if not isinstance(record, dict):
        raise MalformedResult(f"top level is a {type(record).__name__}, expected an object")

    item = record.get("item", path.stem)
    if not isinstance(item, (str, int)) or isinstance(item, bool) or str(item) == "":
        raise MalformedResult(f"'item' must be a non-empty string, got {item!r}")
    item = str(item)

    sources = record.get("sources")
    if not isinstance(sources, dict):
        raise MalformedResult("no 'sources' object {source: {metric: [values]}}")
    if not sources:
        raise MalformedResult("no sources found")

    parsed: dict[str, dict[str, list[float]]] = {}
    for source, metrics in sources.items():
        if not isinstance(metrics, dict):
            raise MalformedResult(f"source {source!r} must map metric names to value lists")
        parsed[str(source)] = {str(name): read_values(values, f"{source}/{name}")
                               for name, values in metrics.items()}

    meta = record.get("metadata") or {}
    if not isinstance(meta, dict):
        meta = {}
    return item, parsed, meta
