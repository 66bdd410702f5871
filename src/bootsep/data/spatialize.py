"""Spatialized speech: WHAM!-layout utterances rendered as reverberant multichannel recordings.

:func:`spatialize_wham` (a ``prepare`` task) places the two talkers and the noise of every
WHAM! utterance (``s1``, ``s2``, ``noise``) as point sources in a random shoebox room and
records them with a small linear microphone array (a pair by default), using the image-source
method of ``pyroomacoustics``. In the spirit of spatialized wsj0-2mix and WHAMR!: room length
and width 5-10 m, height 2.5-3.5 m (default), RT60 0.2-0.6 s, a mic pair 5-25 cm apart at
1.0-1.8 m height, the array anywhere at least 0.5 m from the walls and pointing in a random
direction, each source 0.75-2 m from the array centre in a random direction at 1.2-1.9 m
height. Every draw comes from ``numpy.random.default_rng([seed, split, utterance, room])``, so
the output is deterministic and an utterance can be redone alone.

Output (``OUTPUT/wav{8,16}k/<mode>/<split>/``, the WHAM! layout; ``num_mics``-channel WAVs,
float32 by default)::

    s1, s2, noise             reverberant images of each source at every microphone
    mix_clean  = s1 + s2      mix_both = s1 + s2 + noise      mix_single = s1 + noise
    s1_anechoic, s2_anechoic  direct-path images (same room, no reflections: the delay and
                              1/r attenuation of the direct path only), extra references

The mixtures are the exact float32 sums of the written reverberant images (sample for sample,
when written as FLOAT), so :class:`~bootsep.data.wham.WHAMDataset` reads the folder with any
task; ``WHAMDataset.channel`` picks one microphone (single-channel training and test data) or
``'all'`` (the multichannel recording, for :class:`~bootsep.primitives.spatial.SpatialClustering`).
All images are cut to the input utterance's length and every file of an utterance is scaled by
one gain (so the mixture peaks at ``peak``), which keeps the relative levels.

``OUTPUT/spatialize/<split>/<utterance>.json`` records every random draw (room size, RT60, wall
absorption, image-source order, microphone and source positions, azimuths, distances, the
gain) and is written last, so a rerun skips finished utterances; ``OUTPUT/spatialize.json``
records the settings, and a rerun with other settings is refused.
"""

from __future__ import annotations

import functools
import math
import os
from pathlib import Path

import numpy as np

from ..utils.errors import UserError

SPEECH = ("s1", "s2")
SOURCES = ("s1", "s2", "noise")


def _range(name: str, value, low: float = 0.0, size: int | None = None) -> tuple:
    """Validate ``value`` as ``(min, max)`` (or a tuple of ``size`` such pairs)."""
    try:
        if size is None:
            lo, hi = (float(v) for v in value)
            pairs = [(lo, hi)]
        else:
            pairs = [tuple(float(v) for v in p) for p in value]
            if len(pairs) != size or any(len(p) != 2 for p in pairs):
                raise ValueError
    except (TypeError, ValueError):
        shape = "(min, max)" if size is None else f"{size} (min, max) pairs"
        raise UserError(f"spatialize_wham.{name} must be {shape}, got {value!r}") from None
    for lo, hi in pairs:
        if not (math.isfinite(lo) and math.isfinite(hi) and low <= lo <= hi):
            raise UserError(f"spatialize_wham.{name} = {value!r}: need {low} <= min <= max")
    return pairs[0] if size is None else tuple(pairs)


