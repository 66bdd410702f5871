"""Run a separator over recordings: segment mode (bootstrapping data) and file mode (users).

The code is split by role: segment planning and audio I/O in :mod:`bootsep.bootstrap.segments`;
segment mode here (separator thread, prefetch thread, writer pool, resume protocol and
shards); file mode with windowing in :mod:`bootsep.bootstrap.separate_files` (re-exported
here); who may write what into an output folder in :mod:`bootsep.bootstrap.ownership`.

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

Resume protocol. Every file is written atomically and a segment's JSON is written last, so a
segment is finished exactly when ``results/<segment>.json`` (or ``skipped/<segment>.json``)
exists: a rerun skips those and redoes nothing else.

Shards. ``shard='I/N'`` separates only the segments whose rank in the sorted plan is ``I``
modulo ``N`` (:mod:`bootsep.utils.shards`); shards write into one folder without collisions:
segment files are per segment, each call's counts go to its own ``shards/<I>-of-<N>.json``, and
``separate.json`` holds only what every shard computes identically (settings and plan, no
counts or times), written only when its bytes change. :func:`completeness` tells which planned
segments (and which shards) are unfinished; ``organize`` checks it. Result JSONs hold no time
or duration of the run, so a sharded run's files equal an unsharded run's byte for byte.

Threads. Separation runs in the calling thread (on the separator's device;
several equal-length segments are batched through one forward pass when ``batch_size > 1``);
a prefetch thread decodes the next segments, and a thread pool computes the confidences and
metrics and writes the files, with at most ``2 * num_workers`` segments in flight, so memory
stays bounded whatever the recordings' length.

Result JSON (readable by :func:`bootsep.report.aggregate.load_results`)::

    {"item": "<segment>",
     "sources": {"<reference>": {"SI-SDR": [per channel], ...}},   # {} without references
     "confidence": {"combined": 0.31, "fixed_posterior": 0.78, ...},
     "permutation": [[...]],                                          # with references
     "metadata": {"collection", "recording", "mixture_path", "reference_paths", "offset",
                  "duration", "sample_rate", "channels", "loudness_lufs",
                  "estimate_paths": {"<label>": "audio/<label>/<segment>.wav"},
                  "separator", "checkpoint"}}

Confidence measures are computed on the separator's per-bin features (the ensemble's stacked
masks, a deep model's embedding) of the loudest bins (:mod:`bootsep.primitives.confidence`).
:data:`DEFAULT_CONFIDENCE` records the paper's ``combined`` = silhouette x posterior and the
ensemble's own ``fixed_posterior`` margin above 250 Hz.

**File mode** (:func:`~bootsep.bootstrap.separate_files.separate_files`): whole files in, one
WAV per source out, at the input's sample rate, length and channel count.
"""

from __future__ import annotations

import collections
import concurrent.futures as cf
import logging
import math
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from ..utils.errors import UserError
from ..utils.io import atomic_write_audio, atomic_write_json
from .ownership import RECORD, claim_output, read_record, write_if_changed
from .segments import Segment, integrated_loudness, read_segment, safe_name
from .separate_files import file_windows, separate_files  # noqa: F401  (file mode, re-exported)

log = logging.getLogger(__name__)

#: ``{output name: options}``; options: ``measure`` (a name of
#: :data:`bootsep.primitives.confidence.MEASURES`, default the output name),
#: ``min_frequency_hz`` (ignore bins below, default 0), ``threshold_percentile`` (default the
#: run's), and any keyword of :func:`~bootsep.primitives.confidence.compute_confidences`.
DEFAULT_CONFIDENCE = {
    "silhouette": {},
    "posterior": {},
    "combined": {},
    "fixed_posterior": {"min_frequency_hz": 250.0},
    "combined_top10_above250": {"measure": "combined", "threshold_percentile": 90.0,
                                "min_frequency_hz": 250.0},
}

_GROUP_KEYS = ("min_frequency_hz", "threshold_percentile")


