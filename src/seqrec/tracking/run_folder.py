"""The layout of one run folder: every file name a run writes, named once (torch-free)."""

from __future__ import annotations

from pathlib import Path

CONFIG_FILE = "config.yaml"  # the resolved config the run ran with
MODEL_FILE = "model.pt"  # a training run's best weights + how to rebuild the network
METRICS_FILE = "metrics.json"
PER_USER_FILE = "per_user.parquet"  # every accuracy metric per validation and test user
INTERVALS_FILE = "intervals.json"  # bootstrap confidence intervals of metrics.json's accuracy metrics
HISTORY_FILE = "history.csv"  # a training run's per-epoch curves
CHECKPOINTS = "checkpoints"
LAST_CKPT = Path(CHECKPOINTS) / "last.ckpt"
