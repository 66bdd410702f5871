"""Data: audio I/O, the procedural demo-song generator, folder datasets, remixing, cache.

Names are imported lazily (PEP 562), because its torch-free modules are used without torch:
``import bootsep.data.audio`` took 0.9 s and ``import torch`` 10.5 s (2 busy cores), and ``bootstrap.organize``/``segments`` and ``prepare`` of the demo read audio
through ``data.audio``/``data.demo`` without needing torch.

Plain classes and functions, no gin. May import: utils.

- :func:`load_audio`, :func:`audio_info`, :func:`save_audio` (``data.audio``)
- :func:`generate_demo_dataset`, :func:`synthesize_song` (``data.demo``)
- :data:`AUDIO_EXTENSIONS`, :data:`DERIVED` (the stem table), :func:`find_audio_files`
  (``data.files``: the one audio-file listing, torch-free)
- :class:`TrackDataset` (``data.tracks``): the one dataset base (whole tracks or seeded
  excerpts, silence redraws, remixing); :class:`StemFolderDataset` (``data.folder``),
  :class:`BootstrappedDataset`, :class:`MUSDBDataset`, :class:`WHAMDataset` are its subclasses;
  :class:`MixtureFolderDataset` (``data.user``): unlabelled files
- :class:`Remixer` (``data.mixing``)
- :class:`AudioCache` (``data.cache``)
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "load_audio": "audio", "audio_info": "audio", "save_audio": "audio",
    "generate_demo_dataset": "demo", "synthesize_song": "demo", "DemoSong": "demo",
    "check_same_length": "audio",
    "AUDIO_EXTENSIONS": "files", "DERIVED": "files", "find_audio_files": "files",
    "TrackDataset": "tracks",
    "StemFolderDataset": "folder", "detect_layout": "folder",
    "BootstrappedDataset": "bootstrapped", "MixtureOfMixtures": "mixture_of_mixtures",
    "spatialize_wham": "spatialize",
    "Remixer": "mixing", "MixPlan": "mixing", "SourcePick": "mixing",
    "AudioCache": "cache",
    "MUSDBDataset": "musdb", "prepare_musdb": "musdb",
    "WHAMDataset": "wham", "MixtureFolderDataset": "user",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
