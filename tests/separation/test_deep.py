"""Deep separators: chunked inference, cross-fade, k-means clustering, checkpoint loading."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from bootsep.dsp import STFT
from bootsep.models import Chimera, DeepClustering, MaskInference, SeparationModel
from bootsep.separation.deep import (
    DeepClusteringSeparator,
    DeepMaskSeparator,
    load_separator,
)
from bootsep.utils.errors import UserError
from bootsep.utils.io import atomic_torch_save

SR = 8000
STFT_SMALL = STFT(window_length=128, hop_length=32)  # 65 bins
NF = STFT_SMALL.n_freq


def _call(model, mag):
    """Brute-force reference: one model call on the whole signal, on the model's device."""
    dev = next(model.parameters()).device
    return {k: v.cpu() for k, v in model(mag.to(dev)).items()}


# ---------------------------------------------------------------- helper models
class FrameModel(SeparationModel):
    """Mask depends only on the current frame's (globally normalised) features; counts calls."""

    def __init__(self, num_features: int = NF, num_sources: int = 2, embedding: bool = False):
        super().__init__()
        self.num_features, self.num_sources = num_features, num_sources
        torch.manual_seed(3)
        self.lin = torch.nn.Linear(num_features, num_features * num_sources)
        self.emb = torch.nn.Linear(num_features, num_features * 3) if embedding else None
        self.output_keys = ("embedding", "mask", "estimates") if embedding else ("mask", "estimates")
        self.calls, self.max_frames = 0, 0
        self._record_args(locals())

    def forward(self, mix_magnitude, features=None):
        self.calls += 1
        self.max_frames = max(self.max_frames, mix_magnitude.shape[1])
        x = self.input_features(mix_magnitude) if features is None else features
        b, t, f = x.shape
        mask = torch.sigmoid(self.lin(x)).view(b, t, self.num_sources, f).transpose(1, 2)
        out = {"mask": mask, "estimates": mask * mix_magnitude.unsqueeze(1)}
        if self.emb is not None:
            out["embedding"] = torch.nn.functional.normalize(self.emb(x).view(b, t, f, 3), dim=-1)
        return out


class CallIndexModel(SeparationModel):
    """Mask equal to (call index + 1) / 10 everywhere: exposes the cross-fade weights."""

    output_keys = ("mask", "estimates")
    num_sources = 1

    def __init__(self):
        super().__init__()
        self.calls = 0
        self._record_args(locals())

    def forward(self, mix_magnitude):
        self.calls += 1
        mask = torch.full_like(mix_magnitude, self.calls / 10.0).unsqueeze(1)
        return {"mask": mask, "estimates": mask * mix_magnitude.unsqueeze(1)}


class OracleEmbedding(SeparationModel):
    """Embedding = one-hot of the dominant reference source (+ small fixed noise).

    Holds the full-signal mixture magnitude and IBM; locates each chunk by exact match of
    its frames, so it works under chunking.
    """

    output_keys = ("embedding",)

    def __init__(self, noise: float = 0.1):
        super().__init__()
        self.noise = noise
        self._record_args(locals())

    def set_reference(self, mix_mag, source_mags):
        # mix_mag (C, T, F); source_mags (C, S, T, F)
        ibm = torch.nn.functional.one_hot(source_mags.argmax(1), source_mags.shape[1]).float()
        g = torch.Generator().manual_seed(7)
        self.ref = mix_mag
        self.emb = ibm + self.noise * (torch.rand(ibm.shape, generator=g) - 0.5)
        self.ibm = ibm.permute(0, 3, 1, 2)  # (C, S, T, F)

    def forward(self, mix_magnitude, features=None):
        device = mix_magnitude.device
        n = mix_magnitude.shape[1]
        mix_magnitude = mix_magnitude.cpu()
        d = (self.ref - mix_magnitude[:, :1]).abs().sum(dim=(0, 2))
        off = int(d.argmin())
        assert torch.equal(self.ref[:, off:off + n], mix_magnitude)
        return {"embedding": self.emb[:, off:off + n].to(device)}


