#!/usr/bin/env python3
"""Thin launcher for ``bootsep.jobs.logs``; run ``./logs.py --help``."""

import os
import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
_VENV_PY = _HERE / ".venv" / "bin" / "python"
try:
    import pynvml  # noqa: F401  (nvidia-ml-py; only in the project's environment)
except ImportError:
    # run by a bare system python (e.g. through the #! line): use the checkout's .venv
    if _VENV_PY.is_file() and Path(sys.prefix).resolve() != _VENV_PY.parent.parent.resolve():
        os.execv(str(_VENV_PY), [str(_VENV_PY), __file__, *sys.argv[1:]])

try:
    import bootsep.jobs.logs  # noqa: F401
except ImportError:  # not installed in this interpreter: use the checkout's src/
    sys.path.insert(0, str(_HERE / "src"))

from bootsep.jobs.logs import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
