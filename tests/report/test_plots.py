import math

import numpy as np
import pandas as pd
import pytest

from bootsep.report.plots import plot_metrics, plot_scatter, spearman

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _check_png(path):
    from matplotlib.image import imread

    assert path.read_bytes()[:8] == PNG_MAGIC
    img = imread(path)
    assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100
    # not a blank canvas: something was drawn
    assert float(np.std(img[..., :3])) > 0.01
    # atomic write left no temporary file behind
    assert [p.name for p in path.parent.iterdir() if p.name.startswith(".")] == []
    return img


def _df(seed=0, n=12):
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        for s, mu in (("accompaniment", 8.0), ("vocals", 2.0)):
            rows.append({"item": f"s{i}", "source": s, "SI-SDR": rng.normal(mu, 3),
                         "SI-SDRi": rng.normal(mu - 1, 2)})
    return pd.DataFrame(rows)


def test_plot_metrics_writes_valid_png(tmp_path):
    out = plot_metrics(_df(), tmp_path / "sub" / "metrics.png")
    assert out == tmp_path / "sub" / "metrics.png"
    img = _check_png(out)
    # two panels -> wider than tall
    assert img.shape[1] > img.shape[0]


def test_plot_metrics_nan_missing_and_empty(tmp_path):
    df = _df().drop(columns=["SI-SDRi"])
    df.loc[df["source"] == "vocals", "SI-SDR"] = np.nan
    df.loc[0, "SI-SDR"] = -np.inf
    _check_png(plot_metrics(df, tmp_path / "a.png"))
    _check_png(plot_metrics(df.drop(columns=["SI-SDR"]), tmp_path / "b.png"))


def _brute_spearman(x, y):
    rx = np.argsort(np.argsort(x)).astype(float)  # no ties in the data below
    ry = np.argsort(np.argsort(y)).astype(float)
    rx -= rx.mean()
    ry -= ry.mean()
    return float(rx @ ry / math.sqrt((rx @ rx) * (ry @ ry)))


def test_spearman_matches_brute_force_and_drops_nan():
    rng = np.random.default_rng(4)
    x = rng.standard_normal(40)
    y = 0.5 * x + rng.standard_normal(40)
    rho, p, n = spearman(x, y)
    assert n == 40
    assert rho == pytest.approx(_brute_spearman(x, y), abs=1e-12)
    assert 0 < p < 0.05
    # monotone transform -> rho 1; NaN pairs dropped
    xn = np.append(x, [np.nan, 1.0])
    yn = np.append(np.exp(x), [2.0, np.inf])
    rho, _, n = spearman(xn, yn)
    assert n == 40 and rho == pytest.approx(1.0)
    assert math.isnan(spearman([1, 2], [3, 4])[0])
    assert math.isnan(spearman([1, 1, 1, 1], [3, 4, 5, 6])[0])
    with pytest.raises(ValueError):
        spearman([1, 2, 3], [1, 2])


def test_plot_scatter_writes_png(tmp_path):
    rng = np.random.default_rng(5)
    x = rng.uniform(size=30)
    out = plot_scatter(x, x + 0.1 * rng.standard_normal(30), tmp_path / "s.png",
                       "confidence", "SI-SDR (dB)", "confidence vs SI-SDR")
    _check_png(out)
    _check_png(plot_scatter([1, 2], [1, np.nan], tmp_path / "t.png"))


def test_mean_ci_brute_force_and_normal_approximation():
    import numpy as np

    from bootsep.report import mean_ci

    # brute force on three items: every one of the 27 equally likely resamples
    vals = [0.0, 1.0, 5.0]
    import itertools

    means = sorted(np.mean(c) for c in itertools.product(vals, repeat=3))
    m, lo, hi = mean_ci(vals, level=0.5, n_resamples=200000)
    assert m == pytest.approx(2.0)
    means = np.array(means)
    for q, v in ((0.25, lo), (0.75, hi)):  # v is the exact distribution's q-quantile
        below, upto = np.mean(means < v - 1e-9), np.mean(means <= v + 1e-9)
        assert below <= q + 0.01 and upto >= q - 0.01, (q, v)
    # many items: the normal approximation mean +- 1.96 s / sqrt(n)
    x = np.random.default_rng(1).normal(1.0, 2.0, size=400)
    m, lo, hi = mean_ci(list(x) + [float("nan")])
    half = 1.96 * x.std(ddof=1) / np.sqrt(x.size)
    assert m == pytest.approx(x.mean())
    assert lo == pytest.approx(m - half, abs=0.03) and hi == pytest.approx(m + half, abs=0.03)
    assert mean_ci(x, seed=3) == mean_ci(x, seed=3)  # reproducible
    assert mean_ci([2.5]) == (2.5, 2.5, 2.5)
    assert all(np.isnan(v) for v in mean_ci([]))
    with pytest.raises(ValueError, match="level"):
        mean_ci(x, level=95)
