"""Signals turned into one exception: SIGTERM (and SIGINT) raise :class:`~seqrec.core.errors.RunInterrupted` in the
main thread, so every long-running command -- training, prediction, the experiment runner, a sweep's jobs -- stops
the same way: the run it has open is marked interrupted (:func:`seqrec.tracking.lifecycle.run_context`), and the
command prints one line and exits with :data:`~seqrec.core.errors.INTERRUPTED_EXIT`.

Python runs a signal handler between bytecodes of the main thread, so a command stops within one library call (a
chunk of generation, a training step). Handlers are installed for the duration of a ``with`` block and the previous
ones restored after it (a tracker such as ClearML installs its own handlers, which would otherwise keep running the
process after a SIGTERM).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator

from seqrec.core.errors import RunInterrupted

#: the signals a command stops on
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def _name(signum: int) -> str:
    return "SIGINT (Ctrl-C)" if signum == signal.SIGINT else signal.Signals(signum).name


def _stop(signum: int, frame) -> None:
    name = _name(signum)
    raise RunInterrupted(f"interrupted by {name}", signal_name=name)


@contextlib.contextmanager
def stop_on_signals(signals=STOP_SIGNALS) -> Iterator[None]:
    """Inside the block, each of ``signals`` raises :class:`RunInterrupted` (``signal_name`` set); outside it, the
    handlers that were there before. Outside the main thread (where Python allows no handlers) it does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in signals}
    for sig in signals:
        signal.signal(sig, _stop)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)


def signal_name(exc: BaseException) -> str | None:
    """``SIGTERM`` / ``SIGINT (Ctrl-C)`` for an exception a signal raised (ours, or Python's KeyboardInterrupt),
    else None."""
    if isinstance(exc, RunInterrupted):
        return exc.signal_name
    if isinstance(exc, KeyboardInterrupt):
        return _name(signal.SIGINT)
    return None
