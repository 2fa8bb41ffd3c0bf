"""Output of the table-printing scripts (``check_runs.py``, ``compare_runs.py``, ``seqrec-recommend`` ...) to a
reader that stops early, ``| head -1``: the script ends quietly, not with a ``BrokenPipeError`` traceback."""

from __future__ import annotations

import os
import sys
from typing import Callable


def pipe_safe(main: Callable[[], int]) -> int:
    """``main()``'s exit status; when the reader of standard output has gone (a closed pipe), 0 and nothing more
    on the screen: what is left to print goes nowhere (Python's own advice for SIGPIPE)."""
    try:
        status = main()
        sys.stdout.flush()  # inside the try: a table cut short fails here, not at interpreter exit
        return status
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # the flush at exit then writes into nothing
        return 0
