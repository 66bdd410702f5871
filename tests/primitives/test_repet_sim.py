"""REPET-SIM: similar-frame selection and background model against a per-frame brute force."""

import numpy as np
import pytest
import torch

from bootsep.primitives.repet_sim import RepetSim

from ._signals import separate_np, si_sdr


def _brute_force_model(mag: np.ndarray, d: int, k: int, threshold: float) -> np.ndarray:
    """Loop over frames: peaks (>= every value within d-1 frames) at distance >= d, top k."""
    t = mag.shape[0]
    unit = mag / np.maximum(np.linalg.norm(mag, axis=1, keepdims=True), 1e-30)
    sim = unit @ unit.T
    model = np.empty_like(mag)
    for i in range(t):
        cand = []
        for j in range(t):
            lo, hi = max(0, j - d + 1), min(t, j + d)
            if abs(i - j) >= d and sim[i, j] > threshold and sim[i, j] >= sim[i, lo:hi].max():
                cand.append(j)
        cand = sorted(cand, key=lambda j: -sim[i, j])[:k]
        if not cand:
            model[i] = mag[i]
            continue
        frames = np.sort(mag[cand], axis=0)
        model[i] = np.minimum(frames[(len(cand) - 1) // 2], mag[i])  # lower median
    return model


@pytest.mark.parametrize("k,threshold", [(100, 0.0), (3, 0.0), (5, 0.9)])
def test_background_model_matches_brute_force(k, threshold):
    rng = np.random.default_rng(k)
    base = rng.random((7, 9))
    mag = np.concatenate([base, base, base, base[:4]]) + 0.3 * rng.random((25, 9))
    sep = RepetSim(sample_rate=1000, k=k, min_distance=0.384, similarity_threshold=threshold)
    d = sep.min_distance_frames  # 0.384 s * 1000 Hz / 128 = 3 frames
    assert d == 3
    got = sep.background_model(torch.from_numpy(mag)[None])[0].numpy()
    np.testing.assert_allclose(got, _brute_force_model(mag, d, k, threshold), rtol=1e-12)


def test_similar_frames_of_a_loop_are_its_repetitions(stft, repetition_mix):
    X = stft(torch.as_tensor(repetition_mix[1][0])[None])  # the drum loop alone (1 s period)
    idx, valid = RepetSim(k=4).similar_frames(X.abs(), start=300, stop=301)
    got = sorted(idx[0, 0][valid[0, 0]].tolist())
    assert got == [50, 175, 425, 550]  # the same phase in the other periods


def test_repet_sim_separates_drum_loop_from_glide(repetition_mix):
    mix, (drums, voice) = repetition_mix
    est = separate_np(RepetSim(device="cpu"), mix)
    assert si_sdr(mix, voice) < 1.0
    assert si_sdr(est[1], voice) > 8.0
    assert si_sdr(est[0], drums) > 8.0


def test_chunking_does_not_change_the_result(stft, repetition_mix, monkeypatch):
    X = stft(torch.as_tensor(repetition_mix[0][:32000])[None])
    full = RepetSim().masks(X)
    import bootsep.primitives.repet_sim as mod

    monkeypatch.setattr(mod, "CHUNK_ELEMENTS", 50_000)  # forces many row blocks
    torch.testing.assert_close(RepetSim().masks(X), full, atol=0, rtol=0)


def test_invalid_arguments():
    with pytest.raises(ValueError):
        RepetSim(similarity="euclidean")
    with pytest.raises(ValueError):
        RepetSim(k=0)
    with pytest.raises(ValueError):
        RepetSim(min_distance=-1)
