"""``python main.py COMMAND -c a.gin [b.gin ...] [-o OUTPUT] [-b 'key = value' ...]``.

Config files are parsed in order (later ones override earlier ones), then ``--bind`` lines.
Only the commands listed in :data:`COMMANDS` run. User mistakes (unknown command, missing or
malformed config, unknown configurable, missing binding) print one ``error:`` line and exit 2.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
import time
from pathlib import Path

from ..utils.errors import UserError, report

log = logging.getLogger("bootsep")

COMMANDS = {
    "instantiate": "compile the configs (and any sweep) into run folders under -o, plus run.sh",
    "prepare": "build or convert a dataset (prepare.task; e.g. the demo songs, MUSDB, WHAM!)",
    "cache": "decode and resample the datasets' audio into their caches",
    "train": "train the configured model (rerunning resumes from checkpoints/latest.pth)",
    "evaluate": "separate and score the test set into results/*.json, then analyze",
    "analyze": "aggregate results/*.json into report_card.txt, metrics.csv, plots, report.html",
    "all": "train, then evaluate, then analyze",
    "resume": "continue training from checkpoints/latest.pth, then evaluate and analyze",
    "debug": "overfit one training item briefly, then evaluate on it (in <run>/debug)",
    "separate": "separate audio files or folders with a run or primitive config (--input, --output)",
    "organize": "build training folders from separate's results by confidence percentile",
    "convert": "rewrite an older checkpoint that needs pickles as plain data (--checkpoint OLD "
               "--output NEW --trust: runs the file's code once, so only for files you trust)",
    "bootstrap": "unlabelled music -> teacher separations -> confident ones -> a trained student "
                 "(--unlabelled DIR..., --test DIR; stages in sub-folders of -o, resumable)",
}

RUN_COMMANDS = {"prepare", "cache", "train", "evaluate", "analyze", "all", "resume", "debug",
                "separate", "organize"}


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2
        raise UserError(message)


def build_parser() -> argparse.ArgumentParser:
    epilog = "commands:\n" + "\n".join(f"  {k:<12} {v}" for k, v in COMMANDS.items())
    epilog += ("\n\nmain.py COMMAND --help: what COMMAND does, its options and the gin parameters "
               "it reads, with defaults")
    p = _Parser(prog="main.py", description="bootsep: gin-configured deep source separation",
                epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", metavar="COMMAND", help="one of: " + ", ".join(COMMANDS))
    p.add_argument("-c", "--config", nargs="+", default=[], metavar="GIN",
                   help="gin files, parsed in order (later ones override earlier ones)")
    p.add_argument("-o", "--output-folder", default=None, metavar="DIR",
                   help="run folder (for instantiate: the sweep folder that receives run*/)")
    p.add_argument("-b", "--bind", action="append", default=[], metavar="'KEY = VALUE'",
                   help="extra gin binding, applied after the files (repeatable)")
    p.add_argument("--launcher", choices=["tsp", "slurm"], default="tsp",
                   help="instantiate: also write sbatch.sh for slurm (run.sh is always written); "
                        "separate: write a Slurm array job of --shards N instead of separating")
    p.add_argument("--gpus-per-run", type=int, default=1, help="instantiate: GPUs per run")
    p.add_argument("--input", nargs="+", default=None, metavar="PATH",
                   help="separate: audio files or folders to separate")
    p.add_argument("--output", default=None, metavar="DIR",
                   help="separate/organize: destination; convert: the new checkpoint file")
    p.add_argument("--force", action="store_true",
                   help="organize: replace what a previous organize wrote in --output (only "
                        "the files its manifest.csv lists); separate --input: replace output "
                        "files a previous separate wrote (only those its separate.json lists); "
                        "train/all: start over in a run holding checkpoints (moved to "
                        "checkpoints/previous/<n>/)")
    p.add_argument("--shard", default=None, metavar="I/N",
                   help="separate (segment mode), evaluate: do shard I of N (from 0) of the "
                        "sorted work list (default: from SLURM_ARRAY_TASK_ID/COUNT or torchrun's "
                        "RANK/WORLD_SIZE; 0/1 = all)")
    p.add_argument("--shards", type=int, default=None, metavar="N",
                   help="separate --launcher slurm: write an array job of N shards "
                        "(<run>/slurm/separate.sbatch) instead of separating")
    p.add_argument("--allow-incomplete", action="store_true",
                   help="organize: use a separate output whose plan is unfinished (missing "
                        "shards or segments)")
    p.add_argument("--checkpoint", default=None, metavar="PTH", help="convert: the old checkpoint")
    p.add_argument("--trust", action="store_true",
                   help="convert: you trust the file (converting runs the code it carries)")
    p.add_argument("--unlabelled", nargs="+", default=None, metavar="[NAME=]DIR",
                   help="bootstrap: folders of recordings to learn from (plain or MUSDB-style)")
    p.add_argument("--test", default=None, metavar="DIR",
                   help="bootstrap: labelled songs (DIR/<song>/{mixture,<sources>}.wav) to score "
                        "the teacher and the student on")
    p.add_argument("--valid", default=None, metavar="DIR",
                   help="bootstrap: labelled songs to monitor the student's training with")
    p.add_argument("--stages", nargs="+", default=None, metavar="STAGE",
                   help="bootstrap: run only these of separate organize train evaluate compare")
    p.add_argument("--teacher", default=None, metavar="PATH",
                   help="bootstrap: the teacher: a separator .gin, a .pth or a trained run "
                        "folder (default: the recipe's primitive ensemble)")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p


_GIN_CALL = "\n  In call to configurable"
_GIN_LOC = re.compile(r'In file "(?P<file>[^"]+)", line (?P<line>\d+)')


def _gin_error(e: Exception, source: str) -> UserError:
    text = str(e)
    first = text.strip().splitlines()[0] if text.strip() else type(e).__name__
    m = _GIN_LOC.search(text)
    where = f"{m.group('file')}:{m.group('line')}" if m else source
    if isinstance(e, SyntaxError) and getattr(e, "lineno", None):
        where = f"{getattr(e, 'filename', None) or source}:{e.lineno}"
        first = f"gin syntax error: {e.msg}"
    elif type(e).__name__ == "TokenError":
        first = f"gin syntax error: {first}"
    unknown = re.match(r"No configurable matching (?:reference )?'@?([^']+)'", first)
    if unknown:  # a misspelt name: the closest and all known names, on the same line
        from ..config.registry import unknown_name_hint

        first = first.rstrip(".") + unknown_name_hint(unknown.group(1))
    return UserError(f"{where}: {first}")


def parse_configs(configs, bindings) -> None:
    import gin

    from ..config import registry

    registry.register_all()
    for cfg in configs:
        path = Path(cfg)
        if not path.is_file():
            raise UserError(f"config file not found: {cfg} (check the path; configs live in "
                            f"musdb/ and wham/)")
        gin.add_config_file_search_path(str(path.resolve().parent))
        try:
            gin.parse_config_file(str(path))
        except Exception as e:  # gin raises ValueError/SyntaxError/TokenError/...
            raise _gin_error(e, str(path)) from None
    for b in bindings:
        try:
            gin.parse_config(b)
        except Exception as e:
            raise _gin_error(e, f"--bind {b!r}") from None
    from ..config.bindings import check_bound_types

    check_bound_types()  # a literal of the wrong type (num_epochs = 'two') is one error line


def setup_logging(run: Path | None, verbose: bool = False, quiet: bool = False) -> Path | None:
    """Log to stdout and, with a run folder, to ``<run>/logs/<timestamp>.log``.

    ``quiet`` (non-zero DDP ranks) keeps only warnings.
    """
    fmt = logging.Formatter("%(asctime)s [%(filename)s:%(lineno)d] %(message)s")
    root = logging.getLogger()
    root.setLevel(logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO)
    for h in list(root.handlers):
        root.removeHandler(h)
    sh = logging.StreamHandler(sys.stdout)
    sh.setFormatter(fmt)
    root.addHandler(sh)
    logfile = None
    if run is not None:
        logfile = run / "logs" / f"{time.strftime('%Y.%m.%d-%H.%M.%S')}.log"
        logfile.parent.mkdir(parents=True, exist_ok=True)
        fh = logging.FileHandler(logfile)
        fh.setFormatter(fmt)
        root.addHandler(fh)
    for noisy in ("matplotlib", "numba", "PIL", "h5py", "ignite"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return logfile


def _arg_names(list_text: str) -> list[str]:
    """The names in gin's ``['a', 'b']`` argument lists, read as text, never evaluated; ``[]``
    for anything but a list of quoted identifiers."""
    name = r"'[A-Za-z_][A-Za-z0-9_]*'"
    if not re.fullmatch(rf"\[\s*(?:{name}(?:\s*,\s*{name})*)?\s*\]", list_text):
        return []
    return re.findall(r"'([A-Za-z_][A-Za-z0-9_]*)'", list_text)


def _gin_runtime_error(e: Exception) -> UserError | None:
    text = str(e)
    if "Required bindings for" in text:
        m = re.search(r"Required bindings for `([^`]+)` not provided in config: (\[.*?\])", text)
        if m and _arg_names(m.group(2)):
            keys = ", ".join(f"{m.group(1)}.{k}" for k in _arg_names(m.group(2)))
            return UserError(f"missing required gin binding(s): {keys} (add them to a config "
                             f"file or pass -b '{m.group(1)}.KEY = VALUE')")
        return UserError(text.splitlines()[0])
    if "No values supplied by Gin or caller" in text:
        first = text.split("\n")[0]
        m = re.search(r"No values supplied by Gin or caller for arguments: (\[.*?\])", text)
        who = re.search(r"In call to configurable '([^']+)'", text)
        if m and who:
            keys = ", ".join(f"{who.group(1)}.{k}" for k in _arg_names(m.group(1)))
            return UserError(f"missing gin binding(s): {keys} ({first}); add them to a config "
                             f"file or pass -b '{who.group(1)}.KEY = VALUE'")
        return UserError("missing gin binding: " + " ".join(text.split()[:40]))
    return None


def run_command(args) -> int:
    import gin

    from ..config import experiment, paths
    from ..utils.provenance import Provenance

    cmd = args.command
    if cmd == "convert":
        return _convert(args)
    configs = list(args.config)
    if args.output_folder and not configs and cmd in RUN_COMMANDS:
        compiled = Path(args.output_folder) / "config.gin"
        if compiled.is_file():
            configs = [str(compiled)]
    if not configs and cmd not in ("analyze",):
        raise UserError(f"`{cmd}` needs at least one config: main.py {cmd} -c CONFIG.gin")
    if cmd == "bootstrap":  # its stages parse, log and record provenance themselves
        from ..config.bootstrap import bootstrap_command

        return bootstrap_command(args, configs)
    parse_configs(configs, args.bind)

    if cmd == "instantiate":
        if not args.output_folder:
            raise UserError("instantiate needs -o SWEEP_FOLDER (where run*/ folders are written)")
        setup_logging(None, args.verbose)
        from ..config.sweep import instantiate

        runs = instantiate(args.output_folder, launcher=args.launcher, gpus_per_run=args.gpus_per_run)
        for r in runs:
            print(r)
        print(Path(args.output_folder).resolve() / "run.sh")
        return 0

    if args.output_folder:
        gin.bind_parameter("output_folder._output_folder", str(Path(args.output_folder).resolve()))
    folder = paths.output_folder()
    run = None
    if cmd in ("train", "evaluate", "analyze", "all", "resume", "debug", "separate"):
        run = experiment.run_dir(folder) if cmd != "separate" or folder else None
    from ..engine.distributed import context

    is_main = context().is_main
    setup_logging(run if is_main else None, args.verbose, quiet=not is_main)
    # <run>/config.gin freezes the configuration for later `-o RUN` invocations, so it is
    # written only once the command has validated it: when training wrote its first checkpoint
    # (a killed run resumes with -o alone) or when the command succeeds. A command that fails
    # before then (e.g. on a bad binding) leaves no config.gin behind.
    experiment._on_config_validated.clear()
    if run is not None and is_main and args.config and not (run / "config.gin").is_file():
        experiment._on_config_validated.append(
            lambda text=gin.config_str(), path=run / "config.gin": _freeze_config(path, text))
    prov = Provenance(run, cmd, sys.argv, configs) if (run is not None and is_main) else None
    try:
        if prov:
            prov.__enter__()
        result = _dispatch(cmd, args, experiment)
    except Exception as e:
        if prov:
            prov.__exit__(type(e), e, None)
            _refresh_report(run)
        raise
    experiment.config_validated()
    if prov:
        prov.__exit__(None, None, None)
        _refresh_report(run)
    return result if isinstance(result, int) else 0


def _freeze_config(path: Path, text: str) -> None:
    from ..utils.io import atomic_write_text

    if not path.is_file():
        atomic_write_text(path, text)


def _convert(args) -> int:
    """``convert --checkpoint OLD --output NEW --trust``: see ``convert_checkpoint``."""
    from ..engine.checkpoint import convert_checkpoint

    if not args.checkpoint or not args.output:
        raise UserError("convert needs --checkpoint OLD.pth --output NEW.pth (and --trust)")
    print(convert_checkpoint(args.checkpoint, args.output, trust=args.trust))
    return 0


def _dispatch(cmd, args, experiment):
    import gin

    if cmd == "prepare":
        out = experiment.prepare()
        if out is not None:
            print(out)
    elif cmd == "cache":
        experiment.cache()
    elif cmd == "train":
        experiment.train(force=args.force)
    elif cmd == "evaluate":
        from ..utils.shards import resolve_shard

        (i, n), where = resolve_shard(args.shard)
        if n > 1:
            log.info("evaluating shard %d/%d (%s)", i, n, where)
        info = experiment.evaluate(shard=(i, n))
        if n > 1 and info.get("pending"):
            print(f"shard {i}/{n} evaluated; {info['pending']} items of other shards have no "
                  f"results yet: run `main.py analyze -o RUN` when all shards have finished")
            return 0
        _print_card(experiment.analyze())
    elif cmd == "analyze":
        _print_card(experiment.analyze())
    elif cmd in ("all", "resume"):
        if cmd == "resume":
            gin.bind_parameter("train.resume", True)
        experiment.train(force=args.force)
        from ..engine.distributed import context

        if context().is_main:
            experiment.evaluate()
            _print_card(experiment.analyze())
    elif cmd == "debug":
        _print_card(experiment.debug())
    elif cmd == "separate":
        from ..config import separate as sep_cmd

        if args.launcher == "slurm":
            from ..config.paths import output_folder

            if not args.shards or not output_folder():
                raise UserError("separate --launcher slurm needs -o RUN (the array job goes to "
                                "RUN/slurm/) and --shards N (its number of tasks)")
            print(sep_cmd.write_sbatch(output_folder(), args.shards, args.output,
                                       gpus=args.gpus_per_run))
            return 0
        return sep_cmd.separate_command(args.input, args.output, force=args.force,
                                        shard=args.shard)
    elif cmd == "organize":
        from ..config import organize as org_cmd

        return org_cmd.organize_command(args.output, force=args.force,
                                        allow_incomplete=args.allow_incomplete)
    return 0


def _refresh_report(run: Path) -> None:
    """Show the command's final status in report.html's provenance table (written while the
    command was still running)."""
    from ..report.html import refresh_provenance

    try:
        refresh_provenance(run)
    except OSError as e:  # the report is a convenience: never fail the command for it
        log.warning("could not update the provenance of %s/report.html: %s", run, e)


def _print_card(result) -> None:
    """Print the report card, then its path as the last line."""
    if isinstance(result, dict) and result.get("report_card"):
        card = Path(result["report_card"])
        print(card.read_text() if card.is_file() else result["report_card"], end="")
        print(card)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        if not argv or argv[0] in ("-h", "--help"):
            parser.print_help()
            return 0
        if argv[0] in COMMANDS and any(a in ("-h", "--help") for a in argv[1:]):
            from .help import command_help  # per-command page, generated from the configurables

            print(command_help(argv[0], parser, COMMANDS[argv[0]], COMMANDS), end="")
            return 0
        args = parser.parse_args(argv)
        if args.command not in COMMANDS:
            raise UserError(f"unknown command {args.command!r}; choose one of: {', '.join(COMMANDS)}")
        try:
            return run_command(args)
        except (RuntimeError, TypeError) as e:
            ue = _gin_runtime_error(e)
            if ue is None:
                raise
            raise ue from None
    except UserError as e:
        return report(str(e).split(_GIN_CALL)[0])  # without gin's call-site suffix
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
