"""Progress of a long loop: a tqdm bar on a terminal, complete lines anywhere else.

A bar redraws itself with carriage returns; written to a file or a pipe (a job's log, ``| tee``) those are not
rendered, and the bar's last state and the next line of output end up on one line. Off a terminal the progress is
therefore a complete line every ``interval`` seconds, and one when the loop ends if any was written.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Optional, TextIO


class LineProgress:
    """tqdm's ``update``/``close`` as complete lines on ``stream``: ``<desc>: <n>/<total> <unit>s (<p> %, <s> s)``."""

    def __init__(self, total: int, desc: str, unit: str = "it", interval: float = 30.0,
                 stream: Optional[TextIO] = None) -> None:
        self.total, self.desc, self.unit, self.interval = int(total), desc, unit, float(interval)
        self.stream = stream if stream is not None else sys.stderr
        self.n, self.lines = 0, 0
        self.started = self.last = time.monotonic()
        self.closed = False

    def update(self, n: int = 1) -> None:
        self.n += int(n)
        now = time.monotonic()
        if now - self.last >= self.interval and self.n < self.total:
            self.last = now
            self._line(f"{self.n}/{self.total} {self.unit}s ({100 * self.n / max(self.total, 1):.0f} %, "
                       f"{now - self.started:.0f} s)")

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.lines:  # a loop long enough to report gets its end too; a short one stays silent
            self._line(f"{self.n}/{self.total} {self.unit}s in {time.monotonic() - self.started:.0f} s")

    def _line(self, text: str) -> None:
        self.lines += 1
        print(f"{self.desc}: {text}", file=self.stream, flush=True)

    def __enter__(self) -> "LineProgress":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def is_terminal(stream: Optional[TextIO] = None) -> bool:
    """Whether ``stream`` (default stderr) is a terminal, where a redrawn bar is readable."""
    stream = stream if stream is not None else sys.stderr
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # replaced by an object without isatty, or closed
        return False


def progress(total: int, desc: str, unit: str = "it", enabled: bool = True, interval: float = 30.0):
    """A tqdm bar (``leave=False``) when stderr is a terminal, else a :class:`LineProgress`; with ``enabled=False``
    a bar that shows nothing."""
    from tqdm.auto import tqdm

    if not enabled or is_terminal():
        return tqdm(total=total, desc=desc, unit=unit, disable=not enabled, leave=False)
    return LineProgress(total, desc, unit, interval)
