"""Which GPUs exist, how full they are and who uses them: NVML behind a small interface.

``GpuQuery.list_gpus()`` returns one :class:`GpuStatus` per GPU, in NVML index order (which is
PCI bus order; the allocator sets ``CUDA_DEVICE_ORDER=PCI_BUS_ID`` so CUDA agrees).

- :class:`NvmlGpuQuery` asks the driver through ``pynvml`` (package ``nvidia-ml-py``), imported
  lazily; it raises :class:`NoDriverError` when NVML cannot start (no driver, no library).
- :class:`FakeGpuQuery` replays given states, for tests. :func:`make_gpu_query` builds one from a
  JSON spec (``--fake-gpus SPEC`` or the ``BOOTSEP_FAKE_GPUS`` environment variable), so that
  subprocess tests can drive the real command line. Spec forms:

  - ``[{"memory": 0.2, "users": ["alice"], "processes": 1}, {}]``: one state; each GPU object
    has optional ``index`` (default: its position), ``memory`` (used fraction 0..1, default 0),
    ``users`` (default none) and ``processes`` (default ``len(users)``);
  - ``{"states": [STATE, STATE, ...]}``: one state per query, the last one repeats;
  - ``{"no_driver": "reason"}``: every query raises :class:`NoDriverError`;
  - ``@/path/to/file.json``: any of the above, re-read from the file at every query.
"""

from __future__ import annotations

import json
import os
import pwd
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

#: Environment variable holding a fake-GPU spec (see module docstring).
FAKE_GPUS_ENV = "BOOTSEP_FAKE_GPUS"

#: User name reported for a GPU process whose owner cannot be found (e.g. a pid from another
#: container's pid namespace). It never equals a real user, so such a GPU counts as taken.
UNKNOWN_USER = "<unknown>"


class NoDriverError(RuntimeError):
    """NVML cannot be initialised: no NVIDIA driver, no NVML library, or no ``pynvml``."""


class NvmlBindingsMissing(NoDriverError):
    """The ``pynvml`` module (package ``nvidia-ml-py``) is not installed in this interpreter."""


class GpuQueryError(RuntimeError):
    """NVML started but a query failed (e.g. a GPU fell off the bus); worth retrying later."""


@dataclass(frozen=True)
class GpuStatus:
    """The state of one GPU at query time.

    Args:
        index: NVML device index (PCI bus order), as used in ``CUDA_VISIBLE_DEVICES``.
        memory_used_fraction: used / total device memory, in [0, 1].
        users: user names owning processes on the GPU (:data:`UNKNOWN_USER` if not resolvable).
        num_processes: number of distinct compute + graphics processes on the GPU.
    """

    index: int
    memory_used_fraction: float = 0.0
    users: frozenset[str] = field(default_factory=frozenset)
    num_processes: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "users", frozenset(self.users))


class GpuQuery(Protocol):
    """Anything that can list the machine's GPUs."""

    def list_gpus(self) -> list[GpuStatus]:
        """One status per GPU, sorted by index. Raises NoDriverError / GpuQueryError."""
        ...


def username_of_pid(pid: int) -> str:
    """Owner of process ``pid`` from ``/proc/<pid>`` (stdlib only, no psutil).

    Returns the login name, the numeric uid as text if it has no passwd entry, or
    :data:`UNKNOWN_USER` if the process is not visible (gone, or in another pid namespace).
    """
    try:
        uid = os.stat(f"/proc/{int(pid)}").st_uid
    except OSError:
        return UNKNOWN_USER
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


class NvmlGpuQuery:
    """Query GPUs through NVML (``pynvml`` from the ``nvidia-ml-py`` package).

    Each :meth:`list_gpus` call initialises NVML, reads every device and shuts NVML down, so a
    long-waiting allocator holds no driver handle between polls.
    """

    def list_gpus(self) -> list[GpuStatus]:
        try:
            import pynvml
        except ImportError as e:
            raise NvmlBindingsMissing(
                f"package nvidia-ml-py (module pynvml) is not installed for {sys.executable}"
            ) from e
        try:
            pynvml.nvmlInit()
        except pynvml.NVMLError as e:
            raise NoDriverError(str(e) or type(e).__name__) from e
        try:
            return [self._status(pynvml, i) for i in range(pynvml.nvmlDeviceGetCount())]
        except pynvml.NVMLError as e:
            raise GpuQueryError(f"NVML query failed: {e}") from e
        finally:
            try:
                pynvml.nvmlShutdown()
            except pynvml.NVMLError:
                pass

    @staticmethod
    def _status(pynvml, index: int) -> GpuStatus:
        handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        mem = pynvml.nvmlDeviceGetMemoryInfo(handle)
        fraction = float(mem.used) / float(mem.total) if mem.total else 1.0
        pids: set[int] = set()
        for getter in (pynvml.nvmlDeviceGetComputeRunningProcesses,
                       pynvml.nvmlDeviceGetGraphicsRunningProcesses):
            try:
                pids.update(int(p.pid) for p in getter(handle))
            except pynvml.NVMLError_NotSupported:
                continue
        users = frozenset(username_of_pid(pid) for pid in pids)
        return GpuStatus(index=index, memory_used_fraction=fraction, users=users,
                         num_processes=len(pids))


