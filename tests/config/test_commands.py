"""The cache and debug commands, and init_from_checkpoint lineage."""

from __future__ import annotations

import json

from bootsep.cli.main import main
from bootsep.engine.checkpoint import checkpoint_path, load_checkpoint


def test_cache_command_fills_the_audio_cache(tmp_path, write_config):
    cache = tmp_path / "cache"
    cfg = write_config(**{"StemFolderDataset.cache": repr(str(cache))})
    assert main(["cache", "-c", str(cfg), "-o", str(tmp_path / "run")]) == 0
    files = list(cache.rglob("*.npy"))
    # train (3 songs) + valid (1) + test (2), accompaniment/vocals/mixture each
    assert len(files) == 18
    assert main(["cache", "-c", str(cfg), "-o", str(tmp_path / "run")]) == 0
    assert sorted(cache.rglob("*.npy")) == sorted(files)  # nothing decoded twice


def test_debug_overfits_one_item_in_debug_folder(tmp_path, write_config, capsys):
    cfg = write_config(**{"debug.num_epochs": 3, "debug.epoch_length": 5})
    run = tmp_path / "run"
    assert main(["debug", "-c", str(cfg), "-o", str(run)]) == 0
    hist = load_checkpoint(checkpoint_path(run / "debug", "latest"))["history"]
    assert len(hist) == 3
    assert hist[-1]["train"]["loss"] < hist[0]["train"]["loss"]
    assert (run / "debug" / "report_card.txt").is_file()
    assert [p.name for p in (run / "debug" / "results").glob("*.json")] == ["debug_item0.json"]
    assert not (run / "checkpoints").exists()  # the run itself is untouched


def test_init_from_checkpoint_records_lineage(tmp_path, write_config):
    cfg = write_config(**{"train.num_epochs": 1, "train.epoch_length": 2})
    parent = tmp_path / "parent"
    assert main(["train", "-c", str(cfg), "-o", str(parent)]) == 0
    src = checkpoint_path(parent, "latest")
    child = tmp_path / "child"
    assert main(["train", "-c", str(cfg), "-o", str(child), "-b",
                 f"train.init_from_checkpoint = '{src}'", "-b", "train.num_epochs = 0"]) == 0
    lineage = json.loads((child / "lineage.json").read_text())
    assert lineage["init_from_checkpoint"] == str(src.resolve())
    assert lineage["parent_epoch"] == 1


def test_init_from_checkpoint_missing_file_is_a_user_error(tmp_path, write_config, capsys):
    cfg = write_config()
    rc = main(["train", "-c", str(cfg), "-o", str(tmp_path / "r"), "-b",
               f"train.init_from_checkpoint = '{tmp_path / 'nope.pth'}'"])
    assert rc == 2
    assert "nope.pth" in capsys.readouterr().err


def test_evaluate_searches_permutations_for_clustering_separators(tmp_path, tiny_demo):
    """A separator whose output order is arbitrary is scored under the best permutation."""
    from bootsep.config.experiment import evaluate
    from bootsep.data.folder import StemFolderDataset
    from bootsep.primitives.oracle import IdealRatioMask

    class SwappedOracle(IdealRatioMask):
        arbitrary_order = True

        def masks(self, mix_spec, source_specs=None):
            return super().masks(mix_spec, source_specs).flip(1)

    ds = StemFolderDataset(tiny_demo, "test")
    evaluate(separator=SwappedOracle(), dataset=ds, output_folder=str(tmp_path / "r"),
             progress=False, save_audio=False)
    rec = json.loads(next((tmp_path / "r" / "results").glob("*.json")).read_text())
    assert rec["sources"]["vocals"]["SI-SDRi"][0] > 10
    assert rec["permutation"] == [[1, 0]]


def test_evaluate_by_label_needs_every_reference_label(tmp_path, tiny_demo):
    """compute_permutation = False aligns by label: a label the separator lacks is an error
    naming the fix (metrics.permutation.align_labels)."""
    import pytest

    from bootsep.config.experiment import evaluate
    from bootsep.data.folder import StemFolderDataset
    from bootsep.primitives.oracle import IdealRatioMask
    from bootsep.utils.errors import UserError

    class Unlabelled(IdealRatioMask):
        arbitrary_order = True

    with pytest.raises(UserError, match=r"the separator's sources \['s0', 's1'\] do not include "
                                        r"\['accompaniment', 'vocals'\]; set "
                                        r"evaluate.compute_permutation = True"):
        evaluate(separator=Unlabelled(source_labels=("s0", "s1")), dataset=StemFolderDataset(tiny_demo, "test"),
                 output_folder=str(tmp_path / "r"), progress=False, compute_permutation=False)


def test_separate_user_stereo_file_with_a_trained_run(tmp_path, write_config, capsys):
    """`separate -c <run>/config.gin --input IN.wav --output OUT`: stems keep length/channels."""
    import numpy as np
    import soundfile as sf

    cfg = write_config(**{"train.num_epochs": 1, "train.epoch_length": 1})
    run = tmp_path / "run"
    assert main(["train", "-c", str(cfg), "-o", str(run)]) == 0
    n = 22050 * 2 + 17
    t = np.arange(n) / 22050
    stereo = np.stack([0.3 * np.sin(2 * np.pi * 220 * t), 0.2 * np.sin(2 * np.pi * 330 * t)], 1)
    wav = tmp_path / "user.wav"
    sf.write(str(wav), stereo, 22050)
    out = tmp_path / "stems"
    assert main(["separate", "-c", str(run / "config.gin"), "--input", str(wav),
                 "--output", str(out)]) == 0
    for label in ("accompaniment", "vocals"):
        info = sf.info(str(out / f"{label}.wav"))
        assert (info.samplerate, info.frames, info.channels) == (22050, n, 2)
    assert (out / "separate.json").is_file()
    assert main(["separate", "-c", str(run / "config.gin"), "--input",
                 str(tmp_path / "nope.wav"), "--output", str(out)]) == 2
    assert "nope.wav" in capsys.readouterr().err
