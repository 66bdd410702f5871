"""The ``bootstrap`` command: unlabelled music in, a trained separator (and its report) out.

``python main.py bootstrap -c RECIPE.gin --unlabelled DIR [DIR ...] [--test DIR] [--valid DIR]
-o RUN [--stages STAGE ...] [--teacher PATH]`` runs the paper's pipeline with the existing
commands, one stage after the other, each in its own sub-folder of ``RUN`` (its own
``config.gin``, ``provenance.json`` and ``logs/``)::

    separate   RUN/separate/data/     the teacher separates every segment of the --unlabelled
                                      folders and records its confidence (`separate`)
    organize   RUN/organize/data/     the segments the recipe's confidence bin keeps (`organize`)
    train      RUN/student/           the student trains on those estimates alone (`train`)
    evaluate   RUN/teacher/, RUN/student/results/
                                      (with --test) the teacher and the student are scored on
                                      the labelled test songs (`evaluate` + `analyze`)
    compare    RUN/comparison.{md,json}, RUN/confidence_vs_sisdr.png
                                      one table (`bootsep.report.compare`) and the teacher's
                                      confidence against its quality per segment: on the
                                      unlabelled segments when they have reference stems
                                      (MUSDB-style songs), else on the test songs

A stage is finished when ``RUN/bootstrap.json`` records it (written atomically after the
stage's last output): a rerun of the same command skips finished stages and resumes the first
unfinished one (which itself resumes: ``separate`` skips finished segments, ``train`` continues
from ``checkpoints/latest.pth``, ``evaluate`` skips scored songs). ``compare`` is a report over
finished evaluations and is always rebuilt. A Slurm array task (``SLURM_ARRAY_TASK_ID`` /
``SLURM_ARRAY_TASK_COUNT``, or ``--shard I/N`` where the CLI has it) runs only its shard of the
separate stage and leaves the stage unfinished; the plain command afterwards finishes it.

The recipe (``musdb/recipes/{tiny,small,paper}.gin``) holds every setting but the paths; the
command binds those (``separate.folders``, ``organize.*``, ``BootstrappedDataset.folder`` and the
scoped ``train/``, ``val/``, ``test/`` datasets), so a user never writes a scoped binding.
"""

from __future__ import annotations

import copy
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import gin

from ..utils.errors import UserError
from ..utils.io import atomic_write_json, atomic_write_text

log = logging.getLogger(__name__)

STAGES = ("separate", "organize", "train", "evaluate", "compare")
#: stage -> its sub-folder of RUN ('' = RUN itself)
STAGE_FOLDERS = {"separate": "separate", "organize": "organize", "train": "student",
                 "evaluate": "teacher", "compare": ""}
NEEDS_TEST = ("evaluate", "compare")
RECORD = "bootstrap.json"
#: file stems that are stems, not mixtures: a plain folder holding them is a stem folder
#: pointed at one level too high
STEM_NAMES = frozenset({"vocals", "drums", "bass", "other", "accompaniment"})


@gin.configurable
def bootstrap(teacher_name: str = "teacher", student_name: str = "student",
              extra_systems: dict | None = None, sources: Sequence[str] = ("vocals", "accompaniment"),
              title: str | None = None, test_confidence: bool = True) -> dict:
    """Settings of the ``bootstrap`` command's report (the stages take theirs from the recipe).

    Args:
        teacher_name, student_name: row names in the comparison table (default ``teacher`` /
            ``student``; the demo uses ``ensemble`` / ``bootstrapped``).
        extra_systems: ``{name: run_folder}`` of other evaluated runs to add as rows (on the
            same test songs), e.g. a supervised reference.
        sources: sources (and order) of the table (default vocals, accompaniment).
        title: the table's title.
        test_confidence: when the unlabelled folders have no reference stems, also separate
            the test songs with the teacher in segments (``RUN/teacher/separated``) so the
            confidence-vs-quality plot has references (default True).
    """
    return {"teacher_name": teacher_name, "student_name": student_name,
            "extra_systems": dict(extra_systems or {}), "sources": list(sources),
            "title": title, "test_confidence": bool(test_confidence)}


