"""allocate.py: policy, waiting, timeout, exit codes, no driver, dry run, concurrency."""

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from bootsep.jobs.allocate import (
    AllocationTimeout,
    GpuLocks,
    choose_gpus,
    current_user,
    find_candidates,
    main,
    normalize_command,
    parse_fraction,
    parse_seconds,
    wait_for_gpus,
)
from bootsep.jobs.gpus import FakeGpuQuery, GpuStatus, NoDriverError
from bootsep.utils.errors import UserError

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "allocate.py"


def G(index, memory=0.0, users=(), processes=None):
    users = frozenset(users)
    return GpuStatus(index, memory, users, len(users) if processes is None else processes)


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


# --------------------------------------------------------------------------------------------
# Policy


def test_same_user_gpus_are_preferred_over_free_ones():
    gpus = [G(0), G(1, 0.5, ["alice"]), G(2)]
    assert choose_gpus(gpus, 1, "alice") == [1]
    assert choose_gpus(gpus, 1, "bob") == [0]  # bob has no GPU of his own: first free one


def test_memory_threshold():
    gpus = [G(0), G(1, 0.95, ["alice"])]
    assert choose_gpus(gpus, 1, "alice") == [0]  # GPU 1 is too full: fall back to free GPU 0
    assert choose_gpus(gpus, 1, "alice", mem_threshold=0.96) == [1]
    # a GPU without processes but with memory in use (e.g. invisible container) is not free
    assert choose_gpus([G(0, 0.93, processes=0)], 1, "alice") is None
    assert choose_gpus([G(0, 0.93, processes=0)], 1, "alice", mem_threshold=0.95) == [0]


def test_gpus_of_other_users_are_never_taken():
    gpus = [G(0, 0.1, ["alice", "bob"]), G(1, 0.1, ["bob"]), G(2, 0.1, ["<unknown>"]), G(3)]
    assert choose_gpus(gpus, 1, "alice") == [3]
    assert choose_gpus(gpus, 2, "alice") is None
    # processes without a resolvable owner block the GPU too
    assert choose_gpus([G(0, 0.0, [], processes=2)], 1, "alice") is None


def test_index_order_and_count():
    gpus = [G(3), G(1), G(2), G(0, 0.2, ["bob"])]
    assert choose_gpus(gpus, 2, "alice") == [1, 2]
    assert choose_gpus(gpus, 3, "alice") == [1, 2, 3]
    assert choose_gpus(gpus, 4, "alice") is None
    assert find_candidates(gpus, "alice").have == 3


def test_not_enough_same_user_gpus_falls_back_to_free_ones():
    gpus = [G(0, 0.3, ["alice"]), G(1), G(2)]
    assert choose_gpus(gpus, 1, "alice") == [0]
    assert choose_gpus(gpus, 2, "alice") == [1, 2]  # the reference would wait here
    assert choose_gpus([G(0, 0.3, ["alice"]), G(1, 0.3, ["alice"]), G(2)], 2, "alice") == [0, 1]


def test_reserved_gpus_are_not_free_but_can_still_be_shared_by_the_same_user():
    gpus = [G(0), G(1), G(2, 0.1, ["alice"])]
    assert choose_gpus(gpus[:2], 1, "alice", reserved={0}) == [1]
    assert choose_gpus(gpus[:2], 2, "alice", reserved={0}) is None
    assert choose_gpus(gpus, 1, "alice", reserved={2}) == [2]


