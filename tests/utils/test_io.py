"""Atomic writes give their files the permissions a plain open() would: the user's umask for a
new file, the old file's mode for a replaced one (mkstemp alone gives 0600)."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest

from bootsep.utils.io import (
    atomic_torch_save,
    atomic_write_audio,
    atomic_write_json,
    atomic_write_text,
    current_umask,
)


@pytest.fixture
def umask():
    def _set(mask):
        os.umask(mask)
        return mask

    old = os.umask(0o022)
    os.umask(old)
    yield _set
    os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("mask", [0o022, 0o002, 0o077])
def test_new_files_follow_the_umask(tmp_path, umask, mask):
    umask(mask)
    assert current_umask() == mask
    atomic_write_text(tmp_path / "a.txt", "x")
    atomic_write_json(tmp_path / "b.json", {"a": 1})
    atomic_write_audio(tmp_path / "c.wav", np.zeros(16, dtype=np.float32), 8000)
    atomic_torch_save({"a": 1}, tmp_path / "d.pth")
    for name in ("a.txt", "b.json", "c.wav", "d.pth"):
        assert _mode(tmp_path / name) == 0o666 & ~mask, name
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    assert _mode(tmp_path / "a.txt") == _mode(plain)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left


def test_a_replaced_file_keeps_its_mode(tmp_path, umask):
    umask(0o022)
    path = tmp_path / "shared.txt"
    path.write_text("old")
    os.chmod(path, 0o664)
    atomic_write_text(path, "new")
    assert path.read_text() == "new" and _mode(path) == 0o664
