"""Path configurables: the run's output folder and environment-variable data roots.

Shipped configs never hold absolute paths: data roots come from ``env_path`` (an environment
variable with a relative default), run folders from ``output_folder`` (bound by ``-o`` or by
``instantiate``).
"""

from __future__ import annotations

import os
from pathlib import Path

import gin


@gin.configurable
def output_folder(_output_folder: str | None = None) -> str | None:
    """The current run folder (absolute), or None when unbound."""
    if _output_folder is None:
        return None
    return str(Path(os.path.expanduser(str(_output_folder))).resolve())


@gin.configurable
def env_path(name: str = gin.REQUIRED, default: str | None = None) -> str:
    """``$name`` if set, else ``default``; ``~`` and relative paths resolved against the cwd.

    Used in env files as scoped macros, e.g.::

        MUSDB_PREPARED = @musdb_prepared/env_path()
        musdb_prepared/env_path.name = 'MUSDB_PREPARED'
        musdb_prepared/env_path.default = 'data/musdb16k'
    """
    value = os.environ.get(name) or default
    if value is None:
        from ..utils.errors import UserError

        raise UserError(f"environment variable {name} is not set and its env_path has no default; "
                        f"export {name}=/path/to/data")
    return str(Path(os.path.expanduser(value)).resolve())


@gin.configurable
def join_path(base_path: str = gin.REQUIRED, relative_path: str = "") -> str:
    """``base_path / relative_path`` as a string."""
    return str(Path(base_path) / relative_path)