# ----------------------------------------------------------------------------- inputs
def _collections(unlabelled: Sequence[str]) -> dict[str, str]:
    """``{collection: absolute folder}`` from ``DIR`` or ``NAME=DIR`` arguments."""
    out: dict[str, str] = {}
    for arg in unlabelled:
        name, path = None, arg
        if "=" in arg and not Path(arg).exists():
            name, path = arg.split("=", 1)
            if not name:
                raise UserError(f"--unlabelled {arg!r}: empty collection name (use NAME=DIR or DIR)")
        p = Path(path).expanduser()
        if not p.exists():
            raise UserError(f"--unlabelled: folder not found: {path} (give folders of recordings, "
                            f"optionally as NAME=DIR)")
        base = name or (p.stem if p.is_file() else p.resolve().name) or "unlabelled"
        coll, i = base, 2
        while coll in out:
            if name:
                raise UserError(f"--unlabelled: the collection name {name!r} is given twice")
            coll, i = f"{base}_{i}", i + 1
        out[coll] = str(p.resolve())
    if not out:
        raise UserError("bootstrap needs --unlabelled DIR [DIR ...] (folders of recordings)")
    return out


def _reference_sources() -> tuple[str, ...]:
    try:
        value = copy.deepcopy(gin.query_parameter("separate.sources"))  # evaluates %MACROS
    except ValueError:
        return ("accompaniment", "vocals")
    return tuple(value or ())


def _check_unlabelled(collections: dict[str, str], sources) -> bool:
    """Every folder holds readable recordings; True when all of them have reference stems."""
    from ..bootstrap.segments import find_recordings

    all_refs = True
    for coll, folder in collections.items():
        recs = find_recordings(folder, coll, sources=sources)
        stems = sorted({r.mixture.name for r in recs if r.mixture.stem.lower() in STEM_NAMES})
        if stems and not any(r.references for r in recs):
            raise UserError(f"--unlabelled {folder}: holds stem files ({', '.join(stems[:3])}) "
                            f"that are not in a song folder with a mixture.wav; pass the folder "
                            f"that holds the song folders (e.g. {folder}/train), or plain mixtures")
        all_refs = all_refs and all(r.references for r in recs)
    return all_refs


def _check_labelled(flag: str, folder: str | None, sources) -> str | None:
    """A labelled folder (songs with reference stems) as an absolute path, or a UserError."""
    if folder is None:
        return None
    from ..bootstrap.segments import find_recordings

    p = Path(folder).expanduser()
    if not p.is_dir():
        raise UserError(f"{flag}: folder not found: {folder} (give a folder of songs with stems: "
                        f"DIR/<song>/{{mixture,{','.join(sources)}}}.wav)")
    recs = find_recordings(p, sources=sources)
    bare = [r.name for r in recs if not r.references]
    if bare:
        splits = [d.name for d in sorted(p.iterdir()) if d.name in ("train", "valid", "test")]
        want = "test" if flag == "--test" else "valid"
        hint = f" (a dataset root? pass {p / (want if want in splits else splits[0])})" \
            if splits else ""
        raise UserError(f"{flag} {folder}: {len(bare)} of {len(recs)} songs have no reference "
                        f"stems (e.g. {bare[0]!r}){hint}; the layout is DIR/<song>/mixture.wav + "
                        f"{', '.join(f'{s}.wav' for s in sources)} (MUSDB18-HQ) or "
                        f"DIR/<stem>/<song>.wav")
    return str(p.resolve())


