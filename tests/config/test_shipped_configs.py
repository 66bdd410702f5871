"""Every shipped .gin file parses and is instantiated with the configs it is used with, and the
demo experiment runs end to end on tiny data."""

from __future__ import annotations

import csv
import inspect
import json
import re
from pathlib import Path

import gin
import numpy as np
import pytest

from bootsep.cli.main import parse_configs
from bootsep.utils.errors import UserError

from conftest import ROOT, run_main

SHIPPED = sorted(p for d in ("musdb", "wham") if (ROOT / d).is_dir()
                 for p in (ROOT / d).rglob("*.gin"))


def test_there_are_shipped_configs():
    assert any(p.parent.name == "demo" for p in SHIPPED)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(ROOT)))
def test_shipped_config_parses(path):
    gin.clear_config()
    parse_configs([path], [])


# ---------------------------------------------------------------------------- instantiation
#: the commands each file's header documents (``python main.py CMD -c a.gin b.gin ...``), plus
#: the combinations for files whose header names its companions only in prose
_HEADER_COMMAND = re.compile(r"main\.py (\w+) ((?:-c )?(?:[\w./]+\.gin\s*)+)")
_DEMO_STUDENT = ["musdb/demo/env.gin", "musdb/demo/data.gin", "musdb/demo/bootstrap/paths.gin",
                 "musdb/demo/bootstrap/model.gin"]
_MUSDB = ["musdb/env.gin", "musdb/musdb.gin"]
_FAMILY6 = [*_MUSDB, "musdb/exp/models/dualpath_2src.gin", "musdb/exp/bootstrap/env.gin",
            "musdb/exp/bootstrap/little_data.gin"]
_SPATIAL = ["wham/env.gin", "wham/wham8k.gin", "wham/exp/spatial/env.gin"]
EXTRA = [
    ("all", [*_DEMO_STUDENT, "musdb/demo/bootstrap/supervised.gin",
             "musdb/demo/bootstrap/one_song.gin", "musdb/demo/bootstrap/finetune.gin"]),
    ("train", [*_DEMO_STUDENT, "musdb/demo/unsupervised/mixit.gin"]),
    ("evaluate", [*_DEMO_STUDENT, "musdb/demo/unsupervised/mixit.gin",
                  "musdb/demo/unsupervised/oracle.gin"]),
    ("all", [*_DEMO_STUDENT, "musdb/demo/bootstrap/bootstrapped.gin",
             "musdb/demo/unsupervised/remixit.gin"]),
    ("all", [*_FAMILY6, "musdb/exp/bootstrap/one_song.gin", "musdb/exp/bootstrap/finetune.gin"]),
    ("all", [*_FAMILY6, "musdb/exp/bootstrap/subset.gin"]),
    ("evaluate", [*_MUSDB, "musdb/exp/chimera.gin", "musdb/exp/eval_bsseval_16k.gin"]),
    ("separate", [*_SPATIAL, "wham/exp/spatial/teacher.gin", "wham/exp/spatial/separate.gin",
                  "wham/exp/spatial/confidence_js.gin"]),
    ("all", [*_SPATIAL, "wham/exp/spatial/data.gin", "wham/exp/spatial/model.gin",
             "wham/exp/spatial/student.gin", "wham/exp/spatial/chimera.gin"]),
    ("all", [*_SPATIAL, "wham/exp/spatial/data.gin", "wham/exp/spatial/model.gin",
             "wham/exp/spatial/supervised.gin", "wham/exp/spatial/mi.gin"]),
    *[("all", [*_MUSDB, f"musdb/exp/models/{m}_{n}src.gin"]) for n in (2, 4)
      for m in ("centroids", "dualpath", "mel_baseline", "openunmix")],
    *[("evaluate", ["musdb/demo/env.gin", "musdb/demo/data.gin", f"musdb/exp/primitives/{p}.gin"])
      for p in ("ft2d_m", "ft2d_r", "high_low_pass", "hpss", "ideal_binary_mask", "mixture",
                "pitch", "primitive_clustering", "primitive_clustering_adaptive",
                "primitive_clustering_demo", "primitive_clustering_reference", "repet_sim",
                "timbre", "wiener")],
]


