"""``logs.py [RUN_FOLDER...] | sh``: open one tmux pane per running job or run log.

Prints ONE tmux command line (sub-commands joined by ``\\;``) for ``sh`` to run inside tmux:

- no arguments: one pane ``tsp -t <ID>`` per *running* task-spooler job (``tsp`` or, where it
  is task-spooler, ``ts``). The ``tsp`` table is parsed by its header names, so wider columns,
  blank columns and commands with spaces are handled (:func:`parse_tsp_table`);
- ``RUN_FOLDER...``: one pane per folder following its newest ``logs/*.log`` (``logs.py
  --follow``; a ``.log`` file may be given directly). Other files a glob matches (``run.sh``,
  ``sweep.json``) open no pane.

Every pane's title (shown in its border) is the run's name: the tsp job's label (``run.sh``
labels each job with its run folder), else the run folder of its ``-c .../config.gin`` / ``-o``,
else the command with interpreter paths shortened. When a job ends its pane stays open
(tmux ``remain-on-exit``) showing the last lines and a line with the exit status.
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


_LABEL = re.compile(r"^\[([^\]]+)\](?!&&)")


def run_name_of_command(command: str) -> str | None:
    """The run a queued command works on: its tsp label (``[run0:lr_1]python ...``), else the
    folder of a ``-c .../config.gin`` or the ``-o``/``--output-folder`` argument; None if
    neither is there."""
    m = _LABEL.match(command)
    if m:
        return m.group(1)
    try:
        argv = shlex.split(command)
    except ValueError:
        argv = command.split()
    for i, tok in enumerate(argv[:-1]):
        if tok in ("-o", "--output-folder"):
            return Path(argv[i + 1]).name or argv[i + 1]
        if tok in ("-c", "--config") and argv[i + 1].endswith("config.gin"):
            return Path(argv[i + 1]).parent.name or None
    return None


def _short_command(command: str) -> str:
    """``/long/venv/bin/python ./allocate.py 1 /long/python main.py ...`` -> ``python allocate.py
    1 python main.py ...`` (paths of programs cut to their names)."""
    return " ".join(Path(t).name if "/" in t and not t.endswith("/") else t
                    for t in command.split(" "))


def job_title(job: TspJob) -> str:
    """The pane title of a tsp job: ``<run name> (job N)``, or ``job N: <short command>``."""
    run = run_name_of_command(job.command)
    if run:
        return _shorten(f"{run} (job {job.id})", keep_end=False)
    return _shorten(f"job {job.id}: {_short_command(_LABEL.sub('', job.command))}")


def _ended(title: str, status: str) -> str:
    """Shell snippet printing the line that closes a pane's output."""
    return f"printf '\\n[%s ended: exit status %s]\\n' {shlex.quote(title)} \"{status}\""


def tsp_panes(jobs: Iterable[TspJob], tsp: str = "tsp",
              env: Mapping[str, str] | None = None) -> list[Pane]:
    """One ``tsp -t <ID>`` pane per running job (``tsp -t`` exits with the job's exit code,
    printed when it ends); the ``TS_SOCKET``/``TMPDIR`` of ``env`` (default ``os.environ``)
    are prefixed so the pane talks to the same tsp server."""
    env = os.environ if env is None else env
    prefix = "".join(f"{k}={shlex.quote(env[k])} " for k in TSP_ENV_VARS if env.get(k))
    panes = []
    for j in jobs:
        if j.state != "running":
            continue
        title = job_title(j)
        panes.append(Pane(title=title,
                          command=f"{prefix}{shlex.join([tsp, '-t', str(j.id)])}; "
                                  f"{_ended(title, '$?')}"))
    return panes


# --------------------------------------------------------------------------------------------
# run folders


def newest_log(run_folder: str | os.PathLike) -> Path | None:
    """The newest ``<run_folder>/logs/*.log`` (by modification time, then name), or None."""
    logs = [p for p in Path(run_folder, "logs").glob("*.log") if p.is_file()]
    if not logs:
        return None
    return max(logs, key=lambda p: (p.stat().st_mtime, p.name))


def run_name(path: str | os.PathLike) -> str:
    """The run a folder or log file belongs to: the folder's name (``run0:lr_1``); for
    ``<run>/logs/x.log`` the run folder's name; for another file its name."""
    p = Path(os.path.abspath(path))
    if p.suffix == ".log" and p.parent.name == "logs":
        return p.parent.parent.name
    return p.name


def follow_command(target: str | os.PathLike) -> str:
    """The pane command following ``target`` (a run folder or a .log file): ``logs.py --follow``
    with this interpreter (see :func:`follow`)."""
    script = Path(__file__).resolve().parents[3] / "logs.py"
    head = [sys.executable, str(script)] if script.is_file() else \
        [sys.executable, "-m", "bootsep.jobs.logs"]
    return shlex.join([*head, "--follow", os.path.abspath(target)])


def run_folder_panes(run_folders: Sequence[str | os.PathLike]) -> tuple[list[Pane], list[str]]:
    """Follow panes (:func:`follow_command`) for each run folder (or a ``.log`` file itself).

    Returns ``(panes, problems)``; ``problems`` are messages for what was skipped: folders
    without logs, missing paths, and (in one message) files that are neither a run folder nor
    a ``.log`` file (``run.sh``, ``sweep.json``: a glob such as ``runs/sweep/*`` matches them).
    Paths in the commands are absolute (tmux panes do not start in the caller's folder).
    """
    panes, problems, other_files = [], [], []
    for folder in run_folders:
        path = Path(folder)
        if path.is_file():
            if path.suffix != ".log":
                other_files.append(path.name)
                continue
        elif not path.is_dir():
            problems.append(f"{folder}: no such run folder")
            continue
        elif newest_log(path) is None:
            problems.append(f"{folder}: no logs/*.log yet (has the run started?); skipped")
            continue
        panes.append(Pane(title=_shorten(run_name(path)), command=follow_command(path)))
    if other_files:
        problems.append(f"skipped {len(other_files)} file(s) that are not run folders or .log "
                        f"files: {', '.join(other_files)}")
    return panes, problems


