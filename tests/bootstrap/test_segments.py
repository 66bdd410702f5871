"""Segment plan, recording discovery, segment reads and BS.1770 loudness."""

from __future__ import annotations

import math

import numpy as np
import pytest
import soundfile as sf

from bootsep.bootstrap.segments import (
    find_recordings,
    integrated_loudness,
    k_weighting,
    plan_segments,
    read_segment,
    segment_bounds,
)
from bootsep.utils.errors import UserError


def _brute_starts(n, seg, hop):
    if n <= 0:
        return []
    if n <= seg:
        return [0]
    starts = {k * hop for k in range(n // hop + 2) if k * hop + seg <= n}
    starts.add(n - seg)
    return sorted(starts)


@pytest.mark.parametrize("n", [0, 1, 5, 99, 100, 101, 150, 199, 200, 201, 1000, 1037])
@pytest.mark.parametrize("seg,hop", [(100, 50), (100, 100), (100, 30), (100, 150), (7, 3)])
def test_segment_bounds_matches_brute_force(n, seg, hop):
    b = segment_bounds(n, seg, hop)
    assert [s for s, _ in b] == _brute_starts(n, seg, hop)
    if n == 0:
        assert b == []
        return
    assert b[0][0] == 0 and b[-1][1] == n                # starts at 0, ends at the end
    assert all(0 <= s < e <= n for s, e in b)             # none past the end
    assert len(set(b)) == len(b)                          # no duplicates
    assert all(e - s == min(seg, n) for s, e in b)        # full-length segments
    assert all(b[i + 1][0] - b[i][0] <= hop for i in range(len(b) - 1))


def test_segment_bounds_examples_and_errors():
    assert segment_bounds(250, 100, 50) == [(0, 100), (50, 150), (100, 200), (150, 250)]
    assert segment_bounds(260, 100, 50) == [(0, 100), (50, 150), (100, 200), (150, 250),
                                            (160, 260)]
    assert segment_bounds(60, 100, 50) == [(0, 60)]
    with pytest.raises(ValueError):
        segment_bounds(100, 0, 10)
    with pytest.raises(ValueError):
        segment_bounds(100, 10, 0)


def _write(path, x, sr):
    path.parent.mkdir(parents=True, exist_ok=True)
    subtype = "FLOAT" if path.suffix == ".wav" else "PCM_16"
    sf.write(str(path), np.asarray(x, dtype=np.float32).T, sr, subtype=subtype)


def _tone(n, f, sr, ch=1, amp=0.3):
    t = np.arange(n) / sr
    return np.stack([amp * np.sin(2 * np.pi * f * (c + 1) * t) for c in range(ch)])


def test_find_recordings_song_layout_with_derived_accompaniment(tmp_path):
    sr = 8000
    for song in ("b_song", "a_song"):
        d = tmp_path / "train" / song
        for stem, f in (("vocals", 440), ("drums", 100), ("bass", 60), ("other", 300)):
            _write(d / f"{stem}.wav", _tone(800, f, sr), sr)
        _write(d / "mixture.wav", _tone(800, 1, sr), sr)
    recs = find_recordings(tmp_path / "train")
    assert [r.name for r in recs] == ["a_song", "b_song"]
    assert all(r.collection == "train" for r in recs)
    assert set(recs[0].references) == {"accompaniment", "vocals"}
    assert len(recs[0].references["accompaniment"]) == 3  # summed from drums, bass, other
    # without reference names, no references
    assert find_recordings(tmp_path / "train", "x", sources=None)[0].references == {}


def test_find_recordings_stem_and_plain_layouts(tmp_path):
    sr = 8000
    for stem in ("mixture", "vocals", "accompaniment"):
        _write(tmp_path / "stems" / stem / "s1.wav", _tone(400, 200, sr), sr)
    recs = find_recordings(tmp_path / "stems", collection="mine")
    assert len(recs) == 1 and recs[0].name == "s1" and recs[0].collection == "mine"
    assert recs[0].references["vocals"][0].parent.name == "vocals"
    _write(tmp_path / "plain" / "artist" / "x y.wav", _tone(400, 200, sr), sr)
    _write(tmp_path / "plain" / "z.flac", _tone(400, 200, sr), sr)
    (tmp_path / "plain" / "notes.txt").write_text("not audio")
    names = [r.name for r in find_recordings(tmp_path / "plain")]
    assert names == ["artist__x y", "z"]
    with pytest.raises(UserError, match="not found"):
        find_recordings(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no audio"):
        find_recordings(tmp_path / "empty")


def test_plan_and_read_segments_match_the_file(tmp_path):
    sr = 8000
    rng = np.random.default_rng(0)
    n = 8000 * 3 + 123
    voc = rng.standard_normal((2, n)).astype(np.float32) * 0.1
    parts = [rng.standard_normal((2, n)).astype(np.float32) * 0.1 for _ in range(3)]
    d = tmp_path / "train" / "song"
    for name, x in zip(("vocals", "drums", "bass", "other"), [voc, *parts]):
        _write(d / f"{name}.wav", x, sr)
    mix = voc + sum(parts)
    _write(d / "mixture.wav", mix, sr)
    segs = plan_segments(find_recordings(tmp_path / "train"), sr, 1.0, 0.5)
    starts = [s.start for s in segs]
    assert starts == _brute_starts(n, sr, sr // 2)
    assert len({s.name for s in segs}) == len(segs)
    assert segs[0].name == "train--song--0000.000"
    for seg in (segs[0], segs[-1]):
        m, refs = read_segment(seg)
        assert m.shape == (2, sr)
        np.testing.assert_allclose(m, mix[:, seg.start:seg.stop], atol=1e-6)
        np.testing.assert_allclose(refs[0], sum(parts)[:, seg.start:seg.stop], atol=1e-6)
        np.testing.assert_allclose(refs[1], voc[:, seg.start:seg.stop], atol=1e-6)
    m, _ = read_segment(segs[-1], mono=True)
    np.testing.assert_allclose(m[0], mix[:, -sr:].mean(0), atol=1e-6)
    # planning at another rate counts samples at that rate
    segs16 = plan_segments(find_recordings(tmp_path / "train"), 16000, 1.0, 0.5)
    assert segs16[-1].stop == n * 2


def test_plan_segments_rejects_duplicate_names_and_bad_lengths(tmp_path):
    sr = 8000
    _write(tmp_path / "a" / "x.wav", _tone(800, 100, sr), sr)
    _write(tmp_path / "b" / "a" / "x.wav", _tone(800, 100, sr), sr)
    recs = find_recordings(tmp_path / "a") + find_recordings(tmp_path / "b" / "a")
    with pytest.raises(UserError, match="both named"):
        plan_segments(recs, sr, 0.05, 0.05)
    with pytest.raises(UserError, match="positive"):
        plan_segments(recs[:1], sr, 0, 1)


def test_k_weighting_matches_the_bs1770_table_at_48k():
    sos = k_weighting(48000)
    np.testing.assert_allclose(sos[0, :3], [1.53512485958697, -2.69169618940638,
                                            1.19839281085285], atol=1e-10)
    np.testing.assert_allclose(sos[0, 4:], [-1.69065929318241, 0.73248077421585], atol=1e-10)
    np.testing.assert_allclose(sos[1, 4:], [-1.99004745483398, 0.99007225036621], atol=1e-10)
    np.testing.assert_allclose(sos[1, :3], [1.0, -2.0, 1.0])


def test_integrated_loudness_reference_tone_gain_and_gating():
    sr = 48000
    t = np.arange(sr * 4) / sr
    tone = np.sin(2 * np.pi * 997 * t)
    # BS.1770: a full-scale 997 Hz sine in one channel reads -3.01 LUFS
    assert integrated_loudness(np.stack([tone, 0 * tone]), sr) == pytest.approx(-3.01, abs=0.01)
    assert integrated_loudness(0.1 * tone, sr) == pytest.approx(-23.01, abs=0.01)
    # absolute gate: appended digital silence does not change the value
    padded = np.concatenate([0.1 * tone, np.zeros(sr * 4)])
    assert integrated_loudness(padded, sr) == pytest.approx(-23.01, abs=0.25)  # edge blocks
    # relative gate: a quiet part 30 dB down is ignored, a part 5 dB down is not
    quiet = np.concatenate([0.1 * tone, 0.1 * 10 ** (-30 / 20) * tone])
    assert integrated_loudness(quiet, sr) == pytest.approx(-23.01, abs=0.25)
    mid = np.concatenate([0.1 * tone, 0.1 * 10 ** (-5 / 20) * tone])
    assert integrated_loudness(mid, sr) < -24.0
    assert integrated_loudness(np.zeros(sr), sr) == -math.inf
    assert integrated_loudness(np.zeros((2, 0)), sr) == -math.inf
    # stereo = the sum of the channels' powers (+3 dB for the same signal in both)
    two = np.stack([0.1 * tone, 0.1 * tone])
    assert integrated_loudness(two, sr) == pytest.approx(-23.01 + 10 * np.log10(2), abs=0.01)
