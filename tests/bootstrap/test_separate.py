"""Segment mode and file mode of separate (plain functions, no gin)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from bootsep.bootstrap.segments import find_recordings, plan_segments, read_segment
from bootsep.bootstrap.separate import (
    DEFAULT_CONFIDENCE,
    completeness,
    file_windows,
    separate_files,
    separate_segments,
)
from bootsep.primitives.confidence import compute_confidences
from bootsep.utils.errors import UserError

from ._fakes import SoftBandSeparator, make_song_folder, tone_song, tree, write_wav

SR = 16000


def _si_sdr(est, ref):
    est, ref = est - est.mean(), ref - ref.mean()
    a = np.dot(est, ref) / np.dot(ref, ref)
    return 10 * np.log10(np.sum((a * ref) ** 2) / np.sum((est - a * ref) ** 2))


@pytest.fixture
def songs(tmp_path):
    return make_song_folder(tmp_path / "train", n_songs=3, seconds=2.0, sr=SR, quiet=(2,))


def _segments(folder, seg=1.0, hop=0.5):
    return plan_segments(find_recordings(folder), SR, seg, hop)


def test_segment_outputs_metrics_and_confidence(songs, tmp_path):
    sep = SoftBandSeparator(SR)
    segs = _segments(songs)
    out = tmp_path / "sep"
    summary = separate_segments(sep, segs, out, num_workers=2, progress=False)
    loud = [s for s in segs if s.recording.name != "song2"]
    assert summary["separated"] == len(loud) == 6 and summary["skipped"] == 3
    assert sorted(p.stem for p in (out / "results").glob("*.json")) == sorted(s.name for s in loud)
    assert sorted(p.stem for p in (out / "skipped").glob("*.json")) == \
        sorted(s.name for s in segs if s.recording.name == "song2")
    seg = loud[1]
    rec = json.loads((out / "results" / f"{seg.name}.json").read_text())
    mix, refs = read_segment(seg)
    direct = sep.separate(torch.from_numpy(mix), with_features=True)
    # audio on disk = the separator's estimates of exactly this span
    for i, label in enumerate(["accompaniment", "vocals"]):
        path = out / rec["metadata"]["estimate_paths"][label]
        assert path == out / "audio" / label / f"{seg.name}.wav"
        audio, sr = sf.read(str(path), dtype="float32", always_2d=True)
        assert sr == SR
        np.testing.assert_allclose(audio.T, direct.estimates[i].numpy(), atol=1e-6)
        # SI-SDR recorded = SI-SDR recomputed from scratch (numpy)
        assert rec["sources"][label]["SI-SDR"][0] == pytest.approx(
            _si_sdr(audio[:, 0].astype(np.float64), refs[i, 0].astype(np.float64)), abs=1e-3)
    assert rec["sources"]["vocals"]["SI-SDR"][0] > 10  # the fake separator works on tones
    # confidences = the measures computed directly on the separator's features
    exp = compute_confidences(direct.features, direct.mix_magnitude,
                              measures=("silhouette", "posterior", "combined"))
    exp_fp = compute_confidences(direct.features, direct.mix_magnitude,
                                 measures=("fixed_posterior",), min_frequency_bin=8)
    assert set(rec["confidence"]) == set(DEFAULT_CONFIDENCE)
    for k, v in exp.items():
        assert rec["confidence"][k] == pytest.approx(v, abs=1e-9)
    assert rec["confidence"]["fixed_posterior"] == pytest.approx(exp_fp["fixed_posterior"])
    meta = rec["metadata"]
    assert meta["offset"] == seg.offset and meta["duration"] == 1.0
    assert meta["collection"] == "train" and meta["recording"] == seg.recording.name
    assert meta["loudness_lufs"] > -40
    info = json.loads((out / "separate.json").read_text())
    assert info["separator"] == "SoftBandSeparator" and info["plan"] == sorted(s.name for s in segs)
    run = json.loads((out / "shards" / "0-of-1.json").read_text())
    assert run["status"] == "complete" and run["separated"] == 6 and run["skipped"] == 3


def test_resume_after_a_crash_redoes_nothing_finished(songs, tmp_path):
    segs = _segments(songs)
    out = tmp_path / "sep"
    crashing = SoftBandSeparator(SR, fail_on=4)
    with pytest.raises(RuntimeError, match="simulated crash"):
        separate_segments(crashing, segs, out, num_workers=2, min_loudness=None, progress=False)
    done = {p.stem: p.stat().st_mtime_ns for p in (out / "results").glob("*.json")}
    assert len(done) == 3  # the three calls before the crash were written in full
    wavs = {p: p.stat().st_mtime_ns for p in (out / "audio").rglob("*.wav")}
    assert len(wavs) == 6 and not list(out.rglob(".*.tmp")) and not list(out.rglob(".*.wav"))
    again = SoftBandSeparator(SR)
    summary = separate_segments(again, segs, out, num_workers=2, min_loudness=None,
                                progress=False)
    assert again.calls == len(segs) - 3 and summary["done_before"] == 3
    assert {p.stem: p.stat().st_mtime_ns for p in (out / "results").glob("*.json")
            if p.stem in done} == done
    assert all(p.stat().st_mtime_ns == t for p, t in wavs.items())
    third = SoftBandSeparator(SR)
    separate_segments(third, segs, out, min_loudness=None, progress=False)
    assert third.calls == 0
    # other settings into the same folder are refused: a flag, or the separator's own settings
    with pytest.raises(UserError, match="mono: False -> True"):
        separate_segments(third, segs, out, mono=True, progress=False, min_loudness=None)
    with pytest.raises(UserError, match="separator_fingerprint: '[0-9a-f]{12}' -> '[0-9a-f]{12}'"):
        separate_segments(SoftBandSeparator(SR, cutoff_hz=2000.0), segs, out, progress=False,
                          min_loudness=None)
    rec = json.loads(next((out / "results").glob("*.json")).read_text())
    summary = json.loads((out / "separate.json").read_text())
    assert rec["metadata"]["separator_fingerprint"] == summary["separator_fingerprint"]
    assert summary["separator_config"]["cutoff_hz"] == 1000.0
    del summary["settings"]["separator_fingerprint"]          # as written by an older bootsep
    (out / "separate.json").write_text(json.dumps(summary))
    with pytest.raises(UserError, match="older bootsep"):
        separate_segments(third, segs, out, progress=False, min_loudness=None)


def test_a_run_killed_between_a_segments_wavs_and_its_json_redoes_exactly_that_segment(
        songs, tmp_path, monkeypatch):
    """The resume protocol (bootstrap.results): the JSON is written last, so a segment whose
    WAVs exist without it is unfinished, and a rerun redoes it and nothing else."""
    import bootsep.utils.io as io

    segs = _segments(songs)
    victim = segs[-1].name
    real = io.atomic_write_text          # every JSON write ends here, whichever writer

    def killed_before_the_json(path, text):
        if Path(path) == tmp_path / "sep" / "results" / f"{victim}.json":
            raise RuntimeError("killed between the writes")
        return real(path, text)

    monkeypatch.setattr(io, "atomic_write_text", killed_before_the_json)
    with pytest.raises(RuntimeError, match="killed between the writes"):
        separate_segments(SoftBandSeparator(SR), segs, tmp_path / "sep", min_loudness=None,
                          progress=False)
    monkeypatch.undo()
    out = tmp_path / "sep"
    wavs = sorted((out / "audio").rglob(f"{victim}.wav"))
    assert len(wavs) == 2 and not (out / "results" / f"{victim}.json").exists()
    others = {p: p.stat().st_mtime_ns for p in out.rglob("*")
              if p.is_file() and victim not in p.name and p.parent.name != "shards"
              and p.name != "separate.json"}
    assert len(others) == 3 * (len(segs) - 1)         # two WAVs and a JSON each
    assert completeness(out)["missing"] == [victim]
    again = SoftBandSeparator(SR)
    summary = separate_segments(again, segs, out, min_loudness=None, progress=False)
    assert again.calls == 1 and summary["separated"] == 1
    assert summary["done_before"] == len(segs) - 1 and summary["status"] == "complete"
    assert {p: p.stat().st_mtime_ns for p in others} == others      # nothing else rewritten
    clean = tmp_path / "clean"
    separate_segments(SoftBandSeparator(SR), segs, clean, min_loudness=None, progress=False)
    # the redone segment was separated alone, the clean run's in a batch with others: the same
    # within float rounding (one 16-bit step), not byte for byte
    for p in [out / "results" / f"{victim}.json", *wavs]:
        rel = p.relative_to(out)
        if p.suffix == ".json":
            a, b = json.loads(p.read_text()), json.loads((clean / rel).read_text())
            assert a["confidence"] == pytest.approx(b["confidence"], rel=1e-5, abs=1e-6)
            assert set(a["sources"]) == set(b["sources"])
        else:
            x, y = sf.read(p)[0], sf.read(clean / rel)[0]
            assert x.shape == y.shape and np.abs(x - y).max() <= 1.5 / 32768
    assert not [p for p in out.rglob(".*") if p.is_file()]           # no temp file left


def test_batched_segments_equal_single_segments(songs, tmp_path):
    segs = _segments(songs)
    a, b = SoftBandSeparator(SR), SoftBandSeparator(SR)
    separate_segments(a, segs, tmp_path / "a", batch_size=1, min_loudness=None, progress=False)
    separate_segments(b, segs, tmp_path / "b", batch_size=4, min_loudness=None, progress=False)
    assert a.calls == 9 and b.calls == 3 and max(b.batches) == 4
    for p in (tmp_path / "a" / "results").glob("*.json"):
        ra = json.loads(p.read_text())
        rb = json.loads((tmp_path / "b" / "results" / p.name).read_text())
        assert ra["confidence"] == pytest.approx(rb["confidence"])
        assert ra["sources"]["vocals"]["SI-SDR"] == pytest.approx(rb["sources"]["vocals"]["SI-SDR"])


def test_stereo_segments_and_no_references(tmp_path):
    make_song_folder(tmp_path / "st", n_songs=1, seconds=1.5, sr=SR, channels=2)
    recs = find_recordings(tmp_path / "st", sources=None)
    segs = plan_segments(recs, SR, 1.0, 1.0)
    separate_segments(SoftBandSeparator(SR), segs, tmp_path / "o", progress=False)
    rec = json.loads(next((tmp_path / "o" / "results").glob("*.json")).read_text())
    assert rec["sources"] == {} and rec["metadata"]["channels"] == 2
    audio, _ = sf.read(str(tmp_path / "o" / rec["metadata"]["estimate_paths"]["vocals"]))
    assert audio.shape == (SR, 2)


# ----------------------------------------------------------------------------- file mode
def test_file_mode_writes_stems_of_the_inputs_length_rate_and_channels(tmp_path):
    sr_in = 22050
    n = 22050 + 77
    voc, acc = tone_song(n, sr_in, channels=2)
    src = write_wav(tmp_path / "in" / "song.wav", voc + acc, sr_in, subtype="PCM_16")
    out = tmp_path / "out"
    summary = separate_files(SoftBandSeparator(SR), [src], out, progress=False)
    for label in ("accompaniment", "vocals"):
        info = sf.info(str(out / f"{label}.wav"))
        assert (info.samplerate, info.frames, info.channels) == (sr_in, n, 2)
    rec = summary["files"][0]
    assert rec["resampled_to"] == SR and rec["outputs"]["vocals"] == "vocals.wav"
    assert json.loads((out / "separate.json").read_text())["files"][0]["samples"] == n
    est, _ = sf.read(str(out / "vocals.wav"), always_2d=True)
    assert _si_sdr(est[:, 0], voc[0].astype(np.float64)) > 10  # resampled back in place
    # a folder: one sub-folder per file, relative paths kept
    write_wav(tmp_path / "many" / "a" / "x.wav", (voc + acc)[:1, :8000], SR)
    write_wav(tmp_path / "many" / "y.wav", (voc + acc)[:1, :9000], SR)
    separate_files(SoftBandSeparator(SR), [tmp_path / "many"], tmp_path / "out2", progress=False)
    assert sf.info(str(tmp_path / "out2" / "a" / "x" / "vocals.wav")).frames == 8000
    assert sf.info(str(tmp_path / "out2" / "y" / "accompaniment.wav")).frames == 9000


def test_file_mode_errors(tmp_path):
    sep = SoftBandSeparator(SR)
    with pytest.raises(UserError, match="input not found"):
        separate_files(sep, [tmp_path / "nope.wav"], tmp_path / "o")
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF0000WAVEjunkjunk")
    with pytest.raises(UserError, match="cannot read audio"):
        separate_files(sep, [bad], tmp_path / "o")
    write_wav(tmp_path / "empty.wav", np.zeros((1, 0)), SR)
    with pytest.raises(UserError, match="empty"):
        separate_files(sep, [tmp_path / "empty.wav"], tmp_path / "o")
    other = write_wav(tmp_path / "r.wav", np.zeros((1, 800)), 8000)
    with pytest.raises(UserError, match="8000 Hz"):
        separate_files(sep, [other], tmp_path / "o", resample=False)
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="not a folder"):
        separate_files(sep, [other], tmp_path / "file")
    (tmp_path / "d").mkdir()
    with pytest.raises(UserError, match="no audio files"):
        separate_files(sep, [tmp_path / "d"], tmp_path / "o")
    with pytest.raises(UserError, match="--output"):
        separate_files(sep, [other], None)
    assert sep.calls == 0


@pytest.mark.parametrize("frames", [1, 99, 100, 101, 150, 189, 190, 191, 235, 236, 1000])
def test_file_windows_cover_the_file_with_exact_overlaps(frames):
    window, overlap = 100, 10
    b = file_windows(frames, window, overlap)
    assert b[0][0] == 0 and b[-1][1] == frames
    if frames <= window:
        assert b == [(0, frames)]
        return
    for (s0, e0), (s1, e1) in zip(b, b[1:]):
        assert e0 - s1 == overlap and s1 > s0 and e1 > e0
    assert all(window // 2 <= e - s <= window + window // 2 for s, e in b)
    with pytest.raises(UserError, match="overlap"):
        file_windows(frames, 100, 50)


class _Swapping(SoftBandSeparator):
    """Its source order flips on every call, as a k-means separator's may."""

    arbitrary_order = True

    def separate(self, mix, sources=None, with_features=False):
        out = super().separate(mix, sources, with_features)
        if self.calls % 2 == 0:
            out.estimates = out.estimates.flip(0)
        return out


