"""One self-contained ``report.html``: card, plots, audio examples and provenance.

Everything is inline: CSS in a ``<style>`` block, plots as base64 PNG data URIs, audio as base64
16-bit PCM WAV data URIs. No external resource, no script. The page is kept small by playing
only a short mono clip (at most 16 kHz) around the loudest region of each example's mixture,
and shortening the clips if all of them together would exceed an audio byte budget.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..utils.io import atomic_path

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import pandas as pd

RANK_METRIC = "SI-SDR"
PREFERRED_SOURCE = "vocals"

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:1.5em auto;
max-width:1100px;padding:0 1em;color:#222;line-height:1.4}
h1{font-size:1.5em;margin-bottom:.2em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;
margin-top:1.6em}h3{margin-bottom:.3em}
pre{background:#f6f8fa;border:1px solid #ddd;padding:.8em;overflow-x:auto;font-size:12px}
table{border-collapse:collapse;margin:.5em 0;font-size:13px}
th,td{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:middle}
th{background:#f0f0f0}td.num{text-align:right;font-variant-numeric:tabular-nums}
td.key{font-weight:600;white-space:nowrap}td.val{word-break:break-all;font-family:monospace}
img{max-width:100%;border:1px solid #eee}audio{height:32px;width:260px}
.note{color:#a33;font-size:12px}.muted{color:#666;font-size:13px}
"""


@dataclass
class Example:
    """One audio example: ``roles`` (e.g. ``['best']``), the item, and its ranking score."""

    roles: list[str]
    item: str
    score: float


def ranking_source(df: pd.DataFrame) -> str | None:
    """The source examples are ranked by: ``vocals`` if present (case-insensitive), otherwise
    the first source alphabetically; None for an empty table."""
    from .card import sources_of

    sources = sources_of(df) if len(df) else []
    for s in sources:
        if s.lower() == PREFERRED_SOURCE:
            return s
    return sources[0] if sources else None


