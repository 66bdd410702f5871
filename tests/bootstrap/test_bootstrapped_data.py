"""BootstrappedDataset: an organize output read as remixed training data."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from bootsep.bootstrap.organize import organize
from bootsep.bootstrap.segments import find_recordings, plan_segments
from bootsep.bootstrap.separate import separate_segments
from bootsep.data.bootstrapped import BootstrappedDataset, folder_labels
from bootsep.utils.errors import UserError

from ._fakes import SoftBandSeparator, make_song_folder

SR = 16000


@pytest.fixture(scope="module")
def organized(tmp_path_factory):
    root = tmp_path_factory.mktemp("boot")
    make_song_folder(root / "train", n_songs=3, seconds=2.0, sr=SR)
    segs = plan_segments(find_recordings(root / "train"), SR, 1.0, 1.0)
    separate_segments(SoftBandSeparator(SR), segs, root / "sep", confidence=["combined"],
                      progress=False)
    organize(root / "sep", root / "data" / "above_q2", measure="combined", bin="above_q2")
    return root / "data" / "above_q2"


def test_coherent_items_are_excerpts_of_one_segments_estimates(organized):
    ds = BootstrappedDataset(organized, excerpt_seconds=0.25, num_items=12, seed=3)
    assert ds.sources == ("accompaniment", "vocals") == folder_labels(organized)
    assert len(ds.songs) == 5 and len(ds) == 12  # 6 segments, top 80 %: 5
    for i in range(4):
        item = ds[i]
        assert item["coherent"] and "+" not in item["name"]
        np.testing.assert_allclose(item["mix"].numpy(), item["sources"].sum(0).numpy(), atol=1e-6)
        start = int(round(item["offset"] * SR))
        for k, label in enumerate(ds.sources):
            audio, _ = sf.read(str(organized / label / f"{item['name']}.wav"), dtype="float32")
            np.testing.assert_allclose(item["sources"][k, 0].numpy(),
                                       audio[start:start + 4000], atol=1e-6)
    again = BootstrappedDataset(organized, excerpt_seconds=0.25, num_items=12, seed=3)
    assert np.array_equal(again[5]["mix"].numpy(), ds[5]["mix"].numpy())  # deterministic


def test_incoherent_items_mix_different_segments(organized):
    ds = BootstrappedDataset(organized, excerpt_seconds=0.25, num_items=8, balance=1.0,
                             gain_jitter_db=3.0)
    names = [ds[i]["name"] for i in range(8)]
    assert all("+" in n and n.split("+")[0] != n.split("+")[1] for n in names)
    assert "BootstrappedDataset(" in repr(ds) and "balance=1.0" in repr(ds)


def test_errors(tmp_path, organized):
    with pytest.raises(UserError, match="not found"):
        BootstrappedDataset(tmp_path / "nope")
    (tmp_path / "plain" / "vocals").mkdir(parents=True)
    with pytest.raises(UserError, match="manifest"):
        BootstrappedDataset(tmp_path / "plain")
    with pytest.raises(UserError, match="missing stem"):
        BootstrappedDataset(organized, sources=("vocals", "drums"))