# ----------------------------------------------------------------------------- confidence
class ConfidencePlan:
    """Groups named measures by their loud-bin selection and computes them.

    Args:
        measures: ``{name: options}`` (see :data:`DEFAULT_CONFIDENCE`) or a list of measure
            names (no options).
        sample_rate, n_fft: to turn ``min_frequency_hz`` into a bin index
            (``ceil(hz * n_fft / sample_rate)``).
        threshold_percentile: default loud-bin percentile (99 = loudest 1 %).
        num_sources: clusters K.
        centers, beta: fixed centres / sharpness for ``fixed_posterior`` (default: those of the
            separator when it has them, else zeros/ones and 2.5).
        seed: seeds the k-means fits and subsamples.
    """

    def __init__(self, measures: Mapping | Sequence[str] | None, sample_rate: int, n_fft: int,
                 threshold_percentile: float = 99.0, num_sources: int = 2, centers=None,
                 beta: float | None = None, seed: int = 0):
        from ..primitives.confidence import MEASURES

        if measures is None:
            measures = {}
        if not isinstance(measures, Mapping):
            measures = {str(m): {} for m in measures}
        self.groups: dict[tuple, dict] = {}
        for name, opts in measures.items():
            opts = dict(opts or {})
            base = opts.pop("measure", name)
            if base not in MEASURES:
                raise UserError(f"confidence measure {name!r}: unknown measure {base!r}; "
                                f"choose from {list(MEASURES)}")
            hz = float(opts.pop("min_frequency_hz", 0.0) or 0.0)
            pct = float(opts.pop("threshold_percentile", threshold_percentile))
            min_bin = int(math.ceil(hz * n_fft / sample_rate)) if hz > 0 else 0
            if base == "fixed_posterior":
                if centers is not None:
                    opts.setdefault("centers", centers)
                if beta is not None:
                    opts.setdefault("fixed_beta", beta)
            key = (min_bin, pct, tuple(sorted((k, _hashable(v)) for k, v in opts.items())))
            group = self.groups.setdefault(key, {"options": opts, "names": {}})
            group["names"][name] = base
        self.num_sources = int(num_sources)
        self.seed = int(seed)

    @property
    def names(self) -> list[str]:
        return [n for g in self.groups.values() for n in g["names"]]

    def select(self, features: torch.Tensor | None, mix_magnitude: torch.Tensor) -> dict:
        """Loud-bin features per group, ``{group key: (N, dim) float64 array}`` (cheap; run it
        in the separating thread so the large feature tensors are freed at once)."""
        from ..primitives.confidence import select_loud_bins

        if features is None or not self.groups:
            return {}
        return {key: select_loud_bins(features, mix_magnitude, key[1], key[0])
                for key in self.groups}

    def compute(self, points: dict) -> dict:
        """``{name: float or nan}`` from the output of :meth:`select` (the bins were already
        selected, so every point is kept: unit magnitudes, percentile 0)."""
        from ..primitives.confidence import compute_confidences

        out = {}
        for key, group in self.groups.items():
            if key not in points:
                continue
            x = points[key]
            measures = tuple(dict.fromkeys(group["names"].values()))
            vals = compute_confidences(x[None, :, None, :], np.ones((1, x.shape[0], 1)),
                                       measures=measures, num_sources=self.num_sources,
                                       threshold_percentile=0.0, seed=self.seed,
                                       **group["options"])
            for name, base in group["names"].items():
                out[name] = float(vals[base])
        return out


def _hashable(v):
    if isinstance(v, (list, tuple)):
        return tuple(_hashable(x) for x in v)
    if isinstance(v, torch.Tensor | np.ndarray):
        return tuple(np.asarray(v, dtype=np.float64).ravel().tolist())
    return v


# ----------------------------------------------------------------------------- helpers
def _finite(x) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def _align(labels: Sequence[str], references: Sequence[str]) -> tuple[list[int], bool]:
    """Estimate index per reference, and whether a permutation search is needed."""
    if sorted(labels) == sorted(references):
        return [list(labels).index(r) for r in references], False
    return list(range(len(references))), True


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


def _prefetch(segments: Sequence[Segment], mono: bool, depth: int = 3) -> Iterator[tuple]:
    """Yield ``(segment, mix, references)`` decoded by a background thread."""
    if not segments:
        return
    pool = cf.ThreadPoolExecutor(max_workers=1, thread_name_prefix="bootsep-read")
    try:
        queue: collections.deque = collections.deque()
        it = iter(segments)
        for seg in it:
            queue.append((seg, pool.submit(read_segment, seg, mono)))
            if len(queue) >= depth:
                break
        while queue:
            seg, fut = queue.popleft()
            nxt = next(it, None)
            if nxt is not None:
                queue.append((nxt, pool.submit(read_segment, nxt, mono)))
            mix, refs = fut.result()
            yield seg, mix, refs
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


# ----------------------------------------------------------------------------- segment mode
def _write_segment(out: Path, seg: Segment, labels: list[str], estimates: np.ndarray,
                   mix: np.ndarray, refs: np.ndarray | None, ref_labels: list[str],
                   points: dict, plan: ConfidencePlan, loudness: float, info: dict,
                   subtype: str) -> str:
    """Worker: confidences, metrics, audio, then the JSON (last)."""
    conf = {k: _finite(v) for k, v in plan.compute(points).items()}
    sources, perm = {}, None
    if refs is not None:
        from ..metrics.bsseval import bss_eval_scale

        order, search = _align(labels, ref_labels)
        est = estimates[order] if not search else estimates
        metrics, p = bss_eval_scale(torch.from_numpy(est).transpose(0, 1),
                                    torch.from_numpy(refs).transpose(0, 1),
                                    torch.from_numpy(mix), compute_permutation=search)
        perm = p.tolist() if search else [order] * mix.shape[0]
        for j, ref in enumerate(ref_labels):
            sources[ref] = {k: [_finite(x) for x in v[:, j].tolist()] for k, v in metrics.items()}
    est_paths = {}
    for i, label in enumerate(labels):
        rel = Path("audio") / safe_name(label) / f"{seg.name}.wav"
        audio = estimates[i] if subtype == "FLOAT" else np.clip(estimates[i], -1.0, 1.0)
        atomic_write_audio(out / rel, audio, seg.sample_rate, subtype=subtype)
        est_paths[label] = rel.as_posix()
    rec = seg.recording
    meta = {"collection": rec.collection, "recording": rec.name,
            "mixture_path": str(rec.mixture.resolve()),
            "reference_paths": {k: [str(p.resolve()) for p in v] for k, v in rec.references.items()},
            "offset": seg.offset, "duration": seg.duration, "start": seg.start, "stop": seg.stop,
            "sample_rate": seg.sample_rate, "channels": int(mix.shape[0]),
            "loudness_lufs": _finite(loudness), "estimate_paths": est_paths,
            "separator": info["separator"], "checkpoint": info["checkpoint"],
            "separator_fingerprint": info["separator_fingerprint"]}
    record = {"item": seg.name, "sources": sources, "confidence": conf}
    if perm is not None:
        record["permutation"] = perm
    record["metadata"] = meta
    atomic_write_json(out / "results" / f"{seg.name}.json", record)
    return seg.name


