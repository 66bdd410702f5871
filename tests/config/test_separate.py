"""`main.py separate`: file mode, segment mode, separator resolution, user errors (in process)."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import soundfile as sf

from bootstrap._fakes import make_song_folder, run_cli, tone_song, write_wav

ENSEMBLE = """
STFT.window_length = 512
STFT.hop_length = 128
primitive_clustering.sample_rate = 16000
primitive_clustering.stft = @STFT()
primitive_clustering.pitch = None
primitive_clustering.device = 'cpu'
"""


def _cfg(tmp_path, text, name="c.gin"):
    p = tmp_path / name
    p.write_text(textwrap.dedent(ENSEMBLE + text))
    return p


def test_file_mode_separator_from_evaluate_separator(tmp_path, capsys):
    cfg = _cfg(tmp_path, "evaluate.separator = @primitive_clustering()\n"
                         "separate.progress = False\n")
    n = 44100 + 31
    voc, acc = tone_song(n, 44100, channels=2)
    wav = write_wav(tmp_path / "song.wav", voc + acc, 44100, subtype="PCM_16")
    rc, out, err = run_cli(["separate", "-c", cfg, "--input", wav, "--output", tmp_path / "o"],
                           capsys)
    assert rc == 0, err
    for label in ("accompaniment", "vocals"):
        info = sf.info(str(tmp_path / "o" / f"{label}.wav"))
        assert (info.samplerate, info.frames, info.channels) == (44100, n, 2)
        assert str(tmp_path / "o" / f"{label}.wav") in out
    rec = json.loads((tmp_path / "o" / "separate.json").read_text())
    assert rec["separator"] == "EnsembleClustering" and rec["files"][0]["resampled_to"] == 16000


def test_user_errors_are_one_line(tmp_path, capsys):
    cfg = _cfg(tmp_path, "separate.separator = @primitive_clustering()\n")
    rc, _, err = run_cli(["separate", "-c", cfg, "--input", tmp_path / "missing.wav",
                          "--output", tmp_path / "o"], capsys)
    assert rc == 2 and err.startswith("error: input not found") and err.count("\n") == 1
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio at all")
    rc, _, err = run_cli(["separate", "-c", cfg, "--input", bad, "--output", tmp_path / "o"],
                         capsys)
    assert rc == 2 and "cannot read audio file" in err
    none = _cfg(tmp_path, "STFT.hop_length = 128\n", "none.gin")
    rc, _, err = run_cli(["separate", "-c", none, "--input", bad, "--output", tmp_path / "o"],
                         capsys)
    assert rc == 2 and "no separator configured" in err
    rc, _, err = run_cli(["separate", "-c", cfg], capsys)
    assert rc == 2 and "separate needs a destination" in err
    rc, _, err = run_cli(["separate", "-c", cfg, "--output", tmp_path / "o"], capsys)
    assert rc == 2 and "nothing to separate" in err
    assert not (tmp_path / "o").exists()


def test_segment_mode_via_cli_resumes(tmp_path, capsys):
    make_song_folder(tmp_path / "train", n_songs=2, seconds=2.0)
    cfg = _cfg(tmp_path, f"""
        separate.separator = @primitive_clustering()
        separate.folders = {{'mine': '{tmp_path / "train"}'}}
        separate.segment_length = 1.0
        separate.hop_length = 0.5
        separate.progress = False
        separate.confidence = ['combined']
    """)
    rc, out, err = run_cli(["separate", "-c", cfg, "--output", tmp_path / "sep"], capsys)
    assert rc == 0, err
    results = sorted((tmp_path / "sep" / "results").glob("*.json"))
    assert len(results) == 6 and out.strip().endswith(f"6 separated segments in {tmp_path / 'sep'}")
    rec = json.loads(results[0].read_text())
    assert rec["item"].startswith("mine--song0--") and set(rec["confidence"]) == {"combined"}
    assert np.isfinite(rec["sources"]["vocals"]["SI-SDR"][0])
    mtimes = [p.stat().st_mtime_ns for p in results]
    rc, _, err = run_cli(["separate", "-c", cfg, "--output", tmp_path / "sep"], capsys)
    assert rc == 0, err
    assert [p.stat().st_mtime_ns for p in results] == mtimes
    info = json.loads((tmp_path / "sep" / "separate.json").read_text())
    assert info["done_before"] == 6 and info["separated"] == 0
    # other segment settings into the same folder: refused
    rc, _, err = run_cli(["separate", "-c", cfg, "--output", tmp_path / "sep",
                          "-b", "separate.segment_length = 1.5"], capsys)
    assert rc == 2 and "other settings" in err
