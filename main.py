#!/usr/bin/env python3
"""bootsep command line: ``python main.py COMMAND -c CONFIG.gin [...]`` (see ``--help``)."""

import os
import sys

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads OpenMP (see bootsep)

try:
    import bootsep  # noqa: F401
except ImportError:  # running from a checkout without `pip install -e .`
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "src"))

from bootsep.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
