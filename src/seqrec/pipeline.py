"""What ``run_train.py`` and ``run_predict.py`` do, as plain functions of a composed config.

The layers: :mod:`seqrec.training` (train, resume), :mod:`seqrec.prediction` (generate, metrics, report files),
:mod:`seqrec.runtime` (what both use), :mod:`seqrec.tracking.lifecycle` (one run's tracker, folder and status),
:mod:`seqrec.data.datamodule` (loaders). This module only gathers their public names for the entry points
(``seqrec.pipeline:train``), notebooks and scripts.
"""

from seqrec.prediction import predict
from seqrec.runtime import (
    INTERVALS_FILE, METRICS_FILE, MODEL_FILE, MONITOR, PER_USER_FILE, build, build_node, distributed_rank, hardware,
    load_trained, load_weights, partial_node, prepare_split, record_trial,
)
from seqrec.tracking.lifecycle import CONFIG_FILE, LAST_CKPT, Run, open_run, run_lifecycle
from seqrec.training import (
    AtomicCheckpointIO, check_resume, interruption_message, predict_command, resume_command, train,
)

__all__ = [
    "AtomicCheckpointIO", "CONFIG_FILE", "INTERVALS_FILE", "LAST_CKPT", "METRICS_FILE", "MODEL_FILE", "MONITOR",
    "PER_USER_FILE", "Run", "build", "build_node", "check_resume", "distributed_rank", "hardware",
    "interruption_message", "load_trained", "load_weights", "open_run", "partial_node", "predict", "predict_command",
    "prepare_split", "record_trial", "resume_command", "run_lifecycle", "train",
]
