"""BLSTM mel-300 baseline: the frozen projection and its pseudo-inverse against independent
numpy/librosa computations, masks = clamp(pinv . mel masks), log-magnitude input."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from bootsep.dsp.features import log_magnitude_features
from bootsep.models._zoo import MelProjection
from bootsep.models.mel_baseline import MelMaskBLSTM

F = 65


def _mag(batch=2, frames=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, frames, F, generator=g) ** 2 + 1e-4


def _librosa_mel(n_fft, n_mels, sr=16000):
    import librosa

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fb = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels)
    return fb / np.maximum(fb.sum(axis=1, keepdims=True), 1e-12)


@pytest.mark.parametrize("freq,n_mels", [(65, 20), (257, 300), (257, 64)])
def test_projection_and_pseudo_inverse_match_numpy(freq, n_mels):
    proj = MelProjection(freq, n_mels, 16000)
    fb = _librosa_mel(2 * (freq - 1), n_mels)
    np.testing.assert_allclose(proj.mel.numpy(), fb, rtol=1e-5, atol=1e-7)
    pinv = np.linalg.pinv(fb.astype(np.float64))
    np.testing.assert_allclose(proj.pinv.numpy(), pinv, atol=1e-4 * np.abs(pinv).max())
    assert not any(True for _ in proj.parameters())  # frozen: buffers only


def test_inverse_then_projection_is_identity_when_full_rank():
    proj = MelProjection(F, 20, 16000)  # 20 bands on 65 bins: rank 20
    y = torch.rand(3, 7, 20, dtype=torch.float32)
    torch.testing.assert_close(proj(proj.inverse(y)), y, atol=1e-4, rtol=1e-4)


def test_masks_are_clamped_pseudo_inverse_of_mel_masks():
    model = MelMaskBLSTM(num_features=F, num_sources=4, n_mels=20, hidden_size=6, num_layers=2,
                         dropout=0.0).eval()
    with torch.no_grad():  # widen the mel masks so that the clamp is active somewhere
        model.linear.weight.mul_(20.0)
        mag = _mag()
        out = model(mag)
        mel_masks = model.mel_masks(mag).double().numpy()
    fb = _librosa_mel(2 * (F - 1), 20).astype(np.float64)
    ref = np.clip(mel_masks @ np.linalg.pinv(fb).T, 0.0, 1.0)
    np.testing.assert_allclose(out["mask"].numpy(), ref, atol=1e-4)
    raw = mel_masks @ np.linalg.pinv(fb).T
    assert (raw > 1.0).any() or (raw < 0.0).any()  # the clamp did something
    assert out["mask"].min() >= 0 and out["mask"].max() <= 1


def test_input_is_normalised_log_magnitude():
    model = MelMaskBLSTM(num_features=F, num_sources=2, n_mels=20, hidden_size=6,
                         num_layers=1).eval()
    mag = _mag()
    torch.testing.assert_close(model.input_features(mag), log_magnitude_features(mag))
    with torch.no_grad():
        a = model(mag)["mask"]
        b = model(mag * torch.tensor([3.0, 0.02]).view(2, 1, 1))["mask"]
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_softmax_masks_and_dropout():
    model = MelMaskBLSTM(num_features=F, num_sources=3, n_mels=20, hidden_size=6, num_layers=2,
                         dropout=0.5, mask_activation="softmax")
    mag = _mag()
    model.train()
    assert not torch.allclose(model(mag)["mask"], model(mag)["mask"])
    model.eval()
    with torch.no_grad():
        mel = model.mel_masks(mag)
    torch.testing.assert_close(mel.sum(1), torch.ones(2, 12, 20))


def test_reference_size():
    m = MelMaskBLSTM()
    assert m.num_sources == 4 and m.projection.mel.shape == (300, 257)
    assert m.stack.rnn.num_layers == 4 and m.stack.rnn.hidden_size == 300
    assert m.linear.in_features == 600 and m.linear.out_features == 300 * 4
    with pytest.raises(ValueError):
        MelMaskBLSTM(mask_activation="relu")
