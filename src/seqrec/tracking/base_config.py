"""Declaration of the no-op tracker (``logger=none``)."""

from seqrec.core.registry import register
from seqrec.tracking.clearml_tracker_config import NAMES, Tracker

register(Tracker("none", "seqrec.tracking.base.NoneTracker", passed=("task_type",), settings=NAMES))
