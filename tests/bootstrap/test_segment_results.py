"""Segment records are written by the one result writer (utils.results.write_result): the same
layout and value encoding as evaluate's, which organize reads back."""

from __future__ import annotations

import json
import math

import torch

from bootsep.bootstrap.organize import load_segments
from bootsep.bootstrap.segments import find_recordings, plan_segments
from bootsep.bootstrap.separate import separate_segments

from ._fakes import SoftBandSeparator, make_song_folder

SR = 16000


class SilentVocals(SoftBandSeparator):
    """A degenerate separator: its 'vocals' mask is 0 (a silent output), 'accompaniment' the
    whole mixture."""

    def _vocal(self, mix_spec):
        return torch.zeros_like(super()._vocal(mix_spec))


def test_a_silent_estimate_is_minus_inf_not_undefined_and_organize_reads_it(tmp_path):
    songs = make_song_folder(tmp_path / "songs", n_songs=1, seconds=1.0, sr=SR, channels=2)
    segs = plan_segments(find_recordings(songs), SR, 1.0, 1.0)
    out = tmp_path / "sep"
    separate_segments(SilentVocals(SR), segs, out, num_workers=1, progress=False,
                      min_loudness=None)
    rec = json.loads((out / "results" / f"{segs[0].name}.json").read_text())
    assert list(rec) == ["item", "sources", "confidence", "permutation", "metadata"]
    assert rec["permutation"] == [[0, 1], [0, 1]]  # by label: one row per channel
    # as in evaluate's results: "-inf" = a degenerate estimate, null only for a silent reference
    assert rec["sources"]["vocals"]["SI-SDR"] == ["-inf", "-inf"]
    assert all(isinstance(x, float) for x in rec["sources"]["accompaniment"]["SI-SDR"])
    df = load_segments(out)
    assert math.isnan(df.loc[0, "vocals/SI-SDR"])  # organize: median of the finite values
    assert math.isfinite(df.loc[0, "accompaniment/SI-SDR"])


def test_labels_in_another_set_are_searched(tmp_path):
    songs = make_song_folder(tmp_path / "songs", n_songs=1, seconds=1.0, sr=SR, channels=1)
    segs = plan_segments(find_recordings(songs), SR, 1.0, 1.0)
    out = tmp_path / "sep"
    separate_segments(SoftBandSeparator(SR, source_labels=("vocals", "accompaniment")), segs,
                      out / "a", num_workers=1, progress=False, min_loudness=None)
    separate_segments(SoftBandSeparator(SR, source_labels=("s0", "s1")), segs, out / "b",
                      num_workers=1, progress=False, min_loudness=None)
    by_name = json.loads((out / "a" / "results" / f"{segs[0].name}.json").read_text())
    searched = json.loads((out / "b" / "results" / f"{segs[0].name}.json").read_text())
    # output 0 is the low band ('accompaniment'): named 'vocals' it is still scored by name...
    assert by_name["permutation"] == [[1, 0]]
    assert by_name["sources"]["vocals"]["SI-SDR"][0] < 0
    # ...while unknown labels are matched by the search
    assert searched["permutation"] == [[0, 1]]
    assert searched["sources"]["vocals"]["SI-SDR"][0] > 5
