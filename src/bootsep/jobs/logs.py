"""``logs.py [RUN_FOLDER...] | sh``: open one tmux pane per running job or run log.

Prints ONE tmux command line (sub-commands joined by ``\\;``) for ``sh`` to run inside tmux:

- no arguments: one pane ``tsp -t <ID>`` per *running* task-spooler job (``tsp`` or, where it
  is task-spooler, ``ts``). The ``tsp`` table is parsed by its header names, so wider columns,
  blank columns and commands with spaces are handled (:func:`parse_tsp_table`);
- ``RUN_FOLDER...``: one pane ``tail -F <newest RUN_FOLDER/logs/*.log>`` per folder (a ``.log``
  file may be given directly).

Every pane gets a title (job id + command, or the folder) shown in its border.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

_PROG = "logs"

#: The environment variables that select the task-spooler server, passed on to ``tsp -t``
#: panes (tmux starts panes with its server's environment, not the caller's).
TSP_ENV_VARS = ("TS_SOCKET", "TMPDIR")


@dataclass(frozen=True)
class TspJob:
    """One row of the ``tsp`` table. Blank columns are None; ``extra`` holds unknown columns."""

    id: int
    state: str
    output: str | None
    e_level: str | None
    times: str | None
    command: str
    extra: dict[str, str | None] = field(default_factory=dict)


@dataclass(frozen=True)
class Pane:
    """A tmux pane to open: ``command`` is a shell command line, ``title`` its border label."""

    title: str
    command: str


# --------------------------------------------------------------------------------------------
# task-spooler


def _column_name(header_token: str) -> str:
    """``Times(r/u/s)`` -> ``Times``; ``E-Level`` stays."""
    m = re.match(r"[A-Za-z][A-Za-z-]*", header_token)
    return m.group(0) if m else header_token


def _is_header(line: str) -> bool:
    names = [_column_name(tok) for tok in line.split()]
    return names[:2] == ["ID", "State"] and "Command" in names


def parse_tsp_table(text: str) -> list[TspJob]:
    """Parse the job list printed by ``tsp`` (task-spooler).

    The header (``ID State Output E-Level Times(r/u/s) Command [run=1/2]``) gives the column
    names and start positions. In a row, a token belongs to a column before ``Command`` if it
    starts before the next column's start, after shifting by how far earlier columns
    overflowed (long ids, output paths, times); a column without tokens is blank and one with
    several keeps its text (``(no output)``). The command is the rest of the row, verbatim.

    Raises ValueError if no header with ``ID``, ``State`` and ``Command`` is found.
    """
    lines = text.splitlines()
    h = next((i for i, line in enumerate(lines) if _is_header(line)), None)
    if h is None:
        raise ValueError("no tsp table header (ID State ... Command) in:\n" + text[:500])
    header = lines[h]
    cols: list[tuple[str, int]] = []
    for m in re.finditer(r"\S+", header):
        cols.append((_column_name(m.group()), m.start()))
        if cols[-1][0] == "Command":
            break
    single, command_start = cols[:-1], cols[-1][1]

    jobs = []
    for line in lines[h + 1:]:
        tokens = list(re.finditer(r"\S+", line))
        if not tokens or not tokens[0].group().isdigit():
            continue  # blank line or a message, not a job row
        values: dict[str, str | None] = {}
        shift, t = 0, 0
        for k, (name, _start) in enumerate(single):
            next_start = single[k + 1][1] if k + 1 < len(single) else command_start
            first = t
            while t < len(tokens) and tokens[t].start() - shift < next_start:
                t += 1
            if t == first:
                values[name] = None
            else:
                values[name] = line[tokens[first].start():tokens[t - 1].end()]
                shift = max(shift, tokens[t - 1].end() + 1 - next_start)
        command = line[tokens[t].start():].rstrip() if t < len(tokens) else ""
        known = {"ID", "State", "Output", "E-Level", "Times"}
        jobs.append(TspJob(
            id=int(values["ID"]), state=values.get("State") or "",
            output=values.get("Output"), e_level=values.get("E-Level"),
            times=values.get("Times"), command=command,
            extra={k: v for k, v in values.items() if k not in known}))
    return jobs


def find_tsp() -> str | None:
    """Name of the task-spooler binary on PATH: ``tsp`` (Debian/Ubuntu), else ``ts`` if it is
    task-spooler (``ts`` is also moreutils' timestamp filter), else None."""
    if shutil.which("tsp"):
        return "tsp"
    if shutil.which("ts"):
        try:
            out = subprocess.run(["ts", "-V"], stdin=subprocess.DEVNULL, capture_output=True,
                                 text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        if "spooler" in (out.stdout + out.stderr).lower():
            return "ts"
    return None


def list_tsp_jobs(tsp: str = "tsp") -> list[TspJob]:
    """Run ``tsp`` (list jobs) and parse it. Raises RuntimeError if it fails."""
    try:
        out = subprocess.run([tsp], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                             timeout=30)
    except (OSError, subprocess.SubprocessError) as e:
        raise RuntimeError(f"cannot run {tsp}: {e}") from e
    if out.returncode != 0:
        raise RuntimeError(f"{tsp} exited {out.returncode}: {out.stderr.strip()}")
    try:
        return parse_tsp_table(out.stdout)
    except ValueError as e:
        raise RuntimeError(f"cannot read the {tsp} job list: {e}") from e


def _shorten(text: str, width: int = 60, keep_end: bool = False) -> str:
    if len(text) <= width:
        return text
    return "..." + text[3 - width:] if keep_end else text[: width - 3] + "..."


def tsp_panes(jobs: Iterable[TspJob], tsp: str = "tsp",
              env: Mapping[str, str] | None = None) -> list[Pane]:
    """One ``tsp -t <ID>`` pane per running job; the ``TS_SOCKET``/``TMPDIR`` of ``env``
    (default ``os.environ``) are prefixed so the pane talks to the same tsp server."""
    env = os.environ if env is None else env
    prefix = "".join(f"{k}={shlex.quote(env[k])} " for k in TSP_ENV_VARS if env.get(k))
    return [Pane(title=_shorten(f"job {j.id}: {j.command}"),
                 command=f"{prefix}{shlex.join([tsp, '-t', str(j.id)])}")
            for j in jobs if j.state == "running"]


# --------------------------------------------------------------------------------------------
# run folders


def newest_log(run_folder: str | os.PathLike) -> Path | None:
    """The newest ``<run_folder>/logs/*.log`` (by modification time, then name), or None."""
    logs = [p for p in Path(run_folder, "logs").glob("*.log") if p.is_file()]
    if not logs:
        return None
    return max(logs, key=lambda p: (p.stat().st_mtime, p.name))


def run_folder_panes(run_folders: Sequence[str | os.PathLike]) -> tuple[list[Pane], list[str]]:
    """``tail -F`` panes for the newest log of each run folder (or a ``.log`` file itself).

    Returns ``(panes, problems)``; ``problems`` are messages for folders that were skipped.
    Paths in the commands are absolute (tmux panes do not start in the caller's folder).
    """
    panes, problems = [], []
    for folder in run_folders:
        path = Path(folder)
        if path.is_file():
            log = path
        elif not path.is_dir():
            problems.append(f"{folder}: no such run folder")
            continue
        else:
            log = newest_log(path)
            if log is None:
                problems.append(f"{folder}: no logs/*.log yet (has the run started?); skipped")
                continue
        panes.append(Pane(title=_shorten(str(folder).rstrip("/") or str(folder), keep_end=True),
                          command=shlex.join(["tail", "-F", str(log.resolve())])))
    return panes, problems


# --------------------------------------------------------------------------------------------
# tmux


def _title(text: str) -> str:
    # pane titles go through tmux format expansion in the border: keep '#' literal
    return text.replace("#", "##")


def tmux_command(panes: Sequence[Pane], socket: str | None = None) -> str:
    """The single tmux command line (for ``sh``) that opens ``panes`` in the current window.

    ``socket``: a tmux server socket name (``tmux -L``), default the user's server.
    """
    subs = [["set", "-g", "pane-border-status", "top"],
            ["set", "-g", "pane-border-format", "#{pane_index}: #{pane_title}"]]
    # each split lands right after the original pane: split in reverse to keep the given order
    for pane in reversed(panes):
        subs += [["split-window", pane.command], ["select-pane", "-T", _title(pane.title)],
                 ["last-pane"], ["select-layout", "tiled"]]
    head = ["tmux"] + (["-L", socket] if socket else [])
    return shlex.join(head) + " " + " \\; ".join(shlex.join(s) for s in subs)


def pane_commands(run_folders: Sequence[str | os.PathLike] = (), tsp: str | None = None,
                  env: Mapping[str, str] | None = None) -> list[Pane]:
    """The panes ``logs.py`` would open: for ``run_folders`` if given, else for running tsp
    jobs (``tsp`` defaults to :func:`find_tsp`). Raises RuntimeError if tsp is unusable."""
    if run_folders:
        return run_folder_panes(run_folders)[0]
    tsp = tsp or find_tsp()
    if tsp is None:
        raise RuntimeError("task-spooler not found (no tsp or ts on PATH)")
    return tsp_panes(list_tsp_jobs(tsp), tsp=tsp, env=env)


# --------------------------------------------------------------------------------------------
# Command line

_DESCRIPTION = """\
Print one tmux command that opens a pane per running job; pipe it into sh inside tmux.

mode 1:  ./logs.py | sh
  one pane 'tsp -t ID' per running task-spooler job (tsp, or ts where that is
  task-spooler); TS_SOCKET/TMPDIR are passed on to the panes.
mode 2:  ./logs.py RUN_FOLDER [RUN_FOLDER ...] | sh
  one pane 'tail -F LOG' per run folder, LOG = its newest logs/*.log (a .log file may be
  given instead of a folder); folders without logs are reported and skipped.
"""

_EPILOG = """\
exit codes:
  0  command printed, or no running jobs (nothing printed; sh then does nothing)
  1  mode 2: none of the folders has a log
  2  usage error, tmux not installed, or task-spooler missing/unreadable
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="logs.py", description=_DESCRIPTION, epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_folders", nargs="*", metavar="RUN_FOLDER",
                   help="run folders to follow (mode 2); none: running tsp jobs (mode 1)")
    p.add_argument("-L", "--tmux-socket", default=None, metavar="NAME",
                   help="tmux server socket name (tmux -L NAME); default: your tmux server")
    return p


def _error(msg: str) -> None:
    print(f"{_PROG}: {msg}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``logs.py``; returns the exit code (see ``--help``)."""
    args = build_parser().parse_args(argv)
    if shutil.which("tmux") is None:
        _error("tmux is not installed (not on PATH); install it, e.g. apt-get install tmux")
        return 2
    if args.run_folders:
        panes, problems = run_folder_panes(args.run_folders)
        for problem in problems:
            _error(problem)
        if not panes:
            _error("none of the given run folders has a log; nothing to show")
            return 1
    else:
        tsp = find_tsp()
        if tsp is None:
            _error("task-spooler not found (no tsp or ts on PATH); install it, e.g. "
                   "apt-get install task-spooler, or pass RUN_FOLDERs")
            return 2
        try:
            jobs = list_tsp_jobs(tsp)
        except RuntimeError as e:
            _error(str(e))
            return 2
        panes = tsp_panes(jobs, tsp=tsp)
        if not panes:
            _error(f"no running {tsp} jobs; nothing to show")
            return 0
    if not os.environ.get("TMUX") and args.tmux_socket is None:
        _error("note: not inside tmux; run './logs.py | sh' from a tmux pane")
    print(tmux_command(panes, args.tmux_socket), flush=True)
    return 0
