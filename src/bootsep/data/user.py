"""User audio without references: a file, or a folder of mixtures (searched recursively).

Folders WITH references are already read by :class:`~bootsep.data.folder.StemFolderDataset`,
with ``split=''`` when the folders sit directly under the root::

    ROOT/<mix_folder>/<song>.wav + ROOT/<source>/<song>.wav   -> layout='stem',
        mix_name='<mix_folder>', sources=[...]
    ROOT/<song>/{mixture,<source>...}.wav                     -> layout='song'

:class:`MixtureFolderDataset` covers the rest: recordings to separate (``separate``), or to run
primitive separators over, with no ground truth. Items have ``sources`` of shape
``(0, channels, samples)`` and ``.sources == ()``, so nothing tries to score them. It is not a
:class:`~bootsep.data.tracks.TrackDataset` (no stems, no excerpts, each file at its own rate
when ``sample_rate=None``); it shares the file listing
(:func:`~bootsep.data.files.find_audio_files`) and the index check
(:func:`~bootsep.data.tracks.item_index`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from bootsep.data.files import AUDIO_EXTENSIONS, find_audio_files
from bootsep.data.tracks import item_index


class MixtureFolderDataset(Dataset):
    """Mixtures without references, one item per file, in sorted path order.

    Args:
        root: an audio file or a folder (searched recursively by default).
        sample_rate: output rate in Hz (default 16000); files at other rates are resampled
            (soxr). None keeps each file's own rate (then ``sample_rate`` of an item differs).
        mono: average channels (default False: keep the file's channels).
        recursive: search sub-folders (default True).
        extensions: file types read (default wav, flac, ogg, aiff).

    Items::

        mix:         float32 (channels, samples)
        sources:     float32 (0, channels, samples)
        name:        path relative to the root, without extension ('album/song')
        index:       int
        sample_rate: int, Hz
        paths:       {'mixture_path': str}
    """

    sources: tuple[str, ...] = ()

    def __init__(self, root: str | os.PathLike, sample_rate: int | None = 16000,
                 mono: bool = False, recursive: bool = True, extensions=AUDIO_EXTENSIONS):
        from bootsep.data.audio import audio_info

        self.root = Path(root).expanduser()
        self.sample_rate = None if sample_rate is None else int(sample_rate)
        self.mono = bool(mono)
        self.files = find_audio_files(self.root, extensions, recursive)
        for f in self.files:
            audio_info(f)  # unreadable files fail now, with their name
        base = self.root.parent if self.root.is_file() else self.root
        self._names = [str(f.relative_to(base).with_suffix("")) for f in self.files]

    def __repr__(self) -> str:
        return (f"MixtureFolderDataset(root={str(self.root)!r}, files={len(self.files)}, "
                f"sample_rate={self.sample_rate}, mono={self.mono})")

    def __len__(self) -> int:
        return len(self.files)

    def item_names(self) -> list[str]:
        return list(self._names)

    def audio_files(self) -> list[Path]:
        return list(self.files)

    def __getitem__(self, index: int) -> dict:
        from bootsep.data.audio import audio_info, load_audio

        index = item_index(index, len(self))
        path = self.files[index]
        mix = load_audio(path, sample_rate=self.sample_rate, mono=self.mono)
        rate = self.sample_rate or audio_info(path)[0]
        return {
            "mix": torch.from_numpy(np.ascontiguousarray(mix)),
            "sources": torch.zeros((0, *mix.shape), dtype=torch.float32),
            "name": self._names[index],
            "index": index,
            "sample_rate": rate,
            "paths": {"mixture_path": str(path)},
        }
