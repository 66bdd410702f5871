"""comparison.md: per-song wins and spread, computed from the per-song scores."""

from __future__ import annotations

import json

import numpy as np

from bootsep.report.compare import compare


def _run(folder, vocals: dict[str, float], mix: dict[str, float]):
    (folder / "results").mkdir(parents=True)
    for item, v in vocals.items():
        rec = {"item": item, "sources": {"vocals": {
            "SI-SDR": [v, v], "SI-SDRi": [v - mix[item]] * 2, "MIX-SI-SDR": [mix[item]] * 2}}}
        (folder / "results" / f"{item}.json").write_text(json.dumps(rec))
    return folder


def test_wins_spread_and_gap_are_computed(tmp_path):
    mix = {"a": -1.0, "b": 0.0, "c": 1.0}
    teacher = {"a": 5.0, "b": 6.0, "c": 9.0}
    student = {"a": 6.0, "b": 7.0, "c": 8.0}      # beats the teacher on a and b only
    supervised = {"a": 8.0, "b": 9.0, "c": 10.0}
    runs = {"teacher": _run(tmp_path / "t", teacher, mix),
            "student": _run(tmp_path / "s", student, mix),
            "supervised": _run(tmp_path / "g", supervised, mix)}
    compare(runs, tmp_path, sources=["vocals"])
    md = (tmp_path / "comparison.md").read_text()
    # spread: sample std and range, from the data
    v = np.array(list(teacher.values()))
    assert (f"| teacher | {v.mean():.2f} ± {v.std(ddof=1):.2f} ({v.min():.2f} .. {v.max():.2f}, "
            "n = 3) |") in md
    # win matrix: row beats column, over the 3 shared songs
    assert "| row beats column | mixture | teacher | student | supervised |" in md
    assert "| student | 3 | 2 | – | 0 |" in md
    assert "| teacher | 3 | – | 1 | 0 |" in md
    assert "student beats teacher on 2 of 3 songs (vocals)." in md
    # the student (7.00) closes (7 - 6.67) / (9 - 6.67) = 14 % of the teacher-supervised gap
    gap = 100 * (np.mean(list(student.values())) - v.mean()) / (9.0 - v.mean())
    assert f"student closes {gap:.0f} % of the gap from teacher to supervised" in md


def test_one_song_reads_n_equals_1_not_nan(tmp_path):
    runs = {"x": _run(tmp_path / "x", {"a": 3.0}, {"a": 0.0}),
            "y": _run(tmp_path / "y", {"a": 4.0}, {"a": 0.0})}
    compare(runs, tmp_path, sources=["vocals"])
    md = (tmp_path / "comparison.md").read_text()
    assert "| x | 3.00 (n = 1) |" in md and "nan" not in md.lower()
    assert "y beats x on 1 of 1 songs (vocals)." in md
