"""The life of one run, new or resumed: tracker + run-store folder + log file + final status (torch-free).

:func:`run_context` is the one place that opens a run: it creates the ClearML task (or none), the run's folder (or
reopens a killed run's folder for ``resume=<ID>``), writes the resolved ``config.yaml``, attaches the run's
``run.log``, and on exit records ``completed``, ``interrupted`` (a signal) or ``failed`` in ``run.json`` and closes
the tracker, noting where an offline ClearML session lives. It is also where the faults a user can act on become
one line, for training and prediction alike: a full disk marks the run failed and says what to do (for a training
run, the exact command that continues it); a signal marks it interrupted.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Optional

from seqrec.core.frozen import thawed
from seqrec.core.errors import ResumableRunError, RunInterrupted, UserError
from seqrec.core.io import atomic_write_text, disk_full_message, is_disk_full
from seqrec.core.signals import signal_name, stop_on_signals
from seqrec.tracking.base import NoneTracker, instantiate_tracker
from seqrec.tracking.run_folder import LAST_CKPT, RunFolder
from seqrec.tracking.run_store import RunStore, file_log_handler

log = logging.getLogger("seqrec")


@dataclass(frozen=True)
class RunSpec:
    """Who a run is and where it is recorded: what every run (train or predict) has, resolved once."""

    kind: str  # train | predict
    project_name: str
    task_name: str
    run_store: str
    logger: Optional[Mapping[str, Any]]  # the tracker's config node (``_target_`` + arguments), None: no tracker
    config: Mapping[str, Any]  # the resolved config: written to config.yaml and given to the tracker
    command: Optional[tuple]  # (config name, overrides) of the Hydra command line; None when composed in code


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

    @property
    def folder(self) -> RunFolder:
        return RunFolder(self.dir)

    def record(self, **fields: Any) -> None:
        """Add ``fields`` to the run's ``run.json`` (nothing for a DDP worker, which has no record)."""
        if self.store is not None:
            self.store.update(self.id, **fields)


def _record_status(store: RunStore, run_id: str, status: str) -> None:
    """``store.finish``, never raising: on a full disk the error that stopped the run is the one to report."""
    try:
        store.finish(run_id, status=status)
    except OSError as exc:
        log.warning("could not record status %s of run %s in its run.json: %s", status, run_id, exc)


@contextlib.contextmanager
def run_context(spec: RunSpec, resume: Optional[str] = None, from_epoch: int = 0,
                continue_command: Optional[Callable[[str], str]] = None, replica: bool = False,
                interrupted: Optional[Callable[[str, str], str]] = None) -> Iterator[Run]:
    """A tracked run of ``spec.kind``; with ``resume=<ID>`` the existing folder of that killed training run, reopened
    (``run.json`` back to ``running`` with a ``resumed`` entry, ``config.yaml`` replaced, ``run.log`` appended to)
    under a new tracker task that records ``resumed_from_task``.

    ``continue_command(run_id)``: the command that continues this run after a fault (training); a full disk then
    ends with it. ``interrupted(run_id, signal_name)``: the line a signal ends the run with (default: the run is
    marked interrupted; run the command again). SIGTERM and SIGINT stop the run the same way whatever tracker it has
    (:func:`seqrec.core.signals.stop_on_signals`, installed after the tracker's own handlers). ``replica``: a DDP
    worker's stand-in: no tracker, no run-store folder (rank 0 keeps the record).
    """
    if replica:
        with tempfile.TemporaryDirectory(prefix="seqrec-replica-") as tmp:
            yield Run(NoneTracker(spec.project_name, spec.task_name), None, Path(tmp))
        return
    kind = spec.kind
    RunStore(spec.run_store).check_writable()  # before the tracker: a refused run leaves no ClearML session behind
    tracker = instantiate_tracker(thawed(spec.logger), task_type="training" if kind == "train" else "inference")
    with stop_on_signals():  # after the tracker: its own handlers (ClearML's kept a run going after SIGTERM) wait
        with _run(spec, tracker, resume, from_epoch, continue_command, interrupted) as run:
            yield run


@contextlib.contextmanager
def _run(spec: RunSpec, tracker, resume, from_epoch, continue_command, interrupted) -> Iterator[Run]:
    kind = spec.kind
    store = RunStore(spec.run_store)
    try:
        if resume is None:
            run_dir = store.create(tracker.task_id, kind=kind, task_name=spec.task_name)
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
        config = thawed(spec.config)
        atomic_write_text(run.folder.config, _yaml(config))
        tracker.connect_config(config)
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
    except (RunInterrupted, KeyboardInterrupt) as exc:
        status = "interrupted"
        log.warning("%s interrupted", label)
        name = signal_name(exc)
        if isinstance(exc, RunInterrupted) and exc.run_id is not None or name is None:
            raise  # already says what happened to this run
        line = (interrupted or _interrupted)(run.id, name)
        raise RunInterrupted(line, run.id, name) from None
    except OSError as exc:
        log.exception("%s failed", label)
        if not is_disk_full(exc):
            raise
        if continue_command is not None:
            raise ResumableRunError(
                f"{disk_full_message(exc)}; run {run.id} is marked failed and keeps its last good checkpoint "
                f"(checkpoints are written atomically): free space, then continue it with: {continue_command(run.id)}"
            ) from exc
        raise UserError(f"{disk_full_message(exc)}; run {run.id} is marked failed, earlier files are intact (every "
                        "write is atomic): free space or pass run_store=<a folder with room>, and run the command "
                        "again") from exc
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


def _interrupted(run_id: str, name: str) -> str:
    return (f"interrupted by {name}: run {run_id} is marked interrupted and its results are incomplete; run the "
            "command again for a complete run")


def _yaml(config: dict) -> str:
    from omegaconf import OmegaConf

    return OmegaConf.to_yaml(OmegaConf.create(config))