def _teacher_bindings(teacher: str | None) -> tuple[list[str], list[str]]:
    """(extra config files, binding lines) that make ``teacher`` the separator of ``separate``."""
    if not teacher:
        return [], []
    p = Path(teacher).expanduser()
    if p.is_file() and p.suffix == ".gin":
        return [str(p)], []
    ckpt = None
    if p.is_file() and p.suffix in (".pth", ".pt"):
        ckpt = p
    elif p.is_dir():
        for cand in (p / "checkpoints" / "latest.pth", p / "student" / "checkpoints" / "latest.pth"):
            if cand.is_file():
                ckpt = cand
                break
    if ckpt is None:
        raise UserError(f"--teacher {teacher}: not a separator config (.gin), a checkpoint (.pth) "
                        f"or a trained run folder (with checkpoints/latest.pth)")
    return [], ["separate.separator = @teacher/deep_separator()",
                f"teacher/deep_separator.checkpoint = {str(ckpt.resolve())!r}",
                "separate.confidence = ['silhouette', 'posterior', 'combined']"]


def bind_paths(run: Path, collections: dict, test: str | None, valid: str | None) -> None:
    """The bindings a user would otherwise write by hand (scoped datasets, stage folders)."""
    lines = [f"separate.folders = {collections!r}",
             f"separate.output = {str(run / 'separate' / 'data')!r}",
             f"organize.separated = {str(run / 'separate' / 'data')!r}",
             f"organize.destination = {str(run / 'organize' / 'data')!r}",
             f"BootstrappedDataset.folder = {str(run / 'organize' / 'data')!r}",
             "train/build_dataset.dataset = @train/BootstrappedDataset()"]
    for scope, folder in (("test", test), ("val", valid)):
        if folder:
            lines += [f"{scope}/StemFolderDataset.root = {folder!r}",
                      f"{scope}/StemFolderDataset.split = ''",
                      f"{scope}/build_dataset.dataset = @{scope}/StemFolderDataset()"]
    gin.parse_config("\n".join(lines))


# ----------------------------------------------------------------------------- stage records
def _load_record(run: Path) -> dict:
    import json

    path = run / RECORD
    if not path.is_file():
        return {"stages": {}}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        raise UserError(f"{path} is not readable JSON; it records which stages finished "
                        f"(move it away to start the stages over)") from None
    data.setdefault("stages", {})
    return data


def _check_inputs(record: dict, inputs: dict, run: Path) -> None:
    """A rerun must name the same folders as the run whose stages finished."""
    old = record.get("inputs")
    if not old or not record["stages"]:
        return
    depends = {"unlabelled": "separate", "teacher": "separate", "valid": "train", "test": "evaluate"}
    for key, stage in depends.items():
        if stage in record["stages"] and old.get(key) != inputs.get(key):
            raise UserError(f"{run} was bootstrapped with {key} {old.get(key)!r} (its {stage} stage "
                            f"is finished); now {inputs.get(key)!r}: use another -o RUN, or the "
                            f"same folders as before")


# ----------------------------------------------------------------------------- stages
def _teacher():
    """The teacher: ``separate.separator`` when bound, else the recipe's ``evaluate.separator``."""
    from .separate import resolve_separator

    try:
        ref = gin.query_parameter("separate.separator")
    except ValueError:
        ref = None
    return resolve_separator(copy.deepcopy(ref) if ref is not None else None)


def _stage_separate(run: Path, ctx: dict) -> dict:
    from .separate import separate

    kwargs = {"shard": ctx["shard"]} if ctx.get("shard", (0, 1))[1] > 1 else {}
    res = separate(output=str(run / "separate" / "data"), **kwargs)
    return {"segments": res.get("results")}


def _shard(args) -> tuple[tuple[int, int], str]:
    """``--shard I/N`` or a Slurm array task's shard of the separate stage; ``(0, 1)`` = all."""
    text = getattr(args, "shard", None)
    if text is None and "SLURM_ARRAY_TASK_COUNT" not in os.environ:
        return (0, 1), "no sharding"
    from ..utils.shards import resolve_shard

    return resolve_shard(text)


def _stage_organize(run: Path, ctx: dict) -> dict:
    from .organize import organize

    dest = run / "organize" / "data"
    # the destination is this stage's own folder: a rerun replaces what its manifest lists
    summary = organize(separated=str(run / "separate" / "data"), destination=str(dest),
                       force=(dest / "manifest.csv").is_file())
    return {"p_min": summary.get("p_min"), "p_max": summary.get("p_max"),
            "measure": summary.get("measure"), "selected": summary.get("segments_selected"),
            "total": summary.get("segments_total")}


