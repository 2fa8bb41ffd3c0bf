"""Pieces training and prediction share: run-folder file names, data split, hardware, building configured objects, loading trained weights."""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import platform
import re
import tempfile
from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from seqrec.config import (
    command_line,
)
from seqrec.data.io import (
    atomic_write_json,
)
from seqrec.data.split import SplitData, load_interactions, split_interactions
from seqrec.errors import UserError
from seqrec.tracking.base import NoneTracker
from seqrec.tracking.lifecycle import Run


log = logging.getLogger("seqrec")


MODEL_FILE = "model.pt"


METRICS_FILE = "metrics.json"


PER_USER_FILE = "per_user.parquet"  # every accuracy metric per validation and test user


INTERVALS_FILE = "intervals.json"  # bootstrap confidence intervals of metrics.json's accuracy metrics


MONITOR = "val_next_ndcg@{k}"  # training: the next item only (predict's val_ndcg@k: all held-out items)


# --------------------------------------------------------------------------- runs


def distributed_rank() -> int:
    """This process's global rank in a distributed run (Lightning's DDP launcher, torchrun, SLURM); 0 if none."""
    for name in ("RANK", "LOCAL_RANK", "SLURM_PROCID"):
        value = os.environ.get(name)
        if value is not None and value.strip().isdigit():
            return int(value)
    return 0


@contextlib.contextmanager
def replica_run(cfg: DictConfig):
    """A DDP worker's stand-in for :func:`open_run`: no tracker, no run-store folder (rank 0 keeps the record)."""
    with tempfile.TemporaryDirectory(prefix="seqrec-replica-") as tmp:
        yield Run(NoneTracker(cfg.project_name, cfg.task_name), None, Path(tmp))


# --------------------------------------------------------------------------- data


def prepare_split(cfg: DictConfig) -> SplitData:
    """The split of ``cfg.data_path``; the columns that ``features.event_attributes`` names ride along."""
    from seqrec.data.features_config import feature_settings

    df = load_interactions(cfg.data_path)
    events = [s.name for s in feature_settings(cfg).events]
    missing = [c for c in events if c not in df.columns]
    if missing:
        raise UserError(f"features.event_attributes.{missing[0]}: {cfg.data_path} has no column {missing[0]!r} (its "
                        f"columns: {list(df.columns)}); name a column of the interaction CSV, or use features=items")
    return split_interactions(
        df,
        last_n_items=cfg.last_n_items,
        validation_size=cfg.dataloader.validation_size,
        random_state=cfg.random_state,
        extra_columns=events,
    )


def prepare_features(cfg: DictConfig, split: SplitData, with_items: bool = True):
    """The attributes of a training config's ``features`` on ``split`` (:class:`seqrec.data.features.Features`),
    or None. ``with_items=False``: the event codes only (a trained model holds its item codes itself)."""
    from seqrec.data.features import load_features
    from seqrec.data.features_config import feature_settings

    return load_features(feature_settings(cfg), cfg.data_path, split, with_items)


def hardware(device: torch.device, precision: str, processes: int = 1) -> str:
    """What a run ran on, for its ``run.json`` (``NVIDIA H200, bf16-mixed`` / ``CPU <model>, 2 threads, 32-true``)."""
    if device.type == "cuda":
        what = torch.cuda.get_device_name(device)
    else:
        name = platform.processor() or platform.machine()
        try:
            with open("/proc/cpuinfo", encoding="utf-8") as info:
                name = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), name)
        except OSError:
            pass
        threads = torch.get_num_threads()
        what = f"CPU {name}, {threads} thread{'s' if threads != 1 else ''}"
    return f"{what}{f' x {processes} processes' if processes > 1 else ''}, {precision}"


def _device(name: str | None) -> torch.device:
    if name in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


# --------------------------------------------------------------------------- train


def build(cls, where: str, **kwargs):
    """``cls(**kwargs)``; a bad value (ValueError/TypeError) becomes a one-line UserError."""
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:
        raise UserError(f"{where}: {exc}") from exc


def build_node(node: DictConfig, where: str, **kwargs):
    """Instantiate a config node with ``_target_`` plus ``kwargs`` (one-line errors, see :func:`partial_node`)."""
    return partial_node(node, where)(**kwargs)


def partial_node(node: DictConfig | None, where: str):
    """A factory calling a config node's ``_target_`` with its other keys plus the caller's arguments (None for a
    null node); a bad value becomes a one-line UserError when it is called."""
    if node is None:
        return None
    from hydra.utils import get_class

    params = OmegaConf.to_container(node, resolve=True)
    target = params.pop("_target_", None)
    try:
        cls = get_class(target)
    except Exception as exc:
        raise UserError(f"{where}._target_={target!r} is not an importable class ({exc})") from None
    def make(*args, **kwargs):
        try:
            return cls(*args, **params, **kwargs)
        except (ValueError, TypeError) as exc:
            raise UserError(f"{where}: {exc}") from exc

    return make


def load_weights(path: Path) -> dict:
    """``torch.load`` of a run's file with ``weights_only=True``: tensors, numbers, strings and containers only.

    Run folders travel (a colleague, a ClearML server); a pickle that would construct any other object (and so
    could run code) is refused with one line, before anything in it runs."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL (\S+) was not an allowed global", str(exc))
        what = f" ({found.group(1)})" if found else ""
        raise UserError(
            f"{path} holds objects other than weights{what}; refused, since loading it could run code: use run "
            "folders only from sources you trust, or train the run again"
        ) from None


# --------------------------------------------------------------------------- predict


def load_trained(run_dir: Path, device: torch.device):
    path = run_dir / MODEL_FILE
    if not path.exists():
        raise UserError(f"run {run_dir.name} has no {MODEL_FILE} (did its training finish?); train again with run_train.py")
    meta = load_weights(path)
    model = instantiate({"_target_": meta["target"]}, n_items=meta["n_items"], **meta["params"])
    model.load_state_dict(meta["state_dict"])
    return model.to(device).eval(), meta


def record_trial(run_id: str, objective: float) -> None:
    """In a ``--multirun`` job, write ``trial.json`` (run ID, objective, overrides) into the job's folder of the
    sweep directory, so a sweep's trial folders say which run each trial is (:mod:`seqrec.sweep`)."""
    given = command_line()
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        if given is None or HydraConfig.get().mode != RunMode.MULTIRUN:
            return
        folder = Path(HydraConfig.get().runtime.output_dir)
    except Exception:  # noqa: BLE001 -- no Hydra job context
        return
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_json(folder / "trial.json", {"run_id": run_id, "objective": float(objective), "overrides": given[1]})
