"""Sweeps and ``instantiate``: compile configs into self-contained run folders.

``sweep.parameters = {'AutoClip.clip_percentile': [1, 10], 'Chimera.hidden_size': [300, 600]}``
expands to the cartesian product (keys sorted). Each setting becomes a folder
``run{N}:{param}_{value}[_{param}_{value}...]`` holding a ``config.gin`` with every binding and
macro plus the absolute ``output_folder``; ``N`` continues the count of existing ``run*`` folders.
The sweep folder gets ``sweep.json`` (each run's setting and GPUs, read by
``python -m bootsep.report.compare --sweep``), ``run.sh`` (task-spooler queue of every run in the
folder, rewritten by each ``instantiate``; rerunning it queues only runs that have no
``report_card.txt`` and no queued/running tsp job) and, with ``--launcher slurm``, ``sbatch.sh``
(an array job of this instantiate's runs). ``--gpus-per-run N > 1`` launches through torchrun in
both.
"""

from __future__ import annotations

import itertools
import re
import shlex
import sys
import time
from pathlib import Path

import gin

from ..utils.errors import UserError
from ..utils.io import atomic_write_text


@gin.configurable
def sweep(parameters=None):
    """Holds ``sweep.parameters``: ``{'configurable.param': [values, ...]}`` or None (one run)."""
    return parameters


def _format_value(v) -> str:
    return repr(v) if isinstance(v, str) else str(v)


def sanitize(descriptor: str) -> str:
    """Lowercase; drop spaces, braces, brackets, quotes, backslashes; ``,`` and ``:`` -> ``_``."""
    s = descriptor.lower()
    s = re.sub(r"[\s{}\[\]'\"\\]", "", s)
    s = re.sub(r"[,:/]", "_", s)
    return s


def expand_sweep(parameters) -> list[tuple[str, dict]]:
    """Validate ``sweep.parameters`` and expand it to ``[(descriptor, {key: value}), ...]``.

    A malformed sweep raises :class:`UserError` (never silently becomes a single run).
    """
    if parameters is None:
        return [("", {})]
    if not isinstance(parameters, dict) or not parameters:
        raise UserError(f"sweep.parameters must be a non-empty dict of 'configurable.param': "
                        f"[values], got {parameters!r}")
    keys = sorted(parameters)
    for k in keys:
        if not isinstance(k, str) or "." not in k:
            raise UserError(f"sweep.parameters key {k!r} must look like 'configurable.param' "
                            f"(optionally 'scope/configurable.param')")
        vals = parameters[k]
        if not isinstance(vals, (list, tuple)) or len(vals) == 0:
            raise UserError(f"sweep.parameters[{k!r}] must be a non-empty list of values, got {vals!r}")
    out = []
    for combo in itertools.product(*(parameters[k] for k in keys)):
        setting = dict(zip(keys, combo))
        desc = "_".join(f"{k.split('.')[-1]}:{v}" for k, v in setting.items())
        out.append((sanitize(desc), setting))
    return out


_RUN_RE = re.compile(r"^run(\d+)(:|$)")


def existing_runs(folder: Path) -> list[Path]:
    """The ``run<N>[:...]`` folders of ``folder``, by N."""
    if not folder.is_dir():
        return []
    runs = [p for p in folder.iterdir() if p.is_dir() and _RUN_RE.match(p.name)]
    return sorted(runs, key=lambda p: (int(_RUN_RE.match(p.name).group(1)), p.name))