def _stage_train(run: Path, ctx: dict) -> dict:
    from ..engine.checkpoint import checkpoint_path
    from . import experiment

    experiment.train(output_folder=str(run / "student"))
    return {"checkpoint": str(checkpoint_path(run / "student", "latest"))}


def _stage_evaluate(run: Path, ctx: dict) -> dict:
    from . import experiment
    from .separate import separate

    teacher_dir, student_dir = run / "teacher", run / "student"
    out = {}
    experiment.evaluate(separator=_teacher(), output_folder=str(teacher_dir))
    out["teacher"] = experiment.analyze(output_folder=str(teacher_dir)).get("report_card")
    if ctx["test_confidence"]:   # the teacher's confidence on songs with references
        separate(output=str(teacher_dir / "separated"), folders={"test": ctx["test"]})
    gin.bind_parameter("output_folder._output_folder", str(student_dir))
    from ..utils.provenance import Provenance

    with Provenance(student_dir, "bootstrap evaluate", sys.argv, ctx["configs"]):
        student = experiment.deep_separator(output_folder=str(student_dir))
        experiment.evaluate(separator=student, output_folder=str(student_dir))
        out["student"] = experiment.analyze(output_folder=str(student_dir)).get("report_card")
    return out


def _stage_compare(run: Path, ctx: dict) -> dict:
    from ..report.compare import compare

    opts = ctx["options"]
    systems = {opts["teacher_name"]: run / "teacher", opts["student_name"]: run / "student",
               **{k: Path(v) for k, v in opts["extra_systems"].items()}}
    organized = ctx["record"]["stages"].get("organize", {}).get("info", {})
    measure = organized.get("measure") or "combined"
    if ctx["unlabelled_references"]:
        separated, cut, label = run / "separate" / "data", organized.get("p_min"), "training segments"
    elif (run / "teacher" / "separated" / "results").is_dir():
        separated, cut, label = run / "teacher" / "separated", None, "test segments"
    else:
        separated, cut, label = None, None, None
    res = compare(systems, run, sources=opts["sources"], separated=separated, measure=measure,
                  title=opts["title"], cut_percentile=cut, segments_label=label)
    ctx["comparison"] = res
    return {"md": str(res["md"]), "png": str(res["png"]) if res.get("png") else None}


#: appended to a stage's config.gin (not to the running config): the student's folder is an
#: ordinary trained run (`evaluate`/`separate -c RUN/student/config.gin` use the student)
STAGE_CONFIG_EXTRA = {"train": "\n# the student's run folder separates with the student\n"
                               "evaluate.separator = @deep_separator()\nseparate.separator = None\n"}

STAGE_FUNCTIONS = {"separate": _stage_separate, "organize": _stage_organize,
                   "train": _stage_train, "evaluate": _stage_evaluate, "compare": _stage_compare}


def _run_stage(name: str, run: Path, ctx: dict, configs, verbose: bool) -> None:
    from ..cli.main import setup_logging
    from ..utils.provenance import Provenance

    folder = run / STAGE_FOLDERS[name]
    folder.mkdir(parents=True, exist_ok=True)
    gin.bind_parameter("output_folder._output_folder", str(folder.resolve()))
    setup_logging(folder, verbose)
    config = gin.config_str() + STAGE_CONFIG_EXTRA.get(name, "")
    cfg = folder / "config.gin"
    if not cfg.is_file():
        atomic_write_text(cfg, config)
    elif cfg.read_text() != config:
        log.warning("%s differs from the current configuration (it records the first run of "
                    "this stage); the outputs of this run follow the current one", cfg)
    log.info("bootstrap stage %s -> %s", name, folder)
    t0 = time.time()
    with Provenance(folder, f"bootstrap {name}", sys.argv, configs):
        info = STAGE_FUNCTIONS[name](run, ctx)
    if ctx.get("shard", (0, 1))[1] > 1:   # one shard: the unsharded rerun finishes the stage
        i, n = ctx["shard"]
        print(f"bootstrap: {name} shard {i}/{n} finished in {time.time() - t0:.0f} s "
              f"({ctx['shard_source']}); once every shard has finished, rerun the command "
              f"without a shard to go on", flush=True)
        return
    record = ctx["record"]
    record["stages"][name] = {"finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
                              "seconds": round(time.time() - t0, 1),
                              "folder": STAGE_FOLDERS[name] or ".", "info": info}
    atomic_write_json(run / RECORD, record)   # written last: the stage is finished
    print(f"bootstrap: {name} finished in {time.time() - t0:.0f} s ({folder})", flush=True)


