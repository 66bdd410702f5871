"""The two helper threads of segment separation: a reader ahead of the separator, and a bounded
pool of writers behind it.

:func:`prefetch` loads the next items (decodes the next segments) in one background thread
while the caller works on the current one. :class:`WriterPool` runs the slow per-item work
(confidences, metrics, writing the files) on a few threads, with at most ``max_pending`` items
submitted and unfinished, so memory stays bounded whatever the number of items.

Guarantees (tested in ``tests/bootstrap/test_pipeline.py``):

- **order**: :func:`prefetch` yields items in input order; :meth:`WriterPool.close` returns
  the jobs' results in submission order.
- **errors surface**: an exception raised by a loader is raised by :func:`prefetch` in the
  caller when that item is reached; one raised by a job is raised in the caller by the next
  :meth:`WriterPool.submit` that waits on it, or by :meth:`WriterPool.close`.
- **nothing half-written**: a job is never interrupted. When the caller stops (an exception,
  or leaving the ``with`` block), the pool waits for every job already submitted to finish;
  jobs that write through :mod:`bootsep.utils.io` (temp file + rename) therefore leave each
  file either complete or absent. A prefetch abandoned early cancels the loads not yet begun.
"""

from __future__ import annotations

import collections
import concurrent.futures as cf
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")
_END = object()


def prefetch(items: Iterable[T], load: Callable[[T], R], depth: int = 3) -> Iterator[tuple[T, R]]:
    """Yield ``(item, load(item))`` in the order of ``items``, loading up to ``depth`` items
    ahead in one background thread (default 3). An exception in ``load`` is raised here when its
    item is reached; closing the generator early cancels the loads not yet started and waits for
    the running one."""
    it = iter(items)
    pool = cf.ThreadPoolExecutor(max_workers=1, thread_name_prefix="bootsep-read")
    try:
        queue: collections.deque = collections.deque()
        for item in it:
            queue.append((item, pool.submit(load, item)))
            if len(queue) >= max(1, int(depth)):
                break
        while queue:
            item, fut = queue.popleft()
            nxt = next(it, _END)
            if nxt is not _END:
                queue.append((nxt, pool.submit(load, nxt)))
            yield item, fut.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


class WriterPool:
    """Run jobs on ``num_workers`` threads, at most ``max_pending`` submitted and unfinished.

    Use as a context manager::

        with WriterPool(2) as pool:
            for x in items:
                pool.submit(write, x)          # waits for the oldest job when full
            results = pool.close()             # all results, in submission order

    Args:
        num_workers: threads (default 2; at least 1).
        max_pending: jobs submitted but not yet waited for, before :meth:`submit` waits for the
            oldest (default ``2 * num_workers``).

    Leaving the ``with`` block (normally or by an exception) waits for every submitted job to
    finish, so none is cut off mid-write; jobs are not cancelled (each holds finished work).
    """

    def __init__(self, num_workers: int = 2, max_pending: int | None = None):
        self.num_workers = max(1, int(num_workers))
        self.max_pending = 2 * self.num_workers if max_pending is None else max(1, int(max_pending))
        self._pool = cf.ThreadPoolExecutor(max_workers=self.num_workers,
                                           thread_name_prefix="bootsep-write")
        self._pending: collections.deque = collections.deque()
        self._results: list = []

    def submit(self, fn: Callable[..., Any], *args, **kwargs) -> None:
        """Queue ``fn(*args, **kwargs)``; first wait (in order) for the oldest jobs until fewer
        than ``max_pending`` are pending, raising the first exception among them."""
        self._drain(self.max_pending - 1)
        self._pending.append(self._pool.submit(fn, *args, **kwargs))

    def close(self) -> list:
        """Wait for every job; their results in submission order (raises a job's exception)."""
        self._drain(0)
        self._pool.shutdown(wait=True)
        return self._results

    def _drain(self, limit: int) -> None:
        while len(self._pending) > limit:
            self._results.append(self._pending.popleft().result())

    def __enter__(self) -> WriterPool:
        return self

    def __exit__(self, *exc) -> None:
        self._pool.shutdown(wait=True)  # never abandon a job mid-write


__all__ = ["WriterPool", "prefetch"]
