"""WHAM! (and wsj0-2mix-style) folder reader.

Layout (as the WHAM! generation scripts write it)::

    ROOT/wav8k|wav16k/min|max/tr|cv|tt/{mix_clean,mix_both,mix_single,s1,s2,noise}/<utt>.wav

Tasks (the names of the WHAM! scripts, with their short aliases):

================== ============ ===================== =======================================
task               mixture      sources (labels)      files of the sources
================== ============ ===================== =======================================
separate-clean     mix_clean    s1, s2                s1, s2
separate-noisy     mix_both     s1, s2                s1, s2  (mixture = s1 + s2 + noise)
enhance-single     mix_single   speech, noise         s1, noise
enhance-both       mix_both     speech, noise         mix_clean, noise
================== ============ ===================== =======================================

(aliases ``sep_clean``, ``sep_noisy``, ``enh_single``, ``enh_both``). The enhancement tasks
keep the noise as a second source so that the mixture is the sum of the sources, which mask
models and the training targets need; score ``speech`` alone for enhancement numbers.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from bootsep.data.files import list_audio_files
from bootsep.data.mixing import Remixer
from bootsep.data.tracks import TrackDataset, fit
from bootsep.utils.errors import UserError

#: task -> (mixture folder, ((label, folder), ...))
WHAM_TASKS: dict[str, tuple[str, tuple[tuple[str, str], ...]]] = {
    "separate-clean": ("mix_clean", (("s1", "s1"), ("s2", "s2"))),
    "separate-noisy": ("mix_both", (("s1", "s1"), ("s2", "s2"))),
    "enhance-single": ("mix_single", (("speech", "s1"), ("noise", "noise"))),
    "enhance-both": ("mix_both", (("speech", "mix_clean"), ("noise", "noise"))),
}
TASK_ALIASES = {"sep_clean": "separate-clean", "sep_noisy": "separate-noisy",
                "enh_single": "enhance-single", "enh_both": "enhance-both"}
SPLIT_ALIASES = {"train": "tr", "valid": "cv", "val": "cv", "test": "tt"}
WHAM_LAYOUT = ("the expected layout is ROOT/wav8k|wav16k/min|max/tr|cv|tt/"
               "{mix_clean,mix_both,mix_single,s1,s2,noise}/<utt>.wav")


def wham_folder(root: str | os.PathLike, split: str = "tr", mode: str = "min",
                sample_rate: int = 8000) -> Path:
    """``ROOT/wav{8,16}k/<mode>/<split>`` (split aliases train/valid/test accepted)."""
    split = SPLIT_ALIASES.get(split, split)
    if split not in ("tr", "cv", "tt"):
        raise UserError(f"WHAM! split must be 'tr', 'cv' or 'tt' (or train/valid/test), "
                        f"got {split!r}")
    if mode not in ("min", "max"):
        raise UserError(f"WHAM! mode must be 'min' or 'max', got {mode!r}")
    if int(sample_rate) not in (8000, 16000):
        raise UserError(f"WHAM! comes at 8000 or 16000 Hz (wav8k / wav16k), got "
                        f"sample_rate={sample_rate}")
    return Path(root) / f"wav{int(sample_rate) // 1000}k" / mode / split


def _wav_names(folder: Path) -> list[str]:
    return sorted(p.stem for p in list_audio_files(folder, (".wav",), recursive=False))


def check_wham_folder(split_dir: str | os.PathLike, folders, check_lengths: bool = True,
                      sample_rate: int | None = None) -> tuple[list[str], list[int]]:
    """Check that ``folders`` of ``split_dir`` hold the same utterances, of equal lengths.

    Args:
        split_dir: e.g. ``ROOT/wav8k/min/tr``.
        folders: sub-folder names; the first is the reference (the mixture).
        check_lengths: read every header and compare lengths and sample rates (default True).
        sample_rate: the rate every file must have (None = do not check).

    Returns:
        ``(names, lengths)``: sorted utterance names and their lengths in samples (lengths are
        read from the reference folder only when ``check_lengths`` is False).

    Raises:
        UserError: naming the first missing, extra, mismatched or unreadable file.
    """
    from bootsep.data.audio import audio_info

    split_dir = Path(split_dir)
    if not split_dir.is_dir():
        raise UserError(f"WHAM! folder not found: {split_dir}; {WHAM_LAYOUT} "
                        f"(set WHAM_ROOT to the folder holding wav8k/)")
    folders = list(dict.fromkeys(folders))
    listing = {}
    for f in folders:
        d = split_dir / f
        if not d.is_dir():
            raise UserError(f"WHAM! folder missing: {d}; {WHAM_LAYOUT}")
        listing[f] = _wav_names(d)
    ref = folders[0]
    names = listing[ref]
    if not names:
        raise UserError(f"no .wav files in {split_dir / ref}; {WHAM_LAYOUT}")
    ref_set = set(names)
    for f in folders[1:]:
        have = set(listing[f])
        missing = [n for n in names if n not in have]
        if missing:
            raise UserError(f"WHAM! file missing: {split_dir / f / (missing[0] + '.wav')} "
                            f"(the mixture {split_dir / ref / (missing[0] + '.wav')} has no "
                            f"{f} file; {len(missing)} missing in {split_dir / f})")
        extra = [n for n in listing[f] if n not in ref_set]
        if extra:
            raise UserError(f"WHAM! file {split_dir / f / (extra[0] + '.wav')} has no mixture "
                            f"{split_dir / ref / (extra[0] + '.wav')} ({len(extra)} such files "
                            f"in {split_dir / f})")
    lengths = []
    for n in names:
        ref_path = split_dir / ref / f"{n}.wav"
        sr, frames, _ = audio_info(ref_path)
        if sample_rate is not None and sr != int(sample_rate):
            raise UserError(f"WHAM! file {ref_path} is at {sr} Hz but {split_dir} should hold "
                            f"{sample_rate} Hz audio")
        if check_lengths:
            for f in folders[1:]:
                p = split_dir / f / f"{n}.wav"
                sr_f, frames_f, _ = audio_info(p)
                if sr_f != sr:
                    raise UserError(f"WHAM! sample-rate mismatch: {p} is at {sr_f} Hz, its "
                                    f"mixture {ref_path} at {sr} Hz")
                if frames_f != frames:
                    raise UserError(f"WHAM! length mismatch: {p} has {frames_f} samples, its "
                                    f"mixture {ref_path} has {frames}")
        lengths.append(frames)
    return names, lengths


class WHAMDataset(TrackDataset):
    """WHAM! utterances as whole items (evaluation) or seeded random excerpts (training).

    Args:
        root: WHAM! root (holds ``wav8k/`` and/or ``wav16k/``); e.g. ``%WHAM_ROOT``.
        split: ``'tr'``, ``'cv'`` or ``'tt'`` (aliases ``train``/``valid``/``test``); default 'tr'.
        task: see the module table (default ``'separate-clean'``).
        mode: ``'min'`` (default) or ``'max'``.
        sample_rate: 8000 (default, ``wav8k``) or 16000 (``wav16k``), in Hz.
        excerpt_seconds: None (default) = whole utterances in sorted order; otherwise random
            excerpts of this many seconds (item ``i`` from ``default_rng([seed, i])``),
            zero-padded when the utterance is shorter.
        num_items: dataset length (default = number of utterances; caps whole-utterance mode).
        seed: base seed of the per-item generators (default 0).
        remix: a :class:`~bootsep.data.mixing.Remixer` (excerpt mode only): sources picked from
            different utterances (incoherent) or the same one, with gain jitter; the mixture is
            their sum. Not allowed for ``separate-noisy`` (its mixture is not the sum).
        cache: an :class:`~bootsep.data.cache.AudioCache` or its folder (default None).
        min_seconds: drop utterances shorter than this (default None: keep all).
        check_lengths: compare every file's header with its mixture's at construction
            (default True; False only checks the file lists).
        silence_db, max_retries: redraw excerpts quieter than ``silence_db`` dBFS up to
            ``max_retries`` times (defaults -60, 5).
        channel: for multichannel folders (e.g. made by
            :func:`~bootsep.data.spatialize.spatialize_wham`): None (default) averages the
            channels, an int ``c`` reads channel ``c`` alone (a single microphone), ``'all'``
            reads every channel (``channels`` = the mixture files' count, for a spatial
            separator).
        sources: names given to the task's sources, in order (default None = the task's:
            ``s1, s2`` or ``speech, noise``), e.g. ``['source0', 'source1']`` to validate a model
            trained on a bootstrapped folder with those labels.

    Items (mono, ``channels == 1``, unless ``channel = 'all'``)::

        mix: (1, samples) float32; sources: (2, 1, samples); name: utterance id; index;
        offset, offsets, gains_db, coherent (as StemFolderDataset);
        paths (whole utterances): {'mixture_path': str, 'reference_paths': {label: str}}

    Raises:
        UserError: bad arguments, or a folder whose file lists or lengths disagree (naming the
        first missing or mismatched file).
    """

    def __init__(self, root: str | os.PathLike, split: str = "tr",
                 task: str = "separate-clean", mode: str = "min", sample_rate: int = 8000,
                 excerpt_seconds: float | None = None, num_items: int | None = None,
                 seed: int = 0, remix: Remixer | None = None, cache=None,
                 min_seconds: float | None = None, check_lengths: bool = True,
                 silence_db: float = -60.0, max_retries: int = 5,
                 channel: int | str | None = None, sources=None):
        task = TASK_ALIASES.get(task, task)
        if task not in WHAM_TASKS:
            raise UserError(f"unknown WHAM! task {task!r}; choose from {sorted(WHAM_TASKS)} "
                            f"(or {sorted(TASK_ALIASES)})")
        if remix is not None and task == "separate-noisy":
            raise UserError("remix is not available for task 'separate-noisy' (its mixture "
                            "holds noise that is not a source); use 'separate-clean' or "
                            "'enhance-both', or remove remix")
        self.root = Path(root)
        if not (channel is None or channel == "all"
                or (isinstance(channel, int) and not isinstance(channel, bool) and channel >= 0)):
            raise UserError(f"WHAMDataset.channel must be None (average), a channel index >= 0 "
                            f"or 'all', got {channel!r}")
        self.channel = channel
        self.mono = channel != "all"
        self.task = task
        self.mode = mode
        self.split_dir = wham_folder(root, split, mode, sample_rate)
        self.split = self.split_dir.name
        self.mix_folder, pairs = WHAM_TASKS[task]
        self.source_folders = tuple(f for _, f in pairs)
        names, lengths = check_wham_folder(self.split_dir, (self.mix_folder, *self.source_folders),
                                           check_lengths=check_lengths,
                                           sample_rate=sample_rate)
        n_ch = 1
        if names and channel is not None:
            from bootsep.data.audio import audio_info

            have = audio_info(self.split_dir / self.mix_folder / f"{names[0]}.wav")[2]
            if channel != "all" and channel >= have:
                raise UserError(f"WHAMDataset.channel = {channel} but "
                                f"{self.split_dir / self.mix_folder} holds {have}-channel files")
            n_ch = have if channel == "all" else 1
        self._setup(names=names, lengths=lengths, channels=[n_ch] * len(names),
                    sources=self._source_names(pairs, sources), sample_rate=sample_rate,
                    excerpt_seconds=excerpt_seconds, num_items=num_items, seed=seed,
                    remix=remix, silence_db=silence_db, max_retries=max_retries, cache=cache,
                    min_seconds=min_seconds, where=str(self.split_dir))

    @staticmethod
    def _source_names(pairs, sources) -> list[str]:
        if sources is None:
            return [label for label, _ in pairs]
        names = [str(x) for x in ([sources] if isinstance(sources, str) else sources)]
        if len(names) != len(pairs) or len(set(names)) != len(names):
            raise UserError(f"WHAMDataset.sources = {sources!r}: give {len(pairs)} distinct names "
                            f"(the task's sources are {[label for label, _ in pairs]})")
        return names

    def __repr__(self) -> str:
        return (f"WHAMDataset(root={str(self.root)!r}, split={self.split!r}, task={self.task!r}, "
                f"mode={self.mode!r}, sample_rate={self.sample_rate}, "
                f"utterances={len(self._names)}, items={len(self)}, sources={self.sources}, "
                f"excerpt_seconds={self.excerpt_seconds})")

    @property
    def utterances(self) -> list[str]:
        """Utterance ids in index order."""
        return list(self._names)

    def _path(self, track: int, folder: str) -> Path:
        return self.split_dir / folder / f"{self._names[track]}.wav"

    def audio_files(self) -> list[Path]:
        """Every file the dataset reads (for :meth:`AudioCache.populate`)."""
        return [self._path(t, f) for t in range(len(self._names))
                for f in (self.mix_folder, *self.source_folders)]

    def _read(self, path: Path, start: int, n: int) -> np.ndarray:
        x = self._load(path, start, n, mono=self.channel is None)
        if isinstance(self.channel, int):
            x = x[min(self.channel, x.shape[0] - 1):][:1]  # a mono file (noise) has channel 0 only
        return fit(x, self._channels[0] if self._channels else 1, n)

    def _read_coherent(self, track: int, start: int, n: int):
        mix = self._read(self._path(track, self.mix_folder), start, n)
        sources = np.stack([self._read(self._path(track, f), start, n)
                            for f in self.source_folders])
        return mix, sources

    def _read_source(self, track: int, k: int, start: int, n: int):
        return self._read(self._path(track, self.source_folders[k]), start, n)

    def item_paths(self, track: int) -> dict:
        return {"mixture_path": str(self._path(track, self.mix_folder)),
                "reference_paths": {label: str(self._path(track, f))
                                    for label, f in zip(self.sources, self.source_folders)}}
