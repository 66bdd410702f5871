"""The ``organize`` command: ``python main.py organize -c CFG --output DEST [--force]``.

Builds a training folder from ``separate`` outputs by confidence percentile (see
:mod:`bootsep.bootstrap.organize`). Configure it with ``organize.*`` bindings::

    organize.separated = @separated/join_path()      # one folder, a list, or several
    organize.measure = 'combined'                    # silhouette x posterior (the reference's)
    organize.bin = 'above_q2'                        # Q1..Q5, above_q2, above_q4, all
    organize.collections = ['train']                 # optional exact filter
"""

from __future__ import annotations

from collections.abc import Sequence

import gin

from ..utils.errors import UserError


@gin.configurable
def organize(separated=gin.REQUIRED, destination: str | None = None,
             measure: str = "combined", bin: str | None = "above_q2",
             p_min: float | None = None, p_max: float | None = None,
             collections: Sequence[str] | None = None, labels: Sequence[str] | None = None,
             link: str = "symlink", force: bool = False) -> dict:
    """gin front of :func:`bootsep.bootstrap.organize.organize` (same arguments;
    ``destination`` may come from ``--output``)."""
    from ..bootstrap.organize import organize as _organize

    if not destination:
        raise UserError("organize needs a destination: --output DIR (or organize.destination)")
    return _organize(separated, destination, measure=measure, bin=bin, p_min=p_min,
                     p_max=p_max, collections=collections, labels=labels, link=link,
                     force=force)


def organize_command(output: str | None = None, force: bool = False) -> int:
    """CLI entry: ``--output`` and ``--force`` override the bindings. Prints the destination."""
    kwargs = {}
    if output:
        kwargs["destination"] = output
    if force:
        kwargs["force"] = True
    summary = organize(**kwargs)
    print(f"{summary['segments_selected']} of {summary['segments_total']} segments "
          f"({summary['measure']} percentile {summary['p_min']:g}-{summary['p_max']:g}) in "
          f"{summary['destination']}")
    return 0
