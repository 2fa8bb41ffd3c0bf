"""What the experiment commands share (``scripts/reproduce_paper.py``, ``scripts/cross_check.py``): the data set by
name, the command line's set-up, the line printed per finished step, and each run's time, hardware and training
record for the reports."""

from __future__ import annotations

import logging
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Iterable

from seqrec.core.errors import UserError
from seqrec.core.paths import REPO_ROOT

UNRECORDED = "hardware not recorded"  # runs made before run.json recorded it


def add_data_arguments(parser) -> None:
    """``--dataset`` and ``--source``, as every experiment command takes them (see :func:`dataset_path`)."""
    parser.add_argument("--dataset", required=True, help="ml-1m | ml-100k | path to an interaction CSV")
    parser.add_argument("--source", metavar="PATH", help="MovieLens zip/folder to prepare from (default: "
                        "../shared/data/<name> beside the repo if present, else download from GroupLens)")


def add_run_arguments(parser, report: str = "<dataset>") -> None:
    """The runs' options every experiment command takes: extra overrides, where runs and the report go, the logger
    (``report``: the report folder's name under ``--results``)."""
    parser.add_argument("--train-override", action="append", default=[], metavar="KEY=VALUE",
                        help="extra Hydra override for every training run (repeatable)")
    parser.add_argument("--predict-override", action="append", default=[], metavar="KEY=VALUE",
                        help="extra Hydra override for every predict run (repeatable)")
    parser.add_argument("--run-store", default=str(REPO_ROOT / "runs"))
    parser.add_argument("--results", default=None, help=f"parent folder of the report folder {report} "
                        "(default: results/, or <run store>/reports/ with --quick)")
    parser.add_argument("--logger", default="clearml_offline",
                        help="logger config group: clearml_offline | clearml | none")


def dataset_path(name: str, source: str | None) -> tuple[str, Path]:
    """(label, CSV path) for a MovieLens name (prepared into ``data/`` if missing, from ``source`` or
    ``../shared/data/<name>`` beside the repo when present, else downloaded) or a CSV path."""
    from seqrec.data.movielens import DATASETS, prepare_movielens

    if name in DATASETS:
        out = REPO_ROOT / "data" / f"{name}.csv"
        if not out.exists():
            shared = REPO_ROOT.parent / "shared" / "data" / name
            prepare_movielens(name, source=source or (str(shared) if shared.exists() else None), out=str(out))
        return name, out
    path = Path(name)
    if not path.is_file():
        raise UserError(f"--dataset {name}: not a MovieLens name ({', '.join(DATASETS)}) nor an existing CSV file")
    return path.stem, path


def start_command(args, paths: Iterable[str] = ("run_store", "results", "source")) -> None:
    """A command's set-up: the path arguments ``paths`` (and ``--dataset`` when it is a file) made absolute, as typed
    from where the command was typed; then the repository root as the working directory (data paths relative to it:
    a step is the same step on every clone); libraries' output quiet, warnings only on the terminal."""
    for name in paths:
        if getattr(args, name, None):
            setattr(args, name, os.path.abspath(getattr(args, name)))
    if os.path.exists(args.dataset):
        args.dataset = os.path.abspath(args.dataset)
    os.chdir(REPO_ROOT)
    from seqrec.cli.entry import quiet_third_party

    quiet_third_party()
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:  # libraries' INFO records propagate here: warnings only
        handler.setLevel(logging.WARNING)


def print_step(outcome, done: int, total: int) -> None:
    """The line a finished (or reused) step prints: ``[3/7] SASRec seed 42 train: <ID> (612 s)``."""
    spec = outcome.spec
    what = spec.strategy + (f" {spec.label}" if spec.label else "") if spec else "train"
    how = "reused" if outcome.reused else f"{outcome.seconds:.0f} s"
    print(f"[{done}/{total}] {outcome.model} seed {outcome.seed} {what}: {outcome.run.task_id} ({how})", flush=True)


def run_seconds(record) -> float:
    """A run's own duration (``run.json``: created to finished), 0 when not recorded."""
    try:
        return (datetime.fromisoformat(record.finished) - datetime.fromisoformat(record.created)).total_seconds()
    except (TypeError, ValueError):
        return 0.0


def hardware_of(record) -> str:
    """What a run ran on, less the precision (``CPU AMD EPYC, 2 threads``)."""
    return str(record.extra.get("hardware", UNRECORDED)).rsplit(", ", 1)[0]


def timing_record(outcome) -> dict:
    """One row of ``timing.csv``: the step, its run's duration, whether it was reused, and its hardware."""
    spec = outcome.spec
    return {"model": outcome.model, "seed": outcome.seed, "stage": "train" if spec is None else spec.strategy,
            "setting": "" if spec is None else spec.label, "seconds": round(run_seconds(outcome.run), 1),
            "reused": outcome.reused, "hardware": hardware_of(outcome.run), "task_id": outcome.run.task_id}


def training_record(outcome, metrics: dict) -> dict:
    """One row of ``training.csv`` from a training run's outcome and its ``metrics.json``: loss, epochs, best epoch,
    time, the best validation score, why it stopped (``stopped_by``; runs made before it was recorded: empty) and the
    wall-clock budget it had (``max_time_seconds``), hardware."""
    from seqrec.config.upgrade import load_run_config

    cfg = load_run_config(outcome.run.path, "train")
    return {
        "model": outcome.model, "loss": str(cfg["seqrec_module"]["loss"]["_target_"]).rsplit(".", 1)[-1],
        "epochs": metrics.get("epochs"), "best_epoch": metrics.get("best_epoch"),
        "seconds_per_epoch": metrics.get("seconds_per_epoch"), "fit_seconds": metrics.get("fit_seconds"),
        "seed": outcome.seed, "best_val_next_ndcg@10": metrics.get("best_val_next_ndcg@10",
                                                                   metrics.get("best_val_ndcg@10")),
        "stopped_by": metrics.get("stopped_by", ""), "max_time_seconds": metrics.get("max_time_seconds"),
        "hardware": outcome.run.extra.get("hardware", UNRECORDED), "train_task": outcome.run.task_id,
    }
