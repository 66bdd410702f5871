"""User-facing errors: the CLI prints ``error: <message>`` and exits 2, no traceback."""


class UserError(Exception):
    """A mistake in the user's input (file, key, value). The message names it and the fix."""


def report(err: BaseException | str) -> int:
    """Print ``error: <message>`` as one line on stderr (whitespace collapsed); returns 2, the
    exit code of a user mistake."""
    import sys

    print(f"error: {' '.join(str(err).split())}", file=sys.stderr)
    return 2


def run_main(main) -> int:
    """Exit code of a script's ``main()`` (its return value, 0 for None); a
    :class:`UserError` becomes one :func:`report` line and 2, never a traceback."""
    try:
        rc = main()
    except UserError as err:
        return report(err)
    return 0 if rc is None else int(rc)
