"""``allocate.py [options] NUM_GPUS CMD [ARGS...]``: wait for GPUs, then run CMD on them.

Meant for queued jobs (``tsp ./allocate.py 1 ./main.py all -c run.gin``): the job waits until
NUM_GPUS GPUs are usable, runs CMD with ``CUDA_VISIBLE_DEVICES`` set, and exits with CMD's code.

Policy (index order is NVML's, i.e. PCI bus order; ``CUDA_DEVICE_ORDER=PCI_BUS_ID`` is set):

- *same-user* GPUs: memory used below the threshold, this user has processes there and is
  the only user. If there are at least NUM_GPUS of them, the first NUM_GPUS are taken, so jobs
  pack onto GPUs the user already occupies;
- otherwise *free* GPUs: no processes, memory used below the threshold, not reserved by
  another allocator of this user; the first NUM_GPUS are taken;
- otherwise wait ``--poll`` seconds and query again (until ``--timeout``).

Concurrency: query + choice happen under an exclusive ``flock`` in the lock folder, and each
chosen GPU gets a reservation file (pid + expiry) there, so allocators started at the same
moment never pick the same free GPU before the first job shows in NVML. Reservations whose pid
is dead or whose expiry has passed are ignored (and removed); ours are removed when CMD ends.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import pwd
import re
import shlex
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from bootsep.jobs.gpus import (
    FAKE_GPUS_ENV,
    GpuQuery,
    GpuQueryError,
    GpuStatus,
    NoDriverError,
    NvmlBindingsMissing,
    make_gpu_query,
)
from bootsep.utils.errors import UserError

EXIT_USAGE = 2
EXIT_NO_DRIVER = 3
EXIT_TIMEOUT = 4

_PROG = "allocate"


class AllocationTimeout(Exception):
    """No suitable GPUs within the timeout. ``have``: usable GPUs at the last query."""

    def __init__(self, num_gpus: int, have: int, timeout: float) -> None:
        super().__init__(f"timed out after {timeout:g}s waiting for {num_gpus} free GPU(s) "
                         f"(have {have})")
        self.num_gpus, self.have, self.timeout = num_gpus, have, timeout


# --------------------------------------------------------------------------------------------
# Policy


@dataclass(frozen=True)
class Candidates:
    """GPU indices usable now, by tier, each in index order."""

    same_user: list[int]
    free: list[int]

    def choose(self, num_gpus: int) -> list[int] | None:
        """The first ``num_gpus`` same-user GPUs if there are enough, else the first free ones,
        else None."""
        if len(self.same_user) >= num_gpus:
            return self.same_user[:num_gpus]
        if len(self.free) >= num_gpus:
            return self.free[:num_gpus]
        return None

    @property
    def have(self) -> int:
        return max(len(self.same_user), len(self.free))


def find_candidates(gpus: Iterable[GpuStatus], user: str, mem_threshold: float = 0.9,
                    reserved: Iterable[int] = ()) -> Candidates:
    """Classify GPUs (see the module docstring).

    Args:
        gpus: current statuses.
        user: login name of the user allocating.
        mem_threshold: a GPU is usable only if ``memory_used_fraction < mem_threshold`` (0..1].
        reserved: indices reserved by live allocators of this user; never *free*.
    """
    reserved = set(reserved)
    same, free = [], []
    for g in sorted(gpus, key=lambda g: g.index):
        if g.memory_used_fraction >= mem_threshold:
            continue
        if g.users == {user}:
            same.append(g.index)
        elif not g.users and g.num_processes == 0 and g.index not in reserved:
            free.append(g.index)
    return Candidates(same_user=same, free=free)


def choose_gpus(gpus: Iterable[GpuStatus], num_gpus: int, user: str, mem_threshold: float = 0.9,
                reserved: Iterable[int] = ()) -> list[int] | None:
    """The GPU indices to use now, or None if fewer than ``num_gpus`` are usable."""
    return find_candidates(gpus, user, mem_threshold, reserved).choose(num_gpus)


def explain(gpus: Iterable[GpuStatus], user: str, mem_threshold: float = 0.9,
            reserved: Iterable[int] = ()) -> list[str]:
    """One line per GPU saying whether it is usable now and, if not, why (for ``--dry-run``)."""
    reserved = set(reserved)
    lines = []
    for g in sorted(gpus, key=lambda g: g.index):
        mem = f"{100 * g.memory_used_fraction:.0f}% memory used"
        others = sorted(g.users - {user})
        if g.memory_used_fraction >= mem_threshold:
            why = f"busy: {mem} (threshold {100 * mem_threshold:.0f}%)"
        elif others:
            why = (f"busy: used by {', '.join(others)} ({g.num_processes} process"
                   f"{'es' if g.num_processes != 1 else ''}, {mem})")
        elif g.users == {user}:
            why = f"usable: only your processes ({g.num_processes}, {mem})"
        elif g.num_processes:
            why = f"busy: {g.num_processes} process(es) of unknown owner ({mem})"
        elif g.index in reserved:
            why = "busy: reserved by another of your allocators (its job is starting)"
        else:
            why = f"free ({mem})"
        lines.append(f"GPU {g.index}: {why}")
    return lines


def current_user() -> str:
    """Login name of the real uid (numeric uid as text if it has no passwd entry)."""
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return str(os.getuid())


# --------------------------------------------------------------------------------------------
# Lock folder and reservations


def default_lock_dir() -> Path:
    """``/tmp/bootsep-gpu-locks-<uid>``: a fixed path, so every allocator of a user shares it
    whatever its environment (``$TMPDIR``/``$XDG_RUNTIME_DIR`` differ between shells, cron, tsp)."""
    return Path("/tmp") / f"bootsep-gpu-locks-{os.getuid()}"


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class GpuLocks:
    """The lock folder: an exclusive ``flock`` plus per-GPU reservation files.

    Files: ``lock`` (flocked), ``gpu<INDEX>.pid<PID>.json`` = ``{"gpu", "pid", "expires"}``
    (``expires`` in Unix seconds). Use :meth:`locked` around query + choice + :meth:`reserve`.
    """

    def __init__(self, lock_dir: str | os.PathLike | None = None) -> None:
        self.dir = Path(lock_dir) if lock_dir is not None else default_lock_dir()

    def _ensure_dir(self) -> None:
        try:
            self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            st = os.lstat(self.dir)
        except OSError as e:
            raise UserError(f"lock folder {self.dir}: {e.strerror}; pass --lock-dir") from e
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
            raise UserError(f"lock folder {self.dir} is not a folder owned by uid {os.getuid()}; "
                            "pass --lock-dir")

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the exclusive lock (blocks until free). Works between processes and threads."""
        import fcntl

        self._ensure_dir()
        fd = os.open(self.dir / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the flock

    def reserved(self, now: float | None = None) -> set[int]:
        """GPU indices with a live reservation; removes dead or expired ones. Call locked."""
        now = time.time() if now is None else now
        live = set()
        for path in self.dir.glob("gpu*.pid*.json"):
            try:
                info = json.loads(path.read_text())
                gpu, pid, expires = int(info["gpu"]), int(info["pid"]), float(info["expires"])
            except (OSError, ValueError, KeyError, TypeError):
                gpu, pid, expires = -1, -1, 0.0  # unreadable: treat as stale
            if expires > now and _pid_alive(pid):
                live.add(gpu)
            else:
                with contextlib.suppress(OSError):
                    path.unlink()
        return live

    def _path(self, gpu: int, pid: int) -> Path:
        return self.dir / f"gpu{gpu}.pid{pid}.json"

    def reserve(self, gpus: Iterable[int], seconds: float, pid: int | None = None) -> None:
        """Reserve ``gpus`` for ``pid`` (default: this process) for ``seconds``. Call locked."""
        from bootsep.utils.io import atomic_write_json

        pid = os.getpid() if pid is None else pid
        expires = time.time() + seconds
        for gpu in gpus:
            atomic_write_json(self._path(gpu, pid), {"gpu": gpu, "pid": pid, "expires": expires})

    def release(self, gpus: Iterable[int], pid: int | None = None) -> None:
        """Drop the reservations of ``pid`` (default: this process) on ``gpus``."""
        pid = os.getpid() if pid is None else pid
        for gpu in gpus:
            with contextlib.suppress(OSError):
                self._path(gpu, pid).unlink()


# --------------------------------------------------------------------------------------------
# Waiting


def _stderr(msg: str) -> None:
    print(f"{_PROG}: {msg}", file=sys.stderr, flush=True)


def wait_for_gpus(query: GpuQuery, num_gpus: int, *, user: str | None = None,
                  mem_threshold: float = 0.9, poll: float = 30.0, timeout: float | None = None,
                  lock_dir: str | os.PathLike | None = None, reservation_seconds: float = 120.0,
                  reserve: bool = True, log: Callable[[str], None] = _stderr,
                  sleep: Callable[[float], None] = time.sleep,
                  clock: Callable[[], float] = time.monotonic) -> list[int]:
    """Query until ``num_gpus`` GPUs are usable; reserve and return their indices.

    Args:
        query: GPU source (NVML or fake).
        num_gpus: how many GPUs (>= 1).
        user: allocating user (default: the current login name).
        mem_threshold: usable only below this used-memory fraction (0..1], default 0.9.
        poll: seconds between queries (default 30); no sleep after a successful query.
        timeout: seconds to wait at most (default None: forever).
        lock_dir: lock/reservation folder (default :func:`default_lock_dir`).
        reservation_seconds: lifetime of the reservation files (default 120 s).
        reserve: write reservation files (False for a dry run).
        log: receives the waiting messages.

    Raises:
        NoDriverError: NVML cannot start. AllocationTimeout: ``timeout`` passed.
        UserError: ``num_gpus`` exceeds the number of GPUs on the machine.
    """
    user = current_user() if user is None else user
    locks = GpuLocks(lock_dir)
    start = clock()
    have = 0
    while True:
        with locks.locked():
            try:
                gpus = query.list_gpus()
            except GpuQueryError as e:
                gpus = None
                log(f"{e}; retrying")
            if gpus is not None:
                if num_gpus > len(gpus):
                    raise UserError(f"asked for {num_gpus} GPU(s) but this machine has "
                                    f"{len(gpus)}")
                cands = find_candidates(gpus, user, mem_threshold, locks.reserved())
                chosen = cands.choose(num_gpus)
                have = cands.have
                if chosen is not None:
                    if reserve:
                        locks.reserve(chosen, reservation_seconds)
                    return chosen
        waited = clock() - start
        if timeout is not None and waited >= timeout:
            raise AllocationTimeout(num_gpus, have, timeout)
        delay = poll if timeout is None else max(0.0, min(poll, timeout - waited))
        log(f"Waiting for {num_gpus} free GPU(s) (have {have}); checking again in {delay:g}s")
        sleep(delay)


def dry_run(query: GpuQuery, num_gpus: int, cmd: Sequence[str], *, mem_threshold: float = 0.9,
            locks: GpuLocks | None = None, allow_cpu: bool = False,
            user: str | None = None) -> int:
    """``--dry-run``: query once, never wait or reserve. Prints ``CUDA_VISIBLE_DEVICES=... CMD``
    and returns 0 if ``num_gpus`` GPUs are usable now; otherwise prints why per GPU and returns
    :data:`EXIT_TIMEOUT` (4). Without a driver: 3 (0 with ``allow_cpu``, running on the CPU)."""
    user = current_user() if user is None else user
    locks = locks or GpuLocks()
    try:
        with locks.locked():
            gpus = query.list_gpus()
            reserved = locks.reserved()
    except NoDriverError as e:
        if not allow_cpu:
            _stderr(f"no NVIDIA driver found (NVML: {e}); use --allow-cpu to run on the CPU")
            return EXIT_NO_DRIVER
        print(f"CUDA_VISIBLE_DEVICES= {shlex.join(cmd)}".rstrip(), flush=True)
        return 0
    except GpuQueryError as e:
        _stderr(f"cannot query the GPUs now: {e}")
        return EXIT_TIMEOUT
    if num_gpus > len(gpus):
        _stderr(f"asked for {num_gpus} GPU(s) but this machine has {len(gpus)}")
        return EXIT_USAGE
    cands = find_candidates(gpus, user, mem_threshold, reserved)
    chosen = cands.choose(num_gpus)
    if chosen is not None:
        visible = ",".join(str(i) for i in chosen)
        print(f"CUDA_VISIBLE_DEVICES={visible} {shlex.join(cmd)}".rstrip(), flush=True)
        return 0
    lines = explain(gpus, user, mem_threshold, reserved)
    print(f"none free: {num_gpus} GPU(s) needed, {cands.have} usable now; allocate would wait. "
          "Per GPU:",
          *("  " + ln for ln in lines), sep="\n", flush=True)
    return EXIT_TIMEOUT


# --------------------------------------------------------------------------------------------
# Running the command


def normalize_command(cmd: Sequence[str]) -> list[str]:
    """Drop a leading ``--``; a single argument with whitespace runs through ``sh -c``."""
    cmd = list(cmd)
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    if len(cmd) == 1 and re.search(r"\s", cmd[0]):
        return ["sh", "-c", cmd[0]]
    return cmd


def _in_terminal_foreground() -> bool:
    """True if this process is in its terminal's foreground group: a terminal SIGINT (^C) then
    reaches the child directly, so forwarding it would deliver it twice."""
    for stream in (sys.stdin, sys.stderr, sys.stdout):
        try:
            fd = stream.fileno()
            if os.isatty(fd):
                return os.tcgetpgrp(fd) == os.getpgrp()
        except (OSError, ValueError, AttributeError):
            continue
    return False


def run_command(cmd: Sequence[str], env: dict[str, str]) -> int:
    """Run ``cmd`` (no shell) with ``env``; forward SIGINT/SIGTERM to it; return its exit code
    (a death by signal N gives 128 + N; command not found 127, not executable 126)."""
    state: dict[str, object] = {"proc": None, "pending": []}

    def forward(signum, _frame) -> None:
        if signum == signal.SIGINT and _in_terminal_foreground():
            return  # the terminal already sent ^C to the child's (= our) process group
        proc = state["proc"]
        if proc is None:
            state["pending"].append(signum)
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signum)

    handled = (signal.SIGINT, signal.SIGTERM)
    in_main = threading.current_thread() is threading.main_thread()
    old = {s: signal.signal(s, forward) for s in handled} if in_main else {}
    try:
        try:
            proc = subprocess.Popen(list(cmd), env=env)
        except FileNotFoundError:
            _stderr(f"command not found: {cmd[0]}")
            return 127
        except PermissionError:
            _stderr(f"command not executable: {cmd[0]}")
            return 126
        state["proc"] = proc
        for signum in state["pending"]:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signum)
        rc = proc.wait()
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
    return 128 - rc if rc < 0 else rc


