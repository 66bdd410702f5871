"""Recordings cut into overlapping segments, and loudness gating (ITU-R BS.1770 LUFS).

A *recording* is one mixture file, optionally with reference stems; a *segment* is a span of
it at the separator's sample rate. The segment plan of a recording of ``n`` samples with
``segment`` and ``hop`` samples (:func:`segment_bounds`):

- starts at ``0, hop, 2 hop, ...`` while the segment fits in the file;
- the last segment ends exactly at the end of the file (one more start at ``n - segment`` is
  added when the regular grid does not land there); no duplicate, none past the end;
- a recording no longer than one segment gives the single segment ``[0, n)``.

Recordings are found in three layouts (:func:`find_recordings`)::

    song layout:  FOLDER/<song>/<mix_name>.wav  (+ FOLDER/<song>/<source>.wav references)
    stem layout:  FOLDER/<mix_name>/<song>.wav  (+ FOLDER/<source>/<song>.wav references)
    plain:        FOLDER/**/*.{wav,flac,ogg,aiff}  (no references)

A reference named in :data:`bootsep.data.files.DERIVED` (``accompaniment``) that is missing on
disk is summed from its parts (``drums + bass + other``).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..data.files import (
    AUDIO_EXTENSIONS,
    DERIVED,
    find_audio,
    is_audio_file,
    list_audio_files,
    subfolders,
)
from ..utils.errors import UserError


# ----------------------------------------------------------------------------- segment plan
def segment_bounds(num_samples: int, segment_samples: int, hop_samples: int) -> list[tuple[int, int]]:
    """``[(start, stop), ...]`` sample spans covering a recording (module docstring).

    Args:
        num_samples: length of the recording (samples); 0 gives no segment.
        segment_samples: segment length (samples, > 0).
        hop_samples: distance between consecutive starts (samples, > 0; larger than
            ``segment_samples`` leaves gaps, except that the last segment still ends at the end).
    """
    num_samples, segment_samples, hop_samples = int(num_samples), int(segment_samples), int(hop_samples)
    if segment_samples <= 0 or hop_samples <= 0:
        raise ValueError(f"segment ({segment_samples}) and hop ({hop_samples}) must be > 0 samples")
    if num_samples <= 0:
        return []
    if num_samples <= segment_samples:
        return [(0, num_samples)]
    last = num_samples - segment_samples
    starts = list(range(0, last + 1, hop_samples))
    if starts[-1] != last:
        starts.append(last)
    return [(s, s + segment_samples) for s in starts]


# ----------------------------------------------------------------------------- recordings
@dataclass(frozen=True)
class Recording:
    """One mixture file and its reference stems.

    Attributes:
        name: file-name-safe name, unique within its collection.
        mixture: path of the mixture file.
        references: ``{source: (path, ...)}`` (several paths are summed); empty when the
            recording has no references.
        collection: the collection it belongs to (organize can filter on it).
    """

    name: str
    mixture: Path
    references: dict = field(default_factory=dict)
    collection: str = ""


def safe_name(text: str) -> str:
    """File-name-safe version of ``text``: letters, digits, ``._-+()`` and spaces kept, every
    other character (``/`` included) becomes ``_``, and leading dots become ``_``, so the result
    is one plain, visible path component (never ``.``, ``..`` or a hidden file)."""
    name = re.sub(r"[^A-Za-z0-9._ ()+-]", "_", str(text)).strip()
    name = re.sub(r"^\.+", lambda m: "_" * len(m.group()), name)
    return name or "item"


def _references(locate, sources: Sequence[str]) -> dict:
    refs = {}
    for s in sources:
        p = locate(s)
        if p is not None:
            refs[s] = (p,)
            continue
        parts = [locate(x) for x in DERIVED.get(s, ())]
        if parts and all(parts):
            refs[s] = tuple(parts)
        else:
            return {}
    return refs


def find_recordings(folder: str | os.PathLike, collection: str | None = None,
                    mix_name: str = "mixture",
                    sources: Sequence[str] | None = ("accompaniment", "vocals")) -> list[Recording]:
    """Every recording under ``folder`` (a folder in one of the module's layouts, or one file).

    Args:
        folder: the folder (or a single audio file).
        collection: collection name (default: the folder's name).
        mix_name: mixture stem name in the song / stem layouts (default ``'mixture'``).
        sources: reference names looked up next to each mixture (default accompaniment,
            vocals); a recording gets references only when all of them are found.
            ``None`` or ``()`` = never use references.

    Raises:
        UserError: the folder does not exist or holds no audio file.
    """
    folder = Path(folder)
    if not folder.exists():
        raise UserError(f"recordings folder not found: {folder}; check the path (or the "
                        f"environment variable that sets it)")
    coll = safe_name(collection if collection is not None else
                     (folder.stem if folder.is_file() else folder.resolve().name))
    sources = tuple(sources or ())
    if folder.is_file():
        if not is_audio_file(folder):
            raise UserError(f"{folder} is not an audio file ({', '.join(AUDIO_EXTENSIONS)})")
        return [Recording(safe_name(folder.stem), folder, {}, coll)]
    subdirs = subfolders(folder)
    recs: list[Recording] = []
    mix_dir = folder / mix_name
    mix_files = list_audio_files(mix_dir, recursive=False) if mix_dir.is_dir() else []
    if mix_files:  # stem layout
        for p in mix_files:
            refs = _references(lambda s, stem=p.stem: find_audio(folder / s, stem), sources)
            recs.append(Recording(safe_name(p.stem), p, refs, coll))
    elif any(find_audio(d, mix_name) for d in subdirs):  # song layout
        for d in subdirs:
            mix = find_audio(d, mix_name)
            if mix is None:
                continue
            refs = _references(lambda s, d=d: find_audio(d, s), sources)
            recs.append(Recording(safe_name(d.name), mix, refs, coll))
    else:  # plain folder of recordings
        for p in list_audio_files(folder):
            rel = p.relative_to(folder).with_suffix("")
            recs.append(Recording(safe_name("__".join(rel.parts)), p, {}, coll))
    if not recs:
        raise UserError(f"no audio files ({', '.join(AUDIO_EXTENSIONS)}) found in {folder}")
    return recs


# ----------------------------------------------------------------------------- segments
@dataclass(frozen=True)
class Segment:
    """A span ``[start, stop)`` (samples at ``sample_rate``) of a recording.

    ``name`` = ``'<collection>--<recording>--<offset>'`` with the offset in seconds
    (``0012.500``): unique, sortable and file-name safe.
    """

    recording: Recording
    start: int
    stop: int
    sample_rate: int

    @property
    def name(self) -> str:
        rec = self.recording
        head = f"{rec.collection}--{rec.name}" if rec.collection else rec.name
        return f"{head}--{self.start / self.sample_rate:08.3f}"

    @property
    def offset(self) -> float:
        """Start in seconds."""
        return self.start / self.sample_rate

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return (self.stop - self.start) / self.sample_rate


def recording_length(rec: Recording, sample_rate: int) -> int:
    """Length of ``rec`` in samples at ``sample_rate``.

    The mixture and its references must have the same length (a truncated stem is a
    :class:`~bootsep.utils.errors.UserError` naming the files, not a crop to the shortest; see
    :func:`~bootsep.data.audio.check_same_length`)."""
    from ..data.audio import audio_info, check_same_length

    paths = [rec.mixture, *(p for ps in rec.references.values() for p in ps)]
    infos = {p: audio_info(p) for p in paths}
    check_same_length(infos, f"recording {rec.name!r} ({rec.mixture.parent})")
    return min(int(frames * int(sample_rate) // sr) for sr, frames, _ in infos.values())


def plan_segments(recordings: Iterable[Recording], sample_rate: int, segment_length: float = 30.0,
                  hop_length: float = 15.0) -> list[Segment]:
    """Segments of every recording, in order (recording, then start).

    Args:
        recordings: from :func:`find_recordings`.
        sample_rate: the separator's rate (Hz); spans are in samples at this rate.
        segment_length: seconds (default 30.0, the reference setting).
        hop_length: seconds between starts (default 15.0).

    Raises:
        UserError: non-positive lengths, or two recordings giving the same segment name.
    """
    if not segment_length or segment_length <= 0 or not hop_length or hop_length <= 0:
        raise UserError(f"segment_length ({segment_length}) and hop_length ({hop_length}) must "
                        f"be positive numbers of seconds")
    sr = int(sample_rate)
    seg_n = max(1, int(round(segment_length * sr)))
    hop_n = max(1, int(round(hop_length * sr)))
    out: list[Segment] = []
    seen: dict[str, Recording] = {}
    for rec in recordings:
        key = f"{rec.collection}--{rec.name}"
        if key in seen:
            raise UserError(f"two recordings are both named {rec.name!r} in collection "
                            f"{rec.collection!r}: {seen[key].mixture} and {rec.mixture}; give "
                            f"the folders different collection names")
        seen[key] = rec
        n = recording_length(rec, sr)
        out.extend(Segment(rec, a, b, sr) for a, b in segment_bounds(n, seg_n, hop_n))
    return out


def read_segment(seg: Segment, mono: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """Decode one segment: ``(mix (channels, samples), references (n_src, channels, samples)
    or None)``, float32 at ``seg.sample_rate``; only the segment's frames are read.

    The output has exactly ``seg.stop - seg.start`` samples (zero-padded if a file is short);
    mono files are repeated to the mixture's channel count.
    """
    from ..data.audio import load_audio

    n = seg.stop - seg.start

    def read(path):
        x = load_audio(path, sample_rate=seg.sample_rate, mono=mono, offset=seg.offset,
                       duration=n / seg.sample_rate)
        out = np.zeros((x.shape[0], n), dtype=np.float32)
        out[:, : min(n, x.shape[1])] = x[:, :n]
        return out

    mix = read(seg.recording.mixture)
    if not seg.recording.references:
        return mix, None
    refs = []
    for paths in seg.recording.references.values():
        total = None
        for p in paths:
            x = read(p)
            total = x if total is None else total + x
        if total.shape[0] != mix.shape[0]:
            total = np.broadcast_to(total[:1], mix.shape)
        refs.append(total)
    return mix, np.stack(refs).astype(np.float32, copy=False)


# ----------------------------------------------------------------------------- loudness
def k_weighting(sample_rate: int) -> np.ndarray:
    """BS.1770 K-weighting at any rate as second-order sections ``(2, 6)``.

    Stage 1 is the +4 dB high shelf, stage 2 the RLB high-pass. Both are re-derived from the
    analogue prototypes that reproduce the standard's 48 kHz table (shelf: f0 1681.97 Hz,
    gain 4.00 dB, Q 0.7072; high-pass: f0 38.135 Hz, Q 0.5003) with the bilinear transform, so
    the filter is exact at 48 kHz and correct at other rates.
    """
    fs = float(sample_rate)
    k = math.tan(math.pi * 1681.974450955533 / fs)
    q = 0.7071752369554196
    vh = 10 ** (3.999843853973347 / 20)
    vb = vh ** 0.4996667741545416
    a0 = 1 + k / q + k * k
    shelf = [(vh + vb * k / q + k * k) / a0, 2 * (k * k - vh) / a0, (vh - vb * k / q + k * k) / a0,
             1.0, 2 * (k * k - 1) / a0, (1 - k / q + k * k) / a0]
    k = math.tan(math.pi * 38.13547087602444 / fs)
    q = 0.5003270373238773
    a0 = 1 + k / q + k * k
    high_pass = [1.0, -2.0, 1.0, 1.0, 2 * (k * k - 1) / a0, (1 - k / q + k * k) / a0]
    return np.array([shelf, high_pass])


def integrated_loudness(audio: np.ndarray, sample_rate: int, block_seconds: float = 0.4,
                        overlap: float = 0.75) -> float:
    """Gated integrated loudness (ITU-R BS.1770-4) in LUFS.

    Args:
        audio: ``(channels, samples)`` or ``(samples,)``, full scale = 1.0. Every channel has
            weight 1 (mono / stereo).
        sample_rate: Hz.
        block_seconds, overlap: gating blocks (default 400 ms, 75 % overlap). A signal shorter
            than one block is measured as a single block.

    Returns:
        LUFS; ``-inf`` for digital silence (or when every block is under the -70 LUFS gate).
        A full-scale 997 Hz sine in one channel reads -3.01 LUFS.
    """
    from scipy.signal import sosfilt

    x = np.asarray(audio, dtype=np.float64)
    if x.ndim == 1:
        x = x[None]
    if x.shape[-1] == 0:
        return -math.inf
    y = sosfilt(k_weighting(sample_rate), x, axis=-1)
    sq = (y ** 2).sum(axis=0)  # channel-weighted (all 1) sum of squares per sample
    n_block = int(round(block_seconds * sample_rate))
    step = max(1, int(round(n_block * (1 - overlap))))
    if sq.shape[0] <= n_block:
        z = np.array([sq.mean()])
    else:
        csum = np.concatenate([[0.0], np.cumsum(sq)])
        starts = np.arange(0, sq.shape[0] - n_block + 1, step)
        z = (csum[starts + n_block] - csum[starts]) / n_block
    with np.errstate(divide="ignore"):
        lk = -0.691 + 10 * np.log10(z)
    keep = lk > -70.0
    if not keep.any():
        return -math.inf
    rel = -0.691 + 10 * np.log10(z[keep].mean()) - 10.0
    keep &= lk > rel
    return float(-0.691 + 10 * np.log10(z[keep].mean()))