class RoomConfig:
    """Validated random-room settings (see :func:`spatialize_wham` for the meaning)."""

    def __init__(self, room_size, rt60, mic_spacing, mic_height, source_distance,
                 source_height, wall_distance: float, num_mics: int, max_order: int | None):
        self.room_size = _range("room_size", room_size, 0.0, size=3)
        self.rt60 = _range("rt60", rt60, 0.0)
        self.mic_spacing = _range("mic_spacing", mic_spacing, 0.0)
        self.mic_height = _range("mic_height", mic_height, 0.0)
        self.source_distance = _range("source_distance", source_distance, 0.0)
        self.source_height = _range("source_height", source_height, 0.0)
        self.wall_distance = float(wall_distance)
        self.num_mics = int(num_mics)
        self.max_order = None if max_order is None else int(max_order)
        if self.num_mics < 2:
            raise UserError(f"spatialize_wham.num_mics must be >= 2, got {num_mics}")
        if self.wall_distance < 0:
            raise UserError(f"spatialize_wham.wall_distance must be >= 0 m, got {wall_distance}")
        if self.max_order is not None and self.max_order < 0:
            raise UserError(f"spatialize_wham.max_order must be >= 0 or None, got {max_order}")
        if self.rt60[0] <= 0 or self.room_size[0][0] <= 0 or self.source_distance[0] <= 0:
            raise UserError("spatialize_wham: rt60, room_size and source_distance must be > 0 "
                            f"(got rt60={rt60}, room_size={room_size}, "
                            f"source_distance={source_distance})")
        (lx, _), (ly, _), _ = self.room_size
        span = self.mic_spacing[1] * (self.num_mics - 1)
        need = 2 * (self.wall_distance + self.source_distance[0])
        if min(lx, ly) < max(need, span + 2 * self.wall_distance):
            raise UserError(
                f"spatialize_wham: the smallest room ({lx} x {ly} m) cannot hold a source "
                f"{self.source_distance[0]} m from the array with {self.wall_distance} m to the "
                f"walls (needs {need:g} m); enlarge room_size or lower source_distance / "
                "wall_distance")
        if max(self.mic_height[1], self.source_height[1]) > self.room_size[2][0]:
            raise UserError(f"spatialize_wham: mic_height {self.mic_height} / source_height "
                            f"{self.source_height} exceed the lowest room height "
                            f"{self.room_size[2][0]} m; lower them or raise room_size")

    def to_dict(self) -> dict:
        return {"room_size": [list(p) for p in self.room_size], "rt60": list(self.rt60),
                "mic_spacing": list(self.mic_spacing), "mic_height": list(self.mic_height),
                "source_distance": list(self.source_distance),
                "source_height": list(self.source_height), "wall_distance": self.wall_distance,
                "num_mics": self.num_mics, "max_order": self.max_order}

    def draw(self, rng: np.random.Generator, n_sources: int = 3, max_tries: int = 1000) -> dict:
        """Draw one room, array and source layout (every value recorded)."""
        dims = [float(rng.uniform(lo, hi)) for lo, hi in self.room_size]
        rt60 = float(rng.uniform(*self.rt60))
        spacing = float(rng.uniform(*self.mic_spacing))
        angle = float(rng.uniform(0.0, math.pi))
        w = self.wall_distance
        half = spacing * (self.num_mics - 1) / 2
        center = [float(rng.uniform(w + half, dims[0] - w - half)),
                  float(rng.uniform(w + half, dims[1] - w - half)),
                  float(rng.uniform(*self.mic_height))]
        offsets = (np.arange(self.num_mics) - (self.num_mics - 1) / 2) * spacing
        mics = [[center[0] + o * math.cos(angle), center[1] + o * math.sin(angle), center[2]]
                for o in offsets]
        sources = []
        for _ in range(n_sources):
            for _ in range(max_tries):
                dist = float(rng.uniform(*self.source_distance))
                az = float(rng.uniform(-math.pi, math.pi))
                z = float(rng.uniform(*self.source_height))
                x = center[0] + dist * math.cos(az)
                y = center[1] + dist * math.sin(az)
                if w <= x <= dims[0] - w and w <= y <= dims[1] - w:
                    break
            else:
                raise UserError("spatialize_wham: could not place a source inside the room after "
                                f"{max_tries} draws; enlarge room_size or lower source_distance")
            rel = (az - angle + math.pi) % (2 * math.pi) - math.pi
            sources.append({"position": [x, y, z], "distance": dist,
                            "azimuth_deg": math.degrees(az),
                            "azimuth_to_array_axis_deg": math.degrees(rel)})
        return {"room_size": dims, "rt60": rt60, "mic_spacing": spacing,
                "array_angle_deg": math.degrees(angle), "array_center": center,
                "mic_positions": mics, "sources": sources}


