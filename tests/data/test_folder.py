import pickle

import numpy as np
import pytest
import torch

from bootsep.data.audio import save_audio
from bootsep.data.cache import AudioCache
from bootsep.data.folder import StemFolderDataset, detect_layout
from bootsep.data.mixing import Remixer
from bootsep.utils.errors import UserError

from ._tagged import SCALES, decode_tag, tag_signal, write_tagged

SR = 16000


@pytest.fixture
def tagged_root(tmp_path):
    return write_tagged(tmp_path / "data")


def _decode_item(item, sources=("accompaniment", "vocals")):
    return [decode_tag(item["sources"][k, 0].numpy(), SCALES[name])
            for k, name in enumerate(sources)]


def test_full_songs(tagged_root):
    ds = StemFolderDataset(tagged_root, "train")
    assert ds.layout == "song" and len(ds) == 6 and ds.songs[0] == "song00"
    item = ds[2]
    assert item["mix"].shape == (1, SR) and item["sources"].shape == (2, 1, SR)
    assert item["mix"].dtype == torch.float32 and item["name"] == "song02"
    assert item["index"] == 2 and item["offset"] == 0.0 and item["coherent"]
    assert _decode_item(item) == [(2, 0), (2, 0)]
    # the mixture file here is the exact sum of the stems
    assert torch.equal(item["mix"], item["sources"].sum(0))
    assert len(StemFolderDataset(tagged_root, "train", num_items=4)) == 4
    with pytest.raises(IndexError):
        ds[6]


def test_excerpts_are_reproducible_and_distinct(tagged_root):
    kw = dict(excerpt_seconds=0.25, num_items=20, seed=3)
    a, b = StemFolderDataset(tagged_root, "train", **kw), StemFolderDataset(tagged_root, "train", **kw)
    assert len(a) == 20
    spans = []
    for i in range(20):
        x, y = a[i], b[i]
        assert torch.equal(x["mix"], y["mix"]) and torch.equal(x["sources"], y["sources"])
        (song, start), (song2, start2) = _decode_item(x)
        assert (song, start) == (song2, start2)  # coherent: same song, same time
        assert x["name"] == f"song{song:02d}" and x["offset"] == start / SR
        assert x["mix"].shape == (1, 4000)
        spans.append((song, start))
    assert len(set(spans)) == 20
    c = StemFolderDataset(tagged_root, "train", excerpt_seconds=0.25, num_items=20, seed=4)
    assert [tuple(_decode_item(c[i])[0]) for i in range(20)] != spans


def test_dataloader_workers_match_direct_indexing(tagged_root):
    ds = StemFolderDataset(tagged_root, "train", excerpt_seconds=0.25, num_items=8,
                           remix=Remixer(balance=0.5, gain_jitter_db=2.0))
    loader = torch.utils.data.DataLoader(ds, batch_size=4, num_workers=2, shuffle=False)
    batches = list(loader)
    direct = torch.stack([ds[i]["mix"] for i in range(8)])
    assert torch.equal(torch.cat([b["mix"] for b in batches]), direct)
    assert torch.cat([b["index"] for b in batches]).tolist() == list(range(8))
    pickle.loads(pickle.dumps(ds))


def test_incoherent_remix_takes_sources_from_different_songs(tagged_root):
    ds = StemFolderDataset(tagged_root, "train", excerpt_seconds=0.25, num_items=30,
                           remix=Remixer(balance=1.0))
    for i in range(30):
        item = ds[i]
        (s0, t0), (s1, t1) = _decode_item(item)
        assert s0 != s1 and not item["coherent"]
        assert item["name"] == f"song{s0:02d}+song{s1:02d}"
        assert item["offsets"].tolist() == pytest.approx([t0 / SR, t1 / SR])
        assert torch.equal(item["mix"], item["sources"].sum(0))
    coherent = StemFolderDataset(tagged_root, "train", excerpt_seconds=0.25, num_items=30,
                                 remix=Remixer(balance=0.0))
    for i in range(30):
        (s0, t0), (s1, t1) = _decode_item(coherent[i])
        assert (s0, t0) == (s1, t1)


