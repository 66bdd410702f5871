"""Confidence measures of a separation, computed on the per-bin features of its loudest bins.

A separator that clusters per-bin features (the primitive ensemble's stacked masks, a deep
model's embedding) is "confident" when those features form ``K`` tight, well-separated groups.
Every measure here first keeps the bins whose mixture magnitude is at or above the
``threshold_percentile``-th percentile (:func:`select_loud_bins`), then clusters them.

Measures (all deterministic given ``seed``; higher = more confident):

================== ====================================================================== ========
name               definition                                                             range
================== ====================================================================== ========
silhouette         KMeans(K) on a seeded subsample of ``max_points``; mean silhouette     [-1, 1]
posterior          KMeans(K) distances d; p = softmax(-beta d); mean (K max p - 1)/(K-1)  [0, 1]
combined           silhouette x posterior (the reference system's confidence)             [-1, 1]
fixed_posterior    as posterior, but with the ensemble's FIXED centres (no fitting)       [0, 1]
jensen_shannon     JS divergence (bits) between a 1- and a K-component GMM, Monte Carlo   [0, 1]
loudness           K x share of the smallest KMeans cluster                               [0, 1]
whitened_kmeans    1 - L_WKM / (D + K) on the KMeans assignment (see function)            see fn
dpcl_classic       1 - deep-clustering loss of the unit-normalised features vs KMeans     [0, 1]
spatial            jensen_shannon x cluster balance (K x smallest GMM share + 1e-3)      [0, 1]
spatial_margin     on posterior features: mean (K max p - 1)/(K - 1) x (K min share + 1e-3) [0, 1]
                   (``nan`` for features that are not K posteriors)
================== ====================================================================== ========

``spatial`` is the predecessor's confidence of its spatial-clustering teacher (on the IPD/ILD
features of :class:`~bootsep.primitives.spatial.SpatialClustering`); its per-T-F counterpart
is :func:`spatial_tf_confidence`. ``spatial_margin`` is that per-T-F confidence averaged over
the loud bins, times the same balance, for separators whose features ARE their posteriors
(``SpatialClustering(confidence_features='posteriors')``): it asks whether the teacher's own
assignment is decisive and balanced rather than whether its cue features look clustered.

Degenerate input: when the loud bins hold fewer than ``K`` distinct feature vectors (e.g. all
features identical) every measure returns its "no structure" value, ``0.0``. When fewer loud
bins than ``K`` are selected the clustering is undefined and every measure returns ``nan``
(silhouette also needs at least ``K + 1`` points).

Inputs may be numpy arrays or torch tensors (any device); features ``(time, freq, dim)`` or
``(batch, time, freq, dim)`` with mix magnitude ``(time, freq)`` or ``(batch, time, freq)``.
"""

from __future__ import annotations

import math

import numpy as np

MEASURES = ("silhouette", "posterior", "combined", "fixed_posterior", "jensen_shannon",
            "loudness", "whitened_kmeans", "dpcl_classic", "spatial", "spatial_margin")


