"""Shards of separate (segment mode) and evaluate: parsing, the environment, disjoint and
complete shards, byte-identical results, organize's completeness check, the Slurm array job."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bootsep.bootstrap.organize import check_complete, organize
from bootsep.bootstrap.segments import find_recordings, plan_segments
from bootsep.bootstrap.separate import completeness, separate_segments
from bootsep.utils.errors import UserError
from bootsep.utils.shards import parse_shard, resolve_shard, shard_from_env, shard_of

from ._fakes import SoftBandSeparator, make_song_folder, run_cli

SR = 16000
ROOT = Path(__file__).resolve().parents[2]


def test_parse_shard_and_bad_values():
    assert parse_shard("2/3") == (2, 3) and parse_shard(" 0 / 1 ") == (0, 1)
    assert parse_shard(None) == (0, 1) and parse_shard((1, 4)) == (1, 4)
    for bad in ["3/3", "-1/3", "1/0", "a/b", "1", "1/2/3", "", "1.5/3"]:
        with pytest.raises(UserError, match="need 0 <= I < N|expected I/N"):
            parse_shard(bad)


def test_shard_from_the_environment():
    assert shard_from_env({}) is None
    slurm = {"SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_COUNT": "4"}
    assert shard_from_env(slurm)[0] == (2, 4)
    # an array numbered 1-4 (or 10-16 in steps of 2) still gives shards 0..N-1
    assert shard_from_env({**slurm, "SLURM_ARRAY_TASK_MIN": "1"})[0] == (1, 4)
    assert shard_from_env({"SLURM_ARRAY_TASK_ID": "14", "SLURM_ARRAY_TASK_COUNT": "4",
                           "SLURM_ARRAY_TASK_MIN": "10", "SLURM_ARRAY_TASK_STEP": "2"})[0] == (2, 4)
    assert shard_from_env({"RANK": "1", "WORLD_SIZE": "2"})[0] == (1, 2)
    assert shard_from_env({"RANK": "0", "WORLD_SIZE": "1"}) is None
    with pytest.raises(UserError, match="SLURM_ARRAY_TASK_ID='x' is not an integer"):
        shard_from_env({**slurm, "SLURM_ARRAY_TASK_ID": "x"})
    with pytest.raises(UserError, match="need 0 <= I < N"):
        shard_from_env({"SLURM_ARRAY_TASK_ID": "4", "SLURM_ARRAY_TASK_COUNT": "4"})
    # --shard wins over the environment; 0/1 turns sharding off
    assert resolve_shard("0/1", slurm)[0] == (0, 1)
    assert resolve_shard(None, slurm) == ((2, 4), "SLURM_ARRAY_TASK_ID=2 of "
                                                  "SLURM_ARRAY_TASK_COUNT=4 (first 0, step 1)")


@pytest.mark.parametrize("n_items,n", [(0, 3), (1, 3), (7, 3), (10, 1), (10, 10), (5, 8)])
def test_shards_are_disjoint_cover_everything_and_follow_the_sorted_order(n_items, n):
    names = [f"x{(7 * i) % 11:02d}-{i}" for i in range(n_items)]  # not given in sorted order
    parts = [shard_of(names, (i, n)) for i in range(n)]
    flat = [k for p in parts for k in p]
    assert sorted(flat) == list(range(n_items))        # disjoint, and the union is everything
    ranked = sorted(names)
    for i, p in enumerate(parts):
        assert {names[k] for k in p} == set(ranked[i::n])
    assert max(map(len, parts)) - min(map(len, parts)) <= 1


def _config(tmp_path, songs) -> Path:
    cfg = tmp_path / "sep.gin"
    cfg.write_text(textwrap.dedent(f"""
        STFT.window_length = 512
        STFT.hop_length = 128
        primitive_clustering.sample_rate = 16000
        primitive_clustering.stft = @STFT()
        primitive_clustering.pitch = None
        primitive_clustering.device = 'cpu'
        separate.separator = @primitive_clustering()
        separate.folders = {{'mine': '{songs}'}}
        separate.segment_length = 1.0
        separate.hop_length = 0.5
        separate.num_workers = 1
        separate.progress = False
        separate.confidence = ['combined', 'fixed_posterior']
    """))
    return cfg


def _files(folder: Path) -> dict:
    """JSONs as bytes; WAVs as their samples (libsndfile stamps float WAVs' PEAK chunk with the
    time of writing, so their bytes differ between any two runs)."""
    import soundfile as sf

    return {str(p.relative_to(folder)): p.read_bytes() if p.suffix == ".json"
            else sf.read(str(p), dtype="float32")[0].tobytes()
            for sub in ("results", "skipped", "audio") for p in sorted((folder / sub).rglob("*"))
            if p.is_file()}


def test_three_shard_processes_equal_one_unsharded_run_byte_for_byte(tmp_path):
    """3 shards run as 3 concurrent processes into one folder give exactly the files of one
    unsharded run (result and skipped JSONs byte for byte, estimates sample for sample), and
    the same separate.json."""
    songs = make_song_folder(tmp_path / "songs", n_songs=3, seconds=2.0, quiet=(1,))
    cfg = _config(tmp_path, songs)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("SLURM_ARRAY") and k not in ("RANK", "WORLD_SIZE")}
    env.update(OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT / "src"))

    def launch(args):
        return subprocess.Popen([sys.executable, str(ROOT / "main.py"), "separate", "-c", str(cfg),
                                 *args], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    procs = [launch(["--output", str(tmp_path / "sharded"), "--shard", f"{i}/3"])
             for i in range(3)]
    procs.append(launch(["--output", str(tmp_path / "whole")]))
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, [e[-2000:] for _, e in outs]
    assert "(shard 1/3: 3 of 9 segments)" in outs[1][0]
    sharded, whole = _files(tmp_path / "sharded"), _files(tmp_path / "whole")
    assert len([k for k in whole if k.startswith("results/")]) == 6       # song1 is quiet
    assert len([k for k in whole if k.startswith("skipped/")]) == 3
    assert sharded.keys() == whole.keys() and sharded == whole
    a, b = (json.loads((tmp_path / d / "separate.json").read_text()) for d in ("sharded", "whole"))
    assert {**a, "output": None} == {**b, "output": None} and len(a["plan"]) == 9
    records = sorted(p.name for p in (tmp_path / "sharded" / "shards").iterdir())
    assert records == ["0-of-3.json", "1-of-3.json", "2-of-3.json"]
    done = [json.loads((tmp_path / "sharded" / "shards" / r).read_text()) for r in records]
    assert [d["status"] for d in done] == ["complete"] * 3
    assert sum(d["shard_segments"] for d in done) == 9
    assert completeness(tmp_path / "sharded")["missing"] == []


def test_organize_refuses_an_incomplete_sharded_output(tmp_path):
    songs = make_song_folder(tmp_path / "songs", n_songs=2, seconds=2.0)
    segs = plan_segments(find_recordings(songs), SR, 1.0, 0.5)
    out = tmp_path / "sep"
    for i in (0, 2):
        summary = separate_segments(SoftBandSeparator(SR), segs, out, shard=f"{i}/3",
                                    min_loudness=None, progress=False)
        assert summary["shard_segments"] == 2 and summary["separated"] == 2
    state = completeness(out)
    ranked = sorted(s.name for s in segs)
    assert state["planned"] == 6 and state["missing"] == ranked[1::3] and state["shards"] == {3: [1]}
    dest = tmp_path / "data"
    with pytest.raises(UserError, match=r"sep is incomplete: 2 of 6 planned segments have no "
                                        r"result \(shards 1/3 unfinished; missing .*\); wait for "
                                        r"those shards .*--allow-incomplete"):
        organize(out, dest, measure="combined", bin="all")
    assert not dest.exists()
    summary = organize(out, dest, measure="combined", bin="all", allow_incomplete=True)
    assert summary["segments_selected"] == 4
    # the missing shard finishes: the folder is complete
    separate_segments(SoftBandSeparator(SR), segs, out, shard=(1, 3), min_loudness=None,
                      progress=False)
    assert check_complete(out)["missing"] == []
    organize(out, tmp_path / "data2", measure="combined", bin="all")
    # the same folder can be finished by an unsharded rerun (nothing redone)
    again = SoftBandSeparator(SR)
    assert separate_segments(again, segs, out, min_loudness=None, progress=False)["done_before"] == 6
    assert again.calls == 0


def test_separate_cli_bad_shard_env_shard_and_slurm_array_job(tmp_path, capsys, monkeypatch):
    songs = make_song_folder(tmp_path / "songs", n_songs=1, seconds=2.0)
    cfg = _config(tmp_path, songs)
    for bad in ("3/3", "x"):
        rc, _, err = run_cli(["separate", "-c", cfg, "--output", tmp_path / "o", "--shard", bad],
                             capsys)
        assert rc == 2 and err.count("\n") == 1 and err.startswith("error: --shard ")
    assert not (tmp_path / "o").exists()
    # a Slurm array task separates its own shard without being told
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "1")
    monkeypatch.setenv("SLURM_ARRAY_TASK_COUNT", "2")
    rc, out, err = run_cli(["separate", "-c", cfg, "--output", tmp_path / "o"], capsys)
    assert rc == 0, err
    assert out.strip().endswith("(shard 1/2: 1 of 3 segments)")
    assert json.loads((tmp_path / "o" / "shards" / "1-of-2.json").read_text())["separated"] == 1
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "7")
    rc, _, err = run_cli(["separate", "-c", cfg, "--output", tmp_path / "o"], capsys)
    assert rc == 2 and "SLURM_ARRAY_TASK_ID=7 of SLURM_ARRAY_TASK_COUNT=2" in err
    monkeypatch.delenv("SLURM_ARRAY_TASK_ID")
    monkeypatch.delenv("SLURM_ARRAY_TASK_COUNT")
    # --launcher slurm writes the array job instead of separating
    run = tmp_path / "run"
    rc, out, err = run_cli(["separate", "-c", cfg, "-o", run, "--launcher", "slurm",
                            "--shards", "4", "--gpus-per-run", "0"], capsys)
    assert rc == 0, err
    script = run / "slurm" / "separate.sbatch"
    assert out.strip().splitlines()[-1] == str(script.resolve())
    text = script.read_text()
    assert "#SBATCH --array=0-3" in text and "--gres" not in text
    assert f"main.py separate -c {(run / 'slurm' / 'separate.gin').resolve()}" in text
    assert "separate.folders" in (run / "slurm" / "separate.gin").read_text()
    assert not (run / "separated").exists()
    rc, _, err = run_cli(["separate", "-c", cfg, "-o", run, "--launcher", "slurm"], capsys)
    assert rc == 2 and "--shards N" in err


def test_sharded_evaluate_equals_unsharded_and_analyzes_when_complete(tmp_path, tiny_demo):
    from bootsep.config.experiment import evaluate
    from bootsep.data.folder import StemFolderDataset
    from bootsep.primitives.oracle import IdealRatioMask

    ds = StemFolderDataset(tiny_demo, "test")
    whole, sharded = tmp_path / "whole", tmp_path / "sharded"
    info = evaluate(separator=IdealRatioMask(), dataset=ds, output_folder=str(whole),
                    progress=False, save_audio=False)
    assert info["pending"] == 0
    first = evaluate(separator=IdealRatioMask(), dataset=ds, output_folder=str(sharded),
                     progress=False, save_audio=False, shard="1/2")
    assert first["pending"] == 1 and len(list((sharded / "results").glob("*.json"))) == 1
    last = evaluate(separator=IdealRatioMask(), dataset=ds, output_folder=str(sharded),
                    progress=False, save_audio=False, shard=(0, 2))
    assert last["pending"] == 0
    read = lambda run: {p.name: p.read_bytes() for p in (run / "results").glob("*.json")}  # noqa: E731
    assert read(sharded) == read(whole) and len(read(whole)) == 2
    assert (sharded / "evaluation.json").read_bytes() == (whole / "evaluation.json").read_bytes()


def test_evaluate_cli_shards_and_analyzes_when_the_last_shard_ends(tmp_path, write_config,
                                                                   capsys, monkeypatch):
    cfg = write_config(**{"evaluate.separator": "@IdealRatioMask()", "IdealRatioMask.stft": "@STFT()",
                          "evaluate.save_audio": "False"})
    run = tmp_path / "run"
    rc, out, err = run_cli(["evaluate", "-c", cfg, "-o", run, "--shard", "1/2"], capsys)
    assert rc == 0, err
    assert out.strip().splitlines()[-1] == ("shard 1/2 evaluated; 1 items of other shards have no "
                                            "results yet: run `main.py analyze -o RUN` when all "
                                            "shards have finished")
    assert not (run / "report_card.txt").exists()
    monkeypatch.setenv("RANK", "0")            # torchrun's rank 0 of 2: the other shard
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setattr("bootsep.engine.distributed._CTX",
                        __import__("bootsep.engine.distributed", fromlist=["DistContext"])
                        .DistContext())        # no process group in this test
    rc, out, err = run_cli(["evaluate", "-c", cfg, "-o", run], capsys)
    assert rc == 0, err
    assert out.strip().splitlines()[-1] == str(run / "report_card.txt")
    assert len(list((run / "results").glob("*.json"))) == 2
    rc, _, err = run_cli(["evaluate", "-c", cfg, "-o", run, "--shard", "2/2"], capsys)
    assert rc == 2 and err.startswith("error: --shard 2/2: need 0 <= I < N")