def test_gain_jitter_scales_each_source(tagged_root):
    ds = StemFolderDataset(tagged_root, "train", excerpt_seconds=0.25, num_items=10,
                           remix=Remixer(balance=0.0, gain_jitter_db=6.0))
    plain = StemFolderDataset(tagged_root, "train", excerpt_seconds=0.25, num_items=10,
                              remix=Remixer(balance=0.0))
    seen = []
    for i in range(10):
        item, ref = ds[i], plain[i]
        gains = item["gains_db"].numpy()
        assert np.all(np.abs(gains) <= 6.0)
        seen.extend(gains)
        # jitter draws come after the picks, so the spans equal the un-jittered dataset's
        expected = ref["sources"] * torch.from_numpy(10 ** (gains / 20)).float()[:, None, None]
        torch.testing.assert_close(item["sources"], expected, rtol=1e-6, atol=1e-7)
        assert torch.equal(item["mix"], item["sources"].sum(0))
    assert np.ptp(seen) > 4.0


def test_stem_layout_auto_detected_and_equivalent(tmp_path, tagged_root):
    stem_root = write_tagged(tmp_path / "stems", layout="stem")
    assert detect_layout(stem_root / "train") == "stem"
    a = StemFolderDataset(tagged_root, "train")
    b = StemFolderDataset(stem_root, "train")
    assert b.layout == "stem" and b.songs == a.songs
    for i in range(len(a)):
        assert torch.equal(a[i]["sources"], b[i]["sources"]) and torch.equal(a[i]["mix"], b[i]["mix"])


def test_stems_found_by_explicit_names_not_path_text(tmp_path):
    # the root, and a song, are named after stems: string replacement would break this
    root = write_tagged(tmp_path / "vocals_accompaniment", names=["vocals", "accompaniment", "x"])
    ds = StemFolderDataset(root, "train", sources=("vocals", "accompaniment"))
    assert ds.layout == "song" and ds.songs == ["accompaniment", "vocals", "x"]
    item = ds[1]  # folder 'vocals' holds tag 0
    assert [decode_tag(item["sources"][k, 0].numpy(), SCALES[n])
            for k, n in enumerate(("vocals", "accompaniment"))] == [(0, 0), (0, 0)]


def test_derived_accompaniment_and_mixture(tmp_path):
    root = write_tagged(tmp_path / "d", n_songs=2, stems=("vocals", "drums", "bass", "other"))
    for song in ("song00", "song01"):
        (root / "train" / song / "mixture.wav").unlink()
    ds = StemFolderDataset(root, "train", sources=("accompaniment", "vocals", "drums"))
    item = ds[1]
    d, b, o = (tag_signal(1, SR, SCALES[s]) for s in ("drums", "bass", "other"))
    np.testing.assert_array_equal(item["sources"][0, 0].numpy(), d + b + o)
    assert decode_tag(item["sources"][2, 0].numpy(), SCALES["drums"]) == (1, 0)
    v = tag_signal(1, SR, SCALES["vocals"])
    np.testing.assert_array_equal(item["mix"][0].numpy(), v + d + b + o)


