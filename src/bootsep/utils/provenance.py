"""Provenance: how a run folder came to be (command, git state, versions, device, times)."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

from .io import atomic_write_json

PACKAGES = ("bootsep", "torch", "numpy", "scipy", "librosa", "gin-config", "pytorch-ignite",
            "scikit-learn", "soundfile", "soxr", "pandas", "museval", "musdb")


def git_state(cwd: str | Path | None = None) -> dict:
    """``{'commit': sha or None, 'dirty': bool or None}`` of the repository containing ``cwd``."""
    cwd = str(cwd or Path(__file__).resolve().parent)
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True,
                             timeout=5)
        if sha.returncode != 0:
            return {"commit": None, "dirty": None}
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                                capture_output=True, text=True, timeout=5)
        return {"commit": sha.stdout.strip(), "dirty": bool(status.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def package_versions() -> dict:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def device_info() -> dict:
    import torch

    info = {"cpu_count": os.cpu_count(), "cuda": torch.cuda.is_available(),
            "torch_threads": torch.get_num_threads(), "platform": platform.platform()}
    if torch.cuda.is_available():
        info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        info["CUDA_VISIBLE_DEVICES"] = os.environ.get("CUDA_VISIBLE_DEVICES")
    return info


class Provenance:
    """Appends one record per command invocation to ``<run>/provenance.json``.

    Usage::

        with Provenance(run_dir, command="train", argv=sys.argv):
            ...
    """

    def __init__(self, run_dir: str | Path, command: str, argv=None, configs=()):
        self.path = Path(run_dir) / "provenance.json"
        self.record = {
            "command": command,
            "argv": list(argv if argv is not None else sys.argv),
            "cwd": os.getcwd(),
            "configs": [str(Path(c).resolve()) for c in configs],
            "git": git_state(),
            "versions": package_versions(),
            "device": device_info(),
            "start": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "end": None,
            "status": "running",
        }

    def _load(self) -> list:
        if self.path.is_file():
            try:
                data = json.loads(self.path.read_text())
                return data.get("invocations", []) if isinstance(data, dict) else []
            except (OSError, json.JSONDecodeError):
                return []
        return []

    def _write(self) -> None:
        runs = [r for r in self._load() if r.get("start") != self.record["start"]
                or r.get("command") != self.record["command"]]
        runs.append(self.record)
        atomic_write_json(self.path, {"invocations": runs})

    def __enter__(self):
        self._write()
        return self

    def __exit__(self, exc_type, exc, tb):
        self.record["end"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        self.record["status"] = "ok" if exc_type is None else f"failed: {exc_type.__name__}"
        self._write()
        return False