def test_policy_invariants_on_random_states():
    rng = random.Random(0)
    for _ in range(300):
        gpus = []
        for i in rng.sample(range(8), rng.randint(1, 8)):
            users = rng.choice([[], [], ["me"], ["me", "x"], ["x"]])
            gpus.append(G(i, rng.choice([0.0, 0.5, 0.89, 0.9, 0.99]), users))
        n = rng.randint(1, 4)
        reserved = set(rng.sample(range(8), rng.randint(0, 2)))
        chosen = choose_gpus(gpus, n, "me", 0.9, reserved)
        by = {g.index: g for g in gpus}
        same = sorted(i for i, g in by.items() if g.memory_used_fraction < 0.9 and g.users == {"me"})
        free = sorted(i for i, g in by.items() if g.memory_used_fraction < 0.9 and not g.users
                      and i not in reserved)
        if len(same) >= n:
            assert chosen == same[:n]
        elif len(free) >= n:
            assert chosen == free[:n]
        else:
            assert chosen is None
        if chosen:
            assert all(by[i].users <= {"me"} for i in chosen)


# --------------------------------------------------------------------------------------------
# Lock folder / reservations


def test_reservations_expire_and_die_with_their_pid(tmp_path):
    locks = GpuLocks(tmp_path)
    with locks.locked():
        locks.reserve([0, 1], seconds=60)                 # live (this pid)
        locks.reserve([2], seconds=60, pid=_dead_pid())   # dead pid
        locks.reserve([3], seconds=-1)                    # expired
        (tmp_path / "gpu4.pid1.json").write_text("garbage")
        assert locks.reserved() == {0, 1}
    assert sorted(p.name for p in tmp_path.glob("gpu*.json")) == [
        f"gpu0.pid{os.getpid()}.json", f"gpu1.pid{os.getpid()}.json"]
    locks.release([0, 1])
    assert not list(tmp_path.glob("gpu*.json"))


def test_threads_allocating_at_once_never_share_a_free_gpu(tmp_path):
    query = FakeGpuQuery([[G(i) for i in range(8)]])
    results, errors = [], []
    barrier = threading.Barrier(8)

    def worker():
        barrier.wait()
        try:
            results.append(wait_for_gpus(query, 1, user="me", lock_dir=tmp_path, timeout=0,
                                         log=lambda m: None)[0])
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(results) == list(range(8))
    with pytest.raises(AllocationTimeout):  # all 8 reserved now
        wait_for_gpus(query, 1, user="me", lock_dir=tmp_path, timeout=0, log=lambda m: None)


# --------------------------------------------------------------------------------------------
# Waiting


def test_waits_then_succeeds_without_a_needless_sleep(tmp_path):
    busy = [G(0, 0.5, ["bob"]), G(1, 0.5, ["bob"])]
    query = FakeGpuQuery([busy, busy, [G(0, 0.5, ["bob"]), G(1)]])
    logs, sleeps = [], []
    chosen = wait_for_gpus(query, 1, user="me", poll=7.0, lock_dir=tmp_path, log=logs.append,
                           sleep=sleeps.append)
    assert chosen == [1] and query.calls == 3
    assert sleeps == [7.0, 7.0]  # two failed queries, no sleep after the successful one
    assert logs == ["Waiting for 1 free GPU(s) (have 0); checking again in 7s"] * 2
    assert (tmp_path / f"gpu1.pid{os.getpid()}.json").exists()


def test_timeout_sleeps_only_until_the_deadline(tmp_path):
    now = [0.0]
    sleeps = []

    def sleep(s):
        sleeps.append(s)
        now[0] += s

    query = FakeGpuQuery([[G(0, 0.1, ["bob"]), G(1)]])
    with pytest.raises(AllocationTimeout, match="2 free GPU.*have 1"):
        wait_for_gpus(query, 2, user="me", poll=30, timeout=45, lock_dir=tmp_path,
                      log=lambda m: None, sleep=sleep, clock=lambda: now[0])
    assert sleeps == [30, 15] and query.calls == 3


def test_more_gpus_than_the_machine_has_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="3 GPU.*has 2"):
        wait_for_gpus(FakeGpuQuery([[G(0), G(1)]]), 3, user="me", lock_dir=tmp_path)


def test_no_driver_propagates(tmp_path):
    with pytest.raises(NoDriverError):
        wait_for_gpus(FakeGpuQuery(no_driver="x"), 1, user="me", lock_dir=tmp_path)


