"""BSS-Eval v4 (the museval / SiSEC 2018 MUSDB18 yardstick): SDR, ISR, SIR, SAR per frame.

Definitions (Vincent et al. 2006, *bss_eval_images*; Liutkus et al. 2018 for v4), for one track
with references ``s_i`` and estimates ``ŝ_j`` of ``n_src`` sources, each ``channels`` x
``samples``:

1. **Distortion filters, once per track (v4).** With ``L = filters_len`` (512) taps, ``P_j`` is
   the least-squares projection of the estimate ``ŝ_j`` onto the span of the delayed reference
   channels of source ``j`` alone (every output channel filtered from every input channel,
   delays ``0 .. L-1``), and ``P`` the same onto the delayed channels of *all* references. The
   normal equations use the whole-track Gram matrix ``G`` of the delayed references (block
   Toeplitz, from their auto/cross-correlations at lags ``-(L-1) .. L-1``) and their
   correlations ``D`` with the estimate at lags ``0 .. L-1``: ``C = (G + eps I)^-1 D`` with
   ``eps = 2.2e-16`` (float64 machine epsilon, added as museval does).
2. **Per frame** (window ``window``, hop ``hop`` samples; museval's framing: frame ``t`` covers
   ``[t hop, t hop + window)``, ``floor((samples - window + hop) / hop)`` frames, one frame of the
   whole signal when ``window >= samples``), the *windowed* references are filtered with the
   track's filters (full linear convolution, ``window + L - 1`` samples; the estimate and the
   true image are zero-padded to that length), giving ``s = s_j`` (true image), ``e_spat = P_j - s``,
   ``e_interf = P - P_j`` and ``e_artif = ŝ_j - P``; energies sum over channels and samples::

       SDR = 10 log10 ||s||² / ||ŝ_j - s||²        ISR = 10 log10 ||s||² / ||P_j - s||²
       SIR = 10 log10 ||P_j||² / ||P - P_j||²      SAR = 10 log10 ||P||² / ||ŝ_j - P||²

   A zero denominator gives ``+inf`` (museval's ``_safe_db``).
3. **Undefined frames.** A frame in which any reference *or* any estimate is silent (its channel
   sum is exactly 0 at every sample of the window) is undefined: all four metrics of all sources
   are ``nan`` for that frame, as in museval.

This is ``museval.evaluate(references, estimates, win=window, hop=hop, mode='v4')`` (estimate
``j`` scored against reference ``j``, no permutation search), computed in float64 in torch:
correlations by blocked FFTs (memory bounded by ``chunk_bytes``, not by the track's length), the
normal equations of all estimates at once by the block Levinson recursion (``G`` is block
Toeplitz), kept when its residual is as small as a backward-stable solver's, else a dense
Cholesky factorisation (LU, then least squares, when ``G`` is not numerically positive
definite), and the per-frame energies from the filtered spectra by Parseval, frames batched in
chunks. Any device; several tracks of the same length form a batch.
Differences: museval refuses a track whose reference or estimate is silent *throughout*
(``ValueError``); here its frames are all undefined (``nan``). Where ``G`` is (nearly) singular
— a source whose channels are exactly equal, or references with no energy over a band of
frequencies (e.g. white noise through a steep low-pass) — the filters are not determined by the
data, museval's own ISR/SIR/SAR then depend on its LAPACK's round-off, and no other solver
reproduces them; music recordings are far from that (see ``bench/metrics_speed.py``).

The track-level number people report is the median over a track's frames
(:func:`frame_medians`; museval writes ``inf`` as ``NaN`` in its JSON, so only finite frames
count), then the median (SiSEC) or mean over tracks. :func:`museval_track_json` builds the JSON
museval writes per track (``museval.TrackStore`` schema), readable by ``museval.EvalStore``.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .bsseval import _to_float64


def _as_float(x, name: str) -> torch.Tensor:
    """A real tensor without copying float32/float64 input (chunks are cast to float64 when
    used, so a long float32 track is never copied whole); other dtypes become float64."""
    if isinstance(x, np.ndarray) and x.dtype in (np.float32, np.float64):
        x = torch.from_numpy(x)
    if isinstance(x, torch.Tensor) and x.dtype in (torch.float32, torch.float64):
        return x.detach()
    return _to_float64(x, name)

#: per-frame metrics, in museval's return order
BSSEVAL_V4_METRICS = ("SDR", "ISR", "SIR", "SAR")
#: distortion filter length in taps (museval's default)
FILTERS_LEN = 512
#: regulariser added to the Gram matrix's diagonal, as museval does (``np.finfo(float).eps``)
_GRAM_EPS = float(np.finfo(np.float64).eps)
#: default working-memory budget of one chunk of FFT blocks / frames, in bytes
CHUNK_BYTES = 256 * 2**20


def frame_starts(n_samples: int, window: int | None, hop: int | None) -> tuple[list[int], int]:
    """museval's framing: ``(starts, frame_length)`` in samples.

    ``floor((n_samples - window + hop) / hop)`` frames starting at ``t * hop`` when
    ``window < n_samples``; otherwise (or ``window=None``) one frame covering the whole signal.
    """
    if window is None or window >= n_samples:
        return [0], int(n_samples)
    window, hop = int(window), int(hop if hop is not None else window)
    if window < 1 or hop < 1:
        raise ValueError(f"window ({window}) and hop ({hop}) must be positive sample counts")
    n_frames = (n_samples - window + hop) // hop
    return [t * hop for t in range(n_frames)], window


def _fast_len(n: int) -> int:
    """Smallest 2^a 3^b 5^c >= n (an efficient FFT size)."""
    best = 1 << max(0, (n - 1).bit_length())
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            m = p35
            while m < n:
                m *= 2
            best = min(best, m)
            p35 *= 3
        p5 *= 5
    return best


def _parseval_weights(n_fft: int, n_bins: int, dtype, device) -> torch.Tensor:
    """Weights ``w`` with ``sum_f w_f |X_f|² = ||x||²`` for ``X = rfft(x, n_fft)``."""
    w = torch.full((n_bins,), 2.0 / n_fft, dtype=dtype, device=device)
    w[0] = 1.0 / n_fft
    if n_fft % 2 == 0:
        w[-1] = 1.0 / n_fft
    return w


def _padded_slice(x: torch.Tensor, lo: int, hi: int) -> torch.Tensor:
    """``x[..., lo:hi]`` with zeros where the range leaves ``[0, samples)``."""
    n = x.shape[-1]
    seg = x[..., max(lo, 0):min(hi, n)]
    return torch.nn.functional.pad(seg, (max(0, -lo), max(0, hi - max(lo, n))))


def _cross_spectra(x: torch.Tensor, y: torch.Tensor, n_fft: int) -> tuple[torch.Tensor, ...]:
    """``sum over segments of conj(X_p) X_q`` and ``conj(X_p) Y_q``, per frequency.

    Args:
        x, y: ``(B, K, segments, length)`` float64.
    Returns:
        two ``(B, F, K, K)`` complex128 (a product per frequency of contiguous ``(K, segments)``
        and ``(segments, K)`` matrices: fast for many small matrices).
    """
    xh = torch.fft.rfft(x, n=n_fft).conj().permute(0, 3, 1, 2).contiguous()  # (B, F, K, nb)
    yt = torch.fft.rfft(y, n=n_fft).permute(0, 3, 2, 1).contiguous()  # (B, F, nb, K)
    return xh @ xh.mH, xh @ yt


def _correlations(ref: torch.Tensor, est: torch.Tensor, lags: int,
                  chunk_bytes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Whole-track correlations ``r[p, q, m] = sum_n x_p[n] y_q[n + m - (lags - 1)]``.

    Args:
        ref, est: ``(batch, K, samples)`` float32 or float64, cast to float64 chunk by chunk
            (K = sources x channels).
        lags: ``L``; lags ``-(L-1) .. L-1`` are returned (index ``m = d + L - 1``).
    Returns:
        ``(ref x ref, ref x est)`` correlations, each ``(batch, K, K, 2L - 1)``.

    Computed over windows ``W_b = [b T - (L-1), (b+1) T + (L-1))`` (zeros beyond the track):
    every pair of samples at most ``L - 1`` apart lies in some window, and the pairs inside the
    ``2L - 2`` samples two consecutive windows share are counted twice, so the sum over windows
    of their correlations minus the sum over those overlaps' is exact. The cross-spectra are
    summed over windows, so one inverse FFT gives the whole-track correlations; only a chunk of
    windows is in memory at a time.
    """
    batch, k, n = ref.shape
    span = 2 * lags - 2
    n_fft = max(1 << 16, 1 << (4 * span).bit_length())
    block = n_fft - span - (lags - 1)  # window + (L - 1) lags fit without wrapping
    n_bins = n_fft // 2 + 1
    n_blocks = -(-n // block)
    per_block = batch * k * n_bins * 16 * 5  # spectra and their contiguous copies
    blocks_per_chunk = max(1, int(chunk_bytes // max(per_block, 1)))
    acc_rr = torch.zeros(batch, n_bins, k, k, dtype=torch.complex128, device=ref.device)
    acc_re = torch.zeros_like(acc_rr)
    for first in range(0, n_blocks, blocks_per_chunk):
        last = min(n_blocks, first + blocks_per_chunk)
        lo, hi = first * block - (lags - 1), last * block + lags - 1
        win_r = _padded_slice(ref, lo, hi).double().unfold(-1, block + span, block)
        win_e = _padded_slice(est, lo, hi).double().unfold(-1, block + span, block)
        rr, re = _cross_spectra(win_r, win_e, n_fft)
        acc_rr += rr
        acc_re += re
        del rr, re, win_r, win_e
    # the overlaps of consecutive windows: [(b+1) T - (L-1), (b+1) T + (L-1)), b < n_blocks - 1
    small = 1 << (3 * lags - 3).bit_length()
    acc_small = [torch.zeros(batch, small // 2 + 1, k, k, dtype=torch.complex128,
                             device=ref.device) for _ in range(2)]
    per_overlap = batch * k * (small // 2 + 1) * 16 * 5
    # (as many as windows per chunk: the slice copied for them spans that many windows)
    overlaps_per_chunk = max(1, min(int(chunk_bytes // per_overlap), blocks_per_chunk))
    for first in range(0, n_blocks - 1, overlaps_per_chunk):
        last = min(n_blocks - 1, first + overlaps_per_chunk)
        lo, hi = (first + 1) * block - (lags - 1), last * block + lags - 1
        ov_r = _padded_slice(ref, lo, hi).double().unfold(-1, span, block)
        ov_e = _padded_slice(est, lo, hi).double().unfold(-1, span, block)
        rr, re = _cross_spectra(ov_r, ov_e, small)
        acc_small[0] += rr
        acc_small[1] += re
    out = []
    for acc, acc_o in zip((acc_rr, acc_re), acc_small):
        corr = torch.fft.irfft(acc.permute(0, 2, 3, 1), n=n_fft)  # (B, K, K, n_fft)
        corr_o = torch.fft.irfft(acc_o.permute(0, 2, 3, 1), n=small)
        lag_idx = torch.arange(-(lags - 1), lags, device=ref.device)
        out.append(corr[..., lag_idx % n_fft] - corr_o[..., lag_idx % small])
    return out[0], out[1]


def _solve_psd(reg: torch.Tensor, rhs: torch.Tensor) -> torch.Tensor:
    """``reg^-1 rhs`` for a batch of symmetric PSD matrices (already regularised).

    Cholesky first; for matrices that are not numerically positive definite, LU (museval's
    ``np.linalg.solve``), and least squares where even LU finds an exactly singular matrix.
    """
    chol, info = torch.linalg.cholesky_ex(reg)
    out = torch.cholesky_solve(rhs, chol)
    bad = (info != 0).nonzero().flatten().tolist()
    for b in bad:
        sol, lu_info = torch.linalg.solve_ex(reg[b], rhs[b])
        if int(lu_info) != 0 or not torch.isfinite(sol).all():
            sol = torch.linalg.lstsq(reg[b].cpu(), rhs[b].cpu()).solution.to(reg.device)
        out[b] = sol
    return out


def _block_levinson(blocks: torch.Tensor, rhs: torch.Tensor) -> torch.Tensor:
    """Solve ``T x = b`` for a symmetric positive definite block Toeplitz ``T``.

    Args:
        blocks: ``(..., L, K, K)``: ``R_0 .. R_{L-1}``; ``T``'s block ``(i, j)`` is ``R_{i-j}``
            with ``R_{-m} = R_m^T``.
        rhs: ``(..., L, K, M)``, block ``i`` of ``b``.
    Returns:
        ``x`` ``(..., L, K, M)``.

    The block Levinson recursion (Whittle / Wiggins-Robinson; forward and backward predictors
    of growing order, and the solution extended one block at a time): ``O(L² K³)`` operations
    instead of the ``O(L³ K³)`` of a dense factorisation. A singular step gives non-finite
    values (no exception); :func:`_toeplitz_solve` checks the result.
    """

    def _solve(a, b):
        return torch.linalg.solve_ex(a, b)[0]

    *lead, n_lags, k, _ = blocks.shape
    m = rhs.shape[-1]
    # [R_{L-1}, ..., R_1, R_0] and [R_1^T, ..., R_{L-1}^T] side by side: (..., K, L K)
    row = blocks.flip(-3).transpose(-3, -2).reshape(*lead, k, n_lags * k)
    row_t = blocks[..., 1:, :, :].transpose(-1, -2).transpose(-3, -2).reshape(
        *lead, k, (n_lags - 1) * k)
    eye = torch.eye(k, dtype=blocks.dtype, device=blocks.device).expand(*lead, k, k)
    fwd, bwd = eye.clone(), eye.clone()  # stacked (..., n K, K)
    e_f = e_b = blocks[..., 0, :, :]
    x = _solve(e_f, rhs[..., 0, :, :])  # stacked (..., n K, M)
    zeros_k = torch.zeros(*lead, k, k, dtype=blocks.dtype, device=blocks.device)
    zeros_m = torch.zeros(*lead, k, m, dtype=blocks.dtype, device=blocks.device)
    for n in range(1, n_lags):
        lagged = row[..., (n_lags - 1 - n) * k:(n_lags - 1) * k]  # [R_n, ..., R_1]
        eps_f = lagged @ fwd
        eps_b = row_t[..., :n * k] @ bwd
        alpha_f = -_solve(e_b, eps_f)
        alpha_b = -_solve(e_f, eps_b)
        fwd_ext = torch.cat([fwd, zeros_k], dim=-2)
        bwd_ext = torch.cat([zeros_k, bwd], dim=-2)
        fwd, bwd = fwd_ext + bwd_ext @ alpha_f, bwd_ext + fwd_ext @ alpha_b
        e_f, e_b = e_f + eps_b @ alpha_f, e_b + eps_f @ alpha_b
        gamma = _solve(e_b, rhs[..., n, :, :] - lagged @ x)
        x = torch.cat([x, zeros_m], dim=-2) + bwd @ gamma
    return x.reshape(*lead, n_lags, k, m)


def _toeplitz_solve(corr: torch.Tensor, rhs: torch.Tensor) -> torch.Tensor:
    """Solve museval's normal equations ``(G + eps I) x = rhs``.

    Args:
        corr: ``(..., K, K, 2L - 1)`` correlations ``r_pq(m)`` at index ``m + L - 1``; ``G``'s
            entry ``((p, k), (q, l))`` is ``r_pq(k - l)``.
        rhs: ``(..., K L, M)`` with rows ``(p, k)``.
    Returns:
        ``x`` ``(..., K L, M)``.

    The block Levinson recursion first; its solution is kept when its residual is as small as
    a backward-stable solver's (``||G x - rhs|| <= 1e-10 ||G|| ||x||``), otherwise (an
    ill-conditioned ``G``) the dense ``G`` is factorised (:func:`_solve_psd`).
    """
    *lead, k, _, span = corr.shape
    lags = (span + 1) // 2
    m = rhs.shape[-1]
    blocks = corr[..., lags - 1:].permute(*range(len(lead)), -1, -3, -2)  # (..., L, K, K)
    blocks = blocks.clone()
    blocks[..., 0, :, :].diagonal(dim1=-2, dim2=-1).add_(_GRAM_EPS)
    b = rhs.reshape(*lead, k, lags, m).transpose(-3, -2)  # (..., L, K, M)
    x = _block_levinson(blocks, b)  # (..., L, K, M)
    # residual: (G x)_k = sum_l R_{k-l} x_l is a convolution over lags, done by FFT
    n_fft = 1 << (3 * lags - 2).bit_length()
    seq = corr.clone()
    seq[..., lags - 1].diagonal(dim1=-2, dim2=-1).add_(_GRAM_EPS)
    conv = torch.einsum("...pqf,...qmf->...pmf", torch.fft.rfft(seq, n=n_fft),
                        torch.fft.rfft(x.permute(*range(len(lead)), -2, -1, -3), n=n_fft))
    gx = torch.fft.irfft(conv, n=n_fft)[..., lags - 1:2 * lags - 1]  # (..., K, M, L)
    residual = torch.linalg.vector_norm(gx - b.permute(*range(len(lead)), -2, -1, -3),
                                        dim=(-3, -2, -1))
    weight = 2.0 * (lags - torch.arange(lags, dtype=corr.dtype, device=corr.device))
    weight[0] = lags
    g_norm = torch.sqrt(blocks.square().sum((-2, -1)) @ weight)
    bound = 1e-10 * g_norm * torch.linalg.vector_norm(x, dim=(-3, -2, -1))
    out = x.transpose(-3, -2).reshape(*lead, k * lags, m)
    bad = ~(residual <= bound)
    if bad.any():  # dense factorisation for those
        toeplitz = corr[bad].flip(-1).unfold(-1, lags, 1).flip(-2)  # (n, K, K, L, L)
        gram = toeplitz.permute(0, 1, 3, 2, 4).reshape(-1, k * lags, k * lags)
        gram.diagonal(dim1=-2, dim2=-1).add_(_GRAM_EPS)
        out[bad] = _solve_psd(gram, rhs[bad])
    return out


def _filters(ref: torch.Tensor, est: torch.Tensor, lags: int, chunk_bytes: int
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """The track's distortion filters.

    Args:
        ref, est: ``(batch, n_src, channels, samples)`` float32 or float64.
    Returns:
        ``(C, Cj)``: ``C`` ``(batch, n_src_in, ch_in, L, n_src_est, ch_out)`` projects each
        estimate on all references; ``Cj`` ``(batch, n_src, ch_in, L, ch_out)`` projects
        estimate ``j`` on reference ``j`` alone.
    """
    batch, n_src, chans, n = ref.shape
    k = n_src * chans
    r_rr, r_re = _correlations(ref.reshape(batch, k, n), est.reshape(batch, k, n), lags,
                               chunk_bytes)
    # D[(p,k), o] = sum_n x_p[n] est_o[n + k], k = 0 .. L-1
    cross = r_re[..., lags - 1:].permute(0, 1, 3, 2).reshape(batch, k * lags, k)
    full = _toeplitz_solve(r_rr, cross).reshape(batch, n_src, chans, lags, n_src, chans)
    # per source: its own channels' correlations, against its own estimate's columns
    per_src = r_rr.reshape(batch, n_src, chans, n_src, chans, -1)
    idx = torch.arange(n_src, device=ref.device)
    own_corr = per_src[:, idx, :, idx].transpose(0, 1)  # (B, J, C, C, 2L-1)
    own_cross = cross.reshape(batch, n_src, chans * lags, n_src, chans)[:, idx, :, idx, :]
    own = _toeplitz_solve(own_corr, own_cross.transpose(0, 1))
    return full, own.reshape(batch, n_src, chans, lags, chans)


def _channel_sum(x: torch.Tensor) -> torch.Tensor:
    """``(B, J, C, N) -> (B, J, N)``, channels added in order (as numpy does for a few)."""
    total = x[:, :, 0]
    for c in range(1, x.shape[2]):
        total = total + x[:, :, c]
    return total


def _silent_frames(x: torch.Tensor, starts: list[int], length: int) -> torch.Tensor:
    """``(batch, frames)`` True where some source's channel sum is 0 throughout the frame."""
    active = _channel_sum(x) != 0  # (B, J, N)
    hop = starts[1] - starts[0] if len(starts) > 1 else length
    framed = active[..., starts[0]:starts[-1] + length].unfold(-1, length, hop)
    return ~framed.any(dim=-1).all(dim=1)


def _db(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    """museval's ``_safe_db``: ``+inf`` where ``den == 0``, else ``10 log10(num / den)``."""
    safe = torch.where(den == 0, torch.ones_like(den), den)
    val = 10.0 * torch.log10(num / safe)
    return torch.where(den == 0, torch.full_like(val, math.inf), val)


def _frame_scores(ref: torch.Tensor, est: torch.Tensor, length: int, hop: int,
                  filt_f: torch.Tensor, weights: torch.Tensor, n_fft: int
                  ) -> dict[str, torch.Tensor]:
    """The four metrics of consecutive frames.

    Args:
        ref, est: ``(B, J, C, samples)`` segments holding whole frames ``length`` apart by ``hop``.
        filt_f: ``(B, F, K, 2K)`` filter spectra (all-reference, then own-reference filters).
        weights: Parseval weights ``(F,)``; ``n_fft`` the FFT size (``>= length + L - 1``).
    Returns:
        ``{metric: (B, J, frames)}``.
    """
    batch, n_src, chans, _ = ref.shape
    k = n_src * chans
    n_bins = n_fft // 2 + 1
    r_w = ref.unfold(-1, length, hop)  # (B, J, C, T, W)
    e_w = est.unfold(-1, length, hop)
    frames = r_w.shape[3]
    s_true = _channel_sum(ref.square()).unfold(-1, length, hop).sum(-1)  # (B, J, T)
    sdr_den = _channel_sum((est - ref).square()).unfold(-1, length, hop).sum(-1)

    def spectra(x):  # (B, J, C, T, W) -> (B, F, T, K)
        spec = torch.fft.rfft(x, n=n_fft).reshape(batch, k, frames, n_bins)
        return spec.permute(0, 3, 2, 1).contiguous()

    def energy(spec):  # (B, F, T, K) -> (B, J, T), summed over channels
        power = spec.real.square() + spec.imag.square()
        per_channel = torch.tensordot(weights, power, dims=([0], [1]))  # (B, T, K)
        return _channel_sum(per_channel.reshape(batch, frames, n_src, chans).permute(0, 2, 3, 1))

    r_f = spectra(r_w)
    projs = r_f @ filt_f  # (B, F, T, 2K)
    proj, proj_own = projs[..., :k], projs[..., k:]
    isr_den = energy(proj_own - r_f)
    del r_f
    sar_den = energy(spectra(e_w) - proj)
    scores = {"SDR": _db(s_true, sdr_den), "ISR": _db(s_true, isr_den),
              "SIR": _db(energy(proj_own), energy(proj - proj_own)),
              "SAR": _db(energy(proj), sar_den)}
    starts = list(range(0, frames * hop, hop))
    undefined = (_silent_frames(ref, starts, length) | _silent_frames(est, starts, length))
    nan = torch.tensor(math.nan, dtype=torch.float64, device=ref.device)
    return {m: torch.where(undefined.unsqueeze(1), nan, v) for m, v in scores.items()}


def bss_eval_v4(estimates, references, window: int | None = 44100, hop: int | None = None,
                filters_len: int = FILTERS_LEN, chunk_bytes: int = CHUNK_BYTES
                ) -> dict[str, torch.Tensor]:
    """BSS-Eval v4 SDR, ISR, SIR, SAR per frame (see the module docstring).

    Args:
        estimates: ``(batch, n_src, channels, samples)`` torch tensor or numpy array (any real
            dtype; computed in float64); estimate ``j`` is scored against reference ``j``.
            ``batch`` = tracks of the same length, evaluated independently.
        references: same shape as ``estimates``.
        window: frame length in samples (default 44100 = 1 s at 44.1 kHz; museval's ``win``);
            ``None`` or ``>= samples``: one frame of the whole track.
        hop: frame hop in samples (default ``window``).
        filters_len: distortion filter taps (default 512, museval's).
        chunk_bytes: working-memory budget for one chunk of correlation blocks or frames
            (default 256 MiB); peak memory is about the Gram matrix
            (``(n_src channels filters_len)²`` float64 per track) plus a few chunks, whatever
            the track's length.
    Returns:
        ``{"SDR", "ISR", "SIR", "SAR": (batch, n_src, frames) float64}`` in dB on the input's
        device; ``nan`` in undefined frames (a silent reference or estimate), ``+inf`` where a
        denominator is exactly 0 (e.g. SDR of an estimate equal to its reference).
    Raises:
        ValueError: the shapes differ or are not 4-D, or window/hop are not positive.

    Example:
        >>> import torch
        >>> ref = torch.randn(1, 2, 2, 16000, dtype=torch.float64)
        >>> est = ref + 0.1 * torch.randn_like(ref)
        >>> m = bss_eval_v4(est, ref, window=8000)
        >>> m["SDR"].shape, bool((m["SDR"] > 15).all())
        (torch.Size([1, 2, 2]), True)
    """
    est = _as_float(estimates, "estimates")
    ref = _as_float(references, "references").to(est.device)
    if est.dim() != 4 or est.shape != ref.shape:
        raise ValueError("estimates and references must both be (batch, n_src, channels, "
                         f"samples); got estimates {tuple(est.shape)} and references "
                         f"{tuple(ref.shape)} (pad or trim estimates to the references' length)")
    batch, n_src, chans, n = ref.shape
    if n_src == 0 or n == 0:
        raise ValueError(f"references {tuple(ref.shape)} are empty")
    starts, length = frame_starts(n, window, hop)
    full, own = _filters(ref, est, int(filters_len), chunk_bytes)

    n_fft = _fast_len(length + filters_len - 1)
    n_bins = n_fft // 2 + 1
    weights = _parseval_weights(n_fft, n_bins, torch.float64, ref.device)
    k = n_src * chans
    # filter spectra (B, F, K_in, 2K_out): all-reference filters, then each source's own
    # filters as a block-diagonal matrix, so one product per frequency gives both projections
    both = torch.zeros(batch, k, filters_len, 2 * k, dtype=torch.float64, device=ref.device)
    both[..., :k] = full.reshape(batch, k, filters_len, k)
    for j in range(n_src):
        rows = slice(j * chans, (j + 1) * chans)
        cols = slice(k + j * chans, k + (j + 1) * chans)
        both[:, rows, :, cols] = own[:, j]
    filt_f = torch.fft.rfft(both.permute(0, 1, 3, 2), n=n_fft).permute(0, 3, 1, 2).contiguous()
    del both
    per_frame = batch * n_bins * 16 * 8 * k + batch * length * 8 * 4 * k
    frames_per_chunk = max(1, int(chunk_bytes // per_frame))
    hop_frames = starts[1] - starts[0] if len(starts) > 1 else length
    out = {m: [] for m in BSSEVAL_V4_METRICS}
    for first in range(0, len(starts), frames_per_chunk):
        chunk = starts[first:first + frames_per_chunk]
        lo, hi = chunk[0], chunk[-1] + length
        scores = _frame_scores(ref[..., lo:hi].double(), est[..., lo:hi].double(), length,
                               hop_frames, filt_f, weights, n_fft)
        for name, value in scores.items():
            out[name].append(value)
    return {m: torch.cat(v, dim=-1) for m, v in out.items()}


def frame_medians(frames: dict[str, torch.Tensor]) -> tuple[dict[str, np.ndarray],
                                                              dict[str, np.ndarray]]:
    """The track-level numbers: median over frames of the finite values (museval's aggregation:
    its JSON stores ``inf`` as ``NaN``, then ``nanmedian``).

    Args:
        frames: ``{metric: (..., frames)}`` as returned by :func:`bss_eval_v4`.
    Returns:
        ``(medians, excluded)``: ``{metric: (...) float64}`` (``nan`` when no frame is finite)
        and ``{metric: (...) int64}``, the number of frames left out (undefined or infinite).
    """
    medians, excluded = {}, {}
    for name, value in frames.items():
        arr = value.detach().cpu().numpy().astype(np.float64, copy=True)
        bad = ~np.isfinite(arr)
        arr[bad] = np.nan
        excluded[name] = bad.sum(axis=-1)
        with np.errstate(all="ignore"):
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows -> NaN
                medians[name] = np.nanmedian(arr, axis=-1) if arr.shape[-1] else \
                    np.full(arr.shape[:-1], np.nan)
    return medians, excluded


def museval_track_json(frames: dict[str, torch.Tensor], target_names, window_seconds: float = 1.0,
                       hop_seconds: float = 1.0, museval_version: str | None = None) -> dict:
    """One track's scores in the JSON layout museval writes (``museval.TrackStore.scores``).

    Args:
        frames: ``{metric: (n_src, frames)}`` for one track (a row of :func:`bss_eval_v4`).
        target_names: one name per source, in order.
        window_seconds, hop_seconds: the frame length and hop in seconds (each frame's
            ``duration`` and ``time = index * hop``).
        museval_version: recorded as ``museval_version`` (default: the installed museval's
            version, or ``"unknown"``).
    Returns:
        ``{"targets": [{"name", "frames": [{"time", "duration", "metrics": {SDR, SIR, SAR,
        ISR}}]}], "museval_version", "computed_by"}``; values rounded to 5 decimals like museval,
        ``inf`` and undefined frames as ``NaN`` (write with ``allow_nan``; museval reads it).
    """
    if museval_version is None:
        from importlib import metadata

        try:
            museval_version = metadata.version("museval")
        except metadata.PackageNotFoundError:
            museval_version = "unknown"
    values = {m: frames[m].detach().cpu().numpy() for m in BSSEVAL_V4_METRICS}
    names = [str(t) for t in target_names]
    if len(names) != values["SDR"].shape[0]:
        raise ValueError(f"{len(names)} target names for {values['SDR'].shape[0]} sources")

    def q(x: float) -> float:
        return round(float(x), 5) if math.isfinite(x) else math.nan

    targets = []
    for j, name in enumerate(names):
        targets.append({"name": name, "frames": [
            {"time": t * hop_seconds, "duration": window_seconds,
             "metrics": {m: q(values[m][j, t]) for m in ("SDR", "SIR", "SAR", "ISR")}}
            for t in range(values["SDR"].shape[1])]})
    return {"targets": targets, "museval_version": museval_version,
            "computed_by": "bootsep.metrics.bsseval_v4"}


def museval_groups(labels) -> list[tuple[list[int], list[int]]]:
    """How ``museval.eval_mus_track`` groups a track's targets into joint evaluations.

    With both ``vocals`` and ``accompaniment`` among ``labels``, the other targets (with vocals,
    without accompaniment) are evaluated together when they are at least two, and their scores
    kept except vocals'; then vocals and accompaniment are evaluated as a pair. Otherwise all
    targets are evaluated together (museval needs at least two; here one is allowed too).

    Returns:
        ``[(indices evaluated together, indices whose scores are kept)]``, covering every label
        once.
    """
    labels = [str(x) for x in labels]
    if "vocals" in labels and "accompaniment" in labels:
        voc, acc = labels.index("vocals"), labels.index("accompaniment")
        rest = [i for i in range(len(labels)) if i != acc]
        groups = []
        if len(rest) >= 2:
            groups.append((rest, [i for i in rest if i != voc]))
        return groups + [([voc, acc], [voc, acc])]
    return [(list(range(len(labels))), list(range(len(labels))))]


def bss_eval_v4_targets(estimates, references, labels, window: int | None, hop: int | None = None,
                        device: str | torch.device | None = None, **kwargs
                        ) -> dict[str, torch.Tensor]:
    """BSS-Eval v4 of one track's named targets, grouped as museval groups them
    (:func:`museval_groups`).

    Args:
        estimates, references: ``(n_src, channels, samples)``, estimate ``j`` for target
            ``labels[j]``.
        labels: target names.
        window, hop: in samples (museval: ``int(seconds * rate)``).
        device: where to compute (default: the input's device).
        **kwargs: passed to :func:`bss_eval_v4`.
    Returns:
        ``{metric: (n_src, frames) float64}`` on the CPU.
    """
    est = _as_float(estimates, "estimates")
    ref = _as_float(references, "references")
    if device is not None:
        est, ref = est.to(device), ref.to(device)
    if est.dim() != 3 or est.shape != ref.shape or est.shape[0] != len(labels):
        raise ValueError(f"estimates {tuple(est.shape)} and references {tuple(ref.shape)} must "
                         f"both be (n_src, channels, samples) with n_src = {len(labels)} labels")
    out: dict[str, torch.Tensor] = {}
    for joint, kept in museval_groups(labels):
        frames = bss_eval_v4(est[joint].unsqueeze(0), ref[joint].unsqueeze(0), window, hop,
                             **kwargs)
        for name, value in frames.items():
            if name not in out:
                out[name] = torch.full((len(labels), value.shape[-1]), math.nan,
                                       dtype=torch.float64)
            for i in kept:
                out[name][i] = value[0, joint.index(i)].cpu()
    return out