def render_room(layout: dict, signals: list[np.ndarray], sample_rate: int,
                max_order: int | None = None) -> tuple[np.ndarray, np.ndarray, dict]:
    """Images of ``signals`` (mono, equal length ``n``) at the microphones of ``layout``.

    Returns ``(reverberant (n_src, n_mics, n), direct_path (n_src, n_mics, n), info)`` float64,
    cut to ``n`` samples; ``info``: wall absorption and image-source order used.

    Raises:
        UserError: a room and RT60 that Sabine's formula cannot reconcile, or a source or
            microphone outside the room.
    """
    import pyroomacoustics as pra
    from scipy.signal import fftconvolve

    dims = layout["room_size"]
    try:
        e_abs, order = pra.inverse_sabine(layout["rt60"], dims)
    except ValueError as err:
        raise UserError(f"spatialize_wham: RT60 {layout['rt60']:.2f} s is impossible in a "
                        f"{dims[0]:.1f} x {dims[1]:.1f} x {dims[2]:.1f} m room ({err}); lower "
                        "rt60 or use smaller rooms") from None
    if max_order is not None:
        order = min(int(order), int(max_order))
    n = signals[0].shape[0]
    mics = np.asarray(layout["mic_positions"], dtype=np.float64).T
    out = []
    for this_order in (int(order), 0):
        try:
            room = pra.ShoeBox(dims, fs=int(sample_rate), materials=pra.Material(float(e_abs)),
                               max_order=this_order)
            for s in layout["sources"]:
                room.add_source(s["position"])
            room.add_microphone_array(mics)
            room.compute_rir()
        except (ValueError, AssertionError) as err:
            raise UserError(f"spatialize_wham: invalid room layout ({err}); check room_size, "
                            "wall_distance, mic_height and source_height") from None
        img = np.zeros((len(signals), mics.shape[1], n))
        for k, sig in enumerate(signals):
            for m in range(mics.shape[1]):
                y = fftconvolve(sig.astype(np.float64), np.asarray(room.rir[m][k]))[:n]
                img[k, m, : y.shape[0]] = y
        out.append(img)
    return out[0], out[1], {"wall_absorption": float(e_abs), "max_order": int(order)}


def _utterance_name(name: str, room: int) -> str:
    """Output name of ``name`` rendered in room ``room`` (``<utt>`` or ``<utt>_room<r>``)."""
    return name if room == 0 else f"{name}_room{room}"


