"""One self-contained ``report.html`` that answers "what did this run do".

Sections: the model and checkpoint (class, parameter count, which checkpoint and epoch was
evaluated, training data, lineage when fine-tuned), training curves (loss, validation metric
and learning rate per epoch), the report card, plots, audio examples (best / median / worst
item, with spectrograms of the mixture and each estimate), per-item SI-SDR / SI-SIR / SI-SAR,
and provenance as a table with each invocation's final status (the CLI rewrites that section
after the command ends: :func:`refresh_provenance`).

Everything is inline: CSS in a ``<style>`` block, plots as base64 PNG data URIs, audio as base64
16-bit PCM WAV data URIs. No external resource, no script. The page is kept small by playing
only a short mono clip (at most 16 kHz) around the loudest region of each example's mixture,
and shortening the clips if all of them together would exceed an audio byte budget. With
``link_audio=True`` (gin: ``analyze.link_audio = True``) players link the audio files by relative
path instead, and the page stays small whatever the number of examples.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os
import shlex
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
td.ok{color:#1a7f37;font-weight:600}td.bad{color:#c62828;font-weight:600}
details{margin:.4em 0}summary{cursor:pointer;color:#444}code{font-size:12px}
td.nw{white-space:nowrap}
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


def _link(path: Path, run_dir: Path) -> str:
    """``path`` relative to the run folder (where report.html is), as a URL path."""
    from urllib.parse import quote

    rel = os.path.relpath(os.path.abspath(path), os.path.abspath(run_dir))
    return quote(Path(rel).as_posix())


def _player(path: Path | None, start_s: float, seconds: float, max_sample_rate: int,
            link_from: Path | None = None) -> str:
    if path is None:
        return '<span class="note">no path recorded</span>'
    if link_from is not None:
        if not path.is_file():
            return f'<span class="note">audio not available: {_e(path)}</span>'
        return (f'<audio controls preload="none" src="{_e(_link(path, link_from))}"></audio>'
                f' <a class="muted" href="{_e(_link(path, link_from))}">file</a>')
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


PROVENANCE_BEGIN = "<!-- provenance -->"
PROVENANCE_END = "<!-- /provenance -->"


def _status_cell(status: Any) -> str:
    text = "" if status is None else str(status)
    cls = "ok" if text == "ok" else "bad" if text.startswith("failed") else ""
    return f'<td class="{cls}">{_e(text)}</td>' if cls else f"<td>{_e(text)}</td>"


def _provenance(run_dir: Path) -> str:
    """Provenance as tables: one row per invocation (command, start, end, final status, git,
    device, command line), then the package versions of the last one. Wrapped in markers so
    :func:`refresh_provenance` can rewrite it once the command has ended."""
    path = run_dir / "provenance.json"
    if not path.exists():
        return ""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return (f'{PROVENANCE_BEGIN}<h2>Provenance</h2><p class="note">{_e(path.name)} '
                f"unreadable: {_e(exc)}</p>{PROVENANCE_END}")
    runs = data.get("invocations") if isinstance(data, Mapping) else None
    if not isinstance(runs, list):
        rows = _flatten(data if isinstance(data, Mapping) else {"provenance": data})
        body = "".join(f'<tr><td class="key">{_e(k)}</td><td class="val">{_e(v)}</td></tr>'
                       for k, v in rows)
        return f"{PROVENANCE_BEGIN}<h2>Provenance</h2><table>{body}</table>{PROVENANCE_END}"
    rows = []
    for r in runs:
        if not isinstance(r, Mapping):
            continue
        git = r.get("git") or {}
        commit = str(git.get("commit") or "")[:10] + (" (dirty)" if git.get("dirty") else "")
        dev = r.get("device") or {}
        device = ", ".join(dev.get("gpus") or []) or ("CUDA" if dev.get("cuda") else "CPU")
        if dev.get("cpu_count"):
            device += f" ({dev['cpu_count']} CPUs)"
        argv = shlex.join(str(a) for a in (r.get("argv") or []))
        start, end = (str(r.get(k) or "").replace("T", " ") for k in ("start", "end"))
        rows.append(f'<tr><td class="nw">{_e(r.get("command", ""))}</td>'
                    f'<td class="nw">{_e(start)}</td><td class="nw">{_e(end)}</td>'
                    f"{_status_cell(r.get('status'))}"
                    f'<td class="nw">{_e(commit)}</td><td class="nw">{_e(device)}</td>'
                    f'<td class="val">{_e(argv)}</td></tr>')
    table = ("<table><tr><th>command</th><th>start</th><th>end</th><th>status</th><th>git</th>"
             f"<th>device</th><th>command line</th></tr>{''.join(rows)}</table>")
    last = next((r for r in reversed(runs) if isinstance(r, Mapping)), {})
    versions = last.get("versions") or {}
    vtable = ""
    if versions:
        cells = "".join(f"<tr><td class=\"key\">{_e(k)}</td><td>{_e(v)}</td></tr>"
                        for k, v in versions.items())
        vtable = (f"<details><summary>package versions (last invocation)</summary>"
                  f"<table>{cells}</table></details>")
    configs = last.get("configs") or []
    ctext = (f'<p class="muted">configs: {_e(" ".join(map(str, configs)))}</p>' if configs
             else "")
    return (f"{PROVENANCE_BEGIN}<h2>Provenance</h2>{table}{ctext}{vtable}{PROVENANCE_END}")


def refresh_provenance(run_dir: str | os.PathLike) -> Path | None:
    """Rewrite the provenance section of ``<run_dir>/report.html`` from ``provenance.json``
    (call it after the command has ended, so the page shows its final status). Returns the
    page's path, or None when there is no report or it has no provenance section."""
    run_dir = Path(run_dir)
    out = run_dir / "report.html"
    if not out.is_file():
        return None
    page = out.read_text(encoding="ascii", errors="replace")
    i, j = page.find(PROVENANCE_BEGIN), page.find(PROVENANCE_END)
    if i < 0 or j < i:
        return None
    section = _provenance(run_dir).encode("ascii", "xmlcharrefreplace").decode("ascii")
    page = page[:i] + section + page[j + len(PROVENANCE_END):]
    with atomic_path(out, suffix=".html") as tmp:
        tmp.write_text(page, encoding="ascii")
    return out


