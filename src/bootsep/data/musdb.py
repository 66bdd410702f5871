"""MUSDB18 (``.stem.mp4``) and MUSDB18-HQ (wav) through the ``musdb`` package.

Two ways in:

- :func:`prepare_musdb` writes a prepared copy in the per-stem layout that
  :class:`~bootsep.data.folder.StemFolderDataset` reads (and the reference system used)::

      OUT/<train|valid|test>/<bass|drums|other|vocals|accompaniment|mixture>/<track>.wav

  at 16 kHz or 44.1 kHz, with ``mixture`` = the sum of the four stems and ``accompaniment`` =
  drums + bass + other, summed after resampling; tracks run in parallel, with a progress bar,
  and a rerun skips finished tracks.
- :class:`MUSDBDataset` streams items straight from MUSDB for users who do not want a copy.

Splits (the official ones): ``train`` = the train subset minus the setup's
``validation_tracks``, ``valid`` = those validation tracks, ``test`` = the test subset. A custom
``setup_file`` (relative to the root, as ``musdb.DB`` takes it, or absolute) replaces the
validation list.

Decoding: ``.stem.mp4`` files are decoded by ffmpeg through stempeg; without ffmpeg a
:class:`~bootsep.utils.errors.UserError` says how to install it. MUSDB18-HQ wav files are
listed with ``musdb.DB(is_wav=True)`` and read with soundfile (exact samples, partial reads).
When ffmpeg is missing the ``musdb`` package cannot even be imported (stempeg checks for it at
import); the HQ layout is then listed by an equivalent built-in reader of the same setup file.
``is_wav=None`` (the default everywhere) tells the two releases apart by looking at the folder.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bootsep.data.files import DERIVED, MUSDB_STEMS
from bootsep.data.mixing import Remixer
from bootsep.data.tracks import TrackDataset, fit
from bootsep.utils.errors import UserError

log = logging.getLogger(__name__)

#: target name -> the MUSDB stems it sums (the stem table of :mod:`bootsep.data.files`)
TARGETS = {**{s: (s,) for s in MUSDB_STEMS}, **DERIVED}
#: the files :func:`prepare_musdb` writes per track: the four stems, then the two sums
PREPARED_STEMS = (*sorted(MUSDB_STEMS), *DERIVED)
#: split -> (musdb subset folder, musdb split)
SPLITS = {"train": ("train", "train"), "valid": ("train", "valid"), "test": ("test", None)}
FFMPEG_HELP = ("reading MUSDB18 .stem.mp4 files needs ffmpeg and ffprobe (stempeg runs them), "
               "and they are not on PATH: install ffmpeg (Debian/Ubuntu: `apt-get install "
               "ffmpeg`; conda: `conda install -c conda-forge ffmpeg`; macOS: `brew install "
               "ffmpeg`), or use MUSDB18-HQ (wav) with is_wav=True, or convert the stems to wav "
               "with `musdbconvert`")
MUSDB_LAYOUT = ("a MUSDB18 root holds train/ and test/ with <track>.stem.mp4 files; a "
                "MUSDB18-HQ root holds train/<track>/{mixture,vocals,drums,bass,other}.wav")
_MARKERS = ".prepared"
_MANIFEST = "prepare_musdb.json"


@dataclass
class MusdbTrack:
    """One MUSDB track.

    Attributes:
        name: track name (``'Artist - Title'``).
        subset: ``'train'`` or ``'test'`` (the folder it lives in).
        path: the ``.stem.mp4`` file, or the track folder (HQ).
        is_wav: HQ wav track.
        files: HQ only: stem name -> wav path (``vocals``, ``drums``, ``bass``, ``other``, and
            ``mixture`` when present).
        stem_ids: ``.stem.mp4`` only: stem name -> stream index (from the setup file).
    """

    name: str
    subset: str
    path: str
    is_wav: bool
    files: dict = field(default_factory=dict)
    stem_ids: dict = field(default_factory=dict)


# ---------------------------------------------------------------------------- listing

def ffmpeg_available() -> bool:
    """True when ``ffmpeg`` and ``ffprobe`` are on PATH (what stempeg needs)."""
    return shutil.which("ffmpeg") is not None and shutil.which("ffprobe") is not None


def _import_musdb():
    """The ``musdb`` module, or None when it cannot be imported (no ffmpeg, not installed)."""
    try:
        import musdb
    except ImportError:
        return None
    except RuntimeError as err:  # stempeg raises at import when ffmpeg is missing
        if "ffmpeg" in str(err).lower():
            return None
        raise
    return musdb


def _musdb_package_dir() -> Path | None:
    import importlib.util

    spec = importlib.util.find_spec("musdb")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def load_setup(root: str | os.PathLike, setup_file: str | os.PathLike | None = None) -> dict:
    """The musdb setup (stems, stem ids, validation tracks) as a dict.

    Args:
        root: MUSDB root.
        setup_file: None (default) = the ``musdb`` package's own ``mus.yaml`` (the official
            split); otherwise a YAML path relative to ``root`` (as ``musdb.DB`` joins it) or
            absolute.
    """
    import yaml

    if setup_file is None:
        pkg = _musdb_package_dir()
        if pkg is None:
            raise UserError("the `musdb` package is not installed (pip install musdb); it "
                            "provides MUSDB18's official split")
        path = pkg / "configs" / "mus.yaml"
    else:
        path = Path(os.path.join(str(root), os.fspath(setup_file)))
    if not path.is_file():
        raise UserError(f"MUSDB setup file not found: {path} (setup_file is relative to the "
                        f"MUSDB root {root}, or absolute)")
    try:
        setup = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise UserError(f"cannot parse MUSDB setup file {path}: {err}") from None
    for key in ("sources", "stem_ids", "validation_tracks", "mixture"):
        if not isinstance(setup, dict) or key not in setup:
            raise UserError(f"MUSDB setup file {path} has no {key!r} entry (start from the "
                            f"musdb package's configs/mus.yaml)")
    setup["validation_tracks"] = list(setup.get("validation_tracks") or [])
    return setup


def detect_is_wav(root: str | os.PathLike) -> bool:
    """True for a MUSDB18-HQ (wav) root, False for ``.stem.mp4``; UserError if neither."""
    root = Path(root)
    for subset in ("train", "test"):
        d = root / subset
        if not d.is_dir():
            continue
        if any(p.name.endswith(".stem.mp4") for p in d.iterdir()):
            return False
        for t in d.iterdir():
            if t.is_dir() and any((t / f"{s}.wav").is_file() for s in ("mixture", *MUSDB_STEMS)):
                return True
    raise UserError(f"{root} is not a MUSDB18 folder: {MUSDB_LAYOUT} (set MUSDB_ROOT)")


def _builtin_wav_tracks(root: Path, subset: str, split: str | None, setup: dict):
    """musdb.DB's listing of an HQ folder, for when ``musdb`` cannot be imported."""
    folder = root / subset
    if not folder.is_dir():
        return []
    valid = set(setup["validation_tracks"])
    out = []
    for d in sorted(p for p in folder.iterdir() if p.is_dir()):
        if split == "train" and d.name in valid or split == "valid" and d.name not in valid:
            continue
        files = {s: str(d / f) for s, f in setup["sources"].items() if (d / f).is_file()}
        if (d / setup["mixture"]).is_file():
            files["mixture"] = str(d / setup["mixture"])
        out.append(MusdbTrack(d.name, subset, str(d), True, files=files))
    return out


