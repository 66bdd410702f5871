"""Recurrent models: shapes, activations, gradients, dropout, initialisation, mel input."""

from __future__ import annotations

import warnings

import pytest
import torch

from bootsep.dsp.features import log_magnitude_features, mel_filterbank
from bootsep.models import Chimera, DeepClustering, MaskInference
from bootsep.models.recurrent import EmbeddingHead, InputFeatures, MaskHead, RecurrentStack

F = 17  # tiny STFT: window 32


def _mag(batch=2, frames=12, freq=F, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, frames, freq, generator=g) + 1e-3


def _tiny(cls, **kw):
    base = dict(num_features=F, hidden_size=5, num_layers=2, dropout=0.0)
    if cls is not MaskInference:
        base["embedding_size"] = 3
    base.update(kw)
    return cls(**base)


@pytest.mark.parametrize("cls,keys", [(DeepClustering, ("embedding",)),
                                      (MaskInference, ("mask", "estimates")),
                                      (Chimera, ("embedding", "mask", "estimates"))])
@pytest.mark.parametrize("rnn_type,bidirectional,n_mels", [("lstm", True, None),
                                                          ("gru", False, 6)])
def test_output_keys_and_shapes(cls, keys, rnn_type, bidirectional, n_mels):
    kw = dict(rnn_type=rnn_type, bidirectional=bidirectional, n_mels=n_mels, sample_rate=8000)
    if cls is not DeepClustering:
        kw["num_sources"] = 3
    model = _tiny(cls, **kw).eval()
    mag = _mag()
    out = model(mag)
    assert tuple(sorted(out)) == tuple(sorted(keys)) and tuple(model.output_keys) == keys
    if "embedding" in keys:
        assert out["embedding"].shape == (2, 12, F, 3)
    if "mask" in keys:
        assert model.num_sources == 3
        assert out["mask"].shape == (2, 3, 12, F)
        torch.testing.assert_close(out["estimates"], out["mask"] * mag.unsqueeze(1))
    else:
        assert model.num_sources is None


def test_unit_norm_and_embedding_activations():
    mag = _mag()
    e = _tiny(DeepClustering).eval()(mag)["embedding"]
    torch.testing.assert_close(e.norm(dim=-1), torch.ones(2, 12, F))
    assert (e >= 0).all()  # sigmoid before the normalisation
    x = torch.randn(2, 12, 7)
    heads = {a: EmbeddingHead(7, F, 4, a) for a in ("sigmoid", "tanh", "relu", "softmax", "none")}
    torch.manual_seed(0)
    raw = EmbeddingHead(7, F, 4, "none")
    for head in heads.values():
        head.load_state_dict(raw.state_dict())
    z = raw(x)
    torch.testing.assert_close(heads["sigmoid"](x), torch.sigmoid(z))
    torch.testing.assert_close(heads["tanh"](x), torch.tanh(z))
    torch.testing.assert_close(heads["relu"](x), torch.relu(z))
    torch.testing.assert_close(heads["softmax"](x).sum(-1), torch.ones(2, 12, F))
    assert (z < 0).any() and not torch.allclose(heads["none"](x).norm(dim=-1), torch.ones(1))
    with pytest.raises(ValueError, match="embedding activation"):
        EmbeddingHead(7, F, 4, ("sigmoid", "l2"))


def test_mask_activations():
    x = torch.randn(2, 12, 7)
    raw = MaskHead(7, F, 3, "clamp")
    z = raw.linear(x).view(2, 12, 3, F).transpose(1, 2)
    for act in ("sigmoid", "softmax", "relu", "clamp"):
        head = MaskHead(7, F, 3, act)
        head.load_state_dict(raw.state_dict())
        m = head(x)
        assert m.shape == (2, 3, 12, F)
        ref = {"sigmoid": torch.sigmoid(z), "softmax": torch.softmax(z, dim=1),
               "relu": torch.relu(z), "clamp": z.clamp(0, 1)}[act]
        torch.testing.assert_close(m, ref)
    assert (z > 1).any() and (z < 0).any()  # the clamp/relu checks were not vacuous
    with pytest.raises(ValueError, match="mask_activation"):
        MaskHead(7, F, 3, "tanh")


@pytest.mark.parametrize("cls", [DeepClustering, MaskInference, Chimera])
def test_gradient_reaches_every_parameter(cls):
    torch.manual_seed(0)
    model = _tiny(cls, n_mels=6, sample_rate=8000, dropout=0.2).train()
    out = model(_mag())
    loss = sum(v.square().mean() if k == "embedding" else (v - 0.3).abs().mean()
               for k, v in out.items())
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert p.grad.abs().sum() > 0, name
    assert all(not b.requires_grad for b in model.buffers())


def test_dropout_active_in_train_only():
    torch.manual_seed(0)
    mag = _mag()
    model = _tiny(Chimera, dropout=0.5, num_layers=3)
    model.train()
    a, b = model(mag)["mask"], model(mag)["mask"]
    assert (a - b).abs().max() > 1e-4
    model.eval()
    c, d = model(mag)["mask"], model(mag)["mask"]
    torch.testing.assert_close(c, d, rtol=0, atol=0)
    # same weights without dropout: train() is deterministic, so the difference was dropout
    nodrop = _tiny(Chimera, dropout=0.0, num_layers=3)
    nodrop.load_state_dict(model.state_dict())
    nodrop.train()
    torch.testing.assert_close(nodrop(mag)["mask"], nodrop(mag)["mask"], rtol=0, atol=0)
    torch.testing.assert_close(nodrop(mag)["mask"], c)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _tiny(MaskInference, num_layers=1, dropout=0.3)  # no torch "dropout expects" warning


