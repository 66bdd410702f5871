"""Dual-path chimera: chunking / overlap-add against a brute-force loop, input normalisation
against an independent numpy computation, dropout that applies, scale invariance."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from bootsep.models.dualpath import DualPathChimera, chunk, overlap_add

F = 65


def _mag(batch=2, frames=23, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, frames, F, generator=g) ** 2 + 1e-4


def _model(**kw):
    base = dict(num_features=F, num_sources=2, n_mels=20, hidden_size=8, rnn_hidden_size=6,
                num_layers=2, chunk_size=6, hop_size=3, embedding_size=4)
    base.update(kw)
    torch.manual_seed(0)
    return DualPathChimera(**base)


@pytest.mark.parametrize("frames", [1, 2, 5, 6, 7, 20, 101])
@pytest.mark.parametrize("size,hop", [(6, 3), (5, 2), (4, 4), (7, 1), (100, 50)])
def test_chunk_matches_brute_force_and_overlap_add_inverts(frames, size, hop):
    g = torch.Generator().manual_seed(frames)
    x = torch.randn(2, 3, frames, generator=g)
    chunks, length = chunk(x, size, hop)
    s = chunks.shape[-1]
    assert length >= frames + hop and (length - size) % hop == 0
    assert length - size < frames + hop + hop  # no chunk made only of end padding
    padded = torch.zeros(2, 3, length)
    padded[:, :, hop:hop + frames] = x
    for j in range(s):  # brute force: chunk j is padded frames [j * hop, j * hop + size)
        torch.testing.assert_close(chunks[..., j], padded[:, :, j * hop:j * hop + size])
    # every real frame is covered, and the mean of its copies is the frame itself
    torch.testing.assert_close(overlap_add(chunks, hop, length, frames), x)
    # overlap-add averages: doubling one chunk's content changes only the frames it covers
    doubled = chunks.clone()
    doubled[..., 0] *= 2
    y = overlap_add(doubled, hop, length, frames)
    covered = max(0, min(frames, size - hop))
    torch.testing.assert_close(y[..., covered:], x[..., covered:])
    assert covered == 0 or not torch.allclose(y[..., :covered], x[..., :covered])


def test_input_features_are_normalised_mel_projection():
    import librosa

    model = _model(eps=1e-10)
    mag = _mag()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fb = librosa.filters.mel(sr=16000, n_fft=2 * (F - 1), n_mels=20)
    fb = fb / np.maximum(fb.sum(axis=1, keepdims=True), 1e-12)
    got = model.input_features(mag).double().numpy()
    for b in range(2):
        y = mag[b].double().numpy() @ fb.T
        ref = (y - y.mean()) / np.sqrt(y.var() + 1e-10)
        np.testing.assert_allclose(got[b], ref, rtol=1e-4, atol=1e-5)
    assert got.shape == (2, 23, 20)
    no_mel = _model(n_mels=None).input_features(mag)
    assert no_mel.shape == (2, 23, F)


@pytest.mark.parametrize("log_input", [False, True])
def test_masks_are_invariant_to_input_gain(log_input):
    """Per-example normalisation: scaling a mixture scales its estimates, not its masks."""
    model = _model(log_input=log_input).eval()
    mag = _mag()
    with torch.no_grad():
        a = model(mag)
        b = model(mag * torch.tensor([7.0, 0.01]).view(2, 1, 1))
    torch.testing.assert_close(a["mask"], b["mask"], atol=2e-5, rtol=1e-4)
    torch.testing.assert_close(a["embedding"], b["embedding"], atol=2e-5, rtol=1e-4)


def test_dropout_applies_in_train_only():
    mag = _mag()
    model = _model(dropout=0.5)
    model.train()
    a, b = model(mag)["mask"], model(mag)["mask"]
    assert not torch.allclose(a, b)
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(mag)["mask"], model(mag)["mask"], rtol=0, atol=0)
    still = _model(dropout=0.0).train()
    torch.testing.assert_close(still(mag)["mask"], still(mag)["mask"], rtol=0, atol=0)
    assert sum(isinstance(m, torch.nn.Dropout) and m.p == 0.5 for m in model.modules()) == 2


def test_structure_at_reference_size():
    model = DualPathChimera()
    assert model.mel.shape == (300, 257)
    assert len(model.blocks) == 3 and model.chunk_size == 100 and model.hop_size == 50
    blk = model.blocks[0]
    assert blk.intra_rnn.rnn.hidden_size == 300 and blk.intra_rnn.output_size == 600
    assert blk.intra_linear.in_features == 600 and blk.intra_linear.out_features == 300
    assert model.embedding_head.linear.out_features == 257 * 20
    assert model.mask_head.linear.out_features == 257 * 2
    assert "mel" in dict(model.named_buffers())
    assert not any(p.shape == (300, 257) for p in model.parameters())


@pytest.mark.parametrize("bad", [dict(hop_size=0), dict(hop_size=7, chunk_size=6),
                                 dict(num_layers=0), dict(dropout=1.0),
                                 dict(mask_activation="tanh")])
def test_invalid_arguments(bad):
    with pytest.raises(ValueError):
        _model(**bad)