def list_musdb_tracks(root: str | os.PathLike, split: str = "train", is_wav: bool | None = None,
                      setup_file: str | os.PathLike | None = None) -> list[MusdbTrack]:
    """The tracks of one split, sorted by name, through ``musdb.DB``.

    Args:
        root: MUSDB18 or MUSDB18-HQ root.
        split: ``'train'``, ``'valid'`` or ``'test'``.
        is_wav: True for MUSDB18-HQ, False for ``.stem.mp4``, None (default) = detect.
        setup_file: custom setup (see :func:`load_setup`); default the official split.

    Raises:
        UserError: missing root, unknown split, ffmpeg missing for ``.stem.mp4``, an HQ track
        without one of its four stems, or an empty split (with what to fix).
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise UserError(f"MUSDB root not found: {root}; {MUSDB_LAYOUT} (set MUSDB_ROOT)")
    if split not in SPLITS:
        raise UserError(f"MUSDB split must be one of {sorted(SPLITS)}, got {split!r}")
    if is_wav is None:
        is_wav = detect_is_wav(root)
    setup = load_setup(root, setup_file)
    subset, sub_split = SPLITS[split]
    musdb = _import_musdb()
    if musdb is None:
        if not is_wav:
            raise UserError(FFMPEG_HELP)
        log.info("musdb cannot be imported (no ffmpeg): listing the MUSDB18-HQ folder directly")
        tracks = _builtin_wav_tracks(root, subset, sub_split, setup)
    else:
        try:
            db = musdb.DB(root=str(root), setup_file=None if setup_file is None else
                          os.fspath(setup_file), is_wav=bool(is_wav), subsets=[subset],
                          split=sub_split)
        except Exception as err:  # ffprobe failures on broken files, unreadable setup, ...
            raise UserError(f"musdb could not read {root / subset}: {str(err).strip()[:300]}") \
                from None
        tracks = []
        for t in db.tracks:
            if is_wav:
                files = {s: src.path for s, src in t.sources.items()}
                mix = os.path.join(os.path.dirname(t.path), setup["mixture"])
                if os.path.isfile(mix):
                    files["mixture"] = mix
                tracks.append(MusdbTrack(t.name, t.subset, os.path.dirname(t.path), True,
                                         files=files))
            else:
                tracks.append(MusdbTrack(t.name, t.subset, t.path, False,
                                         stem_ids=dict(setup["stem_ids"])))
        tracks.sort(key=lambda t: t.name)
    for t in tracks:
        if is_wav:
            missing = [s for s in MUSDB_STEMS if s not in t.files]
            if missing:
                f = setup["sources"].get(missing[0], f"{missing[0]}.wav")
                raise UserError(f"MUSDB18-HQ track {t.name!r} has no {missing[0]} stem: expected "
                                f"{Path(t.path) / f}")
    if not tracks:
        hint = MUSDB_LAYOUT
        if split == "valid":
            hint = ("none of the setup's validation_tracks is in " + str(root / "train")
                    + "; pass a setup_file listing yours")
            if setup_file is None and (root / "setup.yaml").is_file():
                hint += f" (e.g. setup_file='setup.yaml', found in {root})"
        raise UserError(f"no MUSDB tracks in split {split!r} of {root} "
                        f"({'wav' if is_wav else '.stem.mp4'}): {hint}")
    return tracks


# ---------------------------------------------------------------------------- reading

class _StemInfo:
    """Rate, length (samples) and channels of a ``.stem.mp4``, from one ffprobe call."""

    def __init__(self, path: str):
        import stempeg

        try:
            info = stempeg.Info(path)
        except Exception as err:  # ffprobe's own error
            raise UserError(f"ffprobe cannot read {path} ({str(err).strip()[:200]}); the file "
                            f"may be damaged") from None
        if info.nb_audio_streams < 5:
            raise UserError(f"{path} has {info.nb_audio_streams} audio streams; a MUSDB18 "
                            f".stem.mp4 has 5 (mixture, drums, bass, other, vocals)")
        self.sample_rate = int(info.sample_rate(0))
        self.samples = min(int(info.samples(k)) for k in range(info.nb_audio_streams))
        self.channels = int(info.channels(0))


def stem_info(track: MusdbTrack) -> tuple[int, int, int]:
    """``(sample_rate, samples, channels)`` of a track (no decoding).

    MUSDB18-HQ: the four stem files must have the same rate and length (a truncated stem is a
    :class:`UserError` naming the files, not a crop to the shortest). ``.stem.mp4``: the
    streams of the one file may differ by the AAC encoder's padding; the shortest is used.
    """
    from bootsep.data.audio import audio_info, check_same_length

    if track.is_wav:
        infos = [audio_info(track.files[s]) for s in MUSDB_STEMS]
        sr = infos[0][0]
        if any(i[0] != sr for i in infos):
            raise UserError(f"the stems of MUSDB18-HQ track {track.name!r} have different "
                            f"sample rates ({[i[0] for i in infos]})")
        check_same_length({track.files[s]: i for s, i in zip(MUSDB_STEMS, infos)},
                          f"MUSDB18-HQ track {track.name!r}")
        return sr, min(i[1] for i in infos), max(i[2] for i in infos)
    if not ffmpeg_available():
        raise UserError(FFMPEG_HELP)
    info = _StemInfo(track.path)
    return info.sample_rate, info.samples, info.channels


def read_musdb_stems(track: MusdbTrack, stems=MUSDB_STEMS, sample_rate: int | None = None,
                     mono: bool = False, start: float = 0.0,
                     duration: float | None = None) -> dict[str, np.ndarray]:
    """Decode stems of one track.

    Args:
        track: from :func:`list_musdb_tracks`.
        stems: names among vocals, drums, bass, other (and ``mixture``: the original mix).
        sample_rate: output rate in Hz (soxr); None (default) = the file's (44100).
        mono: average channels (default False).
        start, duration: span in seconds (default: the whole track).

    Returns:
        stem -> float32 ``(channels, samples)``; all stems of a call have the same length
        (the trim only evens out ``.stem.mp4`` stream padding: HQ stems of different lengths
        are refused by :func:`stem_info`, which the dataset and ``prepare_musdb`` call first).
    """
    from bootsep.data.audio import load_audio

    stems = tuple(stems)
    if track.is_wav:
        out = {s: load_audio(track.files[s], sample_rate=sample_rate, mono=mono, offset=start,
                             duration=duration) for s in stems}
    else:
        out = _read_stem_mp4(track, stems, sample_rate, mono, start, duration)
    n = min(x.shape[1] for x in out.values())
    ch = max(x.shape[0] for x in out.values())
    return {s: fit(x, ch, n) for s, x in out.items()}


def _read_stem_mp4(track, stems, sample_rate, mono, start, duration):
    if not ffmpeg_available():
        raise UserError(FFMPEG_HELP)
    import stempeg

    from bootsep.data.audio import resample

    margin = 0.05 if sample_rate else 0.0  # resampler context, as data.audio.load_audio does
    t0 = max(0.0, float(start) - margin)
    dur = None if duration is None else float(duration) + (float(start) - t0) + margin
    ids = [int(track.stem_ids[s]) for s in stems]
    try:
        x, rate = stempeg.read_stems(track.path, stem_id=ids, start=t0 or None, duration=dur,
                                     dtype=np.float32, always_3d=True)
    except Exception as err:  # ffmpeg's decoding errors
        raise UserError(f"ffmpeg cannot decode {track.path} ({str(err).strip()[:200]})") \
            from None
    x = np.asarray(x, dtype=np.float32).transpose(0, 2, 1)  # (stems, C, S)
    if mono:
        x = x.mean(axis=1, keepdims=True)
    rate = int(rate)
    sr_out = int(sample_rate) if sample_rate else rate
    skip = int(round((float(start) - t0) * sr_out))
    if duration is None:  # AAC decodes past the declared length (encoder padding): cut there
        info = _StemInfo(track.path)
        want = max(0, info.samples * sr_out // info.sample_rate - int(round(start * sr_out)))
    else:
        want = int(round(float(duration) * sr_out))
    out = {}
    for s, xs in zip(stems, x):
        y = resample(np.ascontiguousarray(xs), rate, sr_out)[:, skip:]
        out[s] = y if want is None else y[:, :want]
    return out


# ---------------------------------------------------------------------------- prepare

def _prepared_paths(out: Path, split: str, track: str) -> dict[str, Path]:
    return {s: out / split / s / f"{track}.wav" for s in PREPARED_STEMS}


def _marker(out: Path, split: str, track: str) -> Path:
    return out / _MARKERS / split / f"{track}.json"


def _is_prepared(out: Path, split: str, track: str) -> bool:
    return _marker(out, split, track).is_file() and all(
        p.is_file() for p in _prepared_paths(out, split, track).values())


def _prepare_track(track: MusdbTrack, split: str, out: Path, sample_rate: int | None,
                   mono: bool, subtype: str) -> dict:
    from bootsep.utils.io import atomic_write_audio, atomic_write_json

    # HQ: refuses stems of different lengths (headers only); .stem.mp4: ffprobe only if needed
    native_rate = stem_info(track)[0] if track.is_wav or not sample_rate else None
    stems = read_musdb_stems(track, MUSDB_STEMS, sample_rate=sample_rate, mono=mono)
    rate = int(sample_rate) if sample_rate else native_rate
    audio = dict(stems)
    audio["accompaniment"] = stems["drums"] + stems["bass"] + stems["other"]
    audio["mixture"] = stems["vocals"] + stems["drums"] + stems["bass"] + stems["other"]
    peak = max(float(np.abs(x).max(initial=0.0)) for x in audio.values())
    gain = 1.0
    if subtype.upper() != "FLOAT" and peak > 1.0:
        gain = 0.999 / peak  # one gain for the whole track keeps mixture == sum of stems
        audio = {k: x * np.float32(gain) for k, x in audio.items()}
    paths = _prepared_paths(out, split, track.name)
    for s in PREPARED_STEMS:
        atomic_write_audio(paths[s], audio[s], rate, subtype=subtype)
    record = {"track": track.name, "split": split, "source": track.path, "is_wav": track.is_wav,
              "sample_rate": rate, "samples": int(audio["mixture"].shape[1]),
              "channels": int(audio["mixture"].shape[0]), "gain": gain}
    atomic_write_json(_marker(out, split, track.name), record)
    return record


def prepare_musdb(root: str | os.PathLike, output: str | os.PathLike,
                  sample_rate: int | None = 16000, splits=("train", "valid", "test"),
                  is_wav: bool | None = None, setup_file: str | os.PathLike | None = None,
                  mono: bool = False, subtype: str = "PCM_16", num_workers: int = 4,
                  progress: bool = True) -> str:
    """Write MUSDB18 / MUSDB18-HQ as ``OUT/<split>/<stem>/<track>.wav``; resumable.

    Args:
        root: MUSDB18 or MUSDB18-HQ root (``$MUSDB_ROOT``).
        output: destination (``$MUSDB_PREPARED``).
        sample_rate: output rate in Hz: 16000 (default) or 44100; None keeps the files' rate.
            Stems are resampled (soxr) before ``mixture`` and ``accompaniment`` are summed.
        splits: any of ``'train'``, ``'valid'``, ``'test'`` (default all three).
        is_wav: True = MUSDB18-HQ, False = ``.stem.mp4``, None (default) = detect.
        setup_file: custom musdb setup file (relative to ``root`` or absolute); default the
            official split.
        mono: average the channels (default False: stereo, as the reference prepared it).
        subtype: libsndfile subtype, ``'PCM_16'`` (default) or ``'FLOAT'``. With PCM a track
            whose summed mixture would clip is scaled as a whole (all six files by the same gain,
            recorded in its marker file) so that ``mixture == sum of stems`` still holds.
        num_workers: tracks prepared in parallel (threads; default 4).
        progress: show a tqdm bar (default True).

    Each finished track gets ``OUT/.prepared/<split>/<track>.json`` (written last), so a rerun
    skips it. ``OUT/prepare_musdb.json`` records the settings; preparing into a folder made with
    other settings (rate, channels, subtype) is refused.

    Returns:
        The output folder (absolute) as a string.
    """
    from tqdm.auto import tqdm

    from bootsep.utils.io import atomic_write_json

    out = Path(output).expanduser().resolve()
    if sample_rate is not None and int(sample_rate) <= 0:
        raise UserError(f"prepare_musdb.sample_rate must be a positive rate in Hz or None, got "
                        f"{sample_rate}")
    if subtype.upper() not in ("PCM_16", "PCM_24", "FLOAT"):
        raise UserError(f"prepare_musdb.subtype must be 'PCM_16', 'PCM_24' or 'FLOAT', got "
                        f"{subtype!r}")
    splits = [splits] if isinstance(splits, str) else list(splits)
    bad = [s for s in splits if s not in SPLITS]
    if bad:
        raise UserError(f"prepare_musdb.splits: unknown split {bad[0]!r}; choose from "
                        f"{sorted(SPLITS)}")
    if out == Path(root).expanduser().resolve():
        raise UserError(f"prepare_musdb: output {out} is the MUSDB root itself; choose another "
                        f"folder (MUSDB_PREPARED)")
    if is_wav is None:
        is_wav = detect_is_wav(root)
    jobs = [(split, t) for split in splits
            for t in list_musdb_tracks(root, split, is_wav=is_wav, setup_file=setup_file)]
    if not is_wav and not ffmpeg_available():
        raise UserError(FFMPEG_HELP)

    settings = {"sample_rate": None if sample_rate is None else int(sample_rate),
                "mono": bool(mono), "subtype": subtype.upper()}
    manifest_path = out / _MANIFEST
    manifest = {}
    if manifest_path.is_file():
        import json

        manifest = json.loads(manifest_path.read_text())
        old = {k: manifest.get(k) for k in settings}
        if old != settings:
            diff = {k: (old[k], settings[k]) for k in settings if old[k] != settings[k]}
            raise UserError(f"{out} was prepared with other settings (existing, requested: "
                            f"{diff}); prepare into another folder (set MUSDB_PREPARED)")
    manifest.update(settings)
    manifest.update({"root": str(Path(root).expanduser().resolve()), "is_wav": bool(is_wav),
                     "setup_file": None if setup_file is None else os.fspath(setup_file)})
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(manifest_path, manifest)

    todo = [(s, t) for s, t in jobs if not _is_prepared(out, s, t.name)]
    log.info("MUSDB %s -> %s: %d tracks, %d already prepared", root, out, len(jobs),
             len(jobs) - len(todo))
    workers = max(1, min(int(num_workers), len(todo) or 1))
    bar = tqdm(total=len(todo), desc="prepare musdb", unit="track", disable=not progress)
    try:
        with cf.ThreadPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(_prepare_track, t, s, out, sample_rate, mono, subtype)
                       for s, t in todo]
            try:
                for f in cf.as_completed(futures):
                    f.result()
                    bar.update(1)
            except BaseException:
                for f in futures:
                    f.cancel()
                raise
    finally:
        bar.close()
    done = manifest.get("splits") if isinstance(manifest.get("splits"), dict) else {}
    done.update({s: sorted(t.name for sp, t in jobs if sp == s) for s in splits})
    manifest["splits"] = done
    atomic_write_json(manifest_path, manifest)
    log.info("prepared %d tracks (%d new) into %s", len(jobs), len(todo), out)
    return str(out)


# ---------------------------------------------------------------------------- streaming dataset

class MUSDBDataset(TrackDataset):
    """MUSDB18 / MUSDB18-HQ read directly (no prepared copy), whole tracks or excerpts.

    Args:
        root: MUSDB18 or MUSDB18-HQ root (``$MUSDB_ROOT``).
        split: ``'train'``, ``'valid'`` or ``'test'`` (official split; default 'train').
        sources: output sources in order, among vocals, drums, bass, other, accompaniment
            (default ``('accompaniment', 'vocals')``).
        sample_rate: output rate in Hz (default 16000; soxr resampling).
        mono: average channels (default True).
        is_wav: True = HQ wav, False = ``.stem.mp4`` (needs ffmpeg), None (default) = detect.
        setup_file: custom musdb setup file (relative to ``root`` or absolute).
        excerpt_seconds, num_items, seed, remix, min_seconds, silence_db, max_retries: as in
            :class:`~bootsep.data.folder.StemFolderDataset` (item ``i`` of an excerpt dataset
            draws from ``default_rng([seed, i])``).

    The mixture is the linear sum of the four stems (as :func:`prepare_musdb` writes it); with
    ``remix`` it is the sum of the returned sources. Items: ``mix`` (C, S), ``sources``
    (n_src, C, S), ``name``, ``index``, ``offset``, ``offsets``, ``gains_db``, ``coherent`` and,
    for whole tracks, ``paths``. Decoding ``.stem.mp4`` runs ffmpeg for each item: for training,
    :func:`prepare_musdb` once and read the copy with StemFolderDataset instead.
    """

    def __init__(self, root: str | os.PathLike, split: str = "train",
                 sources: tuple[str, ...] | list[str] = ("accompaniment", "vocals"),
                 sample_rate: int = 16000, mono: bool = True, is_wav: bool | None = None,
                 setup_file: str | os.PathLike | None = None,
                 excerpt_seconds: float | None = None, num_items: int | None = None,
                 seed: int = 0, remix: Remixer | None = None, min_seconds: float | None = None,
                 silence_db: float = -60.0, max_retries: int = 5):
        sources = tuple(sources)
        bad = [s for s in sources if s not in TARGETS or s == "mixture"]
        if not sources or bad or len(set(sources)) != len(sources):
            raise UserError(f"MUSDBDataset.sources must be distinct names among "
                            f"{[t for t in TARGETS if t != 'mixture']}, got {list(sources)}")
        self.root = Path(root)
        self.split = split
        self.mono = bool(mono)
        self.tracks = list_musdb_tracks(root, split, is_wav=is_wav, setup_file=setup_file)
        self.is_wav = self.tracks[0].is_wav
        lengths, channels = [], []
        for t in self.tracks:
            sr, n, ch = stem_info(t)
            lengths.append(int(n) * int(sample_rate) // sr)
            channels.append(1 if self.mono else ch)
        self._setup(names=[t.name for t in self.tracks], lengths=lengths, channels=channels,
                    sources=sources, sample_rate=sample_rate, excerpt_seconds=excerpt_seconds,
                    num_items=num_items, seed=seed, remix=remix, silence_db=silence_db,
                    max_retries=max_retries, min_seconds=min_seconds,
                    where=f"{root} split {split!r}")
        self.tracks = [self.tracks[i] for i in self._keep]

    def __repr__(self) -> str:
        return (f"MUSDBDataset(root={str(self.root)!r}, split={self.split!r}, "
                f"is_wav={self.is_wav}, tracks={len(self.tracks)}, items={len(self)}, "
                f"sources={self.sources}, excerpt_seconds={self.excerpt_seconds})")

    def _stems(self, track: int, names, start: int, n: int) -> dict[str, np.ndarray]:
        x = read_musdb_stems(self.tracks[track], names, sample_rate=self.sample_rate,
                             mono=self.mono, start=start / self.sample_rate,
                             duration=n / self.sample_rate)
        return {s: fit(v, self._channels[track], n) for s, v in x.items()}

    def _read_coherent(self, track: int, start: int, n: int):
        stems = self._stems(track, MUSDB_STEMS, start, n)
        sources = np.stack([sum(stems[s] for s in TARGETS[name]) for name in self.sources])
        mix = stems["vocals"] + stems["drums"] + stems["bass"] + stems["other"]
        return mix, sources.astype(np.float32)

    def _read_source(self, track: int, k: int, start: int, n: int):
        parts = TARGETS[self.sources[k]]
        stems = self._stems(track, parts, start, n)
        return sum(stems[s] for s in parts)

    def item_paths(self, track: int) -> dict:
        t = self.tracks[track]
        if not t.is_wav:
            return {"mixture_path": t.path, "reference_paths": {s: t.path for s in self.sources}}
        out = {"reference_paths": {s: t.files[TARGETS[s][0]] for s in self.sources}}
        if "mixture" in t.files:
            out["mixture_path"] = t.files["mixture"]
        return out