def test_initialisation():
    stack = RecurrentStack(7, hidden_size=4, num_layers=2, rnn_type="lstm")
    h = 4
    for name, p in stack.rnn.named_parameters():
        if name.startswith("bias_ih"):
            assert torch.equal(p[h:2 * h], torch.ones(h))
            assert p[:h].abs().sum() == 0 and p[2 * h:].abs().sum() == 0
        elif name.startswith("bias_hh"):
            assert p.abs().sum() == 0
        else:
            assert p.std() > 0
    gru = RecurrentStack(7, hidden_size=4, num_layers=1, rnn_type="gru")
    assert all(p.abs().sum() == 0 for n, p in gru.rnn.named_parameters() if "bias" in n)
    with pytest.raises(ValueError, match="rnn_type"):
        RecurrentStack(7, rnn_type="rnn")


def test_input_features_and_mel_projection():
    mag = _mag(freq=33)
    plain = InputFeatures(33)
    torch.testing.assert_close(plain(mag), log_magnitude_features(mag))
    mel = InputFeatures(33, n_mels=10, sample_rate=8000)
    fb = mel_filterbank(8000, 64, 10)
    assert mel.output_size == 10 and mel.mel.shape == (10, 33)
    torch.testing.assert_close(mel(mag), torch.einsum("btf,mf->btm", log_magnitude_features(mag), fb))
    model = Chimera(33, hidden_size=4, num_layers=1, embedding_size=2, n_mels=10, sample_rate=8000)
    assert "trunk.inputs.mel" in model.state_dict()
    assert all(p.data_ptr() != model.trunk.inputs.mel.data_ptr() for p in model.parameters())


def test_precomputed_features_equal_internal():
    model = _tiny(Chimera).eval()
    mag = _mag(frames=20)
    a = model(mag)
    b = model(mag, features=model.input_features(mag))
    for k in a:
        torch.testing.assert_close(a[k], b[k])
    # features of a longer signal, sliced, change the result (global vs chunk normalisation)
    long = torch.cat([mag, 10 * mag], dim=1)
    c = model(mag, features=model.input_features(long)[:, :20])
    assert (c["mask"] - a["mask"]).abs().max() > 1e-3


def test_input_validation():
    model = _tiny(MaskInference)
    with pytest.raises(ValueError, match=r"\(batch, time, 17\)"):
        model(torch.rand(2, 5, 16))
    with pytest.raises(ValueError):
        model(torch.rand(5, F))


def test_paper_size_constructs():
    model = Chimera(257)
    rnn = model.trunk.stack.rnn
    assert (rnn.num_layers, rnn.hidden_size, rnn.bidirectional, rnn.dropout) == (4, 300, True, 0.3)
    assert model.embedding_head.linear.out_features == 257 * 20
    assert model.mask_head.linear.out_features == 257 * 2
    out = model.eval()(torch.rand(1, 3, 257))
    assert out["embedding"].shape == (1, 3, 257, 20) and out["mask"].shape == (1, 2, 3, 257)
    assert DeepClustering(257).embedding_head.embedding_size == 20
    assert MaskInference(257).num_sources == 2


def test_input_norm_frequency_standardises_each_band_over_time():
    mag = (0.5 + _mag(freq=33)) * torch.linspace(0.1, 3.0, 33)  # coloured, < 80 dB range
    feats = InputFeatures(33, input_norm="frequency")(mag)
    db = 20 * torch.log10(mag.clamp_min(1e-8))
    db = (db - db.flatten(1).amax(1).view(-1, 1, 1)).clamp_min(-80.0)
    for b in range(mag.shape[0]):  # brute force, one band at a time
        for f in range(33):
            x = db[b, :, f]
            torch.testing.assert_close(feats[b, :, f], (x - x.mean()) / (x.std() + 1e-5))
    # a fixed colouring of the input (a different voice's or room's long-term spectrum)
    # leaves the features unchanged, unlike the per-example default
    tilt = torch.logspace(0, 1, 33)
    torch.testing.assert_close(InputFeatures(33, input_norm="frequency")(mag * tilt), feats,
                               atol=1e-4, rtol=1e-4)
    assert (InputFeatures(33)(mag * tilt) - InputFeatures(33)(mag)).abs().max() > 0.1
    model = _tiny(MaskInference, input_norm="frequency").eval()
    assert model.init_args["input_norm"] == "frequency"
    torch.testing.assert_close(model.input_features(mag[:, :, :F]),
                               InputFeatures(F, input_norm="frequency")(mag[:, :, :F]))
    a = model(mag[:, :, :F])
    b = model(mag[:, :, :F], features=model.input_features(mag[:, :, :F]))
    torch.testing.assert_close(a["mask"], b["mask"])
    with pytest.raises(ValueError, match="input_norm"):
        InputFeatures(33, input_norm="time")
