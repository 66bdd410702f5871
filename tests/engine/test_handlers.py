"""Training handlers against hand-computed expectations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bootsep.engine.handlers import AutoBalanceLoss, AutoClip, EarlyStopping, grad_norm


class _FakeTrainer:
    def __init__(self, model=None, weights=None):
        self.model = model
        self.handlers = []
        self.iteration_scalars = {}
        self.iteration = 0
        self.stopped = False

        class _L:
            pass

        self.loss_fn = _L()
        self.loss_fn.weights = dict(weights or {})

    def request_stop(self):
        self.stopped = True


def test_autoclip_clips_to_percentile_of_history():
    model = torch.nn.Linear(3, 1, bias=False)
    tr = _FakeTrainer(model)
    clip = AutoClip(clip_percentile=50)
    clip.attach(tr)
    norms = []
    for scale in [1.0, 4.0, 2.0]:
        model.weight.grad = torch.full_like(model.weight, scale)
        norms.append(grad_norm(model.parameters()))
        clip.after_backward(tr)
        expected = np.percentile(norms, 50)
        assert grad_norm(model.parameters()) == pytest.approx(min(norms[-1], expected), rel=1e-5)
    assert clip.state_dict()["history"].tolist() == pytest.approx(norms)
    other = AutoClip(50)
    other.load_state_dict(clip.state_dict())
    assert other.history == pytest.approx(norms)


def test_autoclip_rejects_bad_percentile():
    with pytest.raises(ValueError):
        AutoClip(150)


def test_auto_balance_makes_weighted_losses_match_target_ratios():
    tr = _FakeTrainer(weights={"l1": 1.0, "dc": 4.0, "monitor": 0.0})
    h = AutoBalanceLoss(ref_percentile=100, update_frequency=1)
    h.attach(tr)
    for it, (a, b) in enumerate([(2.0, 0.5), (1.0, 0.25)], start=1):
        tr.iteration = it
        h.after_iteration(tr, {"l1": a, "dc": b, "monitor": 9.0})
    w = tr.loss_fn.weights
    assert w["monitor"] == 0.0
    assert w["l1"] + w["dc"] == pytest.approx(1.0)
    # x_i * L_i / r_i equal, with L_i the max of each history (2.0 and 0.5)
    assert w["l1"] * 2.0 / 1.0 == pytest.approx(w["dc"] * 0.5 / 4.0)


def test_early_stopping_after_patience():
    tr = _FakeTrainer()
    h = EarlyStopping(patience=2)
    for loss in [1.0, 0.9, 0.95, 0.92]:
        h.after_validation(tr, {"loss": loss})
    assert tr.stopped
    tr2 = _FakeTrainer()
    h2 = EarlyStopping(patience=2)
    for loss in [1.0, 0.9, 0.95, 0.8, 0.85]:
        h2.after_validation(tr2, {"loss": loss})
    assert not tr2.stopped
