"""Layer 4, tracking: experiment trackers (ClearML or nothing), the local run store, the layout of a run folder
(:mod:`.run_folder`) and the life of one run (:mod:`.lifecycle`). May import :mod:`seqrec.core` only (the layers
between are allowed but not needed).

Heavy dependencies are imported lazily: ``import seqrec.tracking`` is cheap,
``clearml`` is only imported when a ClearML tracker is used and ``lightning``
only when :class:`TrackerLogger` is.

Hydra instantiates trackers from the ``logger`` config group
(``src/configs/logger/{clearml_offline,clearml,none}.yaml``)::

    tracker = instantiate_tracker(cfg.logger, task_type="training")

which is ``hydra.utils.instantiate(cfg.logger, task_type=...)`` except that a
tracker's :class:`~seqrec.core.errors.UserError` is re-raised as is (Hydra would wrap
it in ``InstantiationException``).

Under a ClearML agent (``CLEARML_TASK_ID`` set) importing this package also
restores the Hydra command line of a run sent there with
``logger.execute_remotely=<queue>`` (see
:func:`~seqrec.tracking.clearml_tracker.restore_remote_launch_args`); the entry
points import it before Hydra reads ``sys.argv``.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

from seqrec.tracking.base import NoneTracker, Tracker, instantiate_tracker, to_plain_config
from seqrec.tracking.run_store import RunRecord, RunStore, file_log_handler

_LAZY = {
    "ClearMLTracker": "seqrec.tracking.clearml_tracker",
    "reload_clearml_config": "seqrec.tracking.clearml_tracker",
    "restore_remote_launch_args": "seqrec.tracking.clearml_tracker",
    "TrackerLogger": "seqrec.tracking.lightning_logger",
    "split_metric_name": "seqrec.tracking.lightning_logger",
}

__all__ = [
    "Tracker",
    "NoneTracker",
    "instantiate_tracker",
    "to_plain_config",
    "RunStore",
    "RunRecord",
    "file_log_handler",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def _restore_agent_arguments() -> None:
    if not os.environ.get("CLEARML_TASK_ID") or len(sys.argv) > 1:
        return
    try:
        from seqrec.tracking.clearml_tracker import restore_remote_launch_args

        restore_remote_launch_args()
    except Exception as exc:  # noqa: BLE001 - running the default config instead would be silently wrong
        raise SystemExit(
            f"error: could not restore the Hydra arguments of ClearML task {os.environ['CLEARML_TASK_ID']} "
            f"on this agent ({' '.join(str(exc).split())}); check the agent's access to the ClearML server"
        ) from exc


_restore_agent_arguments()
