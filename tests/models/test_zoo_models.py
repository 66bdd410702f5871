"""Model zoo contract: output keys and shapes, gradient to every parameter, checkpoint
round trip, the ``features`` contract, and overfitting one demo excerpt."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bootsep.models.base import MODELS, build_model, load_model, resolve_model_class

F = 65  # 128-point frames
SR = 16000

# name -> (class short name, tiny constructor arguments)
TINY = {
    "dualpath": ("DualPathChimera", dict(num_features=F, num_sources=3, n_mels=24, hidden_size=8,
                                         rnn_hidden_size=6, num_layers=2, chunk_size=6,
                                         hop_size=3, embedding_size=4)),
    "dualpath_nomel_mask_only": ("DualPathChimera", dict(
        num_features=F, num_sources=2, n_mels=None, hidden_size=8, rnn_hidden_size=5,
        num_layers=1, chunk_size=5, hop_size=2, embedding_size=None, log_input=True,
        rnn_type="gru")),
    "openunmix": ("OpenUnmix", dict(num_features=F, num_sources=3, hidden_size=8, num_layers=2,
                                    dropout=0.0)),
    "openunmix_chimera": ("OpenUnmix", dict(num_features=F, num_sources=2, hidden_size=8,
                                            num_layers=1, add_embedding=True, embedding_size=4,
                                            mask_activation="sigmoid")),
    "mel_baseline": ("MelMaskBLSTM", dict(num_features=F, num_sources=4, n_mels=20, hidden_size=8,
                                          num_layers=2, dropout=0.0)),
    "mel_baseline_softmax": ("MelMaskBLSTM", dict(num_features=F, num_sources=2, n_mels=16,
                                                  hidden_size=6, num_layers=1,
                                                  mask_activation="softmax")),
    "centroids_em0": ("ConditionalCentroids", dict(num_features=F, num_sources=4, hidden_size=8,
                                                   num_layers=1, n_mels=20, embedding_size=5)),
    "centroids_em2_cae_diag": ("ConditionalCentroids", dict(
        num_features=F, num_sources=2, hidden_size=8, num_layers=2, dropout=0.0, n_mels=None,
        embedding_size=4, num_em_iterations=2, attractor="conditional", covariance_type="diag",
        num_gaussians=2)),
    "centroids_kmeans": ("ConditionalCentroids", dict(
        num_features=F, num_sources=3, hidden_size=8, num_layers=1, n_mels=None,
        embedding_size=4, clustering="soft_kmeans", num_em_iterations=1)),
}

EXPECTED_KEYS = {
    "dualpath": {"embedding", "mask", "estimates"},
    "dualpath_nomel_mask_only": {"mask", "estimates"},
    "openunmix": {"mask", "estimates"},
    "openunmix_chimera": {"embedding", "mask", "estimates"},
    "mel_baseline": {"mask", "estimates"},
    "mel_baseline_softmax": {"mask", "estimates"},
    "centroids_em0": {"embedding", "mask", "estimates", "means", "variances", "log_priors"},
    "centroids_em2_cae_diag": {"embedding", "mask", "estimates", "means", "variances",
                               "log_priors"},
    "centroids_kmeans": {"embedding", "mask", "estimates", "means"},
}


def _build(name: str, **kw):
    cls, args = TINY[name]
    torch.manual_seed(0)
    return build_model(cls, {**args, **kw})


def _mag(batch=2, frames=14, freq=F, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, frames, freq, generator=g) ** 2 + 1e-4


def test_zoo_registered_by_short_name():
    for short in ("DualPathChimera", "OpenUnmix", "MelMaskBLSTM", "ConditionalCentroids"):
        assert short in MODELS
        assert resolve_model_class(short).__name__ == short


@pytest.mark.parametrize("name", sorted(TINY))
def test_output_keys_and_shapes(name):
    model = _build(name).eval()
    n = TINY[name][1]["num_sources"]
    mag = _mag()
    out = model(mag)
    assert set(out) == EXPECTED_KEYS[name] == set(model.output_keys)
    assert model.num_sources == n
    assert out["mask"].shape == (2, n, 14, F)
    torch.testing.assert_close(out["estimates"], out["mask"] * mag.unsqueeze(1))
    assert torch.isfinite(out["mask"]).all()
    assert (out["mask"] >= 0).all()
    if "embedding" in out:
        d = TINY[name][1]["embedding_size"]
        assert out["embedding"].shape == (2, 14, F, d)
    with pytest.raises(ValueError, match="expects a magnitude"):
        model(torch.rand(2, 14, F + 1))


@pytest.mark.parametrize("name", sorted(TINY))
def test_gradient_reaches_every_parameter(name):
    model = _build(name).train()
    mag = _mag(frames=11)
    out = model(mag)
    # a loss that touches every output (a weighted sum so no output is constant under it)
    g = torch.Generator().manual_seed(1)
    loss = sum((v * torch.rand(v.shape, generator=g)).sum() for v in out.values())
    loss.backward()
    names = [k for k, p in model.named_parameters() if p.requires_grad]
    assert names
    for k, p in model.named_parameters():
        assert p.grad is not None, f"{name}: no gradient for {k}"
        assert torch.isfinite(p.grad).all(), k
        assert p.grad.abs().sum() > 0, f"{name}: zero gradient for {k}"
    for k, b in model.named_buffers():  # frozen projections are buffers, never parameters
        assert not b.requires_grad, k


@pytest.mark.parametrize("name", sorted(TINY))
def test_checkpoint_round_trip_identical_outputs(name, tmp_path):
    model = _build(name)
    # change BatchNorm running statistics / weights away from their init before saving
    model.train()
    with torch.no_grad():
        model(_mag(seed=3))
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    model.eval()
    path = tmp_path / "ckpt.pth"
    torch.save({"model": model.serialize()}, path)
    loaded = load_model(torch.load(path, weights_only=True)["model"])
    assert type(loaded) is type(model) and not loaded.training
    assert loaded.init_args == model.init_args
    mag = _mag(seed=5)
    with torch.no_grad():
        a, b = model(mag), loaded(mag)
    assert set(a) == set(b)
    for k in a:
        assert torch.equal(a[k], b[k]), k


@pytest.mark.parametrize("name", sorted(TINY))
def test_features_argument_replaces_input_features(name):
    """``features`` (input_features of a longer signal, sliced) is what the model reads: its
    own features reproduce the default path, other features change the output."""
    model = _build(name).eval()
    mag = _mag(frames=20)
    part = mag[:, 4:16]
    feats = model.input_features(mag)
    assert feats.shape[:2] == mag.shape[:2]
    with torch.no_grad():
        plain = model(part)
        own = model(part, features=model.input_features(part))
        sliced = model(part, features=feats[:, 4:16])
        other = model(part, features=model.input_features(part).flip(1))
    for k in plain:
        torch.testing.assert_close(own[k], plain[k])
    assert sliced["mask"].shape == plain["mask"].shape
    assert not torch.allclose(other["mask"], plain["mask"])


# --------------------------------------------------------------------------- overfitting
@pytest.fixture(scope="module")
def demo_excerpt():
    """One 1-second demo excerpt: mixture (1, S) and sources vocals/drums/bass/other (1, 4, S)."""
    from bootsep.data.demo import synthesize_song

    song = synthesize_song(seed=0, split="train", index=3, duration=1.0, sample_rate=SR)
    sources = np.stack([song.audio[k] for k in ("vocals", "drums", "bass", "other")])
    src = torch.from_numpy(sources).unsqueeze(0)
    return src.sum(1), src


OVERFIT = {  # name -> (constructor args, number of sources, steps, learning rate)
    "dualpath": ("DualPathChimera", dict(n_mels=32, hidden_size=16, rnn_hidden_size=16,
                                         num_layers=1, chunk_size=20, hop_size=10,
                                         embedding_size=4), 4, 40, 3e-3),
    "openunmix": ("OpenUnmix", dict(hidden_size=16, num_layers=1, dropout=0.0,
                                    add_embedding=True, embedding_size=4), 4, 40, 3e-3),
    "mel_baseline": ("MelMaskBLSTM", dict(n_mels=32, hidden_size=16, num_layers=1,
                                          dropout=0.0), 4, 40, 1e-2),
    "centroids": ("ConditionalCentroids", dict(hidden_size=16, num_layers=1, dropout=0.0,
                                               n_mels=32, embedding_size=8,
                                               num_em_iterations=0), 4, 40, 1e-2),
    "centroids_em2_2src": ("ConditionalCentroids", dict(
        hidden_size=16, num_layers=1, dropout=0.0, n_mels=32, embedding_size=8,
        num_em_iterations=2), 2, 40, 1e-2),
}
OVERFIT_FACTOR = 2.0  # the L1 loss must fall at least this much


@pytest.mark.parametrize("name", sorted(OVERFIT))
def test_small_variant_overfits_one_demo_excerpt(name, demo_excerpt):
    from bootsep.dsp import STFT
    from bootsep.engine.trainer import make_targets
    from bootsep.losses.spectral import l1_loss

    cls, kw, n_src, steps, lr = OVERFIT[name]
    mix, sources = demo_excerpt
    if n_src == 2:  # vocals vs accompaniment
        sources = torch.stack([sources[:, 0], sources[:, 1:].sum(1)], dim=1)
    stft = STFT(256, 64)
    targets = make_targets(stft, mix, sources, target_type="msa")
    torch.manual_seed(0)
    model = build_model(cls, dict(num_features=129, num_sources=n_src, **kw)).train()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        out = model(targets["mix_magnitude"])
        loss = l1_loss(out["estimates"], targets["source_magnitudes"]).mean()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert np.isfinite(losses).all()
    first, last = losses[0], min(losses[-5:])
    assert last < first / OVERFIT_FACTOR, f"{name}: L1 {first:.4g} -> {last:.4g}"