def documented_combinations() -> list[tuple[str, tuple[str, ...]]]:
    """(command, config files) from every shipped header, then :data:`EXTRA`."""
    found = {}
    for path in SHIPPED:
        text = " ".join(line[1:].strip() for line in path.read_text().splitlines()
                        if line.startswith("#")).replace("\\ ", " ")
        for m in _HEADER_COMMAND.finditer(text):
            files = tuple(x for x in m.group(2).split() if x.endswith(".gin"))
            if all((ROOT / f).is_file() for f in files):  # not runs/<x>/config.gin
                found[(m.group(1), files)] = None
    for cmd, files in EXTRA:
        found[(cmd, tuple(files))] = None
    return list(found)


COMBINATIONS = documented_combinations()


def test_every_shipped_config_is_instantiated_somewhere():
    used = {ROOT / f for _, files in COMBINATIONS for f in files}
    assert not [str(p.relative_to(ROOT)) for p in SHIPPED if p not in used]


def _tiny_audio(path, seconds=0.5, rate=16000, channels=1, seed=0):
    from bootsep.data.audio import save_audio

    rng = np.random.default_rng(seed)
    x = (0.1 * rng.standard_normal((channels, int(seconds * rate)))).astype(np.float32)
    save_audio(path, x if channels > 1 else x[0], rate)


@pytest.fixture(scope="module")
def data_roots(tiny_demo, tmp_path_factory):
    """Environment for the configs' data roots: the tiny demo songs, a prepared-MUSDB copy of
    them (``<split>/<stem>/<song>.wav``, stereo, all five stems) and a tiny 8 kHz WHAM! folder."""
    root = tmp_path_factory.mktemp("roots")
    musdb = root / "musdb16k"
    for split in ("train", "valid", "test"):
        for song in range(2):
            for i, stem in enumerate(("mixture", "vocals", "drums", "bass", "other",
                                      "accompaniment")):
                _tiny_audio(musdb / split / stem / f"song{song}.wav", 2.0, channels=2, seed=i)
    for name, channels in (("wham", 1), ("spatial_wham", 2)):
        for split in ("tr", "cv", "tt"):
            for folder in ("mix_clean", "mix_both", "mix_single", "s1", "s2", "noise"):
                for k in range(2):
                    _tiny_audio(root / name / "wav8k" / "min" / split / folder / f"utt{k}.wav",
                                2.0, 8000, channels, seed=k)
    # every root a config reads from the environment points into tmp: absent unless made here
    # (a run's outputs, raw MUSDB, unlabelled music), so nothing outside the test is read
    names = {m for p in SHIPPED for m in re.findall(r"env_path\.name = '(\w+)'", p.read_text())}
    env = {name: str(root / "absent" / name) for name in names}
    env.update({"BOOTSEP_DEMO_ROOT": str(tiny_demo), "BOOTSEP_DEMO_UNLABELLED": str(tiny_demo),
                "MUSDB_ROOT": str(tiny_demo), "MUSDB_PREPARED": str(musdb),
                "BOOTSEP_ONE_SONG": str(musdb), "WHAM_ROOT": str(root / "wham"),
                "SPATIAL_WHAM_ROOT": str(root / "spatial_wham")})
    return env


#: configurables that run a command or need a finished run; their arguments are checked by gin
#: at parse time and their references are built below
_NOT_BUILT = {"deep_separator"}


def _query(key: str, default=None):
    """The value bound to ``key`` (``scope/name.param`` or ``%MACRO``), else ``default``."""
    try:
        return gin.query_parameter(key)
    except ValueError:
        return default


def _rate() -> int | None:
    """The rate the config binds for training or its data (None: a model file alone)."""
    for key in ("train.sample_rate", "%SAMPLE_RATE"):
        if isinstance(_query(key), int):
            return _query(key)
    return None


def _call(ref):
    """Build what a gin reference names (``@X()`` or ``@X``, scoped as bound)."""
    return ref.scoped_configurable_fn()