# --------------------------------------------------------------------------------------------
# main(): exit codes, no driver, dry run


def _main(tmp_path, *args, fake="[{}]"):
    return main(["--fake-gpus", fake, "--lock-dir", str(tmp_path / "locks"), *args])


@pytest.mark.parametrize("cmd, code", [
    (["true"], 0),
    (["false"], 1),
    (["exit 7"], 7),                         # one string with spaces: sh -c
    (["sh", "-c", "exit 9"], 9),
    (["sh", "-c", "kill -TERM $$"], 128 + signal.SIGTERM),
    (["/nonexistent/bootsep-cmd"], 127),
])
def test_child_exit_code_is_propagated(tmp_path, cmd, code):
    assert _main(tmp_path, "1", *cmd) == code
    assert not list((tmp_path / "locks").glob("gpu*.json"))  # reservation released


def test_environment_of_the_child(tmp_path):
    out = tmp_path / "env.txt"
    fake = json.dumps([{"users": ["bob"]}, {}, {}])
    rc = _main(tmp_path, "2", "sh", "-c", f'echo "$CUDA_VISIBLE_DEVICES $CUDA_DEVICE_ORDER" > {out}',
               fake=fake)
    assert rc == 0 and out.read_text().split() == ["1,2", "PCI_BUS_ID"]


def test_main_waits_then_runs(tmp_path, capsys):
    out = tmp_path / "dev.txt"
    fake = json.dumps({"states": [[{"users": ["bob"]}], [{"users": ["bob"]}], [{}]]})
    rc = _main(tmp_path, "--poll", "0.01", "1", "sh", "-c", f"echo $CUDA_VISIBLE_DEVICES > {out}",
               fake=fake)
    assert rc == 0 and out.read_text().strip() == "0"
    err = capsys.readouterr().err
    assert err.count("Waiting for 1 free GPU(s) (have 0); checking again in 0.01s") == 2


def test_main_timeout_exits_4(tmp_path, capsys):
    marker = tmp_path / "ran"
    t0 = time.monotonic()
    rc = _main(tmp_path, "--poll", "0.02", "--timeout", "0.15", "1", "touch", str(marker),
               fake='[{"users": ["bob"]}]')
    assert rc == 4 and not marker.exists()
    assert time.monotonic() - t0 < 5
    assert "timed out after 0.15s waiting for 1 free GPU(s)" in capsys.readouterr().err


def test_no_driver_exits_3_with_one_line(tmp_path, capsys):
    marker = tmp_path / "ran"
    rc = _main(tmp_path, "1", "touch", str(marker), fake='{"no_driver": "Driver Not Loaded"}')
    assert rc == 3 and not marker.exists()
    err = capsys.readouterr().err
    assert err == ("allocate: no NVIDIA driver found (NVML: Driver Not Loaded); "
                   "use --allow-cpu to run on the CPU\n")


def test_allow_cpu_runs_with_no_visible_devices(tmp_path):
    out = tmp_path / "dev.txt"
    rc = _main(tmp_path, "--allow-cpu", "1", "sh", "-c", f'echo "[$CUDA_VISIBLE_DEVICES]" > {out}',
               fake='{"no_driver": "x"}')
    assert rc == 0 and out.read_text().strip() == "[]"
    assert _main(tmp_path, "--allow-cpu", "1", "false", fake='{"no_driver": "x"}') == 1


def test_zero_gpus_runs_on_cpu_without_querying(tmp_path):
    out = tmp_path / "dev.txt"
    rc = _main(tmp_path, "0", "sh", "-c", f'echo "[$CUDA_VISIBLE_DEVICES]" > {out}',
               fake='{"no_driver": "x"}')
    assert rc == 0 and out.read_text().strip() == "[]"


