"""The signal contract (issue 12 item 1): sample rate, source labels and STFT settings bound in
different places are derived or compared, and a mismatch is one `error:` line with exit 2."""

from __future__ import annotations

import gin
import pytest

from bootsep.config import contract, registry
from bootsep.dsp import STFT
from bootsep.utils.errors import UserError

from conftest import run_main


def _ds(rate=16000, sources=("accompaniment", "vocals"), name="StemFolderDataset"):
    cls = type(name, (), {})
    ds = cls()
    ds.sample_rate, ds.sources = rate, tuple(sources)
    return ds


def _one_error_line(r) -> str:
    assert r.returncode == 2, r.stderr[-3000:]
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr[-3000:]
    return lines[0]


# ---------------------------------------------------------------- train (unit)
def test_train_rate_is_derived_from_the_dataset_or_checked():
    assert contract.check_train(None, _ds(44100)) == (44100, ["accompaniment", "vocals"])
    assert contract.check_train(44100, _ds(44100), _ds(44100))[0] == 44100
    with pytest.raises(UserError, match=r"train.sample_rate = 16000 but the train dataset's "
                                        r"StemFolderDataset.sample_rate = 44100; bind one"):
        contract.check_train(16000, _ds(44100))
    with pytest.raises(UserError, match=r"the val dataset's WHAMDataset.sample_rate = 8000 but "
                                        r"the model trains at 16000 Hz"):
        contract.check_train(None, _ds(16000), _ds(8000, name="WHAMDataset"))
    with pytest.raises(UserError, match="train.sample_rate is not bound"):
        contract.check_train(None, _ds(None))


def test_train_labels_come_from_the_dataset_and_must_agree():
    with pytest.raises(UserError, match=r"train.source_labels = \['vocals', 'accompaniment'\] "
                                        r"but the train dataset's StemFolderDataset.sources = "
                                        r"\['accompaniment', 'vocals'\]"):
        contract.check_train(None, _ds(), source_labels=["vocals", "accompaniment"])
    with pytest.raises(UserError, match=r"the val dataset's StemFolderDataset.sources = "
                                        r"\['vocals', 'accompaniment'\] but the model trains on"):
        contract.check_train(None, _ds(), _ds(sources=("vocals", "accompaniment")))


def test_model_features_and_mel_rate_are_derived_from_the_stft_and_rate():
    registry.register_all()
    gin.parse_config(["Chimera.hidden_size = 4", "Chimera.num_layers = 1",
                      "Chimera.embedding_size = 2", "Chimera.n_mels = 8"])
    cls = registry.configured("Chimera")
    net = contract.build_model(cls, STFT(256, 64), 8000)
    assert net.init_args["num_features"] == 129 and net.init_args["sample_rate"] == 8000
    gin.parse_config(["Chimera.num_features = 257"])
    with pytest.raises(UserError, match=r"Chimera.num_features = 257 but the STFT "
                                        r"\(STFT.window_length = 256\) has 129 frequency bins"):
        contract.build_model(cls, STFT(256, 64), 8000)
    gin.parse_config(["Chimera.num_features = 129", "Chimera.sample_rate = 16000"])
    with pytest.raises(UserError, match=r"Chimera.sample_rate = 16000 \(its mel filterbank\) "
                                        r"but the model trains at 8000 Hz"):
        contract.build_model(cls, STFT(256, 64), 8000)
    # a model built outside gin is checked the same way
    from bootsep.models.recurrent import MaskInference

    with pytest.raises(UserError, match="MaskInference.num_features = 33"):
        contract.build_model(MaskInference(33, hidden_size=2, num_layers=1), STFT(256, 64), 8000)


# ---------------------------------------------------------------- evaluate / separate (unit)
def _sep(rate=16000, labels=("accompaniment", "vocals"), stft=None, **extra):
    from bootsep.separation.base import Separator

    s = Separator(sample_rate=rate, stft=stft, source_labels=labels)
    for k, v in extra.items():
        setattr(s, k, v)
    return s


def test_evaluate_rate_names_the_checkpoint_and_the_dataset():
    contract.check_evaluate(_sep(16000), _ds(16000))
    sep = _sep(16000, checkpoint_path="runs/x/checkpoints/best.pth")
    with pytest.raises(UserError, match=r"the model runs/x/checkpoints/best.pth \(trained at "
                                        r"train.sample_rate\) = 16000 but the test dataset's "
                                        r"StemFolderDataset.sample_rate = 44100; evaluate at "
                                        r"the model's rate"):
        contract.check_evaluate(sep, _ds(44100))
    with pytest.raises(UserError, match=r"Separator.sample_rate = 8000 but the test dataset's"):
        contract.check_evaluate(_sep(8000), _ds(16000))


def test_evaluate_labels_order_is_aligned_a_different_set_is_refused():
    contract.check_evaluate(_sep(labels=("vocals", "accompaniment")), _ds())  # by name
    with pytest.raises(UserError, match=r"the separator's sources \['harmonic', 'percussive'\] "
                                        r"are not the test dataset's StemFolderDataset.sources "
                                        r"= \['accompaniment', 'vocals'\]; .*"
                                        r"evaluate.compute_permutation = True"):
        contract.check_evaluate(_sep(labels=("harmonic", "percussive")), _ds())
    contract.check_evaluate(_sep(labels=("harmonic", "percussive")), _ds(),
                            compute_permutation=True)
    contract.check_evaluate(_sep(labels=("s0", "s1"), arbitrary_order=True), _ds())
    with pytest.raises(UserError, match="has 1 sources"):
        contract.check_evaluate(_sep(labels=("vocals",)), _ds(), compute_permutation=True)