class FakeGpuQuery:
    """Replays GPU states, for tests: the i-th :meth:`list_gpus` call returns ``states[i]``
    (the last state repeats). ``no_driver`` (a reason) makes every call raise NoDriverError.

    Args:
        states: sequence of states, each a sequence of :class:`GpuStatus`; default one empty state.
        no_driver: if not None, the NoDriverError message.
    """

    def __init__(self, states: Sequence[Sequence[GpuStatus]] = ((),),
                 no_driver: str | None = None) -> None:
        self.states = [list(s) for s in states] or [[]]
        self.no_driver = no_driver
        self.calls = 0

    def list_gpus(self) -> list[GpuStatus]:
        self.calls += 1
        if self.no_driver is not None:
            raise NoDriverError(self.no_driver)
        state = self.states[min(self.calls - 1, len(self.states) - 1)]
        return sorted(state, key=lambda g: g.index)


class _FileFakeGpuQuery:
    """Re-reads a JSON fake spec from a file at every query (tests change the file)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.calls = 0

    def list_gpus(self) -> list[GpuStatus]:
        with open(self.path) as f:
            fake = _fake_from_json(json.load(f), where=self.path)
        fake.calls = self.calls  # keep the state sequence position across re-reads
        self.calls += 1
        return fake.list_gpus()


def _gpu_from_json(obj: dict, position: int, where: str) -> GpuStatus:
    if not isinstance(obj, dict):
        raise ValueError(f"fake GPU spec {where}: GPU #{position} must be an object, got {obj!r}")
    unknown = set(obj) - {"index", "memory", "users", "processes"}
    if unknown:
        raise ValueError(f"fake GPU spec {where}: unknown GPU keys {sorted(unknown)}; "
                         "allowed: index, memory, users, processes")
    users = frozenset(str(u) for u in obj.get("users", []))
    return GpuStatus(index=int(obj.get("index", position)),
                     memory_used_fraction=float(obj.get("memory", 0.0)),
                     users=users, num_processes=int(obj.get("processes", len(users))))


def _fake_from_json(spec, where: str) -> FakeGpuQuery:
    if isinstance(spec, dict) and "no_driver" in spec:
        return FakeGpuQuery(no_driver=str(spec["no_driver"]))
    if isinstance(spec, dict) and "states" in spec:
        states = spec["states"]
    elif isinstance(spec, list):
        states = [spec]
    else:
        raise ValueError(f"fake GPU spec {where}: expected a list of GPUs, "
                         '{"states": [...]} or {"no_driver": "..."}')
    return FakeGpuQuery([[_gpu_from_json(g, i, where) for i, g in enumerate(state)]
                         for state in states])


def fake_gpu_query(spec: str) -> GpuQuery:
    """Build a fake query from a spec string (JSON, or ``@file`` re-read at every query).

    Raises ValueError on a malformed spec.
    """
    spec = spec.strip()
    if spec.startswith("@"):
        return _FileFakeGpuQuery(spec[1:])
    try:
        parsed = json.loads(spec)
    except json.JSONDecodeError as e:
        raise ValueError(f"fake GPU spec is not valid JSON ({e}): {spec!r}") from e
    return _fake_from_json(parsed, where="(inline)")


def make_gpu_query(fake_spec: str | None = None) -> GpuQuery:
    """The query to use: a fake from ``fake_spec`` or ``$BOOTSEP_FAKE_GPUS``, else NVML."""
    spec = fake_spec if fake_spec is not None else os.environ.get(FAKE_GPUS_ENV)
    if spec:
        return fake_gpu_query(spec)
    return NvmlGpuQuery()
