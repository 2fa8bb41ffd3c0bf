"""The commands a training run prints: how to predict with it, and how to continue it after a fault or a signal."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

from seqrec.core.paths import default_run_store, script_command


def predict_command(spec, run_id: str) -> str:
    """The exact ``run_predict`` command for a finished training run (``spec``: its :class:`TrainSpec`)."""
    parts = [
        script_command("src/run_predict.py"),  # python src/run_predict.py from the repo root, its full path elsewhere
        f"--config-name={spec.predict_config_name}",
        f"task_name={shlex.quote(_predict_task_name(spec.run.task_name))}",
        f"train_task={run_id}",
    ]
    if Path(spec.run.run_store).resolve() != default_run_store():
        parts.append(f"run_store={shlex.quote(os.path.abspath(spec.run.run_store))}")  # from any folder
    return " ".join(parts)


def resume_command(spec, run_id: str) -> str:
    """``python src/run_train.py --config-name=<name> <the same overrides> resume=<ID>``: the command that
    continues ``run_id`` (its settings must be the run's own). From the Hydra command line when there is one."""
    if spec.run.command is not None:
        name, overrides = spec.run.command[0], [_from_anywhere(spec, o) for o in spec.run.command[1]
                                                if not o.startswith("resume=")]
    else:
        name, overrides = "GPT_train", [f"data_path={spec.run.config['data_path']}",
                                        f"run_store={os.path.abspath(spec.run.run_store)}"]
    args = [f"--config-name={name}", *overrides, f"resume={run_id}"]
    return script_command("src/run_train.py") + " " + " ".join(shlex.quote(a) for a in args)


def _from_anywhere(spec, override: str) -> str:
    """An override of the command line as it works from any folder: ``data_path`` as the run recorded it
    (:func:`~seqrec.core.paths.stored_path`), ``run_store`` absolute."""
    key = override.split("=", 1)[0].lstrip("+~")
    if key == "data_path" and "=" in override:
        return f"data_path={spec.run.config['data_path']}"
    if key == "run_store" and "=" in override:
        return f"run_store={os.path.abspath(spec.run.run_store)}"
    return override


def interruption_message(spec, run_id: str, signal_name: str, epoch: int | None, can_resume: bool) -> str:
    """The one line an interrupted training prints: what happened, what survives, and the exact command to go on,
    when there is a checkpoint to go on from (else: to start again)."""
    when = f" in epoch {epoch}" if epoch is not None else ""
    if can_resume:
        return (f"interrupted by {signal_name}{when}: run {run_id} is marked interrupted and keeps its checkpoint of "
                f"the last finished epoch; continue it with: {resume_command(spec, run_id)}")
    again = resume_command(spec, run_id).rsplit(" resume=", 1)[0]
    return (f"interrupted by {signal_name}{when}, before its first checkpoint: run {run_id} is marked interrupted "
            f"and has nothing to continue from; start it again with: {again}")


def _predict_task_name(train_task_name: str) -> str:
    base = train_task_name[: -len("_train")] if train_task_name.endswith("_train") else train_task_name
    return f"{base}_predict"
