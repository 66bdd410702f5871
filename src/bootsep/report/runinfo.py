"""What a run did, read back from its folder: model, checkpoints, training history, data, lineage.

Used by ``report.html`` (model/checkpoint summary, training curves). Reads, when present:
``evaluation.json`` (which separator and checkpoint was evaluated), the checkpoints
(``checkpoints/latest.pth`` for the full epoch history, the evaluated one for its epoch),
``lineage.json`` (fine-tuned runs) and ``config.gin`` (the training data bindings).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Parameters of a training dataset worth showing as its "source".
DATA_PARAMS = ("root", "folder", "split", "sources", "songs", "num_items", "excerpt_seconds",
               "cache", "collections", "subset", "task", "dataset")

#: State-dict entries that are buffers, not trained parameters.
_BUFFERS = re.compile(r"(running_mean|running_var|num_batches_tracked)$")


@dataclass
class RunInfo:
    """Everything the report says about how a run's model came to be (None/empty if unknown).

    ``history``: one record per epoch (``epoch``, ``lr``, ``train`` and ``validation`` loss
    dicts, as the trainer writes them).
    """

    separator: str | None = None
    evaluated_checkpoint: str | None = None
    evaluated_epoch: int | None = None
    model_class: str | None = None
    model_args: dict = field(default_factory=dict)
    num_parameters: int | None = None
    epochs_trained: int | None = None
    num_epochs: int | None = None
    best_val_loss: float | None = None
    best_epoch: int | None = None
    history: list[dict] = field(default_factory=list)
    training_data: list[str] = field(default_factory=list)
    test_data: str | None = None
    lineage: dict | None = None
    problems: list[str] = field(default_factory=list)


def _read_json(path: Path, problems: list[str]) -> Any:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        problems.append(f"{path.name} unreadable: {e}")
        return None


def count_parameters(state_dict: dict) -> int:
    """Number of trained values in a model state dict (buffers such as batch-norm running
    statistics left out)."""
    total = 0
    for name, tensor in state_dict.items():
        if _BUFFERS.search(str(name)) or not hasattr(tensor, "numel"):
            continue
        total += int(tensor.numel())
    return total


def training_data_lines(gin_text: str) -> list[str]:
    """The bindings that say what a run trained on: ``train/`` scoped dataset bindings whose
    parameter is in :data:`DATA_PARAMS` (plus ``train/build_dataset.dataset``), then the macros
    they use and the ``env_path`` bindings those macros read."""
    lines = [ln.strip() for ln in gin_text.splitlines()]
    binding = re.compile(r"^(?P<key>[\w./]+)\s*=\s*(?P<value>.+)$")
    keys = {}
    for ln in lines:
        m = binding.match(ln)
        if m:
            keys[m.group("key")] = m.group("value")
    picked = []
    for key, value in keys.items():
        if not key.startswith("train/"):
            continue
        param = key.rsplit(".", 1)[-1]
        if key == "train/build_dataset.dataset" or param in DATA_PARAMS:
            if value != "None":
                picked.append(f"{key} = {value}")
    extra = []
    for macro in sorted({m for ln in picked for m in re.findall(r"%(\w+)", ln)}):
        if macro in keys:
            extra.append(f"{macro} = {keys[macro]}")
            for scope in re.findall(r"@(\w+)/env_path", keys[macro]):
                extra += [f"{k} = {v}" for k, v in keys.items() if k.startswith(f"{scope}/env_path.")]
    return picked + extra


def _checkpoint(path: Path, problems: list[str]) -> dict | None:
    from ..engine.checkpoint import load_checkpoint
    from ..utils.errors import UserError

    try:
        return load_checkpoint(path)
    except UserError as e:
        problems.append(str(e))
        return None


def run_info(run_dir: str | Path) -> RunInfo:
    """Collect :class:`RunInfo` from ``run_dir``; missing pieces stay None, unreadable ones are
    listed in ``problems`` (never raises for a damaged file)."""
    run = Path(run_dir)
    info = RunInfo()
    evaluation = _read_json(run / "evaluation.json", info.problems) or {}
    info.separator = evaluation.get("separator")
    info.evaluated_checkpoint = evaluation.get("checkpoint")
    info.evaluated_epoch = evaluation.get("checkpoint_epoch")
    info.test_data = evaluation.get("dataset")
    info.lineage = _read_json(run / "lineage.json", info.problems)

    latest = run / "checkpoints" / "latest.pth"
    evaluated = Path(info.evaluated_checkpoint) if info.evaluated_checkpoint else None
    ckpt = _checkpoint(latest, info.problems) if latest.is_file() else None
    if ckpt is None and evaluated is not None and evaluated.is_file():
        ckpt = _checkpoint(evaluated, info.problems)
    if ckpt is not None:
        model = ckpt.get("model") or {}
        info.model_class = str(model.get("class")) if model.get("class") else None
        info.model_args = dict(model.get("args") or {})
        if isinstance(model.get("state_dict"), dict):
            info.num_parameters = count_parameters(model["state_dict"])
        info.history = list(ckpt.get("history") or [])
        info.epochs_trained = ckpt.get("epoch")
        info.num_epochs = ckpt.get("num_epochs")
        best = ckpt.get("best_val_loss")
        info.best_val_loss = float(best) if best is not None else None
        losses = [(_val_loss(h), h.get("epoch")) for h in info.history]
        losses = [(v, e) for v, e in losses if v is not None]
        if losses:
            info.best_epoch = min(losses, key=lambda t: t[0])[1]
        gin_text = ckpt.get("gin_config") or ""
    else:
        gin_text = ""
    if not gin_text and (run / "config.gin").is_file():
        gin_text = (run / "config.gin").read_text(encoding="utf-8", errors="replace")
    info.training_data = training_data_lines(gin_text)
    return info


def _val_loss(record: dict) -> float | None:
    for part in ("validation", "train"):
        value = (record.get(part) or {}).get("loss")
        if value is not None:
            return float(value)
    return None
