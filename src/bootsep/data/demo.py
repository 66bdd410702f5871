"""Procedural demo songs in the MUSDB18-HQ layout (the embedded data for ``make demo``).

Each song has a tempo, a key and a 2- or 4-bar chord progression; its accompaniment REPEATS
(a 1-2 bar drum loop, a bass line on the chord roots and sustained chords, each tiled
sample-exactly), while the vocal melody does NOT repeat (harmonic voice with portamento,
5-6 Hz vibrato of 20-50 cents, vowel formants changing per syllable, syllable envelopes,
consonants and breaths). So the cues the primitive separators rely on are real: repetition for
REPET / 2DFT, percussive vs harmonic for HPSS, a continuous vibrato pitch for pitch tracking.

Layout written by :func:`generate_demo_dataset`::

    ROOT/README.txt
    ROOT/{train,valid,test}/songNNN/{mixture,vocals,drums,bass,other,accompaniment}.wav
    ROOT/{train,valid,test}/songNNN/meta.json   (tempo, key, chords, levels, vocal f0 track)

``accompaniment = drums + bass + other`` and ``mixture = vocals + accompaniment`` exactly, in
float32, as written. A song depends only on ``(seed, split, index, duration, sample_rate)``.
"""

from __future__ import annotations

import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

SPLITS = ("train", "valid", "test")
STEMS = ("vocals", "drums", "bass", "other")
FILES = ("mixture", "vocals", "drums", "bass", "other", "accompaniment")
KEY_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


@dataclass
class DemoSong:
    """One synthesised song.

    Attributes:
        name: ``songNNN``.
        sample_rate: Hz.
        audio: float32 ``(samples,)`` per name in :data:`FILES`.
        meta: JSON-able description (tempo, key, progression, loop lengths in samples, levels in
            dB, vocal notes and an f0 track in Hz at 10 ms hops, 0 = unvoiced).
    """

    name: str
    sample_rate: int
    audio: dict[str, np.ndarray] = field(repr=False)
    meta: dict = field(repr=False)


def song_name(index: int) -> str:
    return f"song{index:03d}"


