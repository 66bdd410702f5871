"""Bootstrapping: run a separator over recordings and build training folders from its results.

- :mod:`~bootsep.bootstrap.segments`: recordings cut into overlapping segments, loudness gating.
- :mod:`~bootsep.bootstrap.separate`: segment mode (confidence per segment, resumable, shards);
  :mod:`~bootsep.bootstrap.separate_files`: file mode (``separate --input``).
- :mod:`~bootsep.bootstrap.pipeline`: segment mode's prefetch reader and bounded writer pool.
- :mod:`~bootsep.bootstrap.results`: the files written per segment and the resume protocol.
- :mod:`~bootsep.bootstrap.confidence_plan`: named confidence measures grouped by loud bins.
- :mod:`~bootsep.bootstrap.ownership`: what ``separate``/``organize`` may write or replace.
- :mod:`~bootsep.bootstrap.organize`: training folders by confidence percentile.

Plain functions, no gin (the commands' gin wiring is in ``config``). Its modules are the API;
importing the package imports none of them (``organize`` and ``segments`` need no torch).
May import: data, dsp, metrics, primitives, separation, utils.
"""

__all__ = ["confidence_plan", "organize", "ownership", "pipeline", "results", "segments", "separate",
           "separate_files"]