def project_root() -> Path:
    """The checkout holding ``main.py`` and ``allocate.py`` (falls back to the cwd)."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "main.py").is_file() and (parent / "allocate.py").is_file():
            return parent
    return Path.cwd()


def _bind_checked(key: str, value) -> None:
    try:
        gin.bind_parameter(key, value)
    except (ValueError, KeyError) as e:
        first = str(e).splitlines()[0]
        raise UserError(f"sweep.parameters key {key!r}: {first}") from e


def instantiate(folder: str | Path, launcher: str = "tsp", gpus_per_run: int = 1) -> list[Path]:
    """Write one run folder per sweep setting into ``folder``; returns the run folders."""
    folder = Path(folder).resolve()
    if launcher not in ("tsp", "slurm"):
        raise UserError(f"unknown launcher {launcher!r}; choose 'tsp' or 'slurm'")
    if int(gpus_per_run) < 1:
        raise UserError(f"--gpus-per-run must be at least 1, got {gpus_per_run}")
    settings = expand_sweep(sweep())
    for key, value in settings[0][1].items():  # fail on a bad key before writing anything
        _bind_checked(key, value)
    folder.mkdir(parents=True, exist_ok=True)
    taken = {int(_RUN_RE.match(p.name).group(1)) for p in existing_runs(folder)}
    n = len(taken)
    runs: dict[Path, dict] = {}
    for desc, setting in settings:
        while n in taken:
            n += 1
        run = folder / (f"run{n}" + (f":{desc}" if desc else ""))
        if run.exists():
            raise UserError(f"run folder {run} already exists; it is never overwritten")
        for key, value in setting.items():
            _bind_checked(key, value)
        gin.bind_parameter("output_folder._output_folder", str(run))
        gin.bind_parameter("sweep.parameters", None)
        header = (f"# Compiled by `bootsep instantiate` on {time.strftime('%Y-%m-%d %H:%M:%S')}\n"
                  f"# sweep setting: {setting or 'none'}\n")
        run.mkdir(parents=True)
        atomic_write_text(run / "config.gin", header + gin.config_str(max_line_length=200))
        runs[run] = setting
        taken.add(n)
    _write_run_sh(folder, runs, gpus_per_run)
    if launcher == "slurm":
        _write_sbatch(folder, list(runs), gpus_per_run)
    return list(runs)


SWEEP_JSON = "sweep.json"


def _make_executable(path: Path) -> None:
    """rwx for whom the user's umask allows (0o755 under the usual 022, 0o775 under 002)."""
    from ..utils.io import current_umask

    path.chmod(0o777 & ~current_umask())


def load_sweep(folder: str | Path) -> dict:
    """``<folder>/sweep.json`` with every run folder's setting (the reader lives, gin-free, in
    :func:`bootsep.report.sweep.load_sweep`, which ``report.compare --sweep`` uses too)."""
    from ..report.sweep import load_sweep as _load

    return _load(folder)


def run_command_line(run: Path, gpus: int) -> str:
    """The queued command of one run: allocate.py, then main.py (through torchrun with N GPUs)."""
    cfg = shlex.quote(str(run / "config.gin"))
    main = (f"\"$PY\" -m torch.distributed.run --standalone --nproc_per_node={gpus} main.py"
            if gpus > 1 else "\"$PY\" main.py")
    return f"\"$PY\" ./allocate.py $ALLOCATE_FLAGS {gpus} {main} all -c {cfg}"


_QUEUE_FN = r"""# queue RUN_FOLDER CMD...: skip a removed run folder, a finished run (report_card.txt) and one
# whose tsp job is still queued or running (its id is in RUN_FOLDER/.tsp_job); otherwise queue
# CMD labelled with the run.
queue() {
  run=$1; shift
  name=$(basename "$run")
  if [ ! -f "$run/config.gin" ]; then echo "no $run/config.gin (removed?); skipped" >&2; return 0; fi
  if [ -f "$run/report_card.txt" ]; then echo "finished $name (skipped)"; return 0; fi
  if [ -f "$run/.tsp_job" ]; then
    state=$($TSP -s "$(cat "$run/.tsp_job")" 2>/dev/null)
    case "$state" in
      queued|running|allocating) echo "already $state: $name (skipped)"; return 0 ;;
    esac
  fi
  id=$($TSP -L "$name" "$@") || { echo "could not queue $name" >&2; return 1; }
  echo "$id" > "$run/.tsp_job"
  echo "queued $name (tsp job $id)"
}
"""


