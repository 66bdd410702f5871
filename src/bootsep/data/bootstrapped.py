"""Training data made by bootstrapping: an ``organize`` destination as a remixing dataset.

``organize`` writes ``FOLDER/<label>/<segment>.wav`` (one estimate per source label, e.g. the
primitive ensemble's ``accompaniment`` and ``vocals``), which is the stem layout of
:class:`~bootsep.data.folder.StemFolderDataset`. This class reads it as such, always remixing
(the mixture of an item is the sum of its sources), so it is configured exactly like the
ground-truth training data::

    train/BootstrappedDataset.folder = '/data/bootstrap/above_q2'
    train/BootstrappedDataset.excerpt_seconds = 2.0
    train/BootstrappedDataset.balance = 0.2     # probability of an incoherent mixture
    train/build_dataset.dataset = @train/BootstrappedDataset()
"""

from __future__ import annotations

import os
from pathlib import Path

from ..utils.errors import UserError
from .files import subfolders
from .folder import StemFolderDataset
from .mixing import Remixer


def folder_labels(folder: str | os.PathLike) -> tuple[str, ...]:
    """Source labels of an organize destination: its non-hidden sub-folders, sorted."""
    return tuple(d.name for d in subfolders(Path(folder)))


class BootstrappedDataset(StemFolderDataset):
    """Random excerpts of bootstrapped sources, remixed on the fly.

    Args:
        folder: an ``organize`` destination (``<label>/<segment>.wav`` + ``manifest.csv``).
        sources: labels to use, in output order (default: every label folder, sorted, i.e.
            ``('accompaniment', 'vocals')`` for the primitive ensemble).
        balance: probability of an INCOHERENT mixture (sources from different segments);
            default 0.0 = always the segment's own sources. Ignored when ``remix`` is given.
        gain_jitter_db: per-source gain drawn in ``[-g, g]`` dB (default 0.0).
        speed_range: per-source speed perturbation in ``[1 - r, 1 + r]`` (default 0.0; see
            :class:`~bootsep.data.mixing.Remixer`).
        remix: a :class:`~bootsep.data.mixing.Remixer` (default ``Remixer(balance,
            gain_jitter_db, speed_range)``); the three options above are then ignored.
        sample_rate, mono, excerpt_seconds (default 2.0), num_items, seed, cache,
        silence_db, max_retries: as :class:`~bootsep.data.folder.StemFolderDataset`.
        channel: read this channel of multichannel estimates alone (e.g. ``0``: one microphone
            of a spatial teacher's separations, for a single-channel student); default None
            (``mono`` decides).

    Items are those of :class:`~bootsep.data.folder.StemFolderDataset` (``mix`` =
    ``sources.sum(0)``); ``name`` is the segment name (``a+b`` when incoherent).
    """

    def __init__(self, folder: str | os.PathLike, sources: tuple[str, ...] | list[str] | None = None,
                 sample_rate: int = 16000, mono: bool = True, excerpt_seconds: float = 2.0,
                 num_items: int | None = None, seed: int = 0, balance: float = 0.0,
                 gain_jitter_db: float = 0.0, speed_range: float = 0.0,
                 remix: Remixer | None = None, cache=None,
                 silence_db: float = -60.0, max_retries: int = 5, channel: int | None = None):
        folder = Path(folder)
        if channel is not None and (isinstance(channel, bool) or not isinstance(channel, int)
                                    or channel < 0):
            raise UserError(f"BootstrappedDataset.channel must be None or a channel index >= 0, "
                            f"got {channel!r}")
        self.channel = channel
        if not folder.is_dir():
            raise UserError(f"bootstrapped data folder not found: {folder}; build it with "
                            "`main.py organize` (or fix BootstrappedDataset.folder)")
        if not (folder / "manifest.csv").is_file():
            raise UserError(f"{folder} has no manifest.csv: it is not an organize output")
        if sources is None:
            sources = folder_labels(folder)
        if excerpt_seconds is None:
            raise UserError("BootstrappedDataset needs excerpt_seconds (items are remixed)")
        self.folder = folder
        super().__init__(root=folder.parent, split=folder.name, sources=tuple(sources),
                         sample_rate=sample_rate, mono=mono and channel is None,
                         excerpt_seconds=excerpt_seconds,
                         num_items=num_items, seed=seed,
                         remix=remix if remix is not None else Remixer(balance, gain_jitter_db,
                                                                       speed_range),
                         cache=cache, layout="stem", silence_db=silence_db,
                         max_retries=max_retries)
        if channel is not None and channel >= min(self._channels):
            raise UserError(f"BootstrappedDataset.channel = {channel} but {folder} holds "
                            f"{min(self._channels)}-channel estimates")

    def _read(self, song: int, name: str, start: int, n: int):
        x = super()._read(song, name, start, n)
        return x if self.channel is None else x[self.channel:self.channel + 1]

    def __repr__(self) -> str:
        return (f"BootstrappedDataset(folder={str(self.folder)!r}, segments={len(self.songs)}, "
                f"items={len(self)}, sources={self.sources}, remix={self.remix!r})")