def pick_examples(df: pd.DataFrame, metric: str = RANK_METRIC) -> tuple[str | None, list[Example]]:
    """Best, median and worst items by ``metric`` of the ranking source.

    Items whose score is NaN are ignored. Scores are sorted ascending (ties broken by item
    name): worst is the first, best the last, median the lower median (index ``(n-1)//2``).
    When fewer than three items are ranked, an item holds several roles.

    Returns:
        ``(source, examples)`` with examples ordered best, median, worst (duplicates merged);
        ``(source, [])`` when the metric is missing or all NaN.
    """
    source = ranking_source(df)
    if source is None or metric not in df.columns:
        return source, []
    sub = df[df["source"].astype(str) == source][["item", metric]].dropna(subset=[metric])
    ranked = sorted(((float(v), str(i)) for i, v in zip(sub["item"], sub[metric])),
                    key=lambda t: (t[0], t[1]))
    if not ranked:
        return source, []
    picks = [("best", ranked[-1]), ("median", ranked[(len(ranked) - 1) // 2]),
             ("worst", ranked[0])]
    examples: list[Example] = []
    for role, (score, item) in picks:
        for ex in examples:
            if ex.item == item:
                ex.roles.append(role)
                break
        else:
            examples.append(Example([role], item, score))
    return source, examples


# ---------------------------------------------------------------------------------------------
# audio


def _read_mono(path: Path, start_s: float = 0.0, duration_s: float | None = None
               ) -> tuple[np.ndarray, int]:
    """Read ``[start_s, start_s + duration_s)`` of ``path`` as a mono float64 array."""
    import soundfile as sf

    info = sf.info(str(path))
    sr = int(info.samplerate)
    start = max(0, int(round(start_s * sr)))
    stop = None if duration_s is None else start + int(round(duration_s * sr))
    data, sr = sf.read(str(path), start=min(start, info.frames), stop=stop, dtype="float64",
                       always_2d=True)
    return data.mean(axis=1), int(sr)


def loudest_start(x: np.ndarray, sample_rate: int, seconds: float) -> float:
    """Start time (s) of the ``seconds``-long window of ``x`` (mono) with the most energy;
    0.0 when ``x`` is shorter than the window."""
    import numpy as np

    win = int(round(seconds * sample_rate))
    if win <= 0 or x.size <= win:
        return 0.0
    c = np.concatenate([[0.0], np.cumsum(np.asarray(x, dtype=np.float64) ** 2)])
    energy = c[win:] - c[:-win]
    return float(int(np.argmax(energy))) / sample_rate


def wav_data_uri(x: np.ndarray, sample_rate: int, max_sample_rate: int = 16000) -> str:
    """Encode mono ``x`` as a base64 16-bit PCM WAV data URI, resampled down to at most
    ``max_sample_rate`` Hz and scaled down (never up) if its peak exceeds 1."""
    import numpy as np
    import soundfile as sf

    x = np.asarray(x, dtype=np.float64).ravel()
    if sample_rate > max_sample_rate and x.size:
        import soxr

        x = soxr.resample(x, sample_rate, max_sample_rate, quality="HQ")
        sample_rate = max_sample_rate
    x = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak > 1.0:
        x = x / peak
    buf = io.BytesIO()
    sf.write(buf, x.astype(np.float32), int(sample_rate), format="WAV", subtype="PCM_16")
    return "data:audio/wav;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _resolve(path: Any, run_dir: Path) -> Path | None:
    if not path:
        return None
    p = Path(str(path))
    return p if p.is_absolute() else run_dir / p


def _player(path: Path | None, start_s: float, seconds: float, max_sample_rate: int) -> str:
    if path is None:
        return '<span class="note">no path recorded</span>'
    try:
        x, sr = _read_mono(path, start_s, seconds)
        if x.size == 0:
            raise ValueError("no samples in the clip window")
        uri = wav_data_uri(x, sr, max_sample_rate)
    except Exception as exc:  # noqa: BLE001 - any unreadable file becomes a note
        return (f'<span class="note">audio not available: {_e(path)} '
                f'({_e(type(exc).__name__)}: {_e(str(exc)[:200])})</span>')
    return f'<audio controls preload="none" src="{uri}"></audio>'


# ---------------------------------------------------------------------------------------------
# page


def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _img(path: str | os.PathLike) -> str:
    p = Path(path)
    try:
        data = base64.b64encode(p.read_bytes()).decode("ascii")
    except OSError as exc:
        return f'<p class="note">plot not available: {_e(p)} ({_e(exc)})</p>'
    return f'<p><img alt="{_e(p.name)}" src="data:image/png;base64,{data}"></p>'


def _flatten(obj: Any, prefix: str = "") -> list[tuple[str, str]]:
    if isinstance(obj, Mapping):
        rows: list[tuple[str, str]] = []
        for k, v in obj.items():
            rows += _flatten(v, f"{prefix}.{k}" if prefix else str(k))
        return rows
    if isinstance(obj, (list, tuple)):
        text = " ".join(str(v) for v in obj) if all(isinstance(v, str) for v in obj) \
            else json.dumps(obj)
        return [(prefix, text)]
    return [(prefix, "" if obj is None else str(obj))]


def _provenance(run_dir: Path) -> str:
    path = run_dir / "provenance.json"
    if not path.exists():
        return ""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return f'<h2>Provenance</h2><p class="note">{_e(path.name)} unreadable: {_e(exc)}</p>'
    rows = _flatten(data if isinstance(data, Mapping) else {"provenance": data})
    body = "".join(f'<tr><td class="key">{_e(k)}</td><td class="val">{_e(v)}</td></tr>'
                   for k, v in rows)
    return f"<h2>Provenance</h2><table>{body}</table>"


def _num(x: Any) -> str:
    from .card import fmt

    return f'<td class="num">{_e(fmt(x))}</td>'


def _item_table(df: pd.DataFrame, sources: list[str]) -> str:
    metrics = [m for m in ("SI-SDR", "SI-SDRi") if m in df.columns]
    if not metrics:
        return ""
    head = "".join(f"<th>{_e(s.upper())} {_e(m)}</th>" for s in sources for m in metrics)
    rows = []
    for item, sub in df.groupby("item", sort=True):
        cells = []
        for s in sources:
            r = sub[sub["source"].astype(str) == s]
            for m in metrics:
                cells.append(_num(r[m].iloc[0] if len(r) else math.nan))
        rows.append(f"<tr><td>{_e(item)}</td>{''.join(cells)}</tr>")
    return (f"<h2>Per-item scores (dB)</h2><table><tr><th>item</th>{head}</tr>"
            f"{''.join(rows)}</table>")


def _examples(run_dir: Path, df: pd.DataFrame, metadata: Mapping[str, Any], sources: list[str],
              audio_seconds: float, max_sample_rate: int, max_audio_bytes: int) -> str:
    from .card import fmt

    rank_source, examples = pick_examples(df)
    out = ["<h2>Audio examples</h2>"]
    if not examples:
        out.append(f'<p class="note">no {RANK_METRIC} scores to rank items by; '
                   "no audio examples.</p>")
        return "".join(out)

    plans = []
    for ex in examples:
        meta = metadata.get(ex.item) or {}
        est = meta.get("estimate_paths") or {}
        ref = meta.get("reference_paths") or {}
        recorded = set(est) | set(ref)
        names = [s for s in sources if s in recorded] + sorted(recorded.difference(sources))
        plans.append((ex, meta, names or sources, est, ref))
    n_clips = sum(1 + 2 * len(p[2]) for p in plans)
    # base64 inflates by 4/3; a WAV header is 44 bytes
    budget_s = (max_audio_bytes * 3 / 4 / n_clips - 44) / (2 * max_sample_rate)
    seconds = max(0.1, math.floor(min(audio_seconds, budget_s) * 10) / 10)
    out.append(f'<p class="muted">Ranked by {_e(rank_source.upper())} {RANK_METRIC}. '
               f"Clips: {seconds:g} s around the loudest part of the mixture, mono, "
               f"at most {max_sample_rate} Hz, 16-bit, scaled down only if they would clip."
               "</p>")

    for ex, meta, names, est, ref in plans:
        mix_path = _resolve(meta.get("mixture_path"), run_dir)
        start, start_note = 0.0, ""
        try:
            if mix_path is None:
                raise FileNotFoundError("no mixture_path recorded")
            x, sr = _read_mono(mix_path)
            start = loudest_start(x, sr, seconds)
        except Exception as exc:  # noqa: BLE001
            start_note = (f' <span class="note">(mixture unreadable, clips start at 0 s: '
                          f"{_e(type(exc).__name__)})</span>")
        scores = ", ".join(f"{_e(s.upper())} {_e(fmt(v))}"
                           for s, v in _item_scores(df, ex.item).items())
        out.append(f"<h3>{_e(' / '.join(ex.roles))}: {_e(ex.item)}</h3>"
                   f'<p class="muted">{RANK_METRIC} (dB): {scores}; clip starts at '
                   f"{start:.1f} s{start_note}</p>")
        rows = [f"<tr><td>mixture</td><td colspan=2>"
                f"{_player(mix_path, start, seconds, max_sample_rate)}</td></tr>"]
        for s in names:
            rows.append(
                f"<tr><td>{_e(s)}</td>"
                f"<td>{_player(_resolve(est.get(s), run_dir), start, seconds, max_sample_rate)}</td>"
                f"<td>{_player(_resolve(ref.get(s), run_dir), start, seconds, max_sample_rate)}"
                "</td></tr>")
        out.append("<table><tr><th></th><th>estimate</th><th>reference</th></tr>"
                   f"{''.join(rows)}</table>")
    return "".join(out)


def _item_scores(df: pd.DataFrame, item: str) -> dict[str, float]:
    if RANK_METRIC not in df.columns:
        return {}
    sub = df[df["item"].astype(str) == item].sort_values("source")
    return {str(s): float(v) for s, v in zip(sub["source"], sub[RANK_METRIC])}


def write_report_html(run_dir: str | os.PathLike, df: pd.DataFrame, card_text: str,
                      plot_paths: Sequence[str | os.PathLike] | Mapping[str, str | os.PathLike],
                      audio_seconds: float = 10.0, *, max_sample_rate: int = 16000,
                      max_audio_bytes: int = 4_500_000, title: str | None = None) -> Path:
    """Write ``<run_dir>/report.html`` (atomically) and return its path.

    Args:
        run_dir: the run folder; relative ``estimate_paths`` are resolved against it, and its
            ``provenance.json`` (if any) is shown as a table.
        df: one row per (item, source) from :func:`~bootsep.report.aggregate.load_results`;
            ``df.attrs['metadata']`` (item -> metadata with ``mixture_path``,
            ``reference_paths``, ``estimate_paths``) locates the audio; without it the
            metadata is re-read from ``<run_dir>/results``.
        card_text: the report card (shown verbatim).
        plot_paths: PNG files to embed (a sequence, or a mapping caption -> path).
        audio_seconds: longest clip per player, in seconds (default 10).
        max_sample_rate: clips are resampled down to at most this rate in Hz (default 16000).
        max_audio_bytes: budget for all embedded audio together, base64 bytes (default 4.5 MB);
            clips are shortened (same length for all) to stay under it, so the page of a
            two-source run stays under ~5 MB.
        title: page heading (default: the run folder name).

    Examples are the best, median and worst items (see :func:`pick_examples`): for each, the
    mixture, every estimate and every reference, downmixed to mono. A missing or unreadable
    audio file becomes a note instead of a player.
    """
    from .aggregate import load_metadata
    from .card import sources_of

    run_dir = Path(run_dir)
    metadata = df.attrs.get("metadata")
    if not metadata:
        metadata = load_metadata(run_dir / "results")
    sources = sources_of(df) if len(df) else []
    title = title or f"bootsep report: {run_dir.name}"

    separators = sorted({str(m.get("separator")) for m in metadata.values()
                         if isinstance(m, Mapping) and m.get("separator")})
    info = [f"{df['item'].nunique()} items", f"sources: {', '.join(sources) or 'none'}"]
    if separators:
        info.append(f"separator: {'; '.join(separators)}")

    if isinstance(plot_paths, Mapping):
        plots = "".join(f"<h3>{_e(k)}</h3>{_img(v)}" for k, v in plot_paths.items())
    else:
        plots = "".join(_img(p) for p in plot_paths)

    body = [
        f"<h1>{_e(title)}</h1>",
        f'<p class="muted">{_e(" | ".join(info))}</p>',
        "<h2>Report card</h2>",
        f"<pre>{_e(card_text)}</pre>",
        f"<h2>Plots</h2>{plots}" if plots else "",
        _examples(run_dir, df, metadata, sources, audio_seconds, max_sample_rate,
                  max_audio_bytes),
        _item_table(df, sources),
        _provenance(run_dir),
    ]
    page = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>\n"
            + "\n".join(b for b in body if b) + "\n</body></html>\n")
    page = page.encode("ascii", "xmlcharrefreplace").decode("ascii")
    out = run_dir / "report.html"
    with atomic_path(out, suffix=".html") as tmp:
        tmp.write_text(page, encoding="ascii")
    return out
