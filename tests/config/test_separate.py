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
    info = json.loads((tmp_path / "sep" / "shards" / "0-of-1.json").read_text())
    assert info["done_before"] == 6 and info["separated"] == 0 and info["status"] == "complete"
    # other segment settings into the same folder: refused
    rc, _, err = run_cli(["separate", "-c", cfg, "--output", tmp_path / "sep",
                          "-b", "separate.segment_length = 1.5"], capsys)
    assert rc == 2 and "other settings" in err


def test_a_users_file_in_output_is_one_error_line_and_untouched(tmp_path, capsys):
    cfg = _cfg(tmp_path, "separate.separator = @primitive_clustering()\n"
                         "separate.progress = False\n")
    voc, acc = tone_song(16000, 16000)
    wav = write_wav(tmp_path / "song.wav", voc + acc, 16000)
    out = tmp_path / "o"
    out.mkdir()
    (out / "vocals.wav").write_bytes(b"mine")
    for extra in ([], ["--force"]):
        rc, _, err = run_cli(["separate", "-c", cfg, "--input", wav, "--output", out, *extra],
                             capsys)
        assert rc == 2 and err.count("\n") == 1
        assert err.startswith(f"error: --output {out} is not empty (vocals.wav) and was not "
                              "written by `separate` (no separate.json); choose a new or empty "
                              "folder")
    assert (out / "vocals.wav").read_bytes() == b"mine" and sorted(out.iterdir()) == [
        out / "vocals.wav"]


def test_segment_mode_with_a_run_folder_writes_to_separated_not_results(tmp_path, capsys):
    make_song_folder(tmp_path / "train", n_songs=1, seconds=1.0)
    cfg = _cfg(tmp_path, f"""
        separate.separator = @primitive_clustering()
        separate.folders = {{'mine': '{tmp_path / "train"}'}}
        separate.segment_length = 1.0
        separate.hop_length = 1.0
        separate.progress = False
        separate.confidence = ['combined']
    """)
    run = tmp_path / "run"
    rc, out, err = run_cli(["separate", "-c", cfg, "-o", run], capsys)
    assert rc == 0, err
    assert out.strip().endswith(f"1 separated segments in {run / 'separated'}")
    assert len(list((run / "separated" / "results").glob("*.json"))) == 1
    assert not (run / "results").exists()
    # organize's default input follows: -o RUN reads RUN/separated
    org = tmp_path / "org.gin"
    org.write_text("organize.measure = 'combined'\norganize.bin = 'all'\n")
    rc, out, err = run_cli(["organize", "-c", org, "-o", run, "--output", tmp_path / "data"],
                           capsys)
    assert rc == 0, err
    assert len(list((tmp_path / "data" / "vocals").iterdir())) == 1
    rc, _, err = run_cli(["organize", "-c", org, "--output", tmp_path / "d2"], capsys)
    assert rc == 2 and "bind organize.separated" in err
    # --force and --shard belong to the other mode
    rc, _, err = run_cli(["separate", "-c", cfg, "-o", run, "--force"], capsys)
    assert rc == 2 and err.startswith("error: --force applies to separate --input")
    rc, _, err = run_cli(["separate", "-c", cfg, "--input", tmp_path / "train" / "song0" /
                          "mixture.wav", "--output", tmp_path / "f", "--shard", "1/2"], capsys)
    assert rc == 2 and "applies to segment mode" in err


def test_analyze_reads_only_what_evaluate_wrote_and_names_the_separator(tmp_path, tiny_demo):
    """An old bootsep wrote segment records into a run's results/; another separator's results
    can be there too: the report card counts only this evaluation's items."""
    import warnings

    from bootsep.config.experiment import evaluate
    from bootsep.data.folder import StemFolderDataset
    from bootsep.primitives.oracle import IdealRatioMask
    from bootsep.report.aggregate import ResultsWarning
    from bootsep.report.analyze import analyze

    run = tmp_path / "run"
    info = evaluate(separator=IdealRatioMask(), dataset=StemFolderDataset(tiny_demo, "test"),
                    output_folder=str(run), progress=False, save_audio=False)
    item = json.loads(next((run / "results").glob("*.json")).read_text())
    assert item["metadata"]["separator_fingerprint"] == info["separator_fingerprint"]
    segment = {"item": "train--song--0000.000", "confidence": {"combined": 0.5},
               "sources": item["sources"],
               "metadata": {"collection": "train", "recording": "song", "offset": 0.0}}
    (run / "results" / "train--song--0000.000.json").write_text(json.dumps(segment))
    other = dict(item, item="other", metadata=dict(item["metadata"],
                                                   separator_fingerprint="0123456789ab"))
    (run / "results" / "other.json").write_text(json.dumps(other))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = analyze(run, print_card=False)
    messages = [str(w.message) for w in caught if issubclass(w.category, ResultsWarning)]
    assert any("a segment record of `separate`" in m for m in messages)
    assert any("evaluated by separator 0123456789ab" in m for m in messages)
    assert result["summary"]["OVERALL"]["#"] == 4          # 2 test songs x 2 sources
    card = (run / "report_card.txt").read_text().splitlines()
    assert card[1] == f"separator: IdealRatioMask (fingerprint {info['separator_fingerprint']})"
