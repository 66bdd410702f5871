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


# ---------------------------------------------------------------------------------------------
# what the run did: model/checkpoint summary, training curves, per-item SI-SIR/SI-SAR,
# provenance table with the final status, linked audio


def _trained_run(make_run, lineage=True):
    import torch

    from bootsep.engine.checkpoint import save_checkpoint

    scores = {f"s{i}": {s: {"SI-SDR": [v, v], "SI-SIR": [v + 10, v + 10], "SI-SAR": [v + 1, v + 1],
                            "SI-SDRi": [v + 6, v + 6]} for s in ("vocals", "accompaniment")}
              for i, v in enumerate([1.0, 4.0, -2.0])}
    prov = {"invocations": [{"command": "all", "argv": ["main.py", "all", "-b", "a = 1"],
                             "start": "2026-01-01T00:00:00", "end": None, "status": "running",
                             "git": {"commit": "0123456789abcdef", "dirty": True},
                             "device": {"cuda": False, "cpu_count": 2},
                             "versions": {"torch": "2.13"}}]}
    run = make_run(scores, audio_items=("s0", "s1", "s2"), seconds=2.0, provenance=prov)
    history = [{"epoch": e, "iteration": 10 * e, "lr": 1e-3 / e,
                "train": {"loss": 1.0 / e}, "validation": {"loss": 1.1 / e + (e == 3), "SI-SDR": e}}
               for e in (1, 2, 3)]
    state = {"lstm.weight": torch.zeros(7, 5), "bn.weight": torch.zeros(4),
             "bn.running_mean": torch.zeros(4), "bn.num_batches_tracked": torch.tensor(3)}
    gin_text = ("DEMO_ROOT = @demo_root/env_path()\n"
                "demo_root/env_path.name = 'BOOTSEP_DEMO_ROOT'\n"
                "train/StemFolderDataset.root = %DEMO_ROOT\n"
                "train/StemFolderDataset.split = 'train'\n"
                "train/StemFolderDataset.cache = None\n"
                "train/StemFolderDataset.mono = True\n"
                "test/StemFolderDataset.split = 'test'\n")
    ckpt = {"model": {"class": "bootsep.models.recurrent.Chimera", "args": {"hidden_size": 8},
                      "state_dict": state},
            "history": history, "epoch": 3, "num_epochs": 5, "best_val_loss": 0.55,
            "gin_config": gin_text}
    save_checkpoint(run / "checkpoints" / "latest.pth", ckpt)
    save_checkpoint(run / "checkpoints" / "best.pth", dict(ckpt, history=history[:2], epoch=2))
    (run / "evaluation.json").write_text(json.dumps({
        "separator": "DeepMaskSeparator", "checkpoint": str(run / "checkpoints" / "best.pth"),
        "checkpoint_epoch": 2, "dataset": "StemFolderDataset(split='test')"}))
    if lineage:
        (run / "lineage.json").write_text(json.dumps({
            "init_from_checkpoint": "/runs/parent/checkpoints/best.pth", "parent_epoch": 9,
            "parent_model": "bootsep.models.recurrent.Chimera"}))
    return run


def test_report_says_what_the_run_did(make_run):
    run = _trained_run(make_run)
    df = load_results(run / "results")
    text = write_report_html(run, df, "card", [], audio_seconds=0.5).read_text()
    # model / checkpoint summary
    assert '<h2 id="model">Model and checkpoint</h2>' in text
    assert "Chimera" in text and "hidden_size=8" in text
    assert "<td>39</td>" in text  # 7*5 + 4 trained values; running stats are not parameters
    assert "checkpoints/best.pth (epoch 2)" in text
    assert "3 of 5 configured" in text and "0.55 at epoch 2" in text
    assert "train/StemFolderDataset.root = %DEMO_ROOT" in text
    assert "demo_root/env_path.name = &#x27;BOOTSEP_DEMO_ROOT&#x27;" in text
    assert "train/StemFolderDataset.mono" not in text and "test/StemFolderDataset" not in text
    assert "fine-tuned from /runs/parent/checkpoints/best.pth (epoch 9" in text
    # training curves from the full history of latest.pth
    assert '<h2 id="training">Training curves</h2>' in text
    assert "3 epochs; last: train loss 0.3333, validation loss 1.367" in text
    curves = re.search(r'alt="training curves" src="data:image/png;base64,([^"]+)"', text)
    assert curves and len(base64.b64decode(curves.group(1))) > 5000
    # spectrograms of the mixture and each estimate, per example
    assert text.count('alt="spectrograms"') == 3
    # per-item SI-SIR / SI-SAR next to SI-SDR
    assert "<th>VOCALS SI-SIR</th>" in text and "<th>VOCALS SI-SAR</th>" in text
    assert '<td class="num">14.00</td>' in text  # s1 vocals SI-SIR
    # provenance as a table (not flattened keys)
    assert "<th>status</th>" in text and "0123456789 (dirty)" in text
    assert "main.py all -b &#x27;a = 1&#x27;" in text and ">running</td>" in text


def test_provenance_is_refreshed_after_the_command_ends(make_run):
    run = _trained_run(make_run, lineage=False)
    df = load_results(run / "results")
    from bootsep.report.html import refresh_provenance

    page = write_report_html(run, df, "card", [], audio_seconds=0.5, spectrograms=False)
    assert ">running</td>" in page.read_text() and "trained from scratch" in page.read_text()
    prov = json.loads((run / "provenance.json").read_text())
    prov["invocations"][0].update(end="2026-01-01T00:10:00", status="failed: RuntimeError")
    (run / "provenance.json").write_text(json.dumps(prov))
    before = page.read_text()
    assert refresh_provenance(run) == page
    after = page.read_text()
    assert ">running</td>" not in after
    assert '<td class="bad">failed: RuntimeError</td>' in after and "2026-01-01 00:10:00" in after
    head = before.split("<!-- provenance -->")[0]
    assert after.startswith(head)  # the rest of the page is untouched
    assert refresh_provenance(run / "nowhere") is None


def test_cli_writes_the_final_status_into_report_html(make_run, monkeypatch):
    """`main.py analyze` ends with report.html showing its own invocation as ok."""
    from bootsep.cli.main import main

    run = make_run(_scores_with_vocals({"s0": 1.0, "s1": 2.0}))
    monkeypatch.chdir(run.parent)
    assert main(["analyze", "-o", str(run)]) == 0
    text = (run / "report.html").read_text()
    rows = re.findall(r"<tr><td class=\"nw\">analyze</td>.*?</tr>", text)
    assert len(rows) == 1 and '<td class="ok">ok</td>' in rows[0]


def test_linked_audio_keeps_the_page_small(make_run):
    run = make_run(_scores_with_vocals({"s0": 1.0, "s1": 2.0, "s2": 3.0}),
                   audio_items=("s0", "s1", "s2"), seconds=12.0, sr=22050, burst_at=4.0)
    df = load_results(run / "results")
    out = write_report_html(run, df, "card", [], link_audio=True, spectrograms=False)
    text = out.read_text()
    assert not AUDIO_RE.findall(text)
    links = re.findall(r'<audio controls preload="none" src="([^"]+)">', text)
    assert len(links) == 15
    assert "estimates/s2/vocals.wav" in links
    for link in links:  # relative paths that resolve from the page's folder
        from urllib.parse import unquote

        assert not link.startswith("/") and (run / unquote(link)).is_file()
    assert len(out.read_bytes()) < 200_000