# ---------------------------------------------------------------------------------------------
# what the run did: model, checkpoint, data, lineage, training curves


def _kv_table(rows: Sequence[tuple[str, str]]) -> str:
    body = "".join(f'<tr><td class="key">{_e(k)}</td><td>{v}</td></tr>' for k, v in rows)
    return f"<table>{body}</table>"


def _model_summary(run_dir: Path, info) -> str:
    """The "Model and checkpoint" section from a :class:`~bootsep.report.runinfo.RunInfo`."""
    rows: list[tuple[str, str]] = []
    if info.model_class:
        rows.append(("model", _e(info.model_class.rsplit(".", 1)[-1])
                     + f' <span class="muted">({_e(info.model_class)})</span>'))
    if info.num_parameters is not None:
        rows.append(("parameters", f"{info.num_parameters:,}"))
    if info.model_args:
        args = ", ".join(f"{k}={v!r}" for k, v in info.model_args.items())
        rows.append(("constructor arguments", f"<code>{_e(args)}</code>"))
    if info.separator:
        rows.append(("evaluated separator", _e(info.separator)))
    if info.evaluated_checkpoint:
        ck = Path(str(info.evaluated_checkpoint))
        shown = ck.relative_to(run_dir.resolve()) if ck.is_absolute() and \
            ck.is_relative_to(run_dir.resolve()) else ck
        rows.append(("evaluated checkpoint", f"{_e(shown)} (epoch {_e(info.evaluated_epoch)})"))
    elif info.separator:
        rows.append(("evaluated checkpoint", "none (a separator without training)"))
    if info.epochs_trained is not None:
        trained = f"{info.epochs_trained}"
        if info.num_epochs:
            trained += f" of {info.num_epochs} configured"
        rows.append(("epochs trained", _e(trained)))
    if info.best_val_loss is not None and math.isfinite(info.best_val_loss):
        best = f"{info.best_val_loss:.4g}"
        if info.best_epoch is not None:
            best += f" at epoch {info.best_epoch}"
        rows.append(("best validation loss", _e(best)))
    if info.training_data:
        rows.append(("training data", "<br>".join(f"<code>{_e(ln)}</code>"
                                                  for ln in info.training_data)))
    if info.test_data:
        rows.append(("test data", f"<code>{_e(info.test_data)}</code>"))
    if info.lineage:
        lin = info.lineage
        text = (f"fine-tuned from {_e(lin.get('init_from_checkpoint'))} "
                f"(epoch {_e(lin.get('parent_epoch'))}, {_e(lin.get('parent_model'))})")
        rows.append(("lineage", text))
    else:
        rows.append(("lineage", "trained from scratch" if info.model_class else "n/a"))
    notes = "".join(f'<p class="note">{_e(p)}</p>' for p in info.problems)
    return f'<h2 id="model">Model and checkpoint</h2>{_kv_table(rows)}{notes}'