def song_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The generator of one song: depends only on ``(seed, split, index)``."""
    return np.random.default_rng([int(seed), zlib.crc32(split.encode()), int(index)])


def synthesize_song(seed: int = 0, split: str = "train", index: int = 0,
                    duration: float = 12.0, sample_rate: int = 16000,
                    subtype: str = "FLOAT") -> DemoSong:
    """Synthesise one mono song in memory.

    Args:
        seed, split, index: identify the song (independent of any other song).
        duration: seconds (default 12.0).
        sample_rate: Hz (default 16000).
        subtype: ``"FLOAT"`` (default) or ``"PCM_16"``; with PCM_16 the four stems are quantised
            to the 16-bit grid before summing, so the sums stay exact once written.

    Returns:
        :class:`DemoSong` whose arrays are float32 ``(samples,)`` with peak <= 0.99.
    """
    from bootsep.data import _synth as S

    rng = song_rng(seed, split, index)
    sr = int(sample_rate)
    n = int(round(duration * sr))
    if n < sr // 4:
        raise ValueError(f"duration must be at least 0.25 s, got {duration}")

    tempo = float(rng.uniform(84, 132))
    bar_len = int(round(4 * 60.0 / tempo * sr))  # samples per bar (an integer, so loops tile)
    tempo = 4 * 60.0 * sr / bar_len
    beat, bar = bar_len / 4 / sr, bar_len / sr
    mode = str(rng.choice(["major", "minor"]))
    scale = S.MAJOR if mode == "major" else S.MINOR
    tonic = int(rng.integers(40, 52))  # E2..D#3
    progs = S.PROGRESSIONS[mode]
    progression = tuple(int(d) for d in progs[int(rng.integers(len(progs)))])

    kit = S.drum_kit(rng, sr)
    drum_loop, drum_info = S.drum_loop(rng, sr, bar_len, kit)
    bass_loop = S.bass_loop(rng, sr, bar_len, tonic, scale, progression)
    other_loop, other_info = S.chord_loop(rng, sr, bar_len, tonic, scale, progression)
    other_loop = S.circular_reverb(other_loop, S.reverb_ir(rng, sr, rng.uniform(0.4, 1.2)),
                                   rng.uniform(0.15, 0.35))
    voc, voc_info = S.vocals(rng, sr, n, beat, bar, tonic, scale, progression)

    # levels: drums are the reference; bass and other relative to them, vocals to the sum
    lv_bass, lv_other = rng.uniform(-4, 1), rng.uniform(-6, 0)
    lv_vocals = rng.uniform(-3, 3)
    stems = {"drums": np.resize(drum_loop, n) / S._rms(drum_loop)}
    stems["bass"] = np.resize(bass_loop, n) / S._rms(bass_loop) * 10 ** (lv_bass / 20)
    stems["other"] = np.resize(other_loop, n) / S._rms(other_loop) * 10 ** (lv_other / 20)
    acc_rms = S._rms(stems["drums"] + stems["bass"] + stems["other"])
    stems["vocals"] = voc / S._rms(voc) * acc_rms * 10 ** (lv_vocals / 20)
    mix = sum(stems.values())
    gain = 0.1 / S._rms(mix)  # about -20 dBFS RMS
    peak = max(float(np.max(np.abs(x))) for x in [*stems.values(), mix,
                                                   stems["drums"] + stems["bass"] + stems["other"]])
    gain = min(gain, 0.99 / (peak * 1.0001))
    audio = {}
    for k in STEMS:
        x = (stems[k] * gain).astype(np.float32)
        if subtype == "PCM_16":
            x = (np.round(x * 32768.0) / 32768.0).astype(np.float32)
        audio[k] = x
    audio["accompaniment"] = audio["drums"] + audio["bass"] + audio["other"]
    audio["mixture"] = audio["vocals"] + audio["accompaniment"]
    worst = max(float(np.max(np.abs(x))) for x in audio.values())
    if worst > 0.99:  # quantisation moved a sum over the limit: scale and redo exactly
        raise AssertionError(f"demo song peak {worst} > 0.99")  # pragma: no cover

    def db(a, b):
        return round(float(10 * np.log10(np.sum(a.astype(np.float64) ** 2) /
                                         np.sum(b.astype(np.float64) ** 2))), 3)

    meta = {
        "name": song_name(index), "split": split, "index": int(index), "seed": int(seed),
        "sample_rate": sr, "samples": n, "tempo_bpm": round(tempo, 4), "bar_samples": bar_len,
        "key": f"{KEY_NAMES[tonic % 12]} {mode}", "tonic_midi": tonic,
        "progression_degrees": list(progression), "chord_period_bars": len(progression),
        "drum_period_samples": drum_info["drum_loop_bars"] * bar_len,
        "accompaniment_period_samples": int(np.lcm(drum_info["drum_loop_bars"],
                                                   len(progression)) * bar_len),
        **drum_info, **other_info,
        "vocals_to_accompaniment_db": db(audio["vocals"], audio["accompaniment"]),
        "bass_to_drums_db": db(audio["bass"], audio["drums"]),
        "other_to_drums_db": db(audio["other"], audio["drums"]),
        **voc_info,
    }
    return DemoSong(song_name(index), sr, audio, meta)


def _song_complete(folder: Path) -> bool:
    return all((folder / f"{name}.wav").is_file() for name in FILES)


def generate_demo_dataset(root: str | os.PathLike, n_train: int = 24, n_valid: int = 4,
                          n_test: int = 8, duration: float = 12.0, sample_rate: int = 16000,
                          seed: int = 0, progress: bool = True, subtype: str = "PCM_16") -> Path:
    """Write the demo dataset under ``root`` (MUSDB18-HQ layout, mono WAV) and return ``root``.

    Defaults: 24 / 4 / 8 songs of 12.0 s at 16 kHz, 16-bit WAV (``subtype="FLOAT"`` for float;
    the sums stay sample-exact either way), about 80 MB, 7-10 s to build on one core. Resumable: a song folder whose six WAVs exist is skipped, so
    a second call writes nothing; every file is written atomically (temp + rename), the mixture
    last. ``ROOT/README.txt`` records the generator settings.
    """
    from tqdm.auto import tqdm

    from bootsep.utils.io import atomic_write_audio, atomic_write_json, atomic_write_text

    if subtype not in ("FLOAT", "PCM_16"):
        raise ValueError(f"subtype must be 'FLOAT' or 'PCM_16', got {subtype!r}")
    root = Path(root)
    counts = {"train": int(n_train), "valid": int(n_valid), "test": int(n_test)}
    root.mkdir(parents=True, exist_ok=True)
    readme = _readme(counts, duration, sample_rate, seed, subtype)
    readme_path = root / "README.txt"
    if not readme_path.is_file() or readme_path.read_text() != readme:
        atomic_write_text(readme_path, readme)

    jobs = [(split, i) for split in SPLITS for i in range(counts[split])]
    bar = tqdm(jobs, desc="demo songs", unit="song", disable=not progress, leave=False)
    for split, i in bar:
        folder = root / split / song_name(i)
        if _song_complete(folder):
            continue
        song = synthesize_song(seed, split, i, duration, sample_rate, subtype)
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_json(folder / "meta.json", song.meta)
        for name in ("vocals", "drums", "bass", "other", "accompaniment", "mixture"):
            atomic_write_audio(folder / f"{name}.wav", song.audio[name], song.sample_rate,
                               subtype=subtype)
    bar.close()
    return root


def _readme(counts, duration, sample_rate, seed, subtype) -> str:
    total = sum(counts.values())
    return (
        "bootsep demo dataset (procedurally generated; no recorded audio)\n"
        "=================================================================\n\n"
        f"Generator: bootsep.data.demo.generate_demo_dataset(root, n_train={counts['train']}, "
        f"n_valid={counts['valid']}, n_test={counts['test']}, duration={duration}, "
        f"sample_rate={sample_rate}, seed={seed}, subtype={subtype!r})\n"
        f"Songs: {total} ({counts['train']} train, {counts['valid']} valid, {counts['test']} test), "
        f"{duration} s each, {sample_rate} Hz mono, WAV subtype {subtype}.\n\n"
        "Layout (MUSDB18-HQ): <split>/<song>/{mixture,vocals,drums,bass,other,accompaniment}.wav\n"
        "plus <split>/<song>/meta.json (tempo, key, chords, levels, vocal notes and f0 track).\n"
        "accompaniment = drums + bass + other and mixture = vocals + accompaniment, sample-exact.\n\n"
        "Each song is drawn from numpy.random.default_rng([seed, crc32(split), index]), so it is\n"
        "independent of how many songs are built. Per song: tempo 84-132 BPM, a major or minor\n"
        "key, a 2- or 4-bar chord progression (one chord per bar).\n"
        "- drums: synthetic kick / snare / hats, one fixed kit, a 1- or 2-bar loop repeated\n"
        "  sample-exactly (rock, four-on-the-floor, half-time or funk pattern, optional swing);\n"
        "- bass: harmonic plucks on the chord roots, one rhythm pattern repeated every bar;\n"
        "- other: sustained chords (detuned pad, organ or comping plucks, optional arpeggio),\n"
        "  circular reverb so the loop stays periodic;\n"
        "- vocals: a NON-repeating melody in the key; harmonic voice through 5 formant\n"
        "  resonators (vowel changes per syllable), portamento, delayed 5-6 Hz vibrato of\n"
        "  20-50 cents, pitch jitter, syllable envelopes, consonant bursts, breaths, light reverb.\n"
        "Levels: bass -4..+1 dB and other -6..0 dB re drums; vocals -3..+3 dB re accompaniment;\n"
        "mixture about -20 dBFS RMS, everything scaled so no file peaks above 0.99.\n\n"
        "Rerunning the generator with the same settings skips complete song folders.\n"
    )