def _to_numpy(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def select_loud_bins(features, mix_magnitude, threshold_percentile: float = 99.0,
                     min_frequency_bin: int = 0) -> np.ndarray:
    """Features of the loudest T-F bins.

    Args:
        features: ``(time, freq, dim)`` or ``(batch, time, freq, dim)``.
        mix_magnitude: ``(time, freq)`` or ``(batch, time, freq)``, same leading shape.
        threshold_percentile: keep bins whose magnitude is ``>=`` this percentile (0-100) of
            all considered magnitudes (pooled over the batch) (default 99 = loudest 1 %).
        min_frequency_bin: ignore frequency bins below this index (default 0 = none). Useful
            when some features are forced to a constant below a cutoff (the primitives'
            high-pass), which otherwise fills the loudest bins with identical features.
    Returns:
        ``(N, dim)`` float64 array.
    """
    feats = _to_numpy(features)
    mag = _to_numpy(mix_magnitude)
    if feats.ndim == 3:
        feats = feats[None]
    if mag.ndim == 2:
        mag = mag[None]
    if feats.ndim != 4 or mag.ndim != 3 or feats.shape[:3] != mag.shape:
        raise ValueError(f"features {tuple(_to_numpy(features).shape)} and mix_magnitude "
                         f"{tuple(_to_numpy(mix_magnitude).shape)} must be (..., time, freq, dim) "
                         "and (..., time, freq) with the same leading shape")
    if not 0.0 <= threshold_percentile <= 100.0:
        raise ValueError(f"threshold_percentile must be in [0, 100], got {threshold_percentile}")
    if min_frequency_bin > 0:
        feats = feats[:, :, min_frequency_bin:]
        mag = mag[:, :, min_frequency_bin:]
    mag = np.abs(mag).astype(np.float64)
    if mag.size == 0:
        return np.zeros((0, feats.shape[-1]))
    thr = np.percentile(mag, threshold_percentile)
    return feats[mag >= thr].astype(np.float64)


# ----------------------------------------------------------------------------- internals


def _status(points: np.ndarray, k: int) -> str:
    """'nan' (too few points), 'degenerate' (< k distinct rows) or 'ok'."""
    if k < 2:
        raise ValueError(f"num_sources must be >= 2, got {k}")
    if points.shape[0] < k or not np.all(np.isfinite(points)):
        return "nan"
    distinct = np.unique(points, axis=0).shape[0] if points.shape[0] <= 200_000 else k
    return "degenerate" if distinct < k else "ok"


def _kmeans(points: np.ndarray, k: int, seed: int):
    """Seeded KMeans; returns ``(labels (N,), distances (N, k))``."""
    from sklearn.cluster import KMeans

    km = KMeans(n_clusters=k, n_init=3, random_state=seed)
    d = km.fit_transform(points)
    return km.labels_, d


def _subsample(points: np.ndarray, max_points: int, seed: int) -> np.ndarray:
    if max_points is None or points.shape[0] <= max_points:
        return points
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(points.shape[0], size=int(max_points), replace=False))
    return points[idx]


