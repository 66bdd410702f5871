#!/usr/bin/env python3
"""Thin launcher for ``bootsep.jobs.logs``; run ``./logs.py --help``."""

import sys
from pathlib import Path

try:
    import bootsep.jobs.logs  # noqa: F401
except ImportError:  # not installed in this interpreter: use the checkout's src/
    sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))

from bootsep.jobs.logs import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
