"""The whole bootstrapping chain on tiny songs, through the CLI (in process):
ensemble evaluate -> separate -> organize -> train on the organized data -> evaluate ->
second round (separate with the trained model, confidence from its embedding) -> compare."""

from __future__ import annotations

import json
import textwrap

import pytest

from ._fakes import run_cli


def _config(tmp_path, demo, text):
    p = tmp_path / f"cfg{len(list(tmp_path.glob('cfg*.gin')))}.gin"
    p.write_text(textwrap.dedent(f"""
        SOURCES = ['accompaniment', 'vocals']
        STFT.window_length = 256
        STFT.hop_length = 64
        primitive_clustering.sample_rate = 16000
        primitive_clustering.stft = @STFT()
        primitive_clustering.pitch = None
        primitive_clustering.device = 'cpu'
        StemFolderDataset.root = '{demo}'
        StemFolderDataset.sources = %SOURCES
        StemFolderDataset.mono = True
        val/StemFolderDataset.split = 'valid'
        val/StemFolderDataset.excerpt_seconds = 1.0
        val/StemFolderDataset.num_items = 2
        val/build_dataset.dataset = @val/StemFolderDataset()
        test/StemFolderDataset.split = 'test'
        test/build_dataset.dataset = @test/StemFolderDataset()
        evaluate.num_workers = 1
        evaluate.progress = False
    """) + textwrap.dedent(text))
    return p


@pytest.mark.slow
def test_separate_organize_train_evaluate_second_round(tmp_path, tiny_demo, capsys):
    ens = _config(tmp_path, tiny_demo, "evaluate.separator = @primitive_clustering()\n")
    rc, _, err = run_cli(["evaluate", "-c", ens, "-o", tmp_path / "ensemble"], capsys)
    assert rc == 0, err

    sep = _config(tmp_path, tiny_demo, f"""
        separate.separator = @primitive_clustering()
        separate.folders = {{'train': '{tiny_demo / "train"}'}}
        separate.segment_length = 1.0
        separate.hop_length = 1.0
        separate.progress = False
    """)
    rc, _, err = run_cli(["separate", "-c", sep, "--output", tmp_path / "separated"], capsys)
    assert rc == 0, err
    assert len(list((tmp_path / "separated" / "results").glob("*.json"))) == 9  # 3 songs x 3 s

    org = _config(tmp_path, tiny_demo, f"""
        organize.separated = '{tmp_path / "separated"}'
        organize.measure = 'combined'
        organize.bin = 'above_q2'
    """)
    data = tmp_path / "data" / "above_q2"
    rc, _, err = run_cli(["organize", "-c", org, "--output", data], capsys)
    assert rc == 0, err
    assert len(list((data / "vocals").iterdir())) == 8  # ceil(0.8 * 9) with the top one

    train = _config(tmp_path, tiny_demo, f"""
        BootstrappedDataset.folder = '{data}'
        BootstrappedDataset.sources = %SOURCES
        BootstrappedDataset.excerpt_seconds = 0.5
        BootstrappedDataset.num_items = 64
        BootstrappedDataset.balance = 0.5
        train/build_dataset.dataset = @train/BootstrappedDataset()
        train.model = @Chimera
        Chimera.num_features = 129
        Chimera.hidden_size = 8
        Chimera.num_layers = 1
        Chimera.dropout = 0.0
        Chimera.embedding_size = 4
        train.loss_dictionary = {{'mi': {{'class': 'L1Loss', 'weight': 1.0}},
                                  'dc': {{'class': 'DeepClusteringLoss', 'weight': 0.01}}}}
        train.optimizer = @torch.optim.Adam
        train.confidence_power = 1.0
        train.handlers = ['autoclip']
        train.batch_size = 4
        train.num_epochs = 2
        train.epoch_length = 3
        train.num_workers = 0
        train.progress = False
        evaluate.separator = @deep_separator()
        deep_separator.checkpoint = 'latest'
    """)
    run = tmp_path / "bootstrapped"
    rc, _, err = run_cli(["all", "-c", train, "-o", run], capsys)
    assert rc == 0, err
    assert len(list((run / "results").glob("*.json"))) == 2
    ev = json.loads((run / "evaluation.json").read_text())
    assert ev["checkpoint"].endswith("latest.pth")
    assert "BootstrappedDataset" in (run / "config.gin").read_text()

    # second round: the trained model is the teacher (its run config gives the separator)
    round2 = tmp_path / "round2.gin"
    round2.write_text(textwrap.dedent(f"""
        separate.folders = {{'train': '{tiny_demo / "train"}'}}
        separate.segment_length = 1.0
        separate.hop_length = 1.0
        separate.progress = False
        separate.confidence = ['silhouette', 'posterior', 'combined']
    """))
    rc, _, err = run_cli(["separate", "-c", run / "config.gin", round2,
                          "--output", tmp_path / "round2"], capsys)
    assert rc == 0, err
    rec = json.loads(next((tmp_path / "round2" / "results").glob("*.json")).read_text())
    assert rec["metadata"]["separator"] == "DeepMaskSeparator"
    assert rec["metadata"]["checkpoint"].endswith("latest.pth")
    assert set(rec["confidence"]) == {"silhouette", "posterior", "combined"}

    from bootsep.report.compare import main as compare_main

    capsys.readouterr()
    assert compare_main(["--output", str(tmp_path), "--system", f"ensemble={tmp_path / 'ensemble'}",
                         "--system", f"bootstrapped={run}", "--separated",
                         str(tmp_path / "separated")]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1] == str(tmp_path / "comparison.md")
    table = json.loads((tmp_path / "comparison.json").read_text())
    assert list(table) == ["mixture", "ensemble", "bootstrapped"]
    assert set(table["bootstrapped"]) == {"vocals", "accompaniment"}
    assert table["mixture"]["vocals"]["SI-SDRi"] == 0.0
    assert (tmp_path / "confidence_vs_sisdr.png").stat().st_size > 1000
