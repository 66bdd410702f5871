"""MUSDB18 / MUSDB18-HQ: listing through the real ``musdb`` package, prepare, streaming dataset,
and a short train + evaluate on tiny layouts built here (HQ wav always; .stem.mp4 when ffmpeg is
installed)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from bootsep.data import musdb as M
from bootsep.data.demo import synthesize_song
from bootsep.data.folder import StemFolderDataset
from bootsep.utils.errors import UserError

from conftest import run_main

HAS_FFMPEG = shutil.which("ffmpeg") is not None and shutil.which("ffprobe") is not None
TRACKS = {"train": ["Alpha - One", "Beta - Two", "Gamma - Three"],
          "test": ["Delta - Four", "Epsilon - Five"]}
PANS = {"vocals": 0.5, "drums": 0.3, "bass": 0.6, "other": 0.8}
SR = 44100


def track_stems(subset: str, index: int, duration: float = 2.0) -> dict[str, np.ndarray]:
    """Stereo (samples, 2) float32 stems of one synthetic song at 44.1 kHz."""
    song = synthesize_song(seed=5, split=subset, index=index, duration=duration, sample_rate=SR)
    return {s: np.stack([song.audio[s] * PANS[s], song.audio[s] * (1 - PANS[s])], 1)
            .astype(np.float32) for s in M.MUSDB_STEMS}


def write_setup(root: Path, validation=("Beta - Two",)) -> None:
    import yaml

    setup = yaml.safe_load((M._musdb_package_dir() / "configs" / "mus.yaml").read_text())
    setup["validation_tracks"] = list(validation)
    (root / "setup.yaml").write_text(yaml.safe_dump(setup))


def make_hq(root: Path, tracks=TRACKS) -> Path:
    """MUSDB18-HQ layout: ROOT/<subset>/<track>/{mixture,vocals,drums,bass,other}.wav."""
    for subset, names in tracks.items():
        for i, name in enumerate(names):
            stems = track_stems(subset, i)
            d = root / subset / name
            d.mkdir(parents=True, exist_ok=True)
            for s, x in stems.items():
                sf.write(d / f"{s}.wav", x, SR, subtype="PCM_16")
            sf.write(d / "mixture.wav", sum(stems.values()), SR, subtype="PCM_16")
    write_setup(root)
    return root


def make_stem_mp4(root: Path, tracks=TRACKS) -> Path:
    """MUSDB18 layout: ROOT/<subset>/<track>.stem.mp4 with 5 AAC streams (mix, d, b, o, v)."""
    import stempeg

    for subset, names in tracks.items():
        (root / subset).mkdir(parents=True, exist_ok=True)
        for i, name in enumerate(names):
            stems = track_stems(subset, i)
            order = [sum(stems.values())] + [stems[s] for s in ("drums", "bass", "other",
                                                                  "vocals")]
            stempeg.write_stems(str(root / subset / f"{name}.stem.mp4"),
                                np.stack(order).astype(np.float32), sample_rate=SR,
                                writer=stempeg.StreamsWriter(codec="aac", bitrate=256000))
    write_setup(root)
    return root


@pytest.fixture(scope="module")
def hq(tmp_path_factory) -> Path:
    return make_hq(tmp_path_factory.mktemp("musdb_hq"))


@pytest.fixture(scope="module")
def prepared(hq, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("prepared") / "musdb16k"
    M.prepare_musdb(hq, out, sample_rate=16000, setup_file="setup.yaml", num_workers=2,
                    progress=False)
    return out


def snr_db(ref: np.ndarray, est: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(ref ** 2) / np.sum((ref - est) ** 2)))


# ---------------------------------------------------------------------------- listing

def test_official_and_custom_split(hq):
    names = {s: [t.name for t in M.list_musdb_tracks(hq, s, setup_file="setup.yaml")]
             for s in ("train", "valid", "test")}
    assert names == {"train": ["Alpha - One", "Gamma - Three"], "valid": ["Beta - Two"],
                     "test": ["Delta - Four", "Epsilon - Five"]}
    # the official setup: all three are training tracks, and none is a validation track
    assert len(M.list_musdb_tracks(hq, "train")) == 3
    with pytest.raises(UserError, match="validation_tracks.*setup_file='setup.yaml'"):
        M.list_musdb_tracks(hq, "valid")
    t = M.list_musdb_tracks(hq, "test")[0]
    assert t.is_wav and set(t.files) == {"mixture", *M.MUSDB_STEMS}


def test_builtin_listing_agrees_with_musdb_and_ffmpeg_error(hq, monkeypatch):
    """Without ffmpeg `musdb` cannot be imported: HQ is listed by the built-in reader (same
    result), and .stem.mp4 gives an error naming ffmpeg and how to install it."""
    if not HAS_FFMPEG:
        pytest.skip("ffmpeg is not installed: the musdb package cannot be imported to compare")
    real = {s: [(t.name, t.files) for t in M.list_musdb_tracks(hq, s, setup_file="setup.yaml")]
            for s in ("train", "valid", "test")}
    monkeypatch.setattr(M, "_import_musdb", lambda: None)
    monkeypatch.setattr(M, "ffmpeg_available", lambda: False)
    built = {s: [(t.name, t.files) for t in M.list_musdb_tracks(hq, s, setup_file="setup.yaml")]
             for s in ("train", "valid", "test")}
    assert built == real
    with pytest.raises(UserError, match=r"ffmpeg.*apt-get install ffmpeg.*is_wav=True"):
        M.list_musdb_tracks(hq, "test", is_wav=False)


def test_listing_errors(hq, tmp_path):
    with pytest.raises(UserError, match="MUSDB root not found"):
        M.list_musdb_tracks(tmp_path / "nope", "train")
    with pytest.raises(UserError, match="not a MUSDB18 folder"):
        M.list_musdb_tracks(tmp_path, "train")
    with pytest.raises(UserError, match="split must be one of"):
        M.list_musdb_tracks(hq, "validation")
    with pytest.raises(UserError, match="setup file not found"):
        M.list_musdb_tracks(hq, "train", setup_file="missing.yaml")
    broken = make_hq(tmp_path / "broken", {"test": ["Zeta - Six"]})
    (broken / "test" / "Zeta - Six" / "bass.wav").unlink()
    with pytest.raises(UserError, match=r"no bass stem: expected .*Zeta - Six/bass.wav"):
        M.list_musdb_tracks(broken, "test")


# ---------------------------------------------------------------------------- prepare

def test_prepare_layout_sums_and_resampling(hq, prepared):
    from scipy.signal import resample_poly

    manifest = json.loads((prepared / "prepare_musdb.json").read_text())
    assert manifest["sample_rate"] == 16000 and manifest["splits"]["valid"] == ["Beta - Two"]
    for split, names in manifest["splits"].items():
        for stem in M.PREPARED_STEMS:
            assert sorted(p.stem for p in (prepared / split / stem).glob("*.wav")) == names
    read = {s: sf.read(prepared / "test" / s / "Delta - Four.wav", dtype="float32")
            for s in M.PREPARED_STEMS}
    assert all(r == 16000 and x.shape[1] == 2 for x, r in read.values())
    a = {s: x for s, (x, _) in read.items()}
    lsb = 2.0 ** -15
    assert np.abs(a["mixture"] - (a["vocals"] + a["drums"] + a["bass"] + a["other"])).max() \
        <= 3 * lsb
    assert np.abs(a["accompaniment"] - (a["drums"] + a["bass"] + a["other"])).max() <= 3 * lsb
    # independent reference: the 44.1 kHz source resampled by scipy's polyphase filter
    src, _ = sf.read(hq / "test" / "Delta - Four" / "vocals.wav", dtype="float64")
    ref = resample_poly(src, 160, 441, axis=0)
    n = min(len(ref), len(a["vocals"]))
    assert abs(len(ref) - len(a["vocals"])) <= 1
    assert snr_db(ref[200:n - 200], a["vocals"][200:n - 200]) > 35


def test_prepare_resumes_and_refuses_other_settings(hq, tmp_path):
    out = tmp_path / "p"
    one = {"test": ["Delta - Four", "Epsilon - Five"]}
    kw = dict(sample_rate=16000, splits=["test"], progress=False, num_workers=1)
    M.prepare_musdb(hq, out, **kw)
    files = sorted((out / "test").rglob("*.wav"))
    assert len(files) == 2 * len(M.PREPARED_STEMS)
    mtimes = {p: p.stat().st_mtime_ns for p in files}
    redo = out / "test" / "vocals" / "Epsilon - Five.wav"
    redo.unlink()
    M.prepare_musdb(hq, out, **kw)
    for p in files:
        if "Epsilon" in p.name:
            assert p.is_file()
        else:
            assert p.stat().st_mtime_ns == mtimes[p], p  # finished track left alone
    assert json.loads((out / "prepare_musdb.json").read_text())["splits"] == one
    M.prepare_musdb(hq, out, **dict(kw, splits=["valid"]), setup_file="setup.yaml")
    assert json.loads((out / "prepare_musdb.json").read_text())["splits"] == \
        {**one, "valid": ["Beta - Two"]}
    with pytest.raises(UserError, match="other settings.*sample_rate.*16000, 44100"):
        M.prepare_musdb(hq, out, **dict(kw, sample_rate=44100))
    with pytest.raises(UserError, match="MUSDB root itself"):
        M.prepare_musdb(hq, hq, **kw)


def test_prepare_scales_a_clipping_track_as_a_whole(tmp_path):
    root = tmp_path / "loud"
    d = root / "test" / "Loud - Song"
    d.mkdir(parents=True)
    t = np.arange(SR) / SR
    for i, s in enumerate(M.MUSDB_STEMS):
        x = 0.45 * np.sin(2 * np.pi * (110 * (i + 1)) * t)  # in phase at t=0: sum peaks > 1
        sf.write(d / f"{s}.wav", np.stack([x, x], 1), SR, subtype="FLOAT")
    out = tmp_path / "out"
    M.prepare_musdb(root, out, sample_rate=None, splits=["test"], progress=False)
    marker = json.loads((out / ".prepared" / "test" / "Loud - Song.json").read_text())
    assert 0.4 < marker["gain"] < 1.0 and marker["sample_rate"] == SR
    mix, _ = sf.read(out / "test" / "mixture" / "Loud - Song.wav")
    parts = [sf.read(out / "test" / s / "Loud - Song.wav")[0] for s in M.MUSDB_STEMS]
    assert np.abs(mix).max() <= 1.0
    assert np.abs(mix - sum(parts)).max() <= 3 * 2.0 ** -15


# ---------------------------------------------------------------------------- streaming

def test_streaming_dataset_matches_prepared_copy(hq, prepared):
    stream = M.MUSDBDataset(hq, "test", sample_rate=16000, mono=True)
    copy = StemFolderDataset(prepared, "test", sample_rate=16000, mono=True)
    assert stream.item_names() == copy.item_names() == TRACKS["test"]
    for i in range(2):
        a, b = stream[i], copy[i]
        assert a["sources"].shape == b["sources"].shape == (2, 1, 32000)
        assert torch.allclose(a["mix"], b["mix"], atol=2e-4)
        assert torch.allclose(a["sources"], b["sources"], atol=2e-4)
        assert a["paths"]["mixture_path"].endswith("Delta - Four/mixture.wav" if i == 0 else
                                                   "Epsilon - Five/mixture.wav")


def test_streaming_excerpts_are_seeded_per_index(hq):
    from bootsep.data.mixing import Remixer

    kw = dict(split="train", setup_file="setup.yaml", excerpt_seconds=0.5, num_items=6,
              sources=("vocals", "drums", "bass"), mono=False)
    ds = M.MUSDBDataset(hq, **kw)
    a, b = ds[4], M.MUSDBDataset(hq, **kw)[4]
    assert a["mix"].shape == (2, 8000) and a["sources"].shape == (3, 2, 8000)
    assert torch.equal(a["mix"], b["mix"]) and a["offset"] == b["offset"]
    assert a["name"] in ("Alpha - One", "Gamma - Three")
    # the mixture is all four stems: it holds more than the three sources asked for
    assert (a["mix"] - a["sources"].sum(0)).abs().max() > 1e-3
    other = M.MUSDBDataset(hq, **dict(kw, seed=1))
    assert any(other[i]["offset"] != ds[i]["offset"] for i in range(6))
    rem = M.MUSDBDataset(hq, **dict(kw, remix=Remixer(balance=1.0, gain_jitter_db=3.0)))
    item = rem[2]
    assert not item["coherent"]
    assert torch.allclose(item["mix"], item["sources"].sum(0), atol=1e-6)
    with pytest.raises(UserError, match="distinct names"):
        M.MUSDBDataset(hq, "test", sources=("vocals", "guitar"))


# ---------------------------------------------------------------------------- train + evaluate

def _short_train_and_evaluate(train_ds, test_ds, run: Path, sample_rate: int = 16000):
    """A tiny chimera for a few steps, then evaluate on ``test_ds``; returns result records."""
    from bootsep.config import experiment
    from bootsep.dsp.stft import STFT
    from bootsep.models.recurrent import Chimera

    def model():
        return Chimera(num_features=129, hidden_size=8, num_layers=1, dropout=0.0,
                       embedding_size=4, num_sources=2)

    experiment.train(model=model, optimizer=torch.optim.Adam, train_dataset=train_ds,
                     loss_dictionary={"mi": {"class": "L1Loss"},
                                      "dc": {"class": "DeepClusteringLoss", "weight": 0.01}},
                     handlers=(), num_epochs=1, epoch_length=2, batch_size=2, num_workers=0,
                     output_folder=str(run), stft=STFT(256, 64), sample_rate=sample_rate,
                     progress=False)
    sep = experiment.deep_separator(checkpoint="latest", output_folder=str(run))
    experiment.evaluate(separator=sep, dataset=test_ds, output_folder=str(run), num_workers=1,
                        progress=False)
    return [json.loads(p.read_text()) for p in sorted((run / "results").glob("*.json"))]


def test_hq_prepare_train_evaluate(prepared, tmp_path):
    from bootsep.data.mixing import Remixer

    train_ds = StemFolderDataset(prepared, "train", excerpt_seconds=0.5, num_items=8,
                                 remix=Remixer(balance=0.5))
    test_ds = StemFolderDataset(prepared, "test", mono=False)
    records = _short_train_and_evaluate(train_ds, test_ds, tmp_path / "run")
    assert [r["item"] for r in records] == TRACKS["test"]
    rec = records[0]
    assert set(rec["sources"]) == {"accompaniment", "vocals"}
    assert len(rec["sources"]["vocals"]["SI-SDR"]) == 2  # stereo test songs, per channel
    assert all(np.isfinite(rec["sources"]["vocals"]["SI-SDR"]))


@pytest.mark.skipif(not HAS_FFMPEG, reason="ffmpeg/ffprobe not installed (apt-get install "
                                          "ffmpeg): .stem.mp4 cannot be decoded")
def test_stem_mp4_prepare_stream_train_evaluate(tmp_path):
    root = make_stem_mp4(tmp_path / "musdb18", {"train": TRACKS["train"][:2],
                                                 "test": TRACKS["test"][:1]})
    assert M.detect_is_wav(root) is False
    tracks = M.list_musdb_tracks(root, "test")
    assert [t.name for t in tracks] == ["Delta - Four"] and not tracks[0].is_wav
    out = tmp_path / "prep"
    M.prepare_musdb(root, out, sample_rate=16000, setup_file="setup.yaml", progress=False)
    assert sorted(p.name for p in (out / "valid" / "vocals").iterdir()) == ["Beta - Two.wav"]
    voc, sr = sf.read(out / "test" / "vocals" / "Delta - Four.wav")
    assert sr == 16000 and voc.shape == (32000, 2)
    mix = sf.read(out / "test" / "mixture" / "Delta - Four.wav")[0]
    parts = [sf.read(out / "test" / s / "Delta - Four.wav")[0] for s in M.MUSDB_STEMS]
    assert np.abs(mix - sum(parts)).max() <= 3 * 2.0 ** -15
    # AAC is lossy: compare with the original vocals resampled independently
    from scipy.signal import resample_poly

    ref = resample_poly(track_stems("test", 0)["vocals"].astype(np.float64), 160, 441, axis=0)
    assert snr_db(ref[200:-200], voc[200:len(ref) - 200]) > 20
    # the streaming dataset decodes the same file (excerpt read through ffmpeg seeking)
    stream = M.MUSDBDataset(root, "train", setup_file="setup.yaml", excerpt_seconds=0.5,
                            num_items=4)
    item = stream[1]
    assert item["mix"].shape == (1, 8000) and item["sources"].shape == (2, 1, 8000)
    start = int(round(item["offset"] * 16000))
    copy = sf.read(out / "train" / "vocals" / "Alpha - One.wav")[0].mean(1)[start:start + 8000]
    assert item["name"] == "Alpha - One"
    assert snr_db(copy, item["sources"][1, 0].numpy()) > 25
    records = _short_train_and_evaluate(stream, M.MUSDBDataset(root, "test", mono=False),
                                        tmp_path / "run")
    assert [r["item"] for r in records] == ["Delta - Four"]
    assert records[0]["metadata"]["mixture_path"].endswith("Delta - Four.stem.mp4")


# ---------------------------------------------------------------------------- configs + CLI

SHRINK = ["train.num_epochs = 1", "train.epoch_length = 2", "train.batch_size = 2",
          "train.num_workers = 0", "train.progress = False", "evaluate.progress = False",
          "Chimera.hidden_size = 8", "Chimera.num_layers = 1", "Chimera.embedding_size = 4",
          "STFT.window_length = 256", "STFT.hop_length = 64", "Chimera.num_features = 129",
          "train/StemFolderDataset.excerpt_seconds = 0.5", "train/StemFolderDataset.num_items = 8",
          "val/build_dataset.dataset = None", "evaluate.num_workers = 1"]


def test_cli_musdb_configs_prepare_and_all(hq, tmp_path):
    """`prepare -c musdb/prepare_16k.gin` on $MUSDB_ROOT, then the shipped musdb.gin data
    config with musdb/exp/chimera.gin through `all` (shrunk with -b)."""
    env = {"MUSDB_ROOT": str(hq), "MUSDB_PREPARED": str(tmp_path / "prep")}
    r = run_main(["prepare", "-c", "musdb/prepare_16k.gin",
                             "-b", "prepare_musdb.setup_file = 'setup.yaml'",
                             "-b", "prepare_musdb.progress = False"], env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    assert (tmp_path / "prep" / "valid" / "accompaniment" / "Beta - Two.wav").is_file()
    assert json.loads((tmp_path / "prep" / "prepare_musdb.json").read_text())["sample_rate"] \
        == 16000
    run = tmp_path / "run"
    args = ["all", "-c", "musdb/env.gin", "musdb/musdb.gin", "musdb/exp/chimera.gin", "-o", run]
    for b in SHRINK:
        args += ["-b", b]
    r = run_main(args, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    results = sorted(p.stem for p in (run / "results").glob("*.json"))
    assert results == TRACKS["test"]
    assert "VOCALS" in (run / "report_card.txt").read_text()
