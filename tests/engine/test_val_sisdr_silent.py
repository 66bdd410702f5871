"""Validation SI-SDR leaves silent references out instead of averaging in ~-80 dB (issue 11
item 8)."""

from __future__ import annotations

import math

import torch

from bootsep.engine.trainer import pit_si_sdr
from bootsep.metrics.bsseval import si_sdr


def test_silent_reference_is_left_out_of_the_mean():
    torch.manual_seed(0)
    ref = torch.randn(2, 2, 800)
    ref[0, 1] = 0.0  # example 0: second source silent
    est = ref + 0.1 * torch.randn_like(ref)
    got = pit_si_sdr(est, ref)
    assert math.isclose(float(got[0]), float(si_sdr(est[:1, :1], ref[:1, :1])), rel_tol=1e-5)
    brute = max(float(si_sdr(est[1:, list(p)], ref[1:]).mean()) for p in ((0, 1), (1, 0)))
    assert math.isclose(float(got[1]), brute, rel_tol=1e-5)
    assert float(got.min()) > 0  # not dragged towards -80 dB


def test_all_silent_example_is_undefined():
    ref = torch.zeros(1, 2, 400)
    assert torch.isnan(pit_si_sdr(torch.randn(1, 2, 400), ref)).all()
