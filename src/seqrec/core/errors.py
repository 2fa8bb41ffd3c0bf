"""User-facing errors: one line saying what was wrong and what to do."""

from __future__ import annotations


class UserError(Exception):
    """A problem the user can fix (bad input, missing file, bad config value).

    Entry points print ``error: <message>`` on one line and exit with status 1;
    the full traceback goes to the run's log file only.
    """


class ResumableRunError(UserError):
    """A training run stopped by a problem the user can fix (a full disk); the message ends with the exact
    command that continues it, so it is printed whole (never cut to the usual line length)."""


def require(condition: bool, message: str) -> None:
    """Raise :class:`UserError` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise UserError(message)


class RunInterrupted(BaseException):
    """A command was stopped by a signal (Ctrl-C = SIGINT, or SIGTERM as a scheduler sends before preemption).

    A run it had open is marked ``interrupted`` (a training run keeps its last checkpoint, written at the end of every
    epoch); the message says what survives and what to run next. A ``BaseException``, like ``KeyboardInterrupt``:
    ``except Exception`` blocks do not swallow it. ``signal_name``: ``SIGTERM`` / ``SIGINT``.
    """

    def __init__(self, message: str, run_id: str | None = None, signal_name: str | None = None):
        super().__init__(message)
        self.run_id = run_id
        self.signal_name = signal_name


#: the exit status of a command stopped by a signal (the shell's 128 + SIGINT, whatever the signal was)
INTERRUPTED_EXIT = 130
