"""Build training folders from separated segments, selected by confidence percentile.

Input: one or more ``separate`` outputs (``<separated>/results/*.json`` + estimates). Output::

    <destination>/<label>/<segment>.wav     symlinks to the estimates (or copies)
    <destination>/manifest.csv              one row per file written (the only record of them)
    <destination>/organize.json             the selection: measure, range, thresholds, counts

That is the stem layout of :class:`~bootsep.data.folder.StemFolderDataset`, so the folder is a
training set as it stands (:class:`bootsep.data.bootstrapped.BootstrappedDataset`).

Selection. Segments are first filtered by collection (exact names, e.g. ``['train']``), then
ranked by the chosen confidence measure, ONCE: a segment's percentile is ``100 * (rank + 1) /
N``, the share of segments at or below it (rank 0 = least confident, ties broken by segment
name; ``N`` = segments with a finite confidence after the filter), so it lies in ``(0, 100]``
and the most confident segment is at 100. A range ``[p_min, p_max]`` keeps ``p_min <
percentile <= p_max``: the quintiles :data:`BINS` ``Q1``..``Q5`` partition the segments
exactly (sizes differ by at most one), the most confident segment is always in ``Q5``,
``above_q2`` (``[20, 100]``, the top 80 %) and ``above_q4`` (``[60, 100]``, the top 40 %),
and ``[0, 100]`` keeps everything.

Safety. The destination must be empty or absent, or hold a previous ``manifest.csv`` and
``force=True``: then exactly the files that manifest lists are removed, with the label folders
it emptied, before the new selection is written. Nothing else is ever deleted, and an existing
file that the old manifest does not list is never replaced. Every manifest row is checked
before anything is removed: it must be a relative path without ``..`` whose folder, with
symlinks followed, is inside the destination (a row through a symlinked folder that leads out
is refused), naming a file or a link there (a link is removed, never what it points to). The
new files' names are sanitized (:func:`~bootsep.bootstrap.segments.safe_name`) from the
segment names and labels of the result JSONs, and their folders are checked the same way, so
nothing is ever written outside the destination; estimate paths in a result JSON must be
relative paths inside its separate output.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import re
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

from ..utils.errors import UserError
from ..utils.io import atomic_path, atomic_write_json
from ..utils.results import MalformedResult, read_values
from .ownership import outside_reason

log = logging.getLogger(__name__)

#: named percentile ranges
BINS = {"Q1": (0.0, 20.0), "Q2": (20.0, 40.0), "Q3": (40.0, 60.0), "Q4": (60.0, 80.0),
        "Q5": (80.0, 100.0), "above_q2": (20.0, 100.0), "above_q4": (60.0, 100.0),
        "all": (0.0, 100.0)}
LINKS = ("symlink", "copy", "hardlink")
MANIFEST = "manifest.csv"
MANIFEST_FIELDS = ("path", "label", "segment", "collection", "confidence", "percentile",
                   "target")


def percentile_range(bin: str | None = None, p_min: float | None = None,
                     p_max: float | None = None) -> tuple[float, float]:
    """``(p_min, p_max)`` from a bin name (:data:`BINS`) or explicit bounds (0-100)."""
    if bin is not None:
        if p_min is not None or p_max is not None:
            raise UserError("give either a bin name or p_min/p_max, not both")
        if bin not in BINS:
            raise UserError(f"unknown confidence bin {bin!r}; choose one of {list(BINS)} or set "
                            "p_min / p_max")
        return BINS[bin]
    lo = 0.0 if p_min is None else float(p_min)
    hi = 100.0 if p_max is None else float(p_max)
    if not 0.0 <= lo < hi <= 100.0:
        raise UserError(f"need 0 <= p_min < p_max <= 100, got p_min={p_min}, p_max={p_max}")
    return lo, hi


def load_segments(separated: str | os.PathLike | Sequence, measure: str = "combined"):
    """One row per separated segment of one or more ``separate`` outputs.

    Columns: ``segment``, ``collection``, ``confidence`` (the chosen ``measure``; NaN when
    missing), ``conf/<measure>`` for every recorded measure, ``<reference>/<metric>`` (median
    over the finite channel values, NaN when none; read with
    :func:`~bootsep.utils.results.read_values`) when metrics exist, ``path/<label>``
    (absolute estimate paths), ``mixture_path``, ``offset``, ``separated`` (the output folder
    it came from).

    Raises:
        UserError: a folder without ``results/*.json``, an unknown measure, or one segment name
            in two folders.
    """
    import numpy as np
    import pandas as pd

    folders = [separated] if isinstance(separated, (str, os.PathLike)) else list(separated)
    if not folders:
        raise UserError("organize needs at least one separated folder (organize.separated)")
    rows, seen, measures = [], {}, set()
    for folder in folders:
        folder = Path(folder)
        files = sorted((folder / "results").glob("*.json"))
        if not files:
            raise UserError(f"no separated segments in {folder}/results: run `separate` first "
                            f"(or fix organize.separated)")
        for f in files:
            try:
                rec = json.loads(f.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, ValueError) as err:
                raise UserError(f"{f} is not a readable result JSON ({err}); rerun `separate` "
                                "into a new folder, or move that file away") from None
            if not isinstance(rec, dict) or not isinstance(rec.get("metadata") or {}, dict) \
                    or not isinstance(rec.get("confidence") or {}, dict) \
                    or not isinstance(rec.get("sources") or {}, dict):
                raise UserError(f"{f} is not a result JSON of `separate` (an object with "
                                "'confidence', 'sources' and 'metadata' objects); move it away")
            name = str(rec.get("item", f.stem))
            if name in seen:
                raise UserError(f"segment {name!r} appears in both {seen[name]} and {folder}; "
                                "organize one separation of each recording")
            seen[name] = folder
            meta = rec.get("metadata") or {}
            conf = rec.get("confidence") or {}
            measures.update(conf)
            row = {"segment": name, "collection": str(meta.get("collection", "")),
                   "confidence": _num(conf.get(measure)),
                   "mixture_path": meta.get("mixture_path"), "offset": meta.get("offset"),
                   "separated": str(folder.resolve())}
            for k, v in conf.items():
                row[f"conf/{k}"] = _num(v)
            for src, metrics in (rec.get("sources") or {}).items():
                for k, v in metrics.items():
                    try:
                        vals = [x for x in read_values(v, f"{src}/{k}") if math.isfinite(x)]
                    except MalformedResult as err:
                        raise UserError(f"{f}: {err}; rerun `separate` into a new folder, or "
                                        "move that file away") from None
                    row[f"{src}/{k}"] = float(np.median(vals)) if vals else math.nan
            for label, rel in (meta.get("estimate_paths") or {}).items():
                r = Path(str(rel))
                if r.is_absolute() or ".." in r.parts:
                    raise UserError(f"{f} gives estimate path {rel!r}, which is not inside "
                                    f"{folder}; refusing it (rerun `separate` into a new folder)")
                row[f"path/{label}"] = str((folder / r).resolve())
            rows.append(row)
    if measure not in measures:
        raise UserError(f"confidence measure {measure!r} is not in the separated segments "
                        f"(they have {sorted(measures)}); set organize.measure")
    return pd.DataFrame(rows)


def _num(v) -> float:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return math.nan
    return x


def percentiles(confidence: Sequence[float], names: Sequence[str]) -> list[float]:
    """``100 * (rank + 1) / N`` of each value (rank 0 = smallest; ties broken by ``names``)."""
    order = sorted(range(len(confidence)), key=lambda i: (confidence[i], names[i]))
    out = [0.0] * len(order)
    n = len(order)
    for rank, i in enumerate(order):
        out[i] = 100.0 * (rank + 1) / n
    return out


def select_segments(df, p_min: float, p_max: float, collections: Sequence[str] | None = None):
    """Rows of ``df`` (from :func:`load_segments`) with ``p_min < percentile <= p_max``,
    with a ``percentile`` column; percentiles are computed once over the filtered rows."""
    if collections is not None:
        wanted = {str(c) for c in collections}
        missing = wanted - set(df["collection"])
        if missing:
            raise UserError(f"collections {sorted(missing)} not found; the separated segments "
                            f"come from {sorted(set(df['collection']))}")
        df = df[df["collection"].isin(wanted)]
    finite = df[df["confidence"].map(math.isfinite)].copy()
    if len(finite) < len(df):
        log.warning("%d segments have no finite confidence and are left out",
                    len(df) - len(finite))
    finite["percentile"] = percentiles(finite["confidence"].tolist(), finite["segment"].tolist())
    keep = (finite["percentile"] > p_min) & (finite["percentile"] <= p_max)
    return finite[keep].sort_values("segment", kind="stable")


# ----------------------------------------------------------------------------- writing
def read_manifest(destination: str | os.PathLike) -> list[dict]:
    path = Path(destination) / MANIFEST
    try:
        with open(path, newline="", encoding="utf-8") as f:
            return list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise UserError(f"{path} cannot be read ({err}); it lists what organize wrote there, so "
                        "nothing is replaced: restore it, or choose another destination") from None




def _inside(root: Path, rel: str) -> Path:
    why = outside_reason(root, rel)
    if why is not None:
        raise UserError(f"{root / MANIFEST} lists {rel!r}, which is not inside {root} ({why}); "
                        "refusing to touch anything: remove that row (or the manifest) by hand")
    return root / rel


def _clear_previous(dest: Path) -> int:
    """Remove what the previous manifest lists (and label folders left empty); every row is
    checked (:func:`_inside`) before the first removal."""
    rows = read_manifest(dest)
    bad = [row for row in rows if not isinstance(row.get("path"), str)]
    if bad:
        raise UserError(f"{dest / MANIFEST} has a row without a path; refusing to touch anything: "
                        "remove that row (or the manifest) by hand")
    paths = [_inside(dest, row["path"]) for row in rows]
    removed, dirs = 0, set()
    for p in paths:
        if p.is_symlink() or p.is_file():
            p.unlink()
            removed += 1
        dirs.add(p.parent)
    for d in sorted(dirs, key=lambda x: len(x.parts), reverse=True):
        if d != dest and d.is_dir() and not any(d.iterdir()):
            d.rmdir()
    (dest / MANIFEST).unlink()
    if (dest / "organize.json").is_file():
        (dest / "organize.json").unlink()
    return removed


def _write_manifest(dest: Path, rows: list[dict]) -> None:
    with atomic_path(dest / MANIFEST) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(MANIFEST_FIELDS))
        w.writeheader()
        w.writerows(rows)


def _place(target: Path, path: Path, link: str) -> None:
    if link == "symlink":
        path.symlink_to(target)
    elif link == "hardlink":
        os.link(target, path)
    else:
        with atomic_path(path, suffix=target.suffix) as tmp:
            shutil.copyfile(target, tmp)


def organize(separated: str | os.PathLike | Sequence, destination: str | os.PathLike, *,
             measure: str = "combined", bin: str | None = "above_q2",
             p_min: float | None = None, p_max: float | None = None,
             collections: Sequence[str] | None = None, labels: Sequence[str] | None = None,
             link: str = "symlink", force: bool = False, allow_incomplete: bool = False,
             wait_seconds: float = 0.0) -> dict:
    """Select segments by confidence and write ``destination`` (module docstring).

    Args:
        separated: ``separate`` output folder(s).
        destination: the training folder to build.
        measure: confidence measure to rank by (default ``'combined'`` = silhouette x
            posterior, the reference system's; on the demo songs it tracked the ensemble's
            vocals SI-SDR best per segment: Spearman rho 0.86 per whole song and 0.59 per 4 s
            segment, against 0.52 / 0.30 for ``'fixed_posterior'``).
        bin: a name of :data:`BINS` (default ``'above_q2'``); set ``bin=None`` and
            ``p_min``/``p_max`` for any other range.
        collections: keep only segments of these collections (exact names; default all).
        labels: estimate labels to link (default every label of the segments).
        link: ``'symlink'`` (default; absolute targets), ``'copy'`` or ``'hardlink'``.
        force: replace a previous organize output (only what its manifest lists).
        allow_incomplete: organize a ``separate`` output whose segment plan is unfinished
            (default False: refused, naming the missing shards and segments; see
            :func:`check_complete`).
        wait_seconds: wait up to this long for unfinished shards to finish (polling every
            10 s) before refusing (default 0).

    Returns:
        the summary written to ``organize.json`` (counts, thresholds, range).
    """
    if link not in LINKS:
        raise UserError(f"organize.link must be one of {LINKS}, got {link!r}")
    lo, hi = percentile_range(bin if (p_min is None and p_max is None) else None, p_min, p_max)
    dest = Path(destination)
    if dest.exists() and not dest.is_dir():
        raise UserError(f"organize destination {dest} exists and is not a folder")
    folders = [separated] if isinstance(separated, (str, os.PathLike)) else list(separated)
    for folder in folders:
        check_complete(folder, allow_incomplete=allow_incomplete, wait_seconds=wait_seconds)
    df = load_segments(separated, measure)
    chosen = select_segments(df, lo, hi, collections)
    all_labels = sorted(c[5:] for c in df.columns if c.startswith("path/"))
    labels = list(labels) if labels is not None else all_labels
    unknown = [x for x in labels if x not in all_labels]
    if unknown:
        raise UserError(f"labels {unknown} not among the separated estimates {all_labels}")
    # plan everything before touching the disk
    from .segments import safe_name

    rows = []
    for rd in chosen.to_dict("records"):
        for label in labels:
            target = rd.get(f"path/{label}")
            if not isinstance(target, str) or not Path(target).is_file():
                raise UserError(f"estimate {target} of segment {rd['segment']} is missing; "
                                "rerun `separate` on that folder")
            suffix = Path(target).suffix
            suffix = suffix if re.fullmatch(r"\.[A-Za-z0-9]{1,8}", suffix) else ""
            rows.append({"path": f"{safe_name(label)}/{safe_name(rd['segment'])}{suffix}",
                         "label": label, "segment": rd["segment"],
                         "collection": rd["collection"],
                         "confidence": repr(float(rd["confidence"])),
                         "percentile": f"{float(rd['percentile']):.4f}", "target": target})
    if not rows:
        raise UserError(f"no segment falls in the percentile range [{lo}, {hi}] (of "
                        f"{len(df)} segments); widen the range or check organize.collections")
    seen: dict[str, str] = {}
    for row in rows:
        if row["path"] in seen:
            raise UserError(f"segments {seen[row['path']]!r} and {row['segment']!r} would both be "
                            f"written to {dest / row['path']}; rename one of their recordings")
        seen[row["path"]] = row["segment"]
    for rel in sorted({str(Path(row["path"]).parent) for row in rows}):
        folder = dest / rel
        if os.path.lexists(folder) and (folder.is_symlink() or not folder.is_dir()):
            raise UserError(f"{folder} is a link or a file, not a folder of {dest}; organize "
                            "writes only inside its destination: move it away or choose "
                            "another destination")
    created = not dest.exists()
    if not created and any(dest.iterdir()):
        if not (dest / MANIFEST).is_file():
            raise UserError(f"{dest} is not empty and was not written by organize (no "
                            f"{MANIFEST}); choose another destination")
        if not force:
            raise UserError(f"{dest} holds a previous organize output; pass --force "
                            "(organize.force = True) to replace it")
        removed = _clear_previous(dest)
        log.info("removed %d files of the previous selection in %s", removed, dest)
    clash = [row["path"] for row in rows if os.path.lexists(dest / row["path"])]
    if clash:
        raise UserError(f"{dest / clash[0]} already exists and is not listed in a previous "
                        f"manifest; refusing to replace it")
    dest.mkdir(parents=True, exist_ok=True)
    _write_manifest(dest, rows)  # first, so that --force can clean up after a crash
    for row in rows:
        path = _inside(dest, row["path"])
        path.parent.mkdir(parents=True, exist_ok=True)
        _place(Path(row["target"]), path, link)
    n_seg = len(chosen)
    thresholds = (float(chosen["confidence"].min()), float(chosen["confidence"].max()))
    summary = {"destination": str(dest.resolve()),
               "separated": sorted(set(df["separated"])), "measure": measure,
               "bin": bin if (p_min is None and p_max is None) else None,
               "p_min": lo, "p_max": hi, "collections": None if collections is None
               else list(collections), "labels": labels, "link": link,
               "segments_total": int(len(df)), "segments_selected": n_seg,
               "files": len(rows), "confidence_range": thresholds}
    metric_cols = [c for c in chosen.columns if c.endswith(("/SI-SDR", "/SI-SDRi"))
                   and not c.startswith(("path/", "conf/"))]
    if metric_cols:  # recorded for the report only; never used to select
        summary["mean_metrics"] = {c: float(chosen[c].mean()) for c in metric_cols}
    atomic_write_json(dest / "organize.json", summary)
    log.info("organized %d of %d segments (%s in [%g, %g]) into %s", n_seg, len(df), measure,
             lo, hi, dest)
    return summary


def check_complete(folder: str | os.PathLike, allow_incomplete: bool = False,
                   wait_seconds: float = 0.0, poll_seconds: float = 10.0) -> dict:
    """Verify that every segment of ``folder``'s plan (``separate.json``) was separated (or
    skipped as quiet), waiting up to ``wait_seconds`` for running shards.

    Returns :func:`~bootsep.bootstrap.separate.completeness`'s dict.

    Raises:
        UserError: segments are missing and ``allow_incomplete`` is False; the message names
            how many, the unfinished shards (``I/N``) and the first missing segments.
    """
    import time

    from .separate import completeness

    deadline = time.monotonic() + max(0.0, float(wait_seconds))
    while True:
        state = completeness(folder)
        if not state["missing"] or time.monotonic() >= deadline:
            break
        log.info("%s: %d of %d segments not separated yet; waiting", folder,
                 len(state["missing"]), state["planned"])
        time.sleep(min(poll_seconds, max(0.0, deadline - time.monotonic())))
    missing = state["missing"]
    if not missing:
        return state
    shards = "; ".join(f"shards {', '.join(f'{i}/{n}' for i in idx)} unfinished"
                       for n, idx in state["shards"].items()) or "no shard records"
    first = ", ".join(missing[:3]) + (", ..." if len(missing) > 3 else "")
    text = (f"{folder} is incomplete: {len(missing)} of {state['planned']} planned segments have "
            f"no result ({shards}; missing {first})")
    if allow_incomplete:
        log.warning("%s; organizing what is there (--allow-incomplete)", text)
        return state
    raise UserError(f"{text}; wait for those shards or rerun them (same `separate` command with "
                    "--shard I/N), or pass --allow-incomplete (organize.allow_incomplete = True)")


def bins_table(separated, measure: str = "combined",
               collections: Sequence[str] | None = None) -> list[Mapping]:
    """Per quintile: segment count, confidence range and mean metrics (when recorded)."""
    df = load_segments(separated, measure)
    out = []
    for name in ("Q1", "Q2", "Q3", "Q4", "Q5"):
        lo, hi = BINS[name]
        s = select_segments(df, lo, hi, collections)
        row = {"bin": name, "segments": len(s),
               "confidence_min": float(s["confidence"].min()) if len(s) else math.nan,
               "confidence_max": float(s["confidence"].max()) if len(s) else math.nan}
        for c in s.columns:
            if c.endswith(("/SI-SDR", "/SI-SDRi")) and not c.startswith(("path/", "conf/")):
                row[c] = float(s[c].mean())
        out.append(row)
    return out
