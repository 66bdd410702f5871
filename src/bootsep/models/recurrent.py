"""Recurrent models: deep clustering, mask inference and chimera on one shared trunk.

Trunk (:class:`RecurrentTrunk`): magnitude ``(batch, time, freq)`` ->
:func:`~bootsep.dsp.features.log_magnitude_features` (dB re. max, per-example standardised)
-> optional frozen mel projection ``freq -> n_mels`` -> :class:`RecurrentStack`
(``num_layers`` (B)LSTM/GRU) -> ``(batch, time, hidden_size * directions)``.

Heads: :class:`EmbeddingHead` (``Linear -> (batch, time, freq, dim)`` + activations) and
:class:`MaskHead` (``Linear -> (batch, n_src, time, freq)`` + mask activation). Heads always
produce the full ``freq`` resolution, also when the trunk runs on mel bands.

Initialisation (all models): Xavier-normal for every weight matrix (RNN input and recurrent
weights, heads), zero biases, except the LSTM forget gate whose ``bias_ih`` slice is 1 (and
``bias_hh`` slice 0, so the effective forget bias is exactly 1).

The paper-size chimera (§4.1 template): ``Chimera(257)`` = 4 x 300 BLSTM, dropout 0.3,
embedding 20 ``('sigmoid', 'unit_norm')``, 2 sigmoid masks.

Example:
    >>> import torch
    >>> m = Chimera(num_features=33, hidden_size=8, num_layers=2, embedding_size=4)
    >>> out = m(torch.rand(2, 10, 33))
    >>> tuple(out['embedding'].shape), tuple(out['mask'].shape)
    ((2, 10, 33, 4), (2, 2, 10, 33))
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .base import SeparationModel

EMBEDDING_ACTIVATIONS = ("sigmoid", "tanh", "relu", "softmax", "none", "unit_norm")
MASK_ACTIVATIONS = ("sigmoid", "softmax", "relu", "clamp")
RNN_TYPES = ("lstm", "gru")


def _as_tuple(value: str | Sequence[str] | None) -> tuple:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(value)


class InputFeatures(nn.Module):
    """Normalised log-magnitude, optionally projected on a frozen mel filterbank.

    Args:
        num_features: STFT bins ``freq`` of the input (``window_length // 2 + 1``).
        n_mels: number of mel bands, or ``None`` (default) for no projection.
        sample_rate: Hz, used for the mel filterbank only (default 16000).
        input_norm: ``'example'`` (default: the dB magnitude standardised over each example)
            or ``'frequency'`` (standardised per frequency band over time, which removes the
            example's long-term spectrum); see
            :func:`~bootsep.dsp.features.log_magnitude_features`.

    ``forward(mix_magnitude, features=None)``: ``(batch, time, freq)`` ->
    ``(batch, time, n_mels or freq)``. ``features``, when given, replaces the normalised
    log-magnitude (see :class:`~bootsep.models.base.SeparationModel`).
    The mel matrix ``(n_mels, freq)`` (each filter sums to 1) is a buffer: saved in the
    state dict, never trained.
    """

    def __init__(self, num_features: int, n_mels: int | None = None, sample_rate: int = 16000,
                 input_norm: str = "example"):
        super().__init__()
        from ..dsp.features import INPUT_NORMS

        if input_norm not in INPUT_NORMS:
            raise ValueError(f"input_norm must be one of {INPUT_NORMS}, got {input_norm!r}")
        self.input_norm = input_norm
        self.num_features = int(num_features)
        self.n_mels = None if n_mels is None else int(n_mels)
        if self.n_mels is None:
            self.mel = None
        else:
            from ..dsp.features import mel_filterbank

            n_fft = 2 * (self.num_features - 1)
            self.register_buffer("mel", mel_filterbank(int(sample_rate), n_fft, self.n_mels))

    @property
    def output_size(self) -> int:
        return self.num_features if self.n_mels is None else self.n_mels

    def normalise(self, mix_magnitude: torch.Tensor) -> torch.Tensor:
        """``(batch, time, freq)`` magnitude -> normalised dB features (before any mel)."""
        from ..dsp.features import log_magnitude_features

        return log_magnitude_features(mix_magnitude, norm=self.input_norm)

    def forward(self, mix_magnitude: torch.Tensor,
                features: torch.Tensor | None = None) -> torch.Tensor:
        x = self.normalise(mix_magnitude) if features is None else features
        if self.mel is not None:
            x = x @ self.mel.t()
        return x


class RecurrentStack(nn.Module):
    """``num_layers`` (B)LSTM or GRU layers, batch first.

    Args:
        input_size: features per frame.
        hidden_size: units per direction (default 300).
        num_layers: stacked layers (default 4).
        bidirectional: default True.
        dropout: dropout probability on the outputs of every layer but the last (torch's
            inter-layer dropout: active in ``train()``, off in ``eval()``; default 0.3).
        rnn_type: ``'lstm'`` (default) or ``'gru'``.

    ``forward``: ``(batch, time, input_size)`` -> ``(batch, time, hidden_size * directions)``.
    """

    def __init__(self, input_size: int, hidden_size: int = 300, num_layers: int = 4,
                 bidirectional: bool = True, dropout: float = 0.3, rnn_type: str = "lstm"):
        super().__init__()
        if rnn_type not in RNN_TYPES:
            raise ValueError(f"rnn_type {rnn_type!r} not in {RNN_TYPES}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout {dropout} must be in [0, 1)")
        if num_layers < 1 or hidden_size < 1:
            raise ValueError("num_layers and hidden_size must be >= 1")
        rnn_cls = nn.LSTM if rnn_type == "lstm" else nn.GRU
        self.rnn_type = rnn_type
        self.hidden_size = int(hidden_size)
        self.rnn = rnn_cls(int(input_size), self.hidden_size, num_layers=int(num_layers),
                           batch_first=True, bidirectional=bool(bidirectional),
                           dropout=float(dropout) if num_layers > 1 else 0.0)
        self.output_size = self.hidden_size * (2 if bidirectional else 1)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        h = self.hidden_size
        for name, p in self.rnn.named_parameters():
            if name.startswith("weight"):
                nn.init.xavier_normal_(p)
            else:
                nn.init.zeros_(p)
                if self.rnn_type == "lstm" and name.startswith("bias_ih"):
                    with torch.no_grad():
                        p[h:2 * h] = 1.0  # gate order i, f, g, o: forget gate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rnn(x)[0]


class EmbeddingHead(nn.Module):
    """``(batch, time, in_features)`` -> embedding ``(batch, time, freq, embedding_size)``.

    ``activation``: applied in order; each of ``'sigmoid'``, ``'tanh'``, ``'relu'``,
    ``'softmax'`` (over the embedding dim), ``'none'``, ``'unit_norm'`` (L2 over the
    embedding dim).
    """

    def __init__(self, in_features: int, num_features: int, embedding_size: int,
                 activation: str | Sequence[str] = ("sigmoid", "unit_norm")):
        super().__init__()
        self.activation = _as_tuple(activation)
        bad = [a for a in self.activation if a not in EMBEDDING_ACTIVATIONS]
        if bad:
            raise ValueError(f"embedding activation(s) {bad} not in {EMBEDDING_ACTIVATIONS}")
        self.num_features, self.embedding_size = int(num_features), int(embedding_size)
        self.linear = nn.Linear(in_features, self.num_features * self.embedding_size)
        nn.init.xavier_normal_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        e = self.linear(x).view(b, t, self.num_features, self.embedding_size)
        for a in self.activation:
            if a == "sigmoid":
                e = torch.sigmoid(e)
            elif a == "tanh":
                e = torch.tanh(e)
            elif a == "relu":
                e = torch.relu(e)
            elif a == "softmax":
                e = torch.softmax(e, dim=-1)
            elif a == "unit_norm":
                e = nn.functional.normalize(e, p=2.0, dim=-1, eps=1e-8)
        return e


class MaskHead(nn.Module):
    """``(batch, time, in_features)`` -> masks ``(batch, num_sources, time, freq)``.

    ``activation``: ``'sigmoid'`` (default), ``'softmax'`` (over sources), ``'relu'`` or
    ``'clamp'`` (to [0, 1]).
    """

    def __init__(self, in_features: int, num_features: int, num_sources: int = 2,
                 activation: str = "sigmoid"):
        super().__init__()
        if activation not in MASK_ACTIVATIONS:
            raise ValueError(f"mask_activation {activation!r} not in {MASK_ACTIVATIONS}")
        if num_sources < 1:
            raise ValueError("num_sources must be >= 1")
        self.activation = activation
        self.num_features, self.num_sources = int(num_features), int(num_sources)
        self.linear = nn.Linear(in_features, self.num_features * self.num_sources)
        nn.init.xavier_normal_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        m = self.linear(x).view(b, t, self.num_sources, self.num_features).transpose(1, 2)
        if self.activation == "sigmoid":
            return torch.sigmoid(m)
        if self.activation == "softmax":
            return torch.softmax(m, dim=1)
        if self.activation == "relu":
            return torch.relu(m)
        return m.clamp(0.0, 1.0)


class RecurrentTrunk(nn.Module):
    """:class:`InputFeatures` followed by :class:`RecurrentStack`; see the module docstring."""

    def __init__(self, num_features: int, hidden_size: int = 300, num_layers: int = 4,
                 bidirectional: bool = True, dropout: float = 0.3, rnn_type: str = "lstm",
                 n_mels: int | None = None, sample_rate: int = 16000,
                 input_norm: str = "example"):
        super().__init__()
        self.inputs = InputFeatures(num_features, n_mels, sample_rate, input_norm)
        self.stack = RecurrentStack(self.inputs.output_size, hidden_size, num_layers,
                                    bidirectional, dropout, rnn_type)
        self.output_size = self.stack.output_size

    def forward(self, mix_magnitude: torch.Tensor,
                features: torch.Tensor | None = None) -> torch.Tensor:
        return self.stack(self.inputs(mix_magnitude, features))


class _RecurrentModel(SeparationModel):
    """Shared plumbing: trunk + optional embedding / mask heads."""

    def _build(self, num_features, hidden_size, num_layers, bidirectional, dropout, rnn_type,
               n_mels, sample_rate, embedding_size=None, embedding_activation=None,
               num_sources=None, mask_activation=None, input_norm="example"):
        self.num_features = int(num_features)
        self.trunk = RecurrentTrunk(num_features, hidden_size, num_layers, bidirectional,
                                    dropout, rnn_type, n_mels, sample_rate, input_norm)
        keys = []
        if embedding_size is not None:
            self.embedding_head = EmbeddingHead(self.trunk.output_size, num_features,
                                                embedding_size, embedding_activation)
            keys.append("embedding")
        if num_sources is not None:
            self.mask_head = MaskHead(self.trunk.output_size, num_features, num_sources,
                                      mask_activation)
            self.num_sources = int(num_sources)
            keys += ["mask", "estimates"]
        self.output_keys = tuple(keys)

    def input_features(self, mix_magnitude: torch.Tensor) -> torch.Tensor:
        """``(batch, time, freq)`` magnitude -> the trunk's normalised dB input (``input_norm``)."""
        return self.trunk.inputs.normalise(mix_magnitude)

    def forward(self, mix_magnitude: torch.Tensor,
                features: torch.Tensor | None = None) -> dict:
        """``(batch, time, freq)`` magnitude -> dict (see the class docstring for keys).

        ``features``: optional precomputed :meth:`input_features` of a longer signal, sliced
        to the same frames (chunked inference).
        """
        self._check_input(mix_magnitude, self.num_features)
        h = self.trunk(mix_magnitude, features)
        out = {}
        if "embedding" in self.output_keys:
            out["embedding"] = self.embedding_head(h)
        if "mask" in self.output_keys:
            mask = self.mask_head(h)
            out["mask"] = mask
            out["estimates"] = mask * mix_magnitude.unsqueeze(1)
        return out


class DeepClustering(_RecurrentModel):
    """Deep clustering: recurrent trunk -> per-bin embedding.

    Args:
        num_features: STFT bins (257 for 512-point frames).
        hidden_size: units per direction (default 300).
        num_layers: recurrent layers (default 4).
        bidirectional: default True.
        dropout: inter-layer dropout (default 0.3).
        embedding_size: embedding dim (default 20).
        embedding_activation: activations in order (default ``('sigmoid', 'unit_norm')``).
        rnn_type: ``'lstm'`` (default) or ``'gru'``.
        n_mels: mel bands the trunk runs on, or ``None`` (default: all bins).
        sample_rate: Hz, for the mel projection (default 16000).
        input_norm: ``'example'`` (default) or ``'frequency'``; see :class:`InputFeatures`.

    Output: ``{'embedding': (batch, time, freq, embedding_size)}``. ``num_sources`` is None:
    the number of clusters is chosen at inference.
    """

    def __init__(self, num_features: int, hidden_size: int = 300, num_layers: int = 4,
                 bidirectional: bool = True, dropout: float = 0.3, embedding_size: int = 20,
                 embedding_activation: str | Sequence[str] = ("sigmoid", "unit_norm"),
                 rnn_type: str = "lstm", n_mels: int | None = None, sample_rate: int = 16000,
                 input_norm: str = "example"):
        super().__init__()
        self._build(num_features, hidden_size, num_layers, bidirectional, dropout, rnn_type,
                    n_mels, sample_rate, embedding_size=embedding_size,
                    embedding_activation=embedding_activation, input_norm=input_norm)
        self._record_args(locals())


class MaskInference(_RecurrentModel):
    """Mask inference: recurrent trunk -> ``num_sources`` masks.

    Args: as :class:`DeepClustering` (no embedding arguments), plus
        num_sources: masks produced (default 2);
        mask_activation: ``'sigmoid'`` (default), ``'softmax'`` (over sources), ``'relu'``,
            ``'clamp'``.

    Output: ``{'mask', 'estimates'}``, both ``(batch, num_sources, time, freq)``;
    ``estimates = mask * mix_magnitude``.
    """

    def __init__(self, num_features: int, num_sources: int = 2, hidden_size: int = 300,
                 num_layers: int = 4, bidirectional: bool = True, dropout: float = 0.3,
                 mask_activation: str = "sigmoid", rnn_type: str = "lstm",
                 n_mels: int | None = None, sample_rate: int = 16000,
                 input_norm: str = "example"):
        super().__init__()
        self._build(num_features, hidden_size, num_layers, bidirectional, dropout, rnn_type,
                    n_mels, sample_rate, num_sources=num_sources, mask_activation=mask_activation,
                    input_norm=input_norm)
        self._record_args(locals())


class Chimera(_RecurrentModel):
    """Chimera: one trunk, an embedding head and a mask head.

    Args: the union of :class:`DeepClustering` and :class:`MaskInference` arguments, same
    defaults. Output: ``{'embedding', 'mask', 'estimates'}``.
    """

    def __init__(self, num_features: int, num_sources: int = 2, hidden_size: int = 300,
                 num_layers: int = 4, bidirectional: bool = True, dropout: float = 0.3,
                 embedding_size: int = 20,
                 embedding_activation: str | Sequence[str] = ("sigmoid", "unit_norm"),
                 mask_activation: str = "sigmoid", rnn_type: str = "lstm",
                 n_mels: int | None = None, sample_rate: int = 16000,
                 input_norm: str = "example"):
        super().__init__()
        self._build(num_features, hidden_size, num_layers, bidirectional, dropout, rnn_type,
                    n_mels, sample_rate, embedding_size=embedding_size,
                    embedding_activation=embedding_activation, num_sources=num_sources,
                    mask_activation=mask_activation, input_norm=input_norm)
        self._record_args(locals())
