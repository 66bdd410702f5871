"""The prefetch reader and the writer pool of segment mode, alone (no audio, no separator)."""

from __future__ import annotations

import threading
import time

import pytest

from bootsep.bootstrap.pipeline import WriterPool, prefetch
from bootsep.utils.io import atomic_path


def test_prefetch_yields_in_order_and_reads_ahead_in_another_thread():
    threads = set()

    def load(x):
        threads.add(threading.current_thread().name)
        time.sleep(0.002 * (7 - x % 7))               # later items finish loading first
        return x * x

    items = [3, None, 0, 5, 1, 4, 2, 9]              # None is an item like any other
    out = list(prefetch(items, lambda x: -1 if x is None else load(x), depth=3))
    assert out == [(x, -1 if x is None else x * x) for x in items]
    assert threads and all(t.startswith("bootsep-read") for t in threads)
    assert list(prefetch([], load)) == []


def test_prefetch_raises_a_loaders_error_at_its_item_and_stops_loading_when_closed():
    loaded = []

    def load(x):
        loaded.append(x)
        if x == 2:
            raise ValueError("bad item 2")
        return x

    got = []
    with pytest.raises(ValueError, match="bad item 2"):
        for _item, value in prefetch(range(100), load, depth=2):
            got.append(value)
    assert got == [0, 1]                          # items before the bad one came through
    assert max(loaded) <= 4                       # a few loaded ahead, not the other 95


def test_writer_pool_keeps_submission_order_and_bounds_the_jobs_in_flight():
    lock = threading.Lock()
    running, peak = [0], [0]

    def job(x):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.002 * (5 - x % 5))
        with lock:
            running[0] -= 1
        return x

    submitted_unfinished = []
    with WriterPool(num_workers=2, max_pending=3) as pool:
        for x in range(20):
            pool.submit(job, x)
            submitted_unfinished.append(len(pool._pending))
        assert pool.close() == list(range(20))
    assert max(submitted_unfinished) <= 3 and peak[0] <= 2


def test_writer_pool_surfaces_a_jobs_error_and_finishes_the_others_in_full(tmp_path):
    """A failing job raises in the caller; every other submitted job still writes its file
    completely (atomic writes), and no temp file is left behind."""

    def write(i):
        if i == 3:
            raise OSError("disk full on item 3")
        with atomic_path(tmp_path / f"{i}.txt") as tmp:
            tmp.write_text("x" * 100_000)
            time.sleep(0.01)
        return i

    submitted = []
    with pytest.raises(OSError, match="disk full on item 3"):
        with WriterPool(num_workers=2, max_pending=2) as pool:
            for i in range(10):
                pool.submit(write, i)
                submitted.append(i)
            pool.close()
    assert 3 in submitted and len(submitted) < 10       # the error stopped the caller early
    written = sorted(int(p.stem) for p in tmp_path.glob("*.txt"))
    assert written == [i for i in submitted if i != 3]  # every other submitted job finished
    assert all(p.stat().st_size == 100_000 for p in tmp_path.glob("*.txt"))
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_leaving_the_pool_on_a_callers_error_waits_for_running_jobs(tmp_path):
    started = threading.Event()

    def slow_write():
        started.set()
        time.sleep(0.2)
        with atomic_path(tmp_path / "late.txt") as tmp:
            tmp.write_text("done")

    with pytest.raises(RuntimeError, match="separator crashed"):
        with WriterPool(num_workers=1) as pool:
            pool.submit(slow_write)
            started.wait(5)
            raise RuntimeError("separator crashed")
    assert (tmp_path / "late.txt").read_text() == "done"