def test_unbound_stft_falling_back_to_the_default_is_refused():
    small = STFT(256, 64)
    contract.check_stft(_sep(stft=small), small)          # bound: fine
    contract.check_stft(_sep(), STFT())                     # default == the config's: fine
    with pytest.raises(UserError, match=r"Separator.stft is not bound, so Separator falls back "
                                        r"to the default STFT \(512/128 sqrt_hann\), but the "
                                        r"config's STFT is 256/64 sqrt_hann; bind "
                                        r"Separator.stft = @STFT\(\)"):
        contract.check_stft(_sep(), small)
    # ensemble members are checked too, and primitive_clustering's own fallback
    from bootsep.primitives.ensemble import EnsembleClustering, primitive_clustering
    from bootsep.primitives.hpss import HPSS

    ens = EnsembleClustering([HPSS()], [[0]], stft=STFT())
    with pytest.raises(UserError, match="HPSS.stft is not bound"):
        contract.check_stft(ens, small)
    with pytest.raises(UserError, match="EnsembleClustering.stft is not bound"):
        contract.check_stft(primitive_clustering(), small)
    contract.check_stft(primitive_clustering(stft=small), small)


def test_deep_separator_rate_comes_from_the_checkpoint():
    from bootsep.models.recurrent import MaskInference
    from bootsep.separation.deep import load_separator

    model = MaskInference(129, hidden_size=2, num_layers=1)
    ckpt = {"model": model.serialize(), "stft": STFT(256, 64).params.to_dict(),
            "sample_rate": 8000, "source_labels": ["s1", "s2"]}
    assert load_separator(ckpt).sample_rate == 8000
    with pytest.raises(UserError, match=r"deep_separator.sample_rate = 16000 but the model "
                                        r"checkpoint dict was trained at 8000 Hz"):
        load_separator(ckpt, sample_rate=16000)
    del ckpt["sample_rate"]
    with pytest.raises(UserError, match="records no sample_rate"):
        load_separator(ckpt)
    assert load_separator(ckpt, sample_rate=8000).sample_rate == 8000


# ---------------------------------------------------------------- the commands (CLI)
def test_cli_train_rate_mismatch(tmp_path, write_config):
    cfg = write_config(**{"train.sample_rate": 44100})
    line = _one_error_line(run_main(["train", "-c", cfg, "-o", tmp_path / "run"]))
    assert ("train.sample_rate = 44100 but the train dataset's StemFolderDataset.sample_rate "
            "= 16000; bind one rate") in line
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_cli_train_num_features_mismatch(tmp_path, write_config):
    cfg = write_config(**{"Chimera.num_features": 257})
    line = _one_error_line(run_main(["train", "-c", cfg, "-o", tmp_path / "run"]))
    assert "Chimera.num_features = 257 but the STFT (STFT.window_length = 256) has 129" in line


PRIMITIVE = {"evaluate.separator": "@Repet()", "Repet.sample_rate": 16000,
             "Repet.stft": "@STFT()"}


def test_cli_evaluate_rate_mismatch(tmp_path, write_config):
    cfg = write_config(**{**PRIMITIVE, "Repet.sample_rate": 8000})
    line = _one_error_line(run_main(["evaluate", "-c", cfg, "-o", tmp_path / "run"]))
    assert ("Repet.sample_rate = 8000 but the test dataset's StemFolderDataset.sample_rate = "
            "16000") in line
    assert not (tmp_path / "run" / "results").exists()


def test_cli_evaluate_trained_model_on_another_rate(tmp_path, write_config):
    run = tmp_path / "run"
    cfg = write_config(**{"train.num_epochs": 1, "train.epoch_length": 1})
    r = run_main(["train", "-c", cfg, "-o", run])
    assert r.returncode == 0, r.stderr[-2000:]
    line = _one_error_line(run_main(["evaluate", "-c", cfg, "-o", run, "-b",
                                     "test/StemFolderDataset.sample_rate = 8000"]))
    assert "(trained at train.sample_rate) = 16000 but the test dataset's " \
           "StemFolderDataset.sample_rate = 8000" in line
    assert not (run / "results").exists()


def test_cli_evaluate_labels_of_another_set(tmp_path, write_config):
    cfg = write_config(**{**PRIMITIVE, "Repet.source_labels": "['background', 'foreground']"})
    line = _one_error_line(run_main(["evaluate", "-c", cfg, "-o", tmp_path / "run"]))
    assert "the separator's sources ['background', 'foreground'] are not the test dataset's" \
           in line


def test_cli_evaluate_and_separate_refuse_an_unbound_stft(tmp_path, write_config, tiny_demo):
    cfg = write_config(**{"evaluate.separator": "@Repet()"})  # config STFT is 256/64
    line = _one_error_line(run_main(["evaluate", "-c", cfg, "-o", tmp_path / "run"]))
    assert "Repet.stft is not bound, so Repet falls back to the default STFT (512/128" in line
    song = sorted((tiny_demo / "test").iterdir())[0] / "mixture.wav"
    line = _one_error_line(run_main(["separate", "-c", cfg, "--input", song,
                                     "--output", tmp_path / "out"]))
    assert "bind Repet.stft = @STFT()" in line
    assert not (tmp_path / "out").exists()


def test_separate_segment_mode_labels_are_checked_against_the_references(tmp_path, tiny_demo):
    from bootsep.config.separate import separate

    sep = _sep(labels=("harmonic", "percussive"), stft=STFT())
    with pytest.raises(UserError, match=r"the separator's sources \['harmonic', 'percussive'\] "
                                        r"are not the references \(separate.sources\) = "
                                        r"\['accompaniment', 'vocals'\]; bind separate.sources"):
        separate(separator=sep, output=str(tmp_path / "out"),
                 folders={"t": str(tiny_demo / "test")}, progress=False)
