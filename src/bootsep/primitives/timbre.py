"""Timbre clustering: NMF components grouped by the MFCC-like timbre of their spectra.

1. NMF of the mixture magnitude ``|X|^T ~ W H`` (torch multiplicative updates, seeded).
2. Each basis spectrum ``W[:, k]`` gets a timbre vector: log-mel of its power -> DCT (MFCC).
3. k-means groups the components into ``num_sources`` sources.
4. Soft masks are the Wiener-style ratio of the group reconstructions ``W_g H_g``.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..dsp import STFT
from ..separation.base import Separator

_EPS = 1e-10
BETA_LOSSES = ("frobenius", "kl")


def dct_matrix(n_out: int, n_in: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """Orthonormal DCT-II matrix ``(n_out, n_in)`` (rows = cosines; scipy ``norm='ortho'``)."""
    n = torch.arange(n_in, device=device, dtype=torch.float64)
    k = torch.arange(n_out, device=device, dtype=torch.float64)[:, None]
    c = torch.cos(math.pi / n_in * (n + 0.5) * k) * math.sqrt(2.0 / n_in)
    c[0] /= math.sqrt(2.0)
    return c.to(dtype)


def nmf(v: torch.Tensor, n_components: int, n_iter: int = 100, beta_loss: str = "frobenius",
        seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Batched NMF by multiplicative updates: ``v (batch, freq, time) ~ W (b,f,k) @ H (b,k,t)``.

    The initialisation is drawn from a CPU generator seeded with ``seed`` (identical for every
    example, scaled by each example's mean), so an example factorises the same way alone or in
    a batch. Returns ``(W, H)`` with the columns of ``W`` scaled to unit L2 norm.
    """
    if beta_loss not in BETA_LOSSES:
        raise ValueError(f"unknown beta_loss {beta_loss!r}; choose one of {BETA_LOSSES}")
    b, f, t = v.shape
    gen = torch.Generator().manual_seed(int(seed))
    w0 = torch.rand(f, n_components, generator=gen, dtype=torch.float64)
    h0 = torch.rand(n_components, t, generator=gen, dtype=torch.float64)
    scale = (v.flatten(1).mean(dim=1) / n_components).clamp_min(_EPS).sqrt().view(b, 1, 1)
    w = w0.to(device=v.device, dtype=v.dtype).expand(b, f, n_components) * scale
    h = h0.to(device=v.device, dtype=v.dtype).expand(b, n_components, t) * scale
    eps = torch.finfo(v.dtype).eps
    for _ in range(int(n_iter)):
        if beta_loss == "frobenius":
            h = h * (w.transpose(1, 2) @ v) / ((w.transpose(1, 2) @ w) @ h + eps)
            w = w * (v @ h.transpose(1, 2)) / (w @ (h @ h.transpose(1, 2)) + eps)
        else:
            ratio = v / (w @ h + eps)
            h = h * (w.transpose(1, 2) @ ratio) / (w.sum(dim=1, keepdim=True).transpose(1, 2) + eps)
            ratio = v / (w @ h + eps)
            w = w * (ratio @ h.transpose(1, 2)) / (h.sum(dim=2, keepdim=True).transpose(1, 2) + eps)
    norm = w.norm(dim=1, keepdim=True).clamp_min(_EPS)
    return w / norm, h * norm.transpose(1, 2)


