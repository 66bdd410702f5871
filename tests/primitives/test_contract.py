"""The Separator contract for every primitive: shapes, range, sum to one, batching, determinism,
device, float64 input."""

import warnings

import numpy as np
import pytest
import torch

from bootsep.primitives import (
    FT2D,
    HPSS,
    EnsembleClustering,
    HighLowPassFilter,
    Repet,
    RepetSim,
    TimbreClustering,
    primitive_clustering,
)

from ._signals import spec_of

FACTORIES = {
    "repet": lambda dev: Repet(device=dev),
    "repet_sim": lambda dev: RepetSim(device=dev),
    "2dft_r": lambda dev: FT2D(device=dev),
    "2dft_m": lambda dev: FT2D(use_bg_2dft=False, device=dev),
    "2dft_quadrants": lambda dev: FT2D(quadrants_to_keep=(0, 2), device=dev),
    "2dft_original": lambda dev: FT2D(filter_approach="original", device=dev),
    "hpss": lambda dev: HPSS(device=dev),
    "timbre": lambda dev: TimbreClustering(n_iter=30, device=dev),
    "ensemble_fixed": lambda dev: primitive_clustering(device=dev),
    "ensemble_kmeans": lambda dev: primitive_clustering(device=dev, clustering="kmeans"),
    "ensemble_gmm": lambda dev: primitive_clustering(device=dev, clustering="gmm"),
    "high_low": lambda dev: HighLowPassFilter(device=dev),
}


@pytest.fixture(scope="module")
def batch(stft, repetition_mix, second_mix):
    n = 3 * 16000  # 3 s keeps this file fast
    return spec_of(stft, repetition_mix[0][:n], second_mix[0][:n])


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_masks_contract_batching_and_determinism(name, batch):
    sep = FACTORIES[name]("cpu")
    m = sep.masks(batch)
    b, t, f = batch.shape
    assert m.shape == (b, sep.num_sources, t, f)
    assert m.dtype == torch.float32
    assert torch.isfinite(m).all()
    assert m.min() >= 0.0 and m.max() <= 1.0
    torch.testing.assert_close(m.sum(dim=1), torch.ones(b, t, f), atol=1e-5, rtol=0)
    if name != "high_low":  # data-independent
        assert not torch.allclose(m[0], m[1])  # the two examples really differ
    again = FACTORIES[name]("cpu").masks(batch)
    assert torch.equal(m, again)  # deterministic, fresh instance
    singles = torch.cat([sep.masks(batch[i:i + 1]) for i in range(b)])
    torch.testing.assert_close(m, singles, atol=1e-4, rtol=0)
    if isinstance(sep, EnsembleClustering):
        assert sep.analyze(batch, with_features=True).features.shape == (b, t, f, sep.dim)


@pytest.mark.parametrize("name", ["repet", "repet_sim", "2dft_r", "hpss", "ensemble_fixed"])
def test_float64_input(name, batch):
    m = FACTORIES[name]("cpu").masks(batch[:1].to(torch.complex128))
    assert m.dtype == torch.float64
    diff = (m.float() - FACTORIES[name]("cpu").masks(batch[:1])).abs()
    # peak picking compares floats for equality, so a few bins may move slightly
    assert diff.mean() < 1e-5 and diff.max() < 0.05


def test_separate_roundtrip_sums_to_mixture(repetition_mix):
    mix = torch.as_tensor(repetition_mix[0])
    out = Repet(device="cpu").separate(mix)
    assert out.estimates.shape == (2, 1, mix.shape[-1])
    np.testing.assert_allclose(out.estimates.sum(0)[0].numpy(), mix.numpy(), atol=1e-4)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_cuda_matches_cpu(name, batch):
    cpu = FACTORIES[name]("cpu").masks(batch)
    gpu = FACTORIES[name]("cuda").masks(batch.cuda())
    assert gpu.device.type == "cuda"
    torch.testing.assert_close(gpu.cpu(), cpu, atol=1e-3, rtol=0)


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_silent_and_tiny_inputs(name):
    sep = FACTORIES[name]("cpu")
    for X in (torch.zeros(2, 40, 257, dtype=torch.complex64),
              torch.full((1, 3, 257), 0.1 + 0.1j, dtype=torch.complex64)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # k-means warns about duplicate points
            m = sep.masks(X)
        assert m.shape == (X.shape[0], 2, *X.shape[1:])
        assert torch.isfinite(m).all()
        torch.testing.assert_close(m.sum(1), torch.ones(X.shape), atol=1e-5, rtol=0)
