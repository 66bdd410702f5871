"""Self-describing checkpoints, written atomically.

A checkpoint is one ``torch.save``'d dict:

    model          {'class', 'args', 'state_dict'} from ``SeparationModel.serialize()``
    stft           STFT parameters (window_length, hop_length, window_type)
    sample_rate    Hz the model was trained at
    source_labels  names of the model's output sources, in order
    optimizer, scheduler, engine, rng, history, loss_weights, handlers   training state
    gin_config     the operative gin config of the run that wrote it
    best_val_loss, epoch, iteration, created

``checkpoints/latest.pth`` is written at every epoch end, ``checkpoints/best.pth`` whenever the
validation loss is the lowest so far. Rerunning the same command resumes from ``latest.pth``.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import numpy as np
import torch

from ..utils.errors import UserError
from ..utils.io import atomic_torch_save

CHECKPOINT_NAMES = ("latest", "best")


def checkpoint_path(run_dir: str | Path, which: str = "latest") -> Path:
    """``<run>/checkpoints/<which>.pth``; ``which`` is 'latest', 'best' or 'epoch<N>'."""
    return Path(run_dir) / "checkpoints" / f"{which}.pth"


def rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | Path, payload: dict) -> Path:
    """Atomically write ``payload`` (plus a timestamp) to ``path``."""
    payload = dict(payload)
    payload.setdefault("created", time.strftime("%Y-%m-%dT%H:%M:%S"))
    atomic_torch_save(payload, path)
    return Path(path)


def load_checkpoint(path: str | Path, map_location="cpu") -> dict:
    """Load a checkpoint dict; a missing or unreadable file is a :class:`UserError`."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint not found: {path} (train the run first, or point "
                        f"train.init_from_checkpoint / the separator at an existing .pth file)")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as e:  # corrupted / not a torch file
        raise UserError(f"cannot read checkpoint {path}: {e}") from e
    if not isinstance(ckpt, dict) or "model" not in ckpt:
        raise UserError(f"{path} is not a bootsep checkpoint (no 'model' entry)")
    return ckpt
