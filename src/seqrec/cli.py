"""Entry-point plumbing: friendly one-line errors, full tracebacks only in the run log."""

from __future__ import annotations

import logging
import sys
import warnings
from typing import Callable

from omegaconf import DictConfig

from seqrec.errors import UserError


def quiet_third_party() -> None:
    """Silence library chatter that says nothing about the user's run."""
    warnings.filterwarnings("ignore", message=r".*LeafSpec.*")  # lightning vs torch pytree deprecation
    warnings.filterwarnings("ignore", message=r"The number of training batches .* logging interval")
    warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
    logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(
        lambda record: "litlogger" not in record.getMessage()
    )


def run_main(fn: Callable[[DictConfig], float], cfg: DictConfig) -> float:
    """Run ``fn(cfg)``; a :class:`UserError` becomes ``error: <message>`` and exit status 1."""
    quiet_third_party()
    try:
        return fn(cfg)
    except UserError as exc:
        logging.getLogger("seqrec").debug("user error", exc_info=True)
        print(f"error: {exc}", file=sys.stderr, flush=True)
        sys.exit(1)
    except KeyboardInterrupt:
        print("error: interrupted; the run folder is marked failed, nothing else was changed", file=sys.stderr)
        sys.exit(130)


def run_script(fn: Callable, *args, **kwargs) -> int:
    """For plain ``scripts/*.py``: log INFO to stderr, print ``fn``'s result, one-line errors."""
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        print(fn(*args, **kwargs))
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0
