"""Lightning logger that forwards metrics to a :class:`~seqrec.tracking.base.Tracker`.

``val_ndcg@10`` is reported as title ``ndcg@10``, series ``val`` so train/val/test
curves of one metric share a plot.  Metrics are also kept in :attr:`TrackerLogger.history`
so the pipeline can write per-epoch metrics into the run folder.
"""

from __future__ import annotations

import math
from argparse import Namespace
from collections.abc import Mapping
from typing import Any, Optional

from lightning.pytorch.loggers.logger import Logger, rank_zero_experiment
from lightning.pytorch.utilities.rank_zero import rank_zero_only

from seqrec.tracking.base import Tracker

#: Name prefixes treated as the series (split at the first "_" or "/").
SERIES_PREFIXES = ("train", "val", "valid", "validation", "test", "predict")


def split_metric_name(name: str) -> tuple[str, str]:
    """``'val_ndcg@10'`` -> ``('ndcg@10', 'val')`` (title, series); unprefixed names keep their name for both."""
    for separator in ("/", "_"):
        head, found, tail = name.partition(separator)
        if found and tail and head.lower() in SERIES_PREFIXES:
            return tail, head
    return name, name


def _to_number(value: Any) -> float:
    item = getattr(value, "item", None)
    if callable(item):
        value = item()
    return float(value)


class TrackerLogger(Logger):
    """``lightning.pytorch`` logger backed by a :class:`Tracker`.

    * ``log_metrics`` -> ``tracker.report_scalar(title, series, value, iteration)``
      where the iteration is the ``epoch`` entry of the metrics when present
      (Lightning adds it), except for ``*_step`` metrics which use the global step.
    * ``history`` -> list of ``{"step": .., "epoch": .., <metric>: value, ...}`` dicts,
      one per ``log_metrics`` call; :meth:`epoch_history` merges them per epoch.
    * ``log_hyperparams`` -> ``tracker.connect_config(params, name=hparams_name)``.

    The tracker is owned by the caller: ``finalize`` only flushes it.
    """

    def __init__(self, tracker: Tracker, hparams_name: str = "hyperparameters") -> None:
        super().__init__()
        self._tracker = tracker
        self._hparams_name = hparams_name
        self.history: list[dict[str, Any]] = []

    @property
    def tracker(self) -> Tracker:
        return self._tracker

    @property
    def name(self) -> str:
        return self._tracker.task_name

    @property
    def version(self) -> str:
        return self._tracker.task_id

    @property
    def save_dir(self) -> Optional[str]:
        return None

    @property
    @rank_zero_experiment
    def experiment(self) -> Tracker:
        return self._tracker

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, Any], step: Optional[int] = None) -> None:
        values = {str(key): _to_number(value) for key, value in metrics.items()}
        epoch_value = values.pop("epoch", None)
        epoch = int(epoch_value) if epoch_value is not None and math.isfinite(epoch_value) else None
        row: dict[str, Any] = {"step": None if step is None else int(step)}
        if epoch is not None:
            row["epoch"] = epoch
        row.update(values)
        self.history.append(row)
        for key, value in values.items():
            title, series = split_metric_name(key)
            if epoch is not None and not key.endswith("_step"):
                iteration = epoch
            else:
                iteration = 0 if step is None else int(step)
            self._tracker.report_scalar(title, series, value, iteration)

    @rank_zero_only
    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        if isinstance(params, Namespace):
            params = vars(params)
        if isinstance(params, Mapping) and params:
            self._tracker.connect_config(dict(params), name=self._hparams_name)

    @rank_zero_only
    def finalize(self, status: str) -> None:
        if not self._tracker.closed:
            self._tracker.flush()

    def epoch_history(self) -> list[dict[str, Any]]:
        """History merged per epoch (later values win), ordered by epoch; rows without epoch are skipped."""
        merged: dict[int, dict[str, Any]] = {}
        for row in self.history:
            epoch = row.get("epoch")
            if epoch is None:
                continue
            target = merged.setdefault(epoch, {"epoch": epoch})
            target.update({key: value for key, value in row.items() if key not in ("epoch", "step")})
            target["step"] = row.get("step")
        return [merged[epoch] for epoch in sorted(merged)]


__all__ = ["TrackerLogger", "split_metric_name", "SERIES_PREFIXES"]
