"""Open-Unmix-style mask model, optionally with an embedding head ("open-unmix chimera";
paper-system.md §4.1 ``build_open_unmix_like``).

Data flow, shapes for ``B`` examples, ``T`` frames, ``F`` bins, hidden size ``H``:

    mix_magnitude (B, T, F)
    -> dB re. each example's max, floor -80 dB (``log_input=False``: the linear magnitude)
                                                                = input_features (B, T, F)
    -> BatchNorm over F (the input scaler: learned per-bin scale and offset)
    -> Linear F -> H (no bias) -> BatchNorm -> tanh                          (B, T, H)
    -> (B)LSTM, H/2 units per direction when bidirectional, inter-layer dropout (B, T, H)
    -> concatenate the LSTM input (skip)                                     (B, T, 2H)
    -> Linear 2H -> H (no bias) -> BatchNorm            [embedding head reads this]
    -> ReLU -> Linear H -> F * n_src (no bias) -> BatchNorm
    -> output scaler (learned scale, init 1, and offset, init 0, per source and bin)
    -> mask activation (default ReLU, as Open-Unmix) = 'mask'   (B, n_src, T, F)
    'estimates' = mask * mix_magnitude

BatchNorm layers normalise over batch and time in ``train()`` and use running statistics in
``eval()``; they are part of the state dict, so a reloaded model reproduces eval outputs.

Example:
    >>> import torch
    >>> m = OpenUnmix(num_features=33, num_sources=2, hidden_size=8, num_layers=1,
    ...               add_embedding=True, embedding_size=4)
    >>> out = m.eval()(torch.rand(2, 10, 33))
    >>> sorted(out), tuple(out['mask'].shape), tuple(out['embedding'].shape)
    (['embedding', 'estimates', 'mask'], (2, 2, 10, 33), (2, 10, 33, 4))
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .base import SeparationModel
from .recurrent import EmbeddingHead, RecurrentStack

MASK_ACTIVATIONS = ("relu", "sigmoid", "softmax", "clamp")


class OpenUnmix(SeparationModel):
    """Open-Unmix-style recurrent mask model (see the module docstring).

    Args:
        num_features: STFT bins ``F`` (default 257).
        num_sources: masks produced (default 2).
        hidden_size: ``H`` (default 300; must be even when bidirectional).
        num_layers: recurrent layers (default 4).
        bidirectional: default True (``H/2`` units per direction).
        dropout: inter-layer recurrent dropout, ``train()`` only (default 0.3).
        mask_activation: ``'relu'`` (default), ``'sigmoid'``, ``'softmax'`` (over sources) or
            ``'clamp'`` (to [0, 1]).
        add_embedding: add a deep-clustering embedding head (default False).
        embedding_size: embedding dim ``D`` (default 20; used with ``add_embedding``).
        embedding_activation: in order (default ``('sigmoid', 'unit_norm')``).
        rnn_type: ``'lstm'`` (default) or ``'gru'``.
        log_input: feed dB magnitudes (default True) rather than linear ones.

    Output: ``{'mask', 'estimates'}`` ``(B, n_src, T, F)`` and, with ``add_embedding``,
    ``'embedding'`` ``(B, T, F, D)``.
    """

    def __init__(self, num_features: int = 257, num_sources: int = 2, hidden_size: int = 300,
                 num_layers: int = 4, bidirectional: bool = True, dropout: float = 0.3,
                 mask_activation: str = "relu", add_embedding: bool = False,
                 embedding_size: int = 20,
                 embedding_activation: str | Sequence[str] = ("sigmoid", "unit_norm"),
                 rnn_type: str = "lstm", log_input: bool = True):
        args = dict(locals())  # the constructor arguments only (recorded at the end)
        super().__init__()
        if mask_activation not in MASK_ACTIVATIONS:
            raise ValueError(f"mask_activation {mask_activation!r} not in {MASK_ACTIVATIONS}")
        if bidirectional and hidden_size % 2:
            raise ValueError(f"hidden_size {hidden_size} must be even when bidirectional")
        if num_sources < 1:
            raise ValueError("num_sources must be >= 1")
        f, h = int(num_features), int(hidden_size)
        self.num_features, self.num_sources, self.hidden_size = f, int(num_sources), h
        self.mask_activation, self.log_input = mask_activation, bool(log_input)
        self.input_scaler = nn.BatchNorm1d(f)
        self.fc1 = nn.Linear(f, h, bias=False)
        self.bn1 = nn.BatchNorm1d(h)
        self.rnn = RecurrentStack(h, h // 2 if bidirectional else h, num_layers, bidirectional,
                                  dropout, rnn_type)
        self.fc2 = nn.Linear(2 * h, h, bias=False)
        self.bn2 = nn.BatchNorm1d(h)
        self.fc3 = nn.Linear(h, f * self.num_sources, bias=False)
        self.bn3 = nn.BatchNorm1d(f * self.num_sources)
        self.output_scale = nn.Parameter(torch.ones(self.num_sources, f))
        self.output_offset = nn.Parameter(torch.zeros(self.num_sources, f))
        for lin in (self.fc1, self.fc2, self.fc3):
            nn.init.xavier_normal_(lin.weight)
        keys = []
        if add_embedding:
            self.embedding_head = EmbeddingHead(h, f, embedding_size, embedding_activation)
            keys.append("embedding")
        self.output_keys = (*keys, "mask", "estimates")
        self._record_args(args)

    def input_features(self, mix_magnitude: torch.Tensor) -> torch.Tensor:
        """``(B, T, F)`` -> dB re. each example's max (``log_input``) or the magnitude itself."""
        if not self.log_input:
            return mix_magnitude
        from ..dsp.features import amplitude_to_db

        return amplitude_to_db(mix_magnitude)

    @staticmethod
    def _bn(bn: nn.BatchNorm1d, x: torch.Tensor) -> torch.Tensor:
        """BatchNorm over the last dim of ``(B, T, C)`` (statistics over batch and time)."""
        return bn(x.reshape(-1, x.shape[-1])).view(x.shape)

    def forward(self, mix_magnitude: torch.Tensor,
                features: torch.Tensor | None = None) -> dict:
        """``(B, T, F)`` magnitude -> dict (see the class docstring).

        ``features``: optional :meth:`input_features` of a longer signal, sliced to these frames.
        """
        self._check_input(mix_magnitude, self.num_features)
        x = self.input_features(mix_magnitude) if features is None else features
        b, t, f = x.shape
        x = self._bn(self.input_scaler, x)
        x = torch.tanh(self._bn(self.bn1, self.fc1(x)))
        y = self.rnn(x)
        y = self._bn(self.bn2, self.fc2(torch.cat([x, y], dim=-1)))
        out = {}
        if "embedding" in self.output_keys:
            out["embedding"] = self.embedding_head(y)
        m = self._bn(self.bn3, self.fc3(torch.relu(y)))
        m = m.view(b, t, self.num_sources, f).transpose(1, 2)
        m = m * self.output_scale.unsqueeze(1) + self.output_offset.unsqueeze(1)
        if self.mask_activation == "relu":
            m = torch.relu(m)
        elif self.mask_activation == "sigmoid":
            m = torch.sigmoid(m)
        elif self.mask_activation == "softmax":
            m = torch.softmax(m, dim=1)
        else:
            m = m.clamp(0.0, 1.0)
        out["mask"] = m
        out["estimates"] = m * mix_magnitude.unsqueeze(1)
        return out
