import base64
import io
import json
import re

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from bootsep.report.aggregate import load_results
from bootsep.report.html import loudest_start, pick_examples, wav_data_uri, write_report_html

AUDIO_RE = re.compile(r'src="data:audio/wav;base64,([A-Za-z0-9+/=]+)"')


def _scores_with_vocals(vocal_sisdr: dict[str, float], acc: float = 5.0) -> dict:
    return {item: {"vocals": {"SI-SDR": [v, v], "SI-SDRi": [v + 6, v + 6]},
                   "accompaniment": {"SI-SDR": [acc - v, acc], "SI-SDRi": [1.0, 1.0]}}
            for item, v in vocal_sisdr.items()}


def _decode(b64: str):
    return sf.read(io.BytesIO(base64.b64decode(b64)), always_2d=True)


def _assert_self_contained(text: str):
    assert not re.search(r'(src|href)\s*=\s*["\']?\s*(https?:)?//', text, re.I)
    assert not re.search(r"url\(", text, re.I)
    assert "<script" not in text.lower() and "<link" not in text.lower()


def test_pick_examples_best_median_worst():
    vals = {"a": 3.0, "b": -1.0, "c": 7.5, "d": float("nan"), "e": 0.5, "f": 2.0}
    df = load_results_from(vals)
    source, ex = pick_examples(df)
    assert source == "vocals"
    # independent: sort finite values; lower median of 5 values is the 3rd
    ranked = sorted((v, k) for k, v in vals.items() if not np.isnan(v))
    assert [(e.roles, e.item) for e in ex] == [
        (["best"], ranked[-1][1]), (["median"], ranked[(len(ranked) - 1) // 2][1]),
        (["worst"], ranked[0][1])]
    assert [e.item for e in ex] == ["c", "f", "b"]
    assert ex[0].score == 7.5


def load_results_from(vals, sources=("vocals", "accompaniment")):
    rows = []
    for k, v in vals.items():
        for s in sources:
            rows.append({"item": k, "source": s, "SI-SDR": v if s == sources[0] else -v})
    return pd.DataFrame(rows)


def test_pick_examples_even_count_ties_few_items_and_no_vocals():
    _, ex = pick_examples(load_results_from({"a": 1.0, "b": 4.0, "c": 2.0, "d": 3.0}))
    assert [e.item for e in ex] == ["b", "c", "a"]  # lower median of [1,2,3,4] is 2 -> c
    _, ex = pick_examples(load_results_from({"a": 1.0, "b": 1.0, "c": 1.0}))
    assert [e.item for e in ex] == ["c", "b", "a"]  # ties broken by item name
    _, ex = pick_examples(load_results_from({"a": 1.0}))
    assert [(e.roles, e.item) for e in ex] == [(["best", "median", "worst"], "a")]
    _, ex = pick_examples(load_results_from({"a": 1.0, "b": 2.0}))
    assert [(e.roles, e.item) for e in ex] == [(["best"], "b"), (["median", "worst"], "a")]
    # no 'vocals': rank by the first source alphabetically (bass), not drums
    df = load_results_from({"a": 1.0, "b": 5.0, "c": 3.0}, sources=("drums", "bass"))
    source, ex = pick_examples(df)
    assert source == "bass"
    assert [e.item for e in ex] == ["a", "c", "b"]  # bass SI-SDR is -value
    assert pick_examples(df.drop(columns=["SI-SDR"]))[1] == []


def test_loudest_start_matches_brute_force():
    rng = np.random.default_rng(0)
    sr = 100
    x = 0.1 * rng.standard_normal(1000)
    x[613:700] *= 8
    win = 150
    brute = max(range(len(x) - win + 1), key=lambda i: float(np.sum(x[i:i + win] ** 2)))
    assert loudest_start(x, sr, win / sr) == pytest.approx(brute / sr)
    assert loudest_start(x[:100], sr, 2.0) == 0.0


def test_wav_data_uri_resamples_to_16k_pcm16_and_avoids_clipping():
    sr = 44100
    t = np.arange(sr) / sr
    uri = wav_data_uri(3.0 * np.sin(2 * np.pi * 300 * t), sr)
    assert uri.startswith("data:audio/wav;base64,")
    raw = base64.b64decode(uri.split(",", 1)[1])
    info = sf.info(io.BytesIO(raw))
    assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
    y, _ = _decode(uri.split(",", 1)[1])
    assert 0.95 < np.max(np.abs(y)) <= 1.0  # scaled down, not clipped
    assert abs(len(y) - 16000) <= 2
    y8, sr8 = _decode(wav_data_uri(0.5 * np.sin(2 * np.pi * 300 * t[:8000]), 8000).split(",")[1])
    assert sr8 == 8000 and np.max(np.abs(y8)) == pytest.approx(0.5, abs=1e-3)  # not boosted


def test_report_is_self_contained_with_examples(make_run):
    vals = {"s0": 1.0, "s1": 4.0, "s2": -2.0, "s3": 2.5, "s4": 0.0}
    # best s1, median (lower median of 5 -> 1.0) s0, worst s2; s3 gets audio it won't need
    run = make_run(_scores_with_vocals(vals), audio_items=("s0", "s1", "s2", "s3"),
                   seconds=3.0, burst_at=1.7,
                   provenance={"command": "bootsep evaluate -c x.gin", "git": {"commit": "abc123"},
                               "versions": {"torch": "2.13"}, "device": "cpu"})
    df = load_results(run / "results")
    (run / "p.png").write_bytes(b"\x89PNG\r\n\x1a\nfake")
    out = write_report_html(run, df, "CARD <TEXT>", [run / "p.png"], audio_seconds=1.0)
    assert out == run / "report.html"
    text = out.read_text(encoding="ascii")
    _assert_self_contained(text)
    assert "CARD &lt;TEXT&gt;" in text
    assert "data:image/png;base64," in text
    for role, item in (("best", "s1"), ("median", "s0"), ("worst", "s2")):
        assert f"<h3>{role}: {item}</h3>" in text
    assert "s3</h3>" not in text
    # mixture + 2 estimates + 2 references per example
    clips = AUDIO_RE.findall(text)
    assert len(clips) == 3 * 5
    for b64 in clips:
        y, sr = _decode(b64)
        assert sr == 16000 and y.shape[1] == 1 and abs(len(y) - 16000) <= 1
    # the clip sits on the loud burst (1.7 s .. 2.7 s) of the mixture
    assert "clip starts at 1.7 s" in text
    mix, _ = _decode(clips[0])
    assert np.sqrt(np.mean(mix ** 2)) > 0.3
    # provenance table
    assert "bootsep evaluate -c x.gin" in text and "git.commit" in text and "abc123" in text
    assert len(out.read_bytes()) < 5_000_000
    assert [p.name for p in run.iterdir() if p.name.startswith(".")] == []


def test_missing_audio_becomes_note(make_run):
    run = make_run(_scores_with_vocals({"s0": 1.0, "s1": 2.0, "s2": 3.0}),
                   audio_items=("s0", "s2"))
    meta = json.loads((run / "results" / "s2.json").read_text())
    (run / meta["metadata"]["estimate_paths"]["vocals"]).unlink()
    (run / "provenance.json").write_text("{not json")
    df = load_results(run / "results")
    text = write_report_html(run, df, "card", [run / "missing.png"], audio_seconds=0.5)\
        .read_text()
    # s1 has no audio metadata; s2 lost one estimate; the missing plot is a note too
    assert text.count("no path recorded") == 5
    assert text.count("audio not available") == 1
    assert "plot not available" in text
    assert "provenance.json unreadable" in text
    assert len(AUDIO_RE.findall(text)) == 5 + 4


def test_metadata_reread_when_attrs_lost_and_mixture_missing(make_run):
    run = make_run(_scores_with_vocals({"s0": 1.0}), audio_items=("s0",))
    df = load_results(run / "results")
    meta = df.attrs["metadata"]["s0"]
    df = pd.DataFrame(df.to_dict("records"))  # no attrs
    assert not df.attrs
    import os

    os.unlink(meta["mixture_path"])
    text = write_report_html(run, df, "card", [], audio_seconds=0.5).read_text()
    assert "mixture unreadable, clips start at 0 s" in text
    assert len(AUDIO_RE.findall(text)) == 4  # estimates + references still play


def test_long_audio_page_stays_under_5mb(make_run):
    """Default 10 s clips of 3 examples x 5 players would be ~6.4 MB; the budget shortens
    them so the page stays under 5 MB."""
    run = make_run(_scores_with_vocals({"s0": 1.0, "s1": 2.0, "s2": 3.0}),
                   audio_items=("s0", "s1", "s2"), seconds=12.0, sr=22050, burst_at=4.0)
    df = load_results(run / "results")
    out = write_report_html(run, df, "card", [])
    size = len(out.read_bytes())
    clips = AUDIO_RE.findall(out.read_text())
    assert len(clips) == 15
    y, sr = _decode(clips[0])
    assert sr == 16000 and 6.0 <= len(y) / sr < 10.0
    assert 4_000_000 < size < 5_000_000
    # with a bigger budget the full 10 s clips are used
    out = write_report_html(run, df, "card", [], max_audio_bytes=10_000_000)
    y, sr = _decode(AUDIO_RE.findall(out.read_text())[0])
    assert len(y) == 10 * 16000
