"""The one result-file writer and reader: layout, value encoding, round trip."""

from __future__ import annotations

import json
import math

import pytest

from bootsep.utils.results import MalformedResult, read_result, read_values, write_result


def test_layout_and_key_order_of_evaluate_and_separate_records(tmp_path):
    meta = {"sample_rate": 8000, "estimate_paths": {"vocals": "estimates/a/vocals.wav"}}
    path = write_result(tmp_path / "results" / "a.json", "a",
                        {"vocals": {"SI-SDR": [1.5, float("nan")], "v4-frames": [3]}}, meta,
                        permutation=[[0], [0]])
    text = path.read_text()
    assert text == json.dumps({"item": "a",
                               "sources": {"vocals": {"SI-SDR": [1.5, None], "v4-frames": [3]}},
                               "permutation": [[0], [0]], "metadata": meta}, indent=2) + "\n"
    seg = write_result(tmp_path / "s.json", "s", {}, {"offset": 0.0},
                       confidence={"combined": 0.3, "fixed_posterior": None})
    assert list(json.loads(seg.read_text())) == ["item", "sources", "confidence", "metadata"]
    seg = write_result(tmp_path / "t.json", "t", {"v": {"SNR": [1.0]}}, {}, confidence={},
                       permutation=[[0]])
    assert list(json.loads(seg.read_text())) == ["item", "sources", "confidence", "permutation",
                                                 "metadata"]


def test_undefined_and_infinite_values_round_trip(tmp_path):
    values = [2.0, float("nan"), -math.inf, math.inf, None]
    path = write_result(tmp_path / "x.json", "x", {"vocals": {"SI-SDR": values}}, {})
    raw = json.loads(path.read_text())["sources"]["vocals"]["SI-SDR"]
    assert raw == [2.0, None, "-inf", "inf", None]  # strict JSON: no NaN/Infinity tokens
    item, sources, meta = read_result(path)
    got = sources["vocals"]["SI-SDR"]
    assert item == "x" and meta == {}
    assert got[0] == 2.0 and math.isnan(got[1]) and got[2:4] == [-math.inf, math.inf]
    assert math.isnan(got[4])


def test_reader_refuses_what_is_not_a_result(tmp_path):
    cases = {"broken": "{", "list": "[1]", "flat": json.dumps({"vocals": {"SI-SDR": [1.0]}}),
             "empty": json.dumps({"sources": {}}),
             "text": json.dumps({"sources": {"v": {"SI-SDR": ["high"]}}})}
    messages = {"broken": "not valid JSON", "list": "expected an object",
                "flat": "no 'sources' object", "empty": "no sources",
                "text": "v/SI-SDR holds a non-numeric value 'high'"}
    for name, text in cases.items():
        (tmp_path / f"{name}.json").write_text(text)
        with pytest.raises(MalformedResult, match=messages[name]):
            read_result(tmp_path / f"{name}.json")
    assert read_values(3) == [3.0]
    with pytest.raises(MalformedResult):
        read_values([True])
