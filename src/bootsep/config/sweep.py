"""Sweeps and ``instantiate``: compile configs into self-contained run folders.

``sweep.parameters = {'AutoClip.clip_percentile': [1, 10], 'Chimera.hidden_size': [300, 600]}``
expands to the cartesian product (keys sorted). Each setting becomes a folder
``run{N}:{param}_{value}[_{param}_{value}...]`` holding a ``config.gin`` with every binding and
macro plus the absolute ``output_folder``; ``N`` continues the count of existing ``run*`` folders.
The sweep folder gets ``run.sh`` (task-spooler queue) and, with ``--launcher slurm``,
``sbatch.sh`` (an array job).
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
    return sorted(p for p in folder.iterdir() if p.is_dir() and _RUN_RE.match(p.name)) \
        if folder.is_dir() else []


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
    settings = expand_sweep(sweep())
    for key, value in settings[0][1].items():  # fail on a bad key before writing anything
        _bind_checked(key, value)
    folder.mkdir(parents=True, exist_ok=True)
    taken = {int(_RUN_RE.match(p.name).group(1)) for p in existing_runs(folder)}
    n = len(taken)
    runs = []
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
        runs.append(run)
        taken.add(n)
    _write_run_sh(folder, runs, gpus_per_run)
    if launcher == "slurm":
        _write_sbatch(folder, runs, gpus_per_run)
    elif launcher != "tsp":
        raise UserError(f"unknown launcher {launcher!r}; choose 'tsp' or 'slurm'")
    return runs


def _write_run_sh(folder: Path, runs: list[Path], gpus: int) -> Path:
    root = project_root()
    py = sys.executable
    path = folder / "run.sh"
    lines = []
    if path.is_file():
        lines = path.read_text().rstrip("\n").split("\n")
    else:
        lines = [
            "#!/bin/sh",
            "# Queue these runs with task-spooler; each starts when allocate.py finds a free GPU.",
            "# Parallel slots: `tsp -S N` (one job per slot). No GPU: ALLOCATE_FLAGS=--allow-cpu sh run.sh",
            f"cd {shlex.quote(str(root))} || exit 1",
            f"PY=${{BOOTSEP_PYTHON:-{shlex.quote(py)}}}",
            "TSP=${TSP:-tsp}",
        ]
    lines.append(f"# instantiated {time.strftime('%Y-%m-%d %H:%M:%S')}")
    for run in runs:
        cfg = shlex.quote(str(run / "config.gin"))
        lines.append(f"$TSP \"$PY\" ./allocate.py $ALLOCATE_FLAGS {gpus} \"$PY\" main.py all -c {cfg}")
        lines.append(f"echo queued {shlex.quote(run.name)}")
    atomic_write_text(path, "\n".join(lines) + "\n")
    path.chmod(0o755)
    return path


def _write_sbatch(folder: Path, runs: list[Path], gpus: int) -> Path:
    root = project_root()
    configs = " ".join(shlex.quote(str(r / "config.gin")) for r in runs)
    text = f"""#!/bin/bash
# Slurm array job: one task per run folder. Submit with: sbatch {folder / 'sbatch.sh'}
#SBATCH --job-name=bootsep-{folder.name}
#SBATCH --array=0-{len(runs) - 1}
#SBATCH --gres=gpu:{gpus}
#SBATCH --cpus-per-task=8
#SBATCH --output={folder}/slurm-%A_%a.out
CONFIGS=({configs})
cd {shlex.quote(str(root))} || exit 1
PY=${{BOOTSEP_PYTHON:-{shlex.quote(sys.executable)}}}
if [ "{gpus}" -gt 1 ]; then
  exec "$PY" -m torch.distributed.run --standalone --nproc_per_node={gpus} main.py all -c "${{CONFIGS[$SLURM_ARRAY_TASK_ID]}}"
else
  exec "$PY" main.py all -c "${{CONFIGS[$SLURM_ARRAY_TASK_ID]}}"
fi
"""
    path = folder / "sbatch.sh"
    atomic_write_text(path, text)
    path.chmod(0o755)
    return path
