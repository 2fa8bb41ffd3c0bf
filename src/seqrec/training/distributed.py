"""Distributed training (Lightning's DDP launcher, torchrun, SLURM): which process this is, and a worker's run."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from seqrec.tracking.base import NoneTracker
from seqrec.tracking.lifecycle import Run


def distributed_rank() -> int:
    """This process's global rank in a distributed run (Lightning's DDP launcher, torchrun, SLURM); 0 if none."""
    for name in ("RANK", "LOCAL_RANK", "SLURM_PROCID"):
        value = os.environ.get(name)
        if value is not None and value.strip().isdigit():
            return int(value)
    return 0


@contextlib.contextmanager
def replica_run(cfg: DictConfig):
    """A DDP worker's stand-in for :func:`open_run`: no tracker, no run-store folder (rank 0 keeps the record)."""
    with tempfile.TemporaryDirectory(prefix="seqrec-replica-") as tmp:
        yield Run(NoneTracker(cfg.project_name, cfg.task_name), None, Path(tmp))
