"""Declaration of the ClearML tracker (``logger=clearml_offline`` / ``logger=clearml``)."""

from __future__ import annotations

from typing import Any, Optional

from seqrec.core.errors import UserError
from seqrec.core.registry import Component, register
from seqrec.core.settings import Bool, Choice, Num, Setting, Str


class Tracker(Component):
    kind = "tracker"


def check_queue(queue: Any, offline: bool) -> Optional[str]:
    """``execute_remotely``: a ClearML queue name (needs a server) or None."""
    if queue is None or queue == "":
        return None
    if not isinstance(queue, str) or not queue.strip():
        raise UserError(
            f"logger.execute_remotely must be a ClearML queue name or null, got {queue!r}; "
            "e.g. logger.execute_remotely=default"
        )
    if offline:
        raise UserError(
            f"logger.execute_remotely={queue} needs a ClearML server; use logger=clearml "
            f"logger.execute_remotely={queue} (server and credentials from clearml.conf), "
            "or drop logger.execute_remotely to run here offline"
        )
    return queue


def _queue_rule(values, cfg) -> None:
    check_queue(values.get("execute_remotely"), bool(values.get("offline")))


def _tags(v) -> bool:
    return isinstance(v, str) or (isinstance(v, (list, tuple)) and all(isinstance(t, (str, int, float)) for t in v))


#: settings every tracker takes
NAMES = (Str("project_name", "seqrec"), Str("task_name", "ml1_GPT_train"))

CLEARML = register(Tracker("clearml", "seqrec.tracking.clearml_tracker.ClearMLTracker", passed=("task_type",), settings=(
    *NAMES,
    Bool("offline", default=True, doc="true: an offline session, no server"),
    Num("reachability_timeout", "5.0", gt=0, default=5.0, doc="seconds to wait for the server before failing"),
    Setting("tags", "str", "[baseline]", test=_tags, null=True, want="a list of strings", default=None),
    Bool("detect_repository", default=True),
    Num("repo_detection_timeout", "30.0", ge=0, default=30.0),
    Choice("requirements", ("freeze", "analyze"), default="freeze", want="'freeze' or 'analyze'",
           doc="the task's Python packages: freeze = the installed versions (pip freeze, exact); "
               "analyze = ClearML's scan of the entry script's imports"),
    Bool("fallback_offline", "false", default=False, doc="true: an unreachable server continues offline"),
    Str("execute_remotely", "default", null=True, default=None, doc="a ClearML queue: enqueue the run there"),
), rules=(_queue_rule,)))
