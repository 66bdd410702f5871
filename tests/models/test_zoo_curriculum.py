"""Curriculum on excerpt length: the handler alone, and inside the real Trainer."""

from __future__ import annotations

import pytest
import torch

from bootsep.engine.curriculum import Curriculum


class _FakeTrainer:
    def __init__(self, iteration, num_epochs=10, epoch_length=10):
        self.iteration, self.num_epochs, self.epoch_length = iteration, num_epochs, epoch_length
        self.iteration_scalars = {}


def _batch(samples=1000):
    g = torch.Generator().manual_seed(0)
    return {"mix": torch.randn(2, 1, samples, generator=g),
            "sources": torch.randn(2, 4, 1, samples, generator=g),
            "index": torch.tensor([3, 4]), "name": ["a", "b"]}


def test_crops_the_start_during_the_first_part_only():
    cur = Curriculum(initial_fraction=0.25, curriculum_fraction=0.2)  # 100 iterations -> 20
    batch = _batch()
    for it, expected in [(1, 250), (20, 250), (21, 1000), (100, 1000)]:
        tr = _FakeTrainer(it)
        out = cur.before_step(tr, batch)
        assert out["mix"].shape == (2, 1, expected)
        assert out["sources"].shape == (2, 4, 1, expected)
        assert torch.equal(out["mix"], batch["mix"][..., :expected])
        assert torch.equal(out["sources"], batch["sources"][..., :expected])
        assert out["index"] is batch["index"] and out["name"] is batch["name"]
        assert tr.iteration_scalars["curriculum_fraction"] == expected / 1000
    assert batch["mix"].shape[-1] == 1000  # the input batch is not modified


def test_num_iterations_override_and_identity_cases():
    batch = _batch(999)
    cur = Curriculum(initial_fraction=0.5, num_iterations=3)
    assert cur.before_step(_FakeTrainer(3), batch)["mix"].shape[-1] == 500  # round(499.5)
    assert cur.before_step(_FakeTrainer(4), batch) is batch
    assert Curriculum(initial_fraction=1.0).before_step(_FakeTrainer(1), batch) is batch
    assert Curriculum(curriculum_fraction=0.0).before_step(_FakeTrainer(1), batch) is batch


def test_random_position_is_seeded_per_iteration():
    batch = _batch()
    cur = Curriculum(initial_fraction=0.1, position="random", seed=3)
    starts = []
    for it in range(1, 11):
        out = cur.before_step(_FakeTrainer(it, 100, 10), batch)
        again = Curriculum(initial_fraction=0.1, position="random", seed=3).before_step(
            _FakeTrainer(it, 100, 10), batch)
        assert torch.equal(out["mix"], again["mix"])  # a resumed run crops the same way
        # locate the crop in the original signal (first channel of the first example)
        row = batch["mix"][0, 0]
        start = next(s for s in range(0, 901) if torch.equal(row[s:s + 100], out["mix"][0, 0]))
        assert torch.equal(out["sources"], batch["sources"][..., start:start + 100])
        starts.append(start)
    assert len(set(starts)) > 5


@pytest.mark.parametrize("bad", [dict(initial_fraction=0.0), dict(initial_fraction=1.5),
                                 dict(curriculum_fraction=-0.1), dict(num_iterations=-1),
                                 dict(position="end")])
def test_invalid_arguments(bad):
    with pytest.raises(ValueError):
        Curriculum(**bad)


def test_inside_the_trainer(tmp_path):
    """Two epochs of 4 iterations with curriculum_fraction 0.5: the model sees 0.25-length
    excerpts for iterations 1-4 and full-length ones for 5-8."""
    from bootsep.dsp import STFT
    from bootsep.engine.trainer import Trainer
    from bootsep.losses.combine import LossDict
    from bootsep.models.recurrent import MaskInference

    torch.manual_seed(0)
    model = MaskInference(num_features=33, num_sources=2, hidden_size=4, num_layers=1,
                          dropout=0.0)
    frames = []
    model.register_forward_pre_hook(lambda m, args: frames.append(args[0].shape[1]))
    g = torch.Generator().manual_seed(1)
    items = [{"mix": torch.randn(1, 2048, generator=g),
              "sources": torch.randn(2, 1, 2048, generator=g)} for _ in range(8)]
    loader = torch.utils.data.DataLoader(items, batch_size=2)
    trainer = Trainer(model, LossDict({"l1": {"class": "L1Loss"}}),
                      torch.optim.Adam(model.parameters(), 1e-3), loader, tmp_path,
                      stft=STFT(64, 16), sample_rate=16000, source_labels=["a", "b"],
                      handlers=[Curriculum(initial_fraction=0.25, curriculum_fraction=0.5)],
                      num_epochs=2, epoch_length=4, tensorboard=False, progress=False)
    trainer.run()
    assert frames == [512 // 16 + 1] * 4 + [2048 // 16 + 1] * 4