# ---------------------------------------------------------------- audio
def _sources(seconds=2.0, channels=1, seed=0):
    """Harmonic tone bursts with gliding pitch + filtered noise bursts, (2, channels, samples)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    t = np.arange(n) / SR
    f0 = 220 * 2 ** (0.5 * np.sin(2 * np.pi * 0.7 * t))
    phase = 2 * np.pi * np.cumsum(f0) / SR
    tone = sum(np.sin(k * phase) / k for k in range(1, 6))
    tone *= (np.sin(2 * np.pi * 2.0 * t) > -0.3)
    noise = np.diff(rng.standard_normal(n + 2), n=2) / 4  # high-pass: mostly above 2 kHz
    noise *= 0.5 * (np.sin(2 * np.pi * 1.3 * t + 1.0) > 0.0) + 0.05
    src = np.stack([tone, noise])[:, None, :]
    if channels > 1:
        gains = np.linspace(0.5, 1.0, channels)[None, :, None]
        src = np.concatenate([src] * channels, axis=1) * np.stack([gains[0], gains[0][::-1]])
    return torch.tensor(0.3 * src, dtype=torch.float32)


def _si_sdr(est, ref):
    est, ref = est - est.mean(), ref - ref.mean()
    a = (est @ ref) / (ref @ ref)
    e = a * ref - est
    return 10 * np.log10((a * ref) @ (a * ref) / (e @ e))


def _best_perm_si_sdr(est, ref):
    """est, ref: (S, samples) numpy -> per-source SI-SDR under the best permutation."""
    best = None
    for perm in itertools.permutations(range(len(ref))):
        s = [_si_sdr(est[p], ref[i]) for i, p in enumerate(perm)]
        if best is None or np.mean(s) > np.mean(best):
            best = s
    return best


def _mix_spec(frames_seconds=1.5, channels=2, seed=0):
    mix = _sources(frames_seconds, channels, seed).sum(0)
    return mix, STFT_SMALL(mix)


# ---------------------------------------------------------------- mask separator
@pytest.mark.parametrize("chunk,overlap", [(40, 10), (33, 0), (64, 32), (7, 3)])
def test_chunked_equals_unchunked_for_frame_local_model(chunk, overlap):
    mix, X = _mix_spec()
    model = FrameModel()
    full = DeepMaskSeparator(model, SR, STFT_SMALL, chunk_frames=10_000, overlap_frames=0)
    ref = full.masks(X)
    direct = _call(model, X.abs())["mask"]  # brute force: one call on the whole signal
    torch.testing.assert_close(ref, direct)
    sep = DeepMaskSeparator(model, SR, STFT_SMALL, chunk_frames=chunk, overlap_frames=overlap)
    model.max_frames = 0
    got = sep.masks(X)
    assert got.shape == (2, 2, X.shape[1], NF)
    assert model.max_frames <= chunk
    torch.testing.assert_close(got, ref, rtol=0, atol=1e-6)


def test_cross_fade_is_linear_between_chunks():
    X = torch.ones(1, 100, 5, dtype=torch.complex64)
    model = CallIndexModel()
    sep = DeepMaskSeparator(model, SR, STFT_SMALL, source_labels=["a"], chunk_frames=30,
                            overlap_frames=8)
    m = sep.masks(X)[0, 0, :, 0].double()
    bounds = sep.chunk_bounds(100)
    assert bounds[0] == (0, 30) and bounds[-1][1] == 100 and model.calls == len(bounds)
    expected = np.zeros(100)
    for k, (s, e) in enumerate(bounds):  # independent reference, frame by frame
        for t in range(s, e):
            if k + 1 < len(bounds) and t >= bounds[k + 1][0]:
                alpha = (t - bounds[k + 1][0] + 0.5) / 8
                expected[t] = (1 - alpha) * (k + 1) / 10 + alpha * (k + 2) / 10
            elif k == 0 or t >= bounds[k - 1][1]:
                expected[t] = (k + 1) / 10
    np.testing.assert_allclose(m.numpy(), expected, atol=1e-6)


def test_blstm_chunked_is_close_to_unchunked():
    torch.manual_seed(0)
    model = MaskInference(NF, hidden_size=8, num_layers=2, dropout=0.3)
    mix, X = _mix_spec(3.0, channels=1)
    ref = DeepMaskSeparator(model, SR, STFT_SMALL, chunk_frames=10_000).masks(X)
    got = DeepMaskSeparator(model, SR, STFT_SMALL, chunk_frames=300, overlap_frames=100).masks(X)
    hard = DeepMaskSeparator(model, SR, STFT_SMALL, chunk_frames=300, overlap_frames=0).masks(X)
    err, err_hard = (got - ref).abs(), (hard - ref).abs()
    assert err.mean() < 5e-4 and err.max() < 0.02
    assert err.mean() < err_hard.mean() / 3 and err.max() < err_hard.max() / 3


def test_separate_channels_independent_and_estimates_shape():
    mix, _ = _mix_spec(1.0, channels=2)
    sep = DeepMaskSeparator(FrameModel(), SR, STFT_SMALL, chunk_frames=50, overlap_frames=10)
    res = sep.separate(mix)
    assert res.estimates.shape == (2, 2, mix.shape[-1]) and res.labels == ["accompaniment", "vocals"]
    assert res.features is None
    assert sep.analyze(STFT_SMALL(mix), with_features=True).features is None  # no embedding
    for c in range(2):
        single = sep.separate(mix[c])
        torch.testing.assert_close(single.estimates[:, 0], res.estimates[:, c], atol=1e-5, rtol=0)
    assert not torch.allclose(res.estimates[:, 0], res.estimates[:, 1], atol=1e-3)


def test_chimera_features_computed_once():
    mix, X = _mix_spec(1.0, channels=2)
    model = FrameModel(embedding=True)
    sep = DeepMaskSeparator(model, SR, STFT_SMALL, chunk_frames=30, overlap_frames=6)
    model.calls = 0
    res = sep.separate(mix, with_features=True)
    n_chunks = len(sep.chunk_bounds(X.shape[1]))
    assert model.calls == n_chunks
    assert res.features.shape == (2, X.shape[1], NF, 3)
    torch.testing.assert_close(res.features, sep.analyze(X, with_features=True).features,
                               atol=1e-6, rtol=0)
    torch.testing.assert_close(res.features, _call(model, X.abs())["embedding"], atol=1e-6,
                               rtol=0)


def test_mask_separator_validation():
    with pytest.raises(ValueError, match="needs 'mask'"):
        DeepMaskSeparator(DeepClustering(NF, hidden_size=2, num_layers=1))
    with pytest.raises(ValueError, match="overlap"):
        DeepMaskSeparator(FrameModel(), chunk_frames=10, overlap_frames=6)
    with pytest.raises(ValueError, match="3 masks"):
        DeepMaskSeparator(FrameModel(num_sources=3), source_labels=["a", "b"])
    sep = DeepMaskSeparator(FrameModel(num_sources=3))
    assert sep.source_labels == ["source0", "source1", "source2"]
    assert sep.device.type == ("cuda" if torch.cuda.is_available() else "cpu")


# ---------------------------------------------------------------- clustering separator
def _oracle_setup(seconds=2.0, channels=1):
    src = _sources(seconds, channels)
    mix = src.sum(0)
    X = STFT_SMALL(mix)
    S = STFT_SMALL(src).transpose(0, 1)  # (C, S, T, F)
    model = OracleEmbedding()
    model.set_reference(X.abs(), S.abs())
    return src, mix, X, model


def test_clustering_oracle_recovers_sources_and_is_deterministic():
    src, mix, X, model = _oracle_setup(channels=2)
    kw = dict(sample_rate=SR, stft=STFT_SMALL, chunk_frames=60, overlap_frames=10, cache_bytes=0)
    sep = DeepClusteringSeparator(model, **kw)
    res = sep.separate(mix)
    # binary masks equal the ideal binary mask up to one permutation (all channels)
    ibm = model.ibm
    assert torch.equal(res.masks, ibm) or torch.equal(res.masks, ibm.flip(1))
    for c in range(2):
        scores = _best_perm_si_sdr(res.estimates[:, c].numpy(), src[:, c].numpy())
        assert min(scores) > 15.0, scores  # the IBM gives about 20-34 dB here
    again = DeepClusteringSeparator(model, **kw).separate(mix)
    assert torch.equal(again.masks, res.masks)
    torch.testing.assert_close(again.extra["cluster_centers"], res.extra["cluster_centers"],
                               rtol=0, atol=0)
    # the fit subsample does not depend on chunking (ranks over loud bins, time-major)
    big = DeepClusteringSeparator(model, sample_rate=SR, stft=STFT_SMALL, chunk_frames=5000)
    torch.testing.assert_close(big.analyze(X).extra["cluster_centers"],
                               res.extra["cluster_centers"], rtol=0, atol=1e-6)


def test_clustering_with_features_runs_model_once():
    mix, X = _mix_spec(1.0, channels=2)
    model = FrameModel(embedding=True)
    sep = DeepClusteringSeparator(model, sample_rate=SR, stft=STFT_SMALL, chunk_frames=40,
                                  overlap_frames=8, cache_bytes=0)
    model.calls = 0
    res = sep.separate(mix, with_features=True)
    assert model.calls == len(sep.chunk_bounds(X.shape[1]))
    torch.testing.assert_close(res.features, _call(model, X.abs())["embedding"], atol=1e-6,
                               rtol=0)
    assert res.extra["cluster_centers"].shape == (2, 3)
    assert torch.equal(res.masks, sep.masks(X))  # the pass-2 path agrees with the kept path


def test_clustering_soft_masks():
    _, mix, X, model = _oracle_setup(1.0)
    soft = DeepClusteringSeparator(model, sample_rate=SR, stft=STFT_SMALL, mask_type="soft",
                                   soft_beta=2.0)
    m = soft.masks(X)
    torch.testing.assert_close(m.sum(1), torch.ones_like(m[:, 0]))
    assert ((m > 0.01) & (m < 0.99)).any()  # really soft
    hard = (m > 0.5).float()
    assert torch.equal(hard, model.ibm) or torch.equal(hard, model.ibm.flip(1))


def test_clustering_fits_on_loud_subsample_only():
    _, mix, X, model = _oracle_setup(1.0)
    mag = X.abs()

    class LevelModel(SeparationModel):  # embedding carries the bin's dB level
        output_keys = ("embedding",)

        def __init__(self):
            super().__init__()
            self._record_args(locals())

        def forward(self, mix_magnitude, features=None):
            db = 20 * torch.log10(mix_magnitude.clamp_min(1e-8))
            return {"embedding": torch.stack([db, torch.zeros_like(db)], dim=-1)}

    sep = DeepClusteringSeparator(LevelModel(), sample_rate=SR, stft=STFT_SMALL, loud_db=30.0,
                                  max_fit_points=500, chunk_frames=20, overlap_frames=0)
    seen = []
    fit = sep._fit
    sep._fit = lambda samples: (seen.append(samples), fit(samples))[1]
    sep.masks(X)
    db = 20 * np.log10(np.maximum(mag.numpy(), 1e-8))
    thr = db.max() - 30.0
    n_loud = int((db >= thr).sum())
    assert 500 < n_loud < db.size
    levels = seen[0][:, 0].cpu().numpy()
    assert len(levels) == 500 and levels.min() >= thr - 1e-4
    assert len(np.unique(levels)) > 490  # without replacement (levels are almost all distinct)
    np.testing.assert_array_equal(sep.loud_bins(mag).numpy(), db >= thr)
    pct = DeepClusteringSeparator(LevelModel(), loud_db=None, loud_percentile=90.0)
    frac = pct.loud_bins(mag).float().mean().item()
    assert abs(frac - 0.1) < 0.01


def test_assign_matches_brute_force_distances():
    g = torch.Generator().manual_seed(0)
    emb = torch.randn(2, 6, 5, 4, generator=g)
    centers = torch.randn(3, 4, generator=g)
    d2 = torch.stack([((emb - c) ** 2).sum(-1) for c in centers], dim=1)  # (2, 3, 6, 5)
    dc = DeepClustering(NF, hidden_size=2, num_layers=1, embedding_size=4)
    hard = DeepClusteringSeparator(dc, num_sources=3).assign(emb, centers)
    torch.testing.assert_close(hard, torch.nn.functional.one_hot(d2.argmin(1), 3)
                               .permute(0, 3, 1, 2).float())
    soft = DeepClusteringSeparator(dc, num_sources=3, mask_type="soft", soft_beta=0.7)
    torch.testing.assert_close(soft.assign(emb, centers), torch.softmax(-0.7 * d2, dim=1),
                               atol=1e-5, rtol=1e-5)


def test_clustering_validation_and_labels():
    with pytest.raises(ValueError, match="needs 'embedding'"):
        DeepClusteringSeparator(MaskInference(NF, hidden_size=2, num_layers=1))
    dc = DeepClustering(NF, hidden_size=2, num_layers=1, embedding_size=2)
    with pytest.raises(ValueError, match="mask_type"):
        DeepClusteringSeparator(dc, mask_type="fuzzy")
    assert DeepClusteringSeparator(dc, num_sources=3).source_labels[2] == "source2"


# ---------------------------------------------------------------- loading
def _checkpoint(model, labels=("bass", "rest")):
    return {"model": model.serialize(), "stft": STFT_SMALL.params.to_dict(), "sample_rate": SR,
            "source_labels": list(labels)}


def test_load_separator_from_dict_and_file(tmp_path):
    torch.manual_seed(0)
    chim = Chimera(NF, hidden_size=4, num_layers=1, embedding_size=3).eval()
    ckpt = _checkpoint(chim)
    mix, X = _mix_spec(0.5, channels=1)
    direct = DeepMaskSeparator(chim, SR, STFT_SMALL).masks(X)
    path = tmp_path / "best.model.pth"
    atomic_torch_save(ckpt, path)
    for source in (ckpt, str(path), path):
        sep = load_separator(source, chunk_frames=500)
        assert isinstance(sep, DeepMaskSeparator) and sep.chunk_frames == 500
        assert sep.source_labels == ["bass", "rest"] and sep.stft.hop_length == 32
        assert sep.sample_rate == SR
        torch.testing.assert_close(sep.masks(X), direct, rtol=0, atol=0)
    cl = load_separator(path, kind="clustering", seed=1)
    assert isinstance(cl, DeepClusteringSeparator) and cl.source_labels == ["bass", "rest"]
    assert cl.masks(X).shape == (1, 2, X.shape[1], NF)
    assert load_separator(path, kind="clustering", num_sources=3).source_labels[2] == "source2"
    dc = DeepClustering(NF, hidden_size=3, num_layers=1, embedding_size=2)
    auto = load_separator(_checkpoint(dc))
    assert isinstance(auto, DeepClusteringSeparator) and auto.num_sources == 2
    with pytest.raises(UserError, match="'mask'"):
        load_separator(_checkpoint(dc), kind="mask")
    with pytest.raises(UserError, match="kind"):
        load_separator(ckpt, kind="other")


def test_load_separator_user_errors(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_separator(tmp_path / "missing.pth")
    bad = tmp_path / "bad.pth"
    bad.write_text("not a checkpoint")
    with pytest.raises(UserError, match="cannot read"):
        load_separator(bad)
    with pytest.raises(UserError, match="needs key 'model'"):
        load_separator({"stft": {}})
    ckpt = _checkpoint(MaskInference(NF, hidden_size=2, num_layers=1), labels=("a", "b", "c"))
    with pytest.raises(UserError, match="3 names"):
        load_separator(ckpt)
    ckpt["model"]["class"] = "torch.nn.Linear"
    with pytest.raises(UserError, match="refusing"):
        load_separator(ckpt)


# ---------------------------------------------------------------- long input
def test_long_input_runs_in_small_chunks():
    seconds = 60
    rng = np.random.default_rng(1)
    mix = torch.tensor(0.1 * rng.standard_normal(seconds * 16000), dtype=torch.float32)
    stft = STFT()  # 512 / 128 at 16 kHz: 7501 frames
    model = FrameModel(num_features=257, embedding=True)
    sep = DeepMaskSeparator(model, 16000, stft, chunk_frames=256, overlap_frames=32)
    res = sep.separate(mix)
    assert res.estimates.shape == (2, 1, seconds * 16000)
    assert model.max_frames <= 256 and model.calls == len(sep.chunk_bounds(7501)) > 30
    model.calls, model.max_frames = 0, 0
    dc = DeepClusteringSeparator(model, sample_rate=16000, stft=stft, chunk_frames=256,
                                 overlap_frames=32, cache_bytes=0, n_init=1)
    res = dc.separate(mix)
    assert res.masks.shape == (1, 2, 7501, 257) and model.max_frames <= 256
    assert model.calls == 2 * len(dc.chunk_bounds(7501))  # two passes, nothing kept
    assert torch.equal(res.masks.sum(1), torch.ones(1, 7501, 257))