def bootstrap_command(args, configs: Sequence[str]) -> int:
    """CLI entry (``args``: the parsed command line). Parses the recipe (+ ``--teacher``), then
    runs or resumes the stages; prints the comparison table's path last (with ``--test``)."""
    from ..cli.main import parse_configs

    if not args.output_folder:
        raise UserError("bootstrap needs -o RUN (the folder that receives one sub-folder per stage)")
    stages = args.stages
    wanted = list(stages or STAGES)
    unknown = [s for s in wanted if s not in STAGES]
    if unknown:
        raise UserError(f"--stages {' '.join(unknown)}: unknown stage; choose from {' '.join(STAGES)}")
    teacher_configs, teacher_binds = _teacher_bindings(args.teacher)
    configs = list(configs) + teacher_configs
    parse_configs(configs, teacher_binds + list(args.bind))
    run_path = Path(args.output_folder).expanduser().resolve()
    collections = _collections(args.unlabelled or [])
    sources = _reference_sources()
    unlabelled_refs = _check_unlabelled(collections, sources)
    test = _check_labelled("--test", args.test, sources)
    valid = _check_labelled("--valid", args.valid, sources)
    if test is None:
        asked = [s for s in NEEDS_TEST if s in (stages or ())]
        if asked:
            raise UserError(f"--stages {' '.join(asked)} needs --test DIR (labelled test songs)")
        wanted = [s for s in wanted if s not in NEEDS_TEST]
    options = bootstrap()
    run_path.mkdir(parents=True, exist_ok=True)
    record = _load_record(run_path)
    teacher = str(Path(args.teacher).expanduser().resolve()) if args.teacher else None
    inputs = {"unlabelled": collections, "test": test, "valid": valid, "teacher": teacher}
    _check_inputs(record, inputs, run_path)
    record["inputs"] = inputs
    bind_paths(run_path, collections, test, valid)
    ctx = {"record": record, "test": test, "options": options, "configs": configs,
           "unlabelled_references": unlabelled_refs,
           "test_confidence": bool(test) and options["test_confidence"] and not unlabelled_refs}
    ctx["shard"], ctx["shard_source"] = _shard(args)
    if ctx["shard"][1] > 1:   # an array task: its shard of the separate stage, nothing else
        if wanted != ["separate"]:
            print(f"bootstrap: sharded ({ctx['shard_source']}): running the separate stage's "
                  f"shard only", flush=True)
        wanted = [] if "separate" in record["stages"] else ["separate"]
    else:
        atomic_write_json(run_path / RECORD, record)
    done = record["stages"]
    for name in wanted:
        for before in STAGES[:STAGES.index(name)]:
            if before in NEEDS_TEST and test is None:
                continue
            if before not in done and before not in wanted:
                raise UserError(f"stage {name} needs stage {before}, which has not finished in "
                                f"{run_path}: add it to --stages (or leave --stages out)")
        if name in done and name != "compare":
            print(f"bootstrap: {name} already finished ({done[name]['finished']}): skipping",
                  flush=True)
            continue
        _run_stage(name, run_path, ctx, configs, args.verbose)
    if "compare" in wanted and ctx.get("comparison"):
        print(ctx["comparison"]["text"])
        print(ctx["comparison"]["md"])
    elif "train" in done:
        print(done["train"]["info"]["checkpoint"])
    return 0
