"""Run a separator over recordings: segment mode (bootstrapping data) and file mode (users).

The code is split by role, one job per module:

- :mod:`bootsep.bootstrap.segments`: segment planning and audio I/O (reading a segment,
  loudness);
- this module: segment mode's orchestration (settings check, shards, the separator loop);
- :mod:`bootsep.bootstrap.pipeline`: its two helper threads (prefetch reader, writer pool);
- :mod:`bootsep.bootstrap.results`: the files written per segment, the resume protocol and
  :func:`completeness`;
- :mod:`bootsep.bootstrap.confidence_plan`: which confidence measures, on which bins;
- :mod:`bootsep.bootstrap.separate_files`: file mode (whole user files, windowed with
  :mod:`bootsep.separation.windowing`);
- :mod:`bootsep.bootstrap.ownership`: who may write what into an output folder.

:data:`DEFAULT_CONFIDENCE`, :class:`ConfidencePlan`, :func:`completeness`, :func:`segment_done`,
:func:`file_windows` and :func:`separate_files` are re-exported here.

**Segment mode** (:func:`separate_segments`, the reference system's segment_and_separate)
separates every :class:`~bootsep.bootstrap.segments.Segment` and writes, under ``output``::

    separate.json                   settings, separator, the whole segment plan (sorted names)
    shards/<I>-of-<N>.json          what each call did: its shard, counts, status
    audio/<label>/<segment>.wav     one estimate per source label (float WAV by default)
    results/<segment>.json          confidences, metrics (when references exist), metadata
    skipped/<segment>.json          segments below the loudness gate (why, and their loudness)

The output folder is never a run's ``results/`` (``-o RUN`` alone separates into
``RUN/separated``), and it must be absent, empty or an earlier ``separate`` output with the same
settings (``separate.json``): a folder that separate did not write is refused
(:func:`~bootsep.bootstrap.ownership.claim_output`).

Resume protocol (:mod:`bootsep.bootstrap.results`). Every file is written atomically and a
segment's JSON is written last, so a segment is finished exactly when ``results/<segment>.json``
(or ``skipped/<segment>.json``) exists: a rerun skips those and redoes every other segment,
including one whose WAVs were written before the run was killed.

Shards. ``shard='I/N'`` separates only the segments whose rank in the sorted plan is ``I``
modulo ``N`` (:mod:`bootsep.utils.shards`); shards write into one folder without collisions:
segment files are per segment, each call's counts go to its own ``shards/<I>-of-<N>.json``, and
``separate.json`` holds only what every shard computes identically (settings and plan, no
counts or times), written only when its bytes change. :func:`completeness` tells which planned
segments (and which shards) are unfinished; ``organize`` checks it. Result JSONs hold no time
or duration of the run, so a sharded run's files equal an unsharded run's byte for byte.

Threads. Separation runs in the calling thread (on the separator's device;
several equal-length segments are batched through one forward pass when ``batch_size > 1``);
a prefetch thread decodes the next segments, and a pool of writer threads computes the
confidences and metrics and writes the files, with at most ``2 * num_workers`` segments in
flight, so memory stays bounded whatever the recordings' length
(:mod:`bootsep.bootstrap.pipeline`). The result JSON's layout is in
:mod:`bootsep.bootstrap.results`.

Confidence measures are computed on the separator's per-bin features (the ensemble's stacked
masks, a deep model's embedding) of the loudest bins (:mod:`bootsep.primitives.confidence`,
grouped by :mod:`bootsep.bootstrap.confidence_plan`).

**File mode** (:func:`~bootsep.bootstrap.separate_files.separate_files`): whole files in, one
WAV per source out, at the input's sample rate, length and channel count.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from ..utils.errors import UserError
from ..utils.io import atomic_write_json
from .confidence_plan import DEFAULT_CONFIDENCE, ConfidencePlan
from .ownership import RECORD, claim_output, write_if_changed
from .pipeline import WriterPool, prefetch
from .results import completeness, segment_done, write_segment_result, write_skipped
from .segments import Segment, integrated_loudness, read_segment
from .separate_files import file_windows, separate_files

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- helpers
def separator_info(separator) -> dict:
    from ..separation.base import describe, fingerprint

    return {"separator": type(separator).__name__,
            "separator_fingerprint": fingerprint(separator),
            "separator_config": describe(separator),
            "checkpoint": getattr(separator, "checkpoint_path", None),
            "checkpoint_epoch": getattr(separator, "checkpoint_epoch", None),
            "sample_rate": int(separator.sample_rate),
            "stft": separator.stft.params.to_dict(),
            "source_labels": list(separator.source_labels)}


def batch_safe(separator) -> bool:
    """Whether stacking several segments in one call gives the same result per segment
    (False for k-means on deep embeddings, which is fitted on the whole batch)."""
    from ..separation.deep import DeepClusteringSeparator

    return not isinstance(separator, DeepClusteringSeparator)


def _finish_segment(plan: ConfidencePlan, points: dict, out: Path, seg: Segment,
                    labels: list[str], estimates: np.ndarray, mix: np.ndarray,
                    refs: np.ndarray | None, ref_labels: list[str], loudness: float, info: dict,
                    subtype: str) -> str:
    """Writer job: the confidences (k-means fits, the slow part) from the bins
    :meth:`ConfidencePlan.select` chose, then the segment's files, its JSON last
    (:func:`~bootsep.bootstrap.results.write_segment_result`)."""
    return write_segment_result(out, seg, labels, estimates, mix, refs, ref_labels,
                                plan.compute(points), loudness, info, subtype)


# ----------------------------------------------------------------------------- segment mode
def separate_segments(separator, segments: Sequence[Segment], output: str | os.PathLike, *,
                      confidence: Mapping | Sequence[str] | None = None,
                      threshold_percentile: float = 99.0, min_loudness: float | None = -40.0,
                      mono: bool = False, num_workers: int = 2, batch_size: int = 1,
                      subtype: str = "FLOAT", reference_labels: Sequence[str] | None = None,
                      settings: Mapping | None = None, seed: int = 0,
                      shard: str | Sequence[int] | None = None, max_segments: int | None = None,
                      progress: bool = True) -> dict:
    """Separate ``segments`` into ``output`` (module docstring); returns the summary dict.

    Args:
        separator: a :class:`~bootsep.separation.base.Separator` (no oracle).
        segments: the whole plan, from :func:`~bootsep.bootstrap.segments.plan_segments` (at
            the separator's sample rate); ``shard`` and ``max_segments`` choose what this call
            does of it.
        output: destination folder: absent, empty, or an earlier output of this function.
        confidence: measures (default :data:`DEFAULT_CONFIDENCE`; ``{}`` = none).
        threshold_percentile: loud-bin percentile of the measures (default 99).
        min_loudness: segments quieter than this many LUFS are skipped (default -40, the
            reference setting; None = keep all).
        mono: average each segment's channels first (default False: channels are separated
            independently and written as they are).
        num_workers: threads computing confidences / metrics and writing (default 2).
        batch_size: segments per separator call (default 1; only for separators where
            :func:`batch_safe` holds; segments of different shapes are never stacked).
        subtype: WAV subtype of the estimates (default ``'FLOAT'``, lossless; ``'PCM_16'``
            halves the disk space, values are clipped to [-1, 1]).
        reference_labels: names of the references, in the order of the recordings'
            ``references`` (default: the keys of the first recording that has them).
        settings: what defines this output (segment length, hop, ...): recorded in
            ``separate.json``; a rerun with different settings is refused.
        seed: seeds the confidence measures.
        shard: ``'I/N'`` or ``(I, N)``: only the segments of that shard
            (:func:`bootsep.utils.shards.shard_of` over the segment names); default all.
        max_segments: separate at most this many unfinished segments (of the shard).
        progress: tqdm progress bar.
    Raises:
        UserError: oracle separator, a sample-rate mismatch, a bad shard, or an output folder
            that separate did not write or wrote with other settings.
    """
    from tqdm import tqdm

    from ..utils.shards import parse_shard, shard_of

    if getattr(separator, "needs_references", False):
        raise UserError(f"{type(separator).__name__} is an oracle; segment separation is for "
                        "algorithms that do not see the references")
    shard = parse_shard(shard)
    out = Path(output)
    old_record = claim_output(out, "segments")
    bad = [s for s in segments if s.sample_rate != separator.sample_rate]
    if bad:
        raise UserError(f"segments planned at {bad[0].sample_rate} Hz but the separator runs at "
                        f"{separator.sample_rate} Hz")
    info = separator_info(separator)
    settings = dict(settings or {})
    settings.update({"sample_rate": info["sample_rate"], "mono": bool(mono),
                     "separator": info["separator"], "checkpoint": info["checkpoint"],
                     "separator_fingerprint": info["separator_fingerprint"]})
    if old_record is not None:
        old = old_record.get("settings") or {}
        if not isinstance(old, dict):
            raise UserError(f"{out / RECORD} is not separate's record (its settings are not an "
                            "object); write to another --output folder")
        if old and "separator_fingerprint" not in old:
            raise UserError(f"{out} holds separations from an older bootsep that did not record "
                            "the separator's settings, so resuming could mix two separators; "
                            "write to another --output folder or delete that one")
        diff = {k: (old.get(k), v) for k, v in settings.items() if k in old and old[k] != v}
        if diff:
            raise UserError(f"{out} holds separations made with other settings "
                            f"({', '.join(f'{k}: {a!r} -> {b!r}' for k, (a, b) in diff.items())};"
                            f" its separate.json records the old separator_config); write to "
                            "another --output folder or delete that one")
    if batch_size > 1 and not batch_safe(separator):
        log.warning("%s cannot batch segments; using batch_size 1", type(separator).__name__)
        batch_size = 1
    plan = ConfidencePlan(DEFAULT_CONFIDENCE if confidence is None else confidence,
                          separator.sample_rate, separator.stft.window_length,
                          threshold_percentile, separator.num_sources,
                          centers=getattr(separator, "centers", None),
                          beta=getattr(separator, "beta", None), seed=seed)
    if reference_labels is None:
        reference_labels = next((list(s.recording.references) for s in segments
                                 if s.recording.references), [])
    ref_labels = list(reference_labels)
    labels = list(separator.source_labels)
    names = [s.name for s in segments]
    if len(set(names)) != len(names):
        raise UserError("two segments share a name; give the recordings' folders different "
                        "collection names")
    mine = [segments[k] for k in shard_of(names, shard)]
    todo = [s for s in mine if not segment_done(out, s)]
    done_before = len(mine) - len(todo)
    if max_segments is not None:
        todo = todo[: max(0, int(max_segments))]
    # The folder's description depends only on the settings and the plan (no counts, no
    # times), so every shard writes the same bytes; what each call did goes to its own record.
    description = {"output": str(out.resolve()), "settings": settings, **info,
                   "confidence": plan.names, "threshold_percentile": threshold_percentile,
                   "min_loudness": min_loudness, "segments": len(segments),
                   "plan": sorted(names)}
    out.mkdir(parents=True, exist_ok=True)
    # Resume protocol (bootstrap.results): the plan is recorded before any segment is written,
    # so completeness() can name the unfinished segments of a killed run; the shard record says
    # 'running' until the end. Neither decides what a rerun redoes: only the segments' JSONs do.
    write_if_changed(out / RECORD, description)
    shard_path = out / "shards" / f"{shard[0]}-of-{shard[1]}.json"
    summary = {"output": description["output"], "shard": list(shard),
               "segments": len(segments), "shard_segments": len(mine),
               "done_before": done_before}
    atomic_write_json(shard_path, {**summary, "status": "running"})
    want_features = bool(plan.groups)

    counts = {"separated": 0, "skipped": 0}

    def run_batch(batch, pool: WriterPool):
        mixes = np.concatenate([m for _, m, _, _ in batch], axis=0)
        sep = separator.separate(torch.from_numpy(mixes), with_features=want_features)
        est = sep.estimates.numpy()
        row = 0
        for seg, mix, refs, loud in batch:
            c = mix.shape[0]
            points = plan.select(None if sep.features is None else sep.features[row:row + c],
                                 sep.mix_magnitude[row:row + c])
            e = np.ascontiguousarray(est[:, row:row + c])
            row += c
            pool.submit(_finish_segment, plan, points, out, seg, labels, e, mix, refs,
                        ref_labels, loud, info, subtype)
            counts["separated"] += 1

    desc = "separate" if shard[1] == 1 else f"separate {shard[0]}/{shard[1]}"
    bar = tqdm(total=len(todo), desc=desc, unit="seg", disable=not progress)
    # Leaving this block, also by an exception (a crash of the separator), waits for the writer
    # jobs already submitted: their segments are written in full, nothing is cut off mid-file.
    with WriterPool(num_workers) as pool:
        try:
            batch: list = []
            for seg, (mix, refs) in prefetch(todo, functools.partial(read_segment, mono=mono)):
                loud = integrated_loudness(mix, seg.sample_rate)
                if min_loudness is not None and not loud >= min_loudness:
                    write_skipped(out, seg, loud, min_loudness)   # its only write: finished
                    counts["skipped"] += 1
                    bar.update(1)
                    continue
                if batch and (batch[0][1].shape != mix.shape or len(batch) >= batch_size):
                    run_batch(batch, pool)
                    bar.update(len(batch))
                    batch = []
                batch.append((seg, mix, refs, loud))
            if batch:
                run_batch(batch, pool)
                bar.update(len(batch))
            pool.close()
        finally:
            bar.close()
    summary.update(counts)
    left = sum(1 for s in mine if not segment_done(out, s))
    summary["status"] = "complete" if left == 0 else "partial"
    atomic_write_json(shard_path, summary)
    summary["results"] = len(list((out / "results").glob("*.json"))) if (out / "results").is_dir() else 0
    summary.update({k: description[k] for k in ("separator", "separator_fingerprint",
                                                 "checkpoint", "settings")})
    log.info("separated %d segments (%d quiet ones skipped, %d done before) into %s%s",
             counts["separated"], counts["skipped"], summary["done_before"], out,
             "" if shard[1] == 1 else f" (shard {shard[0]}/{shard[1]})")
    return summary


__all__ = ["DEFAULT_CONFIDENCE", "ConfidencePlan", "batch_safe", "completeness", "file_windows",
           "segment_done", "separate_files", "separate_segments", "separator_info"]
