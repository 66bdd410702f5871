"""Spatial clustering: group T-F bins by where they come from (inter-channel phase and level).

For each T-F bin of a multichannel mixture ``X`` ``(channels, time, freq)`` and each channel
pair ``(i, j)``:

* inter-channel phase difference ``theta = angle(X_i conj(X_j))``, normalised by frequency
  (``ipd_normalization``) and represented as ``(cos, sin)`` so that it is continuous on the
  circle;
* inter-channel level difference ``ILD = 20 log10(|X_i| / |X_j|)`` in dB, clipped to
  ``+-ild_clip`` and scaled by ``ild_scale`` (default 0.1 per dB, so 10 dB weighs like the unit
  circle).

The features (optionally reduced by PCA) of the loud bins are clustered by a Gaussian mixture
(scikit-learn, seeded; ``full`` or ``diag`` covariance) and the masks are the GMM posteriors of
every bin, the same mask for every channel. This is the predecessor system's speech teacher
(spatial bootstrap: IPD features, PCA, a 2-component full-covariance GMM on the loud bins) and a
music ensemble member (vocals are usually panned centre).

``model='delay'`` replaces the feature GMM by a mixture whose phase means are tied across
frequency by one inter-channel delay per source (as MESSL does): each source ``k`` has a delay
``tau_k`` (samples), a wrapped-phase spread ``sigma_k``, a level-difference Gaussian
``(mu_k, v_k)`` and a prior; the delays start at the K highest peaks of the loud bins' pooled
angular spectrum (GCC-PHAT) and EM refines everything (the delay by grid search). It models
what a frequency-independent IPD feature cannot: the phase of a delay grows with frequency and
wraps above the spatial-aliasing frequency of wide microphone pairs. It uses the first channel
pair.

Output order is deterministic (``order``):

* ``'center'``: clusters sorted from the one farthest from the centre (zero phase and level
  difference) to the most central one, which is last. With 2 sources this is
  ``[accompaniment, vocals]``, the ensemble's convention, so the output carries labels.
* ``'azimuth'``: clusters sorted by the circular mean of the first pair's normalised phase
  difference (then by level difference): a fixed left-to-right order with no label meaning, so
  ``arbitrary_order`` is set (evaluation searches permutations). For K talkers.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import torch

from ..dsp import STFT, rank_percentile
from ..separation.base import Analysis, Separator
from ..utils.errors import UserError

IPD_NORMALIZATIONS = ("frequency", "paper", "none")
MODELS = ("gmm", "delay")
ORDERS = ("center", "azimuth")
COVARIANCES = ("full", "diag")
_EPS = 1e-8


def channel_pairs(num_channels: int, pairs="first") -> list[tuple[int, int]]:
    """Channel pairs of a ``num_channels`` recording.

    Args:
        pairs: ``'first'`` (channels 0 and 1), ``'adjacent'`` ((0,1), (1,2), ...), ``'all'``
            (every unordered pair), or an explicit list of ``(i, j)``.
    """
    c = int(num_channels)
    if c < 2:
        raise UserError(f"spatial clustering needs at least 2 channels, got {c}: feed it the "
                        "multichannel recording (e.g. StemFolderDataset.mono = False, "
                        "WHAMDataset.channel = 'all', separate.mono = False)")
    if pairs == "first":
        return [(0, 1)]
    if pairs == "adjacent":
        return [(i, i + 1) for i in range(c - 1)]
    if pairs == "all":
        return list(itertools.combinations(range(c), 2))
    if isinstance(pairs, str):
        raise UserError(f"SpatialClustering.pairs must be 'first', 'adjacent', 'all' or a list "
                        f"of (i, j) channel pairs, got {pairs!r}")
    out = [(int(i), int(j)) for i, j in pairs]
    bad = [p for p in out if not (0 <= p[0] < c and 0 <= p[1] < c and p[0] != p[1])]
    if not out or bad:
        raise UserError(f"SpatialClustering.pairs {list(pairs)}: pairs must name two different "
                        f"channels among 0..{c - 1}")
    return out


class SpatialClustering(Separator):
    """Separate by direction: GMM clustering of per-bin IPD/ILD features (module docstring).

    Args:
        sample_rate: Hz (default 16000).
        stft: the shared STFT (default 512/128 sqrt-Hann).
        num_sources: number of clusters K (default 2).
        pairs: channel pairs (see :func:`channel_pairs`; default ``'first'``).
        use_ipd, use_ild: which features (default both).
        ipd_normalization: ``'paper'`` (default; the predecessor's ``theta / (f_norm + 1)``
            with ``f_norm = freq / nyquist``), ``'frequency'`` (``theta / f_norm``: the phase a
            pure delay would have at the Nyquist frequency, equal for every bin only without
            spatial aliasing, i.e. for delays under one sample; with larger delays the wrapped
            phase scatters and it separates worse) or ``'none'``.
        ild_scale: weight per dB of the level difference (default 0.1).
        ild_clip: level differences are clipped to +-this many dB (default 30).
        min_frequency_hz: bins below are left out of the fit (their phase carries little
            direction; default 100 Hz). They still get posteriors.
        pca_components: reduce the features to this many principal components (fitted on the
            loud bins) before clustering (default None = no PCA; the predecessor used 1).
        covariance_type: ``'full'`` (default) or ``'diag'``.
        percentile: bins whose loudest-channel magnitude is at or above this percentile of the
            recording are fitted (default 80 = loudest 20 %).
        max_fit_points: at most this many loud bins (seeded subset) are fitted (default 20000).
        n_init: GMM restarts (default 2); ``reg_covar``: covariance floor (default 1e-3).
        order: ``'center'`` (default) or ``'azimuth'`` (module docstring).
        num_channels: channels per recording in the batch given to :meth:`masks`; None
            (default) = the whole batch is one recording (what :meth:`separate` passes).
        seed: seeds the subset and the GMM (default 0).
        model: ``'gmm'`` (default; features + scikit-learn GMM) or ``'delay'`` (module
            docstring).
        max_delay: ``'delay'`` model: largest inter-channel delay searched, in ms (default 1.0
            = 34 cm of path difference); ``delay_step``: grid step in samples (default 0.1);
            ``em_iterations``: (default 15).
        confidence_features: the features :meth:`analyze` returns for the confidence measures:
            ``'cues'`` (default; the clustered IPD/ILD features, for the predecessor's
            ``spatial`` JS confidence) or ``'posteriors'`` (the masks as ``(.., K)`` features,
            for ``spatial_margin``; with the delay model they track its quality better).
        source_labels: default ``('accompaniment', 'vocals')`` for 2 sources with ``'center'``,
            else ``source0, source1, ...``.
        device: see :class:`~bootsep.separation.base.Separator`.

    ``masks(mix_spec)``: complex ``(channels, time, freq)`` -> ``(channels, K, time, freq)``
    posteriors summing to 1 (identical for every channel of a recording).
    ``analyze(mix_spec, with_features=True).features``: ``(channels, time, freq, dim)``, the
    clustered features (after PCA; or the posteriors, see ``confidence_features``), repeated
    per channel so they line up with the per-channel mixture magnitude of the confidence
    measures; with the delay model ``extra['delays']`` ``(recordings, K)`` holds the fitted
    delays (samples, in output order). :meth:`spatial_masks` is the batched form ``(batch,
    channels, T, F)``.
    """

    def __init__(self, sample_rate: int = 16000, stft: STFT | None = None, num_sources: int = 2,
                 pairs="first", use_ipd: bool = True, use_ild: bool = True,
                 ipd_normalization: str = "paper", ild_scale: float = 0.1,
                 ild_clip: float = 30.0, min_frequency_hz: float = 100.0,
                 pca_components: int | None = None, covariance_type: str = "full",
                 percentile: float = 80.0, max_fit_points: int = 20000, n_init: int = 2,
                 reg_covar: float = 1e-3, order: str = "center", num_channels: int | None = None,
                 seed: int = 0, model: str = "gmm", max_delay: float = 1.0,
                 delay_step: float = 0.1, em_iterations: int = 15,
                 confidence_features: str = "cues", source_labels=None,
                 device: str | None = None):
        if source_labels is None:
            source_labels = (("accompaniment", "vocals") if num_sources == 2 and order == "center"
                             else tuple(f"source{i}" for i in range(num_sources)))
        super().__init__(sample_rate, stft, source_labels, device)
        if int(num_sources) < 2 or len(self.source_labels) != int(num_sources):
            raise UserError(f"SpatialClustering: num_sources must be >= 2 with one label each, got "
                            f"{num_sources} and labels {self.source_labels}")
        if not (use_ipd or use_ild):
            raise UserError("SpatialClustering: use_ipd and use_ild are both False; keep one")
        if ipd_normalization not in IPD_NORMALIZATIONS:
            raise UserError(f"SpatialClustering.ipd_normalization must be one of "
                            f"{IPD_NORMALIZATIONS}, got {ipd_normalization!r}")
        if covariance_type not in COVARIANCES:
            raise UserError(f"SpatialClustering.covariance_type must be one of {COVARIANCES}, "
                            f"got {covariance_type!r}")
        if model not in MODELS:
            raise UserError(f"SpatialClustering.model must be one of {MODELS}, got {model!r}")
        if model == "delay" and not (float(max_delay) > 0 and float(delay_step) > 0):
            raise UserError(f"SpatialClustering: max_delay ({max_delay} ms) and delay_step "
                            f"({delay_step} samples) must be > 0")
        if order not in ORDERS:
            raise UserError(f"SpatialClustering.order must be one of {ORDERS}, got {order!r}")
        if not 0.0 <= float(percentile) < 100.0:
            raise UserError(f"SpatialClustering.percentile must be in [0, 100), got {percentile}")
        if pca_components is not None and int(pca_components) < 1:
            raise UserError(f"SpatialClustering.pca_components must be >= 1 or None, got "
                            f"{pca_components}")
        if num_channels is not None and int(num_channels) < 2:
            raise UserError(f"SpatialClustering.num_channels must be >= 2 or None, got {num_channels}")
        if not isinstance(pairs, str):
            pairs = [tuple(int(i) for i in p) for p in pairs]
        self.num_clusters = int(num_sources)
        self.pairs = pairs
        self.use_ipd = bool(use_ipd)
        self.use_ild = bool(use_ild)
        self.ipd_normalization = ipd_normalization
        self.ild_scale = float(ild_scale)
        self.ild_clip = float(ild_clip)
        self.min_frequency_hz = float(min_frequency_hz)
        self.pca_components = None if pca_components is None else int(pca_components)
        self.covariance_type = covariance_type
        self.percentile = float(percentile)
        self.max_fit_points = int(max_fit_points)
        self.n_init = int(n_init)
        self.reg_covar = float(reg_covar)
        self.order = order
        self.num_channels = None if num_channels is None else int(num_channels)
        self.seed = int(seed)
        self.model = model
        self.max_delay = float(max_delay)
        self.delay_step = float(delay_step)
        self.em_iterations = int(em_iterations)
        if confidence_features not in ("cues", "posteriors"):
            raise UserError(f"SpatialClustering.confidence_features must be 'cues' or "
                            f"'posteriors', got {confidence_features!r}")
        self.confidence_features = confidence_features
        self.arbitrary_order = order == "azimuth"

    # ------------------------------------------------------------------ features
    def _group(self, mix_spec: torch.Tensor) -> torch.Tensor:
        """``(N, T, F)`` -> ``(B, C, T, F)`` recordings."""
        if mix_spec.dim() != 3:
            raise ValueError(f"mix_spec must be (channels, time, freq), got {tuple(mix_spec.shape)}")
        n = mix_spec.shape[0]
        c = n if self.num_channels is None else self.num_channels
        if n % c:
            raise UserError(f"SpatialClustering got {n} channels in a batch of recordings with "
                            f"num_channels={c}; they must divide")
        return mix_spec.reshape(n // c, c, *mix_spec.shape[1:])

    def raw_features(self, X: torch.Tensor) -> torch.Tensor:
        """Complex ``(batch, channels, T, F)`` -> ``(batch, T, F, dim)`` IPD (cos, sin) and
        scaled ILD per pair, in that order (float32 on the input's device)."""
        pairs = channel_pairs(X.shape[1], self.pairs)
        n_freq = X.shape[-1]
        fn = torch.arange(n_freq, device=X.device, dtype=torch.float32) / max(n_freq - 1, 1)
        fn[0] = fn[1] if n_freq > 1 else 1.0
        if self.ipd_normalization == "frequency":
            scale = 1.0 / fn
        elif self.ipd_normalization == "paper":
            scale = 1.0 / (fn + 1.0)
        else:
            scale = torch.ones_like(fn)
        mag = X.abs()
        cols = []
        for i, j in pairs:
            if self.use_ipd:
                theta = torch.angle(X[:, i] * X[:, j].conj()) * scale
                cols += [torch.cos(theta), torch.sin(theta)]
            if self.use_ild:
                ild = 20.0 * torch.log10((mag[:, i] + _EPS) / (mag[:, j] + _EPS))
                cols.append(ild.clamp(-self.ild_clip, self.ild_clip) * self.ild_scale)
        return torch.stack(cols, dim=-1).float()

    def _center(self, n_pairs: int) -> torch.Tensor:
        """The raw feature of a source with no phase or level difference."""
        per = ([1.0, 0.0] if self.use_ipd else []) + ([0.0] if self.use_ild else [])
        return torch.tensor(per * n_pairs, dtype=torch.float64)

    def _fit_mask(self, mag: torch.Tensor) -> torch.Tensor:
        """``(T, F)`` loudest-channel magnitude -> boolean mask of the bins to fit."""
        min_bin = int(math.ceil(self.min_frequency_hz * self.stft.window_length / self.sample_rate))
        valid = torch.zeros_like(mag, dtype=torch.bool)
        valid[:, min(min_bin, mag.shape[-1] - 1):] = True
        thresh = rank_percentile(mag[valid], self.percentile)
        return valid & (mag >= thresh) & (mag > 0)

    def _cluster(self, raw: torch.Tensor, mag: torch.Tensor, spec: torch.Tensor | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """One recording: raw features ``(T, F, D)``, magnitude ``(T, F)`` -> posteriors
        ``(K, T, F)`` (ordered), clustered features ``(T, F, D')`` and None; with ``spec``
        ``(C, T, F)`` the posteriors come from the delay model and its delays ``(K,)`` come
        third."""
        from sklearn.mixture import GaussianMixture

        k = self.num_clusters
        sel = self._fit_mask(mag)
        pts = raw[sel] if int(sel.sum()) >= 4 * k else raw.reshape(-1, raw.shape[-1])
        if pts.shape[0] > self.max_fit_points:
            gen = torch.Generator().manual_seed(self.seed)
            idx = torch.randperm(pts.shape[0], generator=gen)[: self.max_fit_points]
            pts = pts[idx.to(pts.device)]
        raw_fit = pts.detach().cpu().double()
        x, feats = raw_fit, raw
        if self.pca_components is not None:
            mean = raw_fit.mean(dim=0)
            _, _, vh = torch.linalg.svd(raw_fit - mean, full_matrices=False)
            comps = vh[: min(self.pca_components, vh.shape[0])]
            # fix each component's sign so the projection is deterministic
            comps = comps * torch.sign(comps.sum(dim=1) + 1e-12)[:, None]
            x = (raw_fit - mean) @ comps.T
            feats = (raw - mean.to(raw)) @ comps.T.to(raw)
        if spec is not None:
            post, delays = self._delay_cluster(spec, mag)
            return post, feats, delays
        x = x.numpy()
        if np.unique(np.round(x, 9), axis=0).shape[0] < k:  # degenerate (e.g. identical channels)
            x = x + np.random.default_rng(self.seed).normal(0.0, 1e-6, size=x.shape)
        gmm = GaussianMixture(n_components=k, covariance_type=self.covariance_type,
                              reg_covar=self.reg_covar, n_init=self.n_init,
                              random_state=self.seed).fit(x)
        post = gmm_posteriors(feats, gmm)  # (K, T, F)
        # cluster positions: posterior-weighted means of the fitted bins' raw features
        p_fit = gmm_posteriors(torch.from_numpy(x), gmm)  # (K, N)
        means = (p_fit @ raw_fit) / p_fit.sum(dim=1, keepdim=True).clamp_min(1e-12)
        return post[self._order(means)], feats, None

    def _order(self, means: torch.Tensor) -> torch.Tensor:
        """Cluster order from their raw-feature means ``(K, D)``."""
        n_pairs = means.shape[1] // ((2 if self.use_ipd else 0) + (1 if self.use_ild else 0))
        if self.order == "center":
            dist = (means - self._center(n_pairs)).norm(dim=1)
            return torch.as_tensor(np.argsort(-dist.numpy(), kind="stable"))
        if self.use_ipd:
            key = torch.atan2(means[:, 1], means[:, 0])
            tie = means[:, 2] if self.use_ild else torch.zeros_like(key)
        else:
            key, tie = means[:, 0], torch.zeros(means.shape[0], dtype=means.dtype)
        return torch.as_tensor(np.lexsort((tie.numpy(), np.round(key.numpy(), 6))))

    def _delay_cluster(self, X: torch.Tensor, mag: torch.Tensor
                       ) -> tuple[torch.Tensor, torch.Tensor]:
        """``model='delay'``: one recording ``X`` ``(C, T, F)`` -> posteriors ``(K, T, F)`` and
        the delays ``(K,)`` (samples, CPU), in output order."""
        k = self.num_clusters
        i, j = channel_pairs(X.shape[0], self.pairs)[0]
        n_fft = self.stft.window_length
        theta = torch.angle(X[i] * X[j].conj()).double()  # (T, F)
        ild = (20.0 * torch.log10((X[i].abs() + _EPS) / (X[j].abs() + _EPS))).double()
        ild = ild.clamp(-self.ild_clip, self.ild_clip)
        omega = (2.0 * math.pi * torch.arange(X.shape[-1], device=X.device, dtype=torch.float64)
                 / n_fft).expand_as(theta)
        sel = self._fit_mask(mag)
        if int(sel.sum()) < 4 * k:
            sel = torch.ones_like(sel)
        th, om, ld = theta[sel], omega[sel], ild[sel]
        if th.numel() > self.max_fit_points:
            gen = torch.Generator().manual_seed(self.seed)
            idx = torch.randperm(th.numel(), generator=gen)[: self.max_fit_points].to(th.device)
            th, om, ld = th[idx], om[idx], ld[idx]
        d_max = self.max_delay * 1e-3 * self.sample_rate
        grid = torch.arange(-d_max, d_max + 1e-9, self.delay_step, device=X.device,
                            dtype=torch.float64)

        def spectrum(w):  # (K', N) weights -> (K', G) weighted angular spectrum
            ph = th[None, :] - om[None, :] * grid[:, None]  # (G, N)
            return w @ torch.cos(ph).T

        # initial delays: the K highest local maxima of the pooled angular spectrum
        a = spectrum(torch.ones(1, th.numel(), device=X.device, dtype=torch.float64))[0]
        peak = torch.ones_like(a, dtype=torch.bool)
        peak[1:] &= a[1:] >= a[:-1]
        peak[:-1] &= a[:-1] >= a[1:]
        cand = torch.nonzero(peak).flatten()
        cand = cand[torch.argsort(a[cand], descending=True, stable=True)].tolist()
        spread = torch.linspace(0, grid.numel() - 1, k + 2)[1:-1].round().long().tolist()
        for g in spread:
            if len(cand) >= k:
                break
            if g not in cand:
                cand.append(g)
        tau = grid[torch.as_tensor(sorted(cand[:k]), device=X.device)]
        sig2 = torch.full((k,), 1.0, dtype=torch.float64, device=X.device)
        mu = torch.zeros(k, dtype=torch.float64, device=X.device)
        var = torch.full((k,), float(ld.var()) + 1.0, dtype=torch.float64, device=X.device)
        logpi = torch.full((k,), -math.log(k), dtype=torch.float64, device=X.device)

        def loglik(th_, om_, ld_):
            r = torch.remainder(th_[None] - om_[None] * tau.view(-1, *([1] * th_.dim()))
                                + math.pi, 2 * math.pi) - math.pi
            sh = (-1,) + (1,) * th_.dim()
            ll = (logpi.view(sh) - 0.5 * r * r / sig2.view(sh) - 0.5 * torch.log(sig2.view(sh)))
            if self.use_ild:
                ll = ll - 0.5 * (ld_[None] - mu.view(sh)) ** 2 / var.view(sh) \
                    - 0.5 * torch.log(var.view(sh))
            return ll, r

        for _ in range(max(0, self.em_iterations)):
            ll, _ = loglik(th, om, ld)
            gam = torch.softmax(ll, dim=0)  # (K, N)
            tot = gam.sum(dim=1).clamp_min(1e-9)
            logpi = torch.log(tot / tot.sum())
            tau = grid[spectrum(gam).argmax(dim=1)]
            _, r = loglik(th, om, ld)
            sig2 = ((gam * r * r).sum(dim=1) / tot).clamp_min(0.05)
            mu = (gam * ld).sum(dim=1) / tot
            var = ((gam * (ld - mu[:, None]) ** 2).sum(dim=1) / tot).clamp_min(0.5)
        ll, _ = loglik(theta, omega, ild)
        post = torch.softmax(ll, dim=0).float()
        if self.order == "center":
            dist = tau.abs() + (mu.abs() * self.ild_scale if self.use_ild else 0.0)
            order = np.argsort(-dist.cpu().numpy(), kind="stable")
        else:
            order = np.lexsort((mu.cpu().numpy(), np.round(tau.cpu().numpy(), 6)))
        delays = tau[torch.as_tensor(order, device=tau.device)].cpu()
        return post[torch.as_tensor(order, device=post.device)], delays

    def spatial_masks(self, X: torch.Tensor, with_features: bool = False):
        """Batched: complex ``(batch, channels, T, F)`` -> posteriors ``(batch, K, T, F)``
        (and the clustered features ``(batch, T, F, dim)`` with ``with_features``)."""
        m, f, _ = self._spatial(X)
        return (m, f) if with_features else m

    def _spatial(self, X: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """:meth:`spatial_masks` with features, and the delays ``(batch, K)`` of the delay
        model (None for the GMM)."""
        raw = self.raw_features(X)
        mag = X.abs().amax(dim=1)
        masks, feats, delays = [], [], []
        for b in range(X.shape[0]):
            m, f, d = self._cluster(raw[b], mag[b], None if self.model == "gmm" else X[b])
            masks.append(m.to(raw.dtype))
            feats.append(f)
            delays.append(d)
        return (torch.stack(masks), torch.stack(feats),
                None if self.model == "gmm" else torch.stack(delays))

    def analyze(self, mix_spec: torch.Tensor, source_specs: torch.Tensor | None = None,
                with_features: bool = False) -> Analysis:
        """Complex ``(channels, time, freq)`` -> posteriors ``(channels, K, time, freq)``
        (identical for every channel of a recording), with ``with_features`` the features
        (class docstring), per channel; clustered once."""
        X = self._group(mix_spec)
        m, f, delays = self._spatial(X)
        if self.confidence_features == "posteriors":
            f = m.permute(0, 2, 3, 1)
        c = X.shape[1]
        return Analysis(m.repeat_interleave(c, dim=0),
                        f.repeat_interleave(c, dim=0) if with_features else None,
                        {} if delays is None else {"delays": delays})


def gmm_posteriors(x: torch.Tensor, gmm) -> torch.Tensor:
    """Posteriors ``(K, ...)`` of a fitted scikit-learn ``GaussianMixture`` (``full`` or
    ``diag``) for points ``x`` ``(..., D)``, computed in torch on ``x``'s device and dtype."""
    dev, dt = x.device, x.dtype
    means = torch.as_tensor(gmm.means_, device=dev, dtype=dt)
    prec = torch.as_tensor(gmm.precisions_cholesky_, device=dev, dtype=dt)
    if gmm.covariance_type == "diag":
        prec = torch.diag_embed(prec)
    elif gmm.covariance_type != "full":
        raise ValueError(f"covariance_type {gmm.covariance_type!r} is not supported")
    logw = torch.as_tensor(np.log(gmm.weights_), device=dev, dtype=dt)
    logdet = torch.log(torch.diagonal(prec, dim1=-2, dim2=-1)).sum(-1)  # (K,)
    lead = x.shape[:-1]
    flat = x.reshape(-1, x.shape[-1])
    out = []
    for k in range(means.shape[0]):
        y = (flat - means[k]) @ prec[k]
        out.append(logw[k] + logdet[k] - 0.5 * (y * y).sum(-1))
    return torch.softmax(torch.stack(out), dim=0).reshape(means.shape[0], *lead)