class _Points:
    """Loud-bin features plus lazily computed clusterings shared by several measures."""

    def __init__(self, points: np.ndarray, k: int, seed: int):
        self.x = points
        self.k = int(k)
        self.seed = int(seed)
        self.status = _status(points, self.k)
        self._km = None
        self._sil = {}

    def kmeans(self):
        if self._km is None:
            self._km = _kmeans(self.x, self.k, self.seed)
        return self._km

    def silhouette(self, max_points: int) -> float:
        if self.status != "ok":
            return math.nan if self.status == "nan" else 0.0
        if max_points not in self._sil:
            from sklearn.metrics import silhouette_score

            sub = _subsample(self.x, max_points, self.seed)
            if _status(sub, self.k) != "ok":
                self._sil[max_points] = 0.0
            else:
                labels, _ = _kmeans(sub, self.k, self.seed)
                n_lab = len(np.unique(labels))
                if n_lab < 2:
                    self._sil[max_points] = 0.0
                elif n_lab >= sub.shape[0]:
                    self._sil[max_points] = math.nan
                else:
                    self._sil[max_points] = float(silhouette_score(sub, labels))
        return self._sil[max_points]

    def posterior(self, beta: float, centers=None) -> float:
        if self.status != "ok":
            return math.nan if self.status == "nan" else 0.0
        if centers is None:
            _, d = self.kmeans()
        else:
            d = np.linalg.norm(self.x[:, None, :] - centers[None], axis=-1)
        z = -beta * d
        z = z - z.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        k = self.k
        return float(np.mean((k * p.max(axis=1) - 1.0) / (k - 1.0)))

    def loudness(self) -> float:
        if self.status != "ok":
            return math.nan if self.status == "nan" else 0.0
        labels, _ = self.kmeans()
        share = np.bincount(labels, minlength=self.k) / labels.shape[0]
        return float(self.k * share.min())

    def onehot(self) -> np.ndarray:
        labels, _ = self.kmeans()
        y = np.zeros((labels.shape[0], self.k))
        y[np.arange(labels.shape[0]), labels] = 1.0
        return y

    def whitened_kmeans(self) -> float:
        if self.status != "ok":
            return math.nan if self.status == "nan" else 0.0
        v = self.x
        y = self.onehot()
        vtv = v.T @ v
        vty = v.T @ y
        yty = y.T @ y
        tr = float(np.trace(np.linalg.pinv(vtv) @ vty @ np.linalg.pinv(yty) @ vty.T))
        d = v.shape[1]
        loss = d - tr
        return float(1.0 - loss / (d + self.k))

    def dpcl_classic(self) -> float:
        if self.status != "ok":
            return math.nan if self.status == "nan" else 0.0
        norm = np.linalg.norm(self.x, axis=1, keepdims=True)
        v = np.where(norm > 1e-12, self.x / np.maximum(norm, 1e-12), 0.0)
        y = self.onehot()
        n = float(v.shape[0])
        loss = (np.sum((v.T @ v) ** 2) - 2.0 * np.sum((v.T @ y) ** 2)
                + np.sum((y.T @ y) ** 2)) / (n * n)
        return float(np.clip(1.0 - loss, 0.0, 1.0))

    def jensen_shannon(self, max_points: int, n_samples: int, covariance_type: str,
                       reg_covar: float) -> float:
        if self.status != "ok":
            return math.nan if self.status == "nan" else 0.0
        from sklearn.mixture import GaussianMixture

        sub = _subsample(self.x, max_points, self.seed)
        if _status(sub, self.k) != "ok":
            return 0.0
        g1 = GaussianMixture(1, covariance_type=covariance_type, reg_covar=reg_covar,
                             random_state=self.seed).fit(sub)
        gk = GaussianMixture(self.k, covariance_type=covariance_type, reg_covar=reg_covar,
                             random_state=self.seed).fit(sub)
        self._gk = (gk, sub)
        xp, _ = g1.sample(n_samples)
        xq, _ = gk.sample(n_samples)
        log2 = math.log(2.0)

        def kl_to_mix(x, log_self):
            lp = g1.score_samples(x)
            lq = gk.score_samples(x)
            lm = np.logaddexp(lp, lq) - log2
            return np.mean((lp if log_self == "p" else lq) - lm)

        js = 0.5 * (kl_to_mix(xp, "p") + kl_to_mix(xq, "q")) / log2
        return float(np.clip(js, 0.0, 1.0))

    def spatial_margin(self) -> float:
        if self.status != "ok":
            return math.nan if self.status == "nan" else 0.0
        if self.x.shape[1] != self.k:  # not posteriors: not applicable
            return math.nan
        k = self.k
        margin = float(np.mean((k * self.x.max(axis=1) - 1.0) / (k - 1.0)))
        balance = k * float(self.x.mean(axis=0).min()) + 1e-3
        return float(np.clip(margin * balance, 0.0, 1.0))

    def spatial(self, max_points: int, n_samples: int, covariance_type: str,
                reg_covar: float) -> float:
        js = self.jensen_shannon(max_points, n_samples, covariance_type, reg_covar)
        if not (math.isfinite(js) and js > 0.0) or getattr(self, "_gk", None) is None:
            return js
        gk, sub = self._gk
        share = gk.predict_proba(sub).mean(axis=0)
        balance = self.k * float(share.min()) + 1e-3
        return float(max(js * balance, 0.0))


def _points(features, mix_magnitude, num_sources, threshold_percentile, seed,
            min_frequency_bin=0) -> _Points:
    x = select_loud_bins(features, mix_magnitude, threshold_percentile, min_frequency_bin)
    return _Points(x, num_sources, seed)


# ----------------------------------------------------------------------------- public measures


