"""Atomic file writes (temp file in the same folder + rename), used for every output, and the
one safe reader of torch files (:func:`safe_torch_load`: plain data only, never code).

A file written here gets the permissions a plain ``open(path, 'w')`` would give it: those of the
file it replaces, else ``0o666`` less the process umask (``mkstemp`` alone would leave 0600).
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

from .errors import UserError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None):
    """Yield a temporary path next to ``path``; on success rename it over ``path``.

    On error the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix or path.suffix or ".tmp",
                               dir=path.parent)
    try:
        with contextlib.suppress(OSError):  # best effort on filesystems without modes
            os.fchmod(fd, _target_mode(path))
    finally:
        os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def current_umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux ``/proc``)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    old = os.umask(0o022)  # elsewhere: set and restore (not thread-safe, but brief)
    os.umask(old)
    return old


def _target_mode(path: Path) -> int:
    """Mode bits for a new ``path``: those of the file it replaces, else 0o666 & ~umask."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return 0o666 & ~current_umask()


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def atomic_write_json(path: str | os.PathLike, obj: Any, indent: int = 2) -> None:
    atomic_write_text(path, json.dumps(obj, indent=indent, sort_keys=False, default=_json_default) + "\n")


def atomic_write_audio(path: str | os.PathLike, audio, sample_rate: int, subtype: str = "FLOAT") -> None:
    """Write ``audio`` shaped ``(channels, samples)`` or ``(samples,)`` as WAV, atomically."""
    import numpy as np
    import soundfile as sf

    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 2:
        audio = audio.T  # soundfile wants (samples, channels)
    with atomic_path(path, suffix=".wav") as tmp:
        sf.write(str(tmp), audio, int(sample_rate), subtype=subtype, format="WAV")


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    import torch

    with atomic_path(path, suffix=".pth") as tmp:
        torch.save(obj, tmp)


class PickledFileError(UserError, ValueError):
    """A torch file that needs Python objects (pickled code) to load; :func:`safe_torch_load`
    refuses it. The message names the file and the opt-in converter."""


def safe_torch_load(path: str | os.PathLike, map_location="cpu"):
    """``torch.load(path, weights_only=True)``: tensors and plain containers only, never code.

    Raises :class:`PickledFileError` when the file names Python objects to rebuild (an old
    bootsep checkpoint holding numpy arrays, or a hostile file): nothing in it has run. Other
    read errors (truncated, not a torch file) raise ``ValueError``; a missing file
    ``FileNotFoundError``.
    """
    import pickle
    import warnings

    import torch

    try:
        with warnings.catch_warnings():  # e.g. "pickle protocol 4": the error below says enough
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
        glob = next((ln for ln in lines if "GLOBAL" in ln), None)
        if glob is not None:
            raise PickledFileError(
                f"refusing to load {path}: it needs pickled Python objects "
                f"({glob.split(' was not')[0]}), and bootsep never runs code from a file; if it "
                f"is a checkpoint from an older bootsep and you trust it, convert it once with "
                f"python main.py convert --checkpoint {path} --output NEW.pth --trust (converting "
                f"runs the file's code, so only for files you trust)") from None
        detail = next((ln for ln in lines if ln.startswith("Unsupported")), lines[-1] if lines else "")
        raise ValueError(f"not a readable torch file ({detail})") from None


def _json_default(o):
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    try:
        import torch

        if isinstance(o, torch.Tensor):
            return o.detach().cpu().tolist()
    except ImportError:  # pragma: no cover
        pass
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
