"""``separate --input``: whole user files in, one WAV per source out (file mode).

Long files are separated in cross-faded windows (:func:`file_windows`,
:func:`_separate_windowed`; the windows and the cross-fade are
:mod:`bootsep.separation.windowing`'s, shared with the deep separators' chunks), so memory does
not depend on a file's length; outputs keep the
input's sample rate, length and channel count. What may be written into ``--output`` follows
:mod:`bootsep.bootstrap.ownership`: the folder's ``separate.json`` lists every file written
there (updated before each input's stems are written), a rerun skips inputs already separated
by the same separator and settings, and only files the record lists are ever replaced.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ..utils.errors import UserError
from ..utils.io import atomic_path, atomic_write_json
from .ownership import RECORD, claim_output, outside_reason
from .segments import AUDIO_EXTENSIONS, safe_name

log = logging.getLogger(__name__)


def _input_files(inputs: Sequence[str | os.PathLike]) -> list[tuple[Path, Path | None]]:
    """``[(file, relative name or None), ...]``: files as given, folders expanded."""
    out = []
    for item in inputs:
        p = Path(item)
        if not p.exists():
            raise UserError(f"input not found: {p}; pass an audio file or a folder of them")
        if p.is_dir():
            files = sorted(q for q in p.rglob("*") if q.is_file()
                           and q.suffix.lower() in AUDIO_EXTENSIONS and not q.name.startswith("."))
            if not files:
                raise UserError(f"no audio files ({', '.join(AUDIO_EXTENSIONS)}) in folder {p}")
            out.extend((q, q.relative_to(p).with_suffix("")) for q in files)
        else:
            out.append((p, None))
    if not out:
        raise UserError("nothing to separate: pass --input FILE_OR_FOLDER [...]")
    return out


def file_windows(frames: int, window: int, overlap: int) -> list[tuple[int, int]]:
    """``[(start, end), ...]`` sample ranges covering ``[0, frames)`` in windows of ``window``
    samples, consecutive ones sharing exactly ``overlap``; a last window shorter than half a
    window is merged into the one before. One window when ``frames <= window``
    (:func:`~bootsep.separation.windowing.window_bounds`, checked for file mode's settings)."""
    from ..separation.windowing import window_bounds

    if window <= 0 or overlap < 0 or 2 * overlap >= window:
        raise UserError(f"file windows need 0 <= 2 * overlap < window, got window={window} "
                        f"samples, overlap={overlap}; fix separate.window_seconds / "
                        "separate.overlap_seconds")
    return window_bounds(frames, window, overlap, min_last=window // 2)


def _best_order(tail: np.ndarray, head: np.ndarray) -> list[int]:
    """The permutation of ``head``'s sources (n, C, L) that best matches ``tail`` (n, C, L),
    by summed normalised correlation (:func:`~bootsep.metrics.permutation.best_permutation`)."""
    from ..metrics.permutation import best_permutation

    n = tail.shape[0]
    a = tail.reshape(n, -1)
    b = head.reshape(n, -1)
    a = a / (np.linalg.norm(a, axis=1, keepdims=True) + 1e-12)
    b = b / (np.linalg.norm(b, axis=1, keepdims=True) + 1e-12)
    corr = a @ b.T  # (tail = reference, head = estimate)
    return best_permutation(corr.T[None], maximize=True)[0].tolist()


def _separate_windowed(separator, path: Path, sr: int, frames: int, channels: int,
                       window: int, overlap: int, write) -> None:
    """Separate ``path`` window by window (:func:`file_windows`), cross-fading the overlaps
    linearly (:class:`~bootsep.separation.windowing.OverlapAdd`), and hand each finished block
    ``(n_src, channels, samples)`` to ``write``, in order. Memory holds one window, whatever the
    file's length. Sources of separators whose order is arbitrary (k-means) are matched to the
    previous window's on the overlap."""
    import soundfile as sf
    import soxr

    from ..separation.windowing import OverlapAdd

    def align(tail, y):
        return y[_best_order(tail, y[..., :tail.shape[-1]])]

    bounds = file_windows(frames, window, overlap)
    join = OverlapAdd(bounds, dim=-1)
    arbitrary = getattr(separator, "arbitrary_order", False)
    resampled = sr != separator.sample_rate
    for start, end in bounds:
        try:
            data, _ = sf.read(str(path), start=start, stop=end, dtype="float32", always_2d=True)
        except Exception as err:  # noqa: BLE001 - any decoding failure is the user's file
            raise UserError(f"cannot decode audio file {path} ({err}); convert it to WAV/FLAC") from None
        x = data.T
        if resampled:
            x = soxr.resample(x.T, sr, separator.sample_rate, quality="HQ").T
        est = separator.separate(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)))
        est = est.estimates.numpy()
        n = end - start
        y = np.zeros((est.shape[0], channels, n), dtype=np.float32)
        for i in range(est.shape[0]):
            e = est[i]
            if resampled:
                e = soxr.resample(np.ascontiguousarray(e.T), separator.sample_rate, sr,
                                  quality="HQ").reshape(-1, e.shape[0]).T
            m = min(n, e.shape[1])
            y[i, :, :m] = e[:channels, :m]
        write(join.push(y, align if arbitrary else None))


