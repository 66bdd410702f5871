"""analyze: report card, metrics.csv, plots and a self-contained report.html for a run.

Public API: :func:`analyze`, :func:`summarize`, :func:`load_results`, :func:`report_card`,
:func:`plot_metrics`, :func:`plot_scatter`, :func:`spearman`, :func:`mean_ci`,
:func:`write_report_html`, :func:`pick_examples`. All but ``analyze``/``summarize`` are imported lazily on first access,
and those two import only the standard library and ``bootsep.utils`` at module level
(``import matplotlib.pyplot`` took 3.9 s on 2 busy cores; ``analyze`` runs after every command).

Plain functions, no gin (figures are handed in or drawn here).
May import: bootstrap (reading ``separate``'s results), dsp, engine (reading checkpoints), utils.
"""

from __future__ import annotations

import importlib

# The function deliberately shadows its submodule: ``bootsep.report.analyze`` is the function.
# Importing the submodule here, first, keeps a later ``import bootsep.report.analyze`` from
# rebinding the package attribute to the module.
from .analyze import analyze, summarize

_LAZY = {
    "load_results": "aggregate",
    "METRICS": "aggregate",
    "ResultsWarning": "aggregate",
    "report_card": "card",
    "plot_metrics": "plots",
    "plot_scatter": "plots",
    "spearman": "plots",
    "mean_ci": "plots",
    "write_report_html": "html",
    "pick_examples": "html",
}

__all__ = [
    "METRICS", "ResultsWarning", "analyze", "load_results", "pick_examples", "plot_metrics",
    "plot_scatter", "report_card", "spearman", "mean_ci", "summarize", "write_report_html",
]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