def silhouette_confidence(features, mix_magnitude, num_sources: int = 2,
                          threshold_percentile: float = 99.0, max_points: int = 1000,
                          seed: int = 0, min_frequency_bin: int = 0) -> float:
    """Mean silhouette coefficient of KMeans(``num_sources``) on the loud bins, in [-1, 1].

    KMeans is fitted on a seeded random subsample of at most ``max_points`` loud bins (the
    silhouette costs ``O(max_points^2)``), and the silhouette is computed on that subsample.
    ``0.0`` for degenerate features, ``nan`` for fewer than ``num_sources + 1`` loud bins.
    """
    p = _points(features, mix_magnitude, num_sources, threshold_percentile, seed,
                min_frequency_bin)
    return p.silhouette(max_points)


def posterior_confidence(features, mix_magnitude, num_sources: int = 2,
                         threshold_percentile: float = 99.0, seed: int = 0, beta: float = 1.0,
                         min_frequency_bin: int = 0) -> float:
    """Mean normalised max-posterior of a soft KMeans assignment, in [0, 1].

    KMeans(``num_sources``) on all loud bins gives distances ``d`` (feature units) to the
    centres; ``p = softmax(-beta * d)``; the confidence is the mean of
    ``(K * max_k p - 1) / (K - 1)`` (0 = uniform, 1 = one-hot). ``beta`` = 1 as in the reference;
    the value depends on the feature scale.
    """
    p = _points(features, mix_magnitude, num_sources, threshold_percentile, seed,
                min_frequency_bin)
    return p.posterior(beta)


def combined_confidence(features, mix_magnitude, num_sources: int = 2,
                        threshold_percentile: float = 99.0, max_points: int = 1000,
                        seed: int = 0, beta: float = 1.0, min_frequency_bin: int = 0) -> float:
    """``silhouette_confidence * posterior_confidence`` (the reference system's confidence)."""
    p = _points(features, mix_magnitude, num_sources, threshold_percentile, seed,
                min_frequency_bin)
    return p.silhouette(max_points) * p.posterior(beta)


def _fixed_centers(centers, dim: int) -> np.ndarray:
    if centers is None:
        return np.stack([np.zeros(dim), np.ones(dim)])
    c = np.asarray(_to_numpy(centers), dtype=np.float64)
    if c.ndim != 2 or c.shape[1] != dim:
        raise ValueError(f"centers must be (num_sources, {dim}), got {tuple(c.shape)}")
    return c


def fixed_posterior_confidence(features, mix_magnitude, centers=None, beta: float = 2.5,
                               threshold_percentile: float = 99.0,
                               min_frequency_bin: int = 0) -> float:
    """Posterior confidence against FIXED centres: the ensemble's own soft assignment margin.

    ``centers`` ``(K, dim)`` (default all-zeros and all-ones, the primitive ensemble's
    accompaniment/vocals centres); ``p = softmax(-beta * ||f - c_k||)`` with the ensemble's
    ``beta`` (default 2.5); confidence = mean over the loud bins of ``(K max p - 1)/(K - 1)``.
    Unlike the KMeans measures it sees how decisively the ensemble's actual assignment was
    made, including the level of the vocals in the loud bins; pass ``min_frequency_bin`` to
    skip the region the primitives force to accompaniment (below 250 Hz = bin 8 at 16 kHz /
    512). Degenerate / too-few-bins rules as for the other measures.
    """
    x = select_loud_bins(features, mix_magnitude, threshold_percentile, min_frequency_bin)
    c = _fixed_centers(centers, x.shape[1])
    return _Points(x, c.shape[0], 0).posterior(beta, c)