def test_clear_errors(tmp_path, tagged_root):
    with pytest.raises(UserError, match="dataset root not found: .*missing"):
        StemFolderDataset(tmp_path / "missing", "train")
    with pytest.raises(UserError, match=r"split folder not found: .*valid; the expected layout is ROOT/<split>"):
        StemFolderDataset(tagged_root, "valid")
    (tagged_root / "train" / "song03" / "vocals.wav").unlink()
    with pytest.raises(UserError, match=r"missing stem 'vocals' of song 'song03': expected "
                                        r".*train/song03/vocals.wav"):
        StemFolderDataset(tagged_root, "train")
    (tagged_root / "train" / "song01" / "accompaniment.wav").unlink()
    with pytest.raises(UserError, match=r"'accompaniment' of song 'song01'.*parts drums, bass"):
        StemFolderDataset(tagged_root, "train", sources=("accompaniment",))
    with pytest.raises(UserError, match=r"^remixing needs excerpt_seconds \(whole songs cannot "
                                        r"be remixed\)"):
        StemFolderDataset(tagged_root, "train", remix=Remixer())
    fresh = write_tagged(tmp_path / "t", n_songs=2)
    with pytest.raises(UserError, match=r"^no songs left in .*train \(min_seconds=5\); the "
                                        r"expected layout is ROOT/<split>/<song>"):
        StemFolderDataset(fresh, "train", min_seconds=5)
    with pytest.raises(UserError, match=r"^num_items must be >= 1, got 0"):  # was 0 items
        StemFolderDataset(fresh, "train", num_items=0)
    with pytest.raises(UserError, match=r"^layout must be 'auto', 'song' or 'stem'"):
        StemFolderDataset(fresh, "train", layout="songs")
    (tmp_path / "e" / "train" / "vocals").mkdir(parents=True)
    (tmp_path / "e" / "train" / "vocals" / "notes.txt").write_text("x")
    with pytest.raises(UserError, match=r"^no audio files in the stem folders of .*e/train; "):
        StemFolderDataset(tmp_path / "e", "train")
    (tmp_path / "f" / "train").mkdir(parents=True)
    with pytest.raises(UserError, match=r"^no song folders in .*f/train; "):
        StemFolderDataset(tmp_path / "f", "train")


def test_near_silent_excerpts_are_redrawn(tmp_path):
    root = write_tagged(tmp_path / "s", n_songs=3)
    for song in ("song00", "song01"):  # two of three songs are silent
        for stem in ("vocals", "accompaniment", "mixture"):
            save_audio(root / "train" / song / f"{stem}.wav", np.zeros(SR, np.float32), SR)

    def silent_fraction(retries):
        ds = StemFolderDataset(root, "train", excerpt_seconds=0.25, num_items=40,
                               max_retries=retries)
        return np.mean([float(ds[i]["mix"].abs().max()) == 0.0 for i in range(40)])

    assert silent_fraction(0) > 0.45
    assert silent_fraction(10) <= 0.05


