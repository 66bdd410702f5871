"""`main.py organize -c CFG --output DEST [--force]` (in process)."""

from __future__ import annotations

import json

from bootstrap._fakes import run_cli
from bootstrap.test_organize import fake_separated


def test_organize_cli_and_force(tmp_path, capsys):
    sep = fake_separated(tmp_path / "sep", {f"s{i}": i / 10 for i in range(10)})
    cfg = tmp_path / "o.gin"
    cfg.write_text(f"organize.separated = '{sep}'\norganize.measure = 'combined'\n"
                   "organize.bin = 'above_q4'\n")
    dest = tmp_path / "dest"
    rc, out, err = run_cli(["organize", "-c", cfg, "--output", dest], capsys)
    assert rc == 0, err
    assert out.strip().splitlines()[-1] == f"4 of 10 segments (combined percentile 60-100) in {dest}"
    assert sorted(p.name for p in (dest / "v").iterdir()) == ["s6.wav", "s7.wav", "s8.wav",
                                                              "s9.wav"]
    rc, _, err = run_cli(["organize", "-c", cfg, "--output", dest, "-b", "organize.bin = 'Q1'"],
                         capsys)
    assert rc == 2 and "--force" in err
    rc, _, err = run_cli(["organize", "-c", cfg, "--output", dest, "--force",
                          "-b", "organize.bin = 'Q1'"], capsys)
    assert rc == 0, err
    assert sorted(p.name for p in (dest / "v").iterdir()) == ["s0.wav", "s1.wav"]
    assert json.loads((dest / "organize.json").read_text())["bin"] == "Q1"
    rc, _, err = run_cli(["organize", "-c", cfg], capsys)
    assert rc == 2 and "needs a destination" in err
    rc, _, err = run_cli(["organize", "-c", cfg, "--output", tmp_path / "x",
                          "-b", "organize.measure = 'nope'"], capsys)
    assert rc == 2 and "'nope'" in err and not (tmp_path / "x").exists()


def test_hostile_manifest_row_is_one_error_line_and_nothing_changes(tmp_path, capsys):
    from bootstrap.test_organize import tree

    sep = fake_separated(tmp_path / "sep", {f"s{i}": i / 10 for i in range(10)})
    cfg = tmp_path / "o.gin"
    cfg.write_text(f"organize.separated = '{sep}'\norganize.measure = 'combined'\n")
    dest = tmp_path / "dest"
    rc, _, err = run_cli(["organize", "-c", cfg, "--output", dest], capsys)
    assert rc == 0, err
    (tmp_path / "victim.wav").write_text("precious")
    (dest / "up").symlink_to(tmp_path, target_is_directory=True)
    with open(dest / "manifest.csv", "a") as f:
        f.write("up/victim.wav,a,s9,train,0.5,50,/x\n")
    before = tree(tmp_path)
    rc, _, err = run_cli(["organize", "-c", cfg, "--output", dest, "--force",
                          "-b", "organize.bin = 'Q1'"], capsys)
    assert rc == 2 and err.count("\n") == 1
    assert err.startswith(f"error: {dest / 'manifest.csv'} lists 'up/victim.wav', which is not "
                          f"inside {dest} (its folder leads to {tmp_path} through a symlink); "
                          "refusing to touch anything")
    assert tree(tmp_path) == before