def _organize_output_for(error: UserError, scope: str) -> bool:
    """Make the tiny ``organize`` destination a bootstrapped dataset did not find (only inside
    the test's own ``absent`` roots): two 2-channel segments per source label."""
    m = re.search(r"bootstrapped data folder not found: (\S+?);", str(error))
    if not m or "/absent/" not in m.group(1):
        return False
    labels = _query(f"{scope}/BootstrappedDataset.sources")
    rate, dest, rows = _rate() or 16000, Path(m.group(1)), ["path"]
    for i, label in enumerate(labels or ("accompaniment", "vocals")):
        for k in range(2):
            _tiny_audio(dest / label / f"seg{k}.wav", 3.0, rate, 2, seed=i + k)
            rows.append(f"{label}/seg{k}.wav")
    (dest / "manifest.csv").write_text("\n".join(rows) + "\n")
    return True


def instantiate_bound_configurables(command: str) -> dict:
    """Build every configurable the parsed config binds, the way the command builds it, without
    running it: each bound class in its scope (gin's bindings are read from ``gin.config._CONFIG``,
    which has no public accessor), each scoped dataset as ``scoped_dataset`` builds it (with a
    tiny ``organize`` output made where a bootstrapped one is missing), the training model
    through the signal contract with its optimizer, scheduler, loss dictionaries and handlers,
    the separator ``evaluate``/``separate`` would use and ``separate``'s confidence measures.
    What needs a trained run (a checkpoint) is skipped. Returns what was built and skipped."""
    import torch

    from bootsep.config import contract, registry
    from bootsep.config.experiment import build_handler, train
    from bootsep.losses.combine import LossDict

    registry.register_all()
    built, skipped = [], []
    stft = registry.configured("STFT")()
    for scope, selector in list(gin.config._CONFIG):
        if selector == "gin.macro":
            continue
        conf = gin.config._REGISTRY.get_match(selector)
        name = selector.rsplit(".", 1)[-1]
        if not inspect.isclass(conf.wrapped) or name in _NOT_BUILT:
            continue
        cls = conf.wrapped
        if issubclass(cls, torch.nn.Module) and cls.__module__.startswith("bootsep.models"):
            with gin.config_scope(scope or None):
                contract.build_model(conf.wrapper, stft, _rate() or 16000)
        elif issubclass(cls, (torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler,
                              torch.optim.lr_scheduler.ReduceLROnPlateau,
                              torch.utils.data.Dataset)):
            continue  # built below: with the model's parameters; per dataset scope
        else:
            try:
                with gin.config_scope(scope or None):
                    conf.wrapper()
            except UserError as e:  # it wraps a trained model: there is no run here
                if "checkpoint not found" not in str(e):
                    raise
                skipped.append(f"{scope}/{name}: {e}")
                continue
        built.append(f"{scope}/{name}" if scope else name)
    for scope, selector in list(gin.config._CONFIG):  # datasets, as scoped_dataset builds them
        if selector.rsplit(".", 1)[-1] == "build_dataset" and scope:
            try:
                with gin.config_scope(scope):
                    _call(gin.query_parameter(f"{scope}/build_dataset.dataset"))
            except UserError as e:  # its files do not exist here
                if not _organize_output_for(e, scope):
                    skipped.append(f"{scope} dataset: {e}")
                    continue
                with gin.config_scope(scope):
                    _call(gin.query_parameter(f"{scope}/build_dataset.dataset"))
            built.append(f"{scope} dataset")
    bound = {sel.rsplit(".", 1)[-1] for _, sel in gin.config._CONFIG}
    if "train" in bound and command in ("train", "all", "resume", "debug", "instantiate"):
        model = gin.query_parameter("train.model")
        net = contract.build_model(_call(model) if model.evaluate else model.scoped_configurable_fn,
                                   stft, _rate() or 16000)
        opt = gin.query_parameter("train.optimizer").scoped_configurable_fn(net.parameters())
        if _query("train.scheduler") is not None:
            _query("train.scheduler").scoped_configurable_fn(opt)
        LossDict(gin.query_parameter("train.loss_dictionary"))
        if _query("train.val_loss_dictionary"):
            LossDict(_query("train.val_loss_dictionary"))
        default = inspect.signature(train).parameters["handlers"].default
        for h in _query("train.handlers", default):
            build_handler(h)
        built.append("train")
    for command_name in ("evaluate", "separate"):
        sep = _query(f"{command_name}.separator")
        if isinstance(sep, gin.config.ConfigurableReference) and \
                sep.selector.rsplit(".", 1)[-1] not in _NOT_BUILT:
            try:
                _call(sep)
            except UserError as e:
                if "checkpoint not found" not in str(e):
                    raise
                skipped.append(f"{command_name}.separator: {e}")
                continue
            built.append(f"{command_name}.separator")
    measures = _query("separate.confidence")
    if measures is not None:  # the measures separate computes, checked by name
        from bootsep.bootstrap.separate import ConfidencePlan

        ConfidencePlan(measures, _rate() or 16000, int(stft.window_length))
        built.append("separate.confidence")
    return {"built": built, "skipped": skipped}


