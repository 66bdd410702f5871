"""BSS-Eval v4 (bootsep.metrics.bsseval_v4) against museval itself and a brute-force numpy
implementation, on short random and structured signals."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from bootsep.metrics.bsseval_v4 import (
    BSSEVAL_V4_METRICS,
    bss_eval_v4,
    bss_eval_v4_targets,
    frame_medians,
    frame_starts,
    museval_groups,
    museval_track_json,
)

TOL = 1e-6  # dB: both are float64 computations of the same definitions


def _museval_metrics():
    """museval's ``metrics`` module, loaded from its file (``import museval`` needs musdb ->
    stempeg -> ffmpeg; the metrics themselves need only numpy/scipy)."""
    spec = importlib.util.find_spec("museval")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("museval is not installed (pip install museval): nothing to compare with")
    path = f"{list(spec.submodule_search_locations)[0]}/metrics.py"
    mod_spec = importlib.util.spec_from_file_location("_museval_metrics_for_tests", path)
    module = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(module)
    return module


def museval_v4(refs: np.ndarray, ests: np.ndarray, win, hop, filters_len: int = 512) -> dict:
    """museval.evaluate(..., mode='v4') on ``(n_src, channels, samples)`` arrays: exactly the
    call it makes (``bss_eval`` with v4 settings), optionally with other filter lengths."""
    metrics = _museval_metrics()
    out = metrics.bss_eval(refs.transpose(0, 2, 1), ests.transpose(0, 2, 1),
                           compute_permutation=False, window=win, hop=hop,
                           filters_len=filters_len, framewise_filters=False,
                           bsseval_sources_version=False)
    return dict(zip(("SDR", "ISR", "SIR", "SAR"), out[:4]))


def ours(refs: np.ndarray, ests: np.ndarray, win, hop, filters_len: int = 512, **kw) -> dict:
    out = bss_eval_v4(ests[None], refs[None], win, hop, filters_len=filters_len, **kw)
    return {k: v[0].numpy() for k, v in out.items()}


def assert_same(a: dict, b: dict, tol: float = TOL) -> None:
    for name in BSSEVAL_V4_METRICS:
        x, y = np.asarray(a[name]), np.asarray(b[name])
        assert x.shape == y.shape, (name, x.shape, y.shape)
        assert np.array_equal(np.isnan(x), np.isnan(y)), (name, np.isnan(x), np.isnan(y))
        assert np.array_equal(np.isinf(x), np.isinf(y)), (name, x, y)
        finite = np.isfinite(x)
        assert np.all(np.abs(x[finite] - y[finite]) <= tol), (name, np.abs(x - y).max())


def music_like(rng, n_src: int, channels: int, n: int, sr: int = 8000) -> np.ndarray:
    """Harmonic tones with vibrato and gated noise, panned per channel, random levels."""
    t = np.arange(n) / sr
    out = np.zeros((n_src, channels, n))
    for j in range(n_src):
        f0 = rng.uniform(100, 600)
        vib = 1 + 0.01 * np.sin(2 * np.pi * rng.uniform(3, 7) * t)
        tone = sum(rng.uniform(0.2, 1) / k * np.sin(2 * np.pi * k * f0 * np.cumsum(vib) / sr)
                   for k in range(1, 6))
        gate = np.sin(2 * np.pi * rng.uniform(0.5, 2) * t + rng.uniform(0, 6)) > -0.3
        noise = rng.standard_normal(n) * gate * rng.uniform(0.1, 0.5)
        base = 10 ** (rng.uniform(-12, 0) / 20) * (tone + noise)
        for c in range(channels):
            out[j, c] = base * rng.uniform(0.3, 1.0) + 0.05 * rng.standard_normal(n)
    return out


def leaky_estimates(rng, refs: np.ndarray) -> np.ndarray:
    """Scaled references + leakage of the others + filtering + noise."""
    n_src = refs.shape[0]
    est = np.empty_like(refs)
    for j in range(n_src):
        leak = sum(rng.uniform(0.05, 0.4) * refs[k] for k in range(n_src) if k != j)
        smear = np.stack([np.convolve(ch, rng.uniform(0, 0.3, 5), mode="same") for ch in refs[j]])
        noise = rng.uniform(0.02, 0.2) * refs[j].std() * rng.standard_normal(refs[j].shape)
        est[j] = rng.uniform(0.5, 1.5) * refs[j] + leak + smear + noise
    return est


# ---------------------------------------------------------------------------- brute force

def brute_force_v4(refs: np.ndarray, ests: np.ndarray, win: int, hop: int, taps: int) -> dict:
    """The textbook definition, looped: explicit delayed copies, lstsq, time-domain convolution
    of each window (museval-independent)."""
    n_src, chans, n = refs.shape

    def delayed(x):  # (n,) -> (n + taps - 1, taps) columns x delayed by 0..taps-1
        m = np.zeros((n + taps - 1, taps))
        for d in range(taps):
            m[d:d + n, d] = x
        return m

    basis = {(i, c): delayed(refs[i, c]) for i in range(n_src) for c in range(chans)}

    def filters(sources):
        a = np.concatenate([basis[(i, c)] for i in sources for c in range(chans)], axis=1)
        return a

    starts, length = frame_starts(n, win, hop)
    out = {k: np.zeros((n_src, len(starts))) for k in BSSEVAL_V4_METRICS}
    for j in range(n_src):
        target = np.zeros((n + taps - 1, chans))
        target[:n] = ests[j].T
        a_all, a_own = filters(range(n_src)), filters([j])
        g_all = np.linalg.solve(a_all.T @ a_all, a_all.T @ target)  # (n_src*chans*taps, chans)
        g_own = np.linalg.solve(a_own.T @ a_own, a_own.T @ target)
        for t, s in enumerate(starts):
            def project(g, sources, s=s):
                y = np.zeros((chans, length + taps - 1))
                for col, (i, c) in enumerate((i, c) for i in sources for c in range(chans)):
                    for co in range(chans):
                        y[co] += np.convolve(refs[i, c, s:s + length],
                                             g[col * taps:(col + 1) * taps, co])
                return y

            p_all, p_own = project(g_all, range(n_src)), project(g_own, [j])
            s_true = np.zeros_like(p_all)
            s_true[:, :length] = refs[j, :, s:s + length]
            e = np.zeros_like(p_all)
            e[:, :length] = ests[j, :, s:s + length]
            silent = any(np.all(x[:, :, s:s + length].sum(1) == 0, axis=-1).any()
                         for x in (refs, ests))
            vals = {"SDR": (s_true, e - s_true), "ISR": (s_true, p_own - s_true),
                    "SIR": (p_own, p_all - p_own), "SAR": (p_all, e - p_all)}
            for k, (num, den) in vals.items():
                out[k][j, t] = math.nan if silent else 10 * np.log10(
                    np.sum(num ** 2) / np.sum(den ** 2))
    return out


def test_matches_brute_force_without_museval():
    rng = np.random.default_rng(0)
    refs = music_like(rng, 2, 2, 700)
    ests = leaky_estimates(rng, refs)
    got = ours(refs, ests, 200, 150, filters_len=8)
    want = brute_force_v4(refs, ests, 200, 150, taps=8)
    assert_same(got, want, tol=1e-6)


# ---------------------------------------------------------------------------- against museval

def test_random_stereo_default_filters():
    """museval.evaluate's exact settings (512 taps), 1 s windows at 2 kHz, a partial last
    window that museval drops."""
    rng = np.random.default_rng(1)
    refs = rng.standard_normal((2, 2, 4500))
    ests = refs + 0.5 * rng.standard_normal(refs.shape) + 0.3 * np.roll(refs, 1, axis=0)
    want = museval_v4(refs, ests, 2000, 2000)
    got = ours(refs, ests, 2000, 2000)
    assert got["SDR"].shape == (2, 2)
    assert_same(got, want)


@pytest.mark.parametrize("n_src,chans,win,hop", [(4, 2, 1000, 1000), (2, 1, 1000, 400),
                                                  (3, 3, 900, 1100), (2, 2, None, None)])
def test_structured_music_like(n_src, chans, win, hop):
    """Several sources, mono/stereo/3 channels, overlapping and gapped frames, one whole-signal
    frame."""
    rng = np.random.default_rng(n_src * 10 + chans)
    refs = music_like(rng, n_src, chans, 5200)
    ests = leaky_estimates(rng, refs)
    m_win = np.inf if win is None else win
    m_hop = np.inf if hop is None else hop
    assert_same(ours(refs, ests, win, hop, filters_len=64),
                museval_v4(refs, ests, m_win, m_hop, filters_len=64))


def test_silent_stretches_are_undefined_like_museval():
    """Frames where a reference or an estimate is silent (museval: channel sum exactly 0, so
    also a source whose channels cancel) are NaN for every source; quiet-but-not-silent frames
    are scored."""
    rng = np.random.default_rng(3)
    refs = music_like(rng, 3, 2, 6000)
    ests = leaky_estimates(rng, refs)
    refs[0, :, 1000:2000] = 0.0          # silent reference: frame 1
    refs[1, 1, 3000:4000] = -refs[1, 0, 3000:4000]   # channels cancel: frame 3
    ests[2, :, 4000:5000] = 0.0          # silent estimate: frame 4
    refs[2, :, 5000:5600] = 1e-12 * rng.standard_normal((2, 600))  # quiet, not silent
    got = ours(refs, ests, 1000, 1000, filters_len=32)
    want = museval_v4(refs, ests, 1000, 1000, filters_len=32)
    assert_same(got, want, tol=1e-5)
    undefined = np.isnan(got["SDR"]).all(axis=0)
    assert undefined.tolist() == [False, True, False, True, True, False]
    medians, excluded = frame_medians({k: torch.from_numpy(v) for k, v in got.items()})
    assert excluded["SDR"].tolist() == [3, 3, 3]
    assert np.allclose(medians["SDR"], np.nanmedian(got["SDR"], axis=1))


def test_estimate_equal_to_reference():
    rng = np.random.default_rng(4)
    refs = music_like(rng, 2, 2, 3000)
    got = ours(refs, refs.copy(), 1000, 1000, filters_len=32)
    want = museval_v4(refs, refs.copy(), 1000, 1000, filters_len=32)
    assert np.isposinf(got["SDR"]).all()  # ||ŝ - s||² is exactly 0
    for name in BSSEVAL_V4_METRICS:  # museval: inf or a round-off-sized denominator
        assert (got[name] > 100).all() and (want[name] > 100).all(), name


def test_scaled_and_delayed_estimate():
    """A gain and a delay shorter than the filters: the projections absorb both (high SIR, SAR),
    while SDR and ISR measure the distortion, exactly as museval does."""
    rng = np.random.default_rng(5)
    refs = music_like(rng, 3, 2, 4000)
    delay = 7
    ests = np.zeros_like(refs)
    ests[..., delay:] = 0.5 * refs[..., :-delay]
    ests += 1e-4 * rng.standard_normal(ests.shape)
    got = ours(refs, ests, 1000, 1000, filters_len=32)
    assert_same(got, museval_v4(refs, ests, 1000, 1000, filters_len=32), tol=1e-5)
    assert (got["SIR"] > 30).all() and (got["SAR"] > 10).all()
    assert (got["SDR"] < 10).all() and (got["ISR"] < 10).all()


def test_batch_chunks_and_float32_agree():
    """Tracks batched together, tiny memory chunks (many correlation blocks and frame chunks),
    and float32 input all give the per-track float64 result."""
    rng = np.random.default_rng(6)
    refs = np.stack([music_like(rng, 2, 2, 3000) for _ in range(2)])
    ests = np.stack([leaky_estimates(rng, r) for r in refs])
    batched = bss_eval_v4(ests, refs, 1000, 500, filters_len=32)
    chunked = bss_eval_v4(ests, refs, 1000, 500, filters_len=32, chunk_bytes=1)
    single = [ours(refs[b], ests[b], 1000, 500, filters_len=32) for b in range(2)]
    f32 = bss_eval_v4(torch.from_numpy(ests).float(), torch.from_numpy(refs).float(), 1000, 500,
                      filters_len=32)
    f32_ref = bss_eval_v4(torch.from_numpy(ests).float().double(),
                          torch.from_numpy(refs).float().double(), 1000, 500, filters_len=32)
    for name in BSSEVAL_V4_METRICS:
        for b in range(2):
            assert np.allclose(batched[name][b].numpy(), single[b][name], atol=1e-9)
        assert torch.allclose(batched[name], chunked[name], atol=1e-9)
        assert torch.allclose(f32[name], f32_ref[name], atol=1e-9)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu():
    rng = np.random.default_rng(7)
    refs = music_like(rng, 2, 2, 3000)
    ests = leaky_estimates(rng, refs)
    cpu = bss_eval_v4(ests[None], refs[None], 1000, filters_len=64)
    gpu = bss_eval_v4(torch.from_numpy(ests[None]).cuda(), torch.from_numpy(refs[None]).cuda(),
                      1000, filters_len=64)
    for name in BSSEVAL_V4_METRICS:
        assert gpu[name].device.type == "cuda"
        assert torch.allclose(gpu[name].cpu(), cpu[name], atol=1e-6)


def test_bad_shapes_raise():
    x = np.zeros((1, 2, 2, 100))
    with pytest.raises(ValueError, match="batch, n_src, channels, samples"):
        bss_eval_v4(x[0], x[0])
    with pytest.raises(ValueError, match="batch, n_src, channels, samples"):
        bss_eval_v4(x, x[..., :50])
    with pytest.raises(ValueError, match="positive"):
        frame_starts(100, 10, 0)


def test_framing_is_museval_framing():
    framing = _museval_metrics().Framing
    for n, win, hop in [(1000, 300, 300), (1000, 300, 250), (1000, 1000, 1000), (999, 1000, 10),
                        (1000, 100, 300)]:
        f = framing(win, hop, n)
        slices = [next(f) for _ in range(f.nwin)]
        starts, length = frame_starts(n, win, hop)
        assert [(s.start, s.stop) for s in slices] == [(s, s + length) for s in starts]


# ---------------------------------------------------------------------------- groups and JSON

def test_museval_groups_vocals_accompaniment():
    assert museval_groups(["vocals", "accompaniment"]) == [([0, 1], [0, 1])]
    assert museval_groups(["accompaniment", "vocals"]) == [([1, 0], [1, 0])]
    assert museval_groups(["vocals", "drums", "bass", "other"]) == [([0, 1, 2, 3],
                                                                     [0, 1, 2, 3])]
    assert museval_groups(["drums", "vocals", "accompaniment", "bass"]) == [
        ([0, 1, 3], [0, 3]), ([1, 2], [1, 2])]


def test_targets_follow_museval_grouping():
    rng = np.random.default_rng(8)
    refs = music_like(rng, 3, 2, 3000)   # drums, vocals, accompaniment
    refs[2] = refs[0] + 0.5 * rng.standard_normal(refs[0].shape)
    ests = leaky_estimates(rng, refs)
    labels = ["drums", "vocals", "accompaniment"]
    got = bss_eval_v4_targets(ests, refs, labels, 1000, filters_len=32)
    pair = ours(refs[[1, 2]], ests[[1, 2]], 1000, 1000, filters_len=32)
    rest = ours(refs[[0, 1]], ests[[0, 1]], 1000, 1000, filters_len=32)
    for name in BSSEVAL_V4_METRICS:
        assert np.allclose(got[name][1:].numpy(), pair[name])
        assert np.allclose(got[name][0].numpy(), rest[name][0])


def test_museval_json_is_read_by_museval(tmp_path):
    """The JSON has museval's schema and museval's own reader and aggregation give our
    track-level medians."""
    pytest.importorskip("jsonschema")
    rng = np.random.default_rng(9)
    refs = music_like(rng, 2, 2, 5000)
    ests = leaky_estimates(rng, refs)
    refs[0, :, :1000] = 0.0
    frames = bss_eval_v4_targets(ests, refs, ["vocals", "accompaniment"], 1000, filters_len=32)
    frames["SIR"][1, 2] = math.inf  # museval stores inf as NaN
    record = museval_track_json(frames, ["vocals", "accompaniment"], 1.0, 1.0)
    text = json.dumps(record, allow_nan=True)
    spec = importlib.util.find_spec("museval")
    if spec is None:
        pytest.skip("museval is not installed")
    import jsonschema

    schema_path = Path(list(spec.submodule_search_locations)[0]) / "musdb.schema.json"
    schema = json.loads(schema_path.read_text())
    loaded = json.loads(text)
    jsonschema.validate(loaded, schema)
    assert [t["name"] for t in loaded["targets"]] == ["vocals", "accompaniment"]
    assert loaded["targets"][0]["frames"][1] == {"time": 1.0, "duration": 1.0, "metrics": {
        m: round(float(frames[m][0, 1]), 5) for m in ("SDR", "SIR", "SAR", "ISR")}}
    assert math.isnan(loaded["targets"][0]["frames"][0]["metrics"]["SDR"])
    medians, excluded = frame_medians(frames)
    assert excluded["SIR"].tolist() == [1, 2] and excluded["SDR"].tolist() == [1, 1]
    try:
        from museval.aggregate import EvalStore, json2df
    except Exception as err:  # noqa: BLE001 - museval imports musdb -> stempeg -> ffmpeg
        pytest.skip(f"museval's reader cannot be imported here ({type(err).__name__}: {err})")
    (tmp_path / "test").mkdir()
    (tmp_path / "test" / "Some - Track.json").write_text(text)
    store = EvalStore()
    store.add_eval_dir(tmp_path)
    agg = store.agg_frames_scores()
    for j, target in enumerate(["vocals", "accompaniment"]):
        for m in BSSEVAL_V4_METRICS:
            assert abs(agg[("Some - Track", target, m)] - medians[m][j]) < 1e-4
    assert len(json2df(loaded, "x")) == 2 * 5 * 4


# ---------------------------------------------------------------------------- the solver

def _corr_and_rhs(refs, ests, taps):
    from bootsep.metrics.bsseval_v4 import _correlations

    k = refs.shape[0] * refs.shape[1]
    r = torch.from_numpy(refs.reshape(1, k, -1))
    e = torch.from_numpy(ests.reshape(1, k, -1))
    rr, re = _correlations(r, e, taps, 2**20)
    return rr, re[..., taps - 1:].permute(0, 1, 3, 2).reshape(1, k * taps, k)


def _dense(rr, taps):
    from bootsep.metrics.bsseval_v4 import _GRAM_EPS

    k = rr.shape[1]
    gram = rr.flip(-1).unfold(-1, taps, 1).flip(-2).permute(0, 1, 3, 2, 4).reshape(
        1, k * taps, k * taps).clone()
    gram.diagonal(dim1=-2, dim2=-1).add_(_GRAM_EPS)
    return gram


def test_block_levinson_solves_the_normal_equations(monkeypatch):
    """The fast block-Toeplitz solve equals a dense solve of museval's normal equations, and
    its correlations are the explicit Gram matrix of delayed references."""
    from bootsep.metrics import bsseval_v4 as v4

    rng = np.random.default_rng(10)
    refs = music_like(rng, 3, 2, 3000)
    ests = leaky_estimates(rng, refs)
    taps = 16
    rr, rhs = _corr_and_rhs(refs, ests, taps)
    gram = _dense(rr, taps)
    basis = np.concatenate([np.stack([np.concatenate([np.zeros(d), x, np.zeros(taps - 1 - d)])
                                      for d in range(taps)], 1)
                            for x in refs.reshape(6, -1)], 1)  # (samples + taps - 1, 6 taps)
    assert np.allclose(gram[0].numpy(), basis.T @ basis, rtol=1e-10, atol=1e-9)
    dense_calls = []
    monkeypatch.setattr(v4, "_solve_psd", lambda g, r: dense_calls.append(1) or
                        torch.linalg.solve(g, r))
    fast = v4._toeplitz_solve(rr, rhs)
    assert not dense_calls  # well conditioned: Levinson's answer is kept
    assert torch.allclose(fast, torch.linalg.solve(gram, rhs), rtol=1e-8, atol=1e-10)


def test_singular_gram_falls_back_to_a_dense_solve(monkeypatch):
    """A source whose two channels are identical makes G singular: the Levinson recursion's
    answer fails the residual check and the dense solver takes over (finite filters)."""
    from bootsep.metrics import bsseval_v4 as v4

    rng = np.random.default_rng(11)
    refs = music_like(rng, 2, 2, 2000)
    refs[0, 1] = refs[0, 0]
    rr, rhs = _corr_and_rhs(refs, leaky_estimates(rng, refs), 16)
    dense_calls = []
    real = v4._solve_psd
    monkeypatch.setattr(v4, "_solve_psd", lambda g, r: dense_calls.append(1) or real(g, r))
    out = v4._toeplitz_solve(rr, rhs)
    assert dense_calls and torch.isfinite(out).all()
