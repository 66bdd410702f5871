"""Open-Unmix-style model: structure, eval-mode BatchNorm semantics, dB input, mask activations,
the optional embedding head."""

from __future__ import annotations

import pytest
import torch

from bootsep.dsp.features import amplitude_to_db
from bootsep.models.openunmix import OpenUnmix

F = 33


def _mag(batch=3, frames=10, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, frames, F, generator=g) ** 2 + 1e-4


def _model(**kw):
    base = dict(num_features=F, num_sources=2, hidden_size=8, num_layers=2, dropout=0.0)
    base.update(kw)
    torch.manual_seed(0)
    return OpenUnmix(**base)


def _warm(model, n=5):
    """Move BatchNorm running statistics away from their initial values."""
    model.train()
    with torch.no_grad():
        for i in range(n):
            model(_mag(seed=10 + i))
    return model.eval()


def test_structure_at_reference_size():
    m = OpenUnmix(add_embedding=True)
    assert m.fc1.in_features == 257 and m.fc1.out_features == 300 and m.fc1.bias is None
    assert m.rnn.rnn.hidden_size == 150 and m.rnn.rnn.num_layers == 4 and m.rnn.output_size == 300
    assert m.fc2.in_features == 600 and m.fc3.out_features == 257 * 2
    assert m.embedding_head.linear.out_features == 257 * 20
    uni = _model(bidirectional=False, hidden_size=7)
    assert uni.rnn.rnn.hidden_size == 7 and uni.rnn.output_size == 7
    with pytest.raises(ValueError, match="even"):
        _model(hidden_size=7)


def test_eval_outputs_do_not_depend_on_the_batch():
    """In eval(), BatchNorm uses running statistics: an example's output is the same alone or
    in a batch; in train() it is not (batch statistics)."""
    model = _warm(_model())
    mag = _mag()
    with torch.no_grad():
        together = model(mag)["mask"]
        alone = model(mag[1:2])["mask"]
    torch.testing.assert_close(together[1:2], alone)
    model.train()
    with torch.no_grad():
        together, alone = model(mag)["mask"], model(mag[1:2])["mask"]
    assert not torch.allclose(together[1:2], alone)


def test_db_input_is_gain_invariant_linear_input_is_not():
    mag = _mag()
    gain = torch.tensor([5.0, 0.1, 1.0]).view(3, 1, 1)
    model = _warm(_model(log_input=True))
    torch.testing.assert_close(model.input_features(mag), amplitude_to_db(mag))
    with torch.no_grad():
        torch.testing.assert_close(model(mag)["mask"], model(mag * gain)["mask"])
    lin = _warm(_model(log_input=False))
    torch.testing.assert_close(lin.input_features(mag), mag)
    with torch.no_grad():
        assert not torch.allclose(lin(mag)["mask"][:2], lin(mag * gain)["mask"][:2])


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "softmax", "clamp"])
def test_mask_activations(activation):
    model = _warm(_model(mask_activation=activation, num_sources=3))
    with torch.no_grad():
        m = model(_mag())["mask"]
    assert (m >= 0).all()
    if activation == "softmax":
        torch.testing.assert_close(m.sum(1), torch.ones(3, 10, F))
    if activation in ("sigmoid", "clamp"):
        assert (m <= 1).all()
    if activation == "relu":
        assert (m == 0).any() and (m > 0).any()


def test_output_scaler_and_embedding_head():
    model = _warm(_model(add_embedding=True, embedding_size=5, mask_activation="relu"))
    mag = _mag()
    with torch.no_grad():
        out = model(mag)
        torch.testing.assert_close(out["embedding"].norm(dim=-1), torch.ones(3, 10, F))
        # the output scaler multiplies source 1 of the pre-activation mask; relu(2x) = 2 relu(x)
        model.output_scale[1].mul_(2.0)
        out2 = model(mag)
    torch.testing.assert_close(out2["mask"][:, 1], 2 * out["mask"][:, 1])
    torch.testing.assert_close(out2["mask"][:, 0], out["mask"][:, 0])
    torch.testing.assert_close(out2["embedding"], out["embedding"])
    assert "embedding" not in _model()(mag)


@pytest.mark.parametrize("bad", [dict(mask_activation="tanh"), dict(num_sources=0),
                                 dict(embedding_activation="swish", add_embedding=True)])
def test_invalid_arguments(bad):
    with pytest.raises(ValueError):
        _model(**bad)