def _write_run_sh(folder: Path, runs: dict[Path, dict], gpus: int) -> Path:
    """(Re)write ``run.sh`` for every run of the sweep folder; rerunning it queues only the
    unfinished runs that are not queued already (see :data:`_QUEUE_FN`)."""
    import json

    data = load_sweep(folder)
    for run, setting in runs.items():
        data["runs"][run.name] = {"setting": setting, "gpus_per_run": int(gpus)}
    atomic_write_text(folder / SWEEP_JSON, json.dumps(data, indent=2, default=str) + "\n")
    root = project_root()
    py = sys.executable
    lines = [
        "#!/bin/sh",
        "# Queue this sweep's unfinished runs with task-spooler; each starts when allocate.py finds",
        "# its GPUs. Safe to rerun: runs with a report_card.txt, and runs whose tsp job is still",
        "# queued or running, are skipped. Rewritten by every `instantiate` into this folder.",
        "# Parallel slots: `tsp -S N`. No GPU: ALLOCATE_FLAGS=--allow-cpu sh run.sh",
        f"cd {shlex.quote(str(root))} || exit 1",
        f"PY=${{BOOTSEP_PYTHON:-{shlex.quote(py)}}}",
        "TSP=${TSP:-tsp}",
        _QUEUE_FN,
    ]
    for run in existing_runs(folder):
        if not (run / "config.gin").is_file():
            continue
        n = int(data["runs"].get(run.name, {}).get("gpus_per_run", 1))
        lines.append(f"queue {shlex.quote(str(run))} {run_command_line(run, n)}")
    path = folder / "run.sh"
    atomic_write_text(path, "\n".join(lines) + "\n")
    _make_executable(path)
    return path


def write_sbatch(path: Path, *, job_name: str, tasks: int, gpus: int, log_folder: Path,
                 body: str, cpus: int = 8) -> Path:
    """Write a Slurm array job of ``tasks`` tasks (``--array=0-<tasks-1>``) to ``path``.

    ``body`` is the shell text each task runs after ``cd <checkout>`` and
    ``PY=${BOOTSEP_PYTHON:-<this python>}`` (``$SLURM_ARRAY_TASK_ID`` tells the task apart);
    ``gpus`` = 0 asks for no GPU. Logs go to ``<log_folder>/slurm-%A_%a.out``.
    """
    root = project_root()
    gres = f"#SBATCH --gres=gpu:{gpus}\n" if gpus > 0 else ""
    text = (f"#!/bin/bash\n"
            f"# Slurm array job of {tasks} task(s). Submit with: sbatch {path}\n"
            f"#SBATCH --job-name={job_name}\n"
            f"#SBATCH --array=0-{tasks - 1}\n"
            f"{gres}"
            f"#SBATCH --cpus-per-task={cpus}\n"
            f"#SBATCH --output={log_folder}/slurm-%A_%a.out\n"
            f"cd {shlex.quote(str(root))} || exit 1\n"
            f"PY=${{BOOTSEP_PYTHON:-{shlex.quote(sys.executable)}}}\n"
            f"{body.rstrip()}\n")
    atomic_write_text(path, text)
    _make_executable(path)
    return path


def _write_sbatch(folder: Path, runs: list[Path], gpus: int) -> Path:
    configs = " ".join(shlex.quote(str(r / "config.gin")) for r in runs)
    body = f"""CONFIGS=({configs})
if [ "{gpus}" -gt 1 ]; then
  exec "$PY" -m torch.distributed.run --standalone --nproc_per_node={gpus} main.py all -c "${{CONFIGS[$SLURM_ARRAY_TASK_ID]}}"
else
  exec "$PY" main.py all -c "${{CONFIGS[$SLURM_ARRAY_TASK_ID]}}"
fi
"""
    return write_sbatch(folder / "sbatch.sh", job_name=f"bootsep-{folder.name}",
                        tasks=len(runs), gpus=max(1, gpus), log_folder=folder, body=body)
