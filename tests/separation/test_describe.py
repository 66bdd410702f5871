"""describe / fingerprint: what tells two separators apart, and what stays stable."""

from __future__ import annotations

import torch

from bootsep.dsp import STFT
from bootsep.models import Chimera
from bootsep.primitives import HPSS, AdaptiveEnsemble, EnsembleClustering, Repet
from bootsep.primitives.spatial import SpatialClustering
from bootsep.separation.base import describe, fingerprint
from bootsep.separation.deep import DeepClusteringSeparator, DeepMaskSeparator

SR = 8000


def _ensemble(repet_weight=2, hop=64):
    stft = STFT(256, hop)
    return EnsembleClustering([Repet(SR, stft), HPSS(SR, stft)], [[1], [0]], [repet_weight, 1],
                              sample_rate=SR, stft=stft)


def test_ensembles_differing_only_in_a_weight_or_the_stft_differ():
    a, b = _ensemble(), _ensemble()
    assert describe(a) == describe(b) and fingerprint(a) == fingerprint(b)
    assert describe(a)["separators"][0]["class"] == "Repet"
    assert fingerprint(_ensemble(repet_weight=3)) != fingerprint(a)
    assert fingerprint(_ensemble(hop=128)) != fingerprint(a)


def test_fingerprints_survive_separation_calls():
    ens = _ensemble()
    before = fingerprint(ens)
    ens.separate(torch.randn(1, SR * 2), with_features=True)
    assert fingerprint(ens) == before
    stft = STFT(256, 64)
    for sep in (AdaptiveEnsemble([Repet(SR, stft), HPSS(SR, stft)], [[1], [0]], [2, 1],
                                 sample_rate=SR, stft=stft),  # its weights were kept on it
                SpatialClustering(SR, stft, model="delay")):  # and its delays
        before = describe(sep)
        sep.separate(torch.randn(2, SR), with_features=True)
        assert describe(sep) == before
    model = Chimera(num_features=129, num_sources=2, hidden_size=8, num_layers=1,
                    embedding_size=4, dropout=0.0)
    for sep in (DeepMaskSeparator(model, SR, STFT(256, 64)),
                DeepClusteringSeparator(model, 2, SR, STFT(256, 64))):
        before = fingerprint(sep)
        sep.separate(torch.randn(1, SR))
        assert fingerprint(sep) == before
        assert describe(sep)["model"] == {"class": "Chimera"}
