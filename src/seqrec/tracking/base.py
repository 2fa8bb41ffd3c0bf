"""Tracker interface shared by every experiment-tracking backend.

A :class:`Tracker` is one run (one ClearML task).  Its :attr:`Tracker.task_id`
is the run ID printed to the user and used as the run folder name in the local
:class:`~seqrec.tracking.run_store.RunStore`.

Public methods validate and normalise their arguments once here and then call
the backend hooks (``_report_scalar`` …), so all backends behave the same way:
values become plain ``float``/``int``, configs become plain JSON-like dicts,
missing files raise :class:`FileNotFoundError`, and any call after
:meth:`Tracker.close` raises :class:`RuntimeError`.

Tracking is never allowed to break a run: when a backend hook fails (a ClearML
server that went away mid-run, an upload that cannot be stored …) the tracker
logs one warning, becomes :attr:`Tracker.degraded` and skips further reports;
:meth:`Tracker.close` is still attempted and never raises either.  The local run
store is written independently of the tracker, so the run folder stays complete.
"""

from __future__ import annotations

import abc
import dataclasses
import logging
import math
import os
import uuid
from argparse import Namespace
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Optional, Union

from seqrec.core.errors import UserError

log = logging.getLogger(__name__)

#: Task types understood by ClearML (``clearml.Task.TaskTypes``); the pipeline
#: uses "training" for ``run_train`` and "inference" for ``run_predict``.
TASK_TYPES = (
    "training",
    "testing",
    "inference",
    "data_processing",
    "application",
    "monitor",
    "controller",
    "optimizer",
    "service",
    "qc",
    "custom",
)

#: Statuses accepted by :meth:`Tracker.close`.
CLOSE_STATUSES = ("completed", "failed", "interrupted")

PathLike = Union[str, os.PathLike]


def to_plain_config(cfg: Any) -> Any:
    """Return ``cfg`` as plain JSON-like Python data (dict/list/str/int/float/bool/None).

    Accepts OmegaConf containers (resolved), mappings, dataclass instances,
    ``argparse.Namespace`` and sequences; leaves that are not JSON scalars
    (tensors, paths, modules …) are converted with ``str``.
    """
    try:
        from omegaconf import DictConfig, ListConfig, OmegaConf

        if isinstance(cfg, (DictConfig, ListConfig)):
            cfg = OmegaConf.to_container(cfg, resolve=True)
    except ImportError:  # omegaconf ships with hydra; tolerate its absence
        pass
    if isinstance(cfg, Namespace):
        cfg = vars(cfg)
    if dataclasses.is_dataclass(cfg) and not isinstance(cfg, type):
        cfg = dataclasses.asdict(cfg)
    if isinstance(cfg, Mapping):
        return {str(key): to_plain_config(value) for key, value in cfg.items()}
    if isinstance(cfg, (list, tuple)):
        return [to_plain_config(value) for value in cfg]
    if cfg is None or isinstance(cfg, (bool, int, float, str)):
        return cfg
    # numpy / torch scalars expose item(); anything else becomes its text form
    item = getattr(cfg, "item", None)
    if callable(item):
        try:
            value = item()
        except (TypeError, ValueError, RuntimeError):
            value = None
        if isinstance(value, (bool, int, float)):
            return value
    return str(cfg)