# --------------------------------------------------------------------------------------------
# Command line


def parse_fraction(text: str) -> float:
    """``0.9``, ``90`` or ``90%`` -> 0.9. Values above 1 (or with ``%``) are percentages."""
    t = text.strip()
    try:
        value = float(t.rstrip("%"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a fraction or percentage: {text!r}") from None
    if t.endswith("%") or value > 1:
        value /= 100.0
    if not (0.0 < value <= 1.0) or math.isnan(value):
        raise argparse.ArgumentTypeError(f"must be in (0, 1] or (0%, 100%]: {text!r}")
    return value


def parse_seconds(text: str) -> float:
    """``30``, ``30s``, ``5m``, ``2h`` -> seconds (>= 0)."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([smh]?)\s*", text)
    if not m:
        raise argparse.ArgumentTypeError(f"not a duration (e.g. 30, 30s, 5m, 2h): {text!r}")
    return float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[m.group(2)]


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"NUM_GPUS must be an integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"NUM_GPUS must be >= 0, got {value}")
    return value


_EPILOG = f"""\
policy:
  Same-user GPUs (used memory below the threshold, you have processes there and nobody else
  does) are preferred, so jobs pack onto GPUs you already use; otherwise completely free
  GPUs (no processes, memory below the threshold, not reserved by another of your
  allocators). The first NUM_GPUS in index order (PCI bus order) are taken. CMD runs with
  CUDA_VISIBLE_DEVICES=<i,j,...> and CUDA_DEVICE_ORDER=PCI_BUS_ID. NUM_GPUS=0 runs CMD at
  once with CUDA_VISIBLE_DEVICES="". A single CMD argument containing spaces runs via sh -c.
  SIGINT/SIGTERM sent to allocate are forwarded to CMD.

exit codes:
  CMD's exit code (128+N if CMD died of signal N; 127 not found, 126 not executable)
  0    --dry-run: the GPUs are usable now (printed as CUDA_VISIBLE_DEVICES=... CMD)
  2    usage error (bad option, NUM_GPUS larger than the number of GPUs)
  3    no NVIDIA driver / NVML unavailable, and no --allow-cpu
  4    --timeout passed before enough GPUs were usable; or --dry-run: not enough GPUs are
       usable now (it prints why for each GPU, without waiting)

environment:
  {FAKE_GPUS_ENV}  JSON list of fake GPUs for tests (see bootsep.jobs.gpus), replaces NVML

examples:
  tsp -S 4; tsp ./allocate.py 1 ./main.py all -c runs/run0/config.gin
  ./allocate.py --timeout 2h --mem-threshold 80% 2 'python train.py --big > out.txt'
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="allocate.py", usage="%(prog)s [options] NUM_GPUS CMD [ARGS...]",
        description="Wait until NUM_GPUS GPUs are usable, then run CMD on them "
                    "(CUDA_VISIBLE_DEVICES) and exit with its exit code.",
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("num_gpus", type=_non_negative_int, metavar="NUM_GPUS",
                   help="number of GPUs CMD needs (0: run on the CPU at once)")
    p.add_argument("cmd", nargs=argparse.REMAINDER, metavar="CMD [ARGS...]",
                   help="the command to run (options for allocate go before NUM_GPUS)")
    p.add_argument("--mem-threshold", type=parse_fraction, default=0.9, metavar="F",
                   help="a GPU is usable only if its used memory is below F; a fraction (0.9) or "
                        "a percentage (90 or 90%%); default 0.9")
    p.add_argument("--poll", type=parse_seconds, default=30.0, metavar="SECONDS",
                   help="seconds between GPU queries while waiting (30, 30s, 5m); default 30")
    p.add_argument("--timeout", type=parse_seconds, default=None, metavar="SECONDS",
                   help="give up after this long (exit 4); default: wait forever")
    p.add_argument("--dry-run", action="store_true",
                   help="answer at once: print CUDA_VISIBLE_DEVICES=... and the command if the "
                        "GPUs are usable now, else why not per GPU (exit 4); never waits, runs "
                        "or reserves anything; CMD is optional")
    p.add_argument("--allow-cpu", action="store_true",
                   help='without an NVIDIA driver, run CMD on the CPU (CUDA_VISIBLE_DEVICES="") '
                        "instead of exiting 3")
    p.add_argument("--lock-dir", type=Path, default=None, metavar="DIR",
                   help="folder for the allocation lock and GPU reservations shared by your "
                        "allocators; default /tmp/bootsep-gpu-locks-<uid>")
    p.add_argument("--reservation-seconds", type=parse_seconds, default=120.0, metavar="SECONDS",
                   help="how long a chosen GPU stays reserved for the new job before its process "
                        "must show in NVML (released when CMD exits); default 120")
    p.add_argument("--fake-gpus", default=None, help=argparse.SUPPRESS)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``allocate.py``; returns the exit code (see ``--help``)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    cmd = normalize_command(args.cmd)
    if not cmd and not args.dry_run:
        parser.error("missing CMD to run")
    try:
        query = make_gpu_query(args.fake_gpus)
    except ValueError as e:
        parser.error(str(e))

    chosen: list[int] = []
    locks = GpuLocks(args.lock_dir)
    if args.dry_run and args.num_gpus > 0:
        return dry_run(query, args.num_gpus, cmd, mem_threshold=args.mem_threshold,
                       locks=locks, allow_cpu=args.allow_cpu)
    if args.num_gpus > 0:
        try:
            chosen = wait_for_gpus(
                query, args.num_gpus, mem_threshold=args.mem_threshold, poll=args.poll,
                timeout=args.timeout, lock_dir=locks.dir,
                reservation_seconds=args.reservation_seconds, reserve=not args.dry_run)
        except NoDriverError as e:
            what = ("cannot query GPUs" if isinstance(e, NvmlBindingsMissing)
                    else "no NVIDIA driver found")
            if not args.allow_cpu:
                _stderr(f"{what} (NVML: {e}); use --allow-cpu to run on the CPU")
                return EXIT_NO_DRIVER
            _stderr(f"{what} (NVML: {e}); running on the CPU (--allow-cpu)")
        except AllocationTimeout as e:
            _stderr(f"{e}; giving up (exit {EXIT_TIMEOUT})")
            return EXIT_TIMEOUT
        except UserError as e:
            _stderr(str(e))
            return EXIT_USAGE
        except KeyboardInterrupt:
            _stderr("interrupted while waiting for GPUs")
            return 128 + signal.SIGINT

    visible = ",".join(str(i) for i in chosen)
    if args.dry_run:
        print(f"CUDA_VISIBLE_DEVICES={shlex.quote(visible) if visible else ''} {shlex.join(cmd)}"
              .rstrip(), flush=True)
        return 0
    env = dict(os.environ, CUDA_VISIBLE_DEVICES=visible, CUDA_DEVICE_ORDER="PCI_BUS_ID")
    try:
        return run_command(cmd, env)
    finally:
        locks.release(chosen)
