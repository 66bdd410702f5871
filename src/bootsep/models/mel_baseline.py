"""The "4-layer BLSTM mel-300" mask baseline (paper-system.md §8.3, ``MaskEstimation``).

Data flow, shapes for a batch of ``B`` examples, ``T`` frames, ``F`` STFT bins, ``M`` mel bands:

    mix_magnitude (B, T, F)
    -> log_magnitude_features: dB re. each example's max (floor -80 dB), per-example
       standardised                                                      (B, T, F)
    -> frozen mel projection (filters sum to 1)                          (B, T, M)
    -> num_layers (B)LSTM, inter-layer dropout                           (B, T, H * dirs)
    -> Linear -> (B, n_src, T, M), sigmoid (or softmax over sources)
    -> frozen pseudo-inverse of the mel matrix                           (B, n_src, T, F)
    -> clamp to [0, 1] = 'mask';  'estimates' = mask * mix_magnitude

Initialisation as the other recurrent models: Xavier-normal weights, zero biases, LSTM forget
gate bias 1. Trained with L1 on magnitudes (MSA targets) for 4 sources in the reference.

Example:
    >>> import torch
    >>> m = MelMaskBLSTM(num_features=65, num_sources=4, n_mels=20, hidden_size=8, num_layers=1)
    >>> out = m(torch.rand(2, 10, 65))
    >>> tuple(out['mask'].shape), bool(out['mask'].min() >= 0), bool(out['mask'].max() <= 1)
    ((2, 4, 10, 65), True, True)
"""

from __future__ import annotations

import torch
from torch import nn

from ._zoo import MelProjection
from .base import SeparationModel
from .recurrent import RecurrentStack

MASK_ACTIVATIONS = ("sigmoid", "softmax")


class MelMaskBLSTM(SeparationModel):
    """BLSTM mask inference on a fixed mel projection, masks mapped back by its pseudo-inverse.

    Args:
        num_features: STFT bins ``F`` (default 257 = 512-point frames).
        num_sources: masks produced, in the fixed order of the training targets (default 4:
            the reference's vocals/drums/bass/other).
        n_mels: mel bands ``M`` of the projection (default 300).
        hidden_size: units per direction (default 300).
        num_layers: recurrent layers (default 4).
        bidirectional: default True.
        dropout: inter-layer dropout, active in ``train()`` only (default 0.3).
        mask_activation: ``'sigmoid'`` (default) or ``'softmax'`` (over sources), applied on
            the mel grid before the inverse projection.
        rnn_type: ``'lstm'`` (default) or ``'gru'``.
        sample_rate: Hz, for the mel filterbank (default 16000).

    Output: ``{'mask', 'estimates'}``, both ``(batch, num_sources, time, freq)``, masks in
    [0, 1] (the clamp has zero gradient where the inverse projection leaves [0, 1]).
    """

    def __init__(self, num_features: int = 257, num_sources: int = 4, n_mels: int = 300,
                 hidden_size: int = 300, num_layers: int = 4, bidirectional: bool = True,
                 dropout: float = 0.3, mask_activation: str = "sigmoid", rnn_type: str = "lstm",
                 sample_rate: int = 16000):
        args = dict(locals())  # the constructor arguments only (recorded at the end)
        super().__init__()
        if mask_activation not in MASK_ACTIVATIONS:
            raise ValueError(f"mask_activation {mask_activation!r} not in {MASK_ACTIVATIONS}")
        if num_sources < 1 or n_mels < 1:
            raise ValueError("num_sources and n_mels must be >= 1")
        self.num_features, self.num_sources, self.n_mels = (int(num_features), int(num_sources),
                                                            int(n_mels))
        self.mask_activation = mask_activation
        self.projection = MelProjection(num_features, n_mels, sample_rate)
        self.stack = RecurrentStack(self.n_mels, hidden_size, num_layers, bidirectional, dropout,
                                    rnn_type)
        self.linear = nn.Linear(self.stack.output_size, self.n_mels * self.num_sources)
        nn.init.xavier_normal_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)
        self.output_keys = ("mask", "estimates")
        self._record_args(args)

    def mel_masks(self, mix_magnitude: torch.Tensor,
                  features: torch.Tensor | None = None) -> torch.Tensor:
        """Masks on the mel grid ``(batch, num_sources, time, n_mels)`` (before the inverse)."""
        x = self.input_features(mix_magnitude) if features is None else features
        h = self.stack(self.projection(x))
        b, t, _ = h.shape
        m = self.linear(h).view(b, t, self.num_sources, self.n_mels).transpose(1, 2)
        return torch.sigmoid(m) if self.mask_activation == "sigmoid" else torch.softmax(m, dim=1)

    def forward(self, mix_magnitude: torch.Tensor,
                features: torch.Tensor | None = None) -> dict:
        """``(batch, time, freq)`` magnitude -> ``{'mask', 'estimates'}``.

        ``features``: optional :meth:`input_features` of a longer signal, sliced to these frames.
        """
        self._check_input(mix_magnitude, self.num_features)
        mask = self.projection.inverse(self.mel_masks(mix_magnitude, features)).clamp(0.0, 1.0)
        return {"mask": mask, "estimates": mask * mix_magnitude.unsqueeze(1)}