def _as_float(value: Any, what: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{what} must be a number, got {type(value).__name__}: {value!r}") from exc


def _as_int(value: Any, what: str) -> int:
    try:
        as_float = float(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{what} must be an integer, got {type(value).__name__}: {value!r}") from exc
    if not math.isfinite(as_float) or as_float != int(as_float):
        raise TypeError(f"{what} must be an integer, got {value!r}")
    return int(as_float)


def _require_text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise UserError(f"logger {what} must be a non-empty string, got {value!r}; set {what}=<name>")
    return value


class Tracker(abc.ABC):
    """One tracked run.  Use as a context manager or call :meth:`close` yourself.

    ``with tracker:`` closes the run on exit and marks it ``failed`` when the
    block raised.
    """

    def __init__(self, project_name: str, task_name: str, task_type: str = "training") -> None:
        self.project_name = _require_text(project_name, "project_name")
        self.task_name = _require_text(task_name, "task_name")
        if task_type not in TASK_TYPES:
            raise UserError(f"unknown logger task_type {task_type!r}; use one of: {', '.join(TASK_TYPES)}")
        self.task_type = task_type
        self._closed = False
        self._degraded_reason: Optional[str] = None

    # ----------------------------------------------------------------- identity
    @property
    @abc.abstractmethod
    def task_id(self) -> str:
        """The run ID (ClearML task id, or ``local-<hex>`` for :class:`NoneTracker`)."""

    @property
    def offline_session_dir(self) -> Optional[Path]:
        """Folder holding an offline session (ClearML offline mode), else ``None``."""
        return None

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def degraded(self) -> bool:
        """True once a backend call failed; later reports are skipped (see module doc)."""
        return self._degraded_reason is not None

    @property
    def degraded_reason(self) -> Optional[str]:
        """``"<what>: <error>"`` of the first backend failure, else ``None``."""
        return self._degraded_reason

    # ---------------------------------------------------------------- reporting
    def connect_config(self, cfg: Any, name: str = "config") -> dict:
        """Record the run configuration (a dict, DictConfig, dataclass …) under ``name``.

        Returns the plain-dict form that was recorded.
        """
        self._check_open()
        plain = to_plain_config(cfg)
        if not isinstance(plain, dict):
            raise TypeError(f"config must be a mapping, got {type(cfg).__name__}")
        self._call_backend("connect_config", self._connect_config, plain, str(name))
        return plain

    def report_scalar(self, title: str, series: str, value: Any, iteration: Any) -> None:
        """One point of the curve ``title``/``series`` at ``iteration``."""
        self._check_open()
        self._call_backend(
            "report_scalar",
            self._report_scalar,
            str(title),
            str(series),
            _as_float(value, "scalar value"),
            _as_int(iteration, "iteration"),
        )

    def report_single_value(self, name: str, value: Any) -> None:
        """A final summary number (e.g. test NDCG@10)."""
        self._check_open()
        value = _as_float(value, "single value")
        self._call_backend("report_single_value", self._report_single_value, str(name), value)

    def report_table(self, title: str, df: Any, series: Optional[str] = None) -> None:
        """A table: a pandas DataFrame, or anything ``pandas.DataFrame(...)`` accepts."""
        self._check_open()
        import pandas as pd

        if not isinstance(df, pd.DataFrame):
            df = pd.DataFrame(df)
        self._call_backend("report_table", self._report_table, str(title), str(series or title), df)

    def report_figure(self, title: str, figure_or_png_path: Any, series: Optional[str] = None) -> None:
        """A matplotlib/plotly figure, or the path of an image file (PNG)."""
        self._check_open()
        figure = figure_or_png_path
        if isinstance(figure, (str, os.PathLike)):
            figure = Path(figure)
            if not figure.is_file():
                raise FileNotFoundError(f"figure image {figure} does not exist")
        elif not (
            hasattr(figure, "savefig") or hasattr(figure, "to_plotly_json") or isinstance(figure, Mapping)
        ):
            raise TypeError(
                "report_figure expects a matplotlib figure, a plotly figure/dict or an image path, "
                f"got {type(figure).__name__}"
            )
        self._call_backend("report_figure", self._report_figure, str(title), str(series or title), figure)

    def upload_artifact(self, name: str, path: PathLike) -> None:
        """Store a file or folder (config, checkpoint, metrics …) with the run."""
        self._check_open()
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"artifact {name!r}: {path} does not exist")
        self._call_backend("upload_artifact", self._upload_artifact, str(name), path)

    def flush(self) -> None:
        """Push buffered reports to the backend (no-op when nothing is buffered)."""
        if not self._closed:
            self._call_backend("flush", self._flush)

    def close(self, status: str = "completed", reason: Optional[str] = None) -> None:
        """Finish the run (idempotent).  ``status`` is "completed", "failed" or "interrupted" (stopped by a signal)."""
        if status not in CLOSE_STATUSES:
            raise ValueError(f"status must be one of {CLOSE_STATUSES}, got {status!r}")
        if self._closed:
            return
        self._closed = True
        try:  # attempted even when degraded: it finishes the backend's own record (offline zip …)
            self._close(status, reason)
        except Exception as exc:  # noqa: BLE001 - tracking must never break the run
            self._degrade("close", exc)

    def __enter__(self) -> "Tracker":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.close(status="failed", reason=f"{exc_type.__name__}: {exc}")

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"{type(self).__name__}(task_id={self.task_id!r}, project={self.project_name!r}, task={self.task_name!r}, {state})"

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"tracker for run {self.task_id} is already closed")

    # ------------------------------------------------------------- degradation
    def _call_backend(self, what: str, hook: Any, *args: Any) -> None:
        """Run a backend hook; a failure degrades the tracker instead of raising."""
        if self._degraded_reason is not None:
            return
        try:
            hook(*args)
        except Exception as exc:  # noqa: BLE001 - tracking must never break the run
            self._degrade(what, exc)

    def _degrade(self, what: str, exc: BaseException) -> None:
        detail = " ".join(str(exc).split()) or type(exc).__name__
        reason = f"{what}: {type(exc).__name__}: {detail}"
        if self._degraded_reason is not None:
            log.debug("tracker of run %s: %s failed too (%s)", self.task_id, what, reason)
            return
        self._degraded_reason = reason
        log.warning(
            "experiment tracking of run %s stopped working (%s, %s); the run goes on without it "
            "(later reports are skipped, the local run folder still gets everything)",
            self.task_id,
            self._describe_backend(),
            reason,
        )

    def _describe_backend(self) -> str:
        """Where reports go, for messages (e.g. "ClearML server https://…")."""
        return type(self).__name__

    # ------------------------------------------------------------ backend hooks
    @abc.abstractmethod
    def _connect_config(self, cfg: dict, name: str) -> None: ...

    @abc.abstractmethod
    def _report_scalar(self, title: str, series: str, value: float, iteration: int) -> None: ...

    @abc.abstractmethod
    def _report_single_value(self, name: str, value: float) -> None: ...

    @abc.abstractmethod
    def _report_table(self, title: str, series: str, df: Any) -> None: ...

    @abc.abstractmethod
    def _report_figure(self, title: str, series: str, figure: Any) -> None: ...

    @abc.abstractmethod
    def _upload_artifact(self, name: str, path: Path) -> None: ...

    def _flush(self) -> None:
        return None

    @abc.abstractmethod
    def _close(self, status: str, reason: Optional[str]) -> None: ...