def _training_curves(info) -> str:
    if not info.history:
        what = "no training history (no checkpoint in this run)" if not info.model_class \
            else "no epoch history in the checkpoint"
        return f'<h2 id="training">Training curves</h2><p class="muted">{_e(what)}</p>'
    from .plots import png_bytes, training_curves_figure

    fig = training_curves_figure(info.history, info.evaluated_epoch)
    data = base64.b64encode(png_bytes(fig)).decode("ascii")
    last = info.history[-1]
    val = last.get("validation") or {}
    summary = (f"{len(info.history)} epochs; last: train loss "
               f"{_fmt_float((last.get('train') or {}).get('loss'))}, validation loss "
               f"{_fmt_float(val.get('loss'))}"
               + (f", validation SI-SDR {_fmt_float(val.get('SI-SDR'))} dB"
                  if val.get("SI-SDR") is not None else "")
               + f", lr {_fmt_float(last.get('lr'))}. Dashed line: the evaluated checkpoint.")
    return (f'<h2 id="training">Training curves</h2><p class="muted">{_e(summary)}</p>'
            f'<p><img alt="training curves" src="data:image/png;base64,{data}"></p>')


def _fmt_float(x: Any) -> str:
    try:
        return f"{float(x):.4g}"
    except (TypeError, ValueError):
        return "n/a"


def _num(x: Any) -> str:
    from .card import fmt

    return f'<td class="num">{_e(fmt(x))}</td>'


ITEM_METRICS = ("SI-SDR", "SI-SIR", "SI-SAR", "SI-SDRi")


def _item_table(df: pd.DataFrame, sources: list[str]) -> str:
    metrics = [m for m in ITEM_METRICS if m in df.columns]
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
    return (f'<h2 id="items">Per-item scores (dB)</h2><table><tr><th>item</th>{head}</tr>'
            f"{''.join(rows)}</table>")


def _spectrograms(mix_path: Path | None, estimates: Sequence[tuple[str, Path | None]],
                  start: float, seconds: float) -> str:
    """Embedded PNG: spectrograms of the mixture and each estimate over the clip window."""
    from .plots import jpeg_bytes, spectrograms_figure

    signals, sr, missing = [], None, []
    for label, path in [("mixture", mix_path), *estimates]:
        if path is None:
            missing.append(label)
            continue
        try:
            x, rate = _read_mono(path, start, seconds)
        except Exception:  # noqa: BLE001 - an unreadable file is left out and named
            missing.append(label)
            continue
        if sr is None:
            sr = rate
        elif rate != sr:
            import soxr

            x = soxr.resample(x, rate, sr)
        signals.append((label if label == "mixture" else f"estimate: {label}", x))
    if not signals:
        return ""
    data = base64.b64encode(jpeg_bytes(spectrograms_figure(signals, sr))).decode("ascii")
    note = (f' <span class="note">(not shown, unreadable: {_e(", ".join(missing))})</span>'
            if missing else "")
    return (f'<p class="muted">Spectrograms, {seconds:g} s from {start:.1f} s, one dB scale '
            f'(0 dB = loudest bin).{note}</p>'
            f'<p><img alt="spectrograms" src="data:image/jpeg;base64,{data}"></p>')


