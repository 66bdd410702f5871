import numpy as np
import pytest

from bootsep.data.mixing import Remixer, draw_excerpt

LENGTHS = [16000, 24000, 8000, 32000, 16000, 4000]


def _plans(remixer, n=300, seed=0):
    return [remixer.plan(np.random.default_rng([seed, i]), LENGTHS, 6000, 2) for i in range(n)]


def test_plan_is_deterministic_per_seed():
    r = Remixer(balance=0.5, gain_jitter_db=3.0)
    assert _plans(r, 50) == _plans(r, 50)
    assert _plans(r, 50) != _plans(r, 50, seed=1)


@pytest.mark.parametrize("balance", [0.0, 1.0])
def test_balance_extremes(balance):
    for plan in _plans(Remixer(balance=balance)):
        songs = [p.song for p in plan.picks]
        starts = [p.start for p in plan.picks]
        assert plan.coherent == (balance == 0.0)
        if balance == 0.0:
            assert len(set(songs)) == 1 and len(set(starts)) == 1
        else:
            assert len(set(songs)) == 2  # distinct songs while there are enough
        for p in plan.picks:
            assert 0 <= p.start <= max(0, LENGTHS[p.song] - 6000)
            assert p.gain_db == 0.0


def test_balance_is_incoherent_probability_and_gains_in_range():
    plans = _plans(Remixer(balance=0.3, gain_jitter_db=4.0), n=1000)
    frac = np.mean([not p.coherent for p in plans])
    assert 0.25 < frac < 0.35
    gains = np.array([p.gain_db for plan in plans for p in plan.picks])
    assert gains.min() >= -4.0 and gains.max() <= 4.0
    assert gains.min() < -3.5 and gains.max() > 3.5 and abs(gains.mean()) < 0.3


def test_draw_excerpt_covers_valid_starts_and_short_songs():
    rng = np.random.default_rng(0)
    draws = [draw_excerpt(rng, LENGTHS, 6000) for _ in range(2000)]
    assert {s for s, _ in draws} == set(range(len(LENGTHS)))
    for s, t in draws:
        assert 0 <= t <= max(0, LENGTHS[s] - 6000)
        if LENGTHS[s] <= 6000:
            assert t == 0
    starts3 = [t for s, t in draws if s == 3]
    assert max(starts3) > 0.9 * (32000 - 6000)


def test_invalid_arguments():
    with pytest.raises(ValueError):
        Remixer(balance=1.5)
    with pytest.raises(ValueError):
        Remixer(gain_jitter_db=-1)
