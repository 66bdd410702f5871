"""Decoded-audio cache: ``.npy`` files keyed by (file, mtime, size, sample rate, mono).

Training reads random excerpts many times per epoch; decoding and resampling them each time is
the usual data-loader bottleneck. :class:`AudioCache` decodes + resamples (+ down-mixes) a file
once, stores the float32 ``(channels, samples)`` array as ``FOLDER/<key>.npy`` (atomic write),
and serves excerpts from a memory map afterwards. A changed source file (new mtime or size) gets
a new key, so the cache never serves stale audio.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import OrderedDict
from pathlib import Path

import numpy as np


class AudioCache:
    """Disk cache of decoded audio with memory-mapped excerpt reads.

    Args:
        folder: cache folder (created on first write).
        max_open: memory maps kept open per process, least recently used dropped (default 64).
            Small files are therefore effectively held in memory (the OS page cache backs them).

    The object is picklable (DataLoader workers); the open maps are not carried over.
    ``hits`` / ``misses`` count this process's loads.
    """

    def __init__(self, folder: str | os.PathLike, max_open: int = 64):
        self.folder = Path(folder)
        self.max_open = int(max_open)
        self.hits = 0
        self.misses = 0
        self._open: OrderedDict[Path, np.ndarray] = OrderedDict()

    def __repr__(self) -> str:
        return f"AudioCache({str(self.folder)!r})"

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_open"] = OrderedDict()
        return state

    # ------------------------------------------------------------------ keys

    def key(self, path: str | os.PathLike, sample_rate: int | None = None,
            mono: bool = False) -> str:
        """Hex key of ``path`` decoded at ``sample_rate`` (None = the file's own rate)."""
        path = Path(path).resolve()
        try:
            st = path.stat()
        except FileNotFoundError:
            from bootsep.utils.errors import UserError

            raise UserError(f"audio file not found: {path}; check the path (and the dataset "
                            f"root) or regenerate the data") from None
        if sample_rate is None:
            from bootsep.data.audio import audio_info

            sample_rate = audio_info(path)[0]
        ident = json.dumps([str(path), st.st_mtime_ns, st.st_size, int(sample_rate), bool(mono)])
        return hashlib.sha256(ident.encode()).hexdigest()[:32]

    def cache_path(self, path: str | os.PathLike, sample_rate: int | None = None,
                   mono: bool = False) -> Path:
        """Where the decoded array of ``path`` is (or will be) stored."""
        return self.folder / f"{self.key(path, sample_rate, mono)}.npy"

    def contains(self, path: str | os.PathLike, sample_rate: int | None = None,
                 mono: bool = False) -> bool:
        return self.cache_path(path, sample_rate, mono).is_file()

    # ------------------------------------------------------------------ loading

    def load(self, path: str | os.PathLike, sample_rate: int | None = None, mono: bool = False,
             offset: float = 0.0, duration: float | None = None) -> np.ndarray:
        """Same contract as :func:`bootsep.data.audio.load_audio`, served from the cache.

        Returns:
            float32 ``(channels, samples)``; ``round(offset * rate)`` is the first sample and
            ``round(duration * rate)`` the length (shorter if the file ends first).
        """
        from bootsep.data.audio import audio_info

        if sample_rate is None:
            sample_rate = audio_info(path)[0]
        full = self._get(path, int(sample_rate), bool(mono))
        start = int(round(offset * sample_rate))
        stop = None if duration is None else start + int(round(duration * sample_rate))
        return np.array(full[:, start:stop], dtype=np.float32)

    def ensure(self, path: str | os.PathLike, sample_rate: int | None = None,
               mono: bool = False) -> bool:
        """Decode and store ``path`` unless cached; returns True when it had to decode."""
        target = self.cache_path(path, sample_rate, mono)
        if target.is_file():
            return False
        self._decode_and_store(path, sample_rate, mono, target)
        return True

    def populate(self, dataset, progress: bool = True) -> int:
        """Decode every file of ``dataset`` into the cache; returns how many were decoded.

        ``dataset`` needs ``audio_files()`` (paths), ``sample_rate`` and ``mono`` (as
        :class:`bootsep.data.folder.StemFolderDataset` has).
        """
        from tqdm.auto import tqdm

        files = list(dataset.audio_files())
        new = 0
        for path in tqdm(files, desc="caching audio", unit="file", disable=not progress,
                         leave=False):
            new += self.ensure(path, dataset.sample_rate, dataset.mono)
        return new

    # ------------------------------------------------------------------ internals

    def _get(self, path, sample_rate: int, mono: bool) -> np.ndarray:
        target = self.cache_path(path, sample_rate, mono)
        arr = self._open.get(target)
        if arr is not None:
            self._open.move_to_end(target)
            self.hits += 1
            return arr
        if target.is_file():
            try:
                arr = np.load(target, mmap_mode="r")
                self.hits += 1
            except (ValueError, OSError, EOFError):  # damaged entry: rebuild it
                arr = None
        if arr is None:
            arr = self._decode_and_store(path, sample_rate, mono, target)
            self.misses += 1
        self._open[target] = arr
        while len(self._open) > self.max_open:
            self._open.popitem(last=False)
        return arr

    def _decode_and_store(self, path, sample_rate, mono, target: Path) -> np.ndarray:
        from bootsep.data.audio import load_audio
        from bootsep.utils.io import atomic_path

        audio = load_audio(path, sample_rate=sample_rate, mono=mono)
        with atomic_path(target, suffix=".npy") as tmp, open(tmp, "wb") as fh:
            np.save(fh, audio)
        return audio
