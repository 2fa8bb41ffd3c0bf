"""The callbacks of every training run, built from its spec: checkpoints (atomic), early stopping, the training
history kept in the checkpoints, the timer, and the ones the config adds (``callbacks/`` group)."""

from __future__ import annotations

import lightning as L
import pandas as pd

from seqrec.core.instantiate import build_node
from seqrec.core.io import atomic_write
from seqrec.tracking.lightning_logger import TrackerLogger
from seqrec.tracking.run_folder import BEST_CKPT_NAME
from seqrec.training.early_stopping import early_stopping

MONITOR = "val_next_ndcg@{k}"  # training: the next item only (predict's val_ndcg@k: all held-out items)


class TrainingCallbacks:
    """The callbacks of one training run, by role (the trainer gets :attr:`all`)."""

    def __init__(self, spec, run, tlogger: TrackerLogger):
        self.monitor = MONITOR.format(k=spec.k)
        self.checkpoint = L.pytorch.callbacks.ModelCheckpoint(
            dirpath=run.folder.checkpoints, filename=BEST_CKPT_NAME, monitor=self.monitor, mode="max",
            save_top_k=1, save_last=True, enable_version_counter=False,
        )
        self.stopping = early_stopping(self.monitor, spec.patience, spec.patience_steps)
        self.progress = TrainingProgress(tlogger)  # history so far, kept in the checkpoints for a resume
        # training time, checkpointed, so it adds up every attempt; with trainer_params.max_time it is the wall-clock
        # budget too (Lightning would ignore max_time beside a Timer of ours: build_trainer hands it here instead)
        self.timer = L.pytorch.callbacks.Timer(duration=time_budget(spec.trainer_params.get("max_time")),
                                               interval="step")
        self.extra = [build_node(node, f"callbacks.{name}") for name, node in spec.callbacks.items()]

    @property
    def all(self) -> list:
        return [self.checkpoint, self.stopping, self.progress, self.timer, *self.extra]

    def fit_seconds(self) -> float:
        return self.timer.time_elapsed("train") + self.progress.legacy_seconds  # every attempt of a resumed run

    def best_score(self) -> float:
        score = self.checkpoint.best_model_score
        return float(score) if score is not None else float("nan")

    def stopped_by(self, trainer) -> str:
        """Why ``fit`` ended, for the run's ``metrics.json``: ``early_stopping`` (patience ran out), ``max_time``
        (the wall-clock budget, ``trainer_params.max_time``), ``max_steps``, ``max_epochs``, or ``other`` (a
        callback). Early stopping wins where a budget ran out at the same validation: validation had stopped rising."""
        if self.stopping.patience > 0 and self.stopping.wait_count >= self.stopping.patience:
            return "early_stopping"
        remaining = self.timer.time_remaining()
        if remaining is not None and remaining <= 0:
            return "max_time"
        if 0 < trainer.max_steps <= trainer.global_step:
            return "max_steps"
        if trainer.max_epochs is not None and 0 <= trainer.max_epochs <= trainer.current_epoch:
            return "max_epochs"
        return "other"

    def budget_seconds(self) -> float | None:
        """The wall-clock budget in seconds (``trainer_params.max_time``), or None."""
        return self.timer._duration  # Lightning's Timer keeps the parsed duration (seconds) only privately


def time_budget(value):
    """``trainer_params.max_time`` as Lightning's Timer takes it: ``"DD:HH:MM:SS"``, a timedelta, or a mapping of
    ``days``/``hours``/``minutes``/``seconds`` (a config node made a plain dict); None: no budget."""
    from collections.abc import Mapping

    return dict(value) if isinstance(value, Mapping) else value


class TrainingProgress(L.pytorch.callbacks.Callback):
    """Checkpointed with the model: the per-epoch history, so a resumed run writes the whole ``history.csv`` and
    reports the earlier epochs to its new tracker task too. (Lightning's ``CSVLogger`` would start a new file per
    attempt; the training time is Lightning's own ``Timer``, whose state is checkpointed as well.)"""

    KEY = "seqrec_training_progress"

    def __init__(self, tlogger: TrackerLogger):
        self.tlogger = tlogger
        self.legacy_seconds = 0.0  # fit time of checkpoints written before the Timer was used

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        history = [dict(row) for row in self.tlogger.history]
        # Lightning logs the epoch's training metrics (train_loss) only after its checkpoints are
        # written; they are final by now, so they go into this checkpoint's history already
        epoch = trainer.current_epoch
        logged = {key for row in history if row.get("epoch") == epoch for key in row}
        pending = {
            key: float(value) for key, value in trainer.callback_metrics.items()
            if key not in logged and key.startswith("train") and not key.endswith("_step")
        }
        if pending:
            steps = [row["step"] for row in history if row.get("epoch") == epoch and row.get("step") is not None]
            history.append({"step": max(steps) if steps else None, "epoch": epoch, **pending})
        checkpoint[self.KEY] = {"history": history}

    def on_load_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        from seqrec.tracking.lightning_logger import split_metric_name

        state = checkpoint.get(self.KEY) or {}
        earlier = [dict(row) for row in state.get("history", [])]
        self.tlogger.history[:0] = earlier
        self.legacy_seconds = float(state.get("fit_seconds", 0.0))
        tracker = self.tlogger.tracker
        for row in earlier:  # the new tracker task gets the whole curves
            epoch, step = row.get("epoch"), row.get("step")
            for key, value in row.items():
                if key in ("epoch", "step"):
                    continue
                title, series = split_metric_name(key)
                iteration = epoch if epoch is not None and not key.endswith("_step") else (step or 0)
                tracker.report_scalar(title, series, value, iteration)


def best_epoch(history: pd.DataFrame, monitor: str) -> int | None:
    if monitor not in history or history[monitor].isna().all():
        return None
    row = history.loc[history[monitor].idxmax()]
    return int(row["epoch"]) if "epoch" in row and not pd.isna(row["epoch"]) else None


class AtomicCheckpointIO(L.pytorch.plugins.io.TorchCheckpointIO):
    """Lightning's checkpoint writer, made atomic: a temporary file in the same folder renamed over the target, so
    a full disk or a kill mid-write leaves the previous checkpoint intact (and no partial file)."""

    def save_checkpoint(self, checkpoint, path, storage_options=None) -> None:
        with atomic_write(path) as tmp:
            super().save_checkpoint(checkpoint, str(tmp), storage_options)
