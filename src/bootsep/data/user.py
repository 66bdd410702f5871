"""User audio without references: a file, or a folder of mixtures (searched recursively).

Folders WITH references are already read by :class:`~bootsep.data.folder.StemFolderDataset`,
with ``split=''`` when the folders sit directly under the root::

    ROOT/<mix_folder>/<song>.wav + ROOT/<source>/<song>.wav   -> layout='stem',
        mix_name='<mix_folder>', sources=[...]
    ROOT/<song>/{mixture,<source>...}.wav                     -> layout='song'

:class:`MixtureFolderDataset` covers the rest: recordings to separate (``separate``), or to run
primitive separators over, with no ground truth. Items have ``sources`` of shape
``(0, channels, samples)`` and ``.sources == ()``, so nothing tries to score them.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from bootsep.utils.errors import UserError

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".aiff", ".aif")


def find_audio_files(root: str | os.PathLike, extensions=AUDIO_EXTENSIONS,
                     recursive: bool = True) -> list[Path]:
    """Audio files under ``root`` (or ``[root]`` for a file), sorted; hidden names skipped.

    Raises:
        UserError: ``root`` does not exist, has an unsupported extension, or holds no audio.
    """
    root = Path(root).expanduser()
    exts = tuple(e.lower() if e.startswith(".") else f".{e.lower()}" for e in extensions)
    if root.is_file():
        if root.suffix.lower() not in exts:
            raise UserError(f"{root}: unsupported audio file type {root.suffix!r}; use one of "
                            f"{list(exts)} (convert with `ffmpeg -i IN OUT.wav`)")
        return [root]
    if not root.is_dir():
        raise UserError(f"input not found: {root} (give an audio file or a folder of them)")
    pattern = "**/*" if recursive else "*"
    files = sorted(p for p in root.glob(pattern)
                   if p.is_file() and p.suffix.lower() in exts
                   and not any(part.startswith(".") for part in p.relative_to(root).parts))
    if not files:
        raise UserError(f"no audio files ({', '.join(exts)}) in {root}"
                        f"{'' if recursive else ' (not searched recursively)'}")
    return files


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

        index = int(index)
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
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
