"""Datasets over folders of stems (MUSDB18-HQ song layout or per-stem layout).

Two layouts are understood (``layout='auto'`` tells them apart)::

    song layout:  ROOT/<split>/<song>/<stem>.wav     (MUSDB18-HQ, the demo data)
    stem layout:  ROOT/<split>/<stem>/<song>.wav     (BCA's prepared wav16k folders)

``auto`` picks the stem layout when every sub-folder of the split is named like a stem
(``mixture``, ``vocals``, ``drums``, ``bass``, ``other``, ``accompaniment`` or a requested name)
and the song layout otherwise; pass ``layout`` explicitly for anything ambiguous.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bootsep.data.cache import AudioCache
from bootsep.data.files import DERIVED, KNOWN_STEMS, find_audio, list_audio_files, subfolders
from bootsep.data.mixing import Remixer
from bootsep.data.tracks import TrackDataset, fit
from bootsep.utils.errors import UserError

LAYOUT_HELP = ("the expected layout is ROOT/<split>/<song>/<stem>.wav (MUSDB18-HQ) or "
               "ROOT/<split>/<stem>/<song>.wav (per-stem folders)")


def detect_layout(split_dir: str | os.PathLike, stem_names=KNOWN_STEMS) -> str:
    """``'stem'`` when every visible sub-folder of ``split_dir`` is a stem name, else ``'song'``."""
    subdirs = subfolders(Path(split_dir))
    names = set(stem_names) | KNOWN_STEMS
    if subdirs and all(d.name in names for d in subdirs):
        return "stem"
    return "song"


def _select_songs(found: list[str], files: list, songs, split_dir: Path):
    """The songs of ``found`` named in ``songs`` (names, or an int N: the first N)."""
    if isinstance(songs, bool) or not isinstance(songs, (int, list, tuple)):
        raise UserError(f"songs must be a list of song names or a number, got {songs!r}")
    if isinstance(songs, int):
        if songs < 1:
            raise UserError(f"songs must be >= 1, got {songs}")
        return found[:songs], files[:songs]
    index = {name: i for i, name in enumerate(found)}
    missing = [str(n) for n in songs if str(n) not in index]
    if missing:
        raise UserError(f"songs {missing} not found in {split_dir} (it has {len(found)} songs, "
                        f"e.g. {found[:3]}); fix StemFolderDataset.songs")
    keep = sorted({index[str(n)] for n in songs})
    return [found[i] for i in keep], [files[i] for i in keep]


class StemFolderDataset(TrackDataset):
    """Mixtures and sources from a folder of stems, as full songs or random excerpts.

    Args:
        root: dataset root (contains ``<split>/``).
        split: sub-folder, e.g. ``'train'``, ``'valid'``, ``'test'``.
        sources: source names in output order (default ``('accompaniment', 'vocals')``). A
            name missing on disk is summed from its parts when
            :data:`~bootsep.data.files.DERIVED` lists them (``accompaniment = drums + bass +
            other``).
        mix_name: mixture stem (default ``'mixture'``; if missing on disk it is summed from
            vocals + drums + bass + other).
        sample_rate: output rate in Hz (default 16000); files at other rates are resampled.
        mono: average channels (default True). Otherwise files with one channel are repeated
            to the song's channel count, and every song must have the same channel count (a
            folder mixing mono and stereo songs is an error naming one file of each).

        excerpt_seconds: None (default) = whole songs in sorted order, ``len`` = number of songs
            (capped by ``num_items``). Otherwise random excerpts of this many seconds: item ``i``
            draws from ``numpy.random.default_rng([seed, i])``, so an index gives the same
            excerpt in every worker and run; songs shorter than that are zero-padded.
        num_items: dataset length in excerpt mode (default = number of songs).
        seed: base seed of the per-item generators (default 0).
        remix: a :class:`~bootsep.data.mixing.Remixer` (excerpt mode only): sources are picked
            (coherent / incoherent, gain jitter) and the mixture is their sum.
        cache: an :class:`~bootsep.data.cache.AudioCache` or its folder (default None: decode
            from the files each time).
        min_seconds: drop songs shorter than this (default None: keep all).
        songs: keep only these songs: a list of song names, or an int N for the first N in
            sorted order (default None: all). E.g. one song for fine-tuning on little data.
        layout: ``'auto'`` (default), ``'song'`` or ``'stem'``.
        silence_db: excerpts whose mixture RMS is below this (dBFS) are redrawn (default -60).
        max_retries: redraws for near-silent excerpts (default 5); the loudest draw is kept.

    Items are dicts::

        mix:      float32 tensor (channels, samples)
        sources:  float32 tensor (n_src, channels, samples)
        name:     song name ('a+b' when the sources come from different songs)
        index:    int
        offset:   float, start in seconds of the first source's excerpt (0.0 for whole songs)
        offsets:  float32 tensor (n_src,), start in seconds of each source
        gains_db: float32 tensor (n_src,), gain applied to each source
        coherent: bool, all sources from the same song and span

    ``mix`` is the mixture file (or the sum of its parts when derived); with ``remix`` it is
    ``sources.sum(0)``, sample for sample. The stems of a song must have the same length (equal
    frame counts in the files' native rate; see :func:`~bootsep.data.audio.check_same_length`):
    a truncated stem is an error naming the files, never a silent crop to the shortest. The item
    logic (excerpts, redraws, remixing) is :class:`~bootsep.data.tracks.TrackDataset`'s.
    """

    def __init__(self, root: str | os.PathLike, split: str,
                 sources: tuple[str, ...] | list[str] = ("accompaniment", "vocals"),
                 mix_name: str = "mixture", sample_rate: int = 16000, mono: bool = True,
                 excerpt_seconds: float | None = None, num_items: int | None = None,
                 seed: int = 0, remix: Remixer | None = None,
                 cache: AudioCache | str | os.PathLike | None = None,
                 min_seconds: float | None = None, layout: str = "auto",
                 silence_db: float = -60.0, max_retries: int = 5,
                 songs: Sequence[str] | int | None = None):
        self.root = Path(root)
        self.split = str(split)
        self.mix_name = str(mix_name)
        self.mono = bool(mono)
        sources = tuple(sources)
        if not sources or len(set(sources)) != len(sources):
            raise UserError(f"sources must be distinct, non-empty names, got {list(sources)}")
        self._configure(sources=sources, sample_rate=sample_rate,
                        excerpt_seconds=excerpt_seconds, num_items=num_items, seed=seed,
                        remix=remix, silence_db=silence_db, max_retries=max_retries,
                        cache=cache, noun="songs")
        if layout not in ("auto", "song", "stem"):
            raise UserError(f"layout must be 'auto', 'song' or 'stem', got {layout!r}")

        split_dir = self.root / self.split
        if not self.root.is_dir():
            raise UserError(f"dataset root not found: {self.root}; {LAYOUT_HELP} "
                            f"(generate the demo data with `make demo` or fix the path)")
        if not split_dir.is_dir():
            raise UserError(f"split folder not found: {split_dir}; {LAYOUT_HELP}")
        wanted = {self.mix_name, *self.sources}
        for name in list(wanted):
            wanted.update(DERIVED.get(name, ()))
        self.layout = detect_layout(split_dir, wanted) if layout == "auto" else layout

        found, files = self._scan(split_dir)
        if songs is not None:
            found, files = _select_songs(found, files, songs, split_dir)
        probed = [self._probe(song, f) for song, f in zip(found, files)]
        self._files: list[dict[str, tuple[Path, ...]]] = files  # cut to the kept songs below
        self._set_tracks(names=found, lengths=[n for n, _ in probed],
                         channels=[c for _, c in probed], min_seconds=min_seconds,
                         where=str(split_dir), hint=LAYOUT_HELP)
        self._files = [files[i] for i in self._keep]

    def _mixed_channels_error(self, a: int, b: int, where: str) -> UserError:
        return UserError(
            f"{where} mixes songs with {self._channels[a]} and {self._channels[b]} "
            f"channels (e.g. {self._first_file(a)} and {self._first_file(b)}); with mono=False "
            f"every song must have the same channel count: set StemFolderDataset.mono = True "
            f"or convert the files")

    def _first_file(self, kept: int) -> Path:
        # during _set_tracks, self._files still lists every scanned song
        return next(iter(self._files[self._keep[kept]].values()))[0]

    # ------------------------------------------------------------------ scanning

    def _scan(self, split_dir: Path):
        if self.layout == "song":
            song_dirs = subfolders(split_dir)
            if not song_dirs:
                raise UserError(f"no song folders in {split_dir}; {LAYOUT_HELP}")
            songs = [d.name for d in song_dirs]

            def locate(song, stem):
                return find_audio(split_dir / song, stem)

            def expected(song, stem):
                return split_dir / song / f"{stem}.wav"
        else:
            names = set()
            for d in subfolders(split_dir):
                names.update(p.stem for p in list_audio_files(d, recursive=False))
            if not names:
                raise UserError(f"no audio files in the stem folders of {split_dir}; "
                                f"{LAYOUT_HELP}")
            songs = sorted(names)

            def locate(song, stem):
                return find_audio(split_dir / stem, song)

            def expected(song, stem):
                return split_dir / stem / f"{song}.wav"

        files = []
        for song in songs:
            entry = {}
            for name in (self.mix_name, *self.sources):
                if name == self.mix_name and self.remix is not None:
                    continue  # the mixture is rebuilt from the sources
                path = locate(song, name)
                if path is not None:
                    entry[name] = (path,)
                    continue
                parts = [locate(song, p) for p in DERIVED.get(name, ())]
                if parts and all(parts):
                    entry[name] = tuple(parts)
                    continue
                hint = (f" (or its parts {', '.join(DERIVED[name])})" if name in DERIVED else "")
                raise UserError(f"missing stem {name!r} of song {song!r}: expected "
                                f"{expected(song, name)}{hint}; {LAYOUT_HELP}")
            files.append(entry)
        return songs, files

    def _probe(self, song: str, files: dict[str, tuple[Path, ...]]) -> tuple[int, int]:
        from bootsep.data.audio import audio_info, check_same_length

        infos = {p: audio_info(p) for paths in files.values() for p in paths}
        check_same_length(infos, f"song {song!r} of {self.root / self.split}")
        lengths = [int(frames * self.sample_rate // sr) for sr, frames, _ in infos.values()]
        channels = [ch for _, _, ch in infos.values()]
        n_ch = 1 if self.mono else max(channels)
        if not self.mono and any(c not in (1, n_ch) for c in channels):
            raise UserError(f"song {song!r} mixes files with {sorted(set(channels))} channels; "
                            f"use mono=True or make the stems agree")
        return min(lengths), n_ch

    # ------------------------------------------------------------------ public info

    @property
    def songs(self) -> list[str]:
        """Song names in index order."""
        return list(self._names)

    def audio_files(self) -> list[Path]:
        """Every file the dataset reads (for :meth:`AudioCache.populate`)."""
        out = {p for f in self._files for paths in f.values() for p in paths}
        return sorted(out)

    def item_paths(self, index: int) -> dict:
        """``{'mixture_path': str, 'reference_paths': {source: str}}`` of a full-song item
        (the first file when a stem is derived from parts)."""
        files = self._files[index]
        out = {"reference_paths": {s: str(files[s][0]) for s in self.sources if s in files}}
        if self.mix_name in files:
            out["mixture_path"] = str(files[self.mix_name][0])
        return out

    def __repr__(self) -> str:
        return (f"StemFolderDataset(root={str(self.root)!r}, split={self.split!r}, "
                f"layout={self.layout!r}, songs={len(self._names)}, items={len(self)}, "
                f"sources={self.sources}, excerpt_seconds={self.excerpt_seconds})")

    # ------------------------------------------------------------------ items

    def _read(self, song: int, name: str, start: int, n: int) -> np.ndarray:
        """float32 ``(channels, n)`` of stem ``name`` of ``song`` from sample ``start`` (the sum
        of its parts when derived)."""
        total = None
        for path in self._files[song][name]:
            x = self._load(path, start, n, self.mono)
            total = x if total is None else _add_padded(total, x)
        return fit(total, self._channels[song], n)

    def _read_coherent(self, track: int, start: int, n: int):
        sources = np.stack([self._read(track, name, start, n) for name in self.sources])
        return self._read(track, self.mix_name, start, n), sources

    def _read_source(self, track: int, k: int, start: int, n: int):
        return self._read(track, self.sources[k], start, n)


def _add_padded(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    n = max(a.shape[1], b.shape[1])
    ch = max(a.shape[0], b.shape[0])
    out = np.zeros((ch, n), dtype=np.float32)
    out[:, : a.shape[1]] += a
    out[:, : b.shape[1]] += b
    return out