def test_dry_run_prints_and_runs_nothing(tmp_path, capsys):
    marker = tmp_path / "ran"
    rc = _main(tmp_path, "--dry-run", "2", "touch", str(marker), "a b",
               fake='[{"users": ["bob"]}, {}, {}]')
    assert rc == 0 and not marker.exists()
    assert capsys.readouterr().out == f"CUDA_VISIBLE_DEVICES=1,2 touch {marker} 'a b'\n"
    assert not list((tmp_path / "locks").glob("gpu*.json"))  # a dry run reserves nothing


def test_usage_errors_exit_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        _main(tmp_path, "1")
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        _main(tmp_path, "-1", "true")
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        _main(tmp_path, "1", "true", fake="not json")
    assert e.value.code == 2
    assert _main(tmp_path, "3", "true", fake="[{}, {}]") == 2
    assert "asked for 3 GPU(s) but this machine has 2" in capsys.readouterr().err


def test_help_documents_options_and_exit_codes(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    for word in ["--mem-threshold", "--poll", "--timeout", "--dry-run", "--allow-cpu",
                 "--lock-dir", "--reservation-seconds", "exit codes", "no NVIDIA driver"]:
        assert word in text
    assert "--fake-gpus" not in text


def test_parsers():
    assert parse_fraction("0.9") == 0.9 and parse_fraction("90") == 0.9
    assert parse_fraction("85%") == pytest.approx(0.85) and parse_fraction("1") == 1.0
    assert parse_seconds("30") == 30 and parse_seconds("1.5m") == 90 and parse_seconds("2h") == 7200
    for bad in ["0", "-5", "200%", "x"]:
        with pytest.raises(argparse.ArgumentTypeError):
            parse_fraction(bad)
    with pytest.raises(argparse.ArgumentTypeError):
        parse_seconds("-1")
    assert normalize_command(["--", "echo", "a b"]) == ["echo", "a b"]
    assert normalize_command(["echo a"]) == ["sh", "-c", "echo a"]
    assert normalize_command(["true"]) == ["true"]


# --------------------------------------------------------------------------------------------
# Subprocesses: concurrency and signals through the real script


_HOLD = (  # records $CUDA_VISIBLE_DEVICES, then holds the GPU until the test releases it
    'echo "$CUDA_VISIBLE_DEVICES" > "$REC/$$"; i=0; '
    'while [ ! -e "$REC/release" ] && [ $i -lt 400 ]; do sleep 0.025; i=$((i+1)); done'
)


def _spawn(tmp_path, fake, *opts):
    rec = tmp_path / "rec"
    rec.mkdir(exist_ok=True)
    env = dict(os.environ, REC=str(rec), BOOTSEP_FAKE_GPUS=fake)
    return subprocess.Popen(
        [sys.executable, str(SCRIPT), "--lock-dir", str(tmp_path / "locks"), "--poll", "0.05",
         *opts, "1", "sh", "-c", _HOLD],
        env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)


def _wait_for(predicate, seconds=20.0):
    end = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.02)


def test_concurrent_allocators_get_different_gpus(tmp_path):
    procs = [_spawn(tmp_path, "[{}, {}]") for _ in range(2)]
    rec = tmp_path / "rec"
    try:
        _wait_for(lambda: len(list(rec.iterdir())) == 2)
    finally:
        (rec / "release").touch()
    assert [p.wait(timeout=30) for p in procs] == [0, 0]
    assert sorted(f.read_text().strip() for f in rec.iterdir() if f.name != "release") == ["0", "1"]


def test_concurrent_allocators_for_one_gpu_one_waits_and_times_out(tmp_path):
    procs = [_spawn(tmp_path, "[{}]", "--timeout", "1") for _ in range(2)]
    rec = tmp_path / "rec"
    try:
        _wait_for(lambda: any(p.poll() is not None for p in procs))  # the loser gives up
        finished = [p for p in procs if p.poll() is not None]
        assert len(finished) == 1 and finished[0].returncode == 4, finished[0].stderr.read()
        assert [f.read_text().strip() for f in rec.iterdir()] == ["0"]  # the winner holds GPU 0
    finally:
        (rec / "release").touch()
    assert sorted(p.wait(timeout=30) for p in procs) == [0, 4]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["TERM", "INT"])