class NoneTracker(Tracker):
    """No external logging; the run still gets a unique ID ``local-<uuid4 hex>``.

    Extra keyword arguments (``offline``, ``tags`` …) are accepted and ignored so
    the logger config group can be switched freely.
    """

    def __init__(self, project_name: str, task_name: str, task_type: str = "training", **ignored: Any) -> None:
        super().__init__(project_name, task_name, task_type)
        self._task_id = f"local-{uuid.uuid4().hex}"
        log.debug("NoneTracker: run %s (nothing is sent anywhere)", self._task_id)

    @property
    def task_id(self) -> str:
        return self._task_id

    def _connect_config(self, cfg: dict, name: str) -> None:
        return None

    def _report_scalar(self, title: str, series: str, value: float, iteration: int) -> None:
        return None

    def _report_single_value(self, name: str, value: float) -> None:
        return None

    def _report_table(self, title: str, series: str, df: Any) -> None:
        return None

    def _report_figure(self, title: str, series: str, figure: Any) -> None:
        return None

    def _upload_artifact(self, name: str, path: Path) -> None:
        return None

    def _close(self, status: str, reason: Optional[str]) -> None:
        return None


def instantiate_tracker(logger_cfg: Any, task_type: str = "training", **overrides: Any) -> Tracker:
    """``hydra.utils.instantiate(cfg.logger, task_type=...)`` that re-raises a tracker's
    :class:`UserError` as is (Hydra wraps constructor errors in ``InstantiationException``)."""
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    try:
        tracker = instantiate(logger_cfg, task_type=task_type, **overrides)
    except InstantiationException as exc:
        cause = exc.__cause__
        if isinstance(cause, UserError):
            raise cause from None
        if isinstance(cause, OSError):  # a file the tracker writes (its cache, a session): the fault, not Hydra's wrap
            from seqrec.core.io import is_disk_full

            if is_disk_full(cause):
                raise cause from None
            target = logger_cfg.get("_target_", "?") if isinstance(logger_cfg, Mapping) else "?"
            raise UserError(f"the tracker {str(target).rsplit('.', 1)[-1]} could not start: {cause}; fix that "
                            "file or folder, or run with logger=none") from cause
        raise
    if not isinstance(tracker, Tracker):
        raise UserError(
            f"logger config builds a {type(tracker).__name__}, not a tracker; "
            "use logger=clearml_offline, logger=clearml or logger=none"
        )
    return tracker


__all__ = ["Tracker", "NoneTracker", "TASK_TYPES", "instantiate_tracker", "to_plain_config"]