class TimbreClustering(Separator):
    """Separate by timbre: NMF + MFCC + k-means of the components.

    Args:
        sample_rate: Hz (default 16000).
        stft: the shared STFT (default 512/128 sqrt-Hann).
        num_sources: number of groups (default 2).
        n_components: NMF rank (default 16).
        n_mfcc: MFCC coefficients per component, c0 included (default 13).
        n_mels: mel bands for the timbre vector (default 40).
        n_iter: multiplicative-update iterations (default 100).
        beta_loss: ``'kl'`` (default; generalised Kullback-Leibler) or ``'frobenius'``.
        mask_power: exponent of the Wiener-style ratio ``V_g^p / sum_j V_j^p`` (default 2).
        seed: seeds the NMF initialisation and k-means (default 0).
        source_labels: default ``('accompaniment', 'vocals')`` for 2 sources, else
            ``source0, source1, ...``.
        device: see :class:`Separator`.

    Groups are ordered by increasing spectral centroid of their reconstruction (darker group
    first). k-means runs in scikit-learn on the (components x n_mfcc) timbre vectors, one
    example at a time; everything else is batched torch on the input's device.
    """

    arbitrary_order = True  # groups are sorted by brightness, not matched to labels

    def __init__(self, sample_rate: int = 16000, stft: STFT | None = None, num_sources: int = 2,
                 n_components: int = 16, n_mfcc: int = 13, n_mels: int = 40, n_iter: int = 100,
                 beta_loss: str = "kl", mask_power: float = 2.0, seed: int = 0,
                 source_labels=None, device: str | None = None):
        if source_labels is None:
            source_labels = (("accompaniment", "vocals") if num_sources == 2
                             else tuple(f"source{i}" for i in range(num_sources)))
        super().__init__(sample_rate, stft, source_labels, device)
        if len(self.source_labels) != num_sources:
            raise ValueError(f"{len(self.source_labels)} source_labels for {num_sources} sources")
        if n_components < num_sources:
            raise ValueError(f"n_components ({n_components}) < num_sources ({num_sources})")
        if beta_loss not in BETA_LOSSES:
            raise ValueError(f"unknown beta_loss {beta_loss!r}; choose one of {BETA_LOSSES}")
        self.n_components = int(n_components)
        self.n_mfcc = int(n_mfcc)
        self.n_mels = int(n_mels)
        self.n_iter = int(n_iter)
        self.beta_loss = beta_loss
        self.mask_power = float(mask_power)
        self.seed = int(seed)

    def factorize(self, mix_spec: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """NMF of ``|X|``: ``W (batch, freq, k)`` unit-norm bases, ``H (batch, k, time)``."""
        v = mix_spec.abs().transpose(1, 2).contiguous()
        return nmf(v, self.n_components, self.n_iter, self.beta_loss, self.seed)

    def timbre(self, w: torch.Tensor) -> torch.Tensor:
        """MFCC-like vectors ``(batch, k, n_mfcc)`` of basis spectra ``W (batch, freq, k)``."""
        from ..dsp.features import mel_filterbank

        fb = mel_filterbank(self.sample_rate, self.stft.window_length, self.n_mels)
        fb = fb.to(device=w.device, dtype=w.dtype)
        mel = fb @ w.pow(2)  # (batch, n_mels, k)
        db = 10.0 * torch.log10(mel.clamp_min(_EPS))
        db = torch.maximum(db, db.amax(dim=1, keepdim=True) - 80.0)
        dct = dct_matrix(min(self.n_mfcc, self.n_mels), self.n_mels, w.device, w.dtype)
        return (dct @ db).transpose(1, 2)

    def _groups(self, feats: torch.Tensor) -> np.ndarray:
        """k-means labels ``(batch, k)`` of timbre vectors (scikit-learn, seeded)."""
        from sklearn.cluster import KMeans

        labels = []
        for x in feats.detach().cpu().double().numpy():
            km = KMeans(n_clusters=self.num_sources, n_init=10, random_state=self.seed)
            labels.append(km.fit_predict(x))
        return np.stack(labels)

    def masks(self, mix_spec: torch.Tensor, source_specs: torch.Tensor | None = None) -> torch.Tensor:
        w, h = self.factorize(mix_spec)
        labels = torch.as_tensor(self._groups(self.timbre(w)), dtype=torch.long, device=w.device)
        onehot = torch.nn.functional.one_hot(labels, self.num_sources).to(w.dtype)  # (b, k, s)
        # group reconstructions (batch, n_src, freq, time)
        recon = torch.einsum("bfk,bks,bkt->bsft", w, onehot, h)
        freqs = torch.arange(w.shape[1], device=w.device, dtype=w.dtype)
        energy = recon.sum(dim=-1)  # (b, s, f)
        centroid = (energy * freqs).sum(-1) / energy.sum(-1).clamp_min(_EPS)
        order = centroid.argsort(dim=1)
        recon = recon.gather(1, order[:, :, None, None].expand_as(recon))
        p = recon.clamp_min(0).pow(self.mask_power)
        total = p.sum(dim=1, keepdim=True)
        m = torch.where(total > 0, p / total.clamp_min(torch.finfo(p.dtype).tiny),
                        torch.full_like(p, 1.0 / self.num_sources))
        return m.transpose(-1, -2).contiguous()
