"""Dual-path recurrent chimera with a mel projection (paper-system.md §4.1,
``build_chimera_with_mel``: the model behind the paper's MUSDB numbers).

Data flow, shapes for ``B`` examples, ``T`` frames, ``F`` bins, ``M`` mel bands, ``N`` features:

    mix_magnitude (B, T, F)   linear magnitude (``log_input=True``: dB re. max instead)
    -> frozen mel projection, filters summing to 1                       (B, T, M)
    -> per-example normalisation (1-channel instance norm over T x M)    = input_features
    -> GroupNorm(1, M) -> Linear M -> N (bottleneck)                     (B, T, N)
    -> chunks of ``chunk_size`` frames every ``hop_size`` frames         (B, N, K, S)
    -> ``num_layers`` x DualPathBlock:
         intra-chunk (B)LSTM over K -> dropout -> Linear -> GroupNorm -> + residual
         inter-chunk (B)LSTM over S -> dropout -> Linear -> GroupNorm -> + residual
    -> PReLU -> Linear N -> N -> GroupNorm -> overlap-add (mean of overlapping chunks)
                                                                         (B, T, N)
    -> embedding head: Linear N -> F * D, activations (default sigmoid, unit norm)
    -> mask head: Linear N -> F * n_src, sigmoid; 'estimates' = mask * mix_magnitude

The sequence is padded by ``hop_size`` frames in front and zeros at the end so that every frame
is covered by ``chunk_size / hop_size`` chunks (2 at the reference 100/50); the fold divides by
the number of chunks covering each frame. ``dropout`` applies (``train()`` only) to the output of
every recurrent layer of every block (the reference accepted the argument but never used it, so
its published models correspond to ``dropout=0``).

Example:
    >>> import torch
    >>> m = DualPathChimera(num_features=65, n_mels=20, hidden_size=8, rnn_hidden_size=6,
    ...                     num_layers=1, chunk_size=4, hop_size=2, embedding_size=3)
    >>> out = m(torch.rand(2, 11, 65))
    >>> tuple(out['embedding'].shape), tuple(out['mask'].shape)
    ((2, 11, 65, 3), (2, 2, 11, 65))
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from ._zoo import mel_matrix
from .base import SeparationModel
from .recurrent import EmbeddingHead, MaskHead, RecurrentStack


def chunk(x: torch.Tensor, chunk_size: int, hop_size: int) -> tuple[torch.Tensor, int]:
    """``(B, N, T)`` -> chunks ``(B, N, chunk_size, S)`` and the padded length ``L``.

    ``hop_size`` zero frames are added in front and enough at the end that
    ``(L - chunk_size)`` is a multiple of ``hop_size``; chunk ``s`` covers padded frames
    ``[s * hop_size, s * hop_size + chunk_size)``.
    """
    b, n, t = x.shape
    length = t + 2 * hop_size
    if length <= chunk_size:
        length = chunk_size
    else:
        length = chunk_size + math.ceil((length - chunk_size) / hop_size) * hop_size
    x = nn.functional.pad(x, (hop_size, length - t - hop_size))
    cols = nn.functional.unfold(x.unsqueeze(-1), (chunk_size, 1), stride=(hop_size, 1))
    return cols.view(b, n, chunk_size, -1), length


def overlap_add(chunks: torch.Tensor, hop_size: int, length: int, num_frames: int) -> torch.Tensor:
    """Inverse of :func:`chunk`: ``(B, N, K, S)`` -> ``(B, N, num_frames)``, each frame the mean
    of the chunk frames covering it."""
    b, n, k, s = chunks.shape
    fold = nn.functional.fold(chunks.reshape(b, n * k, s), (length, 1), (k, 1),
                              stride=(hop_size, 1))
    ones = torch.ones(1, k, s, device=chunks.device, dtype=chunks.dtype)
    count = nn.functional.fold(ones, (length, 1), (k, 1), stride=(hop_size, 1))
    y = fold / count.clamp_min(1.0)
    return y[:, :, hop_size:hop_size + num_frames, 0]


class DualPathBlock(nn.Module):
    """One intra-chunk and one inter-chunk recurrent layer with residuals.

    Args:
        num_features: ``N`` features per frame.
        hidden_size: recurrent units per direction (default 300).
        bidirectional: default True.
        dropout: applied to each recurrent output in ``train()`` (default 0.0).
        rnn_type: ``'lstm'`` (default) or ``'gru'``.

    ``forward``: ``(B, N, K, S)`` -> ``(B, N, K, S)``.
    """

    def __init__(self, num_features: int, hidden_size: int = 300, bidirectional: bool = True,
                 dropout: float = 0.0, rnn_type: str = "lstm"):
        super().__init__()
        n = int(num_features)
        self.intra_rnn = RecurrentStack(n, hidden_size, 1, bidirectional, 0.0, rnn_type)
        self.intra_linear = nn.Linear(self.intra_rnn.output_size, n)
        self.intra_norm = nn.GroupNorm(1, n)
        self.inter_rnn = RecurrentStack(n, hidden_size, 1, bidirectional, 0.0, rnn_type)
        self.inter_linear = nn.Linear(self.inter_rnn.output_size, n)
        self.inter_norm = nn.GroupNorm(1, n)
        self.dropout = nn.Dropout(float(dropout))
        for lin in (self.intra_linear, self.inter_linear):
            nn.init.xavier_normal_(lin.weight)
            nn.init.zeros_(lin.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, k, s = x.shape
        y = x.permute(0, 3, 2, 1).reshape(b * s, k, n)  # each chunk is a sequence over K
        y = self.intra_linear(self.dropout(self.intra_rnn(y)))
        x = x + self.intra_norm(y.view(b, s, k, n).permute(0, 3, 2, 1))
        y = x.permute(0, 2, 3, 1).reshape(b * k, s, n)  # each chunk position: a sequence over S
        y = self.inter_linear(self.dropout(self.inter_rnn(y)))
        return x + self.inter_norm(y.view(b, k, s, n).permute(0, 3, 1, 2))


class DualPathChimera(SeparationModel):
    """Dual-path recurrent chimera on a mel projection (see the module docstring).

    Args:
        num_features: STFT bins ``F`` (default 257).
        num_sources: masks produced (default 2).
        n_mels: mel bands ``M`` of the frozen input projection (default 300; ``None``: no
            projection, the trunk sees all ``F`` bins).
        hidden_size: ``N``, the bottleneck / block feature size (default 300).
        rnn_hidden_size: recurrent units per direction in each block (default 300).
        num_layers: dual-path blocks (default 3).
        chunk_size: frames per chunk (default 100).
        hop_size: frames between chunk starts (default 50).
        bidirectional: default True.
        dropout: on every recurrent output, ``train()`` only (default 0.0).
        embedding_size: embedding dim ``D`` (default 20; ``None`` = no embedding head).
        embedding_activation: in order (default ``('sigmoid', 'unit_norm')``).
        mask_activation: ``'sigmoid'`` (default), ``'softmax'``, ``'relu'`` or ``'clamp'``.
        rnn_type: ``'lstm'`` (default) or ``'gru'``.
        log_input: project dB magnitudes (re. each example's max) instead of the linear
            magnitude the reference used (default False).
        eps: added to the variance of the per-example normalisation (default 1e-10).
        sample_rate: Hz, for the mel filterbank (default 16000).

    Output: ``{'embedding': (B, T, F, D), 'mask', 'estimates': (B, n_src, T, F)}``.
    """

    def __init__(self, num_features: int = 257, num_sources: int = 2, n_mels: int | None = 300,
                 hidden_size: int = 300, rnn_hidden_size: int = 300, num_layers: int = 3,
                 chunk_size: int = 100, hop_size: int = 50, bidirectional: bool = True,
                 dropout: float = 0.0, embedding_size: int | None = 20,
                 embedding_activation: str | Sequence[str] = ("sigmoid", "unit_norm"),
                 mask_activation: str = "sigmoid", rnn_type: str = "lstm",
                 log_input: bool = False, eps: float = 1e-10, sample_rate: int = 16000):
        args = dict(locals())  # the constructor arguments only (recorded at the end)
        super().__init__()
        if not 1 <= hop_size <= chunk_size:
            raise ValueError(f"need 1 <= hop_size <= chunk_size, got hop_size={hop_size}, "
                             f"chunk_size={chunk_size}")
        if num_layers < 1 or hidden_size < 1:
            raise ValueError("num_layers and hidden_size must be >= 1")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout {dropout} must be in [0, 1)")
        self.num_features, self.num_sources = int(num_features), int(num_sources)
        self.chunk_size, self.hop_size = int(chunk_size), int(hop_size)
        self.log_input, self.eps = bool(log_input), float(eps)
        if n_mels is None:
            self.mel = None
            in_size = self.num_features
        else:
            self.register_buffer("mel", mel_matrix(num_features, n_mels, sample_rate))
            in_size = int(n_mels)
        n = int(hidden_size)
        self.input_norm = nn.GroupNorm(1, in_size)
        self.bottleneck = nn.Linear(in_size, n)
        self.blocks = nn.ModuleList(DualPathBlock(n, rnn_hidden_size, bidirectional, dropout,
                                                  rnn_type) for _ in range(int(num_layers)))
        self.output_prelu = nn.PReLU()
        self.output_linear = nn.Linear(n, n)
        self.output_norm = nn.GroupNorm(1, n)
        for lin in (self.bottleneck, self.output_linear):
            nn.init.xavier_normal_(lin.weight)
            nn.init.zeros_(lin.bias)
        keys = []
        if embedding_size is not None:
            self.embedding_head = EmbeddingHead(n, num_features, embedding_size,
                                                embedding_activation)
            keys.append("embedding")
        self.mask_head = MaskHead(n, num_features, num_sources, mask_activation)
        self.output_keys = (*keys, "mask", "estimates")
        self._record_args(args)

    def input_features(self, mix_magnitude: torch.Tensor) -> torch.Tensor:
        """``(B, T, F)`` magnitude -> mel-projected, per-example normalised ``(B, T, M)``."""
        x = mix_magnitude
        if self.log_input:
            from ..dsp.features import amplitude_to_db

            x = amplitude_to_db(x)
        if self.mel is not None:
            x = x @ self.mel.t()
        mean = x.mean(dim=(1, 2), keepdim=True)
        var = x.var(dim=(1, 2), keepdim=True, unbiased=False)
        return (x - mean) / torch.sqrt(var + self.eps)

    def trunk(self, features: torch.Tensor) -> torch.Tensor:
        """Normalised features ``(B, T, M)`` -> dual-path output ``(B, T, N)``."""
        t = features.shape[1]
        x = self.bottleneck(self.input_norm(features.transpose(1, 2)).transpose(1, 2))
        chunks, length = chunk(x.transpose(1, 2), self.chunk_size, self.hop_size)
        for block in self.blocks:
            chunks = block(chunks)
        chunks = self.output_linear(self.output_prelu(chunks).permute(0, 2, 3, 1))
        chunks = self.output_norm(chunks.permute(0, 3, 1, 2))
        return overlap_add(chunks, self.hop_size, length, t).transpose(1, 2)

    def forward(self, mix_magnitude: torch.Tensor,
                features: torch.Tensor | None = None) -> dict:
        """``(B, T, F)`` magnitude -> ``{'embedding', 'mask', 'estimates'}``.

        ``features``: optional :meth:`input_features` of a longer signal, sliced to these frames
        (chunked inference normalises with whole-signal statistics).
        """
        self._check_input(mix_magnitude, self.num_features)
        feats = self.input_features(mix_magnitude) if features is None else features
        h = self.trunk(feats)
        out = {}
        if "embedding" in self.output_keys:
            out["embedding"] = self.embedding_head(h)
        mask = self.mask_head(h)
        out["mask"] = mask
        out["estimates"] = mask * mix_magnitude.unsqueeze(1)
        return out
