"""The ``separate`` command: ``python main.py separate -c CFG [--input PATH ...] [--output DIR]``.

Two modes:

- **file mode** (``--input`` given): separate audio files / folders of them and write one WAV
  per source into ``--output`` (see :func:`bootsep.bootstrap.separate.separate_files`);
- **segment mode** (no ``--input``): cut the recordings of ``separate.folders`` into
  overlapping segments and write estimates + per-segment JSON (confidences, metrics when the
  folders hold reference stems, metadata) into ``--output`` (or ``separate.output``, or
  ``<run>/separated`` with ``-o RUN``: never the run's ``results/``, which hold only what
  ``evaluate`` wrote); a rerun skips finished segments; ``--shard I/N`` (or a Slurm array task /
  torchrun rank, see :mod:`bootsep.utils.shards`) does one shard of the segment plan (see
  :func:`bootsep.bootstrap.separate.separate_segments`). ``--launcher slurm --shards N`` writes
  ``<run>/slurm/separate.sbatch``, an array job of N such shards, instead of separating.

The separator is ``separate.separator`` when bound, else the config's ``evaluate.separator``:
``-c runs/x/config.gin`` separates with that run's trained model (``deep_separator`` loads
``checkpoints/best.pth``; bind ``deep_separator.checkpoint = 'latest'`` for the last one).
"""

from __future__ import annotations

import copy
import logging
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path

import gin

from ..utils.errors import UserError

log = logging.getLogger(__name__)


def resolve_separator(separator=None):
    """``separator`` (an instance or a factory), else the config's ``evaluate.separator``."""
    if separator is None:
        try:
            ref = gin.query_parameter("evaluate.separator")
        except ValueError:
            ref = None
        if ref is None:
            raise UserError("no separator configured: bind separate.separator = @... (e.g. "
                            "@primitive_clustering()) or pass -c <run>/config.gin of a trained run")
        separator = copy.deepcopy(ref)  # evaluates @factory() references
    if callable(separator) and not hasattr(separator, "separate"):
        separator = separator()
    if not hasattr(separator, "separate"):
        raise UserError(f"separate.separator is {separator!r}, not a separator")
    return separator


def _folders(folders) -> list[tuple[str | None, str]]:
    if folders is None:
        return []
    if isinstance(folders, Mapping):
        return [(str(k), str(v)) for k, v in folders.items()]
    if isinstance(folders, str):
        return [(None, folders)]
    return [(None, str(f)) for f in folders]


@gin.configurable
def separate(separator=None, inputs: Sequence[str] | None = None, output: str | None = None,
             folders=None, segment_length: float = 30.0, hop_length: float = 15.0,
             mix_name: str = "mixture", sources: Sequence[str] | None = ("accompaniment", "vocals"),
             use_references: bool = True, confidence: Mapping | Sequence[str] | None = None,
             threshold_percentile: float = 99.0, min_loudness: float | None = -40.0,
             mono: bool = False, num_workers: int = 2, batch_size: int | None = None,
             max_segments: int | None = None, subtype: str = "FLOAT", resample: bool = True,
             window_seconds: float | None = 120.0, overlap_seconds: float = 4.0,
             seed: int = 0, force: bool = False, shard: str | None = None,
             progress: bool = True) -> dict:
    """Separate files (``inputs``) or segments of ``folders`` (module docstring).

    Args:
        separator: a separator or a factory (``@primitive_clustering()``); default
            ``evaluate.separator``.
        inputs: file mode: audio files / folders (the CLI's ``--input``).
        output: destination folder (the CLI's ``--output``); segment mode falls back to
            ``<run>/separated`` (``-o RUN``).
        folders: segment mode: recordings folder(s): a path, a list, or ``{collection: path}``
            (a list uses each folder's name as its collection).
        segment_length, hop_length: seconds (default 30 / 15, the reference settings).
        mix_name, sources: mixture stem and reference names looked up in the folders.
        use_references: score segments against reference stems when present (default True;
            metrics are only recorded, never used to select training data).
        confidence: measures (default
            :data:`~bootsep.bootstrap.separate.DEFAULT_CONFIDENCE`).
        threshold_percentile: loud-bin percentile for the measures (default 99).
        min_loudness: LUFS gate (default -40; None = off).
        mono: average channels before separating (default False).
        num_workers: confidence / metrics / writing threads (default 2).
        batch_size: segments per separator call (default: 8 for a deep mask model on CUDA,
            else 1).
        max_segments: separate at most this many (new) segments (default all).
        subtype: WAV subtype of the estimates (default ``'FLOAT'``).
        resample: file mode: resample inputs at another rate (default True; False refuses).
        window_seconds, overlap_seconds: file mode: files longer than the window (default
            120 s; None = whole files) are separated in windows sharing the overlap (default
            4 s), cross-faded, so memory stays bounded.
        seed: seeds the confidence measures.
        force: file mode: replace output files that an earlier ``separate`` wrote (those its
            ``separate.json`` lists) for another input or separator; files it did not write are
            never replaced. Segment mode always resumes and refuses other settings.
        shard: segment mode: ``'I/N'``, one shard of the segment plan (the CLI's ``--shard``,
            or the environment's); default all.
        progress: progress bar.
    """
    from ..bootstrap.segments import find_recordings, plan_segments
    from ..bootstrap.separate import separate_files, separate_segments
    from ..utils.shards import parse_shard
    from . import contract

    shard = parse_shard(shard)
    if inputs and shard[1] > 1:
        raise UserError(f"--shard {shard[0]}/{shard[1]} applies to segment mode "
                        "(separate.folders); separate --input has no shards")
    if force and not inputs:
        raise UserError("--force applies to separate --input (file mode); segment mode resumes "
                        "its own output and refuses other settings: choose another --output")
    sep = resolve_separator(separator)
    contract.check_stft(sep, contract.config_stft())
    if inputs:
        return separate_files(sep, inputs, output, resample=resample, subtype=subtype,
                              progress=progress, window_seconds=window_seconds,
                              overlap_seconds=overlap_seconds, force=force)
    dest = output or default_output()
    if dest is None:
        raise UserError("separate needs a destination: --output DIR (or separate.output, or -o RUN "
                        "for RUN/separated)")
    pairs = _folders(folders)
    if not pairs:
        raise UserError("nothing to separate: pass --input FILE_OR_FOLDER, or bind "
                        "separate.folders = {'name': '/path/to/recordings'} for segment mode")
    recordings = []
    for coll, folder in pairs:
        recordings += find_recordings(folder, coll, mix_name=mix_name,
                                      sources=sources if use_references else None)
    if use_references and sources and any(r.references for r in recordings):
        contract.check_labels(sep, list(sources), "the references (separate.sources) =",
                              fix="bind separate.sources to the separator's source names, or "
                                  "separate.use_references = False")
    segments = plan_segments(recordings, sep.sample_rate, segment_length, hop_length)
    if batch_size is None:
        from ..separation.deep import DeepMaskSeparator

        batch_size = 8 if isinstance(sep, DeepMaskSeparator) and sep.device.type == "cuda" else 1
    settings = {"segment_length": float(segment_length), "hop_length": float(hop_length),
                "folders": {c or "": str(f) for c, f in pairs}}
    log.info("separating %d segments of %d recordings with %s into %s%s", len(segments),
             len(recordings), type(sep).__name__, dest,
             "" if shard[1] == 1 else f" (shard {shard[0]}/{shard[1]})")
    return separate_segments(sep, segments, dest, confidence=confidence,
                             threshold_percentile=threshold_percentile,
                             min_loudness=min_loudness, mono=mono, num_workers=num_workers,
                             batch_size=batch_size,
                             reference_labels=list(sources) if use_references and sources else None,
                             subtype=subtype, settings=settings, seed=seed, shard=shard,
                             max_segments=max_segments, progress=progress)


