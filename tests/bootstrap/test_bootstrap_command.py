"""``main.py bootstrap``: plain stereo 44.1 kHz mixtures (no stems) + a small labelled test set
in, a student checkpoint, the comparison table and the confidence plot out; a run killed
mid-way resumes without redoing finished stages; bad input is one ``error:`` line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import ROOT

# a test-size recipe: the tiny recipe with tiny songs, model and budget
TEST_BINDINGS = [
    "STFT.window_length = 256", "STFT.hop_length = 64",
    "OpenUnmix.num_features = 129", "OpenUnmix.hidden_size = 8", "OpenUnmix.num_layers = 1",
    "train.batch_size = 2", "train.epoch_length = 2", "train.num_workers = 0",
    "separate.segment_length = 3.0", "separate.hop_length = 3.0", "separate.num_workers = 1",
    "separate.progress = False", "evaluate.num_workers = 1",
]


def _stereo_44k(x16: np.ndarray) -> np.ndarray:
    """(channels, samples) at 16 kHz -> (samples, 2) at 44.1 kHz with distinct channels."""
    import soxr

    mono = x16.mean(0)
    y = soxr.resample(mono, 16000, 44100)
    return np.stack([y, 0.8 * y + 0.01 * np.roll(y, 5)], axis=1).astype(np.float32)


@pytest.fixture(scope="module")
def music(tmp_path_factory):
    """6 plain stereo 44.1 kHz mixtures in nested folders + 2 labelled test songs (song layout)."""
    from bootsep.data.audio import load_audio
    from bootsep.data.demo import generate_demo_dataset

    base = tmp_path_factory.mktemp("music")
    gen = base / "generated"
    generate_demo_dataset(gen, n_train=6, n_valid=0, n_test=2, duration=3.0, seed=3,
                          progress=False)
    plain = base / "my music"
    for i, song in enumerate(sorted((gen / "train").iterdir())):
        dest = plain / f"album{i % 2}" / f"{song.name}.wav"
        dest.parent.mkdir(parents=True, exist_ok=True)
        sf.write(dest, _stereo_44k(load_audio(song / "mixture.wav")), 44100)
    test = base / "labelled"
    for song in sorted((gen / "test").iterdir()):
        for stem in ("mixture", "vocals", "accompaniment"):
            (test / song.name).mkdir(parents=True, exist_ok=True)
            sf.write(test / song.name / f"{stem}.wav", _stereo_44k(load_audio(song / f"{stem}.wav")),
                     44100)
    return {"plain": plain, "test": test, "base": base}


def _cmd(run, music, *extra):
    cmd = [sys.executable, "main.py", "bootstrap", "-c", "musdb/recipes/tiny.gin",
           "--unlabelled", str(music["plain"]), "--test", str(music["test"]), "-o", str(run)]
    for b in TEST_BINDINGS:
        cmd += ["-b", b]
    return cmd + list(extra)


def _env():
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")


def _stages(run: Path) -> dict:
    try:
        return json.loads((run / "bootstrap.json").read_text())["stages"]
    except (OSError, ValueError, KeyError):
        return {}


@pytest.mark.slow
def test_bootstrap_from_plain_mixtures_kill_and_resume(music, tmp_path):
    run = tmp_path / "run"
    # a budget long enough to kill the student's training after its first epoch
    proc = subprocess.Popen(_cmd(run, music, "-b", "train.num_epochs = 200"), cwd=ROOT,
                            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    deadline = time.time() + 120
    latest = run / "student" / "checkpoints" / "latest.pth"
    while time.time() < deadline and proc.poll() is None:
        if "organize" in _stages(run) and latest.is_file():
            break
        time.sleep(0.05)
    assert proc.poll() is None, proc.stdout.read()[-3000:]
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    assert set(_stages(run)) == {"separate", "organize"}
    finished = sorted((run / "separate" / "data" / "results").glob("*.json"))
    finished += sorted((run / "organize" / "data").rglob("*.wav")) + [run / "organize" / "data" / "manifest.csv"]
    assert len(list((run / "separate" / "data" / "results").glob("*.json"))) == 6
    mtimes = [p.lstat().st_mtime_ns for p in finished]

    r = subprocess.run(_cmd(run, music, "-b", "train.num_epochs = 3"), cwd=ROOT, env=_env(),
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, (r.stdout[-3000:], r.stderr[-3000:])
    assert "separate already finished" in r.stdout and "organize already finished" in r.stdout
    assert [p.lstat().st_mtime_ns for p in finished] == mtimes      # nothing finished redone
    assert r.stdout.strip().splitlines()[-1] == str(run / "comparison.md")
    assert latest.is_file()
    # the student resumed from the killed run's checkpoint instead of starting over
    train_log = "".join(p.read_text() for p in (run / "student" / "logs").glob("*.log"))
    assert "resuming from" in train_log

    table = json.loads((run / "comparison.json").read_text())
    assert list(table) == ["mixture", "teacher", "student"]
    assert (run / "confidence_vs_sisdr.png").is_file()
    md = (run / "comparison.md").read_text()
    assert "| student |" in md and "test segments: Spearman rho" in md
    for stage in ("separate", "organize", "student", "teacher"):
        assert (run / stage / "config.gin").is_file() and (run / stage / "provenance.json").is_file()
        assert list((run / stage / "logs").glob("*.log")), stage
    # the test songs were read as stereo 44.1 kHz files and scored per channel at 16 kHz
    item = json.loads(next((run / "student" / "results").glob("*.json")).read_text())
    assert item["metadata"]["channels"] == 2 and item["metadata"]["sample_rate"] == 16000
    seg = json.loads(finished[0].read_text())
    assert seg["metadata"]["channels"] == 2 and seg["sources"] == {}   # no stems: no metrics

    # a third run finds everything finished (compare is rebuilt) and redoes nothing
    ckpt_mtime = latest.stat().st_mtime_ns
    r3 = subprocess.run(_cmd(run, music, "-b", "train.num_epochs = 3"), cwd=ROOT, env=_env(),
                        capture_output=True, text=True, timeout=300)
    assert r3.returncode == 0, r3.stderr[-3000:]
    assert "train already finished" in r3.stdout and "evaluate already finished" in r3.stdout
    assert latest.stat().st_mtime_ns == ckpt_mtime

    # the student's folder is an ordinary trained run: `separate` with its config uses the student
    from bootsep.cli.main import main

    song = sorted(music["test"].rglob("mixture.wav"))[0]
    assert main(["separate", "-c", str(run / "student" / "config.gin"), "--input", str(song),
                 "--output", str(tmp_path / "mine")]) == 0
    info = json.loads((tmp_path / "mine" / "separate.json").read_text())
    assert str(latest.resolve()) in json.dumps(info)
    assert sf.info(str(tmp_path / "mine" / "vocals.wav")).samplerate == 44100


def _main(argv, capsys):
    from bootsep.cli.main import main

    code = main(argv)
    return code, capsys.readouterr().err.strip().splitlines()


def test_bad_input_is_one_error_line(music, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    base = ["bootstrap", "-c", "musdb/recipes/tiny.gin", "-o", str(tmp_path / "run")]
    empty = tmp_path / "empty"
    empty.mkdir()
    cases = {
        "folder not found": base + ["--unlabelled", str(tmp_path / "nowhere")],
        "no audio files": base + ["--unlabelled", str(empty)],
        "no reference stems": base + ["--unlabelled", str(music["plain"]),
                                      "--test", str(music["plain"])],
        "needs --unlabelled": base,
        "unknown stage": base + ["--unlabelled", str(music["plain"]), "--stages", "fly"],
        "needs --test": base + ["--unlabelled", str(music["plain"]), "--stages", "evaluate"],
    }
    for expected, argv in cases.items():
        code, err = _main(argv, capsys)
        assert code == 2, (expected, err)
        assert len(err) == 1 and err[0].startswith("error: ") and expected in err[0], err
    assert not (tmp_path / "run" / "separate").exists()   # nothing started


def test_stages_subset_needs_the_earlier_stages(music, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    code, err = _main(["bootstrap", "-c", "musdb/recipes/tiny.gin", "--unlabelled",
                       str(music["plain"]), "-o", str(tmp_path / "run"), "--stages", "train"],
                      capsys)
    assert code == 2 and "needs stage separate" in err[0], err


def test_a_slurm_array_task_separates_its_shard_and_the_plain_rerun_finishes(music, tmp_path,
                                                                             capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    run = tmp_path / "run"
    argv = ["bootstrap", "-c", "musdb/recipes/tiny.gin", "--unlabelled", str(music["plain"]),
            "-o", str(run), "--stages", "separate", "organize"]
    for b in TEST_BINDINGS:
        argv += ["-b", b]
    results = run / "separate" / "data" / "results"
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "1")
    monkeypatch.setenv("SLURM_ARRAY_TASK_COUNT", "2")
    code, err = _main(argv, capsys)
    assert code == 0, err
    mine = sorted(results.glob("*.json"))
    assert len(mine) == 3                                     # its half of the 6 recordings
    assert _stages(run) == {}                                 # the stage is not finished
    assert not (run / "organize" / "data").exists()           # and nothing after it ran
    mtimes = [p.stat().st_mtime_ns for p in mine]

    monkeypatch.delenv("SLURM_ARRAY_TASK_ID")
    monkeypatch.delenv("SLURM_ARRAY_TASK_COUNT")
    import gin

    gin.clear_config()
    code, err = _main(argv, capsys)
    assert code == 0, err
    assert len(list(results.glob("*.json"))) == 6
    assert [p.stat().st_mtime_ns for p in mine] == mtimes     # the shard's segments are kept
    assert set(_stages(run)) == {"separate", "organize"}


def test_collection_names_come_from_folders_or_name_equals_dir(tmp_path):
    from bootsep.config.bootstrap import _collections, _teacher_bindings
    from bootsep.utils.errors import UserError

    for d in ("a/train", "b/train", "c"):
        (tmp_path / d).mkdir(parents=True)
    got = _collections([str(tmp_path / "a/train"), str(tmp_path / "b/train"),
                        f"mine={tmp_path / 'c'}"])
    assert got == {"train": str(tmp_path / "a/train"), "train_2": str(tmp_path / "b/train"),
                   "mine": str(tmp_path / "c")}
    with pytest.raises(UserError, match="given twice"):
        _collections([f"x={tmp_path / 'a/train'}", f"x={tmp_path / 'c'}"])
    with pytest.raises(UserError, match="not a separator config"):
        _teacher_bindings(str(tmp_path / "c"))             # a folder without a checkpoint
    ckpt = tmp_path / "r" / "student" / "checkpoints" / "latest.pth"
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"")
    files, lines = _teacher_bindings(str(tmp_path / "r"))  # a previous bootstrap RUN
    assert files == [] and any(str(ckpt) in line for line in lines)
