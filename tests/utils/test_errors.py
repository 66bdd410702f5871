"""One error line for a user mistake: ``report`` and ``run_main`` (the bench scripts' entry)."""

import pytest

from bootsep.utils.errors import UserError, report, run_main


def test_report_prints_one_line_and_returns_2(capsys):
    assert report(UserError("file x.wav:\n  is   not audio")) == 2
    assert capsys.readouterr().err == "error: file x.wav: is not audio\n"


def test_run_main_turns_user_errors_into_exit_2_and_passes_others(capsys):
    def bad():
        raise UserError("--student 'foo': give NAME=CHECKPOINT")

    assert run_main(bad) == 2
    assert capsys.readouterr().err.startswith("error: --student 'foo'")
    assert run_main(lambda: None) == 0 and run_main(lambda: 3) == 3

    def bug():
        raise KeyError("a programming error keeps its traceback")

    with pytest.raises(KeyError):
        run_main(bug)