class _CallIndex(SoftBandSeparator):
    """Every estimate is the call's number, 1, 2, ...: the output shows the cross-fade weights."""

    def separate(self, mix, sources=None, with_features=False):
        out = super().separate(mix, sources, with_features)
        out.estimates = torch.full_like(out.estimates, float(self.calls))
        return out


def test_file_mode_cross_fades_windows_with_the_ramp_of_the_deep_separators(tmp_path):
    """One overlap-add (separation.windowing): over the overlap the next window's weight is
    (t + 0.5) / overlap, as between a deep separator's chunks (tests/separation/test_deep.py)."""
    n, window, overlap = 3 * SR, SR, SR // 4
    src = write_wav(tmp_path / "song.wav", np.zeros((1, n)), SR)
    separate_files(_CallIndex(SR), [src], tmp_path / "o", progress=False, window_seconds=1.0,
                   overlap_seconds=0.25)
    got, _ = sf.read(str(tmp_path / "o" / "vocals.wav"), dtype="float32")
    bounds = file_windows(n, window, overlap)
    expected = np.zeros(n)
    for k, (s, e) in enumerate(bounds):
        expected[s:e] = k + 1
        if k:
            a = (np.arange(overlap) + 0.5) / overlap
            expected[s:s + overlap] = (1 - a) * k + a * (k + 1)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("sep_class", [SoftBandSeparator, _Swapping])