def segment_done(output: str | os.PathLike, seg: Segment) -> bool:
    out = Path(output)
    return (out / "results" / f"{seg.name}.json").is_file() or \
        (out / "skipped" / f"{seg.name}.json").is_file()


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
    write_if_changed(out / RECORD, description)
    shard_path = out / "shards" / f"{shard[0]}-of-{shard[1]}.json"
    summary = {"output": description["output"], "shard": list(shard),
               "segments": len(segments), "shard_segments": len(mine),
               "done_before": done_before}
    atomic_write_json(shard_path, {**summary, "status": "running"})
    want_features = bool(plan.groups)

    pool = cf.ThreadPoolExecutor(max_workers=max(1, int(num_workers)),
                                 thread_name_prefix="bootsep-write")
    pending: collections.deque = collections.deque()
    counts = {"separated": 0, "skipped": 0}
    lock = threading.Lock()

    def drain(limit: int):
        while len(pending) > limit:
            pending.popleft().result()

    def run_batch(batch):
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
            pending.append(pool.submit(_write_segment, out, seg, labels, e, mix, refs,
                                       ref_labels, points, plan, loud, info, subtype))
            with lock:
                counts["separated"] += 1
        drain(2 * max(1, int(num_workers)))

    desc = "separate" if shard[1] == 1 else f"separate {shard[0]}/{shard[1]}"
    bar = tqdm(total=len(todo), desc=desc, unit="seg", disable=not progress)
    try:
        batch: list = []
        for seg, mix, refs in _prefetch(todo, mono):
            loud = integrated_loudness(mix, seg.sample_rate)
            if min_loudness is not None and not loud >= min_loudness:
                atomic_write_json(out / "skipped" / f"{seg.name}.json", {
                    "item": seg.name, "reason": "quiet", "loudness_lufs": _finite(loud),
                    "min_loudness": min_loudness, "mixture_path": str(seg.recording.mixture),
                    "offset": seg.offset, "duration": seg.duration})
                counts["skipped"] += 1
                bar.update(1)
                continue
            if batch and (batch[0][1].shape != mix.shape or len(batch) >= batch_size):
                run_batch(batch)
                bar.update(len(batch))
                batch = []
            batch.append((seg, mix, refs, loud))
        if batch:
            run_batch(batch)
            bar.update(len(batch))
        drain(0)
    finally:
        bar.close()
        pool.shutdown(wait=True)
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


def completeness(folder: str | os.PathLike) -> dict:
    """How much of a segment-mode output's plan is finished.

    Returns ``{"planned": int | None, "done": int, "missing": [names], "shards": {N: [I, ...]}}``:
    ``missing`` are planned segments with neither ``results/`` nor ``skipped/`` JSON, and
    ``shards`` names, for every shard count ``N`` that wrote a record in ``shards/``, the shard
    indices that own a missing segment. ``planned`` is None for an output written before plans
    were recorded (then nothing is known to be missing).
    """
    from ..utils.shards import owners

    folder = Path(folder)
    rec = read_record(folder) or {}
    plan = rec.get("plan")
    done = {p.stem for sub in ("results", "skipped") for p in (folder / sub).glob("*.json")}
    if not isinstance(plan, list) or not all(isinstance(x, str) for x in plan):
        return {"planned": None, "done": len(done), "missing": [], "shards": {}}
    missing = [name for name in plan if name not in done]
    counts = set()
    for p in (folder / "shards").glob("*-of-*.json"):
        try:
            counts.add(int(p.stem.split("-of-")[1]))
        except (IndexError, ValueError):
            continue
    shards = {}
    for n in sorted(c for c in counts if c > 1):
        own = owners(plan, n)
        shards[n] = sorted({own[name] for name in missing})
    return {"planned": len(plan), "done": len(plan) - len(missing), "missing": missing,
            "shards": shards}
