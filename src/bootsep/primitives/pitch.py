"""Pitch-continuity ("proximity") primitive: a fast Melodia-like melody tracker and comb mask.

The reference system used the Melodia Vamp plugin (non-commercial, not installable here) to get
a predominant-melody f0 track and built a harmonic mask from a synthesised copy of the melody.
This module re-implements the idea from the published description, vectorised in torch:

1. **Salience** (per frame, on a log-frequency grid of f0 candidates, ``resolution_cents``
   apart from ``min_frequency`` to ``max_frequency``). The mixture is re-analysed with a longer
   window (``analysis_window_length``, same hop, so frames line up with the separator's STFT);
   the magnitude is partially whitened (divided by ``envelope ** (1 - whitening)`` where the
   envelope is the track's long-term average spectrum smoothed over +-1/6 octave: it removes
   the spectral tilt but keeps frame-to-frame level differences, which the voicing decision
   needs); spectral peaks within ``peak_range_db`` of the frame's strongest peak are kept,
   their frequency refined by parabolic interpolation, and placed on a fine log-frequency grid.
   Each peak votes for the candidates ``f / h`` (``h = 1 .. num_harmonics``) with weight
   ``harmonic_weight_decay ** (h-1)`` and a cos^2 spread of +-1 semitone (Melodia's harmonic
   summation). Peaks half-way between the first ``interharmonic_harmonics`` harmonics (at
   ``(h - 1/2) f``) count against the candidate with weight ``interharmonic_penalty`` (this
   suppresses octave-up errors on low voices whose fundamental is weak). On a log grid all of
   this is linear and shift-invariant: one ``(grid, C)`` matrix product per frame batch.
2. **Contour** (dynamic programming). Observation score = ``log`` of the salience relative to
   the track's reference level (the 95th percentile of the per-frame peak salience, per batch
   item). A Viterbi pass over ``C`` voiced states plus one unvoiced state (score
   ``log(voicing_threshold)``) with: a linear cost ``transition_cost`` per semitone for moves of
   at most ``max_step_cents`` per frame, a flat ``leap_cost`` for any larger jump, and
   ``voicing_cost`` for each voiced/unvoiced switch. The frame loop is cheap (a handful of numpy
   calls on ``(batch, C, 2W+1)`` arrays per frame, ``W = max_step_cents / resolution_cents``); the
   back-pointers are recomputed during backtracking so the forward pass stores only scores.
   The chosen candidate is refined by parabolic interpolation of the log-salience.
3. **Mask** on the separator's own STFT grid: for voiced frames, a Gaussian bump at the nearest
   harmonic ``k * f0`` (``k <= num_overtones``) of standard deviation
   ``sqrt((harmonic_width_bins * bin_hz)^2 + (k * f0 * (2^(harmonic_width_cents/1200) - 1))^2)``
   (the second term keeps high harmonics inside the mask under vibrato and f0 error), raised to
   ``compression``, averaged over ``smooth_frames`` frames, and zeroed below
   ``high_pass_cutoff``. Vocals = that comb, accompaniment = 1 - comb.

Shapes: ``mix_spec`` complex ``(batch, time, freq)``; masks ``(batch, 2, time, freq)`` ordered
``[accompaniment, vocals]``; ``track`` returns ``f0_hz`` ``(batch, time)`` (0 = unvoiced) and
``salience`` ``(batch, time, C)``.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..dsp import STFT
from ..separation.base import Separator

_TINY = 1e-10


class PitchContinuity(Separator):
    """Melodia-like pitch-continuity separator (vocals = harmonic comb of the melody f0).

    Args:
        sample_rate: Hz (default 16000).
        stft: the separator's STFT (default 512/128 sqrt-Hann); masks are on this grid.
        min_frequency: lowest f0 candidate in Hz (default 55).
        max_frequency: highest f0 candidate in Hz (default 1760).
        high_pass_cutoff: mask bins below this frequency (Hz) go to accompaniment (default 100).
        num_harmonics: harmonics summed in the salience function (default 20).
        harmonic_weight_decay: salience weight of harmonic ``h`` is ``decay ** (h - 1)`` (0.85).
        num_overtones: harmonics (including f0) placed in the mask (default 40).
        voicing_threshold: a frame is voiced when its best salience exceeds this fraction of the
            track's reference salience (95th percentile of per-frame peaks), before the
            DP's switching costs (default 0.3).
        smooth_frames: moving-average length of the mask over time, frames (default 5).
        compression: exponent applied to the comb mask (default 0.5, as Melodia's mask).
        resolution_cents: spacing of the f0 candidate grid in cents (default 20).
        analysis_window_length: window (samples) of the salience STFT; same hop as ``stft``;
            ``None`` = use the separator's own spectrogram (default 1024 = 64 ms at 16 kHz).
        max_spectrum_frequency: spectral peaks above this frequency (Hz) are ignored (5000).
        whitening: spectral whitening exponent nu in ``|X| * env^(nu - 1)``; 1 = none (0.6).
        interharmonic_penalty: weight of the peaks at ``(h - 1/2) f`` subtracted from the
            salience of candidate ``f`` (default 0.3; 0 = plain harmonic summation).
        interharmonic_harmonics: penalised half-way positions are ``h = 2 .. this`` (6).
        peak_range_db: peaks more than this below the frame's strongest peak are ignored (40).
        transition_cost: DP cost per semitone of f0 movement between frames (default 0.5;
            scores are natural-log salience ratios).
        max_step_cents: largest per-frame f0 move priced by ``transition_cost`` (default 200).
        leap_cost: DP cost of any larger jump (a note change without a pause) (default 8).
        voicing_cost: DP cost of each switch between voiced and unvoiced (default 8).
        harmonic_width_bins: mask bump standard deviation floor, in separator bins (0.5).
        harmonic_width_cents: relative mask bump width per harmonic, cents (default 10).
        frame_step: track f0 on every ``frame_step``-th frame of the separator's STFT (the
            analysis STFT uses ``frame_step`` times its hop) and interpolate the contour back
            (default 2 = 16 ms at 16 kHz / hop 128: same accuracy as 1 on vibrato-rich demo
            songs, about half the tracking time). DP costs keep their per-second
            meaning: observation scores are scaled by ``frame_step`` and the step limit widened.
        source_labels: output order (default ``('accompaniment', 'vocals')``).
        device: ``None`` = CUDA when available.
    """

    def __init__(self, sample_rate: int = 16000, stft: STFT | None = None,
                 min_frequency: float = 55.0, max_frequency: float = 1760.0,
                 high_pass_cutoff: float = 100.0, num_harmonics: int = 20,
                 harmonic_weight_decay: float = 0.85, num_overtones: int = 40,
                 voicing_threshold: float = 0.3, smooth_frames: int = 5,
                 compression: float = 0.5, resolution_cents: float = 20.0,
                 analysis_window_length: int | None = 1024,
                 max_spectrum_frequency: float = 5000.0, whitening: float = 0.6,
                 interharmonic_penalty: float = 0.3, interharmonic_harmonics: int = 6,
                 peak_range_db: float = 40.0, transition_cost: float = 0.5,
                 max_step_cents: float = 200.0, leap_cost: float = 8.0,
                 voicing_cost: float = 8.0, harmonic_width_bins: float = 0.5,
                 harmonic_width_cents: float = 10.0, frame_step: int = 2,
                 source_labels=("accompaniment", "vocals"), device: str | None = None):
        super().__init__(sample_rate=sample_rate, stft=stft, source_labels=source_labels,
                         device=device)
        if not 0 < min_frequency < max_frequency:
            raise ValueError(f"need 0 < min_frequency ({min_frequency}) < max_frequency "
                             f"({max_frequency})")
        if num_harmonics < 1 or num_overtones < 1:
            raise ValueError("num_harmonics and num_overtones must be >= 1")
        if not 0 < voicing_threshold:
            raise ValueError(f"voicing_threshold must be > 0, got {voicing_threshold}")
        if smooth_frames < 1 or resolution_cents <= 0 or max_step_cents < 0 or frame_step < 1:
            raise ValueError("need smooth_frames >= 1, resolution_cents > 0, max_step_cents >= 0, "
                             "frame_step >= 1")
        self.frame_step = int(frame_step)
        self.min_frequency = float(min_frequency)
        self.max_frequency = float(max_frequency)
        self.high_pass_cutoff = float(high_pass_cutoff)
        self.num_harmonics = int(num_harmonics)
        self.harmonic_weight_decay = float(harmonic_weight_decay)
        self.num_overtones = int(num_overtones)
        self.voicing_threshold = float(voicing_threshold)
        self.smooth_frames = int(smooth_frames)
        self.compression = float(compression)
        self.resolution_cents = float(resolution_cents)
        self.analysis_window_length = analysis_window_length
        self.max_spectrum_frequency = float(max_spectrum_frequency)
        self.whitening = float(whitening)
        self.interharmonic_penalty = float(interharmonic_penalty)
        self.interharmonic_harmonics = int(interharmonic_harmonics)
        self.peak_range_db = float(peak_range_db)
        self.transition_cost = float(transition_cost)
        self.max_step_cents = float(max_step_cents)
        self.leap_cost = float(leap_cost)
        self.voicing_cost = float(voicing_cost)
        self.harmonic_width_bins = float(harmonic_width_bins)
        self.harmonic_width_cents = float(harmonic_width_cents)
        self.num_candidates = int(math.floor(
            1200.0 * math.log2(self.max_frequency / self.min_frequency) / self.resolution_cents
            + 1e-9)) + 1
        self._analysis_stft = None
        self._sal_mats: dict = {}
        if analysis_window_length is not None and analysis_window_length != self.stft.window_length:
            self._analysis_stft = STFT(int(analysis_window_length),
                                       self.stft.hop_length * self.frame_step, "hann")

    # ------------------------------------------------------------------ grid helpers
    @property
    def candidate_frequencies(self) -> torch.Tensor:
        """f0 candidates in Hz, shape ``(C,)``, ``resolution_cents`` apart from min_frequency."""
        c = torch.arange(self.num_candidates, dtype=torch.float64)
        return (self.min_frequency * 2.0 ** (c * self.resolution_cents / 1200.0)).float()

    def _analysis_magnitude(self, mix_spec: torch.Tensor) -> tuple[torch.Tensor, int]:
        """Magnitude ``(batch, frames, freq')`` used for salience, and its FFT size.

        ``frames = (time - 1) // frame_step + 1``; frame ``u`` is centred on separator frame
        ``u * frame_step``.
        """
        T = mix_spec.shape[-2]
        if self._analysis_stft is None or T < 2:
            return mix_spec[..., ::self.frame_step, :].abs(), self.stft.window_length
        x = self.stft.inverse(mix_spec, length=(T - 1) * self.stft.hop_length)
        A = self._analysis_stft(x).abs()
        return A[..., :(T - 1) // self.frame_step + 1, :], self._analysis_stft.window_length

    # ------------------------------------------------------------------ salience
    def salience(self, mix_spec: torch.Tensor) -> torch.Tensor:
        """Harmonic-summation salience ``(batch, frames, C)`` (non-negative, linear units).

        ``frames = (time - 1) // frame_step + 1`` (= ``time`` by default).
        """
        A, n_fft = self._analysis_magnitude(mix_spec)
        A = A.float()
        B, T, F = A.shape
        bin_hz = self.sample_rate / n_fft
        f_top = min(self.max_spectrum_frequency, self.sample_rate / 2.0)
        F_use = min(F, int(f_top / bin_hz) + 2)
        A = A[..., :F_use]
        dev = A.device

        # partial whitening by the long-term average spectrum, smoothed over +-1/6 octave
        if self.whitening < 1.0:
            k = torch.arange(F_use, device=dev)
            half = torch.clamp((k.float() * (2.0 ** (1 / 6) - 1.0)).round().long(), min=2)
            lo = torch.clamp(k - half, min=0)
            hi = torch.clamp(k + half + 1, max=F_use)
            csum = torch.nn.functional.pad(A.mean(dim=1, keepdim=True).cumsum(-1), (1, 0))
            env = (csum[..., hi] - csum[..., lo]) / (hi - lo).float()
            floor = A.flatten(1).amax(1).view(B, 1, 1) * 1e-4 + _TINY
            A = A * torch.maximum(env, floor).pow(self.whitening - 1.0)

        # spectral peaks, parabolic interpolation on log magnitude
        L = torch.log(A + _TINY)
        mid = L[..., 1:-1]
        is_peak = (mid > L[..., :-2]) & (mid >= L[..., 2:])
        den = L[..., :-2] - 2.0 * mid + L[..., 2:]
        den = torch.where(den.abs() < 1e-9, torch.full_like(den, -1e-9), den)
        delta = (0.5 * (L[..., :-2] - L[..., 2:]) / den).clamp(-0.5, 0.5)
        logamp = mid - 0.25 * (L[..., :-2] - L[..., 2:]) * delta
        frame_max = torch.where(is_peak, logamp, torch.full_like(logamp, -1e9)).amax(-1,
                                                                                  keepdim=True)
        is_peak &= logamp > frame_max - self.peak_range_db * math.log(10.0) / 20.0
        amp = torch.where(is_peak, torch.exp(logamp), torch.zeros_like(logamp))
        freq = (torch.arange(1, F_use - 1, device=dev, dtype=torch.float32) + delta) * bin_hz

        # place peaks on a fine log grid (linear interpolation between the two nearest cells)
        res = self.resolution_cents
        semi = int(round(100.0 / res))                      # cells per semitone
        f_lo = self.min_frequency * 2.0 ** (-semi * res / 1200.0)
        n_grid = int(math.ceil(1200.0 * math.log2(max(f_top, self.max_frequency * 2) / f_lo)
                               / res)) + 2
        pos = 1200.0 / res * torch.log2(freq.clamp_min(1e-3) / f_lo)
        valid = (pos >= 0) & (pos < n_grid - 1)
        amp = torch.where(valid, amp, torch.zeros_like(amp))
        pos = torch.where(valid, pos, torch.zeros_like(pos))
        i0 = pos.floor().long()
        w1 = pos - i0.float()
        grid = torch.zeros(B * T, n_grid, device=dev, dtype=torch.float32)
        flat_amp = amp.reshape(B * T, -1)
        flat_i0 = i0.reshape(B * T, -1)
        flat_w1 = w1.reshape(B * T, -1)
        grid.scatter_add_(1, flat_i0, flat_amp * (1.0 - flat_w1))
        grid.scatter_add_(1, flat_i0 + 1, flat_amp * flat_w1)

        # cos^2 spread + harmonic summation + inter-harmonic penalty: one (n_grid, C) matrix
        sal = grid @ self._salience_matrix(n_grid, semi, dev)
        if self.interharmonic_penalty > 0:
            sal = sal.clamp_min(0.0)
        return sal.view(B, T, self.num_candidates)

    def _salience_matrix(self, n_grid: int, semi: int, device) -> torch.Tensor:
        """``M`` ``(n_grid, C)``: ``salience = grid @ M`` (cached per grid size and device).

        Column ``c`` holds, for every harmonic ``h``, the weight ``decay^(h-1)`` times Melodia's
        cos^2 kernel (+-1 semitone) centred on grid cell ``c + semi + 1200 log2(h) / res``, minus
        ``interharmonic_penalty`` times the same at ``(h - 1/2)`` for ``h = 2..``
        ``interharmonic_harmonics``.
        """
        key = (n_grid, semi, str(device))
        cache = self._sal_mats
        if key not in cache:
            res = self.resolution_cents
            C = self.num_candidates
            M = np.zeros((n_grid, C), dtype=np.float64)
            taps = np.arange(-semi, semi + 1)
            kern = np.cos(0.5 * np.pi * taps / max(semi, 1)) ** 2
            cols = np.arange(C)
            terms = [(float(h), self.harmonic_weight_decay ** (h - 1))
                     for h in range(1, self.num_harmonics + 1)]
            if self.interharmonic_penalty > 0:
                pen = self.interharmonic_penalty
                terms += [(h - 0.5, -pen * self.harmonic_weight_decay ** (h - 1))
                          for h in range(2, self.interharmonic_harmonics + 1)]
            for mult, w in terms:
                centre = cols + semi + int(round(1200.0 * math.log2(mult) / res))
                for tap, k in zip(taps, kern):
                    g = centre + tap
                    ok = (g >= 0) & (g < n_grid)
                    np.add.at(M, (g[ok], cols[ok]), w * k)
            cache[key] = torch.from_numpy(M.astype(np.float32)).to(device)
        return cache[key]

    # ------------------------------------------------------------------ tracking
    def track(self, mix_spec: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Melody f0 contour.

        Args:
            mix_spec: complex ``(batch, time, freq)`` on the separator's STFT.
        Returns:
            ``f0_hz`` ``(batch, time)`` float (0 = unvoiced) and ``salience``
            ``(batch, frames, C)`` (see :meth:`salience`, :attr:`candidate_frequencies`), both on
            ``mix_spec``'s device.
        """
        if mix_spec.dim() != 3:
            raise ValueError(f"mix_spec must be (batch, time, freq), got {tuple(mix_spec.shape)}")
        sal = self.salience(mix_spec)
        B, T, C = sal.shape
        if T == 0:
            return torch.zeros(B, 0, device=sal.device), sal
        fs = self.frame_step
        peak = sal.amax(-1)                                   # (B, T)
        ref = torch.quantile(peak, 0.95, dim=1, keepdim=True) if T > 1 else peak
        ref = ref.clamp_min(_TINY)
        logsal = torch.log((sal / ref.unsqueeze(-1)).clamp_min(1e-4))
        obs = (fs * logsal).cpu().numpy().astype(np.float32)
        states = _viterbi(obs, fs * math.log(self.voicing_threshold),
                          step=self.transition_cost * self.resolution_cents / 100.0,
                          width=int(round(fs * self.max_step_cents / self.resolution_cents)),
                          leap=self.leap_cost, switch=self.voicing_cost)
        st = torch.from_numpy(states).to(sal.device)          # (B, T), C = unvoiced
        voiced = st < C
        c = st.clamp(max=C - 1)
        # parabolic refinement of the chosen candidate on the log-salience
        ls = torch.log(sal.clamp_min(_TINY))
        cm = (c - 1).clamp(min=0)
        cp = (c + 1).clamp(max=C - 1)
        a = ls.gather(-1, cm.unsqueeze(-1)).squeeze(-1)
        b = ls.gather(-1, c.unsqueeze(-1)).squeeze(-1)
        g = ls.gather(-1, cp.unsqueeze(-1)).squeeze(-1)
        den = a - 2 * b + g
        off = torch.where((den < -1e-9) & (cm < c) & (cp > c), 0.5 * (a - g) / den,
                          torch.zeros_like(den)).clamp(-0.5, 0.5)
        f0 = self.min_frequency * torch.pow(2.0, (c.float() + off) * self.resolution_cents / 1200.0)
        f0 = torch.where(voiced, f0, torch.zeros_like(f0))
        if fs > 1:
            f0 = _upsample_contour(f0, fs, mix_spec.shape[-2])
        return f0, sal

    # ------------------------------------------------------------------ mask
    def comb_mask(self, f0_hz: torch.Tensor, n_freq: int | None = None) -> torch.Tensor:
        """Vocals mask ``(batch, time, freq)`` in [0, 1] from ``f0_hz`` ``(batch, time)``."""
        n_freq = n_freq or self.stft.n_freq
        dev = f0_hz.device
        bin_hz = self.sample_rate / self.stft.window_length
        fb = torch.arange(n_freq, device=dev, dtype=torch.float32) * bin_hz       # (F,)
        f0 = f0_hz.float().unsqueeze(-1)                                          # (B, T, 1)
        voiced = f0 > 0
        f0s = torch.where(voiced, f0, torch.ones_like(f0))
        k = torch.round(fb / f0s).clamp(1, self.num_overtones)                    # (B, T, F)
        centre = k * f0s
        rel = 2.0 ** (self.harmonic_width_cents / 1200.0) - 1.0
        sigma2 = (self.harmonic_width_bins * bin_hz) ** 2 + (centre * rel) ** 2
        bump = torch.exp(-0.5 * self.compression * (fb - centre) ** 2 / sigma2)   # = g**compr
        bump = torch.where(voiced & (centre < self.sample_rate / 2 + 3 * bin_hz), bump,
                           torch.zeros_like(bump))
        if self.smooth_frames > 1:
            B, T, F = bump.shape
            x = bump.permute(0, 2, 1).reshape(B * F, 1, T)
            n = self.smooth_frames
            ker = torch.full((1, 1, n), 1.0 / n, device=dev, dtype=x.dtype)
            x = torch.nn.functional.pad(x, ((n - 1) // 2, n // 2), mode="replicate")
            bump = torch.nn.functional.conv1d(x, ker).view(B, F, T).permute(0, 2, 1)
        bump = bump * (fb >= self.high_pass_cutoff).to(bump.dtype)
        return bump.clamp(0.0, 1.0)

    def masks(self, mix_spec: torch.Tensor,
              source_specs: torch.Tensor | None = None) -> torch.Tensor:
        """Complex ``(batch, time, freq)`` -> ``(batch, 2, time, freq)`` [accompaniment, vocals]."""
        f0, _ = self.track(mix_spec)
        voc = self.comb_mask(f0, mix_spec.shape[-1]).to(mix_spec.real.dtype)
        return torch.stack([1.0 - voc, voc], dim=1)


def _upsample_contour(f0: torch.Tensor, step: int, n_frames: int) -> torch.Tensor:
    """``(batch, U)`` contour on frames ``0, step, 2 step, ...`` -> ``(batch, n_frames)``.

    Between two voiced frames: linear in log-frequency; otherwise the nearer frame's value
    (ties go to the earlier one).
    """
    t = torch.arange(n_frames, device=f0.device)
    u0 = (t // step).clamp(max=f0.shape[-1] - 1)
    u1 = (u0 + 1).clamp(max=f0.shape[-1] - 1)
    frac = ((t - u0 * step).float() / step).clamp(0.0, 1.0)
    a, b = f0[:, u0], f0[:, u1]
    both = (a > 0) & (b > 0)
    la, lb = torch.log(a.clamp_min(1e-6)), torch.log(b.clamp_min(1e-6))
    interp = torch.exp(la * (1 - frac) + lb * frac)
    nearest = torch.where(frac <= 0.5, a, b)
    return torch.where(both, interp, nearest)


def _viterbi(obs: np.ndarray, unvoiced_score: float, step: float, width: int, leap: float,
             switch: float) -> np.ndarray:
    """Max-sum decoding over ``C`` voiced states plus one unvoiced state (index ``C``).

    Args:
        obs: ``(batch, time, C)`` voiced observation scores (float32).
        unvoiced_score: observation score of the unvoiced state (every frame).
        step: cost per candidate-grid step of f0 movement (moves of at most ``width`` steps).
        width: largest priced move ``W`` in grid steps.
        leap: flat cost of a move to any voiced state from any voiced state.
        switch: cost of a voiced <-> unvoiced transition.
    Returns:
        ``(batch, time)`` int64 state indices (``C`` = unvoiced).

    Forward pass: per frame one ``(batch, C, 2W+1)`` window max plus a few ``(batch, C)`` ops;
    only the scores are stored. Backtracking recomputes the single winning predecessor per frame.
    """
    B, T, C = obs.shape
    W = int(width)
    pen = (-step * np.abs(np.arange(-W, W + 1))).astype(np.float32)
    delta = np.empty((T, B, C), dtype=np.float32)       # voiced scores per frame
    unv = np.empty((T, B), dtype=np.float32)
    pad = np.full((B, C + 2 * W), -np.inf, dtype=np.float32)
    win = np.lib.stride_tricks.sliding_window_view(pad, 2 * W + 1, axis=1)  # (B, C, 2W+1) view
    tmp = np.empty((B, C, 2 * W + 1), dtype=np.float32)
    best = np.empty((B, C), dtype=np.float32)
    obs_t = np.ascontiguousarray(obs.transpose(1, 0, 2))  # (T, B, C)
    uv = np.float32(unvoiced_score)
    delta[0] = obs_t[0]
    unv[0] = uv
    for t in range(1, T):
        prev = delta[t - 1]
        pu = unv[t - 1]
        pad[:, W:W + C] = prev
        np.add(win, pen, out=tmp)
        tmp.max(axis=-1, out=best)
        pmax = prev.max(axis=-1)
        alt = np.maximum(pmax - leap, pu - switch)        # (B,) leap or onset
        np.maximum(best, alt[:, None], out=best)
        np.add(best, obs_t[t], out=delta[t])
        unv[t] = np.maximum(pu, pmax - switch) + uv

    states = np.empty((B, T), dtype=np.int64)
    for b in range(B):
        s = int(np.argmax(delta[T - 1, b])) if delta[T - 1, b].max() >= unv[T - 1, b] else C
        states[b, T - 1] = s
        for t in range(T - 1, 0, -1):
            prev = delta[t - 1, b]
            pu = unv[t - 1, b]
            if s == C:
                pm = int(np.argmax(prev))
                s = pm if prev[pm] - switch > pu else C
            else:
                lo, hi = max(0, s - W), min(C, s + W + 1)
                local = prev[lo:hi] + pen[lo - s + W:hi - s + W]
                j = int(np.argmax(local))
                cand = local[j]
                pm = int(np.argmax(prev))
                s_new = lo + j
                if prev[pm] - leap > cand:
                    cand, s_new = prev[pm] - leap, pm
                if pu - switch > cand:
                    s_new = C
                s = s_new
            states[b, t - 1] = s
    return states
