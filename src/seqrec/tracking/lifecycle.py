"""The life of one run, new or resumed: tracker + run-store folder + log file + final status (torch-free).

:func:`run_lifecycle` is the one place that opens a run: it creates the ClearML task (or none), the run's
folder (or reopens a killed run's folder for ``resume=<ID>``), writes the resolved ``config.yaml``, attaches the
run's ``run.log``, and on exit records ``completed``, ``interrupted`` (a signal) or ``failed`` in ``run.json``
and closes the tracker, noting where an offline ClearML session lives.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

from omegaconf import DictConfig, OmegaConf

from seqrec.core.io import atomic_write_text
from seqrec.core.errors import RunInterrupted
from seqrec.tracking.base import instantiate_tracker
from seqrec.tracking.run_folder import CONFIG_FILE, LAST_CKPT
from seqrec.tracking.run_store import RunStore, file_log_handler

log = logging.getLogger("seqrec")



@dataclass
class Run:
    """An open run: its tracker, run store, folder and ID (a resumed run keeps its original ID; its tracker task
    is new)."""

    tracker: object
    store: Optional[RunStore]
    dir: Path
    run_id: str = ""

    @property
    def id(self) -> str:
        return self.run_id or self.tracker.task_id


def _record_status(store: RunStore, run_id: str, status: str) -> None:
    """``store.finish``, never raising: on a full disk the error that stopped the run is the one to report."""
    try:
        store.finish(run_id, status=status)
    except OSError as exc:
        log.warning("could not record status %s of run %s in its run.json: %s", status, run_id, exc)


@contextlib.contextmanager
def run_lifecycle(cfg: DictConfig, kind: str, resume: Optional[str] = None, from_epoch: int = 0) -> Iterator[Run]:
    """A tracked run of ``kind`` (train | predict); with ``resume=<ID>`` the existing folder of that killed training
    run, reopened (``run.json`` back to ``running`` with a ``resumed`` entry, ``config.yaml`` replaced by ``cfg``,
    ``run.log`` appended to) under a new tracker task that records ``resumed_from_task``."""
    tracker = instantiate_tracker(cfg.logger, task_type="training" if kind == "train" else "inference")
    store = RunStore(cfg.run_store)
    try:
        if resume is None:
            run_dir = store.create(tracker.task_id, kind=kind, task_name=cfg.task_name)
        else:
            run_dir = store.path(resume)
            store.resume(resume, tracker_task_id=tracker.task_id, from_checkpoint=str(LAST_CKPT),
                         checkpoint_epoch=from_epoch)
    except BaseException:
        tracker.close(status="failed")
        raise
    run = Run(tracker, store, run_dir, run_id=resume or "")
    label = f"{kind} run {run.id}" + (" (resumed)" if resume else "")
    handler = file_log_handler(run_dir)
    logging.getLogger().addHandler(handler)
    status = "failed"
    try:
        atomic_write_text(run_dir / CONFIG_FILE, OmegaConf.to_yaml(cfg, resolve=True))
        tracker.connect_config(OmegaConf.to_container(cfg, resolve=True))
        if resume is None:
            log.info("%s run %s -> %s", kind, run.id, run_dir)
        else:
            resumes = len(store.info(resume).extra.get("resumed", []))
            session = getattr(tracker, "offline_session_dir", None)
            if session is not None:
                store.update_last_resume(resume, clearml_offline_session=str(session))
            tracker.connect_config(
                {"resumed_from_task": resume, "resume_count": resumes, "checkpoint_epoch": from_epoch}, name="resume"
            )
            log.info("train run %s resumed from %s (epoch %d, resume #%d; tracker task %s) -> %s",
                     resume, LAST_CKPT, from_epoch, resumes, tracker.task_id, run_dir)
        yield run
        status = "completed"
    except (RunInterrupted, KeyboardInterrupt):
        status = "interrupted"
        log.warning("%s interrupted", label)
        raise
    except BaseException:
        log.exception("%s failed", label)
        raise
    finally:
        _record_status(store, run.id, status)  # first: a tracker stuck on a dead server cannot hold it back
        tracker.close(status=status)
        session = getattr(tracker, "offline_session_dir", None)
        if session is not None:  # where the ClearML record of this run lives, for a later import
            zipped = getattr(tracker, "offline_session_zip", None)
            fields = {"clearml_offline_session": str(session), "clearml_offline_zip": str(zipped) if zipped else None}
            if resume is None:
                store.update(run.id, **fields)
            else:
                store.update_last_resume(run.id, **fields)
        logging.getLogger().removeHandler(handler)
        handler.close()


def open_run(cfg: DictConfig, kind: str):
    """A new tracked run of ``kind``: :func:`run_lifecycle` without ``resume``."""
    return run_lifecycle(cfg, kind)