def jensen_shannon_confidence(features, mix_magnitude, num_sources: int = 2,
                              threshold_percentile: float = 99.0, max_points: int = 5000,
                              n_samples: int = 10000, seed: int = 0,
                              covariance_type: str = "full", reg_covar: float = 1e-4,
                              min_frequency_bin: int = 0) -> float:
    """Jensen-Shannon divergence between a 1- and a K-component Gaussian mixture, in bits.

    Both GMMs (``covariance_type``, ``reg_covar`` added to the covariance diagonals) are fitted
    on a seeded subsample of at most ``max_points`` loud bins. ``JS = (KL(P||M) + KL(Q||M)) / 2``
    with ``M = (P + Q) / 2`` is estimated by Monte Carlo from ``n_samples`` seeded draws of each
    model (the reference drew 1e5): ``KL(P||M) ~ mean_{x~P} [log p(x) - log m(x)]``. Base-2 logs,
    so the value lies in [0, 1] (clipped against Monte-Carlo noise); it is near 0 when one
    Gaussian explains the bins as well as K do. The standard error is roughly
    ``1 / sqrt(n_samples)``.
    """
    p = _points(features, mix_magnitude, num_sources, threshold_percentile, seed,
                min_frequency_bin)
    return p.jensen_shannon(max_points, n_samples, covariance_type, reg_covar)


def spatial_confidence(features, mix_magnitude, num_sources: int = 2,
                       threshold_percentile: float = 99.0, max_points: int = 5000,
                       n_samples: int = 10000, seed: int = 0, covariance_type: str = "full",
                       reg_covar: float = 1e-4, min_frequency_bin: int = 0) -> float:
    """The predecessor's mixture-level spatial confidence, in [0, 1]:
    :func:`jensen_shannon_confidence` (same arguments) times the cluster balance
    ``K * min_k share_k + 1e-3``, where ``share_k`` is the mean posterior of component ``k`` of
    the K-component GMM over the fitted bins (for K = 2 the reference's
    ``2 (0.5 - |share - 0.5|) + 1e-3``). High when the features form K distinct groups of
    similar size (talkers at distinct positions); near 0 when one Gaussian explains them
    (co-located sources) or one cluster holds nearly every bin.
    """
    p = _points(features, mix_magnitude, num_sources, threshold_percentile, seed,
                min_frequency_bin)
    return p.spatial(max_points, n_samples, covariance_type, reg_covar)


def spatial_tf_confidence(posteriors, weight: float = 1.0, eps: float = 1e-6):
    """The predecessor's per-T-F confidence ``2 |max_k p_k - 1/K| * weight + eps``.

    Args:
        posteriors: ``(..., K, time, freq)`` cluster posteriors (the spatial masks), torch or
            numpy.
        weight: the mixture-level confidence (:func:`spatial_confidence`), default 1.
    Returns:
        ``(..., time, freq)``, same type as ``posteriors``. Up to the factor ``weight`` (and
        ``K / (2 (K - 1))``, 1 for two sources) it equals the dominance that
        :func:`bootsep.losses.targets.confidence_weights` recovers from bootstrapped sources
        (``train.confidence_power``), so training on spatial pseudo-sources with
        ``confidence_power = 1`` weights the deep-clustering loss by it.
    """
    k = posteriors.shape[-3]
    if hasattr(posteriors, "detach"):
        top = posteriors.amax(dim=-3)
    else:
        top = np.asarray(posteriors).max(axis=-3)
    return 2.0 * abs(top - 1.0 / k) * float(weight) + eps


def loudness_confidence(features, mix_magnitude, num_sources: int = 2,
                        threshold_percentile: float = 99.0, seed: int = 0,
                        min_frequency_bin: int = 0) -> float:
    """Share of the smallest KMeans cluster among the loud bins, scaled from [0, 1/K] to [0, 1].

    1 = the loud bins split evenly between the sources; 0 = one source owns all of them.
    """
    p = _points(features, mix_magnitude, num_sources, threshold_percentile, seed,
                min_frequency_bin)
    return p.loudness()


