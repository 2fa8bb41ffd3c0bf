"""Local run store: one folder per run, so ``train_task=<ID>`` works without a server.

Layout::

    <root>/<task_id>/run.json   {task_id, kind, task_name, created, status, [finished], ...}
    <root>/<task_id>/run.log    (see :func:`file_log_handler`)
    <root>/<task_id>/...        whatever the pipeline writes (config, checkpoint, metrics)

A run folder is never reused or overwritten.  ``run.json`` is written
atomically (temporary file + ``os.replace``) so a crash never leaves a
half-written file behind.

The one exception is :meth:`RunStore.resume`: a training run that did not complete
(killed, failed, interrupted) continues in its own folder. It is marked ``running``
again and ``run.json`` gets a ``resumed`` list (one entry per resumption: when, the
previous status, the new tracker task) and ``tracker_task_ids`` (the run's own ID first).
``process`` (pid, host, start time; see :func:`current_process`) tells whether a run
still marked ``running`` is alive.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import re
import socket
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional, Union

from seqrec.core.errors import UserError
from seqrec.tracking.run_folder import FORMAT, KINDS, LOG_FILE, RUN_FILE, STATUSES, RunFolder

log = logging.getLogger(__name__)

#: where reproduce_paper.py --jobs writes one log per chain, inside the run store
JOB_LOGS = "logs"
#: folders a run store holds besides runs: Hydra's multirun records, --quick experiment reports, the --jobs logs
SIDE_FOLDERS = ("multirun", "reports", JOB_LOGS)
_PROTECTED_FIELDS = ("task_id", "kind", "created")
_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_HINTS = {
    "train": "pass train_task=<ID> printed by run_train.py",
    "predict": "pass the run ID printed by run_predict.py",
    None: "pass a run ID printed by run_train.py or run_predict.py",
}


@dataclasses.dataclass(frozen=True)
class RunRecord:
    """The content of one ``run.json`` plus the run folder."""

    task_id: str
    kind: str
    task_name: str
    created: str
    status: str
    path: Path
    finished: Optional[str] = None
    extra: dict = dataclasses.field(default_factory=dict)

    @property
    def created_at(self) -> datetime:
        return _parse_time(self.created)


def _now() -> str:
    return datetime.now().astimezone().isoformat(timespec="microseconds")


def _parse_time(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return datetime.min.replace(tzinfo=timezone.utc)
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def write_json_atomic(path: Union[str, os.PathLike], data: Any) -> None:
    """Write ``data`` as JSON to ``path`` via a temp file in the same folder + rename."""
    path = Path(path)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, sort_keys=False)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        raise


def file_log_handler(run_dir: Union[str, os.PathLike], level: int = logging.DEBUG) -> logging.FileHandler:
    """A ``logging.FileHandler`` appending to ``<run_dir>/run.log`` (attach it to a logger yourself)."""
    handler = logging.FileHandler(Path(run_dir) / LOG_FILE, mode="a", encoding="utf-8")
    handler.setLevel(level)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    return handler


def _process_started(pid: int) -> Optional[float]:
    try:
        import psutil

        return round(float(psutil.Process(pid).create_time()), 2)
    except Exception:  # psutil missing, or no such process
        return None


def distributed_rank() -> int:
    """This process's global rank in a distributed run (Lightning's DDP launcher, torchrun, SLURM); 0 if none."""
    for name in ("RANK", "LOCAL_RANK", "SLURM_PROCID"):
        value = os.environ.get(name)
        if value is not None and value.strip().isdigit():
            return int(value)
    return 0


def slurm_job() -> Optional[str]:
    """This process's SLURM job (``<array job>_<task>`` for array jobs, as submitit submits sweeps), or None."""
    array, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    if array and task:
        return f"{array}_{task}"
    return os.environ.get("SLURM_JOB_ID") or None


def current_process() -> dict:
    """This process, as recorded in ``run.json`` (``process``) to tell later whether it still runs; under SLURM
    also its job, so that a requeued job finds the run it was training (:meth:`RunStore.requeued_run`)."""
    pid = os.getpid()
    record = {"pid": pid, "host": socket.gethostname(), "started": _process_started(pid)}
    job = slurm_job()
    if job:
        record["slurm_job"] = job
    return record