def test_windowed_file_mode_matches_whole_files(tmp_path, sep_class):
    n = 5 * SR + 123
    voc, acc = tone_song(n, SR, channels=2)
    voc = voc * np.linspace(0.2, 1.0, n, dtype=np.float32)      # no two windows alike
    src = write_wav(tmp_path / "song.wav", voc + acc, SR)
    separate_files(SoftBandSeparator(SR), [src], tmp_path / "whole", progress=False,
                   window_seconds=None)
    sep = sep_class(SR)
    summary = separate_files(sep, [src], tmp_path / "win", progress=False, window_seconds=1.5,
                             overlap_seconds=0.25)
    assert sep.calls == len(file_windows(n, int(1.5 * SR), int(0.25 * SR))) == 4
    assert summary["window_seconds"] == 1.5
    for label in ("vocals", "accompaniment"):
        whole, _ = sf.read(str(tmp_path / "whole" / f"{label}.wav"), always_2d=True)
        win, _ = sf.read(str(tmp_path / "win" / f"{label}.wav"), always_2d=True)
        assert win.shape == whole.shape == (n, 2)
        for c in range(2):
            assert _si_sdr(win[:, c], whole[:, c]) > 40


# ----------------------------------------------------------------------------- ownership
def test_file_mode_never_replaces_a_file_it_did_not_write(tmp_path):
    voc, acc = tone_song(SR, SR)
    src = write_wav(tmp_path / "in" / "song.wav", voc + acc, SR)
    out = tmp_path / "out"
    out.mkdir()
    (out / "vocals.wav").write_bytes(b"the user's own vocals")
    before = tree(tmp_path)
    sep = SoftBandSeparator(SR)
    for force in (False, True):
        with pytest.raises(UserError, match=r"is not empty \(vocals.wav\) and was not written by "
                                            r"`separate` \(no separate.json\)"):
            separate_files(sep, [src], out, progress=False, force=force)
    assert tree(tmp_path) == before and sep.calls == 0


