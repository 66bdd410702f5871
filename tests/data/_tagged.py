"""Helpers for the data tests: tiny folders whose stems encode (song, sample index).

A tagged stem of song ``k`` holds ``scale * ((k + 1) / 64 + n / 2**20)`` at sample ``n``
(``n < 16384``), exactly representable in float32, so any sample tells which song and which
time it came from.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bootsep.data.audio import save_audio

SCALES = {"vocals": 1.0, "accompaniment": 2.0, "drums": 0.5, "bass": 0.25, "other": 0.125}


def tag_signal(song: int, n: int, scale: float = 1.0) -> np.ndarray:
    return (scale * ((song + 1) / 64 + np.arange(n) / 2**20)).astype(np.float32)


def decode_tag(x: np.ndarray, scale: float = 1.0) -> tuple[int, int]:
    """(song, start sample) of a tagged excerpt ``x`` (1-D)."""
    v = float(x[0]) / scale
    song = int(np.floor(v * 64 + 1e-9)) - 1
    start = int(round((v - (song + 1) / 64) * 2**20))
    # the rest of the excerpt must be the continuation of that tag
    ref = tag_signal(song, start + len(x), scale)[start:]
    assert np.array_equal(x, ref), "excerpt is not a contiguous span of one tagged stem"
    return song, start


def write_tagged(root: Path, split: str = "train", n_songs: int = 6, seconds: float = 1.0,
                 sr: int = 16000, layout: str = "song", names=None,
                 stems=("vocals", "accompaniment")) -> Path:
    """Tagged stems plus ``mixture`` = their sum, in the song or stem layout."""
    n = int(seconds * sr)
    names = names or [f"song{k:02d}" for k in range(n_songs)]
    for k, name in enumerate(names):
        audio = {s: tag_signal(k, n, SCALES[s]) for s in stems}
        audio["mixture"] = np.sum([audio[s] for s in stems], axis=0, dtype=np.float32)
        for stem, x in audio.items():
            path = (root / split / name / f"{stem}.wav" if layout == "song"
                    else root / split / stem / f"{name}.wav")
            save_audio(path, x, sr)
    return root
