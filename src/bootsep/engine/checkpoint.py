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

Trust rule: a checkpoint holds plain data only (tensors, numbers, strings, lists, tuples,
dicts: :func:`to_plain` turns numpy arrays/scalars into tensors/numbers when saving) and every
reader loads it with ``torch.load(..., weights_only=True)`` (:func:`bootsep.utils.io.safe_torch_load`),
so no code in a checkpoint ever runs. A file that needs pickled Python objects (a checkpoint
written before this rule, or a hostile one) is refused; :func:`convert_checkpoint` (``python
main.py convert --checkpoint OLD.pth --output NEW.pth --trust``) rewrites a file the user trusts.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import numpy as np
import torch

from ..utils.errors import UserError
from ..utils.io import PickledFileError, atomic_torch_save, safe_torch_load


def checkpoint_path(run_dir: str | Path, which: str = "latest") -> Path:
    """``<run>/checkpoints/<which>.pth``; ``which`` is 'latest', 'best' or 'epoch<N>'."""
    return Path(run_dir) / "checkpoints" / f"{which}.pth"


def existing_checkpoints(run_dir: str | Path) -> list[Path]:
    """The ``*.pth`` files directly in ``<run>/checkpoints`` (not ``previous/``), sorted."""
    folder = Path(run_dir) / "checkpoints"
    return sorted(p for p in folder.glob("*.pth") if p.is_file()) if folder.is_dir() else []


def move_checkpoints_aside(run_dir: str | Path) -> Path:
    """Move every checkpoint of ``<run>/checkpoints`` into ``checkpoints/previous/<n>/`` (the
    next free ``n``, from 1) and return that folder: a forced fresh start keeps them all."""
    folder = Path(run_dir) / "checkpoints"
    previous = folder / "previous"
    n = 1 + max((int(p.name) for p in previous.glob("*") if p.name.isdigit()), default=0)
    dest = previous / str(n)
    dest.mkdir(parents=True, exist_ok=False)
    for path in existing_checkpoints(run_dir):
        path.replace(dest / path.name)
    return dest


def rng_state() -> dict:
    """Every RNG's state as plain data (tensors, numbers, tuples) that loads with ``weights_only``."""
    state = {"torch": torch.get_rng_state(), "numpy": _plain_numpy_state(np.random.get_state()),
             "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _plain_numpy_state(st) -> dict:
    """``np.random.get_state()`` tuple -> dict of a name, an int64 tensor and numbers."""
    if isinstance(st, dict):
        return st
    name, keys, pos, has_gauss, cached = st
    return {"bit_generator": str(name), "keys": torch.as_tensor(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos), "has_gauss": int(has_gauss), "cached_gaussian": float(cached)}


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    st = _plain_numpy_state(state["numpy"])
    keys = st["keys"].numpy() if torch.is_tensor(st["keys"]) else np.asarray(st["keys"])
    np.random.set_state((st["bit_generator"], keys.astype(np.uint32), st["pos"],
                         st["has_gauss"], st["cached_gaussian"]))
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def to_plain(obj, where: str = "checkpoint"):
    """``obj`` with numpy arrays as tensors and numpy scalars as Python numbers (recursively).

    Tensors, ``None``, bools, ints, floats, strings, lists, tuples and dicts pass through; any
    other object raises ``TypeError`` naming its key, since it could not be loaded with
    ``weights_only=True``.
    """
    if obj is None or isinstance(obj, bool | int | float | str | bytes | torch.Tensor):
        return obj
    if isinstance(obj, np.ndarray):
        return torch.as_tensor(obj.astype(np.int64) if obj.dtype == np.uint32 else obj.copy())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        return {k: to_plain(v, f"{where}[{k!r}]") for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        items = [to_plain(v, f"{where}[{i}]") for i, v in enumerate(obj)]
        return items if isinstance(obj, list) else tuple(items)
    if isinstance(obj, torch.device | torch.dtype):
        return str(obj)
    raise TypeError(f"{where} is a {type(obj).__module__}.{type(obj).__qualname__}, which a "
                    "checkpoint cannot hold: store plain numbers/strings/lists/dicts/tensors")


def save_checkpoint(path: str | Path, payload: dict) -> Path:
    """Atomically write ``payload`` (plus a timestamp), as plain data (:func:`to_plain`), to ``path``."""
    payload = to_plain(dict(payload))
    payload.setdefault("created", time.strftime("%Y-%m-%dT%H:%M:%S"))
    atomic_torch_save(payload, path)
    return Path(path)


def load_checkpoint(path: str | Path, map_location="cpu") -> dict:
    """Load a checkpoint dict with ``weights_only=True``; a missing, unreadable or pickled
    (code-carrying) file is a :class:`UserError`. Nothing in the file runs."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint not found: {path} (train the run first, or point "
                        f"train.init_from_checkpoint / the separator at an existing .pth file)")
    try:
        ckpt = safe_torch_load(path, map_location=map_location)
    except PickledFileError:  # names the file and `main.py convert ... --trust`
        raise
    except Exception as e:  # corrupted / not a torch file
        raise UserError(f"cannot read checkpoint {path}: {e}") from e
    if not isinstance(ckpt, dict) or "model" not in ckpt:
        raise UserError(f"{path} is not a bootsep checkpoint (no 'model' entry)")
    return ckpt


def convert_checkpoint(source: str | Path, output: str | Path, trust: bool = False) -> Path:
    """Rewrite a checkpoint that needs pickles (an older bootsep's) as plain data.

    This *trusts* ``source``: it is loaded with ``weights_only=False``, which runs whatever
    code the file carries, so only convert files you made or got from someone you trust.
    ``trust`` must be True. ``output`` must not exist (nothing is overwritten); the result is
    checked to load with ``weights_only=True``.
    """
    source, output = Path(source), Path(output)
    if not trust:
        raise UserError(f"converting {source} loads it with pickle, which runs any code it holds: "
                        "pass --trust if you made the file or trust who did")
    if not source.is_file():
        raise UserError(f"checkpoint not found: {source}")
    if output.exists() or output.resolve() == source.resolve():
        raise UserError(f"{output} exists; converting never overwrites a file: choose another "
                        "--output")
    try:
        ckpt = torch.load(source, map_location="cpu", weights_only=False)
    except Exception as e:
        raise UserError(f"cannot read checkpoint {source}: {e}") from e
    if not isinstance(ckpt, dict) or "model" not in ckpt:
        raise UserError(f"{source} is not a bootsep checkpoint (no 'model' entry)")
    if isinstance(ckpt.get("rng"), dict) and "numpy" in ckpt["rng"]:
        ckpt["rng"] = dict(ckpt["rng"], numpy=_plain_numpy_state(ckpt["rng"]["numpy"]))
    try:
        ckpt = to_plain(ckpt)
    except TypeError as e:
        raise UserError(f"cannot convert {source}: {e}") from None
    atomic_torch_save(ckpt, output)
    load_checkpoint(output)  # proves it now loads without pickles
    return output
