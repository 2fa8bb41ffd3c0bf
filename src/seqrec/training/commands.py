"""The commands a training run prints: how to predict with it, and how to continue it after a fault or a signal."""

from __future__ import annotations

import shlex
from pathlib import Path

from seqrec.core.paths import default_run_store


def predict_command(spec, run_id: str) -> str:
    """The exact ``run_predict`` command for a finished training run (``spec``: its :class:`TrainSpec`)."""
    parts = [
        "python src/run_predict.py",
        f"--config-name={spec.predict_config_name}",
        f"task_name={shlex.quote(_predict_task_name(spec.run.task_name))}",
        f"train_task={run_id}",
    ]
    if Path(spec.run.run_store).resolve() != default_run_store():
        parts.append(f"run_store={shlex.quote(spec.run.run_store)}")
    return " ".join(parts)


def resume_command(spec, run_id: str) -> str:
    """``python src/run_train.py --config-name=<name> <the same overrides> resume=<ID>``: the command that
    continues ``run_id`` (its settings must be the run's own). From the Hydra command line when there is one."""
    if spec.run.command is not None:
        name, overrides = spec.run.command[0], [o for o in spec.run.command[1] if not o.startswith("resume=")]
    else:
        name, overrides = "GPT_train", [f"data_path={spec.data.path}", f"run_store={spec.run.run_store}"]
    args = [f"--config-name={name}", *overrides, f"resume={run_id}"]
    return "python src/run_train.py " + " ".join(shlex.quote(a) for a in args)


def interruption_message(spec, run_id: str, signal_name: str, epoch: int, can_resume: bool) -> str:
    """The one line an interrupted training prints: what happened, what survives, and the exact command to go on,
    when there is a checkpoint to go on from (else: to start again)."""
    if can_resume:
        return (f"interrupted by {signal_name} in epoch {epoch}: run {run_id} is marked interrupted and keeps its "
                f"checkpoint of the last finished epoch; continue it with: {resume_command(spec, run_id)}")
    again = resume_command(spec, run_id).rsplit(" resume=", 1)[0]
    return (f"interrupted by {signal_name} in epoch {epoch}, before its first checkpoint: run {run_id} is marked "
            f"interrupted and has nothing to continue from; start it again with: {again}")


def _predict_task_name(train_task_name: str) -> str:
    base = train_task_name[: -len("_train")] if train_task_name.endswith("_train") else train_task_name
    return f"{base}_predict"