def test_resampling_stereo_padding_and_min_seconds(tmp_path):
    root = tmp_path / "r"
    sr = 44100
    t = np.arange(int(0.5 * sr)) / sr
    tone = np.sin(2 * np.pi * 440 * t).astype(np.float32)
    save_audio(root / "test" / "a" / "mixture.wav", np.stack([tone, -tone]), sr)
    save_audio(root / "test" / "a" / "vocals.wav", tone, sr)
    save_audio(root / "test" / "b" / "mixture.wav", np.stack([tone, tone])[:, :sr // 10], sr)
    save_audio(root / "test" / "b" / "vocals.wav", tone[: sr // 10], sr)
    ds = StemFolderDataset(root, "test", sources=("vocals",), mono=False)
    item = ds[0]
    assert item["mix"].shape == (2, 8000) and item["sources"].shape == (1, 2, 8000)
    assert torch.equal(item["sources"][0, 0], item["sources"][0, 1])  # mono stem repeated
    spec = np.abs(np.fft.rfft(item["sources"][0, 0].numpy()))  # 2 Hz bins
    assert int(np.argmax(spec)) == 220
    short = StemFolderDataset(root, "test", sources=("vocals",), excerpt_seconds=0.3,
                              num_items=20)
    items = [short[i] for i in range(20)]
    assert all(x["mix"].shape == (1, 4800) for x in items)
    padded = [x for x in items if x["name"] == "b"]
    assert padded and all(float(x["mix"][0, 1600:].abs().max()) == 0.0 for x in padded)
    assert StemFolderDataset(root, "test", sources=("vocals",), min_seconds=0.2).songs == ["a"]


def test_uses_cache_folder(tmp_path, tagged_root):
    ds = StemFolderDataset(tagged_root, "train", excerpt_seconds=0.25, num_items=5,
                           cache=tmp_path / "cache")
    assert isinstance(ds.cache, AudioCache)
    ref = StemFolderDataset(tagged_root, "train", excerpt_seconds=0.25, num_items=5)
    for i in range(5):
        assert torch.equal(ds[i]["mix"], ref[i]["mix"])
    assert len(list((tmp_path / "cache").glob("*.npy"))) > 0


def test_songs_selects_a_subset_by_name_or_count(tagged_root):
    one = StemFolderDataset(tagged_root, "train", songs=["song03"])
    assert one.songs == ["song03"] and len(one) == 1
    assert _decode_item(one[0]) == [(3, 0), (3, 0)]
    assert StemFolderDataset(tagged_root, "train", songs=["song04", "song01"]).songs == [
        "song01", "song04"]
    assert StemFolderDataset(tagged_root, "train", songs=2).songs == ["song00", "song01"]
    # excerpts and remixing then only ever draw from the kept song
    ex = StemFolderDataset(tagged_root, "train", songs=["song03"], excerpt_seconds=0.25,
                           num_items=8, remix=Remixer(balance=1.0))
    assert {_decode_item(ex[i])[0][0] for i in range(8)} == {3}
    with pytest.raises(UserError, match=r"songs \['nope'\] not found"):
        StemFolderDataset(tagged_root, "train", songs=["nope"])
    with pytest.raises(UserError, match="songs must be"):
        StemFolderDataset(tagged_root, "train", songs=0)


def test_speed_perturbation_moves_pitch_and_keeps_plans(tmp_path, tagged_root):
    """``Remixer.speed_range``: a coherent mixture plays all its sources at one rate, an
    incoherent one each at its own, within [1 - r, 1 + r]; a source plays ``speed`` times
    faster (a 1 kHz tone comes out at ``speed`` kHz); the picks (songs, starts, gains) are the
    unperturbed remixer's, and the mixture is still the sum of the sources."""
    n = 2 * SR
    t = np.arange(n) / SR
    for k in range(3):
        for stem, f in (("vocals", 1000.0), ("accompaniment", 250.0)):
            x = (0.3 * np.sin(2 * np.pi * f * (1 + 0.01 * k) * t)).astype(np.float32)[None]
            save_audio(tmp_path / "tones" / "train" / f"song{k}" / f"{stem}.wav", x, SR)
    kw = dict(excerpt_seconds=0.5, num_items=12)
    fast = StemFolderDataset(tmp_path / "tones", "train", **kw,
                             remix=Remixer(balance=0.5, gain_jitter_db=2.0, speed_range=0.2))
    plain = StemFolderDataset(tmp_path / "tones", "train", **kw,
                              remix=Remixer(balance=0.5, gain_jitter_db=2.0))
    saw_both = set()
    for i in range(12):
        plan = fast.remix.plan(np.random.default_rng([0, i]), fast._lengths, SR // 2, 2)
        ref = plain.remix.plan(np.random.default_rng([0, i]), plain._lengths, SR // 2, 2)
        speeds = [p.speed for p in plan.picks]
        assert [(p.song, p.start, p.gain_db) for p in plan.picks] == \
            [(p.song, p.start, p.gain_db) for p in ref.picks]
        assert all(0.8 <= v <= 1.2 for v in speeds)
        assert (speeds[0] == speeds[1]) == plan.coherent
        saw_both.add(plan.coherent)
        item = fast[i]
        assert torch.allclose(item["mix"], item["sources"].sum(0))
        for k, pick in enumerate(plan.picks):
            x = item["sources"][k, 0].numpy()
            spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
            peak = np.argmax(spec) * SR / len(x)
            base = (1000.0 if k == 1 else 250.0) * (1 + 0.01 * pick.song)
            assert abs(peak - base * pick.speed) < 6.0, (peak, base, pick.speed)
    assert saw_both == {True, False}
    with pytest.raises(ValueError, match="speed_range"):
        Remixer(speed_range=0.5)
