"""`make demo`'s script (musdb/demo/paper_demo.sh: `main.py bootstrap` with the tiny recipe plus
a supervised reference), shrunk to tiny songs and models by its extra-config hook, runs every
step and ends with the comparison table's path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from conftest import ROOT

TINY = """
    generate_demo_dataset.n_train = 3
    generate_demo_dataset.n_valid = 1
    generate_demo_dataset.n_test = 2
    generate_demo_dataset.duration = 3.0
    generate_demo_dataset.progress = False
    STFT.window_length = 256
    STFT.hop_length = 64
    OpenUnmix.num_features = 129
    OpenUnmix.hidden_size = 8
    OpenUnmix.num_layers = 1
    train.num_epochs = 1
    train.epoch_length = 2
    train.batch_size = 2
    train.num_workers = 0
    separate.segment_length = 3.0
    separate.hop_length = 3.0
    separate.num_workers = 1
"""


def _run(tmp_path, env):
    e = dict(os.environ)
    e.update(env)
    return subprocess.run(["sh", "musdb/demo/paper_demo.sh"], cwd=ROOT, env=e,
                          capture_output=True, text=True, timeout=900)


@pytest.mark.slow
def test_paper_demo_runs_every_step_and_prints_the_comparison_last(tmp_path):
    extra = tmp_path / "tiny.gin"
    extra.write_text(textwrap.dedent(TINY))
    runs = tmp_path / "runs"
    env = {"PY": sys.executable, "BOOTSEP_DEMO_RUNS": str(runs),
           "BOOTSEP_DEMO_ROOT": str(tmp_path / "demo"),
           "BOOTSEP_DEMO_UNLABELLED": str(tmp_path / "unlabelled"),
           "BOOTSEP_DEMO_EXTRA_CONFIG": str(extra), "OMP_NUM_THREADS": "1"}
    r = _run(tmp_path, env)
    assert r.returncode == 0, (r.stdout[-3000:], r.stderr[-3000:])
    assert r.stdout.strip().splitlines()[-1] == str(runs / "comparison.md")

    table = json.loads((runs / "comparison.json").read_text())
    assert list(table) == ["mixture", "ensemble", "bootstrapped", "supervised"]
    for system in table.values():
        assert set(system) == {"vocals", "accompaniment"}
        for source in system.values():
            assert set(source) == {"SI-SDR", "SI-SDRi"}
    assert (runs / "confidence_vs_sisdr.png").is_file()
    md = (runs / "comparison.md").read_text()
    assert "| bootstrapped |" in md and "Spearman rho" in md
    # 3 training + 3 unlabelled songs of 3 s: one segment each; organize keeps the top 80 %
    assert len(list((runs / "separate" / "data" / "results").glob("*.json"))) == 6
    manifest = (runs / "organize" / "data" / "manifest.csv").read_text().splitlines()
    assert len(manifest) == 1 + 2 * 5                     # header + 2 sources x 5 segments
    # the student trained on the organized estimates only; the supervised model on stems
    assert "BootstrappedDataset" in (runs / "student" / "config.gin").read_text()
    assert "BootstrappedDataset" not in (runs / "supervised" / "config.gin").read_text()

    # rerunning resumes: nothing finished is redone
    results = sorted((runs / "separate" / "data" / "results").glob("*.json"))
    results += sorted((runs / "student" / "results").glob("*.json"))
    mtimes = [p.stat().st_mtime_ns for p in results]
    r2 = _run(tmp_path, env)
    assert r2.returncode == 0, r2.stderr[-3000:]
    assert r2.stdout.strip().splitlines()[-1] == str(runs / "comparison.md")
    assert [p.stat().st_mtime_ns for p in results] == mtimes
    assert "separate already finished" in r2.stdout and "train already finished" in r2.stdout


def _chorales(root, sr=16000):
    """A tiny dev-chorale-shaped set: ROOT/{train,test}/<song>/{mixture,vocals,accompaniment}.wav
    (stereo) and a setup.yaml naming one training song as validation; a pool of 2 songs."""
    from ._fakes import make_song_folder

    make_song_folder(root / "chorales" / "train", n_songs=3, seconds=3.0, sr=sr, channels=2)
    make_song_folder(root / "chorales" / "test", n_songs=2, seconds=3.0, sr=sr, channels=2)
    (root / "chorales" / "setup.yaml").write_text("validation_tracks:\n- song1\n")
    make_song_folder(root / "pool", n_songs=2, seconds=3.0, sr=sr, channels=2)
    return root / "chorales", root / "pool"


def test_chorales_demo_names_a_missing_folder_and_exits_2(tmp_path):
    e = dict(os.environ, PY=sys.executable, BOOTSEP_CHORALES=str(tmp_path / "nowhere"),
             BOOTSEP_DEMO_RUNS=str(tmp_path / "runs"))
    r = subprocess.run(["sh", "musdb/demo/chorales_demo.sh"], cwd=ROOT, env=e,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert r.stderr.startswith("error: ") and str(tmp_path / "nowhere" / "train") in r.stderr
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_chorales_demo_links_the_labelled_splits_and_compares_on_stereo_test_songs(tmp_path):
    chorales, pool = _chorales(tmp_path)
    extra = tmp_path / "tiny.gin"
    extra.write_text(textwrap.dedent(TINY))
    runs = tmp_path / "runs"
    e = dict(os.environ, PY=sys.executable, BOOTSEP_CHORALES=str(chorales),
             BOOTSEP_CHORALES_POOLS=str(pool), BOOTSEP_DEMO_RUNS=str(runs),
             BOOTSEP_DEMO_EXTRA_CONFIG=str(extra), OMP_NUM_THREADS="1")
    r = subprocess.run(["sh", "musdb/demo/chorales_demo.sh"], cwd=ROOT, env=e,
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, (r.stdout[-3000:], r.stderr[-3000:])
    assert r.stdout.strip().splitlines()[-1] == str(runs / "comparison.md")
    songs = runs / "songs"
    assert sorted(p.name for p in (songs / "train").iterdir()) == ["song0", "song2"]
    assert [p.name for p in (songs / "valid").iterdir()] == ["song1"]
    assert (songs / "test" / "song0").resolve() == (chorales / "test" / "song0").resolve()
    # unlabelled: the 2 training songs + the 2 pool songs, one 3 s segment per channel-song
    assert len(list((runs / "separate" / "data" / "results").glob("*.json"))) == 4
    table = json.loads((runs / "comparison.json").read_text())
    assert list(table) == ["mixture", "ensemble", "bootstrapped", "supervised"]
    assert "on the dev chorales" in (runs / "comparison.md").read_text()
    # the labelled songs were linked, never copied
    entries = [p for split in ("train", "valid", "test") for p in (songs / split).iterdir()]
    assert len(entries) == 5 and all(p.is_symlink() for p in entries)
