"""Bad input ends in one clear line and exit code 2; --help lists the commands."""

from __future__ import annotations

from bootsep.cli.main import COMMANDS, main

from conftest import run_main


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: "), err
    assert "\n" not in err and "Traceback" not in err
    return err


def test_help_lists_every_command(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name, desc in COMMANDS.items():
        assert name in out and desc[:20] in out


def test_unknown_command(capsys, tmp_path):
    cfg = tmp_path / "x.gin"
    cfg.write_text("")
    assert main(["nosuch", "-c", str(cfg)]) == 2
    assert "nosuch" in _one_line_error(capsys)


def test_missing_config_file(capsys, tmp_path):
    assert main(["train", "-c", str(tmp_path / "missing.gin")]) == 2
    assert "missing.gin" in _one_line_error(capsys)


def test_gin_syntax_error_names_file_and_line(capsys, tmp_path):
    cfg = tmp_path / "bad.gin"
    cfg.write_text("train.batch_size = 2\ntrain.num_epochs = (1\n")
    assert main(["train", "-c", str(cfg), "-o", str(tmp_path / "run")]) == 2
    err = _one_line_error(capsys)
    assert "bad.gin" in err and "syntax" in err


def test_unknown_configurable_names_key_and_line(capsys, tmp_path):
    cfg = tmp_path / "bad.gin"
    cfg.write_text("train.batch_size = 2\nNoSuchThing.value = 3\n")
    assert main(["train", "-c", str(cfg), "-o", str(tmp_path / "run")]) == 2
    err = _one_line_error(capsys)
    assert "NoSuchThing" in err and "bad.gin:2" in err


def test_unknown_parameter(capsys, tmp_path):
    cfg = tmp_path / "bad.gin"
    cfg.write_text("train.not_a_parameter = 2\n")
    assert main(["train", "-c", str(cfg), "-o", str(tmp_path / "run")]) == 2
    assert "not_a_parameter" in _one_line_error(capsys)


def test_bad_bind_line(capsys, tmp_path):
    cfg = tmp_path / "ok.gin"
    cfg.write_text("")
    assert main(["train", "-c", str(cfg), "-b", "Nope.x = 1", "-o", str(tmp_path / "r")]) == 2
    assert "Nope" in _one_line_error(capsys)


def test_missing_required_binding(capsys, tmp_path):
    cfg = tmp_path / "empty.gin"
    cfg.write_text("train.batch_size = 2\n")
    assert main(["train", "-c", str(cfg), "-o", str(tmp_path / "run")]) == 2
    err = _one_line_error(capsys)
    assert "train.model" in err


def test_no_config_given(capsys):
    assert main(["train"]) == 2
    _one_line_error(capsys)


def test_no_run_folder(capsys, tmp_path):
    cfg = tmp_path / "c.gin"
    cfg.write_text("train.batch_size = 2\n")
    assert main(["train", "-c", str(cfg)]) == 2
    assert "-o" in _one_line_error(capsys)


def test_subprocess_exit_codes(tmp_path):
    """The documented outside interface: `python main.py nosuch -c x.gin` exits 2, one line."""
    r = run_main(["nosuch", "-c", "x.gin"])
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "error:" in r.stderr
    r = run_main(["train", "-c", str(tmp_path / "nope.gin")])
    assert r.returncode == 2 and "nope.gin" in r.stderr and "Traceback" not in r.stderr
    r = run_main(["--help"])
    assert r.returncode == 0 and "instantiate" in r.stdout
