"""REPET-SIM: REPET with a frame-similarity matrix instead of a period (Rafii & Pardo, 2012).

For every frame, the frames most similar to it (peaks of its row of the cosine-similarity
matrix, at least ``min_distance`` apart, the frame itself excluded) are taken as repetitions of
the same background; their element-wise median models the background of that frame.
"""

from __future__ import annotations

import torch

from ..dsp import STFT
from ..separation.base import Separator
from ._filters import (
    CHUNK_ELEMENTS,
    background_foreground,
    check_mask_type,
    high_pass_bins,
    magnitude,
    masked_lower_median,
    ratio_mask,
    sliding_max,
)

SIMILARITIES = ("cosine",)


def cosine_rows(mag: torch.Tensor) -> torch.Tensor:
    """Frames of ``(batch, time, freq)`` scaled to unit L2 norm (all-zero frames stay zero)."""
    norm = mag.norm(dim=-1, keepdim=True)
    return mag / torch.where(norm > 0, norm, torch.ones_like(norm))


class RepetSim(Separator):
    """REPET-SIM on the shared STFT.

    Args:
        sample_rate: Hz (default 16000).
        stft: the shared STFT (default 512/128 sqrt-Hann).
        similarity: ``'cosine'`` (the only one; frames compared by cosine similarity of their
            magnitude spectra).
        k: maximum number of similar frames per frame (default 100).
        min_distance: minimum distance in seconds between a frame and its similar frames, and
            between two similar frames (default 1.0).
        similarity_threshold: only frames with similarity above this count (default 0).
        high_pass_cutoff: bins below this frequency (Hz) go to the background (default 100).
        mask_power, mask_type: as in :class:`~bootsep.primitives.repet.Repet`.
        source_labels: default ``('accompaniment', 'vocals')`` = [background, foreground].
        device: see :class:`Separator`.

    Similar frames are the local maxima of each row of the similarity matrix over a window of
    ``±(d - 1)`` frames (``d`` = ``min_distance`` in frames), i.e. peaks at least ``d`` apart;
    the frame itself is always such a peak and is dropped, which also removes its near
    neighbours. Frames with no similar frame keep their own magnitude (background mask 1).

    Memory/time: the similarity matrix is computed in row blocks (at most ~8 M entries at
    once), so memory stays bounded for any length, but time grows as O(T^2 F): 30 s at hop
    128 (T = 3751) is a 3751^2 matrix (56 MB if held at once) and takes well under a second
    on two CPU cores; 10 minutes of audio (T = 75k) would need ~1.4 TFLOP, so cut long
    recordings into segments first.
    """

    def __init__(self, sample_rate: int = 16000, stft: STFT | None = None,
                 similarity: str = "cosine", k: int = 100, min_distance: float = 1.0,
                 similarity_threshold: float = 0.0, high_pass_cutoff: float = 100.0,
                 mask_power: float = 1.0, mask_type: str = "soft",
                 source_labels=("accompaniment", "vocals"), device: str | None = None):
        super().__init__(sample_rate, stft, source_labels, device)
        if similarity not in SIMILARITIES:
            raise ValueError(f"unknown similarity {similarity!r}; choose one of {SIMILARITIES}")
        if int(k) < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        if min_distance < 0:
            raise ValueError(f"min_distance must be >= 0 seconds, got {min_distance}")
        self.similarity = similarity
        self.k = int(k)
        self.min_distance = float(min_distance)
        self.similarity_threshold = float(similarity_threshold)
        self.high_pass_cutoff = float(high_pass_cutoff)
        self.mask_power = float(mask_power)
        self.mask_type = check_mask_type(mask_type)

    @property
    def min_distance_frames(self) -> int:
        """``min_distance`` in STFT frames (at least 1: a frame is never its own neighbour)."""
        return max(1, int(round(self.min_distance * self.sample_rate / self.stft.hop_length)))

    def similar_frames(self, mag: torch.Tensor, start: int = 0, stop: int | None = None
                       ) -> tuple[torch.Tensor, torch.Tensor]:
        """Similar frames for frames ``start:stop`` of magnitudes ``(batch, time, freq)``.

        Returns ``(indices, valid)``, both ``(batch, stop - start, k')`` with ``k' <= k``
        (long indices into time, and a bool mask of which entries are real neighbours),
        sorted by decreasing similarity.
        """
        stop = mag.shape[1] if stop is None else stop
        return self._similar(cosine_rows(mag), start, stop)

    def _similar(self, unit: torch.Tensor, start: int, stop: int):
        b, t, _ = unit.shape
        sim = unit[:, start:stop] @ unit.transpose(1, 2)  # (batch, rows, time)
        d = self.min_distance_frames
        rows = sim.shape[1]
        if d > 1:
            fill = torch.full((b, rows, d - 1), float("-inf"), dtype=sim.dtype, device=sim.device)
            pooled = sliding_max(torch.cat([fill, sim, fill], dim=-1), 2 * d - 1)
            peak = sim >= pooled
        else:
            peak = torch.ones_like(sim, dtype=torch.bool)
        frame = torch.arange(start, stop, device=unit.device)
        lag = (torch.arange(t, device=unit.device)[None, :] - frame[:, None]).abs()
        keep = peak & (lag >= d)[None] & (sim > self.similarity_threshold)
        neg = torch.tensor(float("-inf"), dtype=sim.dtype, device=sim.device)
        scores = torch.where(keep, sim, neg)
        k = min(self.k, t, -(-t // d) + 1)  # peaks are >= d apart: at most ceil(t / d) + 1
        val, idx = scores.topk(k, dim=-1)
        valid = val > float("-inf")
        used = int(valid.sum(dim=-1).max().item()) if valid.numel() else 0
        return idx[..., :max(used, 1)], valid[..., :max(used, 1)]

    def background_model(self, mag: torch.Tensor) -> torch.Tensor:
        """Median of similar frames, capped by the mixture: ``(batch, time, freq)``."""
        b, t, f = mag.shape
        model = torch.empty_like(mag)
        unit = cosine_rows(mag)
        rows = max(1, CHUNK_ELEMENTS // max(1, b * max(t, min(self.k, t) * f)))
        for start in range(0, t, rows):
            stop = min(t, start + rows)
            idx, valid = self._similar(unit, start, stop)  # (b, r, k')
            r, kk = idx.shape[1], idx.shape[2]
            flat = idx.reshape(b, r * kk, 1).expand(b, r * kk, f)
            frames = mag.gather(1, flat).reshape(b, r, kk, f)
            count = valid.sum(dim=-1, keepdim=True)  # (b, r, 1): valid entries come first
            med = masked_lower_median(frames, count, dim=2)
            own = mag[:, start:stop]
            med = torch.where(count > 0, med, own)
            model[:, start:stop] = torch.minimum(med, own)
        return model

    def masks(self, mix_spec: torch.Tensor, source_specs: torch.Tensor | None = None) -> torch.Tensor:
        mag = magnitude(mix_spec)
        bg = ratio_mask(self.background_model(mag), mag, self.mask_power)
        hp = high_pass_bins(self.stft, self.sample_rate, self.high_pass_cutoff)
        return background_foreground(bg, hp, self.mask_type)
