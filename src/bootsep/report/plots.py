"""PNG plots for the report: metric distributions per source, and a generic scatter.

Figures are drawn on the Agg canvas directly (no pyplot, no display, no global backend
switch) and written atomically.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..utils.io import atomic_path

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

DEFAULT_PLOT_METRICS = ("SI-SDR", "SI-SDRi", "SDR")  # those present (SDR: BSS-Eval v4)


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: str | os.PathLike, dpi: int = 100) -> Path:
    path = Path(path)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    return path


def plot_metrics(df: pd.DataFrame, path: str | os.PathLike,
                 metrics: Sequence[str] = DEFAULT_PLOT_METRICS) -> Path:
    """Box + strip plot of each metric per source, the mean marked and printed.

    Args:
        df: one row per (item, source) with a ``source`` column and one column per metric (dB).
        path: output PNG path (written atomically; parent folders are created).
        metrics: metrics to plot, one panel each (default SI-SDR, SI-SDRi and SDR); those missing
            from ``df`` are skipped. NaN and infinite values are left out of the plot.

    Returns:
        ``Path(path)``.
    """
    import numpy as np

    from .card import sources_of

    present = [m for m in metrics if m in df.columns]
    sources = sources_of(df) if "source" in df.columns and len(df) else []
    panel_width = max(3.5, 1.2 + 1.2 * len(sources))  # inches
    fig = _figure(panel_width * max(1, len(present)), 4.2)
    if not present or not sources:
        ax = fig.add_subplot(1, 1, 1)
        ax.text(0.5, 0.5, f"no {' / '.join(metrics)} values to plot", ha="center",
                va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return _save(fig, path)

    rng = np.random.default_rng(0)  # deterministic jitter
    axes = fig.subplots(1, len(present), squeeze=False)[0]
    for ax, metric in zip(axes, present):
        data, positions, counts = [], [], []
        for i, source in enumerate(sources):
            v = df.loc[df["source"].astype(str) == source, metric].to_numpy(dtype=np.float64)
            v = v[np.isfinite(v)]
            counts.append(v.size)
            if v.size:
                data.append(v)
                positions.append(i)
            else:
                ax.text(i, 0.0, "no data", ha="center", va="center", fontsize=8)
        if data:
            ax.boxplot(data, positions=positions, widths=0.5, showfliers=False,
                       medianprops={"color": "tab:orange", "linewidth": 1.5})
            for pos, v in zip(positions, data):
                x = pos + rng.uniform(-0.15, 0.15, size=v.size)
                ax.scatter(x, v, s=12, alpha=0.55, color="tab:blue", linewidths=0, zorder=3)
                mean = float(np.mean(v))
                ax.scatter([pos], [mean], marker="D", s=45, color="tab:red", zorder=4,
                           label="mean" if pos == positions[0] else None)
                ax.text(pos + 0.29, mean, f"{mean:.2f}", va="center", ha="left", fontsize=8,
                        color="tab:red", zorder=5,
                        bbox={"boxstyle": "round,pad=0.15", "facecolor": "white",
                              "edgecolor": "none", "alpha": 0.85})
            ax.legend(loc="best", fontsize=8)
        ax.axhline(0.0, color="0.6", linewidth=0.8, linestyle="--", zorder=1)
        ax.set_xticks(range(len(sources)),
                      [f"{s.upper()}\n(n={n})" for s, n in zip(sources, counts)])
        ax.set_xlim(-0.6, len(sources) - 0.4)
        ax.set_ylabel(f"{metric} (dB)")
        ax.set_title(f"{metric} per source")
        ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def spearman(x: Sequence[float], y: Sequence[float]) -> tuple[float, float, int]:
    """Spearman's rank correlation over the pairs where both values are finite.

    Returns:
        ``(rho, p_value, n)``; rho and p are NaN when fewer than 3 pairs remain or one side
        is constant.
    """
    import numpy as np
    from scipy import stats

    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"x and y differ in length: {x.size} vs {y.size}")
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    n = int(x.size)
    if n < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return math.nan, math.nan, n
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = stats.spearmanr(x, y)
    return float(res.statistic), float(res.pvalue), n


def mean_ci(values: Sequence[float], level: float = 0.95, n_resamples: int = 10000,
            seed: int = 0) -> tuple[float, float, float]:
    """The mean of the finite ``values`` and its percentile-bootstrap confidence interval.

    Args:
        values: per-item figures (e.g. SI-SDRi per test mixture, dB); NaNs are dropped.
        level: coverage of the interval (default 0.95).
        n_resamples: bootstrap resamples of the items, with replacement (default 10000).
        seed: the resampling's seed (default 0), so a figure is reproducible.
    Returns:
        ``(mean, low, high)``; all NaN for no finite value, ``(v, v, v)`` for one.
    """
    import numpy as np

    x = np.asarray(values, dtype=np.float64).ravel()
    x = x[np.isfinite(x)]
    if x.size == 0:
        return math.nan, math.nan, math.nan
    if not 0.0 < float(level) < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(int(n_resamples), x.size))].mean(axis=1)
    tail = 50.0 * (1.0 - float(level))
    lo, hi = np.percentile(means, [tail, 100.0 - tail])
    return float(x.mean()), float(lo), float(hi)


def plot_scatter(x: Sequence[float], y: Sequence[float], path: str | os.PathLike,
                 xlabel: str = "x", ylabel: str = "y", title: str | None = None,
                 vline: float | None = None, vline_label: str | None = None) -> Path:
    """Scatter of ``y`` against ``x`` annotated with Spearman's rho, its p-value and n.

    Used e.g. for confidence vs SI-SDR. Pairs with a NaN/inf on either side are dropped.

    Args:
        x, y: equal-length sequences of numbers.
        path: output PNG path (written atomically).
        xlabel, ylabel, title: axis labels and optional title.
        vline, vline_label: optional vertical line at ``x = vline`` (e.g. a selection cut)
            and its legend label.

    Returns:
        ``Path(path)``.
    """
    import numpy as np

    rho, p, n = spearman(x, y)
    xa = np.asarray(x, dtype=np.float64).ravel()
    ya = np.asarray(y, dtype=np.float64).ravel()
    keep = np.isfinite(xa) & np.isfinite(ya)
    fig = _figure(5.0, 4.0)
    ax = fig.add_subplot(1, 1, 1)
    ax.scatter(xa[keep], ya[keep], s=16, alpha=0.7, color="tab:blue", linewidths=0)
    text = (f"Spearman rho = {rho:.3f} (p = {p:.2g}, n = {n})" if not math.isnan(rho)
            else f"Spearman rho = n/a (n = {n})")
    ax.text(0.02, 0.98, text, transform=ax.transAxes, ha="left", va="top", fontsize=9,
            bbox={"boxstyle": "round", "facecolor": "white", "alpha": 0.8, "edgecolor": "0.7"})
    if vline is not None and math.isfinite(vline):
        ax.axvline(vline, color="tab:red", linestyle="--", linewidth=1.2, label=vline_label)
        if vline_label:
            ax.legend(loc="lower right", fontsize=8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def png_bytes(fig, dpi: int = 100) -> bytes:
    """The figure as PNG bytes (for embedding; nothing written)."""
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def jpeg_bytes(fig, dpi: int = 90, quality: int = 85) -> bytes:
    """The figure as JPEG bytes: spectrograms are noise-like images that PNG barely
    compresses (a third of a megabyte each), JPEG keeps them near 50 kB."""
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="jpeg", dpi=dpi, pil_kwargs={"quality": quality})
    return buf.getvalue()


def training_curves_figure(history: Sequence[dict], evaluated_epoch: int | None = None,
                           metric: str = "SI-SDR"):
    """Loss (train and validation), the validation ``metric`` and the learning rate per epoch.

    Args:
        history: one record per epoch as the trainer writes it: ``epoch``, ``lr``, ``train``
            and ``validation`` dicts of means (``loss`` is the weighted total).
        evaluated_epoch: marked with a dashed line on every panel (the checkpoint evaluated).
        metric: validation metric of the middle panel (skipped when never logged).

    Returns:
        A matplotlib Figure (Agg canvas) with 2 or 3 panels side by side.
    """
    import numpy as np

    epochs = np.array([float(h.get("epoch", i + 1)) for i, h in enumerate(history)])

    def series(part: str, key: str):
        return np.array([float((h.get(part) or {}).get(key, np.nan)) for h in history])

    val_metric = series("validation", metric)
    panels = ["loss"] + ([metric] if np.isfinite(val_metric).any() else []) + ["lr"]
    fig = _figure(4.2 * len(panels), 3.4)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, panel in zip(axes, panels):
        if panel == "loss":
            for part, color in (("train", "tab:blue"), ("validation", "tab:orange")):
                v = series(part, "loss")
                if np.isfinite(v).any():
                    ax.plot(epochs, v, marker="o", markersize=3, color=color, label=part)
            ax.set_title("loss per epoch")
            ax.set_ylabel("loss")
            ax.legend(fontsize=8)
        elif panel == "lr":
            lr = np.array([float(h.get("lr", np.nan)) for h in history])
            ax.plot(epochs, lr, marker="o", markersize=3, color="tab:green")
            if np.all(lr[np.isfinite(lr)] > 0):
                ax.set_yscale("log")
            ax.set_title("learning rate")
            ax.set_ylabel("lr")
        else:
            ax.plot(epochs, val_metric, marker="o", markersize=3, color="tab:purple")
            ax.set_title(f"validation {metric}")
            ax.set_ylabel(f"{metric} (dB)")
        if evaluated_epoch is not None:
            ax.axvline(float(evaluated_epoch), color="0.4", linestyle="--", linewidth=1,
                       label="evaluated" if panel == "loss" else None)
            if panel == "loss":
                ax.legend(fontsize=8)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    return fig


def plot_training_curves(history: Sequence[dict], path: str | os.PathLike,
                         evaluated_epoch: int | None = None) -> Path:
    """Write :func:`training_curves_figure` to ``path`` (PNG, atomically)."""
    return _save(training_curves_figure(history, evaluated_epoch), path)


def spectrograms_figure(signals: Sequence[tuple[str, Sequence[float]]], sample_rate: int,
                        window_length: int = 1024, hop_length: int = 256,
                        dynamic_range_db: float = 80.0):
    """dB magnitude spectrograms side by side (one per ``(label, mono signal)``), on one colour
    scale (the loudest bin of all of them is 0 dB), computed with :class:`bootsep.dsp.STFT`.

    Args:
        signals: ``[(label, samples), ...]``, e.g. the mixture then each estimate.
        sample_rate: Hz (the y axis is in kHz).
        window_length, hop_length: STFT sizes in samples (defaults 1024 / 256).
        dynamic_range_db: colours span this many dB below the peak (default 80).
    """
    import numpy as np
    import torch

    from ..dsp.stft import STFT

    stft = STFT(window_length=window_length, hop_length=hop_length)
    mags = []
    for _, x in signals:
        x = torch.as_tensor(np.asarray(x, dtype=np.float32).ravel())
        if x.numel() < window_length:
            x = torch.nn.functional.pad(x, (0, window_length - x.numel()))
        mags.append(stft(x[None]).abs()[0].numpy())  # (time, freq)
    peak = max((float(m.max()) for m in mags), default=1.0) or 1.0
    n = max(1, len(signals))
    fig = _figure(3.3 * n, 2.6)
    axes = fig.subplots(1, n, squeeze=False)[0]
    image = None
    for ax, (label, _), mag in zip(axes, signals, mags):
        db = 20 * np.log10(np.maximum(mag / peak, 1e-10))
        extent = (0, mag.shape[0] * hop_length / sample_rate, 0, sample_rate / 2000)
        image = ax.imshow(db.T, origin="lower", aspect="auto", extent=extent, cmap="magma",
                          vmin=-dynamic_range_db, vmax=0)
        ax.set_title(str(label), fontsize=10)
        ax.set_xlabel("s")
    axes[0].set_ylabel("kHz")
    if image is not None:
        fig.colorbar(image, ax=list(axes), label="dB", shrink=0.9, pad=0.01)
    return fig
