"""The model-zoo configs (musdb/exp/models/*.gin): they parse with their data config, their
source count matches it, and every reference-size config trains one step on the CPU."""

from __future__ import annotations

import math

import gin
import pytest
import torch

from bootsep.cli.main import parse_configs

from conftest import ROOT

MODELS_DIR = ROOT / "musdb" / "exp" / "models"
ENV = ROOT / "musdb" / "demo" / "env.gin"
DATA2 = ROOT / "musdb" / "demo" / "data.gin"
DATA4 = MODELS_DIR / "data4.gin"

# config name -> (model gin name, data config); names are those bench/models.py reports
REFERENCE = {
    "dualpath_2src": ("DualPathChimera", DATA2),
    "dualpath_4src": ("DualPathChimera", DATA4),
    "openunmix_2src": ("OpenUnmix", DATA2),
    "openunmix_4src": ("OpenUnmix", DATA4),
    "mel_baseline_2src": ("MelMaskBLSTM", DATA2),
    "mel_baseline_4src": ("MelMaskBLSTM", DATA4),
    "centroids_2src": ("ConditionalCentroids", DATA2),
    "centroids_4src": ("ConditionalCentroids", DATA4),
}
SMALL = {
    "dualpath_small": ("DualPathChimera", DATA2),
    "openunmix_small": ("OpenUnmix", DATA2),
    "mel_baseline_small": ("MelMaskBLSTM", DATA4),
    "centroids_small": ("ConditionalCentroids", DATA4),
    "centroids_em2_small": ("ConditionalCentroids", DATA4),
}

@pytest.fixture
def zoo_registry():
    """The gin registry (it lists the zoo's models and the curriculum handler itself)."""
    from bootsep.config import registry

    registry.register_all()
    return registry


def test_every_zoo_config_is_listed():
    on_disk = {p.stem for p in MODELS_DIR.glob("*.gin")} - {"data4"}
    assert on_disk == set(REFERENCE) | set(SMALL)


@pytest.mark.parametrize("name", sorted({**REFERENCE, **SMALL}))
def test_config_parses_and_matches_its_data(name, zoo_registry, monkeypatch, tmp_path):
    model_name, data = {**REFERENCE, **SMALL}[name]
    monkeypatch.setenv("BOOTSEP_DEMO_ROOT", str(tmp_path))
    parse_configs([ENV, data, MODELS_DIR / f"{name}.gin"], [])
    assert gin.query_parameter("train.model").selector == model_name
    sources = gin.query_parameter("%SOURCES")
    assert gin.query_parameter(f"{model_name}.num_sources") == len(sources)
    if name in SMALL:  # small enough for a CPU: build it and count parameters
        model = zoo_registry.configured(model_name)()
        assert model.num_sources == len(sources)
        assert sum(p.numel() for p in model.parameters()) < 2_000_000
    if "curriculum" in gin.query_parameter("train.handlers"):
        from bootsep.config.experiment import build_handler

        handler = build_handler("curriculum")
        assert handler.initial_fraction == 0.2 and handler.curriculum_fraction == 0.2


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_reference_config_trains_one_step_on_cpu(name, zoo_registry, tiny_demo, monkeypatch,
                                                 tmp_path):
    """The reference-size model, optimiser, losses and handlers run one real training step
    (batch 2 of 1 s excerpts of the tiny demo set, no validation)."""
    from bootsep.config import experiment
    from bootsep.engine.checkpoint import checkpoint_path, load_checkpoint

    model_name, data = REFERENCE[name]
    monkeypatch.setenv("BOOTSEP_DEMO_ROOT", str(tiny_demo))
    binds = ["train.batch_size = 2", "train.num_epochs = 1", "train.epoch_length = 1",
             "train.num_workers = 0", "train.progress = False", "train.device = 'cpu'",
             "train/StemFolderDataset.excerpt_seconds = 1.0",
             "train/StemFolderDataset.num_items = 4", "val/build_dataset.dataset = None"]
    parse_configs([ENV, data, MODELS_DIR / f"{name}.gin"], binds)
    history = experiment.train(output_folder=str(tmp_path))
    assert len(history) == 1 and math.isfinite(history[0]["train"]["loss"])
    ckpt = load_checkpoint(checkpoint_path(tmp_path, "latest"))
    assert ckpt["model"]["class"].endswith(model_name)
    args = ckpt["model"]["args"]
    assert args["num_features"] == 257 and args["hidden_size"] == 300
    assert args["num_sources"] == len(gin.query_parameter("%SOURCES"))
    assert all(torch.isfinite(v).all() for v in ckpt["model"]["state_dict"].values()
               if v.is_floating_point())
