"""The files segment mode writes per segment, and what a finished segment is (resume protocol).

Per segment, under the output folder::

    audio/<label>/<segment>.wav     one estimate per source label (written first)
    results/<segment>.json          confidences, metrics, metadata (written last)
    skipped/<segment>.json          instead of both, for a segment below the loudness gate

Resume protocol
---------------
1. Every file is written atomically (:mod:`bootsep.utils.io`: a temp file in the same folder,
   renamed over the target), so a file either exists complete or not at all; a killed run
   leaves at most hidden ``.<name>.*`` temp files, never a truncated WAV or JSON.
2. A segment's JSON is its **last** write: :func:`write_segment_result` writes every estimate
   WAV first, then ``results/<segment>.json``; a quiet segment has only ``skipped/<segment>.json``.
3. Hence a segment is finished exactly when its JSON exists (:func:`segment_done`). A run killed
   between the WAVs and the JSON leaves WAVs without a JSON: the segment counts as unfinished,
   a rerun separates it again and replaces those WAVs (atomically, with identical content for a
   deterministic separator). Finished segments are never touched again.
4. The plan (``separate.json``'s ``plan``) lists every segment, so :func:`completeness` can tell
   which are missing, e.g. for ``organize`` after a sharded run.

Result JSON (written by :func:`bootsep.utils.results.write_result`, the layout of
``evaluate``'s results; metric values are encoded there: ``null`` for a silent reference,
``"-inf"`` for a silent estimate)::

    {"item": "<segment>",
     "sources": {"<reference>": {"SI-SDR": [per channel], ...}},   # {} without references
     "confidence": {"combined": 0.31, "fixed_posterior": 0.78, ...},
     "permutation": [[...]],                                          # with references
     "metadata": {"collection", "recording", "mixture_path", "reference_paths", "offset",
                  "duration", "sample_rate", "channels", "loudness_lufs",
                  "estimate_paths": {"<label>": "audio/<label>/<segment>.wav"},
                  "separator", "checkpoint"}}

Result JSONs hold no time or duration of the run, so a sharded run's files equal an unsharded
run's byte for byte.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch

from ..utils.io import atomic_write_audio, atomic_write_json
from ..utils.results import write_result
from .ownership import read_record
from .segments import Segment, safe_name


def _finite(x) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def result_path(output: str | os.PathLike, name: str) -> Path:
    """``output/results/<name>.json``: a separated segment's record (its last write)."""
    return Path(output) / "results" / f"{name}.json"


def skipped_path(output: str | os.PathLike, name: str) -> Path:
    """``output/skipped/<name>.json``: a segment below the loudness gate (its only write)."""
    return Path(output) / "skipped" / f"{name}.json"


def segment_done(output: str | os.PathLike, seg: Segment) -> bool:
    """Whether ``seg`` is finished in ``output``: its result or skipped JSON exists (the JSON is
    written last, so its WAVs are complete then)."""
    return result_path(output, seg.name).is_file() or skipped_path(output, seg.name).is_file()


def write_skipped(out: Path, seg: Segment, loudness: float, min_loudness: float) -> None:
    """Record a segment quieter than ``min_loudness`` LUFS (one atomic write: finished)."""
    atomic_write_json(skipped_path(out, seg.name), {
        "item": seg.name, "reason": "quiet", "loudness_lufs": _finite(loudness),
        "min_loudness": min_loudness, "mixture_path": str(seg.recording.mixture),
        "offset": seg.offset, "duration": seg.duration})


def write_segment_result(out: Path, seg: Segment, labels: list[str], estimates: np.ndarray,
                         mix: np.ndarray, refs: np.ndarray | None, ref_labels: list[str],
                         confidence: dict, loudness: float, info: dict, subtype: str) -> str:
    """Metrics (when references exist), the estimate WAVs, then the result JSON (last).

    Args:
        out: the output folder.
        seg: the segment.
        labels: the separator's source labels, in the order of ``estimates``.
        estimates: ``(n_src, channels, samples)`` float32.
        mix: ``(channels, samples)``; refs: ``(n_ref, channels, samples)`` or None.
        ref_labels: names of ``refs``.
        confidence: ``{name: value}`` (non-finite values are written as null).
        loudness: the segment's integrated loudness, LUFS.
        info: :func:`~bootsep.bootstrap.separate.separator_info` of the separator.
        subtype: WAV subtype (``'FLOAT'``; others are clipped to [-1, 1]).
    Returns:
        the segment's name.
    """
    conf = {k: _finite(v) for k, v in confidence.items()}
    sources, perm = {}, None
    if refs is not None:
        from ..metrics.bsseval import bss_eval_scale
        from ..metrics.permutation import align_labels

        order, search = align_labels(labels, ref_labels)  # by label when the sets agree
        est = estimates[order] if not search else estimates
        metrics, p = bss_eval_scale(torch.from_numpy(est).transpose(0, 1),
                                    torch.from_numpy(refs).transpose(0, 1),
                                    torch.from_numpy(mix), compute_permutation=search)
        perm = p.tolist() if search else [order] * mix.shape[0]
        for j, ref in enumerate(ref_labels):
            sources[ref] = {k: v[:, j].tolist() for k, v in metrics.items()}
    est_paths = {}
    # Resume protocol, step 2: the WAVs first. A kill in this loop leaves some WAVs and no JSON,
    # so the segment is unfinished and a rerun rewrites all of them.
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
    # Resume protocol, step 3: the JSON last, atomically. Once it exists the segment is
    # finished (segment_done) and every WAV it names is complete on disk.
    write_result(result_path(out, seg.name), seg.name, sources, meta, confidence=conf,
                 permutation=perm)
    return seg.name


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


__all__ = ["completeness", "result_path", "segment_done", "skipped_path", "write_segment_result",
           "write_skipped"]
