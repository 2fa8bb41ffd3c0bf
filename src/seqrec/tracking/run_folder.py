"""One run folder: its layout (every file name a run writes, named once), its record, and its one health check.

Layout of ``<run store>/<ID>/`` (torch-free)::

    run.json                 the record: kind, task name, status, process, hardware, resumes (seqrec.tracking.run_store)
    run.log                  the run's log, tracebacks included
    config.yaml              the resolved config the run ran with (and its format version, seqrec.config.upgrade)
    model.pt                 train: the best weights and how to rebuild the network
    checkpoints/last.ckpt    train: the last finished epoch (resume), checkpoints/best.ckpt: the best one
    history.csv              train: per-epoch curves
    metrics.json             train: best validation score, epochs, timing; predict: every metric
    predictions.parquet      predict: the test users' lists (val_predictions.parquet: the validation users')
    per_user.parquet         predict: every accuracy metric per validation and test user
    intervals.json           predict: bootstrap confidence intervals of metrics.json's accuracy metrics
    per_position.csv / .png  predict: recall by held-out position, with bands
    nested.npz               predict with prefix_sequences: the aggregated lists of each N's first sequences

:class:`RunFolder` names these paths; :meth:`RunFolder.health` is the check that ``check_runs.py``, ``resume=``,
``train_task=`` and prompt-tuning all use.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

RUN_FILE = "run.json"
LOG_FILE = "run.log"
CONFIG_FILE = "config.yaml"
MODEL_FILE = "model.pt"
METRICS_FILE = "metrics.json"
HISTORY_FILE = "history.csv"
PREDICTIONS_FILE = "predictions.parquet"
PER_USER_FILE = "per_user.parquet"
INTERVALS_FILE = "intervals.json"
PER_POSITION_TABLE = "per_position.csv"
PER_POSITION_PLOT = "per_position.png"
NESTED_FILE = "nested.npz"
CHECKPOINTS = "checkpoints"
LAST_CKPT = Path(CHECKPOINTS) / "last.ckpt"
BEST_CKPT_NAME = "best"  # Lightning's ModelCheckpoint filename (checkpoints/best.ckpt)

#: the format of the run folders this package writes, recorded in run.json (seqrec.config.upgrade reads older ones)
FORMAT = 2

KINDS = ("train", "predict")
STATUSES = ("running", "completed", "failed", "interrupted")


def _short(exc: BaseException, limit: int = 80) -> str:
    return " ".join(str(exc).split())[:limit]


class RunFolder:
    """The folder of one run: where each of its files lives, what its record says, whether it is sound."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    def __truediv__(self, name: str | Path) -> Path:
        return self.path / name

    @property
    def id(self) -> str:
        return self.path.name

    # ------------------------------------------------------------------ files
    record_file = property(lambda self: self.path / RUN_FILE)
    log = property(lambda self: self.path / LOG_FILE)
    config = property(lambda self: self.path / CONFIG_FILE)
    model = property(lambda self: self.path / MODEL_FILE)
    metrics = property(lambda self: self.path / METRICS_FILE)
    history = property(lambda self: self.path / HISTORY_FILE)
    per_user = property(lambda self: self.path / PER_USER_FILE)
    intervals = property(lambda self: self.path / INTERVALS_FILE)
    per_position_table = property(lambda self: self.path / PER_POSITION_TABLE)
    per_position_plot = property(lambda self: self.path / PER_POSITION_PLOT)
    nested = property(lambda self: self.path / NESTED_FILE)
    checkpoints = property(lambda self: self.path / CHECKPOINTS)
    last_checkpoint = property(lambda self: self.path / LAST_CKPT)

    def predictions(self, part: str = "test") -> Path:
        """The lists of the ``test`` users (``predictions.parquet``) or of another part (``val_predictions.parquet``)."""
        return self.path / (PREDICTIONS_FILE if part == "test" else f"{part}_{PREDICTIONS_FILE}")

    #: the files a predict run uploads to its tracker, by artifact name
    def predict_artifacts(self) -> dict[str, Path]:
        return {"predictions": self.predictions("test"), "metrics": self.metrics, "config": self.config,
                "per-user metrics": self.per_user, "intervals": self.intervals, "prefix lists": self.nested}

    def train_artifacts(self) -> dict[str, Path]:
        return {"checkpoint": self.model, "config": self.config, "metrics": self.metrics}

    # ------------------------------------------------------------------ reading
    def read_record(self) -> dict:
        """``run.json`` as a dict (FileNotFoundError, or ValueError when it is not a JSON object)."""
        with open(self.record_file, encoding="utf-8") as handle:
            data = json.load(handle)
        if not isinstance(data, dict):
            raise ValueError(f"{self.record_file} does not hold a JSON object")
        return data

    def read_config(self) -> dict:
        """``config.yaml`` as plain data, exactly as stored (FileNotFoundError, or ValueError when damaged);
        :func:`seqrec.config.upgrade.load_run_config` brings it to the current format."""
        import yaml  # PyYAML comes with omegaconf

        try:
            data = yaml.safe_load(self.config.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, yaml.YAMLError) as exc:
            raise ValueError(f"{CONFIG_FILE} is damaged ({type(exc).__name__})") from None
        if not isinstance(data, dict):
            raise ValueError(f"{CONFIG_FILE} does not hold a mapping")
        return data

    def read_metrics(self) -> dict:
        data = json.loads(self.metrics.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError(f"{METRICS_FILE} does not hold a JSON object")
        return data

    # ------------------------------------------------------------------ health
    def model_problem(self) -> str | None:
        """Why ``model.pt`` cannot be used (missing, truncated, a bad checksum), or None."""
        if not self.model.is_file():
            return f"has no {MODEL_FILE}"
        try:
            with zipfile.ZipFile(self.model) as archive:  # torch.save's format; a truncated copy fails here
                bad = archive.testzip()
        except (OSError, zipfile.BadZipFile, EOFError) as exc:
            return f"{MODEL_FILE} is damaged ({_short(exc, 60)})"
        return f"{MODEL_FILE} is damaged (checksum of {bad})" if bad is not None else None

    def health(self) -> tuple[dict, list[str]]:
        """``(run.json or {}, problems)``; an empty list means nothing is wrong.

        Checked: ``run.json`` parses and names this folder, with a known kind and status; ``config.yaml`` parses;
        a completed training run has a sound ``model.pt`` and a readable ``metrics.json``; a completed predict run
        has ``metrics.json`` and ``predictions.parquet``. Whether a run marked running is alive is the run store's
        question (:func:`seqrec.tracking.run_store.process_alive`), not damage.
        """
        problems: list[str] = []
        try:
            data = self.read_record()
        except FileNotFoundError:
            return {}, [f"no {RUN_FILE} (not a run folder, or its run.json was deleted)"]
        except (OSError, ValueError) as exc:
            detail = "not valid JSON" if isinstance(exc, json.JSONDecodeError) else _short(exc)
            return {}, [f"{RUN_FILE} is damaged ({detail})"]
        if data.get("task_id") != self.id:
            problems.append(f"{RUN_FILE} names run {data.get('task_id')!r}, not its folder {self.id!r}")
        if data.get("kind") not in KINDS:
            problems.append(f"{RUN_FILE} has kind {data.get('kind')!r} (expected {' or '.join(KINDS)})")
        if data.get("status") not in STATUSES:
            problems.append(f"{RUN_FILE} has status {data.get('status')!r} (expected one of {', '.join(STATUSES)})")
        if not self.config.is_file():
            problems.append(f"no {CONFIG_FILE}")
        else:
            try:
                self.read_config()
            except OSError as exc:
                problems.append(f"{CONFIG_FILE} is damaged ({type(exc).__name__})")
            except ValueError as exc:
                problems.append(str(exc))
        if data.get("status") == "completed":
            if data.get("kind") == "train":
                problem = self.model_problem()
                if problem is not None:
                    problems.append(f"completed but {problem}" if problem.startswith("has no") else problem)
            elif not self.predictions("test").is_file():
                problems.append(f"completed but has no {PREDICTIONS_FILE}")
            if not self.metrics.is_file():
                problems.append(f"completed but has no {METRICS_FILE}")
            else:
                try:
                    self.read_metrics()
                except (OSError, ValueError) as exc:
                    problems.append(f"{METRICS_FILE} is damaged ({type(exc).__name__})")
        return data, problems