@pytest.mark.parametrize("command, files", COMBINATIONS,
                         ids=[f"{c}:" + "+".join(f.rsplit("/", 2)[-2] + "/" + f.rsplit("/", 1)[-1]
                                                 for f in fs[-2:]) for c, fs in COMBINATIONS])
def test_shipped_configs_instantiate(command, files, data_roots, monkeypatch, tmp_path):
    for key, value in data_roots.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(ROOT)  # recipes name their configs relative to the repository
    gin.clear_config()
    parse_configs([ROOT / f for f in files],
                  [f"output_folder._output_folder = '{tmp_path / 'run'}'"])
    out = instantiate_bound_configurables(command)
    assert out["built"] or command in ("organize", "prepare"), out


def test_no_absolute_paths_in_shipped_configs():
    for p in SHIPPED:
        for line in p.read_text().splitlines():
            code = line.split("#", 1)[0]
            assert "'/" not in code and '"/' not in code, f"{p}: absolute path in {line!r}"


DEMO = [ROOT / "musdb/demo/env.gin", ROOT / "musdb/demo/data.gin", ROOT / "musdb/demo/chimera.gin"]


def test_demo_experiment_end_to_end(tmp_path, tiny_demo):
    """The shipped demo configs, shrunk by --bind, run `all` and produce every output."""
    run = tmp_path / "run"
    binds = ["train.num_epochs = 1", "train.epoch_length = 2", "train.batch_size = 2",
             "train.num_workers = 0", "Chimera.hidden_size = 8", "Chimera.num_layers = 1",
             "train.progress = False", "evaluate.progress = False"]
    args = ["all", "-c", *DEMO, "-o", run]
    for b in binds:
        args += ["-b", b]
    r = run_main(args, env={"BOOTSEP_DEMO_ROOT": str(tiny_demo)})
    assert r.returncode == 0, r.stderr[-3000:]
    for name in ["config.gin", "report_card.txt", "metrics.csv", "report.html", "provenance.json",
                 "checkpoints/latest.pth", "checkpoints/best.pth", "evaluation.json"]:
        assert (run / name).is_file(), name
    assert list((run / "logs").glob("*.log"))
    assert list((run / "logs" / "tensorboard").glob("events.*"))
    results = sorted((run / "results").glob("*.json"))
    assert len(results) == 2  # two test songs
    rec = json.loads(results[0].read_text())
    assert set(rec["sources"]) == {"accompaniment", "vocals"}
    with open(run / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert {"item", "source", "SI-SDR", "SI-SDRi"} <= set(rows[0])
    assert len(rows) == 4
    prov = json.loads((run / "provenance.json").read_text())["invocations"][-1]
    assert prov["command"] == "all" and prov["status"] == "ok" and prov["end"]
    assert "torch" in prov["versions"] and "commit" in prov["git"]
    card = (run / "report_card.txt").read_text()
    assert "MEAN +/- STD OF METRICS" in card and "VOCALS" in card
    # evaluation resumes: a second evaluate skips the existing results
    mtimes = [p.stat().st_mtime_ns for p in results]
    r2 = run_main(["evaluate", "-c", *DEMO, "-o", run, *sum((["-b", b] for b in binds), [])],
                  env={"BOOTSEP_DEMO_ROOT": str(tiny_demo)})
    assert r2.returncode == 0, r2.stderr[-2000:]
    assert [p.stat().st_mtime_ns for p in results] == mtimes
