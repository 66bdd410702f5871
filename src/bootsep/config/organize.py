"""The ``organize`` command: ``python main.py organize -c CFG --output DEST [--force]``.

Builds a training folder from ``separate`` outputs by confidence percentile (see
:mod:`bootsep.bootstrap.organize`). Configure it with ``organize.*`` bindings::

    organize.separated = @separated/join_path()      # one folder, a list, or several
    organize.measure = 'combined'                    # silhouette x posterior (the reference's)
    organize.bin = 'above_q2'                        # Q1..Q5, above_q2, above_q4, all
    organize.collections = ['train']                 # optional exact filter

Without ``organize.separated``, ``-o RUN`` organizes ``RUN/separated`` (where ``separate -o RUN``
writes). A sharded ``separate`` output must be complete (every shard finished) unless
``--allow-incomplete``; ``organize.wait_seconds`` waits for running shards first.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import gin

from ..utils.errors import UserError


@gin.configurable
def organize(separated=None, destination: str | None = None,
             measure: str = "combined", bin: str | None = "above_q2",
             p_min: float | None = None, p_max: float | None = None,
             collections: Sequence[str] | None = None, labels: Sequence[str] | None = None,
             link: str = "symlink", force: bool = False, allow_incomplete: bool = False,
             wait_seconds: float = 0.0) -> dict:
    """gin front of :func:`bootsep.bootstrap.organize.organize` (same arguments;
    ``destination`` may come from ``--output``; ``separated`` defaults to ``RUN/separated``
    with ``-o RUN``, where ``separate -o RUN`` writes)."""
    from ..bootstrap.organize import organize as _organize
    from .paths import output_folder

    if not destination:
        raise UserError("organize needs a destination: --output DIR (or organize.destination)")
    if separated is None:
        run = output_folder()
        if run is None:
            raise UserError("organize needs separate's output: bind organize.separated = "
                            "'DIR' (or pass -o RUN to use RUN/separated)")
        separated = str(Path(run) / "separated")
    return _organize(separated, destination, measure=measure, bin=bin, p_min=p_min,
                     p_max=p_max, collections=collections, labels=labels, link=link,
                     force=force, allow_incomplete=allow_incomplete, wait_seconds=wait_seconds)


def organize_command(output: str | None = None, force: bool = False,
                     allow_incomplete: bool = False) -> int:
    """CLI entry: ``--output``, ``--force`` and ``--allow-incomplete`` override the bindings.
    Prints the destination."""
    kwargs = {}
    if output:
        kwargs["destination"] = output
    if force:
        kwargs["force"] = True
    if allow_incomplete:
        kwargs["allow_incomplete"] = True
    summary = organize(**kwargs)
    print(f"{summary['segments_selected']} of {summary['segments_total']} segments "
          f"({summary['measure']} percentile {summary['p_min']:g}-{summary['p_max']:g}) in "
          f"{summary['destination']}")
    return 0
