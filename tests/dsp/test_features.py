"""dsp.features: the one rank percentile (loud-bin thresholds of ensemble, spatial, deep)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bootsep.dsp import rank_percentile


@pytest.mark.parametrize("p", [0.0, 10.0, 50.0, 80.0, 99.0, 100.0])
def test_rank_percentile_is_numpy_nearest_rank(p):
    x = torch.from_numpy(np.random.default_rng(0).standard_normal((7, 13)))
    want = np.percentile(x.numpy(), p, method="nearest")
    assert float(rank_percentile(x, p)) == pytest.approx(want, abs=0)
    assert rank_percentile(x, 0.0) == x.min() and rank_percentile(x, 100.0) == x.max()
    assert rank_percentile(torch.tensor([3.0]), p) == 3.0
