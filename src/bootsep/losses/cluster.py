"""Embedding losses: deep clustering (affinity) and whitened k-means.

Shapes: embedding ``V`` is ``(batch, time, freq, dim)``; assignments ``Y`` are
``(batch, n_src, time, freq)`` (one-hot IBM from :func:`bootsep.losses.targets.ibm`, or soft);
weights ``w`` are ``(batch, time, freq)``. Per example the ``time * freq`` bins are flattened
to rows. Both ``V`` and ``Y`` are L2-normalised per row (an all-zero row, e.g. a silent bin of
the IBM, stays zero), then each row is multiplied by its weight ``w`` (no square root is
taken here: :func:`bootsep.dsp.features.magnitude_weights` already returns
``sqrt(|X| / sum|X| * T * F)``). A pair of bins ``(i, j)`` then counts with ``w_i² w_j²``.

Confidence: ``confidence`` (``(batch, time, freq)``, e.g. in [0, 1]) is just a product with the
weights, ``w <- w * confidence``; ``weights=None, confidence=c`` uses ``c`` alone. Pass
``confidence.sqrt()`` to scale each bin's *squared* weight by the confidence instead.

Example:
    >>> import torch
    >>> y = torch.nn.functional.one_hot(torch.randint(0, 2, (1, 5, 7)), 2).float()  # (B,T,F,C)
    >>> v = torch.cat([y, torch.zeros(1, 5, 7, 3)], dim=-1)  # perfect 5-dim embedding
    >>> float(deep_clustering_loss(v, y.permute(0, 3, 1, 2))[0])
    0.0
"""

from __future__ import annotations

import torch

_EPS = 1e-12


def _rows(embedding: torch.Tensor, assignments: torch.Tensor, weights: torch.Tensor | None,
          confidence: torch.Tensor | None):
    """Flatten, normalise and weight: returns ``V (B, TF, D)``, ``Y (B, TF, C)``, ``w (B, TF)``."""
    if embedding.dim() != 4 or assignments.dim() != 4 or \
            assignments.shape[0] != embedding.shape[0] or \
            assignments.shape[2:] != embedding.shape[1:3]:
        raise ValueError(f"embedding {tuple(embedding.shape)} must be (batch, time, freq, dim) "
                         f"and assignments {tuple(assignments.shape)} (batch, n_src, time, freq) "
                         "with the same batch, time and freq")
    batch, n_time, n_freq, dim = embedding.shape
    v = embedding.reshape(batch, n_time * n_freq, dim)
    y = assignments.to(v.dtype).permute(0, 2, 3, 1).reshape(batch, n_time * n_freq, -1)
    v = v / v.norm(dim=-1, keepdim=True).clamp_min(_EPS)
    y = y / y.norm(dim=-1, keepdim=True).clamp_min(_EPS)
    w = torch.ones(batch, n_time * n_freq, dtype=v.dtype, device=v.device)
    for name, extra in (("weights", weights), ("confidence", confidence)):
        if extra is None:
            continue
        if tuple(extra.shape) != (batch, n_time, n_freq):
            raise ValueError(f"{name} {tuple(extra.shape)} must be (batch, time, freq) = "
                             f"{(batch, n_time, n_freq)}")
        w = w * extra.reshape(batch, -1).to(v.dtype)
    return v * w.unsqueeze(-1), y * w.unsqueeze(-1), w


def deep_clustering_loss(embedding: torch.Tensor, assignments: torch.Tensor,
                         weights: torch.Tensor | None = None,
                         confidence: torch.Tensor | None = None) -> torch.Tensor:
    """Weighted deep-clustering affinity loss (Wang et al. 2018, eq. 7), per example.

    ``(||VᵀV||² - 2||VᵀY||² + ||YᵀY||²) / (Σ w²)²`` with normalised, weighted rows (module
    docstring); equals ``||VVᵀ - YYᵀ||²_F / (Σ w²)²`` without building the ``TF x TF``
    affinities (cost ``O(TF·D²)``).

    Args:
        embedding: ``(batch, time, freq, dim)``.
        assignments: ``(batch, n_src, time, freq)``.
        weights: ``(batch, time, freq)`` row multipliers, default all ones.
        confidence: optional ``(batch, time, freq)`` extra multiplier of ``weights``.
    Returns:
        ``(batch,)``; 0 for an embedding equal to the one-hot assignments. With unit weights
        and every bin assigned it is at most 1.
    """
    v, y, w = _rows(embedding, assignments, weights, confidence)
    vtv = v.transpose(1, 2) @ v
    vty = v.transpose(1, 2) @ y
    yty = y.transpose(1, 2) @ y
    total = vtv.square().sum((1, 2)) - 2.0 * vty.square().sum((1, 2)) + yty.square().sum((1, 2))
    norm = w.square().sum(dim=1).square().clamp_min(_EPS)
    return total / norm


def whitened_kmeans_loss(embedding: torch.Tensor, assignments: torch.Tensor,
                         weights: torch.Tensor | None = None,
                         confidence: torch.Tensor | None = None) -> torch.Tensor:
    """Whitened k-means loss (Wang et al. 2018, eq. 6) in nussl's form, per example.

    ``(D + C) - 2 tr((VᵀV + I)⁻¹ VᵀY (YᵀY + I)⁻¹ YᵀV)`` with ``D`` = embedding dim, ``C`` =
    n_src and the normalised, weighted rows of the module docstring (no ``Σw²`` division;
    the ``+I`` keeps the inverses defined). This is the scale BCA's loss weights
    (``WhitenedKMeansLoss: 20000``) and the ``1 - loss / (D + C)`` confidence assume; it is
    the sum of the whitened k-means cost of ``V`` given ``Y`` (eq. 6: ``D - tr(...)``) and its
    mirror image for ``Y`` given ``V``. Range ``[D + C - 2·min(D, C), D + C]`` (slightly above
    the minimum because of ``+I``). The inverses use Cholesky factorisations.

    Args / Returns: as :func:`deep_clustering_loss`.
    """
    v, y, _ = _rows(embedding, assignments, weights, confidence)
    dim, n_src = v.shape[-1], y.shape[-1]
    vtv = v.transpose(1, 2) @ v + torch.eye(dim, dtype=v.dtype, device=v.device)
    yty = y.transpose(1, 2) @ y + torch.eye(n_src, dtype=v.dtype, device=v.device)
    vty = v.transpose(1, 2) @ y  # (B, D, C)
    a = torch.cholesky_solve(vty, torch.linalg.cholesky(vtv))  # (VᵀV+I)⁻¹ VᵀY
    b = torch.cholesky_solve(vty.transpose(1, 2), torch.linalg.cholesky(yty))  # (YᵀY+I)⁻¹ YᵀV
    trace = (a * b.transpose(1, 2)).sum(dim=(1, 2))
    return (dim + n_src) - 2.0 * trace