def default_output() -> str | None:
    """Segment mode's destination with ``-o RUN`` and no ``--output``: ``RUN/separated`` (its
    own folder, never the run's ``results/``)."""
    from .paths import output_folder

    run = output_folder()
    return None if run is None else str(Path(run) / "separated")


def write_sbatch(run: str | Path, shards: int, output: str | None = None, gpus: int = 1) -> Path:
    """Write ``<run>/slurm/separate.gin`` (the current gin config) and
    ``<run>/slurm/separate.sbatch``: a Slurm array job of ``shards`` tasks, each running
    ``main.py separate -c separate.gin [--output DIR]``; each task's shard comes from
    ``SLURM_ARRAY_TASK_ID``/``SLURM_ARRAY_TASK_COUNT``. Returns the sbatch path."""
    from ..utils.io import atomic_write_text
    from .sweep import write_sbatch as _write

    if int(shards) < 1:
        raise UserError(f"--shards {shards}: need at least 1 array task")
    folder = Path(run).resolve() / "slurm"
    cfg = folder / "separate.gin"
    atomic_write_text(cfg, "# Compiled by `main.py separate --launcher slurm`\n"
                      + gin.config_str(max_line_length=200))
    args = f"main.py separate -c {shlex.quote(str(cfg))}"
    if output:
        args += f" --output {shlex.quote(str(Path(output).resolve()))}"
    return _write(folder / "separate.sbatch", job_name=f"bootsep-separate-{Path(run).name}",
                  tasks=int(shards), gpus=int(gpus), log_folder=folder,
                  body=f'exec "$PY" {args}')


def separate_command(inputs: Sequence[str] | None = None, output: str | None = None,
                     force: bool = False, shard: str | None = None) -> int:
    """CLI entry: explicit ``--input`` / ``--output`` / ``--force`` / ``--shard`` override the
    gin bindings. Without ``--shard``, segment mode takes its shard from the environment
    (:func:`bootsep.utils.shards.shard_from_env`)."""
    from ..utils.shards import resolve_shard

    kwargs = {}
    if inputs:
        kwargs["inputs"] = list(inputs)
    if output:
        kwargs["output"] = output
    if force:
        kwargs["force"] = True
    if shard is not None or not inputs:
        (i, n), where = resolve_shard(shard)
        if shard is not None or n > 1:
            log.info("shard %d/%d (%s)", i, n, where)
            kwargs["shard"] = f"{i}/{n}"
    result = separate(**kwargs)
    if inputs:
        for rec in result["files"]:
            for path in rec["outputs"].values():
                print(Path(result["output"]) / path)
    else:
        i, n = result.get("shard", (0, 1))
        tail = "" if n == 1 else f" (shard {i}/{n}: {result['shard_segments']} of " \
            f"{result['segments']} segments)"
        print(f"{result.get('results', 0)} separated segments in {result['output']}{tail}")
    return 0
