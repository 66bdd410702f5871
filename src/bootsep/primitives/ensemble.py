"""Ensemble of primitives ("PrimitiveClustering"): cluster T-F bins on stacked primitive masks.

Each primitive contributes the masks named in ``returns`` (e.g. its foreground mask), each
repeated ``weights`` times; the stack is a ``dim``-dimensional feature per T-F bin. Bins are
then soft-assigned to ``num_sources`` cluster centres: by default fixed centres all-zeros
(accompaniment) and all-ones (vocals), responsibilities ``exp(-beta * ||f - c_k||)``
normalised over ``k``.
"""

from __future__ import annotations

import torch

from ..dsp import STFT, rank_percentile
from ..separation.base import Analysis, Separator
from ._filters import magnitude, mean_filter_1d
from .ft2d import FT2D
from .hpss import HPSS

CLUSTERINGS = ("fixed", "kmeans", "gmm")


class EnsembleClustering(Separator):
    """Soft clustering of T-F bins described by the masks of several separators.

    Args:
        separators: member separators (no oracles); they must share the sample rate and STFT
            settings. The same instance may appear several times; it is run once per call,
            and FT2D members that differ only in ``use_bg_2dft`` share one 2-D FFT.
        returns: for each separator, the indices of its output masks used as features.
        weights: for each separator, how many times each of its returned masks is repeated
            (default all 1).
        num_sources: number of clusters/outputs (default 2).
        clustering: ``'fixed'`` (default; ``centers`` or zeros/ones), ``'kmeans'`` (scikit-learn
            k-means fitted per example on the loud bins, then the same soft assignment) or
            ``'gmm'`` (diagonal Gaussian mixture fitted on the loud bins; masks = posteriors).
            Fitted clusters are ordered by the mean of their centre's features (ascending),
            so with foreground-like features the output stays [accompaniment, vocals].
        beta: sharpness of the soft assignment for ``fixed``/``kmeans`` (default 2.5).
        centers: ``(num_sources, dim)`` fixed centres (default: all-zeros and all-ones, only
            for 2 sources).
        percentile: bins whose mixture magnitude is at or above this percentile (per example)
            are used for fitting (default 90).
        max_fit_points: at most this many loud bins (seeded random subset) are fitted (20000).
        seed: seeds the subset and the fitting (default 0).
        reg_covar: variance floor added to the GMM's diagonal covariances (default 1e-3).
        smoothing: seconds of a centred running mean over time applied to the output masks
            (default 0: none). It becomes the odd number of frames nearest to
            ``smoothing * sample_rate / hop_length`` (edges repeat the first/last frame); the
            masks still sum to 1. A bin where one cue flips for a frame is outvoted by its
            neighbours; the default teacher config uses 0.024 s (3 frames at 16 kHz, hop 128),
            chosen with the weights by ``bench/ensemble_domains.py``.
        source_labels: default ``('accompaniment', 'vocals')``.
        sample_rate, stft: default to the first separator's.
        device: see :class:`Separator`.

    ``analyze(mix_spec, with_features=True)`` returns the masks ``(batch, num_sources, time,
    freq)`` (summing to 1) and the features ``(batch, time, freq, dim)`` they were clustered
    from, running every primitive once.
    """

    def __init__(self, separators: list[Separator], returns: list[list[int]],
                 weights: list[int] | None = None, num_sources: int = 2,
                 clustering: str = "fixed", beta: float = 2.5, centers=None,
                 percentile: float = 90.0, max_fit_points: int = 20000, seed: int = 0,
                 reg_covar: float = 1e-3, smoothing: float = 0.0,
                 source_labels=("accompaniment", "vocals"),
                 sample_rate: int | None = None, stft: STFT | None = None,
                 device: str | None = None):
        separators = list(separators)
        if not separators:
            raise ValueError("EnsembleClustering needs at least one separator")
        first = separators[0]
        super().__init__(first.sample_rate if sample_rate is None else sample_rate,
                         stft or first.stft, source_labels, device)
        returns = [list(r) for r in returns]
        weights = [1] * len(separators) if weights is None else [int(w) for w in weights]
        if not (len(returns) == len(weights) == len(separators)):
            raise ValueError(f"{len(separators)} separators but {len(returns)} returns and "
                             f"{len(weights)} weights")
        for i, sep in enumerate(separators):
            name = type(sep).__name__
            if sep.needs_references:
                raise ValueError(f"separator {i} ({name}) is an oracle; it cannot be an ensemble member")
            if sep.sample_rate != self.sample_rate or sep.stft.params != self.stft.params:
                raise ValueError(f"separator {i} ({name}) runs at {sep.sample_rate} Hz with "
                                 f"{sep.stft!r}; the ensemble uses {self.sample_rate} Hz with "
                                 f"{self.stft!r}")
            if not returns[i] or any(not 0 <= r < sep.num_sources for r in returns[i]):
                raise ValueError(f"returns[{i}] = {returns[i]} is not a non-empty list of output "
                                 f"indices of {name} (0..{sep.num_sources - 1})")
            if weights[i] < 0:
                raise ValueError(f"weights[{i}] = {weights[i]} must be >= 0")
        if clustering not in CLUSTERINGS:
            raise ValueError(f"unknown clustering {clustering!r}; choose one of {CLUSTERINGS}")
        if len(self.source_labels) != num_sources:
            raise ValueError(f"{len(self.source_labels)} source_labels for {num_sources} sources")
        self.separators = separators
        self.returns = returns
        self.weights = weights
        self.dim = sum(len(r) * w for r, w in zip(returns, weights))
        if self.dim == 0:
            raise ValueError("all weights are 0: the ensemble has no features")
        if centers is None and clustering == "fixed":
            if num_sources != 2:
                raise ValueError("fixed clustering with num_sources != 2 needs explicit centers")
            centers = [[0.0] * self.dim, [1.0] * self.dim]
        if centers is not None:
            centers = torch.as_tensor(centers, dtype=torch.float32)
            if centers.shape != (num_sources, self.dim):
                raise ValueError(f"centers must be (num_sources, dim) = ({num_sources}, "
                                 f"{self.dim}), got {tuple(centers.shape)}")
        self.centers = centers
        self.clustering = clustering
        self.beta = float(beta)
        self.percentile = float(percentile)
        self.max_fit_points = int(max_fit_points)
        self.seed = int(seed)
        self.reg_covar = float(reg_covar)
        if not smoothing >= 0:
            raise ValueError(f"smoothing = {smoothing} seconds must be >= 0")
        self.smoothing = float(smoothing)

    @property
    def smoothing_frames(self) -> int:
        """``smoothing`` in STFT frames (derived from the sample rate and hop)."""
        return smoothing_frames(self.smoothing, self.sample_rate, self.stft.hop_length)

    def _smooth(self, masks: torch.Tensor) -> torch.Tensor:
        return smooth_over_time(masks, self.smoothing_frames)

    # ------------------------------------------------------------------ features
    def member_masks(self, mix_spec: torch.Tensor) -> list[torch.Tensor]:
        """Masks of every member, ``(batch, n_src_i, time, freq)`` each, computed once per
        distinct instance (and once per FT2D analysis for R/M pairs)."""
        by_id: dict[int, torch.Tensor] = {}
        ft2d: dict[tuple, tuple] = {}
        out = []
        for sep in self.separators:
            if id(sep) not in by_id:
                if isinstance(sep, FT2D):
                    key = sep.analysis_key()
                    if key not in ft2d:
                        ft2d[key] = sep.both_masks(mix_spec)
                    m = ft2d[key][0 if sep.use_bg_2dft else 1]
                else:
                    m = sep.masks(mix_spec)
                by_id[id(sep)] = m.to(device=mix_spec.device, dtype=magnitude_dtype(mix_spec))
            out.append(by_id[id(sep)])
        return out

    def _stack_features(self, member_masks: list[torch.Tensor]) -> torch.Tensor:
        """:meth:`member_masks` -> the clustered features ``(batch, time, freq, dim)``: each
        returned mask repeated by its weight, in member order."""
        cols = []
        for m, ret, w in zip(member_masks, self.returns, self.weights):
            for r in ret:
                cols.extend([m[:, r]] * w)
        return torch.stack(cols, dim=-1)

    # ---------------------------------------------------------------- clustering
    def _soft_assign(self, feats: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
        """``(t, f, dim)`` x ``(k, dim)`` -> responsibilities ``(k, t, f)``."""
        dist = torch.stack([(feats - c).norm(dim=-1) for c in centers])
        return torch.softmax(-self.beta * dist, dim=0)

    def _fit_points(self, feats: torch.Tensor, mag: torch.Tensor) -> torch.Tensor:
        """Loud bins of one example: ``(n, dim)`` float64 on the CPU, seeded subset."""
        flat_mag = mag.reshape(-1)
        flat = feats.reshape(-1, feats.shape[-1])
        pts = flat[flat_mag >= rank_percentile(flat_mag, self.percentile)]
        if pts.shape[0] < self.num_sources:
            pts = flat
        if pts.shape[0] > self.max_fit_points:
            gen = torch.Generator().manual_seed(self.seed)
            sel = torch.randperm(pts.shape[0], generator=gen)[: self.max_fit_points]
            pts = pts[sel.to(pts.device)]
        return pts.detach().cpu().double()

    def _cluster_one(self, feats: torch.Tensor, mag: torch.Tensor) -> torch.Tensor:
        if self.clustering == "fixed":
            return self._soft_assign(feats, self.centers.to(feats.device, feats.dtype))
        pts = self._fit_points(feats, mag).numpy()
        if self.clustering == "kmeans":
            from sklearn.cluster import KMeans

            km = KMeans(n_clusters=self.num_sources, n_init=10, random_state=self.seed).fit(pts)
            centers = torch.as_tensor(km.cluster_centers_, dtype=feats.dtype, device=feats.device)
            centers = centers[centers.mean(dim=1).argsort()]
            return self._soft_assign(feats, centers)
        from sklearn.mixture import GaussianMixture

        gmm = GaussianMixture(n_components=self.num_sources, covariance_type="diag",
                              reg_covar=self.reg_covar, random_state=self.seed).fit(pts)
        order = torch.as_tensor(gmm.means_.mean(axis=1)).argsort()
        means = torch.as_tensor(gmm.means_)[order].to(feats.device, feats.dtype)
        var = torch.as_tensor(gmm.covariances_)[order].to(feats.device, feats.dtype)
        logw = torch.as_tensor(gmm.weights_)[order].log().to(feats.device, feats.dtype)
        loglik = torch.stack([
            logw[k] - 0.5 * (((feats - means[k]) ** 2) / var[k] + var[k].log()).sum(dim=-1)
            for k in range(self.num_sources)])
        return torch.softmax(loglik, dim=0)

    def analyze(self, mix_spec: torch.Tensor, source_specs: torch.Tensor | None = None,
                with_features: bool = False) -> Analysis:
        """Masks ``(batch, num_sources, time, freq)`` clustered from the stacked member masks
        (the features ``(batch, time, freq, dim)``, returned with ``with_features``)."""
        feats = self._stack_features(self.member_masks(mix_spec))
        mag = magnitude(mix_spec)
        masks = torch.stack([self._cluster_one(feats[i], mag[i]) for i in range(feats.shape[0])])
        return Analysis(self._smooth(masks), feats if with_features else None)


def smoothing_frames(seconds: float, sample_rate: int, hop_length: int) -> int:
    """The odd number of STFT frames nearest to ``seconds`` (at least 1)."""
    frames = seconds * sample_rate / hop_length
    return max(1, 2 * int(round((frames - 1) / 2)) + 1)


def smooth_over_time(masks: torch.Tensor, frames: int) -> torch.Tensor:
    """Centred running mean of ``(..., time, freq)`` masks over ``frames`` frames (the border
    frame repeated at the edges); ``frames <= 1`` returns ``masks`` itself."""
    if frames <= 1:
        return masks
    return mean_filter_1d(masks, frames, dim=-2, mode="edge")


def magnitude_dtype(mix_spec: torch.Tensor) -> torch.dtype:
    return mix_spec.real.dtype if torch.is_complex(mix_spec) else mix_spec.dtype


def primitive_clustering(sample_rate: int = 16000, stft: STFT | None = None,
                         pitch: Separator | None = None, device: str | None = None,
                         **kwargs) -> EnsembleClustering:
    """The reference "PrimitiveClustering" ensemble.

    2DFT-R (``FT2D(neighborhood_size=(1, 35), high_pass_cutoff=250)``) x3, 2DFT-M x1, the
    pitch separator x2 (if given; its foreground mask) and HPSS (kernel 31) harmonic x1, i.e.
    ``returns=[[1], [1], [1], [0]]``, ``weights=[3, 1, 2, 1]``, fixed zeros/ones centres,
    ``beta=2.5``. Without ``pitch`` it is the nussl anchor's 2DFT-R x3, 2DFT-M x1, HPSS x1.
    ``pitch`` must run at ``sample_rate`` on the same STFT settings. Extra keyword arguments
    go to :class:`EnsembleClustering` (e.g. ``clustering='kmeans'``).
    """
    defaulted = stft is None  # the config forgot primitive_clustering.stft: checked later
    stft = stft or STFT()
    common = dict(sample_rate=sample_rate, stft=stft, device=device)
    r = FT2D(neighborhood_size=(1, 35), high_pass_cutoff=250.0, use_bg_2dft=True, **common)
    m = FT2D(neighborhood_size=(1, 35), high_pass_cutoff=250.0, use_bg_2dft=False, **common)
    hpss = HPSS(kernel_size=31, **common)
    if pitch is None:
        separators, returns, weights = [r, m, hpss], [[1], [1], [0]], [3, 1, 1]
    else:
        separators, returns, weights = [r, m, pitch, hpss], [[1], [1], [1], [0]], [3, 1, 2, 1]
    kwargs.setdefault("beta", 2.5)
    ensemble = EnsembleClustering(separators, returns, weights, sample_rate=sample_rate,
                                  stft=stft, device=device, **kwargs)
    ensemble._stft_defaulted = defaulted
    return ensemble


ADAPT_CUES = ("agreement", "decisiveness", "predictor")


def weighted_fixed_assign(columns: torch.Tensor, weights: torch.Tensor, beta: float) -> torch.Tensor:
    """Soft assignment to the all-zeros / all-ones centres with real-valued column weights.

    With integer weights this equals :class:`EnsembleClustering`'s fixed clustering on the
    stacked features (each column repeated ``w`` times): ``d0² = Σ w_j f_j²``,
    ``d1² = Σ w_j (1 - f_j)²``, responsibilities ``softmax(-beta [d0, d1])``.

    Args:
        columns: ``(..., dim)`` per-bin member masks (values in [0, 1]).
        weights: ``(dim,)`` or broadcastable to ``columns``, non-negative.
        beta: sharpness.
    Returns:
        ``(2, ...)``: [accompaniment, vocals] responsibilities, summing to 1.
    """
    w = torch.as_tensor(weights, dtype=columns.dtype, device=columns.device)
    d0 = (columns.square() * w).sum(dim=-1).clamp_min(0).sqrt()
    d1 = ((1 - columns).square() * w).sum(dim=-1).clamp_min(0).sqrt()
    return torch.softmax(-float(beta) * torch.stack([d0, d1]), dim=0)


def member_cues(columns: torch.Tensor, mix_magnitude: torch.Tensor, weights,
                percentile: float = 90.0) -> dict[str, torch.Tensor]:
    """Reference-free per-column cues of how well each member is doing, on the loud bins.

    Args:
        columns: ``(time, freq, dim)`` member masks of one mixture (one column per member
            output, not repeated).
        mix_magnitude: ``(time, freq)``.
        weights: ``(dim,)`` base weights; columns with weight 0 are not in the ensemble and
            do not vote (their own cues are still computed).
        percentile: bins at or above this magnitude percentile are used (default 90).
    Returns:
        ``{'agreement': (dim,), 'decisiveness': (dim,)}`` float64: ``agreement`` is the mean
        Pearson correlation of each column with each *other* voting column, one vote per
        column whatever its base weight (so one heavily weighted wrong member cannot outvote
        the rest; a constant column correlates 0; 0 when no other column votes);
        ``decisiveness`` is the mean of ``|2 f - 1|`` (1 = binary mask, 0 = all 0.5).
    """
    dim = columns.shape[-1]
    flat = columns.reshape(-1, dim).double()
    mag = mix_magnitude.reshape(-1).double()
    x = flat[mag >= rank_percentile(mag, percentile)]
    voting = torch.as_tensor(weights, dtype=torch.float64).reshape(dim).cpu() > 0
    xc = x - x.mean(dim=0, keepdim=True)
    norm = xc.square().sum(dim=0).sqrt()
    ok = norm > 1e-12
    corr = (xc.T @ xc) / torch.outer(norm, norm).clamp_min(1e-300)
    corr = torch.where(torch.outer(ok, ok), corr, torch.zeros_like(corr)).cpu()
    agreement = torch.zeros(dim, dtype=torch.float64)
    for j in range(dim):
        others = voting.clone()
        others[j] = False
        if others.any():
            agreement[j] = corr[j, others].mean()
    decisiveness = (2 * x - 1).abs().mean(dim=0).cpu()
    return {"agreement": agreement, "decisiveness": decisiveness}


def adaptive_weights(base_weights, cue: torch.Tensor, gamma: float) -> torch.Tensor:
    """``base · clip(cue, 0, 1) ** gamma``, rescaled to the base weights' sum.

    ``gamma = 0`` gives the base weights back; when every adapted weight is 0 (no column has
    a positive cue) the base weights are returned too. Returns ``(dim,)`` float64.
    """
    base = torch.as_tensor(base_weights, dtype=torch.float64).reshape(-1)
    if gamma == 0:
        return base.clone()
    w = base * cue.double().clamp(0.0, 1.0).pow(float(gamma))
    if w.sum() <= 0:
        return base.clone()
    return w * (base.sum() / w.sum())


class AdaptiveEnsemble(EnsembleClustering):
    """Fixed-centre ensemble whose member weights are re-estimated per mixture.

    For each mixture, each returned member mask gets a reference-free cue of how well it is
    doing (:func:`member_cues` on the loud bins: mean ``'agreement'`` (correlation) with the
    other members, or its own ``'decisiveness'``), its weight becomes
    ``base · clip(cue, 0, 1) ** gamma`` (:func:`adaptive_weights`, rescaled to the base sum),
    and the bins are soft-assigned to the all-zeros / all-ones centres with those real-valued
    weights (:func:`weighted_fixed_assign`). A member that contradicts the others (e.g. a
    pitch track that locked onto the bass) is down-weighted on that mixture only; with
    ``gamma = 0`` this is :class:`EnsembleClustering` with ``clustering='fixed'``.

    ``cue='predictor'`` (after Manilow et al., WASPAA 2017, "predicting algorithm efficacy"):
    a small trained model picks the weights instead. The per-mixture input is
    ``z = (cues - feature_mean) / feature_scale`` with ``cues`` = [agreement..., decisiveness...]
    of every returned column (every column votes, whatever its weight); the probabilities
    ``p = softmax(coef @ z + intercept)`` over ``K`` candidate weight vectors blend them:
    ``w = Σ_k p_k candidates[k]``. The coefficients are plain data (fitted by
    ``bench/ensemble_domains.py`` on the development domains' search splits and written to
    ``musdb/exp/primitives/primitive_clustering_adaptive.gin``).

    Args:
        separators, returns, weights, beta, smoothing, sample_rate, stft, device,
            source_labels: as in :class:`EnsembleClustering` (``weights`` are the base
            weights, default all 1).
        cue: ``'agreement'`` (default), ``'decisiveness'`` or ``'predictor'``.
        gamma: exponent of the cue (default 2.0; 0 = fixed weights; unused by the predictor).
        cue_percentile: loud-bin percentile the cues are computed on (default 90).
        candidates: predictor only: ``(K, n_cols)`` weight vectors (one weight per returned
            column, real values >= 0).
        coef, intercept: predictor only: ``(K, 2 n_cols)`` and ``(K,)``.
        feature_mean, feature_scale: predictor only: ``(2 n_cols,)`` standardisation.

    Features (for confidence measures) are the base ensemble's stacked masks (columns
    repeated by the base weights), as in :class:`EnsembleClustering`. The adapted weights of
    a call, ``(batch, n_cols)`` float64 (one per returned column), are in its
    ``Analysis.extra['weights']``.
    """

    def __init__(self, separators: list[Separator], returns: list[list[int]],
                 weights: list[int] | None = None, beta: float = 2.5, cue: str = "agreement",
                 gamma: float = 2.0, cue_percentile: float = 90.0, candidates=None, coef=None,
                 intercept=None, feature_mean=None, feature_scale=None, smoothing: float = 0.0,
                 source_labels=("accompaniment", "vocals"), sample_rate: int | None = None,
                 stft: STFT | None = None, device: str | None = None):
        super().__init__(separators, returns, weights, num_sources=2, clustering="fixed",
                         beta=beta, smoothing=smoothing, source_labels=source_labels,
                         sample_rate=sample_rate, stft=stft, device=device)
        if cue not in ADAPT_CUES:
            raise ValueError(f"unknown cue {cue!r}; choose one of {ADAPT_CUES}")
        n_cols = sum(len(r) for r in self.returns)
        self.candidates = self.coef = self.intercept = None
        self.feature_mean = self.feature_scale = None
        if cue == "predictor":
            def table(x, shape, name):
                if x is None:
                    raise ValueError(f"cue='predictor' needs {name}")
                t = torch.as_tensor(x, dtype=torch.float64)
                if tuple(t.shape) != shape:
                    raise ValueError(f"{name} must have shape {shape}, got {tuple(t.shape)}")
                return t

            cand = torch.as_tensor(candidates if candidates is not None else [], dtype=torch.float64)
            if cand.dim() != 2 or cand.shape[1] != n_cols or cand.shape[0] < 1:
                raise ValueError(f"candidates must be (K, {n_cols}) weight vectors, one weight "
                                 f"per returned column, got {tuple(cand.shape)}")
            if (cand < 0).any() or (cand.sum(dim=1) <= 0).any():
                raise ValueError("candidate weights must be >= 0 and not all 0")
            k = cand.shape[0]
            self.candidates = cand
            self.coef = table(coef, (k, 2 * n_cols), "coef")
            self.intercept = table(intercept, (k,), "intercept")
            self.feature_mean = table(feature_mean, (2 * n_cols,), "feature_mean")
            self.feature_scale = table(feature_scale, (2 * n_cols,), "feature_scale")
            if (self.feature_scale <= 0).any():
                raise ValueError("feature_scale must be > 0")
        if gamma < 0:
            raise ValueError(f"gamma = {gamma} must be >= 0")
        if not 0.0 <= cue_percentile <= 100.0:
            raise ValueError(f"cue_percentile must be in [0, 100], got {cue_percentile}")
        self.cue = cue
        self.gamma = float(gamma)
        self.cue_percentile = float(cue_percentile)

    def columns(self, mix_spec: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Unrepeated member masks ``(batch, time, freq, n_cols)`` and their base weights
        ``(n_cols,)``."""
        return self._columns(self.member_masks(mix_spec))

    def _columns(self, member_masks: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        cols, base = [], []
        for m, ret, w in zip(member_masks, self.returns, self.weights):
            for r in ret:
                cols.append(m[:, r])
                base.append(float(w))
        return torch.stack(cols, dim=-1), torch.tensor(base, dtype=torch.float64)

    def adapted_weights(self, columns: torch.Tensor, mix_magnitude: torch.Tensor,
                        base: torch.Tensor) -> torch.Tensor:
        """``(n_cols,)`` weights of one mixture: columns ``(time, freq, n_cols)``, magnitude
        ``(time, freq)``."""
        if self.cue == "predictor":
            return self.predict(columns, mix_magnitude)[1]
        cues = member_cues(columns, mix_magnitude, base, self.cue_percentile)
        return adaptive_weights(base, cues[self.cue], self.gamma)

    def predictor_features(self, columns: torch.Tensor, mix_magnitude: torch.Tensor) -> torch.Tensor:
        """The predictor's raw input ``(2 n_cols,)``: [agreement..., decisiveness...] with
        every column voting."""
        cues = member_cues(columns, mix_magnitude, torch.ones(columns.shape[-1]),
                           self.cue_percentile)
        return torch.cat([cues["agreement"], cues["decisiveness"]])

    def predict(self, columns: torch.Tensor, mix_magnitude: torch.Tensor):
        """Predictor mode: ``(p (K,), weights (n_cols,))`` for one mixture."""
        z = (self.predictor_features(columns, mix_magnitude) - self.feature_mean) / self.feature_scale
        p = torch.softmax(self.coef @ z + self.intercept, dim=0)
        return p, p @ self.candidates

    def analyze(self, mix_spec: torch.Tensor, source_specs: torch.Tensor | None = None,
                with_features: bool = False) -> Analysis:
        """Masks ``(batch, 2, time, freq)`` with per-mixture weights (``extra['weights']``
        ``(batch, n_cols)``); with ``with_features`` the base ensemble's features."""
        members = self.member_masks(mix_spec)
        cols, base = self._columns(members)
        mag = magnitude(mix_spec)
        out, used = [], []
        for i in range(cols.shape[0]):
            w = self.adapted_weights(cols[i], mag[i], base)
            used.append(w)
            out.append(weighted_fixed_assign(cols[i], w.to(cols.dtype), self.beta))
        return Analysis(self._smooth(torch.stack(out)),
                        self._stack_features(members) if with_features else None,
                        {"weights": torch.stack(used)})
