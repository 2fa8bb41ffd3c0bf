"""User-facing errors: one line saying what was wrong and what to do."""

from __future__ import annotations


class UserError(Exception):
    """A problem the user can fix (bad input, missing file, bad config value).

    Entry points print ``error: <message>`` on one line and exit with status 1;
    the full traceback goes to the run's log file only.
    """


def require(condition: bool, message: str) -> None:
    """Raise :class:`UserError` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise UserError(message)
