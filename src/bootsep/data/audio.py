"""Audio file I/O: partial reads with soundfile, resampling with soxr, atomic writes.

Arrays are float32 shaped ``(channels, samples)``. Offsets and durations are in seconds.
Reading never goes through torchaudio (see docs: soundfile + soxr only).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from bootsep.utils.errors import UserError

# Extra input frames read on each side of a partial read that is resampled, so the resampler's
# filter sees real context and the excerpt matches the same span of a fully resampled file.
_RESAMPLE_MARGIN_SECONDS = 0.05

_FIX_HINT = ("convert it to a 16/24-bit or float WAV or FLAC file (for example "
             "`ffmpeg -i INPUT -ac 1 OUTPUT.wav`) or remove it from the data folder")


# What soundfile raises for unreadable data (LibsndfileError is a RuntimeError subclass).
_READ_ERRORS = (RuntimeError, OSError, EOFError, TypeError)


def _check_exists(path: Path) -> None:
    if not path.exists():
        raise UserError(f"audio file not found: {path}; check the path (and the dataset root) "
                        f"or regenerate the data")
    if path.is_dir():
        raise UserError(f"expected an audio file but found a folder: {path}")


def audio_info(path: str | os.PathLike) -> tuple[int, int, int]:
    """Header of an audio file without decoding it.

    Returns:
        ``(sample_rate, frames, channels)``: rate in Hz, length in samples per channel.

    Raises:
        UserError: the file is missing or not readable audio.
    """
    import soundfile as sf

    path = Path(path)
    _check_exists(path)
    try:
        info = sf.info(str(path))
    except (*_READ_ERRORS, sf.SoundFileError) as err:
        raise UserError(f"cannot read audio file {path} ({_short(err)}); {_FIX_HINT}") from None
    return int(info.samplerate), int(info.frames), int(info.channels)


def check_same_length(infos: dict, what: str) -> None:
    """Refuse stems of one song (or utterance) whose lengths differ, naming the files.

    Args:
        infos: ``{path: (sample_rate, frames, channels)}`` as :func:`audio_info` returns them.
        what: the song, for the message (e.g. ``"song 'a' of /data/train"``).

    The rule: equal length in the files' native rate, not a tolerance after resampling. Files
    at the same rate must have exactly the same number of frames; files at different rates
    must agree to within one sample of the lower rate (``|n1/sr1 - n2/sr2| < 1/min(sr)``),
    which is as exact as two rates allow. A truncated stem therefore stops the dataset instead
    of being silently cropped to the shortest file.

    Raises:
        UserError: naming the shortest and the longest file with their lengths.
    """
    if len(infos) < 2:
        return
    items = sorted(infos.items(), key=lambda kv: kv[1][1] / kv[1][0])
    (p_short, (sr_s, n_s, _)), (p_long, (sr_l, n_l, _)) = items[0], items[-1]
    if sr_s == sr_l:
        equal = n_s == n_l
    else:
        equal = abs(n_s / sr_s - n_l / sr_l) < 1.0 / min(sr_s, sr_l)
    if not equal:
        raise UserError(f"the stems of {what} have different lengths: {p_short} has {n_s} "
                        f"samples at {sr_s} Hz ({n_s / sr_s:.3f} s) but {p_long} has {n_l} at "
                        f"{sr_l} Hz ({n_l / sr_l:.3f} s); a truncated file? re-export the stems "
                        f"at equal length (or remove the song)")


def resample(x: np.ndarray, sr_in: float, sr_out: float) -> np.ndarray:
    """``(channels, samples)`` float32 resampled from ``sr_in`` to ``sr_out`` Hz with soxr
    (HQ); the rates may be fractional (speed perturbation resamples from ``speed * sr``)."""
    if sr_in == sr_out or x.shape[-1] == 0:
        return np.ascontiguousarray(x, dtype=np.float32)
    import soxr

    y = soxr.resample(np.ascontiguousarray(np.asarray(x, dtype=np.float32).T), sr_in, sr_out,
                      quality="HQ")
    if y.ndim == 1:
        y = y[:, None]
    return np.ascontiguousarray(y.T, dtype=np.float32)


def load_audio(path: str | os.PathLike, sample_rate: int | None = None, mono: bool = False,
               offset: float = 0.0, duration: float | None = None) -> np.ndarray:
    """Decode (part of) an audio file.

    Args:
        path: any format libsndfile reads (WAV, FLAC, OGG, AIFF, ...).
        sample_rate: output rate in Hz; the file is resampled with soxr (HQ) when it differs.
            ``None`` (default) keeps the file's rate.
        mono: average the channels into one (default False).
        offset: start in seconds (default 0.0); only the needed frames are read from disk.
        duration: length in seconds (default None = to the end of the file).

    Returns:
        float32 array ``(channels, samples)`` (``channels == 1`` when ``mono``). With
        ``duration`` the output has exactly ``round(duration * rate)`` samples unless the file
        ends first, in which case it is shorter (never padded).

    Raises:
        UserError: the file is missing or not readable audio.
    """
    import soundfile as sf

    path = Path(path)
    file_sr, frames, _channels = audio_info(path)
    out_sr = int(sample_rate) if sample_rate else file_sr
    if offset < 0 or (duration is not None and duration < 0):
        raise ValueError(f"offset and duration must be >= 0, got {offset}, {duration}")

    start_out = int(round(offset * out_sr))
    want_out = None if duration is None else int(round(duration * out_sr))
    resampled = out_sr != file_sr

    # Frames to read in the file's rate. When resampling, the read starts on a frame that maps
    # to a whole output sample (multiple of file_sr / gcd) and a context margin is added.
    if resampled:
        g = math.gcd(file_sr, out_sr)
        step_in, step_out = file_sr // g, out_sr // g
        margin = _RESAMPLE_MARGIN_SECONDS * file_sr
        block = max(0, int(np.floor((start_out * file_sr / out_sr - margin) / step_in)))
        read_start = block * step_in
        skip = start_out - block * step_out
    else:
        read_start = start_out
        skip = 0
        margin = 0
    if want_out is None:
        read_stop = frames
    else:
        stop = int(np.ceil((start_out + want_out) * file_sr / out_sr + margin))
        read_stop = min(frames, stop)
    read_start = min(read_start, frames)

    try:
        data, _ = sf.read(str(path), start=read_start, stop=max(read_start, read_stop),
                          dtype="float32", always_2d=True)
    except (*_READ_ERRORS, sf.SoundFileError) as err:
        raise UserError(f"cannot decode audio file {path} ({_short(err)}); {_FIX_HINT}") from None

    if mono and data.shape[1] > 1:
        data = data.mean(axis=1, keepdims=True, dtype=np.float32)
    audio = np.ascontiguousarray(data.T, dtype=np.float32)
    if resampled and audio.shape[1] > 0:
        audio = resample(audio, file_sr, out_sr)
    audio = audio[:, skip:]
    if want_out is not None:
        audio = audio[:, :want_out]
    return np.ascontiguousarray(audio)


def save_audio(path: str | os.PathLike, audio: np.ndarray, sample_rate: int,
               subtype: str = "FLOAT") -> None:
    """Write ``audio`` (``(channels, samples)`` or ``(samples,)``) as WAV, atomically.

    ``subtype`` is a libsndfile subtype: ``"FLOAT"`` (default, lossless for float32) or
    ``"PCM_16"``/``"PCM_24"``.
    """
    from bootsep.utils.io import atomic_write_audio

    atomic_write_audio(path, audio, sample_rate, subtype=subtype)


def _short(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__