def _render_utterance(job: tuple, out: Path, cfg: RoomConfig, sample_rate: int, peak: float,
                      subtype: str, seed: int) -> None:
    """Render one ``(split index, split, source dir, output dir, utterance index, name, room)``
    job and write its files, the metadata JSON last (a module-level function: it runs in
    worker processes; every draw comes from the job's own seed, so the result does not depend
    on the order or on the number of workers)."""
    from ..utils.io import atomic_write_audio, atomic_write_json
    from .audio import load_audio

    si, split, src_dir, dst_dir, ui, name, r = job
    utt = _utterance_name(name, r)
    signals = [load_audio(src_dir / s / f"{name}.wav", sample_rate=sample_rate, mono=True)[0]
               for s in SOURCES]
    n = min(x.shape[0] for x in signals)
    signals = [x[:n] for x in signals]
    rng = np.random.default_rng([seed, si, ui, r])
    layout = cfg.draw(rng, len(SOURCES))
    rev, direct, info = render_room(layout, signals, sample_rate, cfg.max_order)
    top = float(np.abs(rev.sum(axis=0)).max())
    gain = peak / top if top > 0 else 1.0
    rev = (rev * gain).astype(np.float32)
    direct = (direct * gain).astype(np.float32)
    files = {"s1": rev[0], "s2": rev[1], "noise": rev[2],
             "mix_clean": rev[0] + rev[1], "mix_both": rev[0] + rev[1] + rev[2],
             "mix_single": rev[0] + rev[2],
             "s1_anechoic": direct[0], "s2_anechoic": direct[1]}
    for folder, audio in files.items():
        atomic_write_audio(dst_dir / folder / f"{utt}.wav", audio, sample_rate, subtype=subtype)
    for s, rec in zip(SOURCES, layout["sources"]):
        rec["name"] = s
    atomic_write_json(out / "spatialize" / split / f"{utt}.json",
                      {"utterance": utt, "source_utterance": name, "split": split,
                       "room_index": r, "seed": [seed, si, ui, r], **layout, **info,
                       "gain": gain, "samples": n, "sample_rate": sample_rate})


