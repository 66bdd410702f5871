"""Audio files on disk: the one table of audio extensions and stem names, and the one listing.

Every dataset and the bootstrap recordings finder list files through these helpers, so
"what counts as an audio file" (a visible file whose suffix, case-insensitive, is in
:data:`AUDIO_EXTENSIONS`) and "which stems can be summed from others" (:data:`DERIVED`) are
decided in one place. Torch-free (``bootstrap.segments`` imports it without torch).
"""

from __future__ import annotations

import os
from pathlib import Path

from bootsep.utils.errors import UserError

#: audio file types read, in the order a stem's file is looked for (``<stem>.wav`` first)
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".aiff", ".aif")
#: the four MUSDB18 stems, in MUSDB's order
MUSDB_STEMS = ("vocals", "drums", "bass", "other")
#: stems that may be missing on disk and are then summed from these parts (in this order)
DERIVED = {"accompaniment": ("drums", "bass", "other"), "mixture": MUSDB_STEMS}
#: names a stem folder may have (``detect_layout`` tells the stem layout by them)
KNOWN_STEMS = frozenset({"mix", *MUSDB_STEMS, *DERIVED})


def is_audio_file(path: Path) -> bool:
    """True for a visible (name not starting with ``.``) file with an audio extension."""
    return (path.suffix.lower() in AUDIO_EXTENSIONS and not path.name.startswith(".")
            and path.is_file())


def find_audio(folder: Path, stem: str) -> Path | None:
    """``folder/<stem><ext>`` for the first extension of :data:`AUDIO_EXTENSIONS` that exists."""
    for ext in AUDIO_EXTENSIONS:
        p = folder / f"{stem}{ext}"
        if p.is_file():
            return p
    return None


def subfolders(folder: Path) -> list[Path]:
    """Visible sub-folders of ``folder``, sorted by name."""
    return sorted(d for d in Path(folder).iterdir() if d.is_dir() and not d.name.startswith("."))


def list_audio_files(folder: str | os.PathLike, extensions=AUDIO_EXTENSIONS,
                     recursive: bool = True) -> list[Path]:
    """Audio files in ``folder`` (searched recursively by default), sorted by path.

    Files or folders whose name starts with ``.`` are skipped (and everything below a hidden
    folder). ``extensions``: suffixes with or without the dot, any case (default
    :data:`AUDIO_EXTENSIONS`). Returns ``[]`` when there is none; see
    :func:`find_audio_files` for the checked version.
    """
    folder = Path(folder)
    exts = _extensions(extensions)
    pattern = "**/*" if recursive else "*"
    return sorted(p for p in folder.glob(pattern)
                  if p.suffix.lower() in exts and p.is_file()
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def find_audio_files(root: str | os.PathLike, extensions=AUDIO_EXTENSIONS,
                     recursive: bool = True) -> list[Path]:
    """Audio files under ``root`` (or ``[root]`` for a file), sorted; hidden names skipped.

    Raises:
        UserError: ``root`` does not exist, has an unsupported extension, or holds no audio.
    """
    root = Path(root).expanduser()
    exts = _extensions(extensions)
    if root.is_file():
        if root.suffix.lower() not in exts:
            raise UserError(f"{root}: unsupported audio file type {root.suffix!r}; use one of "
                            f"{list(exts)} (convert with `ffmpeg -i IN OUT.wav`)")
        return [root]
    if not root.is_dir():
        raise UserError(f"input not found: {root} (give an audio file or a folder of them)")
    files = list_audio_files(root, exts, recursive)
    if not files:
        raise UserError(f"no audio files ({', '.join(exts)}) in {root}"
                        f"{'' if recursive else ' (not searched recursively)'}")
    return files


def _extensions(extensions) -> tuple[str, ...]:
    return tuple(e.lower() if e.startswith(".") else f".{e.lower()}" for e in extensions)