def process_alive(process: Any) -> Optional[bool]:
    """Whether the process recorded by :func:`current_process` still runs here.

    ``None`` when that cannot be told: nothing recorded, or another host.
    """
    if not isinstance(process, dict) or not isinstance(process.get("pid"), int):
        return None
    if process.get("host") != socket.gethostname():
        return None
    pid = process["pid"]
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, another user's
        pass
    recorded, now = process.get("started"), _process_started(pid)
    if recorded is not None and now is not None and abs(recorded - now) > 1.0:
        return False  # the pid was reused by a later process
    return True


def existing_store(path: Union[str, os.PathLike, None], flag: str = "--run-store") -> "RunStore":
    """The run store at ``path`` (None: ``$SEQREC_RUN_STORE`` or ``<repo>/runs``) for a script that reads it; a
    one-line :class:`UserError` naming the script's ``flag`` when there is no such folder."""
    from seqrec.core.paths import default_run_store

    root = Path(path) if path else default_run_store()
    if not root.is_dir():
        raise UserError(f"{root} is not a folder; pass {flag} <the run store that holds the runs>")
    return RunStore(root)


class RunStore:
    """Run folders under ``root`` (default ``runs``, relative to the working directory)."""

    def __init__(self, root: Union[str, os.PathLike] = "runs") -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"RunStore({str(self.root)!r})"

    @property
    def _where(self) -> str:
        return f"{self.root}{os.sep}"

    def _fix(self) -> str:
        return "pass run_store=<a writable folder>" + (" or fix SEQREC_RUN_STORE" if os.environ.get("SEQREC_RUN_STORE")
                                                       else "")

    def check_writable(self) -> None:
        """One-line :class:`UserError` naming the run store when no run folder can be made in it (a file, a
        read-only mount, no permission); nothing is left behind."""
        from seqrec.core.io import folder_write_problem

        problem = folder_write_problem(self.root)
        if problem is not None:
            raise UserError(f"run store {self.root} {problem}; {self._fix()}")

    def _run_dir(self, task_id: str) -> Path:
        if self.root.exists() and not self.root.is_dir():
            raise UserError(f"run store {self.root} is a file, not a folder; {self._fix()}")
        if not isinstance(task_id, str) or not _RUN_ID.match(task_id) or ".." in task_id:
            raise UserError(
                f"invalid run ID {task_id!r} (letters, digits, '.', '_', '-' only); "
                f"{_HINTS['train']}"
            )
        return self.root / task_id

    # ------------------------------------------------------------------- write
    def create(self, task_id: str, kind: str, task_name: str, **extra: Any) -> Path:
        """Make ``<root>/<task_id>/`` with ``run.json`` (status "running"); returns the folder.

        Raises :class:`UserError` if the folder already exists (never overwritten).
        """
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        run_dir = self._run_dir(task_id)
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            run_dir.mkdir(exist_ok=False)
        except FileExistsError:
            raise UserError(
                f"run folder {run_dir} already exists; refusing to reuse or overwrite it, "
                "move it away or start a new run"
            ) from None
        data = {
            "task_id": task_id,
            "kind": kind,
            "task_name": str(task_name),
            "created": _now(),
            "status": "running",
            "format": FORMAT,  # of its config.yaml and files (seqrec.config.upgrade reads older formats)
            "process": current_process(),  # a run marked running whose process is gone was killed
        }
        for key, value in extra.items():
            if key not in data:
                data[key] = value
        write_json_atomic(run_dir / RUN_FILE, data)
        return run_dir

    def update(self, task_id: str, **fields: Any) -> dict:
        """Merge ``fields`` into ``run.json`` (``task_id``, ``kind``, ``created`` are fixed)."""
        fixed = [key for key in fields if key in _PROTECTED_FIELDS]
        if fixed:
            raise ValueError(f"run.json fields {fixed} cannot be changed")
        run_dir = self.path(task_id, kind=None)
        data = self._read(run_dir)
        data.update(fields)
        write_json_atomic(run_dir / RUN_FILE, data)
        return data

    def finish(self, task_id: str, status: str = "completed") -> dict:
        """Record the final ``status`` ("completed", "failed", "interrupted") and finish time."""
        if status not in STATUSES or status == "running":
            raise ValueError(f"status must be one of {STATUSES[1:]}, got {status!r}")
        return self.update(task_id, status=status, finished=_now())

    def check_resumable(self, task_id: str) -> dict:
        """``run.json`` of training run ``task_id`` if it may be resumed, else a one-line :class:`UserError`.

        Resumable: status ``failed`` or ``interrupted``, or ``running`` with its process gone
        (killed). A completed run, or one whose process still runs, is not.
        """
        run_dir = self.path(task_id, kind="train")
        data = self._read(run_dir)
        status = data.get("status")
        if status == "completed":
            raise UserError(
                f"run {task_id} is completed, there is nothing to resume; start a new run without resume= "
                "(to train longer, train a new run with a higher trainer_params.max_epochs)"
            )
        if status == "running":
            process = data.get("process")
            alive = process_alive(process)
            if alive:
                raise UserError(
                    f"run {task_id} is still running (pid {process['pid']} on {process['host']}); "
                    "wait for it or stop it before resuming"
                )
            if alive is None and isinstance(process, dict) and process.get("host"):
                raise UserError(
                    f"run {task_id} is marked running on host {process['host']}, where this process cannot check it; "
                    f"resume it there, or if it is gone set \"status\": \"interrupted\" in {run_dir / RUN_FILE}"
                )
            if alive is None:
                log.warning("run %s is marked running and has no process record; assuming it was killed", task_id)
        elif status not in ("failed", "interrupted"):
            raise UserError(f"run {task_id} has status {status!r} in {run_dir / RUN_FILE}; it cannot be resumed")
        return data

    def resume(self, task_id: str, tracker_task_id: Optional[str] = None, **fields: Any) -> dict:
        """Mark a resumable training run (see :meth:`check_resumable`) ``running`` again.

        Appends ``{"at", "previous_status", "previous_finished", "tracker_task_id", **fields}`` to
        ``resumed``; ``tracker_task_id`` (the new ClearML task, or ``local-…``) is also appended to
        ``tracker_task_ids``, which starts with the run's own ID. ``process`` becomes this process.
        """
        with self._locked(task_id):  # check and mark in one step: of two simultaneous resumes one is refused
            return self._resume_unlocked(task_id, tracker_task_id, **fields)

    @contextlib.contextmanager
    def _locked(self, task_id: str):
        """An exclusive lock on ``<run>/.lock`` (``fcntl.flock``; released when the process dies)."""
        lock_path = self._run_dir(task_id) / ".lock"
        try:
            import fcntl
        except ImportError:  # Windows: no flock; the status check alone remains
            yield
            return
        with open(lock_path, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _resume_unlocked(self, task_id: str, tracker_task_id: Optional[str] = None, **fields: Any) -> dict:
        data = self.check_resumable(task_id)
        entry = {
            "at": _now(), "previous_status": data.get("status"), "previous_finished": data.get("finished"),
            "tracker_task_id": tracker_task_id, **fields,
        }
        data["resumed"] = [*data.get("resumed", []), entry]
        task_ids = data.get("tracker_task_ids") or [data.get("task_id", task_id)]
        if tracker_task_id is not None:
            task_ids = [*task_ids, tracker_task_id]
        data["tracker_task_ids"] = task_ids
        data["status"] = "running"
        data["format"] = FORMAT  # the resumed run rewrites its config.yaml in the current format
        data["process"] = current_process()  # with the status: a second resume now sees it alive
        data.pop("finished", None)
        write_json_atomic(self._run_dir(task_id) / RUN_FILE, data)
        return data

    def update_last_resume(self, task_id: str, **fields: Any) -> dict:
        """Merge ``fields`` into the newest ``resumed`` entry of ``run.json``."""
        run_dir = self.path(task_id, kind=None)
        data = self._read(run_dir)
        if not data.get("resumed"):
            raise ValueError(f"run {task_id} was never resumed")
        data["resumed"][-1].update(fields)
        write_json_atomic(run_dir / RUN_FILE, data)
        return data

    # -------------------------------------------------------------------- read
    def exists(self, task_id: str) -> bool:
        try:
            return (self._run_dir(task_id) / RUN_FILE).is_file()
        except UserError:
            return False

    def path(self, task_id: str, kind: Optional[str] = "train") -> Path:
        """Folder of run ``task_id`` (a ``kind`` run; ``kind=None`` accepts any kind).

        Raises :class:`UserError` naming recent run IDs when it is unknown.
        """
        if kind is not None and kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS} or None, got {kind!r}")
        run_dir = self._run_dir(task_id)
        if not (run_dir / RUN_FILE).is_file():
            raise UserError(
                f"unknown run ID {task_id!r} in {self._where} ({self.known_hint(kind, task_id)}); {_HINTS[kind]}"
            )
        if kind is not None:
            actual = self._read(run_dir).get("kind")
            if actual != kind:
                raise UserError(
                    f"run {task_id!r} in {self._where} is a {actual} run, not a {kind} run "
                    f"({self._parent_hint(run_dir) if kind == 'train' else self.known_hint(kind)}); {_HINTS[kind]}"
                )
        return run_dir

    def info(self, task_id: str) -> RunRecord:
        run_dir = self.path(task_id, kind=None)
        return self._record(run_dir, self._read(run_dir))

    def list_runs(self, kind: Optional[str] = None) -> list[RunRecord]:
        """All runs (of ``kind`` if given), oldest first."""
        if kind is not None and kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS} or None, got {kind!r}")
        if not self.root.is_dir():
            return []
        records = []
        for run_file in self.root.glob(f"*/{RUN_FILE}"):
            try:
                data = self._read(run_file.parent)
            except (OSError, ValueError) as exc:
                log.warning("skipping unreadable %s: %s", run_file, exc)
                continue
            if kind is None or data.get("kind") == kind:
                records.append(self._record(run_file.parent, data))
        records.sort(key=lambda record: (record.created_at, record.task_id))
        return records

    def known_hint(self, kind: Optional[str], task_id: str = "") -> str:
        """For an unknown ``task_id``: the IDs of ``kind`` that look like it (a typo), else how many there are and
        how to list them -- never an unrelated run."""
        import difflib

        ids = [record.task_id for record in self.list_runs(kind)]
        label = f"{kind} runs" if kind else "runs"
        if not ids:
            return f"no {label} yet"
        near = difflib.get_close_matches(task_id, ids, n=2, cutoff=0.8) if task_id else []
        if near:
            return f"did you mean {' or '.join(near)}?"
        return f"{len(ids)} {label} there; list them with python scripts/check_runs.py --run-store {self.root}"

    def _parent_hint(self, predict_dir: Path) -> str:
        """For a predict run given where a training run is wanted: the training run it was made from."""
        try:
            parent = RunFolder(predict_dir).read_config().get("train_task")
        except Exception:  # noqa: BLE001 -- no or damaged config: fall back to the generic hint
            parent = None
        if isinstance(parent, str) and self.exists(parent):
            return f"it was made from train run {parent}"
        return self.known_hint("train")

    def requeued_run(self, task_name: str) -> Optional[str]:
        """Under a *requeued* SLURM job (``SLURM_RESTART_COUNT`` >= 1, as after preemption with submitit or
        Lightning's requeue): the training run ``task_name`` this same job left unfinished (interrupted, failed,
        or marked running with its process gone), newest first; else None."""
        job = slurm_job()
        if not job or int(os.environ.get("SLURM_RESTART_COUNT", "0") or 0) < 1:
            return None
        for record in reversed(self.list_runs("train")):
            process = record.extra.get("process") or {}
            if record.task_name != task_name or process.get("slurm_job") != job:
                continue
            if record.status in ("interrupted", "failed") or (
                record.status == "running" and process_alive(process) is not True
            ):
                return record.task_id
        return None

    def resolve_id(self, task_id: str) -> str:
        """``task_id`` itself if it is a run, else the one run whose ID starts with it (a unique prefix, as git
        takes for commits); several matches are a one-line :class:`UserError`; no match returns it unchanged."""
        if not isinstance(task_id, str) or not task_id or self.exists(task_id) or not self.root.is_dir():
            return task_id
        matches = sorted(p.name for p in self.root.iterdir()
                         if p.name.startswith(task_id) and (p / RUN_FILE).is_file())
        if len(matches) > 1:
            shown = ", ".join(matches[:3]) + (f" and {len(matches) - 3} more" if len(matches) > 3 else "")
            raise UserError(f"run ID prefix {task_id!r} matches {len(matches)} runs ({shown}); give more characters")
        if matches:
            log.info("run ID %s: %s", task_id, matches[0])
            return matches[0]
        return task_id

    @staticmethod
    def _read(run_dir: Path) -> dict:
        return RunFolder(run_dir).read_record()

    @staticmethod
    def _record(run_dir: Path, data: dict) -> RunRecord:
        known = {"task_id", "kind", "task_name", "created", "status", "finished"}
        return RunRecord(
            task_id=str(data.get("task_id", run_dir.name)),
            kind=str(data.get("kind", "")),
            task_name=str(data.get("task_name", "")),
            created=str(data.get("created", "")),
            status=str(data.get("status", "")),
            path=run_dir,
            finished=data.get("finished"),
            extra={key: value for key, value in data.items() if key not in known},
        )


__all__ = [
    "RunStore", "RunRecord", "file_log_handler", "write_json_atomic", "current_process", "process_alive",
    "KINDS", "STATUSES",
]