def spatialize_wham(root: str | os.PathLike, output: str | os.PathLike,
                    splits=("tr", "cv", "tt"), mode: str = "min", sample_rate: int = 8000,
                    rooms_per_utterance: int = 1, max_utterances: int | None = None,
                    room_size=((5.0, 10.0), (5.0, 10.0), (2.5, 3.5)), rt60=(0.2, 0.6),
                    mic_spacing=(0.05, 0.25), mic_height=(1.0, 1.8),
                    source_distance=(0.75, 2.0), source_height=(1.2, 1.9),
                    wall_distance: float = 0.5, num_mics: int = 2, max_order: int | None = None,
                    peak: float = 0.9, subtype: str = "FLOAT", seed: int = 0,
                    num_workers: int = 1, progress: bool = True) -> str:
    """Spatialize a WHAM!-layout folder (module docstring); resumable; returns the output root.

    Args:
        root: WHAM! root with ``wav{8,16}k/<mode>/<split>/{s1,s2,noise}``.
        output: destination root (same layout). Must differ from ``root``.
        splits: WHAM! splits (default tr, cv, tt; aliases train/valid/test).
        mode, sample_rate: which WHAM! version to read (default ``min``, 8000 Hz).
        rooms_per_utterance: render each utterance in this many rooms (default 1); copies
            after the first are named ``<utt>_room<r>`` (more training mixtures).
        max_utterances: the first N utterances of each split (sorted; default all).
        room_size: ``((x_min, x_max), (y_min, y_max), (z_min, z_max))`` metres.
        rt60: ``(min, max)`` seconds (Sabine; converted to wall absorption and image order).
        mic_spacing: ``(min, max)`` metres between adjacent microphones.
        mic_height, source_height: ``(min, max)`` metres.
        source_distance: ``(min, max)`` metres from the array centre.
        wall_distance: minimum distance (m) of the array and sources from the walls (0.5).
        num_mics: microphones in the linear array (default 2).
        max_order: cap on the image-source order (default None = what the RT60 needs).
        peak: every file of an utterance is scaled by one gain so the ``mix_both`` peak is
            this (default 0.9).
        subtype: WAV subtype (default ``'FLOAT'``, so the mixtures are exact sums).
        seed: base seed (default 0).
        num_workers: processes rendering utterances at once (default 1); the output is the
            same for any value (each utterance draws from its own seed).
        progress: tqdm bar.

    Raises:
        UserError: a bad range, a room that cannot hold the layout or the RT60, a missing or
            inconsistent input folder, an output made with other settings.
    """
    from tqdm.auto import tqdm

    from ..utils.io import atomic_write_json
    from .wham import SPLIT_ALIASES, check_wham_folder, wham_folder

    cfg = RoomConfig(room_size, rt60, mic_spacing, mic_height, source_distance, source_height,
                     wall_distance, num_mics, max_order)
    try:  # the hardest corner: the shortest RT60 in the largest room
        import pyroomacoustics as pra

        pra.inverse_sabine(cfg.rt60[0], [hi for _, hi in cfg.room_size])
    except ValueError:
        raise UserError(f"spatialize_wham: RT60 {cfg.rt60[0]} s is impossible in the largest "
                        f"room {[hi for _, hi in cfg.room_size]} m (even fully absorbing walls "
                        "reverberate longer); raise rt60's minimum or lower room_size") from None
    if int(rooms_per_utterance) < 1:
        raise UserError(f"spatialize_wham.rooms_per_utterance must be >= 1, got {rooms_per_utterance}")
    if int(num_workers) < 1:
        raise UserError(f"spatialize_wham.num_workers must be >= 1, got {num_workers}")
    if not 0 < float(peak) <= 1.0:
        raise UserError(f"spatialize_wham.peak must be in (0, 1], got {peak}")
    if subtype.upper() not in ("FLOAT", "PCM_16", "PCM_24"):
        raise UserError(f"spatialize_wham.subtype must be 'FLOAT', 'PCM_16' or 'PCM_24', got {subtype!r}")
    out = Path(output).expanduser().resolve()
    if out == Path(root).expanduser().resolve():
        raise UserError(f"spatialize_wham.output {out} is the input root; choose another folder")
    splits = [SPLIT_ALIASES.get(s, s) for s in ([splits] if isinstance(splits, str) else splits)]
    settings = {"root": str(Path(root).expanduser().resolve()), "splits": splits, "mode": mode,
                "sample_rate": int(sample_rate), "rooms_per_utterance": int(rooms_per_utterance),
                "max_utterances": max_utterances, **cfg.to_dict(), "peak": float(peak),
                "subtype": subtype.upper(), "seed": int(seed)}
    summary = out / "spatialize.json"
    if summary.is_file():
        import json

        old = json.loads(summary.read_text()).get("settings", {})
        diff = {k: (old.get(k), v) for k, v in settings.items() if old.get(k) != v}
        if diff:
            raise UserError(f"{out} was spatialized with other settings "
                            f"({', '.join(f'{k}: {a!r} -> {b!r}' for k, (a, b) in diff.items())});"
                            " write to another output folder")
    jobs = []
    for si, split in enumerate(splits):
        src_dir = wham_folder(root, split, mode, sample_rate)
        names, _ = check_wham_folder(src_dir, SOURCES, sample_rate=sample_rate)
        if max_utterances is not None:
            names = names[: int(max_utterances)]
        dst_dir = wham_folder(out, split, mode, sample_rate)
        for ui, name in enumerate(names):
            for r in range(int(rooms_per_utterance)):
                jobs.append((si, split, src_dir, dst_dir, ui, name, r))
    atomic_write_json(summary, {"settings": settings, "status": "running", "utterances": len(jobs)})
    todo = [job for job in jobs
            if not (out / "spatialize" / job[1] / f"{_utterance_name(job[5], job[6])}.json").is_file()]
    render = functools.partial(_render_utterance, out=out, cfg=cfg, sample_rate=int(sample_rate),
                               peak=float(peak), subtype=subtype.upper(), seed=int(seed))
    bar = tqdm(total=len(jobs), initial=len(jobs) - len(todo), desc="spatialize", unit="utt",
               disable=not progress)
    done = 0
    if int(num_workers) > 1 and len(todo) > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(int(num_workers)) as pool:
            for _ in pool.map(render, todo, chunksize=4):
                done += 1
                bar.update()
    else:
        for job in todo:
            render(job)
            done += 1
            bar.update()
    bar.close()
    atomic_write_json(summary, {"settings": settings, "status": "complete",
                                "utterances": len(jobs), "rendered_now": done})
    return str(out)
