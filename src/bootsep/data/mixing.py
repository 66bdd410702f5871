"""On-the-fly remixing: coherent / incoherent mixtures with per-source gain jitter.

A :class:`Remixer` only decides WHAT to mix (which song, where, how loud) from a generator
that the dataset seeds per item (``numpy.random.default_rng([seed, index])``), so an item is
the same in every worker and run. The dataset maps each source NAME to that song's stem file
explicitly; paths are never derived by string replacement.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SourcePick:
    """Where one source of a mixture comes from.

    Attributes:
        song: index into the dataset's song list.
        start: first sample, at the dataset's sample rate.
        gain_db: gain applied to the source (0.0 = as on disk).
        speed: playback-rate factor (1.0 = as on disk): ``ceil(n * speed)`` samples from
            ``start`` are resampled to the excerpt's ``n`` samples, so tempo and pitch rise
            together for ``speed > 1`` (a tape played faster).
    """

    song: int
    start: int
    gain_db: float = 0.0
    speed: float = 1.0


@dataclass(frozen=True)
class MixPlan:
    """One mixture: ``picks[k]`` says where source ``k`` comes from."""

    coherent: bool
    picks: tuple[SourcePick, ...]


def draw_excerpt(rng: np.random.Generator, lengths: Sequence[int], n_samples: int,
                 song: int | None = None) -> tuple[int, int]:
    """Draw ``(song, start)`` uniformly: a song, then a start so the excerpt fits.

    Args:
        lengths: song lengths in samples.
        n_samples: excerpt length in samples; songs shorter than that start at 0.
        song: fixed song (only the start is drawn) or None (default) to draw it too.
    """
    if song is None:
        song = int(rng.integers(len(lengths)))
    start = int(rng.integers(0, max(0, int(lengths[song]) - int(n_samples)) + 1))
    return song, start


class Remixer:
    """Coherent / incoherent remixing with gain jitter, deterministic per item.

    Args:
        balance: probability in [0, 1] of an INCOHERENT mixture, where each source comes from a
            different random song (distinct songs while there are enough) and its own random
            offset; otherwise the mixture is COHERENT: all sources from one song and the same
            time span. Default 0.0 (always coherent).
        gain_jitter_db: each source gets a gain drawn uniformly in ``[-g, +g]`` dB. Default 0.0.
        speed_range: speed perturbation ``r`` in [0, 0.5): each source of an incoherent
            mixture (all sources of a coherent one, together) plays at a rate drawn uniformly
            in ``[1 - r, 1 + r]`` (:attr:`SourcePick.speed`; pitch and tempo move together,
            ±10 % is about ±1.7 semitones: a different voice or instrument register for the
            network, the vocal-tract-length perturbation of speech recognition). Default 0.0.

    Every plan draws the same sequence of random numbers (coin, then picks, then gains, then
    speeds when ``speed_range > 0``), so a plan depends only on the generator's seed, and
    plans without speed perturbation are those of earlier versions.
    """

    def __init__(self, balance: float = 0.0, gain_jitter_db: float = 0.0,
                 speed_range: float = 0.0):
        if not 0.0 <= float(balance) <= 1.0:
            raise ValueError(f"balance must be in [0, 1], got {balance}")
        if float(gain_jitter_db) < 0:
            raise ValueError(f"gain_jitter_db must be >= 0, got {gain_jitter_db}")
        if not 0.0 <= float(speed_range) < 0.5:
            raise ValueError(f"speed_range must be in [0, 0.5), got {speed_range} (0.1 = "
                             "rates 0.9-1.1)")
        self.balance = float(balance)
        self.gain_jitter_db = float(gain_jitter_db)
        self.speed_range = float(speed_range)

    def __repr__(self) -> str:
        return (f"Remixer(balance={self.balance}, gain_jitter_db={self.gain_jitter_db}, "
                f"speed_range={self.speed_range})")

    def plan(self, rng: np.random.Generator, lengths: Sequence[int], n_samples: int,
             n_sources: int) -> MixPlan:
        """Decide one mixture.

        Args:
            rng: the item's generator.
            lengths: length in samples of every song of the dataset.
            n_samples: excerpt length in samples.
            n_sources: number of sources in the mixture.
        """
        n_songs = len(lengths)
        if n_songs == 0:
            raise ValueError("cannot remix an empty dataset")
        incoherent = bool(rng.random() < self.balance)
        if incoherent:
            songs = rng.choice(n_songs, size=n_sources, replace=n_songs < n_sources)
            spans = [draw_excerpt(rng, lengths, n_samples, song=int(s)) for s in songs]
        else:
            spans = [draw_excerpt(rng, lengths, n_samples)] * n_sources
        if self.gain_jitter_db > 0:
            gains = rng.uniform(-self.gain_jitter_db, self.gain_jitter_db, size=n_sources)
        else:
            gains = np.zeros(n_sources)
        speeds = np.ones(n_sources)
        if self.speed_range > 0:
            r = self.speed_range
            speeds = rng.uniform(1 - r, 1 + r, size=n_sources if incoherent else 1)
            speeds = np.broadcast_to(speeds, (n_sources,))
        picks = tuple(SourcePick(int(s), int(t), float(g), float(v))
                      for (s, t), g, v in zip(spans, gains, speeds))
        return MixPlan(coherent=not incoherent, picks=picks)
