"""Overlapping windows and their linear cross-fade: the one overlap-add of separation outputs.

Long signals are separated window by window so that memory does not grow with their length:
file mode cuts whole files into windows of samples (:mod:`bootsep.bootstrap.separate_files`),
the deep separators cut a spectrogram into chunks of frames (:mod:`bootsep.separation.deep`).
Both plan their windows with :func:`window_bounds` and join the outputs with
:class:`OverlapAdd`: over the ``overlap`` samples (or frames) two consecutive windows share,
the earlier output fades out and the later one fades in, with complementary linear ramps.

The ramp (:func:`fade_in`): for an overlap of ``n`` steps, the later window's weight at step
``k = 0 .. n-1`` is ``(k + 0.5) / n``, the earlier window's ``1 - (k + 0.5) / n``. The two
weights sum to exactly 1 at every step (a signal both windows reproduce is reproduced exactly),
the ramp is symmetric (the fade-out is the fade-in reversed), and each weight is the mean of the
continuous ramp ``t / n`` over its step ``[k, k + 1)``, so no step gives either window all
or none of the weight.

(``models.dualpath``'s ``overlap_add`` is another concept: it sums a dual-path model's frames
back into a signal, without fades.)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch


def window_bounds(length: int, window: int, overlap: int,
                  min_last: int = 0) -> list[tuple[int, int]]:
    """``[(start, end), ...]`` ranges covering ``[0, length)`` in windows of ``window`` steps,
    consecutive ones sharing exactly ``overlap`` (window ``k`` starts at ``k * (window -
    overlap)``; the last ends at ``length``). One window ``(0, length)`` when ``length <=
    window``. A last window shorter than ``min_last`` is merged into the one before (default 0:
    never), which may then be up to ``window + min_last`` long.

    Raises:
        ValueError: unless ``window >= 1`` and ``0 <= 2 * overlap <= window``.
    """
    length, window, overlap = int(length), int(window), int(overlap)
    if window < 1 or overlap < 0 or 2 * overlap > window:
        raise ValueError(f"windows need window >= 1 and 0 <= 2 * overlap <= window, got "
                         f"window={window}, overlap={overlap}")
    if length <= window:
        return [(0, length)]
    step = window - overlap
    n = math.ceil((length - overlap) / step)
    bounds = [(i * step, min(i * step + window, length)) for i in range(n)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] < min_last:
        bounds[-2:] = [(bounds[-2][0], length)]
    return bounds


def fade_in(n: int, like: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
    """The fade-in ramp ``(k + 0.5) / n``, ``k = 0 .. n-1``, shape ``(n,)``, of ``like``'s
    kind, dtype (and device); the fade-out is ``1 - fade_in``."""
    if isinstance(like, torch.Tensor):
        return (torch.arange(n, device=like.device, dtype=like.dtype) + 0.5) / max(n, 1)
    return (np.arange(n, dtype=like.dtype) + 0.5) / max(n, 1)


class OverlapAdd:
    """Join the outputs of consecutive windows into one stream, cross-fading their overlaps.

    Args:
        bounds: the windows, from :func:`window_bounds` (each shares with the next exactly
            what that one's start says: ``bounds[k][1] - bounds[k + 1][0]`` steps).
        dim: the time axis of the outputs (default -1); other axes are untouched.

    Feed each window's output, in order, to :meth:`push`; it returns the part of the stream
    that is final: from the end of the previous part up to the next window's start (the last
    window: up to the end). The overlap's part of the output is held back until the next
    window arrives, so memory holds one window. Works on numpy arrays and torch tensors.

    Example (the concatenated parts equal a whole-signal output where all windows agree)::

        ola = OverlapAdd(window_bounds(n, 1000, 100))
        parts = [ola.push(f(x[..., s:e])) for s, e in ola.bounds]
    """

    def __init__(self, bounds: Sequence[tuple[int, int]], dim: int = -1):
        self.bounds = [(int(s), int(e)) for s, e in bounds]
        self.dim = dim
        self._k = 0
        self._tail = None          # the previous window's un-faded overlap part
        self.done = 0              # steps of the stream returned so far

    def push(self, y, align: Callable | None = None):
        """Window ``k``'s output ``y`` (its time axis as long as the window) -> the final part
        ``[done, next window's start)`` of the stream.

        ``align(tail, y)``, when given, is called with the previous window's output over the
        overlap (un-faded) and this window's whole output, before fading, and returns the
        output to use (e.g. its sources permuted to match the previous window's)."""
        if self._k >= len(self.bounds):
            raise ValueError(f"OverlapAdd got more than its {len(self.bounds)} windows")
        start, end = self.bounds[self._k]
        n = end - start
        if y.shape[self.dim] != n:
            raise ValueError(f"window {self._k} ({start}:{end}) has {n} steps; its output has "
                             f"{y.shape[self.dim]} on axis {self.dim}")
        if self._tail is not None:
            lap = self._tail.shape[self.dim]
            if align is not None:
                y = align(self._tail, y)
            up = self._shape(fade_in(lap, y), y)
            head = self._take(y, 0, lap) * up
            y = _cat([self._tail * (1.0 - up) + head, self._take(y, lap, n)], self.dim, y)
        last = self._k + 1 == len(self.bounds)
        keep = n if last else self.bounds[self._k + 1][0] - start
        self._tail = None
        if not last:  # a copy of the overlap, so the window's output can be freed once used
            tail = self._take(y, keep, n)
            self._tail = tail.copy() if isinstance(tail, np.ndarray) else tail.clone()
        self._k += 1
        self.done = start + keep
        return self._take(y, 0, keep)

    def _take(self, y, a: int, b: int):
        index = [slice(None)] * y.ndim
        index[self.dim] = slice(a, b)
        return y[tuple(index)]

    def _shape(self, w, y):
        shape = [1] * y.ndim
        shape[self.dim] = w.shape[0]
        return w.reshape(shape)


def _cat(parts, dim, like):
    if isinstance(like, torch.Tensor):
        return torch.cat(parts, dim=dim)
    return np.concatenate(parts, axis=dim)


__all__ = ["OverlapAdd", "fade_in", "window_bounds"]
