"""Ownership of output folders: what ``separate`` and ``organize`` may write, replace or delete.

The rule (issue 11): a command writes only inside its output folder, and replaces or deletes
only what its own record lists. ``separate`` keeps ``separate.json`` (:data:`RECORD`):
:func:`claim_output` accepts a folder that is absent, empty, or holds that record for the same
mode, and refuses any other non-empty folder, ``--force`` or not. ``organize`` keeps
``manifest.csv``; every path either command touches is first checked by
:func:`outside_reason` (relative, no ``..``, and its folder, with symlinks followed, inside the
destination), so a hostile record or a symlinked folder never leads a write or a deletion out.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..utils.errors import UserError
from ..utils.io import atomic_write_text


def outside_reason(root: Path, rel: str) -> str | None:
    """Why ``root / rel`` is not a file entry inside ``root`` (None when it is): ``rel`` must be
    relative, without ``.``/``..`` parts, and its folder, with symlinks followed, must be inside
    ``root``'s real path (the entry itself may be a link: it is the link that is touched)."""
    r = Path(str(rel))
    if not str(rel) or r.is_absolute() or any(part in ("..", ".") for part in r.parts):
        return "an absolute path, or one with '..'"
    real_root = root.resolve()
    parent = (root / r).parent.resolve()
    if parent != real_root and not parent.is_relative_to(real_root):
        return f"its folder leads to {parent} through a symlink"
    p = root / r
    if p.is_dir() and not p.is_symlink():
        return "it is a folder, not a file"
    return None


#: the folder-level record of a ``separate`` output (both modes)
RECORD = "separate.json"


def read_record(folder: str | os.PathLike) -> dict | None:
    """``<folder>/separate.json`` as a dict, None when absent.

    Raises:
        UserError: the file exists but is not a JSON object.
    """
    path = Path(folder) / RECORD
    if not path.is_file():
        return None
    try:
        rec = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise UserError(f"{path} cannot be read ({err}); it is separate's record of that folder: "
                        "restore it, or write to another --output folder") from None
    if not isinstance(rec, dict):
        raise UserError(f"{path} is not separate's record (not a JSON object); write to another "
                        "--output folder")
    return rec


def visible_entries(folder: Path) -> list[str]:
    """Names in ``folder`` other than hidden ones (temporary files of atomic writes start with
    a dot)."""
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) \
        if folder.is_dir() else []


def claim_output(out: Path, mode: str) -> dict | None:
    """Check that ``out`` may receive ``separate``'s outputs of ``mode`` ('segments' or
    'files'): it is absent, empty, or holds ``separate.json`` of the same mode. Returns that
    record (None when there is none yet).

    Raises:
        UserError: ``out`` is a file, a non-empty folder that separate did not write (the
            user's files are never replaced, ``--force`` or not), or an output of the other mode.
    """
    if out.exists() and not out.is_dir():
        raise UserError(f"separate output {out} exists and is not a folder; choose a folder")
    rec = read_record(out)
    if rec is None:
        entries = visible_entries(out)
        if entries:
            raise UserError(f"--output {out} is not empty ({', '.join(entries[:3])}"
                            f"{', ...' if len(entries) > 3 else ''}) and was not written by "
                            f"`separate` (no {RECORD}); choose a new or empty folder (nothing was "
                            "changed)")
        return None
    if ("files" in rec) != (mode == "files"):
        held, now = ("file", "segment") if "files" in rec else ("segment", "file")
        raise UserError(f"{out} holds `separate` outputs of {held} mode ({out / RECORD}); write "
                        f"this {now}-mode separation to another --output folder")
    return rec


def write_if_changed(path: Path, obj: dict) -> None:
    """Write ``obj`` as JSON atomically unless the file already holds exactly that text (shards
    of one plan write identical bytes, so concurrent writers never disagree)."""
    from ..utils.io import _json_default

    text = json.dumps(obj, indent=2, default=_json_default) + "\n"
    try:
        if path.read_text(encoding="utf-8") == text:
            return
    except OSError:
        pass
    atomic_write_text(path, text)
