"""The one STFT / iSTFT used by models, primitives, training targets and inversion.

Layout convention (shared by the whole project): a complex spectrogram is shaped
``(..., time, freq)`` where ``freq = window_length // 2 + 1``. Any leading dimensions
(batch, sources, channels) are carried through unchanged.

Example:
    >>> import torch
    >>> stft = STFT(window_length=512, hop_length=128)
    >>> x = torch.randn(2, 16000)
    >>> X = stft(x)
    >>> X.shape
    torch.Size([2, 126, 257])
    >>> y = stft.inverse(X, length=16000)
    >>> bool(torch.allclose(x, y, atol=1e-4))
    True
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

WINDOWS = ("sqrt_hann", "hann", "hamming", "rectangular")


def make_window(window_type: str, length: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """Periodic analysis window of ``length`` samples.

    ``sqrt_hann`` (the default everywhere) gives perfect reconstruction at 75 % overlap and is
    what the reference system used.
    """
    if window_type == "sqrt_hann":
        return torch.hann_window(length, periodic=True, device=device, dtype=dtype).sqrt()
    if window_type == "hann":
        return torch.hann_window(length, periodic=True, device=device, dtype=dtype)
    if window_type == "hamming":
        return torch.hamming_window(length, periodic=True, device=device, dtype=dtype)
    if window_type == "rectangular":
        return torch.ones(length, device=device, dtype=dtype)
    raise ValueError(f"unknown window_type {window_type!r}; choose one of {WINDOWS}")


@dataclass(frozen=True)
class STFTParams:
    """STFT settings. Units: samples. Defaults: 32 ms / 8 ms at 16 kHz, sqrt-Hann."""

    window_length: int = 512
    hop_length: int = 128
    window_type: str = "sqrt_hann"

    def to_dict(self) -> dict:
        return asdict(self)


class STFT:
    """Complex STFT with ``(..., time, freq)`` output, and its exact inverse.

    Args:
        window_length: FFT size and window length in samples (default 512).
        hop_length: hop in samples (default 128).
        window_type: one of ``sqrt_hann`` (default), ``hann``, ``hamming``, ``rectangular``.

    ``center=True`` framing (reflect padding) is used, so ``time = samples // hop + 1``.
    The inverse divides by the window envelope (``torch.istft``), so any NOLA pair works.
    Works on any device and on float32/float64 input; the window is cached per device/dtype.
    """

    def __init__(self, window_length: int = 512, hop_length: int = 128,
                 window_type: str = "sqrt_hann"):
        if window_length <= 0 or hop_length <= 0:
            raise ValueError("window_length and hop_length must be positive")
        if hop_length > window_length:
            raise ValueError(f"hop_length {hop_length} > window_length {window_length}")
        make_window(window_type, 4)  # validates the name
        self.params = STFTParams(window_length, hop_length, window_type)
        self._windows: dict = {}

    @classmethod
    def from_params(cls, params: STFTParams | dict) -> STFT:
        if isinstance(params, dict):
            params = STFTParams(**params)
        return cls(params.window_length, params.hop_length, params.window_type)

    @property
    def window_length(self) -> int:
        return self.params.window_length

    @property
    def hop_length(self) -> int:
        return self.params.hop_length

    @property
    def n_freq(self) -> int:
        """Number of frequency bins, ``window_length // 2 + 1``."""
        return self.params.window_length // 2 + 1

    def num_frames(self, num_samples: int) -> int:
        return num_samples // self.params.hop_length + 1

    def bin_frequencies(self, sample_rate: float) -> torch.Tensor:
        """Centre frequency of each bin in Hz, shape ``(freq,)``."""
        return torch.arange(self.n_freq, dtype=torch.float32) * sample_rate / self.window_length

    def window(self, device, dtype) -> torch.Tensor:
        key = (str(device), dtype)
        if key not in self._windows:
            self._windows[key] = make_window(self.params.window_type, self.window_length,
                                             device=device, dtype=dtype)
        return self._windows[key]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Waveform ``(..., samples)`` -> complex spectrogram ``(..., time, freq)``."""
        if not torch.is_floating_point(x):
            x = x.float()
        lead = x.shape[:-1]
        flat = x.reshape(-1, x.shape[-1])
        X = torch.stft(flat, n_fft=self.window_length, hop_length=self.hop_length,
                       win_length=self.window_length, window=self.window(x.device, x.dtype),
                       center=True, pad_mode="reflect" if x.shape[-1] > self.window_length // 2
                       else "constant", return_complex=True)
        X = X.transpose(-1, -2)
        return X.reshape(*lead, X.shape[-2], X.shape[-1])

    def inverse(self, X: torch.Tensor, length: int | None = None) -> torch.Tensor:
        """Complex spectrogram ``(..., time, freq)`` -> waveform ``(..., length)``."""
        lead = X.shape[:-2]
        flat = X.reshape(-1, X.shape[-2], X.shape[-1]).transpose(-1, -2)
        real_dtype = torch.float64 if X.dtype == torch.complex128 else torch.float32
        y = torch.istft(flat, n_fft=self.window_length, hop_length=self.hop_length,
                        win_length=self.window_length, window=self.window(X.device, real_dtype),
                        center=True, length=length)
        return y.reshape(*lead, y.shape[-1])

    def apply_masks(self, masks: torch.Tensor, mix_spec: torch.Tensor,
                    length: int | None = None) -> torch.Tensor:
        """Source waveforms from masks: ``inverse(masks * mix_spec)`` per source.

        Args:
            masks: ``(..., n_src, time, freq)`` real (or complex) masks.
            mix_spec: complex mixture ``(..., time, freq)`` (this STFT's output).
            length: samples of the output (default: what the frames give).
        Returns:
            ``(..., n_src, length)`` waveforms. Keeps autograd (the trainer's audio losses).
        """
        return self.inverse(masks * mix_spec.unsqueeze(-3), length=length)

    def __repr__(self) -> str:
        p = self.params
        return f"STFT(window_length={p.window_length}, hop_length={p.hop_length}, window_type={p.window_type!r})"
