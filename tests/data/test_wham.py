"""WHAM! folder reader: tasks, consistency errors, excerpts, a short train + evaluate, and the
shipped wham/ configs through the CLI (tiny layouts built here)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from bootsep.data.wham import WHAMDataset
from bootsep.utils.errors import UserError

from conftest import run_main

SR = 8000
FOLDERS = ("mix_clean", "mix_both", "mix_single", "s1", "s2", "noise")


def speaker(rng: np.random.Generator, n: int, f0: float) -> np.ndarray:
    """A voiced, syllable-modulated harmonic tone (a crude 'speaker')."""
    t = np.arange(n) / SR
    f = f0 * (1 + 0.05 * np.sin(2 * np.pi * rng.uniform(0.5, 2) * t))
    phase = 2 * np.pi * np.cumsum(f) / SR
    x = sum(np.sin(k * phase) / k for k in range(1, 8))
    env = np.clip(np.sin(2 * np.pi * rng.uniform(2, 4) * t + rng.uniform(0, 6)), 0, None)
    return x * env


def make_wham(root: Path, counts=None, seconds=(1.0, 1.4), mode="min") -> Path:
    """ROOT/wav8k/<mode>/<split>/{mix_clean,mix_both,mix_single,s1,s2,noise}/<utt>.wav, 16-bit,
    mixtures the exact integer sums of their parts (as WHAM!)."""
    counts = counts or {"tr": 4, "cv": 2, "tt": 2}
    for split, k in counts.items():
        d = root / "wav8k" / mode / split
        for f in FOLDERS:
            (d / f).mkdir(parents=True, exist_ok=True)
        for i in range(k):
            rng = np.random.default_rng([7, len(split), i])
            n = int(rng.uniform(*seconds) * SR)
            s1 = speaker(rng, n, rng.uniform(90, 140))
            s2 = speaker(rng, n, rng.uniform(180, 260))
            noise = 0.1 * rng.standard_normal(n)
            ints = {name: np.round(x / 4 * 32767).astype(np.int32)
                    for name, x in (("s1", s1), ("s2", s2), ("noise", noise))}
            ints["mix_clean"] = ints["s1"] + ints["s2"]
            ints["mix_single"] = ints["s1"] + ints["noise"]
            ints["mix_both"] = ints["mix_clean"] + ints["noise"]
            utt = f"{split}{i:02d}_a_{rng.integers(100, 999)}_b"
            for f, x in ints.items():
                sf.write(d / f / f"{utt}.wav", x.astype(np.int16), SR, subtype="PCM_16")
    return root


@pytest.fixture(scope="module")
def wham(tmp_path_factory) -> Path:
    return make_wham(tmp_path_factory.mktemp("wham"))


@pytest.mark.parametrize("task,labels,folders", [
    ("separate-clean", ("s1", "s2"), ("mix_clean", "s1", "s2")),
    ("sep_noisy", ("s1", "s2"), ("mix_both", "s1", "s2")),
    ("enhance-single", ("speech", "noise"), ("mix_single", "s1", "noise")),
    ("enh_both", ("speech", "noise"), ("mix_both", "mix_clean", "noise")),
])
def test_tasks_read_the_right_files(wham, task, labels, folders):
    ds = WHAMDataset(wham, split="test", task=task)
    assert ds.split == "tt" and ds.sources == labels and len(ds) == 2
    names = ds.item_names()
    split_dir = wham / "wav8k" / "min" / "tt"
    assert names == sorted(p.stem for p in (split_dir / "s1").iterdir())
    item = ds[1]
    n = sf.info(split_dir / "s1" / f"{names[1]}.wav").frames
    assert item["mix"].shape == (1, n) and item["sources"].shape == (2, 1, n)
    assert item["name"] == names[1] and item["index"] == 1
    # independent read of the expected files
    ref = [sf.read(split_dir / f / f"{names[1]}.wav", dtype="float32")[0] for f in folders]
    assert np.array_equal(item["mix"][0].numpy(), ref[0])
    for k in range(2):
        assert np.array_equal(item["sources"][k, 0].numpy(), ref[k + 1])
    paths = item["paths"]
    assert paths["mixture_path"] == str(split_dir / folders[0] / f"{names[1]}.wav")
    assert paths["reference_paths"][labels[0]] == str(split_dir / folders[1] / f"{names[1]}.wav")
    residual = item["mix"] - item["sources"].sum(0)
    if task == "sep_noisy":  # the mixture holds the noise on top of both speakers
        noise = sf.read(split_dir / "noise" / f"{names[1]}.wav", dtype="float32")[0]
        assert np.allclose(residual[0].numpy(), noise, atol=1e-6)
    else:
        assert residual.abs().max() < 1e-6


def test_bad_arguments(wham):
    with pytest.raises(UserError, match="unknown WHAM! task 'separate'"):
        WHAMDataset(wham, task="separate")
    with pytest.raises(UserError, match="split must be 'tr', 'cv' or 'tt'"):
        WHAMDataset(wham, split="dev")
    with pytest.raises(UserError, match="8000 or 16000"):
        WHAMDataset(wham, sample_rate=44100)
    with pytest.raises(UserError, match=r"folder not found: .*wav16k/min/tr"):
        WHAMDataset(wham, sample_rate=16000)
    from bootsep.data.mixing import Remixer

    with pytest.raises(UserError, match="remix is not available for task 'separate-noisy'"):
        WHAMDataset(wham, task="separate-noisy", excerpt_seconds=0.5, remix=Remixer())


def _fresh(tmp_path):
    return make_wham(tmp_path / "w", counts={"tr": 3}), tmp_path / "w" / "wav8k" / "min" / "tr"


def test_consistency_missing_file(tmp_path):
    root, d = _fresh(tmp_path)
    victim = sorted((d / "s2").iterdir())[1]
    victim.unlink()
    with pytest.raises(UserError, match=rf"file missing: {victim}.*mix_clean/{victim.name}"):
        WHAMDataset(root)
    # a task that does not use s2 is unaffected
    assert len(WHAMDataset(root, task="enhance-single")) == 3


def test_consistency_extra_file_and_missing_folder(tmp_path):
    root, d = _fresh(tmp_path)
    extra = d / "s1" / "zzz_orphan.wav"
    sf.write(extra, np.zeros(800, dtype=np.int16), SR, subtype="PCM_16")
    with pytest.raises(UserError, match=rf"{extra} has no mixture .*mix_clean/zzz_orphan.wav"):
        WHAMDataset(root)
    extra.unlink()
    for p in (d / "noise").iterdir():
        p.unlink()
    (d / "noise").rmdir()
    with pytest.raises(UserError, match=r"folder missing: .*tr/noise"):
        WHAMDataset(root, task="enhance-both")


def test_consistency_length_and_rate_mismatch(tmp_path):
    root, d = _fresh(tmp_path)
    victim = sorted((d / "s1").iterdir())[2]
    x, _ = sf.read(victim, dtype="int16")
    sf.write(victim, x[:-10], SR, subtype="PCM_16")
    with pytest.raises(UserError, match=rf"length mismatch: {victim} has {len(x) - 10} samples"):
        WHAMDataset(root)
    assert len(WHAMDataset(root, check_lengths=False)) == 3  # lists only
    sf.write(victim, x, SR, subtype="PCM_16")
    mix = sorted((d / "mix_clean").iterdir())[0]
    y, _ = sf.read(mix, dtype="int16")
    sf.write(mix, y, 16000, subtype="PCM_16")
    with pytest.raises(UserError, match=rf"{mix} is at 16000 Hz but .* should hold 8000 Hz"):
        WHAMDataset(root)


def test_excerpts_seeded_per_index_and_remix(wham):
    from bootsep.data.mixing import Remixer

    kw = dict(split="tr", excerpt_seconds=0.5, num_items=10)
    a, b = WHAMDataset(wham, **kw), WHAMDataset(wham, **kw)
    for i in (0, 7):
        x, y = a[i], b[i]
        assert x["mix"].shape == (1, 4000) and x["sources"].shape == (2, 1, 4000)
        assert torch.equal(x["mix"], y["mix"]) and x["name"] == y["name"]
    assert a.item_names() is None and len(a) == 10
    assert len({a[i]["name"] for i in range(10)}) > 1
    c = WHAMDataset(wham, **dict(kw, seed=3))
    assert any(not torch.equal(a[i]["mix"], c[i]["mix"]) for i in range(10))
    r = WHAMDataset(wham, **dict(kw, remix=Remixer(balance=1.0, gain_jitter_db=2.0)))
    item = r[4]
    assert not item["coherent"] and "+" in item["name"]
    assert torch.allclose(item["mix"], item["sources"].sum(0), atol=1e-6)
    # longer than every utterance: zero-padded to the excerpt length
    long = WHAMDataset(wham, split="tr", excerpt_seconds=3.0, num_items=2)[0]
    assert long["mix"].shape == (1, 24000) and long["mix"][0, -100:].abs().max() == 0


def test_short_train_and_evaluate(wham, tmp_path):
    from bootsep.config import experiment
    from bootsep.dsp.stft import STFT
    from bootsep.models.recurrent import DeepClustering

    run = tmp_path / "run"

    def model():
        return DeepClustering(num_features=129, hidden_size=8, num_layers=1, dropout=0.0,
                              embedding_size=4)

    train_ds = WHAMDataset(wham, "tr", excerpt_seconds=0.5, num_items=8)
    experiment.train(model=model, optimizer=torch.optim.Adam, train_dataset=train_ds,
                     val_dataset=WHAMDataset(wham, "cv", excerpt_seconds=0.5, num_items=2),
                     loss_dictionary={"dc": {"class": "DeepClusteringLoss"}}, handlers=(),
                     num_epochs=1, epoch_length=2, batch_size=2, num_workers=0,
                     output_folder=str(run), stft=STFT(256, 64), sample_rate=SR, progress=False)
    ckpt = torch.load(run / "checkpoints" / "latest.pth", weights_only=True)
    assert ckpt["source_labels"] == ["s1", "s2"] and ckpt["sample_rate"] == SR
    sep = experiment.deep_separator(checkpoint="latest", kind="clustering",
                                    output_folder=str(run))
    experiment.evaluate(separator=sep, dataset=WHAMDataset(wham, "tt"), output_folder=str(run),
                        compute_permutation=True, num_workers=1, progress=False)
    records = [json.loads(p.read_text()) for p in sorted((run / "results").glob("*.json"))]
    assert [r["item"] for r in records] == WHAMDataset(wham, "tt").item_names()
    rec = records[0]
    assert set(rec["sources"]) == {"s1", "s2"}
    assert all(np.isfinite(rec["sources"]["s1"]["SI-SDR"]))
    assert rec["metadata"]["mixture_path"].endswith(f"mix_clean/{rec['item']}.wav")


# ---------------------------------------------------------------------------- configs + CLI

SHRINK = ["train.num_epochs = 1", "train.epoch_length = 2", "train.batch_size = 2",
          "train.val_batch_size = 1", "train.num_workers = 0", "train.progress = False",
          "evaluate.progress = False", "DeepClustering.hidden_size = 8",
          "DeepClustering.num_layers = 1", "DeepClustering.embedding_size = 4",
          "train/WHAMDataset.excerpt_seconds = 0.5", "train/WHAMDataset.num_items = 8",
          "val/WHAMDataset.excerpt_seconds = 0.5", "val/WHAMDataset.num_items = 2",
          "evaluate.num_workers = 1"]


def test_cli_wham_configs_all_and_sweep(wham, tmp_path):
    """The shipped wham/ configs: `all` with dpcl_small (shrunk), and `instantiate` of dpcl.gin
    expands the reference's autoclip sweep into six run folders."""

    env = {"WHAM_ROOT": str(wham)}
    run = tmp_path / "run"
    args = ["all", "-c", "wham/env.gin", "wham/wham8k.gin", "wham/exp/dpcl_small.gin", "-o", run]
    for b in SHRINK:
        args += ["-b", b]
    r = run_main(args, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    assert len(list((run / "results").glob("*.json"))) == 2
    assert json.loads((run / "evaluation.json").read_text())["compute_permutation"] is True
    assert "S1" in (run / "report_card.txt").read_text()

    sweep = tmp_path / "sweep"
    r = run_main(["instantiate", "-c", "wham/env.gin", "wham/wham8k.gin",
                             "wham/exp/dpcl.gin", "-o", sweep], env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    runs = sorted(p.name for p in sweep.iterdir() if p.is_dir())
    assert len(runs) == 6
    values = sorted(int(p.split("clip_percentile_")[-1]) for p in runs)
    assert values == [1, 10, 25, 50, 90, 100]
    text = (sweep / runs[0] / "config.gin").read_text()
    assert "WHAMDataset.root" in text and textwrap.dedent("AutoClip.clip_percentile") in text