def test_file_mode_resumes_refuses_others_and_force_replaces_only_its_own(tmp_path):
    voc, acc = tone_song(SR, SR)
    folder = tmp_path / "in"
    write_wav(folder / "a.wav", voc + acc, SR)
    write_wav(folder / "b.wav", (voc + acc)[:, : SR // 2], SR)
    out = tmp_path / "out"
    crashing = SoftBandSeparator(SR, fail_on=2)
    with pytest.raises(RuntimeError, match="simulated crash"):
        separate_files(crashing, [folder], out, progress=False)
    rec = json.loads((out / "separate.json").read_text())
    assert rec["status"] == "running"        # b is listed before any of its files exists
    assert [(f["name"], f["complete"]) for f in rec["files"]] == [("a", True), ("b", False)]
    a_files = {p: p.stat().st_mtime_ns for p in (out / "a").glob("*.wav")}
    assert len(a_files) == 2 and not list((out / "b").glob("*.wav"))
    # a rerun of the same command resumes: a is not separated again, b is
    again = SoftBandSeparator(SR)
    summary = separate_files(again, [folder], out, progress=False)
    assert again.calls == 1 and [f.get("resumed", False) for f in summary["files"]] == [True, False]
    assert {p: p.stat().st_mtime_ns for p in a_files} == a_files
    assert json.loads((out / "separate.json").read_text())["status"] == "complete"
    # the user's files next to the outputs, and another separator's run
    (out / "notes.txt").write_text("mine")
    (out / "a" / "extra.wav").write_bytes(b"mine too")
    other = SoftBandSeparator(SR, cutoff_hz=2000.0)
    with pytest.raises(UserError, match=r"holds separate's output for .*a.wav by separator "
                                        r"[0-9a-f]{12}.*pass --force"):
        separate_files(other, [folder], out, progress=False)
    assert other.calls == 0 and {p: p.stat().st_mtime_ns for p in a_files} == a_files
    separate_files(other, [folder], out, progress=False, force=True)
    assert other.calls == 2 and all(p.stat().st_mtime_ns != t for p, t in a_files.items())
    assert (out / "notes.txt").read_text() == "mine" and (out / "a" / "extra.wav").read_bytes() \
        == b"mine too"
    # a user's file where a new output would go is never replaced, --force or not
    write_wav(folder / "c.wav", voc + acc, SR)
    (out / "c").mkdir()
    (out / "c" / "vocals.wav").write_bytes(b"user")
    for force in (False, True):
        with pytest.raises(UserError, match=r"c/vocals.wav exists and separate did not write it"):
            separate_files(other, [folder], out, progress=False, force=force)
    assert (out / "c" / "vocals.wav").read_bytes() == b"user" and other.calls == 2


def test_file_mode_writes_nothing_through_a_symlinked_folder(tmp_path):
    voc, acc = tone_song(SR, SR)
    folder = tmp_path / "in"
    write_wav(folder / "a.wav", voc + acc, SR)
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    separate_files(SoftBandSeparator(SR), [folder], out, progress=False, window_seconds=None)
    elsewhere.mkdir()
    import shutil

    shutil.move(str(out / "a"), str(elsewhere / "a"))
    (out / "a").symlink_to(elsewhere / "a", target_is_directory=True)
    before = tree(elsewhere)
    with pytest.raises(UserError, match=r"is not inside --output .* through a symlink"):
        separate_files(SoftBandSeparator(SR, cutoff_hz=3000.0), [folder], out, progress=False,
                       force=True)
    assert tree(elsewhere) == before


def test_segment_mode_refuses_a_folder_it_did_not_write(songs, tmp_path):
    segs = _segments(songs)
    run = tmp_path / "run"                      # e.g. a run folder holding an evaluation
    (run / "results").mkdir(parents=True)
    (run / "results" / "test_song.json").write_text("{}")
    (run / "evaluation.json").write_text("{}")
    before = tree(run)
    sep = SoftBandSeparator(SR)
    with pytest.raises(UserError, match=r"--output .*run is not empty \(evaluation.json, "
                                        r"results\) and was not written by `separate`"):
        separate_segments(sep, segs, run, progress=False)
    assert tree(run) == before and sep.calls == 0
    separate_files(sep, [songs / "song0" / "mixture.wav"], tmp_path / "files", progress=False)
    with pytest.raises(UserError, match="holds `separate` outputs of file mode"):
        separate_segments(sep, segs, tmp_path / "files", progress=False)


def test_file_mode_output_inside_the_input_folder_is_not_read_back(tmp_path):
    voc, acc = tone_song(SR // 2, SR)
    folder = tmp_path / "music"
    write_wav(folder / "a.wav", voc + acc, SR)
    out = folder / "stems"
    first = separate_files(SoftBandSeparator(SR), [folder], out, progress=False)
    again = SoftBandSeparator(SR)
    second = separate_files(again, [folder], out, progress=False)
    assert again.calls == 0 and [f["input"] for f in second["files"]] == \
        [f["input"] for f in first["files"]] == [str((folder / "a.wav").resolve())]
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.wav")) == [
        "a/accompaniment.wav", "a/vocals.wav"]
