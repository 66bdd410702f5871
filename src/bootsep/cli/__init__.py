"""The command line: ``python main.py COMMAND -c a.gin ... -o RUN -b 'key = value'``.

- :mod:`~bootsep.cli.main`: argument parsing, config parsing, ``error:`` lines, dispatch.
- :mod:`~bootsep.cli.help`: per-command help pages generated from the gin configurables.

The top layer: nothing else in bootsep imports it. Importing the package imports neither
module. May import: config, engine, report, utils (and gin).
"""

__all__ = ["help", "main"]
