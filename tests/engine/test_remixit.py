"""RemixIT: remix targets are exactly the permuted teacher estimates; resume is exact."""

from __future__ import annotations

import pytest
import torch

from bootsep.dsp import STFT
from bootsep.engine.checkpoint import checkpoint_path, load_checkpoint
from bootsep.engine.remixit import RemixIT, remix_batch
from bootsep.models.recurrent import MaskInference
from bootsep.utils.errors import UserError

from conftest import tiny_config
from conftest import train_config as _train


def test_remix_batch_permutes_every_source_but_the_first():
    est = torch.arange(4 * 3 * 5, dtype=torch.float32).reshape(4, 3, 5)
    g = torch.Generator().manual_seed(0)
    mix, sources = remix_batch(est, g)
    g = torch.Generator().manual_seed(0)
    perms = [torch.arange(4)] + [torch.randperm(4, generator=g) for _ in range(2)]
    for b in range(4):
        for k in range(3):
            assert torch.equal(sources[b, k], est[perms[k][b], k])
    assert torch.equal(mix, sources.sum(1))
    assert torch.equal(sources[:, 0], est[:, 0])


class _FakeEngineState:
    epoch = 1


class _FakeTrainer:
    """What the handler reads from the trainer."""

    def __init__(self, model, iteration=7):
        self.raw_model = model
        self.device = torch.device("cpu")
        self.stft = STFT(window_length=64, hop_length=16)
        self.iteration = iteration
        self.iteration_scalars = {}
        self.handlers = []
        self.engine = type("E", (), {"state": _FakeEngineState()})()


def _model():
    torch.manual_seed(0)
    return MaskInference(num_features=33, hidden_size=8, num_layers=1, num_sources=2, dropout=0.0)


def test_cached_teacher_estimates_are_remixed_exactly():
    h = RemixIT(update="frozen", seed=5)
    trainer = _FakeTrainer(_model())
    h.attach(trainer)
    sources = torch.randn(4, 2, 1, 256)
    batch = {"mix": sources.sum(1), "sources": sources, "name": ["a", "b", "c", "d"]}
    out = h.before_step(trainer, batch)
    g = torch.Generator().manual_seed(5 * 1_000_003 + 7)
    want_mix, want_sources = remix_batch(sources, g)
    assert torch.equal(out["sources"], want_sources)
    assert torch.equal(out["mix"], want_mix)
    assert out["name"] == batch["name"]
    with pytest.raises(UserError, match="teacher"):
        h.before_step(trainer, {"mix": torch.randn(4, 1, 256)})


def test_deep_teacher_estimates_are_remixed_exactly():
    trainer = _FakeTrainer(_model())
    h = RemixIT(update="frozen", teacher_start_epoch=0, seed=1)
    h.attach(trainer)
    assert h.teacher is not None and h.teacher is not trainer.raw_model
    mix = torch.randn(3, 1, 256)
    est = h.teacher_estimates(trainer, mix)
    assert est.shape == (3, 2, 1, 256)
    out = h.before_step(trainer, {"mix": mix})
    g = torch.Generator().manual_seed(1 * 1_000_003 + 7)
    _, want = remix_batch(est, g)
    torch.testing.assert_close(out["sources"], want)
    torch.testing.assert_close(out["mix"], want.sum(1))


def test_ema_and_replace_updates():
    student = _model()
    trainer = _FakeTrainer(student)
    ema = RemixIT(update="ema", ema_decay=0.5, teacher_start_epoch=0)
    ema.attach(trainer)
    before = [p.clone() for p in ema.teacher.parameters()]
    with torch.no_grad():
        for p in student.parameters():
            p.add_(1.0)
    ema.after_iteration(trainer, {})
    for t, b, s in zip(ema.teacher.parameters(), before, student.parameters()):
        torch.testing.assert_close(t, 0.5 * b + 0.5 * s)
    rep = RemixIT(update="replace", replace_every=2, teacher_start_epoch=0)
    rep.attach(trainer)
    with torch.no_grad():
        for p in student.parameters():
            p.add_(1.0)
    trainer.engine.state.epoch = 1
    rep.after_validation(trainer, {})
    assert not torch.equal(next(rep.teacher.parameters()), next(student.parameters()))
    trainer.engine.state.epoch = 2
    rep.after_validation(trainer, {})
    assert torch.equal(next(rep.teacher.parameters()), next(student.parameters()))
    for bad in ({"update": "sometimes"}, {"ema_decay": 1.0}, {"replace_every": 0}):
        with pytest.raises(UserError):
            RemixIT(**bad)


def test_remixit_resume_matches_uninterrupted_run(tmp_path, tiny_demo):
    """The student becomes the teacher after epoch 1 (EMA after that); a run killed in epoch 3
    and resumed ends with the same student AND teacher as an uninterrupted one."""
    cfg = tmp_path / "c.gin"
    cfg.write_text(tiny_config(tiny_demo, **{
        "train.handlers": "['autoclip', 'remixit']",
        "train.loss_dictionary": "{'mi': {'class': 'L1Loss', 'weight': 1.0}}",
        "RemixIT.update": "'ema'", "RemixIT.ema_decay": 0.9, "RemixIT.teacher_start_epoch": 1,
        "RemixIT.seed": 2}))
    full, broken = tmp_path / "full", tmp_path / "broken"
    _train(cfg, full)
    _train(cfg, broken, crash_at=10)  # epoch_length 4: dies in epoch 3, after the hand-over
    assert load_checkpoint(checkpoint_path(broken, "latest"))["epoch"] == 2
    _train(cfg, broken)
    a = load_checkpoint(checkpoint_path(full, "latest"))
    b = load_checkpoint(checkpoint_path(broken, "latest"))
    assert a["epoch"] == b["epoch"] == 3
    ta, tb = a["handlers"]["remixit"], b["handlers"]["remixit"]
    assert ta["teacher"] is not None and ta["teacher_updates"] == tb["teacher_updates"] == 1
    for k, v in a["model"]["state_dict"].items():
        torch.testing.assert_close(v, b["model"]["state_dict"][k], rtol=1e-5, atol=1e-6)
    for k, v in ta["teacher"]["state_dict"].items():
        torch.testing.assert_close(v, tb["teacher"]["state_dict"][k], rtol=1e-5, atol=1e-6)
        # the EMA teacher is neither the student nor frozen at the hand-over
    assert not all(torch.equal(v, a["model"]["state_dict"][k])
                   for k, v in ta["teacher"]["state_dict"].items())
