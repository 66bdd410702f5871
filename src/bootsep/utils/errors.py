"""User-facing errors: the CLI prints ``error: <message>`` and exits 2, no traceback."""


class UserError(Exception):
    """A mistake in the user's input (file, key, value). The message names it and the fix."""
