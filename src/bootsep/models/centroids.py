"""The conditional-centroid model: class-conditioned Gaussian mixture on per-bin embeddings,
unfolded for a few EM iterations (paper-system.md §8.3, ``DeepAttractor``).

Data flow, shapes for ``B`` examples, ``T`` frames, ``F`` bins, ``n`` sources, ``G`` Gaussians
per source (``K = n * G`` components), embedding dim ``E``:

    mix_magnitude (B, T, F)
    -> recurrent trunk (normalised dB magnitude, optional frozen mel projection, (B)LSTM)
                                                                          (B, T, H)
    -> embedding head: Linear H -> F * E, activations                     (B, T, F, E)
    -> attractor function on the one-hot source-class vectors (n x n identity):
         'linear':      Linear(n -> G * P), no bias                       (K, P)
         'conditional': Linear(n + H -> G * P), no bias, on [one-hot, time-averaged trunk
                        output] of each example                           (B, K, P)
       P = E means (+ E variance parameters unless fixed_variance) (+ 1 prior logit) per
       Gaussian; means go through the embedding activations, variances are squared, priors
       are a softmax over all K components
    -> E-step: Gaussian log-likelihoods + log priors, posteriors by log-sum-exp
       (``clustering='soft_kmeans'``: softmax of ``-beta * squared distance``, beta learned)
    -> ``num_em_iterations`` x (M-step, E-step); the M-step weights every bin by the min-max
       normalised input features (optionally zeroed below ``weight_threshold``)
    -> 'mask' = posteriors summed over each source's G Gaussians          (B, n, T, F)
    'estimates' = mask * mix_magnitude

Covariances (``covariance_type``): ``'diag'`` (per Gaussian, per dim), ``'spherical'`` (per
Gaussian, the mean over dims), ``'tied_diag'`` (per dim, shared by all Gaussians: the mean over
Gaussians, weighted by their soft counts in the M-step) and ``'tied_spherical'`` (one value).
Every variance is floored by adding ``covariance_min + 1e-6``; with ``fixed_variance`` the
variance is exactly that floor and not learned.

The masks are in the fixed order of the class vectors (source ``i`` = class ``i``), so the
model trains with plain (non-PIT) losses on named sources. It works for any ``num_sources``.

Deviation from the reference: the reference ran the embedding and the GMM on the 300 mel bands
and mapped the masks back through the pseudo-inverse; here the embedding (and so the GMM) is at
the full STFT resolution, so that the deep-clustering loss and the k-means separator use the
same grid as the training targets. ``n_mels`` still sets the trunk's input projection.

The Gaussian computations run in float32 (autocast disabled). The E-step uses the expansion
``sum_e (x_e - mu_e)^2 / var_e = x^2 . (1/var) - 2 x . (mu/var) + mu^2 . (1/var)``, so memory is
``O(B T F K)``, never ``O(B T F K E)``.

Example:
    >>> import torch
    >>> m = ConditionalCentroids(num_features=33, num_sources=4, hidden_size=8, num_layers=1,
    ...                          n_mels=None, embedding_size=5, num_em_iterations=2)
    >>> out = m(torch.rand(2, 10, 33))
    >>> tuple(out['mask'].shape), tuple(out['embedding'].shape), tuple(out['means'].shape)
    ((2, 4, 10, 33), (2, 10, 33, 5), (2, 4, 5))
    >>> bool(torch.allclose(out['mask'].sum(1), torch.ones(2, 10, 33)))
    True
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from ._zoo import apply_activations, check_activations
from .base import SeparationModel
from .recurrent import EmbeddingHead, RecurrentTrunk

COVARIANCE_TYPES = ("diag", "spherical", "tied_diag", "tied_spherical")
ATTRACTORS = ("linear", "conditional")
CLUSTERINGS = ("gmm", "soft_kmeans")
_TINY = 1e-8


def tie_variances(var: torch.Tensor, covariance_type: str,
                  counts: torch.Tensor | None = None) -> torch.Tensor:
    """Apply a covariance type to per-Gaussian diagonal variances.

    Args:
        var: ``(B, K, E)`` diagonal variances (before the floor).
        covariance_type: one of :data:`COVARIANCE_TYPES`.
        counts: ``(B, K)`` soft counts weighting the mean over Gaussians for the tied types
            (default: equal weights).
    Returns:
        ``(B, K, E)`` variances of the requested type (broadcast back to full shape).
    """
    if covariance_type not in COVARIANCE_TYPES:
        raise ValueError(f"covariance_type {covariance_type!r} not in {COVARIANCE_TYPES}")
    if covariance_type in ("spherical", "tied_spherical"):
        var = var.mean(dim=-1, keepdim=True).expand_as(var)
    if covariance_type in ("tied_diag", "tied_spherical"):
        if counts is None:
            tied = var.mean(dim=1, keepdim=True)
        else:
            w = counts / counts.sum(dim=1, keepdim=True).clamp_min(_TINY)
            tied = (w.unsqueeze(-1) * var).sum(dim=1, keepdim=True)
        var = tied.expand_as(var)
    return var


def gaussian_log_likelihoods(x: torch.Tensor, means: torch.Tensor,
                             variances: torch.Tensor) -> torch.Tensor:
    """Diagonal-Gaussian log densities.

    Args:
        x: ``(B, N, E)`` points; ``means``, ``variances``: ``(B, K, E)`` (variances > 0).
    Returns:
        ``(B, N, K)`` ``log N(x_n | mu_k, diag(var_k))``.
    """
    prec = 1.0 / variances
    quad = ((x * x) @ prec.transpose(1, 2) - 2.0 * x @ (means * prec).transpose(1, 2)
            + (means * means * prec).sum(-1).unsqueeze(1))
    log_det = variances.log().sum(-1).unsqueeze(1)
    return -0.5 * (quad + log_det + x.shape[-1] * math.log(2.0 * math.pi))


def weighted_moments(x: torch.Tensor, resp: torch.Tensor, weights: torch.Tensor | None
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """M-step statistics.

    Args:
        x: ``(B, N, E)``; resp: ``(B, N, K)`` posteriors; weights: ``(B, N)`` or None.
    Returns:
        counts ``(B, K)`` (``sum_n w_n r_nk``), means ``(B, K, E)`` and diagonal variances
        ``(B, K, E)`` (weighted, biased, clamped at 0).
    """
    r = resp if weights is None else resp * weights.unsqueeze(-1)
    counts = r.sum(dim=1)
    denom = counts.clamp_min(_TINY).unsqueeze(-1)
    rt = r.transpose(1, 2)
    means = rt @ x / denom
    var = (rt @ (x * x) / denom - means * means).clamp_min(0.0)
    return counts, means, var


class ConditionalCentroids(SeparationModel):
    """Class-conditioned GMM / soft k-means on per-bin embeddings (module docstring).

    Args:
        num_features: STFT bins ``F`` (default 257).
        num_sources: sources (classes) ``n``, in the fixed order of the targets (default 4).
        hidden_size: recurrent units per direction (default 300).
        num_layers: recurrent layers (default 4).
        bidirectional: default True.
        dropout: inter-layer dropout (default 0.3).
        rnn_type: ``'lstm'`` (default) or ``'gru'``.
        n_mels: mel bands of the trunk's frozen input projection (default 300; None = none).
        sample_rate: Hz, for the mel filterbank (default 16000).
        embedding_size: ``E`` (default 15).
        embedding_activation: applied to the embedding and to the means, in order (default
            ``('tanh',)``; sigmoid also works but learns markedly slower, and ``'unit_norm'``
            bounds squared distances by 4, which with the variance floor caps how sharp the
            posteriors can get).
        num_gaussians: ``G`` Gaussians per source (default 1).
        attractor: ``'linear'`` (default) or ``'conditional'`` (also reads the time-averaged
            trunk output).
        clustering: ``'gmm'`` (default) or ``'soft_kmeans'``.
        num_em_iterations: unfolded EM iterations (default 0: the masks are the posteriors of
            the class-conditioned Gaussians).
        covariance_type: one of :data:`COVARIANCE_TYPES` (default ``'tied_diag'``).
        covariance_min: variance floor added to every variance (default 0.5).
        fixed_variance: use the floor as the variance, learn none (default False).
        weight_threshold: M-step bins whose min-max normalised input feature is below this get
            weight 0 (default None: no threshold).
        kmeans_beta: initial inverse temperature of soft k-means (default 1.0; learned,
            kept positive through a softplus).

    Output: ``'embedding'`` ``(B, T, F, E)``, ``'mask'`` and ``'estimates'``
    ``(B, n, T, F)``, ``'means'`` ``(B, K, E)`` (final); with ``clustering='gmm'`` also
    ``'variances'`` ``(B, K, E)`` and ``'log_priors'`` ``(B, K)``. Component ``k`` belongs
    to source ``k // G``.
    """

    def __init__(self, num_features: int = 257, num_sources: int = 4, hidden_size: int = 300,
                 num_layers: int = 4, bidirectional: bool = True, dropout: float = 0.3,
                 rnn_type: str = "lstm", n_mels: int | None = 300, sample_rate: int = 16000,
                 embedding_size: int = 15,
                 embedding_activation: str | Sequence[str] = ("tanh",),
                 num_gaussians: int = 1, attractor: str = "linear", clustering: str = "gmm",
                 num_em_iterations: int = 0, covariance_type: str = "tied_diag",
                 covariance_min: float = 0.5, fixed_variance: bool = False,
                 weight_threshold: float | None = None, kmeans_beta: float = 1.0):
        args = dict(locals())  # the constructor arguments only (recorded at the end)
        super().__init__()
        if attractor not in ATTRACTORS:
            raise ValueError(f"attractor {attractor!r} not in {ATTRACTORS}")
        if clustering not in CLUSTERINGS:
            raise ValueError(f"clustering {clustering!r} not in {CLUSTERINGS}")
        if covariance_type not in COVARIANCE_TYPES:
            raise ValueError(f"covariance_type {covariance_type!r} not in {COVARIANCE_TYPES}")
        if num_sources < 1 or num_gaussians < 1 or embedding_size < 1:
            raise ValueError("num_sources, num_gaussians and embedding_size must be >= 1")
        if num_em_iterations < 0:
            raise ValueError(f"num_em_iterations must be >= 0, got {num_em_iterations}")
        if covariance_min < 0:
            raise ValueError(f"covariance_min must be >= 0, got {covariance_min}")
        if kmeans_beta <= 0:
            raise ValueError(f"kmeans_beta must be > 0, got {kmeans_beta}")
        self.num_features, self.num_sources = int(num_features), int(num_sources)
        self.embedding_size, self.num_gaussians = int(embedding_size), int(num_gaussians)
        self.num_components = self.num_sources * self.num_gaussians
        self.attractor, self.clustering = attractor, clustering
        self.num_em_iterations = int(num_em_iterations)
        self.covariance_type, self.covariance_min = covariance_type, float(covariance_min)
        self.fixed_variance = bool(fixed_variance) or clustering == "soft_kmeans"
        self.weight_threshold = None if weight_threshold is None else float(weight_threshold)
        self.activations = check_activations(embedding_activation)

        self.trunk = RecurrentTrunk(num_features, hidden_size, num_layers, bidirectional,
                                    dropout, rnn_type, n_mels, sample_rate)
        self.embedding_head = EmbeddingHead(self.trunk.output_size, num_features, embedding_size,
                                            embedding_activation)
        e = self.embedding_size
        self._sizes = (e, 0 if self.fixed_variance else e, 1 if clustering == "gmm" else 0)
        per_gaussian = sum(self._sizes)
        in_size = self.num_sources + (self.trunk.output_size if attractor == "conditional" else 0)
        self.attractor_function = nn.Linear(in_size, self.num_gaussians * per_gaussian,
                                            bias=False)
        self._init_attractor()
        if clustering == "soft_kmeans":
            inv = math.log(math.expm1(float(kmeans_beta)))  # softplus^-1
            self.kmeans_beta = nn.Parameter(torch.tensor(inv))
        keys = ["embedding", "mask", "estimates", "means"]
        if clustering == "gmm":
            keys += ["variances", "log_priors"]
        self.output_keys = tuple(keys)
        self._record_args(args)

    def _init_attractor(self) -> None:
        """Xavier-normal weights; the variance rows read 1 from the one-hot inputs and 0 from
        the trunk (so initial variance parameters are exactly 1, i.e. variances 1 + floor)."""
        w = self.attractor_function.weight
        nn.init.xavier_normal_(w)
        e_mu, e_var, _ = self._sizes
        per = sum(self._sizes)
        if e_var:
            with torch.no_grad():
                for g in range(self.num_gaussians):
                    rows = slice(g * per + e_mu, g * per + e_mu + e_var)
                    w[rows] = 0.0
                    w[rows, :self.num_sources] = 1.0

    # ------------------------------------------------------------------ parameters
    def initial_parameters(self, trunk_output: torch.Tensor) -> dict:
        """Class-conditional parameters from the attractor function.

        Args:
            trunk_output: ``(B, T, H)`` (read by the ``'conditional'`` attractor only).
        Returns:
            dict with ``means`` ``(B, K, E)`` (activated), ``variances`` ``(B, K, E)`` (floored,
            typed; ``fixed_variance``: the floor) and ``log_priors`` ``(B, K)`` (log-softmax;
            zeros-based uniform for soft k-means).
        """
        b = trunk_output.shape[0]
        n, g, k = self.num_sources, self.num_gaussians, self.num_components
        onehot = torch.eye(n, device=trunk_output.device, dtype=trunk_output.dtype)
        onehot = onehot.unsqueeze(0).expand(b, n, n)
        if self.attractor == "conditional":
            avg = trunk_output.mean(dim=1, keepdim=True).expand(b, n, trunk_output.shape[-1])
            onehot = torch.cat([onehot, avg], dim=-1)
        raw = self.attractor_function(onehot).view(b, n * g, -1)  # source-major: k = i * G + j
        e_mu, e_var, _ = self._sizes
        means = apply_activations(raw[..., :e_mu], self.activations)
        if self.fixed_variance:
            var = torch.zeros_like(means)
        else:
            var = tie_variances(raw[..., e_mu:e_mu + e_var].square(), self.covariance_type)
        variances = var + self.covariance_min + 1e-6
        if self.clustering == "gmm":
            log_priors = torch.log_softmax(raw[..., -1], dim=-1)
        else:
            log_priors = torch.full((b, k), -math.log(k), device=raw.device, dtype=raw.dtype)
        return {"means": means, "variances": variances, "log_priors": log_priors}

    def em_weights(self, features: torch.Tensor) -> torch.Tensor:
        """M-step bin weights ``(B, T * F)``: the input features min-max normalised per example
        to [0, 1], zeroed below ``weight_threshold`` when set."""
        w = features.flatten(1)
        lo = w.amin(dim=1, keepdim=True)
        hi = w.amax(dim=1, keepdim=True)
        w = (w - lo) / (hi - lo).clamp_min(_TINY)
        if self.weight_threshold is not None:
            w = w * (w >= self.weight_threshold).to(w.dtype)
        return w

    # ------------------------------------------------------------------ clustering
    def e_step(self, x: torch.Tensor, params: dict) -> torch.Tensor:
        """Log posteriors ``(B, N, K)`` of the points ``x`` ``(B, N, E)``."""
        if self.clustering == "soft_kmeans":
            mu = params["means"]
            d2 = ((x * x).sum(-1, keepdim=True) - 2.0 * x @ mu.transpose(1, 2)
                  + (mu * mu).sum(-1).unsqueeze(1)).clamp_min(0.0)
            beta = nn.functional.softplus(self.kmeans_beta)
            return torch.log_softmax(-beta * d2, dim=-1)
        ll = gaussian_log_likelihoods(x, params["means"], params["variances"])
        return torch.log_softmax(ll + params["log_priors"].unsqueeze(1), dim=-1)

    def m_step(self, x: torch.Tensor, resp: torch.Tensor, weights: torch.Tensor) -> dict:
        """Weighted re-estimation from posteriors ``resp`` ``(B, N, K)``."""
        counts, means, var = weighted_moments(x, resp, weights)
        if self.fixed_variance:
            variances = torch.full_like(means, self.covariance_min + 1e-6)
        else:
            variances = tie_variances(var, self.covariance_type, counts) + self.covariance_min \
                + 1e-6
        total = counts.sum(dim=1, keepdim=True).clamp_min(_TINY)
        log_priors = (counts.clamp_min(_TINY) / total).log()
        if self.clustering == "soft_kmeans":
            log_priors = torch.full_like(log_priors, -math.log(self.num_components))
        return {"means": means, "variances": variances, "log_priors": log_priors}

    def cluster(self, embedding: torch.Tensor, params: dict, weights: torch.Tensor
                ) -> tuple[torch.Tensor, dict]:
        """Unfolded EM. ``embedding`` ``(B, T, F, E)`` -> posteriors ``(B, K, T, F)`` and the
        final parameters."""
        b, t, f, e = embedding.shape
        x = embedding.reshape(b, t * f, e)
        log_post = self.e_step(x, params)
        for _ in range(self.num_em_iterations):
            params = self.m_step(x, log_post.exp(), weights)
            log_post = self.e_step(x, params)
        return log_post.exp().transpose(1, 2).reshape(b, -1, t, f), params

    # ------------------------------------------------------------------ forward
    def forward(self, mix_magnitude: torch.Tensor,
                features: torch.Tensor | None = None) -> dict:
        """``(B, T, F)`` magnitude -> dict (see the class docstring).

        ``features``: optional :meth:`input_features` of a longer signal, sliced to these frames
        (used for the trunk input and the M-step weights).
        """
        self._check_input(mix_magnitude, self.num_features)
        feats = self.input_features(mix_magnitude) if features is None else features
        h = self.trunk(mix_magnitude, feats)
        embedding = self.embedding_head(h)
        with torch.autocast(device_type=embedding.device.type, enabled=False):
            emb32 = embedding.float()
            params = self.initial_parameters(h.float())
            post, params = self.cluster(emb32, params, self.em_weights(feats.float()))
        b, _, t, f = post.shape
        mask = post.view(b, self.num_sources, self.num_gaussians, t, f).sum(dim=2)
        out = {"embedding": embedding, "mask": mask,
               "estimates": mask * mix_magnitude.unsqueeze(1), "means": params["means"]}
        if self.clustering == "gmm":
            out["variances"] = params["variances"]
            out["log_priors"] = params["log_priors"]
        return out