def test_signals_are_forwarded_to_the_child(tmp_path, sig):
    ready = tmp_path / "ready"
    child = f'trap "exit 42" {sig.name[3:]}; touch {ready}; while :; do sleep 0.02; done'
    p = subprocess.Popen(
        [sys.executable, str(SCRIPT), "--fake-gpus", "[{}]", "--lock-dir", str(tmp_path / "l"),
         "1", "sh", "-c", child],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _wait_for(ready.exists)
        p.send_signal(sig)
        assert p.wait(timeout=20) == 42
    finally:
        if p.poll() is None:  # pragma: no cover - only on failure
            p.kill()
            p.wait()


def _machine_has_driver() -> bool:
    from bootsep.jobs.gpus import NvmlGpuQuery

    try:
        NvmlGpuQuery().list_gpus()
    except NoDriverError:
        return False
    except Exception:  # pragma: no cover
        return True
    return True


@pytest.mark.skipif(_machine_has_driver(), reason="this machine has an NVIDIA driver")
def test_top_level_script_without_a_driver():
    env = {k: v for k, v in os.environ.items() if k != "BOOTSEP_FAKE_GPUS"}
    r = subprocess.run([str(SCRIPT), "1", "true"], capture_output=True, text=True, env=env,
                       cwd=ROOT, timeout=60)
    assert r.returncode == 3 and r.stdout == ""
    assert len(r.stderr.splitlines()) == 1 and r.stderr.startswith("allocate: ")
    assert "--allow-cpu" in r.stderr
    for cmd, code in [("true", 0), ("false", 1)]:
        r = subprocess.run([str(SCRIPT), "--allow-cpu", "1", cmd], capture_output=True, text=True,
                           env=env, cwd=ROOT, timeout=60)
        assert r.returncode == code, r.stderr


def test_current_user_is_the_login_name():
    import pwd

    assert current_user() == pwd.getpwuid(os.getuid()).pw_name


# --------------------------------------------------------------------------------------------
# --dry-run answers at once


def test_dry_run_with_busy_gpus_answers_at_once_and_says_why(tmp_path, capsys):
    fake = json.dumps([{"users": ["bob"], "memory": 0.3}, {"memory": 0.95},
                       {"users": ["<unknown>"], "processes": 2}])
    t0 = time.monotonic()
    rc = _main(tmp_path, "--poll", "30", "--dry-run", "1", "echo", "hi", fake=fake)
    assert time.monotonic() - t0 < 1.0  # no waiting (the default poll is 30 s)
    assert rc == 4
    out = capsys.readouterr().out
    assert out.startswith("none free: 1 GPU(s) needed, 0 usable now")
    assert "GPU 0: busy: used by bob" in out and "GPU 1: busy: 95% memory used" in out
    assert "GPU 2: busy: used by <unknown>" in out
    assert not list((tmp_path / "locks").glob("gpu*.json"))


def test_dry_run_without_cmd_names_the_gpus_it_would_take(tmp_path, capsys):
    fake = json.dumps([{"users": ["bob"]}, {}, {}])
    assert _main(tmp_path, "--dry-run", "2", fake=fake) == 0
    assert capsys.readouterr().out == "CUDA_VISIBLE_DEVICES=1,2\n"


def test_dry_run_counts_reservations_of_other_allocators(tmp_path, capsys):
    from bootsep.jobs.allocate import GpuLocks

    locks = GpuLocks(tmp_path / "locks")
    with locks.locked():
        locks.reserve([0], 60, pid=os.getppid())  # a live pid that is not ours
    assert _main(tmp_path, "--dry-run", "1", "true", fake="[{}]") == 4
    assert "GPU 0: busy: reserved by another of your allocators" in capsys.readouterr().out