def _examples(run_dir: Path, df: pd.DataFrame, metadata: Mapping[str, Any], sources: list[str],
              audio_seconds: float, max_sample_rate: int, max_audio_bytes: int,
              link_audio: bool = False, spectrograms: bool = True) -> str:
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
    link_from = run_dir if link_audio else None
    if link_audio:
        seconds = float(audio_seconds)
        out.append(f'<p class="muted">Ranked by {_e(rank_source.upper())} {RANK_METRIC}. '
                   "Players link the audio files (whole files, relative to this page; "
                   "analyze.link_audio = True): keep the page next to the run's estimates.</p>")
    else:
        # base64 inflates by 4/3; a WAV header is 44 bytes
        budget_s = (max_audio_bytes * 3 / 4 / n_clips - 44) / (2 * max_sample_rate)
        seconds = max(0.1, math.floor(min(audio_seconds, budget_s) * 10) / 10)
        out.append(f'<p class="muted">Ranked by {_e(rank_source.upper())} {RANK_METRIC}. '
                   f"Clips: {seconds:g} s around the loudest part of the mixture, mono, "
                   f"at most {max_sample_rate} Hz, 16-bit, scaled down only if they would clip "
                   "(analyze.link_audio = True links the files instead).</p>")

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
                f"{_player(mix_path, start, seconds, max_sample_rate, link_from)}</td></tr>"]
        for s in names:
            e_path, r_path = _resolve(est.get(s), run_dir), _resolve(ref.get(s), run_dir)
            rows.append(
                f"<tr><td>{_e(s)}</td>"
                f"<td>{_player(e_path, start, seconds, max_sample_rate, link_from)}</td>"
                f"<td>{_player(r_path, start, seconds, max_sample_rate, link_from)}"
                "</td></tr>")
        out.append("<table><tr><th></th><th>estimate</th><th>reference</th></tr>"
                   f"{''.join(rows)}</table>")
        if spectrograms:
            out.append(_spectrograms(mix_path, [(s, _resolve(est.get(s), run_dir))
                                                for s in names if est.get(s)],
                                     start, min(seconds, 10.0)))
    return "".join(out)


def _item_scores(df: pd.DataFrame, item: str) -> dict[str, float]:
    if RANK_METRIC not in df.columns:
        return {}
    sub = df[df["item"].astype(str) == item].sort_values("source")
    return {str(s): float(v) for s, v in zip(sub["source"], sub[RANK_METRIC])}


def write_report_html(run_dir: str | os.PathLike, df: pd.DataFrame, card_text: str,
                      plot_paths: Sequence[str | os.PathLike] | Mapping[str, str | os.PathLike],
                      audio_seconds: float = 10.0, *, max_sample_rate: int = 16000,
                      max_audio_bytes: int = 4_500_000, title: str | None = None,
                      link_audio: bool = False, spectrograms: bool = True) -> Path:
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
        link_audio: players link the audio files (relative to the run folder) instead of
            embedding clips (default False: embedded, self-contained page).
        spectrograms: draw the mixture's and each estimate's spectrogram for every example
            (default True).

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

    from .runinfo import run_info

    run = run_info(run_dir)
    body = [
        f"<h1>{_e(title)}</h1>",
        f'<p class="muted">{_e(" | ".join(info))}</p>',
        _model_summary(run_dir, run),
        _training_curves(run),
        '<h2 id="card">Report card</h2>',
        f"<pre>{_e(card_text)}</pre>",
        f"<h2>Plots</h2>{plots}" if plots else "",
        _examples(run_dir, df, metadata, sources, audio_seconds, max_sample_rate,
                  max_audio_bytes, link_audio=link_audio, spectrograms=spectrograms),
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