def whitened_kmeans_confidence(features, mix_magnitude, num_sources: int = 2,
                               threshold_percentile: float = 99.0, seed: int = 0,
                               min_frequency_bin: int = 0) -> float:
    """``1 - L_WKM / (D + K)`` with the whitened k-means loss of the KMeans assignment.

    ``L_WKM = D - tr((V^T V)^+ V^T Y (Y^T Y)^+ Y^T V)`` (Wang, Le Roux & Hershey 2018) for the
    loud-bin features ``V`` ``(N, D)`` and the one-hot KMeans assignment ``Y`` ``(N, K)``
    (nearest centre; ``+`` = pseudo-inverse). The trace is the captured share of the whitened
    feature space, between 1 (the constant direction, for uncentred features) and
    ``min(D, K)``; so the confidence lies in ``[(K + 1) / (D + K), 2K / (D + K)]`` for
    ``D >= K``: it compares separations with the same ``D`` and ``K`` only.
    """
    p = _points(features, mix_magnitude, num_sources, threshold_percentile, seed,
                min_frequency_bin)
    return p.whitened_kmeans()


def dpcl_classic_confidence(features, mix_magnitude, num_sources: int = 2,
                            threshold_percentile: float = 99.0, seed: int = 0,
                            min_frequency_bin: int = 0) -> float:
    """``1 - ||V V^T - Y Y^T||_F^2 / N^2`` (the classic deep-clustering loss), clipped to [0, 1].

    ``V``: loud-bin features with each row scaled to unit norm (the deep-clustering embedding
    convention; all-zero rows stay zero), ``Y``: one-hot KMeans assignment. It measures whether
    the features' *directions* follow the clusters, so it suits embeddings; for non-negative
    mask features (the ensemble) between-cluster cosines stay high and the value is low.
    """
    p = _points(features, mix_magnitude, num_sources, threshold_percentile, seed,
                min_frequency_bin)
    return p.dpcl_classic()


def compute_confidences(features, mix_magnitude, measures=("silhouette", "posterior", "combined"),
                        num_sources: int = 2, threshold_percentile: float = 99.0,
                        max_points: int = 1000, seed: int = 0, beta: float = 1.0,
                        js_max_points: int = 5000, js_samples: int = 10000,
                        centers=None, fixed_beta: float = 2.5,
                        min_frequency_bin: int = 0) -> dict:
    """Several measures at once, sharing the loud-bin selection and the KMeans fits.

    Args:
        features, mix_magnitude, num_sources, threshold_percentile, seed, min_frequency_bin:
            as in :func:`select_loud_bins` and the single measures.
        measures: names from :data:`MEASURES` (default silhouette, posterior, combined).
        max_points: silhouette subsample size; ``beta``: posterior sharpness;
        js_max_points, js_samples: the Jensen-Shannon fit subsample and Monte-Carlo draws.
        centers, fixed_beta: the fixed centres and sharpness of ``fixed_posterior``.
    Returns:
        ``{name: float}`` in the order of ``measures``.
    """
    unknown = [m for m in measures if m not in MEASURES]
    if unknown:
        raise ValueError(f"unknown confidence measure(s) {unknown}; choose from {MEASURES}")
    p = _points(features, mix_magnitude, num_sources, threshold_percentile, seed,
                min_frequency_bin)
    out = {}
    for m in measures:
        if m == "silhouette":
            out[m] = p.silhouette(max_points)
        elif m == "posterior":
            out[m] = p.posterior(beta)
        elif m == "combined":
            out[m] = p.silhouette(max_points) * p.posterior(beta)
        elif m == "fixed_posterior":
            c = _fixed_centers(centers, p.x.shape[1])
            if c.shape[0] != num_sources:
                raise ValueError(f"{c.shape[0]} centers for num_sources={num_sources}")
            out[m] = p.posterior(fixed_beta, c)
        elif m == "jensen_shannon":
            out[m] = p.jensen_shannon(js_max_points, js_samples, "full", 1e-4)
        elif m == "loudness":
            out[m] = p.loudness()
        elif m == "whitened_kmeans":
            out[m] = p.whitened_kmeans()
        elif m == "spatial":
            out[m] = p.spatial(js_max_points, js_samples, "full", 1e-4)
        elif m == "spatial_margin":
            out[m] = p.spatial_margin()
        else:
            out[m] = p.dpcl_classic()
    return out
