"""Shared fixtures: a tiny procedurally generated MUSDB-layout dataset and tiny run configs."""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def tiny_demo(tmp_path_factory) -> Path:
    """A few 3-second demo songs per split (train/valid/test), generated once per session."""
    from bootsep.data.demo import generate_demo_dataset

    root = tmp_path_factory.mktemp("demo")
    generate_demo_dataset(root, n_train=3, n_valid=1, n_test=2, duration=3.0, seed=0,
                          progress=False)
    return root


def tiny_config(demo_root: Path, **overrides) -> str:
    """A gin config for a very small chimera on the tiny demo set (seconds per epoch on a CPU)."""
    text = textwrap.dedent(f"""
        SOURCES = ['accompaniment', 'vocals']
        STFT.window_length = 256
        STFT.hop_length = 64
        train.sample_rate = 16000
        StemFolderDataset.root = '{demo_root}'
        StemFolderDataset.sources = %SOURCES
        StemFolderDataset.sample_rate = 16000
        StemFolderDataset.mono = True
        train/StemFolderDataset.split = 'train'
        train/StemFolderDataset.excerpt_seconds = 1.0
        train/StemFolderDataset.num_items = 40
        train/build_dataset.dataset = @train/StemFolderDataset()
        val/StemFolderDataset.split = 'valid'
        val/StemFolderDataset.excerpt_seconds = 1.0
        val/StemFolderDataset.num_items = 2
        val/build_dataset.dataset = @val/StemFolderDataset()
        test/StemFolderDataset.split = 'test'
        test/build_dataset.dataset = @test/StemFolderDataset()
        train.model = @Chimera
        Chimera.num_features = 129
        Chimera.hidden_size = 16
        Chimera.num_layers = 1
        Chimera.dropout = 0.0
        Chimera.embedding_size = 4
        Chimera.num_sources = 2
        train.loss_dictionary = {{'mi': {{'class': 'L1Loss', 'weight': 1.0}},
                                  'dc': {{'class': 'DeepClusteringLoss', 'weight': 0.01}}}}
        train.optimizer = @torch.optim.Adam
        torch.optim.Adam.lr = 1e-3
        train.scheduler = @torch.optim.lr_scheduler.ReduceLROnPlateau
        train.handlers = ['autoclip', 'lr_scheduler']
        train.batch_size = 2
        train.num_epochs = 3
        train.epoch_length = 4
        train.num_workers = 0
        train.progress = False
        evaluate.separator = @deep_separator()
        deep_separator.checkpoint = 'latest'
        evaluate.num_workers = 1
        evaluate.progress = False
    """)
    for k, v in overrides.items():
        text += f"\n{k} = {v}"
    return text + "\n"


@pytest.fixture
def write_config(tmp_path, tiny_demo):
    def _write(name="tiny.gin", **overrides) -> Path:
        p = tmp_path / name
        p.write_text(tiny_config(tiny_demo, **overrides))
        return p

    return _write


def run_main(args, cwd=None, env=None, timeout=600):
    """Run ``python main.py ARGS`` in a subprocess; returns CompletedProcess."""
    import subprocess

    e = dict(os.environ)
    e.update(env or {})
    e.setdefault("PYTHONUNBUFFERED", "1")
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *map(str, args)], cwd=cwd or ROOT,
                          env=e, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(autouse=True)
def _clear_gin():
    """Each test starts from an empty gin config."""
    import gin

    gin.clear_config()
    yield
    gin.clear_config()


class CrashAt(Exception):
    """Raised by :func:`train_config` to simulate a crash before a given iteration."""


def train_config(cfg, run, crash_at=None):
    """Run the ``train`` command's function on config file ``cfg`` into ``run``; with
    ``crash_at`` (a 1-based iteration) the run dies just before that step, as a killed process
    would (the last epoch-end checkpoint is what a rerun resumes from)."""
    import gin

    from bootsep.cli.main import parse_configs
    from bootsep.config import experiment
    from bootsep.engine import trainer as trainer_mod

    gin.clear_config()
    parse_configs([cfg], [f"output_folder._output_folder = '{run}'"])
    if crash_at is None:
        return experiment.train()
    orig = trainer_mod.Trainer._train_step

    def step(self, engine, batch):
        if engine.state.iteration + 1 == crash_at:
            raise CrashAt()
        return orig(self, engine, batch)

    trainer_mod.Trainer._train_step = step
    try:
        with pytest.raises(CrashAt):
            experiment.train()
    finally:
        trainer_mod.Trainer._train_step = orig
