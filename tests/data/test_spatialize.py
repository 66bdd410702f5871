"""spatialize_wham: deterministic rooms, exact sums, metadata, resumability, clear errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from bootsep.data.spatialize import spatialize_wham
from bootsep.data.wham import WHAMDataset
from bootsep.utils.errors import UserError

SR = 8000
SMALL = dict(room_size=((3.0, 4.0), (3.0, 4.0), (2.5, 3.0)), rt60=(0.15, 0.25),
             source_distance=(0.5, 1.0), wall_distance=0.3, mic_spacing=(0.05, 0.2),
             splits=("tt",), progress=False)


@pytest.fixture(scope="module")
def wham_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("wham")
    rng = np.random.default_rng(0)
    for i in range(2):
        n = 4000 + 400 * i
        for folder in ("s1", "s2", "noise"):
            d = root / "wav8k" / "min" / "tt" / folder
            d.mkdir(parents=True, exist_ok=True)
            sf.write(d / f"utt{i}.wav", 0.1 * rng.standard_normal(n), SR, subtype="FLOAT")
    return root


def _read(path):
    x, sr = sf.read(path, dtype="float32", always_2d=True)
    assert sr == SR
    return x.T


def test_deterministic_sums_and_metadata(wham_root, tmp_path):
    a = spatialize_wham(wham_root, tmp_path / "a", seed=3, **SMALL)
    b = spatialize_wham(wham_root, tmp_path / "b", seed=3, num_workers=2, **SMALL)  # same output
    c = spatialize_wham(wham_root, tmp_path / "c", seed=4, **SMALL)
    tt = "wav8k/min/tt"
    for folder in ("mix_clean", "mix_both", "mix_single", "s1", "s2", "noise", "s1_anechoic",
                   "s2_anechoic"):
        x, y = _read(f"{a}/{tt}/{folder}/utt1.wav"), _read(f"{b}/{tt}/{folder}/utt1.wav")
        assert x.shape == (2, 4400)
        assert np.array_equal(x, y), folder
    assert not np.array_equal(_read(f"{a}/{tt}/s1/utt0.wav"), _read(f"{c}/{tt}/s1/utt0.wav"))
    s1, s2, noise = (_read(f"{a}/{tt}/{f}/utt0.wav") for f in ("s1", "s2", "noise"))
    # documented: the mixtures are the exact float32 sums of the reverberant images
    assert np.array_equal(_read(f"{a}/{tt}/mix_clean/utt0.wav"), s1 + s2)
    assert np.array_equal(_read(f"{a}/{tt}/mix_both/utt0.wav"), s1 + s2 + noise)
    assert np.array_equal(_read(f"{a}/{tt}/mix_single/utt0.wav"), s1 + noise)
    # the direct path is part of the reverberant image, not all of it
    direct = _read(f"{a}/{tt}/s1_anechoic/utt0.wav")
    assert 0 < np.sum(direct ** 2) < np.sum(s1 ** 2)
    meta = json.loads((tmp_path / "a" / "spatialize" / "tt" / "utt0.json").read_text())
    for key in ("room_size", "rt60", "mic_spacing", "mic_positions", "array_center",
                "wall_absorption", "max_order", "gain"):
        assert key in meta
    assert len(meta["sources"]) == 3 and {s["name"] for s in meta["sources"]} == {"s1", "s2", "noise"}
    assert 0.15 <= meta["rt60"] <= 0.25 and 0.05 <= meta["mic_spacing"] <= 0.2
    mics = np.asarray(meta["mic_positions"])
    assert np.linalg.norm(mics[0] - mics[1]) == pytest.approx(meta["mic_spacing"])

    # the WHAM! reader: one microphone or all of them
    both = WHAMDataset(a, split="tt", channel="all")[0]
    assert both["mix"].shape == (2, 4000) and both["sources"].shape == (2, 2, 4000)
    mic1 = WHAMDataset(a, split="tt", channel=1)[0]
    assert mic1["mix"].shape == (1, 4000)
    assert np.array_equal(mic1["sources"][:, 0].numpy(), both["sources"][:, 1].numpy())
    with pytest.raises(UserError, match="channel"):
        WHAMDataset(a, split="tt", channel=2)

    # an interrupted run resumes: only the missing utterance is rendered again, identically
    meta1 = tmp_path / "b" / "spatialize" / "tt" / "utt1.json"
    meta1.unlink()
    (tmp_path / "b" / tt / "s1" / "utt1.wav").unlink()
    spatialize_wham(wham_root, tmp_path / "b", seed=3, num_workers=2, **SMALL)
    assert meta1.is_file()
    assert np.array_equal(_read(f"{a}/{tt}/s1/utt1.wav"), _read(f"{b}/{tt}/s1/utt1.wav"))
    # rerun: resumes (nothing to do); other settings: refused
    spatialize_wham(wham_root, tmp_path / "a", seed=3, **SMALL)
    with pytest.raises(UserError, match="other settings"):
        spatialize_wham(wham_root, tmp_path / "a", seed=5, **SMALL)


@pytest.mark.parametrize("bad, match", [
    (dict(rt60=(0.5, 0.2)), "rt60"),
    (dict(rt60=(0.05, 0.1), room_size=((8.0, 9.0), (8.0, 9.0), (3.0, 3.5))), "RT60"),
    (dict(room_size=((1.0, 1.5), (1.0, 1.5), (2.5, 3.0))), "room"),
    (dict(mic_height=(1.0, 3.0)), "mic_height"),
    (dict(num_mics=1), "num_mics"),
    (dict(room_size=((3.0, 4.0), (3.0, 4.0))), "room_size"),
    (dict(num_workers=0), "num_workers"),
])
def test_bad_room_config_is_one_clear_error(wham_root, tmp_path, bad, match):
    kw = {**SMALL, **bad}
    with pytest.raises(UserError, match=match):
        spatialize_wham(wham_root, tmp_path / "x", **kw)


def test_wham_sources_rename_on_a_spatialized_folder(wham_root, tmp_path):
    out = spatialize_wham(wham_root, tmp_path / "s", seed=1, max_utterances=1, **SMALL)
    ds = WHAMDataset(out, split="tt", channel=0, sources=["source0", "source1"])
    assert ds.sources == ("source0", "source1")
    assert set(ds[0]["paths"]["reference_paths"]) == {"source0", "source1"}
    with pytest.raises(UserError, match="distinct names"):
        WHAMDataset(out, split="tt", sources=["a"])
