"""Private instrument synthesis for the demo-song generator (vectorised numpy).

Every function takes a ``numpy.random.Generator`` and returns float64 arrays shaped
``(samples,)``. Accompaniment parts are built as one LOOP (``(loop_samples,)``) with circular
overlap-add, so tiling a loop repeats it sample-exactly; the vocal part is synthesised for the
whole song and never repeats.
"""

from __future__ import annotations

import numpy as np

MAJOR = (0, 2, 4, 5, 7, 9, 11)
MINOR = (0, 2, 3, 5, 7, 8, 10)
# Chord progressions as 0-based scale degrees, one chord per bar.
PROGRESSIONS = {
    "major": ((0, 4, 5, 3), (0, 5, 3, 4), (5, 3, 0, 4), (0, 3, 4, 3), (0, 3, 5, 4), (0, 3),
              (0, 4)),
    "minor": ((0, 5, 2, 6), (0, 3, 4, 0), (0, 6, 5, 6), (0, 3, 5, 4), (0, 6), (0, 5)),
}
# Drum patterns: 16 steps per bar, (step, velocity).
DRUM_PATTERNS = {
    "rock": {"kick": ((0, 1.0), (8, 0.9), (10, 0.6)), "snare": ((4, 1.0), (12, 1.0)),
             "hat": tuple((s, 0.8 if s % 4 == 0 else 0.55) for s in range(0, 16, 2))},
    "four_on_floor": {"kick": ((0, 1.0), (4, 1.0), (8, 1.0), (12, 1.0)),
                      "snare": ((4, 0.9), (12, 0.9)),
                      "hat": ((2, 0.8), (6, 0.8), (10, 0.8), (14, 0.8)), "open_hat": True},
    "half_time": {"kick": ((0, 1.0), (7, 0.7), (10, 0.8)), "snare": ((8, 1.0),),
                  "hat": tuple((s, 0.7 if s % 2 == 0 else 0.4) for s in range(16))},
    "funk": {"kick": ((0, 1.0), (3, 0.7), (10, 0.9)),
             "snare": ((4, 1.0), (7, 0.3), (12, 1.0), (15, 0.3)),
             "hat": tuple((s, 0.75 if s % 2 == 0 else 0.45) for s in range(16))},
}
# Bass rhythms per bar: (step, length in steps, interval in semitones above the chord root).
BASS_PATTERNS = (
    ((0, 4, 0), (4, 4, 0), (8, 4, 0), (12, 4, 0)),
    ((0, 3, 0), (3, 3, 0), (6, 2, 12), (8, 3, 0), (11, 3, 7), (14, 2, 0)),
    ((0, 6, 0), (6, 2, 0), (8, 6, 0), (14, 2, 7)),
    tuple((s, 2, (0, 0, 12, 0, 0, 0, 7, 10)[s // 2]) for s in range(0, 16, 2)),
    ((0, 7, 0), (8, 3, 0), (12, 2, 7), (14, 2, 5)),
)
# Vowel formants (F1, F2, F3) in Hz, adult male; higher voices scale them up.
VOWELS = {"a": (700, 1220, 2600), "e": (480, 1900, 2550), "i": (300, 2200, 2960),
          "o": (500, 900, 2450), "u": (330, 850, 2400)}


def midi_to_hz(m):
    return 440.0 * 2.0 ** ((np.asarray(m, dtype=np.float64) - 69.0) / 12.0)


def degree_to_midi(tonic: int, scale, degree: int) -> int:
    octave, step = divmod(int(degree), 7)
    return int(tonic + 12 * octave + scale[step])


def chord_pitch_classes(tonic: int, scale, degree: int, seventh: bool = False) -> list[int]:
    degs = (degree, degree + 2, degree + 4) + ((degree + 6,) if seventh else ())
    return [degree_to_midi(tonic, scale, d) % 12 for d in degs]


# ----------------------------------------------------------------------------- helpers


def _bandpass(x, sr, lo, hi, order=2):
    from scipy.signal import butter, sosfilt

    nyq = 0.5 * sr
    hi = min(hi, 0.95 * nyq)
    if lo <= 0:
        sos = butter(order, hi / nyq, btype="lowpass", output="sos")
    elif hi >= 0.95 * nyq - 1e-9 and lo > 0:
        sos = butter(order, lo / nyq, btype="highpass", output="sos")
    else:
        sos = butter(order, [lo / nyq, hi / nyq], btype="bandpass", output="sos")
    return sosfilt(sos, x)


def _add_circular(buf, sig, pos):
    """``buf[(pos + i) % len(buf)] += sig[i]`` (``len(sig) <= len(buf)``)."""
    n = len(buf)
    sig = sig[:n]
    pos %= n
    first = min(len(sig), n - pos)
    buf[pos:pos + first] += sig[:first]
    if first < len(sig):
        buf[:len(sig) - first] += sig[first:]


def _harmonic_note(f0, n, sr, amps, decay_per_harmonic=0.0, phase=0.0):
    """Sum of harmonics ``k * f0`` with amplitudes ``amps[k-1]`` (below 0.45 * sr)."""
    t = np.arange(n) / sr
    out = np.zeros(n)
    for k, a in enumerate(amps, start=1):
        if k * f0 >= 0.45 * sr or a == 0:
            continue
        env = np.exp(-t * decay_per_harmonic * k) if decay_per_harmonic else 1.0
        out += a * env * np.sin(2 * np.pi * k * f0 * t + phase * k)
    return out


def _gate(n, sr, attack, release, hold=None):
    """Attack / release envelope of ``n`` samples (linear attack, cosine release)."""
    t = np.arange(n) / sr
    env = np.minimum(1.0, t / max(attack, 1e-4))
    hold = n / sr - release if hold is None else hold
    tail = np.clip((t - hold) / max(release, 1e-4), 0.0, 1.0)
    return env * 0.5 * (1 + np.cos(np.pi * tail))


def reverb_ir(rng, sr, rt60):
    """Exponentially decaying noise impulse response (no direct path), unit energy."""
    n = int(min(1.2 * rt60, 1.5) * sr)
    t = np.arange(n) / sr
    ir = rng.standard_normal(n) * np.exp(-6.9 * t / rt60)
    ir[: int(0.01 * sr)] = 0.0  # pre-delay
    ir = _bandpass(ir, sr, 0, 5000.0)
    return ir / np.sqrt(np.sum(ir ** 2) + 1e-12)


def circular_reverb(loop, ir, wet):
    """Reverb of a loop by circular convolution (the tail wraps, so the loop stays exact)."""
    n = len(loop)
    tail = np.fft.irfft(np.fft.rfft(loop) * np.fft.rfft(ir[:n], n=n), n=n)
    tail *= np.sqrt(np.mean(loop ** 2)) / (np.sqrt(np.mean(tail ** 2)) + 1e-12)
    return loop + wet * tail


def _rms(x):
    return float(np.sqrt(np.mean(np.square(x)) + 1e-20))


# ----------------------------------------------------------------------------- drums


def drum_kit(rng, sr):
    """One synthetic kit (kick, snare, closed hat, open hat): fixed one-shot waveforms."""
    # kick: sine with an exponential pitch drop and a short click
    n = int(0.45 * sr)
    t = np.arange(n) / sr
    f_end, f_start = rng.uniform(42, 60), rng.uniform(120, 190)
    f = f_end + (f_start - f_end) * np.exp(-t / rng.uniform(0.02, 0.05))
    kick = np.sin(2 * np.pi * np.cumsum(f) / sr) * np.exp(-t / rng.uniform(0.12, 0.3))
    kick += 0.25 * _bandpass(rng.standard_normal(n), sr, 1000, 6000) * np.exp(-t / 0.003)
    # snare: body tone + band-passed noise
    n = int(0.35 * sr)
    t = np.arange(n) / sr
    body = np.sin(2 * np.pi * rng.uniform(170, 230) * t) * np.exp(-t / rng.uniform(0.04, 0.08))
    noise = _bandpass(rng.standard_normal(n), sr, 1200, 7000) * np.exp(-t / rng.uniform(0.06, 0.12))
    snare = 0.6 * body + noise / (_rms(noise[: int(0.05 * sr)]) + 1e-9) * 0.35
    # hats: high-passed noise, short and long decay
    n = int(0.3 * sr)
    t = np.arange(n) / sr
    hp = min(5500.0, 0.6 * sr / 2)
    hiss = _bandpass(rng.standard_normal(n), sr, hp, sr / 2)
    hiss /= _rms(hiss) + 1e-9
    hat = 0.2 * hiss * np.exp(-t / rng.uniform(0.02, 0.045))
    open_hat = 0.18 * hiss * np.exp(-t / rng.uniform(0.1, 0.2))
    return {"kick": kick, "snare": snare, "hat": hat, "open_hat": open_hat}


def drum_loop(rng, sr, bar_len, kit):
    """A 1- or 2-bar drum loop; returns ``(loop, info)``."""
    family = str(rng.choice(list(DRUM_PATTERNS)))
    pat = DRUM_PATTERNS[family]
    bars = int(rng.choice([1, 2]))
    swing = float(rng.choice([0.0, 0.0, rng.uniform(0.05, 0.18)]))
    loop = np.zeros(bars * bar_len)
    step = bar_len / 16

    def at(bar, s):
        return int(round((bar * 16 + s + (swing if s % 2 else 0.0)) * step))

    extra_kick = int(rng.choice([2, 6, 11, 14]))
    for bar in range(bars):
        last = bar == bars - 1 and bars == 2
        for s, v in pat["kick"]:
            _add_circular(loop, v * kit["kick"], at(bar, s))
        if last:  # variation in the second bar of a 2-bar loop
            _add_circular(loop, 0.7 * kit["kick"], at(bar, extra_kick))
        for s, v in pat["snare"]:
            _add_circular(loop, v * kit["snare"], at(bar, s))
        if last and rng.random() < 0.6:  # a small fill
            for s in (13, 14, 15):
                _add_circular(loop, 0.45 * kit["snare"], at(bar, s))
        for s, v in pat["hat"]:
            key = "open_hat" if pat.get("open_hat") else "hat"
            _add_circular(loop, v * kit[key], at(bar, s))
    return loop, {"drum_pattern": family, "drum_loop_bars": bars, "swing": round(swing, 3)}


# ----------------------------------------------------------------------------- bass, chords


def bass_loop(rng, sr, bar_len, tonic, scale, progression):
    pattern = BASS_PATTERNS[int(rng.integers(len(BASS_PATTERNS)))]
    brightness = rng.uniform(1.0, 2.0)
    amps = [k ** -brightness for k in range(1, 11)]
    damp = rng.uniform(1.0, 4.0)
    loop = np.zeros(len(progression) * bar_len)
    step = bar_len / 16
    for b, deg in enumerate(progression):
        root = degree_to_midi(tonic, scale, deg)
        while root >= 40:  # E2 and below
            root -= 12
        while root < 28:
            root += 12
        for s, length, interval in pattern:
            n = int(length * step * 0.92)
            note = _harmonic_note(midi_to_hz(root + interval), n, sr, amps, damp)
            note *= _gate(n, sr, 0.004, 0.03)
            _add_circular(loop, note, int(round((b * 16 + s) * step)))
    return loop


def _voicing(pcs, lo=55):
    """Place pitch classes in ``[lo, lo + 12)``."""
    return sorted(lo + (pc - lo) % 12 for pc in pcs)


def chord_loop(rng, sr, bar_len, tonic, scale, progression):
    """Sustained chords ("other"): pad, organ or comping plucks, optionally an arpeggio."""
    style = str(rng.choice(["pad", "organ", "pluck"]))
    seventh = bool(rng.random() < 0.35)
    loop = np.zeros(len(progression) * bar_len)
    step = bar_len / 16
    if style == "organ":
        amps = [1.0, rng.uniform(0.3, 0.8), rng.uniform(0.1, 0.5), rng.uniform(0.1, 0.4), 0.0,
                rng.uniform(0.0, 0.2), 0.0, rng.uniform(0.0, 0.15)]
    else:
        amps = [k ** -rng.uniform(1.0, 1.6) for k in range(1, 13)]
    comps = ((0, 6, 10), (2, 6, 10, 14), (0, 3, 6, 10, 12))
    comp = comps[int(rng.integers(len(comps)))]
    for b, deg in enumerate(progression):
        notes = _voicing(chord_pitch_classes(tonic, scale, deg, seventh))
        start = int(round(b * 16 * step))
        for m in notes:
            f = midi_to_hz(m)
            if style in ("pad", "organ"):
                n = bar_len + int(0.12 * sr)  # overlaps the next chord (circularly)
                attack = rng.uniform(0.08, 0.3) if style == "pad" else 0.01
                env = _gate(n, sr, attack, 0.12 + (attack if style == "pad" else 0.0))
                tone = _harmonic_note(f * 2 ** (4 / 1200), n, sr, amps)
                if style == "pad":  # a detuned second oscillator gives slow beating
                    tone = 0.5 * (tone + _harmonic_note(f * 2 ** (-4 / 1200), n, sr, amps))
                _add_circular(loop, env * tone, start)
            else:
                for s in comp:
                    n = int(step * 3)
                    tone = _harmonic_note(f, n, sr, amps, decay_per_harmonic=3.0)
                    _add_circular(loop, tone * _gate(n, sr, 0.003, 0.05) *
                                  np.exp(-np.arange(n) / sr / 0.25), start + int(round(s * step)))
    arp = bool(rng.random() < 0.4)
    if arp:
        arp_amps = [1.0, 0.4, 0.2, 0.1]
        for b, deg in enumerate(progression):
            notes = [m + 12 for m in _voicing(chord_pitch_classes(tonic, scale, deg))]
            for j, s in enumerate(range(0, 16, 2)):
                n = int(step * 2)
                tone = _harmonic_note(midi_to_hz(notes[j % len(notes)]), n, sr, arp_amps, 2.0)
                tone *= _gate(n, sr, 0.003, 0.04) * np.exp(-np.arange(n) / sr / 0.15)
                _add_circular(loop, 0.35 * tone, int(round((b * 16 + s) * step)))
    return loop, {"other_style": style + ("+arpeggio" if arp else ""), "sevenths": seventh}


# ----------------------------------------------------------------------------- vocals


def _one_pole(x, dt, tau):
    """Exponential smoother (portamento / formant transitions); starts at ``x[0]``."""
    from scipy.signal import lfilter

    a = 1.0 - np.exp(-dt / tau)
    y, _ = lfilter([a], [1.0, a - 1.0], x, zi=[x[0] * (1.0 - a)])
    return y


def _smooth_noise(rng, n, width):
    x = rng.standard_normal(n + width)
    k = np.hanning(width + 2)[1:-1]
    y = np.convolve(x, k / k.sum(), mode="valid")[:n]
    return y / (y.std() + 1e-12)


def melody(rng, duration, beat, bar, tonic, scale, progression, register):
    """A non-repeating sung melody: list of notes ``(start_s, dur_s, midi, vowel, flags)``."""
    center = 52 if register == "low" else 64  # E3 / E4 (voice centre is a tonic-relative degree)
    base = tonic
    while base + 12 <= center:
        base += 12
    while base > center:
        base -= 12
    lo_deg, hi_deg = -2, 10
    deg = int(rng.integers(0, 5))
    notes = []
    t = rng.uniform(0.2, 1.2) * min(1.0, duration / 8.0)
    vowels = list(VOWELS)
    while t < duration - min(0.4, 0.3 * duration):
        n_notes = int(rng.integers(3, 10))
        for j in range(n_notes):
            if j == n_notes - 1:
                d = float(rng.choice([1.5, 2.0, 2.0, 3.0])) * beat
            else:
                d = float(rng.choice([0.5, 0.5, 0.5, 1.0, 1.0, 1.5])) * beat
            step = int(rng.choice([-2, -1, -1, 0, 1, 1, 2, -3, 3, 4, -4],
                                  p=[.12, .2, .1, .1, .2, .1, .1, .02, .02, .02, .02]))
            deg = deg + step
            if deg < lo_deg or deg > hi_deg:
                deg = deg - 2 * step
            chord = progression[int(t // bar) % len(progression)]
            on_beat = abs(t / beat - round(t / beat)) < 1e-6
            if on_beat and rng.random() < 0.6:  # land on a chord tone on the beat
                tones = [chord + o + 7 * k for o in (0, 2, 4) for k in (-2, -1, 0, 1, 2)]
                deg = min(tones, key=lambda x, deg=deg: (abs(x - deg), x))
                deg = int(np.clip(deg, lo_deg, hi_deg))
            if t + d > duration - 0.05:
                d = duration - 0.05 - t
            if d < 0.08:
                break
            notes.append((t, d, degree_to_midi(base, scale, deg), str(rng.choice(vowels)),
                          j == 0, j == n_notes - 1, bool(j > 0 and rng.random() < 0.55),
                          bool(rng.random() < (0.5 if j == 0 else 0.3))))
            t += d
        t += float(rng.choice([0.5, 1.0, 1.0, 1.5, 2.0])) * beat
    if not notes:  # very short songs: one sustained note
        t0 = min(0.05, 0.2 * duration)
        notes.append((t0, duration - 0.05 - t0, degree_to_midi(base, scale, deg), "a",
                      True, True, False, False))
    return notes


def vocals(rng, sr, n, beat, bar, tonic, scale, progression):
    """Sung vocal line for the whole song; returns ``(signal, info)``.

    Harmonic source (about -6 dB/octave) shaped by a cascade of 5 formant resonators whose
    vowel changes per syllable, f0 with portamento, delayed vibrato (5-6 Hz, 20-50 cents) and
    jitter, syllable envelopes, consonant noise bursts, breaths before phrases, light reverb.
    """
    from scipy.signal import fftconvolve

    duration = n / sr
    register = str(rng.choice(["low", "high"]))
    notes = melody(rng, duration, beat, bar, tonic, scale, progression, register)
    hop = max(1, int(round(sr / 1000)))  # ~1 ms control rate
    nc = n // hop + 2
    dt = hop / sr
    tc = np.arange(nc) * dt

    starts = np.array([x[0] for x in notes])
    ends = np.array([x[0] + x[1] for x in notes])
    idx = np.clip(np.searchsorted(starts, tc, side="right") - 1, 0, len(notes) - 1)
    voiced = (tc >= starts[idx]) & (tc < ends[idx])
    # pitch target: the current note, or the next one in rests (so phrases start in tune)
    nxt = np.where(voiced | (tc < starts[0]), idx, np.minimum(idx + 1, len(notes) - 1))
    nxt = np.where(tc < starts[0], 0, nxt)
    midi_note = np.array([x[2] for x in notes], dtype=np.float64)
    target = midi_note[nxt]
    pitch = _one_pole(target, dt, rng.uniform(0.015, 0.04))  # portamento
    # scoop into phrase starts (from below), decaying over ~60 ms
    since = tc - starts[idx]
    first = np.array([x[4] for x in notes])
    scoop = -rng.uniform(0.3, 1.0) * np.exp(-np.clip(since, 0, None) / 0.06) * (first[idx] & voiced)
    # vibrato: song-level rate 5-6 Hz drifting slightly, per-note depth 20-50 cents, delayed onset
    rate = rng.uniform(5.0, 6.0) + 0.12 * _smooth_noise(rng, nc, int(0.5 / dt))
    depth_cents = rng.uniform(20, 50, size=len(notes))[idx]
    delay = rng.uniform(0.12, 0.25)
    onset = np.clip((since - delay) / 0.25, 0.0, 1.0)
    vib = depth_cents * onset * np.sin(2 * np.pi * np.cumsum(rate) * dt)
    jitter = 4.0 * _smooth_noise(rng, nc, int(0.03 / dt))
    midi = pitch + scoop + (vib + jitter) / 100.0
    f0c = midi_to_hz(midi)

    # syllable envelopes: attack / release per note, legato dips within phrases
    env = np.zeros(nc)
    gains = 10 ** (rng.uniform(-3, 0, size=len(notes)) / 20)
    phrase_gain = 1.0
    for k, (s, d, _m, _v, is_first, _is_last, legato, _cons) in enumerate(notes):
        if is_first:
            phrase_gain = 10 ** (rng.uniform(-3, 1) / 20)
        i0, i1 = int(s / dt), min(nc, int((s + d) / dt) + 1)
        tt = tc[i0:i1] - s
        att, rel = rng.uniform(0.015, 0.04), rng.uniform(0.03, 0.07)
        legato_next = k + 1 < len(notes) and notes[k + 1][6]
        a = np.maximum(np.minimum(1.0, tt / att), 0.3 if legato else 0.0)
        r = np.maximum(np.minimum(1.0, (d - tt) / rel), 0.3 if legato_next else 0.0)
        sustain = 0.85 + 0.15 * np.exp(-tt / 0.8)
        env[i0:i1] = np.clip(np.minimum(a, r), 0, 1) * sustain * gains[k] * phrase_gain

    # formants: vowel per syllable, smoothed transitions; 4th/5th formants fixed
    scale_f = 1.0 if register == "low" else 1.12
    vowel_f = np.array([VOWELS[x[3]] for x in notes], dtype=np.float64) * scale_f
    formants = [_one_pole(vowel_f[idx, j], dt, 0.03) for j in range(3)]
    formants += [np.full(nc, 3300.0 * scale_f), np.full(nc, 3900.0 * scale_f)]
    bandwidths = (80.0, 100.0, 140.0, 200.0, 260.0)
    tilt = rng.uniform(0.8, 1.2)
    k_max = int(min(48, 0.45 * sr / f0c.min()))
    # per-harmonic amplitudes at control rate, upsampled linearly to audio rate
    pos = np.arange(n) / hop
    i0 = pos.astype(np.int64)
    w = pos - i0
    f0 = f0c[i0] * (1 - w) + f0c[i0 + 1] * w
    z1 = np.exp(1j * 2 * np.pi * np.cumsum(f0) / sr)
    z = np.ones(n, dtype=np.complex128)
    voice = np.zeros(n)
    for k in range(1, k_max + 1):
        z = z * z1
        fk = k * f0c
        amp = k ** -tilt * np.clip((0.45 * sr - fk) / (0.05 * sr), 0.0, 1.0)
        for fr, bw in zip(formants, bandwidths):
            fr = np.minimum(fr, 0.45 * sr)
            amp = amp * fr ** 2 / np.sqrt((fr ** 2 - fk ** 2) ** 2 + (fk * bw) ** 2)
        amp = amp * env
        if not amp.any():
            continue
        voice += (amp[i0] * (1 - w) + amp[i0 + 1] * w) * z.imag
    voice_rms = _rms(voice[voice != 0]) if voice.any() else 1.0

    # noise layer: breathiness, consonant bursts, breaths
    env_a = env[i0] * (1 - w) + env[i0 + 1] * w
    noise = _bandpass(rng.standard_normal(n), sr, 1500, 6000) * env_a * rng.uniform(0.03, 0.1)
    for s, _d, _m, _v, is_first, _l, _lg, cons in notes:
        if cons:
            kind = str(rng.choice(["s", "t", "h"]))
            dur = {"s": rng.uniform(0.06, 0.1), "t": rng.uniform(0.012, 0.025),
                   "h": rng.uniform(0.03, 0.06)}[kind]
            m = int(dur * sr)
            band = {"s": (4000, sr / 2), "t": (500, 6000), "h": (900, 4000)}[kind]
            burst = _bandpass(rng.standard_normal(m), sr, *band) * np.hanning(m)
            burst *= {"s": 0.35, "t": 0.6, "h": 0.2}[kind] / (_rms(burst) + 1e-12)
            a = int((s + 0.01) * sr) - m
            if a >= 0:
                noise[a:a + m] += burst[: n - a]
        if is_first and s > 0.4:  # breath in the rest before a phrase
            m = int(rng.uniform(0.15, 0.35) * sr)
            a = int((s - 0.06) * sr) - m
            if a >= 0:
                br = _bandpass(rng.standard_normal(m), sr, 600, 3500) * np.hanning(m)
                noise[a:a + m] += br * rng.uniform(0.05, 0.1) / (_rms(br) + 1e-12)
    sig = voice / voice_rms + noise
    # light room reverb
    ir = reverb_ir(rng, sr, rng.uniform(0.3, 0.9))
    wet = fftconvolve(sig, ir)[:n]
    sig = sig + rng.uniform(0.08, 0.2) * wet * _rms(sig) / (_rms(wet) + 1e-12)

    # f0 ground truth at 10 ms frames (0 Hz when unvoiced or very soft)
    frames = np.arange(0, duration, 0.01)
    fi = np.minimum((frames / dt).astype(np.int64), nc - 1)
    f0_track = np.where(env[fi] > 0.05, f0c[fi], 0.0)
    info = {
        "vocal_register": register,
        "vibrato_rate_hz": round(float(np.mean(rate)), 3),
        "vibrato_depth_cents": [round(float(x), 1) for x in
                                (depth_cents.min(), depth_cents.max())],
        "notes": [[round(x[0], 4), round(x[1], 4), x[2], x[3]] for x in notes],
        "f0_hop_seconds": 0.01,
        "f0_hz": [round(float(x), 2) for x in f0_track],
    }
    return sig, info
