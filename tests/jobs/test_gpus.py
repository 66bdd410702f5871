"""GPU query interface: fake specs, NVML code path against a stand-in pynvml module."""

import json
import os
import pwd
import subprocess
import sys
import types

import pytest

from bootsep.jobs.gpus import (
    UNKNOWN_USER,
    FakeGpuQuery,
    GpuQueryError,
    GpuStatus,
    NoDriverError,
    NvmlBindingsMissing,
    NvmlGpuQuery,
    fake_gpu_query,
    make_gpu_query,
    username_of_pid,
)


def test_gpu_status_users_are_a_frozenset():
    g = GpuStatus(1, 0.5, {"a", "b"}, 2)
    assert g.users == {"a", "b"} and isinstance(g.users, frozenset)
    assert GpuStatus(0).users == frozenset() and GpuStatus(0).num_processes == 0


def test_fake_query_replays_states_then_repeats_last():
    s0 = [GpuStatus(1, 0.1), GpuStatus(0, 0.2)]
    s1 = [GpuStatus(0, 0.9)]
    q = FakeGpuQuery([s0, s1])
    assert [g.index for g in q.list_gpus()] == [0, 1]  # sorted by index
    assert q.list_gpus() == [GpuStatus(0, 0.9)]
    assert q.list_gpus() == [GpuStatus(0, 0.9)]
    assert q.calls == 3


def test_fake_query_no_driver():
    with pytest.raises(NoDriverError, match="gone"):
        FakeGpuQuery(no_driver="gone").list_gpus()


def test_inline_spec_defaults_and_fields():
    q = fake_gpu_query('[{"memory": 0.25, "users": ["alice"]}, {"index": 5, "processes": 3}]')
    assert q.list_gpus() == [
        GpuStatus(0, 0.25, frozenset({"alice"}), 1),
        GpuStatus(5, 0.0, frozenset(), 3),
    ]


def test_states_spec_and_no_driver_spec():
    q = fake_gpu_query(json.dumps({"states": [[{"users": ["b"]}], [{}]]}))
    assert q.list_gpus()[0].users == {"b"}
    assert q.list_gpus()[0].users == set()
    with pytest.raises(NoDriverError, match="no lib"):
        fake_gpu_query('{"no_driver": "no lib"}').list_gpus()


def test_file_spec_is_reread_at_every_query(tmp_path):
    f = tmp_path / "gpus.json"
    f.write_text('[{"users": ["bob"]}]')
    q = fake_gpu_query(f"@{f}")
    assert q.list_gpus()[0].users == {"bob"}
    f.write_text("[{}]")
    assert q.list_gpus()[0].users == set()
    # a states sequence in a file advances with the calls, as inline
    f.write_text(json.dumps({"states": [[{"memory": 0.1}], [{"memory": 0.2}], [{"memory": 0.3}]]}))
    assert q.list_gpus()[0].memory_used_fraction == 0.3  # third call -> third state


@pytest.mark.parametrize("spec", ["not json", '{"foo": 1}', '[{"mem": 0.1}]', "[3]"])
def test_malformed_specs_raise_value_error(spec):
    with pytest.raises(ValueError):
        fake_gpu_query(spec).list_gpus()


def test_make_gpu_query_prefers_argument_then_env(monkeypatch):
    monkeypatch.delenv("BOOTSEP_FAKE_GPUS", raising=False)
    assert isinstance(make_gpu_query(), NvmlGpuQuery)
    monkeypatch.setenv("BOOTSEP_FAKE_GPUS", '[{}, {}]')
    assert len(make_gpu_query().list_gpus()) == 2
    assert len(make_gpu_query("[{}]").list_gpus()) == 1


def test_username_of_pid():
    me = pwd.getpwuid(os.getuid()).pw_name
    assert username_of_pid(os.getpid()) == me
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()  # reaped: the pid no longer exists
    assert username_of_pid(p.pid) == UNKNOWN_USER


# --------------------------------------------------------------------------------------------
# NVML path with a stand-in pynvml module


class _NVMLError(Exception):
    pass


class _NotSupported(_NVMLError):
    pass


def _fake_pynvml(devices, init_error=None, query_error=False):
    """A module with the pynvml names NvmlGpuQuery uses. devices: list of
    (used, total, compute_pids, graphics_pids or None for NotSupported)."""
    m = types.ModuleType("pynvml")
    m.NVMLError = _NVMLError
    m.NVMLError_NotSupported = _NotSupported
    m.shutdowns = 0

    def init():
        if init_error:
            raise _NVMLError(init_error)

    def shutdown():
        m.shutdowns += 1

    def count():
        if query_error:
            raise _NVMLError("GPU is lost")
        return len(devices)

    def procs(k):
        def get(handle):
            pids = devices[handle][k]
            if pids is None:
                raise _NotSupported("not supported")
            return [types.SimpleNamespace(pid=p, usedGpuMemory=1) for p in pids]
        return get

    m.nvmlInit, m.nvmlShutdown, m.nvmlDeviceGetCount = init, shutdown, count
    m.nvmlDeviceGetHandleByIndex = lambda i: i
    m.nvmlDeviceGetMemoryInfo = lambda h: types.SimpleNamespace(used=devices[h][0],
                                                                total=devices[h][1])
    m.nvmlDeviceGetComputeRunningProcesses = procs(2)
    m.nvmlDeviceGetGraphicsRunningProcesses = procs(3)
    return m


def test_nvml_query_reads_memory_processes_and_users(monkeypatch):
    me = pwd.getpwuid(os.getuid()).pw_name
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    mine = os.getpid()
    fake = _fake_pynvml([
        (0, 100, [], []),
        (50, 200, [mine], [mine]),          # same pid in both lists counts once
        (90, 100, [mine, dead.pid], None),  # graphics list not supported; unknown owner
    ])
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    gpus = NvmlGpuQuery().list_gpus()
    assert gpus == [
        GpuStatus(0, 0.0, frozenset(), 0),
        GpuStatus(1, 0.25, frozenset({me}), 1),
        GpuStatus(2, 0.9, frozenset({me, UNKNOWN_USER}), 2),
    ]
    assert fake.shutdowns == 1


def test_nvml_init_failure_is_no_driver(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml",
                        _fake_pynvml([], init_error="NVML Shared Library Not Found"))
    with pytest.raises(NoDriverError, match="Shared Library Not Found"):
        NvmlGpuQuery().list_gpus()


def test_nvml_query_failure_is_retryable_error(monkeypatch):
    fake = _fake_pynvml([], query_error=True)
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    with pytest.raises(GpuQueryError, match="GPU is lost"):
        NvmlGpuQuery().list_gpus()
    assert fake.shutdowns == 1


def test_missing_pynvml_is_a_no_driver_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # makes `import pynvml` fail
    with pytest.raises(NvmlBindingsMissing, match="nvidia-ml-py"):
        NvmlGpuQuery().list_gpus()
    assert issubclass(NvmlBindingsMissing, NoDriverError)