def separate_files(separator, inputs: Sequence[str | os.PathLike], output: str | os.PathLike, *,
                   resample: bool = True, subtype: str = "FLOAT", progress: bool = True,
                   window_seconds: float | None = 120.0, overlap_seconds: float = 4.0,
                   force: bool = False) -> dict:
    """Separate whole audio files; write one WAV per source and ``separate.json``.

    Files longer than ``window_seconds`` (default 120 s; None = always whole files) are
    separated in windows sharing ``overlap_seconds`` (default 4 s), cross-faded linearly and
    streamed to the outputs, so memory does not grow with the file's length (a primitive
    ensemble on a whole 10-minute 44.1 kHz stereo file peaks at 4.9 GB; in 120 s windows at 2.1 GB).

    Layout: a single input file gives ``OUTPUT/<label>.wav``; several files or a folder give
    ``OUTPUT/<name>/<label>.wav`` (``<name>``: the file's path relative to its input folder,
    without extension, or its stem). Each output has the input's sample rate, length and
    channel count (channels are separated independently).

    Sample rates: a file at another rate than the separator's is resampled to it with soxr
    (HQ) and the estimates are resampled back (``resample=True``, default), so a model trained
    at 16 kHz separates a 44.1 kHz file; ``resample=False`` refuses such files.

    Ownership (nothing is overwritten that separate did not create). ``OUTPUT`` must be absent,
    empty, or hold ``separate.json``, the record of every file separate wrote there; it is
    updated before each input's outputs are written, so it lists them even after a crash.
    An existing output file is replaced only when that record lists it, and then only to redo
    the same input with the same separator and settings (a rerun: finished inputs are skipped,
    unfinished ones redone), or with ``force=True`` (any file the record lists). A file that
    the record does not list (a user's ``vocals.wav``) is never replaced, with or without
    ``force``; a non-empty folder without the record is refused.

    Raises:
        UserError: missing input, unreadable audio, empty file, a sample-rate mismatch with
            ``resample=False``, an output path that is a file, two inputs with one output name,
            an output folder or file that separate did not write, or one it wrote for another
            input / separator without ``force``.
    """
    import soundfile as sf
    from tqdm import tqdm

    from ..data.audio import audio_info
    from .separate import separator_info

    if getattr(separator, "needs_references", False):
        raise UserError(f"{type(separator).__name__} is an oracle (it needs reference stems); "
                        "choose a separator that works on mixtures alone")
    if output is None:
        raise UserError("separate --input needs --output DIR (where the stems are written)")
    out = Path(output)
    if out.exists() and not out.is_dir():
        raise UserError(f"--output {out} exists and is not a folder")
    files = _input_files(inputs)
    # an --output inside an input folder: its own stems are never inputs of a rerun
    inside = out.resolve()
    files = [(f, rel) for f, rel in files
             if rel is None or not f.resolve().is_relative_to(inside)]
    if not files:
        raise UserError(f"the input folders hold no audio files outside --output {out}")
    single = len(files) == 1 and files[0][1] is None
    names: dict[str, Path] = {}
    jobs = []
    for path, rel in files:
        sr, frames, channels = audio_info(path)
        if frames == 0:
            raise UserError(f"audio file {path} is empty (0 samples)")
        if sr != separator.sample_rate and not resample:
            raise UserError(f"{path} is at {sr} Hz but the separator runs at "
                            f"{separator.sample_rate} Hz; resample it (e.g. `ffmpeg -i IN -ar "
                            f"{separator.sample_rate} OUT.wav`) or allow resampling")
        name = "" if single else os.sep.join(safe_name(part)
                                             for part in (rel or Path(path.stem)).parts)
        if name in names:
            raise UserError(f"{names[name]} and {path} would both be written to {out / name}; "
                            "separate them into different --output folders")
        names[name] = path
        jobs.append((path, name, sr, frames, channels))
    info = separator_info(separator)
    labels = [safe_name(x) for x in separator.source_labels]
    settings = {"resample": bool(resample), "subtype": subtype, "window_seconds": window_seconds,
                "overlap_seconds": overlap_seconds}
    old = claim_output(out, "files") or {}
    # entries of the record by output name; entries of an older record inherit its top level
    entries: dict[str, dict] = {}
    owned: dict[str, str] = {}            # output path (relative) -> entry name
    if not isinstance(old.get("files") or [], list):
        raise UserError(f"{out / RECORD} is not separate's record (its 'files' is not a list); "
                        "write to another --output folder")
    for e in old.get("files") or []:
        if not isinstance(e, dict) or not isinstance(e.get("outputs"), dict):
            continue
        e = dict(e)
        e.setdefault("separator_fingerprint", old.get("separator_fingerprint"))
        e.setdefault("settings", {k: old.get(k) for k in settings})
        key = e.get("name")
        if key is None and e["outputs"]:
            parent = Path(str(next(iter(e["outputs"].values())))).parent.as_posix()
            key = "" if parent == "." else parent
        key = str(key or "")
        entries[key] = e
        for rel in e["outputs"].values():
            owned[str(rel)] = key
    # plan: which inputs are finished, which may be (re)written; refuse before writing anything
    plan = []
    for path, name, sr, frames, channels in jobs:
        folder = out / name if name else out
        targets = [folder / f"{label}.wav" for label in labels]
        rels = [str(t.relative_to(out)) for t in targets]
        same, finished = True, True
        for rel in rels:
            why = outside_reason(out, rel)
            if why is not None:
                raise UserError(f"{out / rel} is not inside --output {out} ({why}); separate "
                                "writes only inside its output folder: move that link away")
            if not os.path.lexists(out / rel):
                finished = False
                continue
            if rel not in owned:
                raise UserError(f"{out / rel} exists and separate did not write it (it is not "
                                f"in {out / RECORD}); refusing to replace it: move it away or "
                                "choose another --output folder")
            prev = entries[owned[rel]]
            if not (prev.get("input") == str(path.resolve())
                    and prev.get("separator_fingerprint") == info["separator_fingerprint"]
                    and prev.get("settings") == settings):
                same = False
                if not force:
                    raise UserError(f"{out / rel} holds separate's output for "
                                    f"{prev.get('input')} by separator "
                                    f"{prev.get('separator_fingerprint')} ({out / RECORD}); pass "
                                    "--force to replace the files that record lists, or choose "
                                    "another --output folder")
            elif not prev.get("complete", True):
                finished = False
        plan.append((path, name, sr, frames, channels, targets, same and finished))

    def write_record(status):
        atomic_write_json(out / RECORD, {"output": str(out.resolve()), **info, **settings,
                                         "status": status, "files": list(entries.values())})

    records = []
    out.mkdir(parents=True, exist_ok=True)
    for path, name, sr, frames, channels, targets, finished in tqdm(
            plan, desc="separate", unit="file", disable=not progress):
        outputs = {separator.source_labels[i]: str(t.relative_to(out))
                   for i, t in enumerate(targets)}
        if finished:
            log.info("%s: already separated into %s (same input and separator); skipped", path,
                     out / name)
            records.append({**entries[owned[outputs[separator.source_labels[0]]]],
                            "resumed": True})
            continue
        resampled = sr != separator.sample_rate
        entry = {"name": name, "input": str(path.resolve()), "sample_rate": sr,
                 "channels": channels, "samples": frames,
                 "resampled_to": separator.sample_rate if resampled else None,
                 "outputs": outputs, "separator_fingerprint": info["separator_fingerprint"],
                 "settings": settings, "complete": False}
        for rel in outputs.values():                 # replaced files leave their old entry
            if rel in owned and owned[rel] != name and owned[rel] in entries:
                stale = entries[owned[rel]]
                stale["outputs"] = {k: v for k, v in stale["outputs"].items() if v != rel}
                if not stale["outputs"]:
                    del entries[owned[rel]]
        if name in entries:                          # outputs of this name not rewritten now
            kept = {k: v for k, v in entries[name]["outputs"].items()
                    if v not in outputs.values()}
            if kept:
                entries[f"{name}#previous"] = {**entries[name], "name": f"{name}#previous",
                                               "outputs": kept}
        entries[name] = entry
        for rel in outputs.values():
            owned[rel] = name
        write_record("running")                      # listed before anything is written
        window = frames if window_seconds is None else max(1, int(round(window_seconds * sr)))
        overlap = 0 if window_seconds is None else int(round(overlap_seconds * sr))
        with contextlib.ExitStack() as stack:   # outputs are renamed into place only at the end
            tmps = [stack.enter_context(atomic_path(t, suffix=".wav")) for t in targets]
            writers = [stack.enter_context(sf.SoundFile(str(t), "w", sr, channels,
                                                        subtype=subtype, format="WAV"))
                       for t in tmps]

            def write(block, writers=writers):
                for w, y in zip(writers, block):
                    w.write((y if subtype == "FLOAT" else np.clip(y, -1.0, 1.0)).T)

            _separate_windowed(separator, path, sr, frames, channels, window, overlap, write)
            for w in writers:
                w.close()
        entry["complete"] = True
        records.append(entry)
    write_record("complete")
    return {"output": str(out.resolve()), **info, **settings, "status": "complete",
            "files": records}
