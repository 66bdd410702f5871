"""The one dataset base: tracks with stems, as whole tracks or seeded random excerpts.

:class:`TrackDataset` holds the item logic every labelled dataset shares
(:class:`~bootsep.data.folder.StemFolderDataset` and its
:class:`~bootsep.data.bootstrapped.BootstrappedDataset`,
:class:`~bootsep.data.musdb.MUSDBDataset`, :class:`~bootsep.data.wham.WHAMDataset`): a subclass
lists its tracks (names, lengths in output samples, channel counts) and knows how to read one
span of a track; this base turns that into the project's item dicts: whole tracks in sorted
order, or random excerpts where item ``i`` draws from ``numpy.random.default_rng([seed, i])``
(the same excerpt in every worker and run), optional remixing through
:class:`~bootsep.data.mixing.Remixer`, and redraws of near-silent excerpts.
:func:`item_index` is the index check of every dataset (also the unlabelled
:class:`~bootsep.data.user.MixtureFolderDataset`).

Loud rather than silently wrong: tracks with different channel counts are refused (a batch
cannot hold both); subclasses refuse stems of one track with different lengths (WHAM!'s
``check_lengths``, MUSDB18-HQ's :func:`~bootsep.data.musdb.stem_info`,
:func:`~bootsep.data.audio.check_same_length` for folders) instead of cropping.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from bootsep.data.audio import resample
from bootsep.data.mixing import MixPlan, Remixer, SourcePick, draw_excerpt
from bootsep.utils.errors import UserError


def item_index(index: int, length: int) -> int:
    """``index`` as an int in ``[0, length)``; negative values count from the end.

    Raises:
        IndexError: outside ``[-length, length)`` (what ``Dataset`` iteration expects).
    """
    index = int(index)
    if index < 0:
        index += length
    if not 0 <= index < length:
        raise IndexError(f"index {index} out of range for {length} items")
    return index


class TrackDataset(Dataset):
    """Base class; subclasses call :meth:`_configure` (or :meth:`_setup`) and implement the
    ``_read_*`` methods and :meth:`item_paths`.

    Subclass contract:
        ``_read_coherent(track, start, n) -> (mix (C, n), sources (n_src, C, n))`` float32, the
        mixture and every source of one track over the same span (``start``/``n`` in output
        samples; zero-padded past the end).
        ``_read_source(track, k, start, n) -> (C, n)`` float32, source ``k`` only (remixing).
        ``item_paths(track) -> dict`` (``mixture_path``, ``reference_paths``) for whole items.

    Set up in two steps so that a subclass can check its options before it lists files:
    :meth:`_configure` (options: sources, rate, excerpts, remix, cache) and
    :meth:`_set_tracks` (the listed tracks); :meth:`_setup` does both.
    """

    sources: tuple[str, ...]
    cache = None

    def _configure(self, *, sources, sample_rate: int, excerpt_seconds: float | None,
                   num_items: int | None, seed: int, remix: Remixer | None, silence_db: float,
                   max_retries: int, cache=None, noun: str = "tracks") -> None:
        """Store and check the options shared by every track dataset.

        ``cache``: an :class:`~bootsep.data.cache.AudioCache`, its folder, or None (read the
        files each time; see :meth:`_load`). ``noun`` names the tracks in error messages
        (``'songs'``, ``'tracks'``).
        """
        from bootsep.data.cache import AudioCache

        self.sources = tuple(sources)
        self.sample_rate = int(sample_rate)
        self.excerpt_seconds = None if excerpt_seconds is None else float(excerpt_seconds)
        self.num_items = None if num_items is None else int(num_items)
        self.seed = int(seed)
        self.remix = remix
        self.silence_db = float(silence_db)
        self.max_retries = int(max_retries)
        self._noun = noun
        self.cache = AudioCache(cache) if isinstance(cache, (str, os.PathLike)) else cache
        if self.excerpt_seconds is not None and self.excerpt_seconds <= 0:
            raise UserError(f"excerpt_seconds must be > 0, got {excerpt_seconds}")
        if remix is not None and self.excerpt_seconds is None:
            raise UserError(f"remixing needs excerpt_seconds (whole {noun} cannot be remixed); "
                            "set excerpt_seconds or remove remix")
        if self.num_items is not None and self.num_items < 1:
            raise UserError(f"num_items must be >= 1, got {num_items}")

    def _set_tracks(self, *, names, lengths, channels, min_seconds: float | None, where: str,
                    hint: str = "") -> None:
        """Keep the tracks at least ``min_seconds`` long (their indices into the subclass's
        lists in ``self._keep``); refuse none left, or tracks with different channel counts.

        ``lengths`` in output samples; ``where`` (the folder) and ``hint`` (appended after
        ``;``) go into the error messages.
        """
        keep = [i for i, n in enumerate(lengths)
                if min_seconds is None or n >= float(min_seconds) * self.sample_rate]
        if not keep:
            raise UserError(f"no {self._noun} left in {where} (min_seconds={min_seconds})"
                            + (f"; {hint}" if hint else ""))
        self._keep = keep  # indices into the subclass's own track list
        self._names = [names[i] for i in keep]
        self._lengths = [int(lengths[i]) for i in keep]
        self._channels = [int(channels[i]) for i in keep]
        if len(set(self._channels)) > 1:
            a = self._channels.index(min(self._channels))
            b = self._channels.index(max(self._channels))
            raise self._mixed_channels_error(a, b, where)

    def _setup(self, *, names, lengths, channels, min_seconds: float | None, where: str,
               **options) -> None:
        """:meth:`_configure` with ``options``, then :meth:`_set_tracks`."""
        self._configure(**options)
        self._set_tracks(names=names, lengths=lengths, channels=channels,
                         min_seconds=min_seconds, where=where)

    def _mixed_channels_error(self, a: int, b: int, where: str) -> UserError:
        """The error for kept tracks ``a`` (fewest channels) and ``b`` (most)."""
        return UserError(f"{where} mixes tracks with {self._channels[a]} and "
                         f"{self._channels[b]} channels (e.g. {self._names[a]!r} and "
                         f"{self._names[b]!r}); every track must have the same channel "
                         f"count: use mono=True or convert the files")

    # ------------------------------------------------------------------ public info

    def item_names(self) -> list[str] | None:
        """Item names without loading audio (whole tracks); None for random excerpts."""
        if self.excerpt_seconds is not None:
            return None
        return self._names[: len(self)]

    def __len__(self) -> int:
        n = len(self._names)
        if self.excerpt_seconds is None:
            return n if self.num_items is None else min(n, self.num_items)
        return n if self.num_items is None else self.num_items

    # ------------------------------------------------------------------ items

    def _load(self, path: Path, start: int, n: int, mono: bool) -> np.ndarray:
        """float32 ``(channels, <= n)`` of ``path`` from output sample ``start``, at
        ``sample_rate``, through the cache when there is one."""
        from bootsep.data.audio import load_audio

        kw = dict(sample_rate=self.sample_rate, mono=mono, offset=start / self.sample_rate,
                  duration=n / self.sample_rate)
        return self.cache.load(path, **kw) if self.cache is not None else load_audio(path, **kw)

    def _render(self, plan: MixPlan, n: int):
        if self.remix is None:
            return self._read_coherent(plan.picks[0].song, plan.picks[0].start, n)
        srcs = []
        for k, pick in enumerate(plan.picks):
            if pick.speed == 1.0:
                x = self._read_source(pick.song, k, pick.start, n)
            else:  # read ceil(n * speed) samples and play them back in n
                x = self._read_source(pick.song, k, pick.start, int(np.ceil(n * pick.speed)))
                x = fit(resample(x, self.sample_rate * pick.speed, self.sample_rate),
                        x.shape[0], n)
            if pick.gain_db:
                x = x * np.float32(10 ** (pick.gain_db / 20))
            srcs.append(x)
        ch = max(s.shape[0] for s in srcs)
        sources = np.stack([np.broadcast_to(s, (ch, n)) for s in srcs]).astype(np.float32)
        return sources.sum(axis=0, dtype=np.float32), sources

    def _plan(self, rng: np.random.Generator, n: int) -> MixPlan:
        if self.remix is not None:
            return self.remix.plan(rng, self._lengths, n, len(self.sources))
        song, start = draw_excerpt(rng, self._lengths, n)
        return MixPlan(True, tuple(SourcePick(song, start) for _ in self.sources))

    def __getitem__(self, index: int) -> dict:
        index = item_index(index, len(self))
        if self.excerpt_seconds is None:
            n = self._lengths[index]
            plan = MixPlan(True, tuple(SourcePick(index, 0) for _ in self.sources))
            mix, sources = self._read_coherent(index, 0, n)
        else:
            n = int(round(self.excerpt_seconds * self.sample_rate))
            rng = np.random.default_rng([self.seed, index])
            best = None
            for _ in range(self.max_retries + 1):
                plan = self._plan(rng, n)
                mix, sources = self._render(plan, n)
                level = 10 * np.log10(np.mean(np.square(mix, dtype=np.float64)) + 1e-20)
                if best is None or level > best[0]:
                    best = (level, plan, mix, sources)
                if level >= self.silence_db:
                    break
            _, plan, mix, sources = best
        names = [self._names[p.song] for p in plan.picks]
        name = names[0] if len(set(names)) == 1 else "+".join(names)
        extra = {"paths": self.item_paths(index)} if self.excerpt_seconds is None else {}
        return {
            **extra,
            "mix": torch.from_numpy(np.ascontiguousarray(mix, dtype=np.float32)),
            "sources": torch.from_numpy(np.ascontiguousarray(sources, dtype=np.float32)),
            "name": name,
            "index": index,
            "offset": plan.picks[0].start / self.sample_rate,
            "offsets": torch.tensor([p.start / self.sample_rate for p in plan.picks],
                                    dtype=torch.float32),
            "gains_db": torch.tensor([p.gain_db for p in plan.picks], dtype=torch.float32),
            "coherent": plan.coherent,
        }

    # ------------------------------------------------------------------ subclass hooks

    def _read_coherent(self, track: int, start: int, n: int):  # pragma: no cover - abstract
        raise NotImplementedError

    def _read_source(self, track: int, k: int, start: int, n: int):  # pragma: no cover
        raise NotImplementedError

    def item_paths(self, track: int) -> dict:  # pragma: no cover - abstract
        """``{'mixture_path': str, 'reference_paths': {source: str}}`` of whole track
        ``track`` (what evaluation records next to its scores)."""
        raise NotImplementedError


def fit(x: np.ndarray, channels: int, n: int) -> np.ndarray:
    """``x`` (c, m) as float32 (channels, n): one channel repeated, zero-padded or cut to n."""
    x = np.asarray(x, dtype=np.float32)
    if x.shape[0] != channels:
        x = np.repeat(x[:1], channels, axis=0)
    out = np.zeros((channels, n), dtype=np.float32)
    m = min(n, x.shape[1])
    out[:, :m] = x[:, :m]
    return out
