"""Private helpers shared by the model-zoo modules: a frozen mel projection with its
pseudo-inverse, and the embedding activation sequence applied to arbitrary tensors."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .recurrent import EMBEDDING_ACTIVATIONS, _as_tuple


def check_activations(activation: str | Sequence[str] | None) -> tuple:
    """Validated tuple of embedding activation names (see :data:`EMBEDDING_ACTIVATIONS`)."""
    acts = _as_tuple(activation)
    bad = [a for a in acts if a not in EMBEDDING_ACTIVATIONS]
    if bad:
        raise ValueError(f"embedding activation(s) {bad} not in {EMBEDDING_ACTIVATIONS}")
    return acts


def apply_activations(x: torch.Tensor, activations: Sequence[str]) -> torch.Tensor:
    """Apply embedding activations in order over the last dim (as ``EmbeddingHead`` does)."""
    for a in activations:
        if a == "sigmoid":
            x = torch.sigmoid(x)
        elif a == "tanh":
            x = torch.tanh(x)
        elif a == "relu":
            x = torch.relu(x)
        elif a == "softmax":
            x = torch.softmax(x, dim=-1)
        elif a == "unit_norm":
            x = nn.functional.normalize(x, p=2.0, dim=-1, eps=1e-8)
    return x


def mel_matrix(num_features: int, n_mels: int, sample_rate: int) -> torch.Tensor:
    """``(n_mels, num_features)`` mel filterbank, each filter summing to 1 (empty filters, which
    occur when ``n_mels`` is large for the FFT size, e.g. 300 bands on 257 bins, stay zero)."""
    import warnings

    from ..dsp.features import mel_filterbank

    with warnings.catch_warnings():  # librosa warns about empty filters; they are expected
        warnings.simplefilter("ignore", UserWarning)
        return mel_filterbank(int(sample_rate), 2 * (int(num_features) - 1), int(n_mels))


def pseudo_inverse(mel: torch.Tensor) -> torch.Tensor:
    """Moore-Penrose pseudo-inverse ``(freq, n_mels)`` of a ``(n_mels, freq)`` matrix (float64
    SVD, returned as float32)."""
    return torch.linalg.pinv(mel.double()).float()


class MelProjection(nn.Module):
    """Frozen mel projection ``freq -> n_mels`` and its pseudo-inverse ``n_mels -> freq``.

    Args:
        num_features: STFT bins ``freq``.
        n_mels: mel bands.
        sample_rate: Hz (default 16000).

    ``forward(x)``: ``(..., freq)`` -> ``(..., n_mels)``; ``inverse(y)``: ``(..., n_mels)`` ->
    ``(..., freq)`` (least-squares inverse; bins no filter covers map to 0). Both matrices are
    buffers (saved in the state dict, never trained).
    """

    def __init__(self, num_features: int, n_mels: int, sample_rate: int = 16000):
        super().__init__()
        mel = mel_matrix(num_features, n_mels, sample_rate)
        self.register_buffer("mel", mel)
        self.register_buffer("pinv", pseudo_inverse(mel))
        self.num_features, self.n_mels = int(num_features), int(n_mels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.mel.t()

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return y @ self.pinv.t()