# --------------------------------------------------------------------------------------------
# Following a run's log until the run ends


def _parse_time(text: str, fmt: str) -> float | None:
    import time

    try:
        return time.mktime(time.strptime(text, fmt))
    except (TypeError, ValueError):
        return None


def run_status(run_folder: Path, log: Path) -> tuple[str, str | None] | None:
    """``(status, end)`` of the invocation that writes ``log``, once it has ended; None while it
    runs or if unknown. Read from ``provenance.json``: its last invocation, if it started no
    earlier than the log's timestamped name (``%Y.%m.%d-%H.%M.%S.log``)."""
    import json

    try:
        data = json.loads((run_folder / "provenance.json").read_text())
        last = data["invocations"][-1]
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return None
    started = _parse_time(str(last.get("start")), "%Y-%m-%dT%H:%M:%S")
    log_time = _parse_time(log.stem, "%Y.%m.%d-%H.%M.%S")
    if started is None or log_time is None or started < log_time:
        return None
    status = str(last.get("status") or "")
    if not status or status == "running" or not last.get("end"):
        return None
    return status, last.get("end")


def follow(target: str | os.PathLike, lines: int = 10, poll: float = 0.5,
           out=None, max_seconds: float | None = None) -> int:
    """Print the last ``lines`` lines of a run's newest log, then what is appended (switching to
    a newer log when the run is started again), until the run ends; then print
    ``[<run> ended: exit status <status>]``. Returns 0 if it ended ``ok``, 1 if it failed, 0 for
    a plain ``.log`` file outside a run folder (followed until interrupted or ``max_seconds``).
    """
    import time

    out = out or sys.stdout
    path = Path(target)
    if path.is_file():
        log = path
        run = path.parent.parent if path.parent.name == "logs" else None
    else:
        run, log = path, newest_log(path)
    name = run_name(path)
    t0 = time.monotonic()

    def emit(text: str) -> None:
        out.write(text)
        out.flush()

    while log is None:  # a folder whose run has not written its log yet
        time.sleep(poll)
        log = newest_log(path)
    with open(log, "rb") as f:
        tail = f.read().decode("utf-8", "replace").splitlines(keepends=True)[-lines:]
        pos = f.tell()
    emit("".join(tail))
    while True:
        with open(log, "rb") as f:
            f.seek(pos)
            chunk = f.read()
        pos += len(chunk)
        if chunk:
            emit(chunk.decode("utf-8", "replace"))
        if run is not None and not path.is_file():
            newer = newest_log(run)
            if newer is not None and newer != log and newer.stat().st_mtime >= log.stat().st_mtime:
                emit(f"\n[{name}: new log {newer.name}]\n")
                log, pos = newer, 0
                continue
        if run is not None:
            ended = run_status(run, log)
            if ended is not None:
                status, end = ended
                with open(log, "rb") as f:  # the last lines written before the status
                    f.seek(pos)
                    rest = f.read()
                if rest:
                    emit(rest.decode("utf-8", "replace"))
                emit(f"\n[{name} ended: exit status {status} at {end}]\n")
                return 0 if status == "ok" else 1
        if max_seconds is not None and time.monotonic() - t0 > max_seconds:
            return 0
        time.sleep(poll)


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
        subs += [["split-window", pane.command], ["set-option", "-p", "remain-on-exit", "on"],
                 ["select-pane", "-T", _title(pane.title)], ["last-pane"],
                 ["select-layout", "tiled"]]
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
mode 2:  ./logs.py RUN_FOLDER [RUN_FOLDER ...] | sh      (e.g. ./logs.py runs/sweep/* | sh)
  one pane per run folder following its newest logs/*.log like tail -F (a .log file may be
  given instead of a folder); folders without logs are reported and skipped, other files a
  glob matches (run.sh, sweep.json) open no pane.

Pane titles are run names (the tsp label run.sh gives each job, or the run folder). When a
job or run ends, its pane stays open with the last lines and '[RUN ended: exit status S]'
(close it with tmux kill-pane, prefix x).

./logs.py --follow RUN_FOLDER  is what a mode-2 pane runs: the last lines of the newest log,
then what is appended, until provenance.json says the run ended (exit 0 ok, 1 failed).
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
    p.add_argument("--follow", default=None, metavar="RUN_FOLDER",
                   help="follow one run folder's newest log until the run ends (what a mode-2 "
                        "pane runs); prints its exit status last")
    p.add_argument("-L", "--tmux-socket", default=None, metavar="NAME",
                   help="tmux server socket name (tmux -L NAME); default: your tmux server")
    return p


def _error(msg: str) -> None:
    print(f"{_PROG}: {msg}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``logs.py``; returns the exit code (see ``--help``)."""
    args = build_parser().parse_args(argv)
    if args.follow is not None:
        if not Path(args.follow).exists():
            _error(f"{args.follow}: no such run folder or log file")
            return 2
        try:
            return follow(args.follow)
        except KeyboardInterrupt:
            return 130
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


if __name__ == "__main__":
    sys.exit(main())
