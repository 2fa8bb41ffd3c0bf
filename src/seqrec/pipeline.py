"""What ``run_train.py`` and ``run_predict.py`` do, as plain functions of a composed config."""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import platform
import re
import shlex
import tempfile
import time
import warnings
from pathlib import Path

import lightning as L
import numpy as np
import pandas as pd
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from seqrec.config import (
    apply_model_aliases, check_predict_config, check_train_config, command_line, command_line_keys, model_class,
    model_declaration,
)
from seqrec.data.datamodule import SeqRecDataModule
from seqrec.data.datasets import EvalDataset
from seqrec.data.io import (
    atomic_to_csv, atomic_to_parquet, atomic_write, atomic_write_json, disk_full_message, is_disk_full,
)
from seqrec.data.split import SplitData, load_interactions, split_interactions
from seqrec import default_run_store
from seqrec.errors import ResumableRunError, RunInterrupted, UserError
from seqrec.metrics import compute_metrics, format_metrics, per_position_table, plot_per_position
from seqrec.stats import bootstrap_table
from seqrec.module import SeqRecModule
from seqrec.ops import fast_bfloat16
from seqrec.generation import ban_generated, build_strategy, generate
from seqrec.generation.engine import resolve_precision
from seqrec.tracking.base import NoneTracker
from seqrec.tracking.lightning_logger import TrackerLogger
from seqrec.tracking.run_store import RunStore, current_process, slurm_job
from seqrec.tracking.lifecycle import CONFIG_FILE, LAST_CKPT, Run, open_run, run_lifecycle  # noqa: F401 -- open_run: API
from seqrec.config_diff import config_differences
from seqrec.cli import single_lightning_output

log = logging.getLogger("seqrec")
single_lightning_output()  # after `import lightning`: its start-up lines once, not twice

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
    df = load_interactions(cfg.data_path)
    return split_interactions(
        df,
        last_n_items=cfg.last_n_items,
        validation_size=cfg.dataloader.validation_size,
        random_state=cfg.random_state,
    )


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
def train(cfg: DictConfig) -> float:
    """Train the configured model; return the best validation NDCG@k (for sweepers).

    With ``resume=<ID>`` the training run ``<ID>`` (killed, failed or interrupted) continues
    in its own folder from ``checkpoints/last.ckpt``; see :func:`check_resume`.
    """
    model_args = apply_model_aliases(cfg)  # model_params: model arguments + aliases of other settings
    check_train_config(cfg)
    resume = cfg.get("resume")
    replica = distributed_rank() > 0  # a DDP worker started by Lightning: trains, writes nothing of its own
    if resume is None and not replica:  # a preempted SLURM job, requeued: continue its own run, not a new one
        resume = RunStore(cfg.run_store).requeued_run(cfg.task_name)
        if resume is not None:
            log.warning("requeued SLURM job %s: resuming its run %s", slurm_job(), resume)
            OmegaConf.update(cfg, "resume", resume, force_add=True)
    if replica:
        last_ckpt = RunStore(cfg.run_store).path(str(resume)) / "checkpoints" / "last.ckpt" if resume else None
        last_epoch = None
    else:
        last_ckpt, last_epoch = check_resume(cfg, str(resume)) if resume is not None else (None, None)  # before data
    split = prepare_split(cfg)
    if cfg.seqrec_module.predict_top_k > split.n_items:
        raise UserError(
            f"seqrec_module.predict_top_k={cfg.seqrec_module.predict_top_k} exceeds the {split.n_items} items of "
            f"{cfg.data_path}; pass a smaller seqrec_module.predict_top_k"
        )
    if replica:
        context = replica_run(cfg)
    else:
        context = run_lifecycle(cfg, "train", str(resume) if resume is not None else None, last_epoch or 0)
    with context as run:
        if run.store is not None:
            # known at once, not only on exit: a killed run is "running" with a dead process, and its ClearML
            # offline session (not zipped) can still be imported
            session = getattr(run.tracker, "offline_session_dir", None)
            early = {"clearml_offline_session": str(session)} if session is not None and resume is None else {}
            run.store.update(run.id, process=current_process(), **early)
        # seeded after the tracker: ClearML's Task.init seeds torch/numpy/random with its own 1337
        seed = int(cfg.get("seed", cfg.random_state))  # the split uses random_state; training uses seed
        L.seed_everything(seed, workers=True, verbose=False)
        model = build(model_class(cfg), "model_params", n_items=split.n_items, **model_args)
        loss = build_node(cfg.seqrec_module.loss, "seqrec_module.loss")
        k = cfg.seqrec_module.predict_top_k
        module = SeqRecModule(
            model, loss, lr=cfg.seqrec_module.lr, weight_decay=cfg.seqrec_module.weight_decay,
            predict_top_k=k, filter_seen=cfg.seqrec_module.filter_seen, item_counts=split.item_counts,
            seed=seed,  # dropout etc. reseeded from (seed, epoch): a resumed run continues identically
            optimizer=partial_node(cfg.seqrec_module.get("optimizer"), "seqrec_module.optimizer"),
            scheduler=partial_node(cfg.seqrec_module.get("scheduler"), "seqrec_module.scheduler"),
        )
        train_set = build_node(  # next-item windows, masked items, ...: chosen by train_dataset._target_
            cfg.train_dataset, "train_dataset", train=split.train, max_length=cfg.dataset.max_length,
            window=cfg.dataset.train_window, seed=seed, n_items=split.n_items,
        )
        val_set = EvalDataset(split.train, split.val_users, split.targets(split.val_users, 1), cfg.dataset.max_length)
        data = SeqRecDataModule(
            train_set, val_set, cfg.dataloader.batch_size, cfg.dataloader.test_batch_size, cfg.dataloader.num_workers,
            seed, start_epoch=None if last_epoch is None else last_epoch + 1,
        )

        monitor = MONITOR.format(k=k)
        ckpt = L.pytorch.callbacks.ModelCheckpoint(
            dirpath=run.dir / "checkpoints", filename="best", monitor=monitor, mode="max",
            save_top_k=1, save_last=True, enable_version_counter=False,
        )
        stop = L.pytorch.callbacks.EarlyStopping(monitor=monitor, mode="max", patience=cfg.patience)
        tlogger = TrackerLogger(run.tracker)
        progress = _TrainingProgress(tlogger)  # history and time so far, kept in the checkpoints for a resume
        trainer_params = OmegaConf.to_container(cfg.trainer_params, resolve=True)
        if trainer_params.get("precision") == "auto":  # decided for the device the run trains on
            trainer_params["precision"] = "bf16-mixed" if fast_bfloat16(_train_device(trainer_params)) else "32-true"
        extra = [build_node(node, f"callbacks.{name}") for name, node in (cfg.get("callbacks") or {}).items()]
        trainer = L.Trainer(
            callbacks=[ckpt, stop, progress, *extra], logger=tlogger, default_root_dir=str(run.dir), num_sanity_val_steps=0,
            plugins=[AtomicCheckpointIO()],  # a full disk or a kill mid-write keeps the previous checkpoint
            use_distributed_sampler=False,  # DDP: each rank trains on its slice of the epoch (EpochSampler) and
            **trainer_params,               # validates on all validation users, so the metric is exact everywhere
        )
        if run.store is not None:
            run.store.update(run.id, hardware=hardware(trainer.strategy.root_device, trainer_params["precision"],
                                                       trainer.world_size))
        progress.start()
        with warnings.catch_warnings():
            if last_ckpt is not None:  # its own folder holds its checkpoints, of course
                warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")
            try:
                trainer.fit(module, datamodule=data, ckpt_path=last_ckpt, weights_only=True)
            except OSError as exc:
                if not is_disk_full(exc) or replica:
                    raise
                raise ResumableRunError(
                    f"{disk_full_message(exc)}; run {run.id} is marked failed and keeps its last good checkpoint "
                    f"(checkpoints are written atomically): free space, then continue it with: "
                    f"{resume_command(cfg, run.id)}"
                ) from exc
            except SystemExit as exc:  # Lightning turns Ctrl-C into sys.exit(1) and SIGTERM into SIGTERMException
                stopped = _interruption(trainer, exc)
                if stopped is None or replica:
                    raise
                raise RunInterrupted(interruption_message(cfg, run.id, stopped, trainer.current_epoch), run.id) from None
        if replica:
            return float("nan")  # rank 0 writes the checkpoint, metrics and history
        fit_seconds = progress.seconds()  # of every attempt, a resumed run's earlier ones included
        epochs = trainer.current_epoch
        best = float(ckpt.best_model_score) if ckpt.best_model_score is not None else float("nan")

        if ckpt.best_model_path:
            state = load_weights(Path(ckpt.best_model_path))["state_dict"]
            module.load_state_dict(state)
        model_meta = {
            "target": cfg.model._target_,
            "params": model_args,
            "n_items": split.n_items,
            "n_users": split.n_users,
            "state_dict": model.state_dict(),
        }
        with atomic_write(run.dir / MODEL_FILE) as tmp:
            torch.save(model_meta, tmp)
        history = pd.DataFrame(tlogger.epoch_history())
        if len(history):
            atomic_to_csv(history, run.dir / "history.csv")
        summary = {
            f"best_{monitor}": best,
            "epochs": epochs,
            "best_epoch": _best_epoch(history, monitor),
            "fit_seconds": round(fit_seconds, 1),
            "seconds_per_epoch": round(fit_seconds / max(epochs, 1), 2),
        }
        atomic_write_json(run.dir / METRICS_FILE, summary)
        for name, value in summary.items():
            run.tracker.report_single_value(name, value)
        run.tracker.upload_artifact("checkpoint", run.dir / MODEL_FILE)
        run.tracker.upload_artifact("config", run.dir / CONFIG_FILE)
        run.tracker.upload_artifact("metrics", run.dir / METRICS_FILE)
        log.info(
            "trained %d epochs in %.1f s (%.2f s/epoch); best %s %.4f", epochs, fit_seconds,
            summary["seconds_per_epoch"], monitor, best,
        )
        run_id = run.id
    record_trial(run_id, best)
    print(predict_command(cfg, run_id))
    return best


# --------------------------------------------------------------------------- resume
#: keys a resumed run may change (and their model_params aliases): how long it trains, what the screen shows
RESUME_MAY_CHANGE = (
    "resume", "trainer_params.max_epochs", "trainer_params.min_epochs", "trainer_params.max_steps",
    "trainer_params.min_steps", "trainer_params.max_time", "trainer_params.enable_progress_bar",
    "trainer_params.enable_model_summary",
)


RUN_LENGTH = ("trainer_params.max_epochs", "trainer_params.min_epochs", "trainer_params.max_steps",
              "trainer_params.min_steps", "trainer_params.max_time")


def _keep_run_length(cfg: DictConfig, stored: dict, run_id: str, aliases: dict) -> None:
    """A resume keeps the run's own length (``max_epochs`` ...) unless the command line sets it: a resume of a
    3-epoch run without ``trainer_params.max_epochs`` must not silently train on to the config default."""
    given = command_line_keys()
    if given is None:  # composed in code: the caller's config is what it means
        return
    for key in RUN_LENGTH:
        named = {key, *(f"model_params.{a}" for a, target in aliases.items() if target == key)}
        if named & given:
            log.info("resume=%s: %s=%s (from the command line)", run_id, key, OmegaConf.select(cfg, key))
            continue
        section, leaf = key.split(".")
        own = (stored.get(section) or {}).get(leaf, "MISSING")
        if own != "MISSING" and own != OmegaConf.select(cfg, key):
            OmegaConf.update(cfg, key, own, force_add=True)
            log.warning("resume=%s: %s=%s, the run's own (pass %s=<N> to change it)", run_id, key, own, key)


def check_resume(cfg: DictConfig, run_id: str) -> tuple[Path, int]:
    """``checkpoints/last.ckpt`` of training run ``run_id`` and its epoch, checked for ``resume=<ID>``.

    One-line :class:`UserError` when the run is unknown, completed or still running, when
    its config differs from ``cfg`` in a key other than :data:`RESUME_MAY_CHANGE`, or when it
    has no readable last checkpoint.
    """
    store = RunStore(cfg.run_store)
    store.check_resumable(run_id)
    run_dir = store.path(run_id)
    stored_file = run_dir / CONFIG_FILE
    try:
        stored = OmegaConf.to_container(OmegaConf.load(stored_file), resolve=True)
    except FileNotFoundError:
        raise UserError(f"resume={run_id}: the run has no {CONFIG_FILE} in {run_dir}; start a new run") from None
    except Exception as exc:
        raise UserError(f"resume={run_id}: {stored_file} is damaged ({type(exc).__name__}); start a new run") from None
    aliases = dict(model_declaration(cfg).aliases)
    stored.setdefault("seed", stored.get("random_state"))  # runs made before `seed` existed trained with random_state
    module = stored.setdefault("seqrec_module", {})  # runs made before the optimizer/scheduler groups: Adam, constant
    module.setdefault("optimizer", {"_target_": "torch.optim.Adam", "betas": [0.9, 0.999], "eps": 1e-08})
    module.setdefault("scheduler", None)
    stored.setdefault("callbacks", {})  # runs made before the callbacks group
    stored.setdefault("model", {}).setdefault("name", OmegaConf.select(cfg, "model.name"))  # before model.name
    may_change = (*RESUME_MAY_CHANGE, *(f"model_params.{a}" for a, key in aliases.items() if key in RESUME_MAY_CHANGE))
    differences = config_differences(stored, OmegaConf.to_container(cfg, resolve=True), may_change)
    if differences:
        shown = "; ".join(differences[:3]) + (f"; and {len(differences) - 3} more" if len(differences) > 3 else "")
        raise UserError(
            f"resume={run_id}: the config differs from the run's {stored_file}: {shown}; pass the run's own "
            "settings (only trainer_params.max_epochs and similar run-length keys may change)"
        )
    _keep_run_length(cfg, stored, run_id, aliases)
    last = run_dir / LAST_CKPT
    if not last.is_file():
        raise UserError(
            f"resume={run_id}: the run has no {LAST_CKPT} (it stopped before its first checkpoint); start a new run"
        )
    try:
        epoch = int(load_weights(last).get("epoch", 0))
    except UserError:
        raise
    except Exception as exc:
        raise UserError(
            f"resume={run_id}: {last} cannot be read ({type(exc).__name__}: {' '.join(str(exc).split())[:80]}); "
            "start a new run"
        ) from None
    return last, epoch


class _TrainingProgress(L.pytorch.callbacks.Callback):
    """Checkpointed with the model: the per-epoch history and the training time so far.

    A resumed run thus writes the whole ``history.csv`` and reports the earlier epochs to
    its new tracker task too; ``fit_seconds`` adds up every attempt.
    """

    KEY = "seqrec_training_progress"

    def __init__(self, tlogger: TrackerLogger):
        self.tlogger = tlogger
        self.before = 0.0
        self.started = time.perf_counter()

    def start(self) -> None:
        self.started = time.perf_counter()

    def seconds(self) -> float:
        return self.before + time.perf_counter() - self.started

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        history = [dict(row) for row in self.tlogger.history]
        # Lightning logs the epoch's training metrics (train_loss) only after its checkpoints are
        # written; they are final by now, so they go into this checkpoint's history already
        epoch = trainer.current_epoch
        logged = {key for row in history if row.get("epoch") == epoch for key in row}
        pending = {
            key: float(value) for key, value in trainer.callback_metrics.items()
            if key not in logged and key.startswith("train") and not key.endswith("_step")
        }
        if pending:
            steps = [row["step"] for row in history if row.get("epoch") == epoch and row.get("step") is not None]
            history.append({"step": max(steps) if steps else None, "epoch": epoch, **pending})
        checkpoint[self.KEY] = {"history": history, "fit_seconds": self.seconds()}

    def on_load_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        from seqrec.tracking.lightning_logger import split_metric_name

        state = checkpoint.get(self.KEY) or {}
        earlier = [dict(row) for row in state.get("history", [])]
        self.tlogger.history[:0] = earlier
        self.before = float(state.get("fit_seconds", 0.0))
        tracker = self.tlogger.tracker
        for row in earlier:  # the new tracker task gets the whole curves
            epoch, step = row.get("epoch"), row.get("step")
            for key, value in row.items():
                if key in ("epoch", "step"):
                    continue
                title, series = split_metric_name(key)
                iteration = epoch if epoch is not None and not key.endswith("_step") else (step or 0)
                tracker.report_scalar(title, series, value, iteration)


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


def _best_epoch(history: pd.DataFrame, monitor: str) -> int | None:
    if monitor not in history or history[monitor].isna().all():
        return None
    row = history.loc[history[monitor].idxmax()]
    return int(row["epoch"]) if "epoch" in row and not pd.isna(row["epoch"]) else None


def predict_command(cfg: DictConfig, run_id: str) -> str:
    """The exact ``run_predict`` command for a finished training run."""
    parts = [
        "python src/run_predict.py",
        f"--config-name={cfg.get('predict_config_name', 'GPT_predict')}",
        f"task_name={shlex.quote(_predict_task_name(cfg.task_name))}",
        f"train_task={run_id}",
    ]
    if Path(str(cfg.run_store)).resolve() != default_run_store():
        parts.append(f"run_store={shlex.quote(str(cfg.run_store))}")
    return " ".join(parts)


class AtomicCheckpointIO(L.pytorch.plugins.io.TorchCheckpointIO):
    """Lightning's checkpoint writer, made atomic: a temporary file in the same folder renamed over the target, so
    a full disk or a kill mid-write leaves the previous checkpoint intact (and no partial file)."""

    def save_checkpoint(self, checkpoint, path, storage_options=None) -> None:
        with atomic_write(path) as tmp:
            super().save_checkpoint(checkpoint, str(tmp), storage_options)


def _interruption(trainer, exc: SystemExit) -> str | None:
    """``"SIGTERM"`` / ``"SIGINT (Ctrl-C)"`` when Lightning ended ``fit`` because of that signal, else None."""
    from lightning.pytorch.trainer.states import TrainerStatus
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    if isinstance(exc, SIGTERMException) or getattr(trainer, "received_sigterm", False):
        return "SIGTERM"
    if trainer.state.status == TrainerStatus.INTERRUPTED:
        return "SIGINT (Ctrl-C)"
    return None


def interruption_message(cfg: DictConfig, run_id: str, signal_name: str, epoch: int) -> str:
    """The one line an interrupted training prints: what happened, what survives, the exact command to go on."""
    return (
        f"interrupted by {signal_name} in epoch {epoch}: run {run_id} is marked interrupted and keeps its checkpoint "
        f"of the last finished epoch; continue it with: {resume_command(cfg, run_id)}"
    )


def resume_command(cfg: DictConfig, run_id: str) -> str:
    """``python src/run_train.py --config-name=<name> <the same overrides> resume=<ID>``: the command that
    continues ``run_id`` (its settings must be the run's own). From the Hydra command line when there is one."""
    given = command_line()
    if given is not None:
        name, overrides = given[0], [o for o in given[1] if not o.startswith("resume=")]
    else:
        name, overrides = "GPT_train", [f"data_path={cfg.data_path}", f"run_store={cfg.run_store}"]
    args = [f"--config-name={name}", *overrides, f"resume={run_id}"]
    return "python src/run_train.py " + " ".join(shlex.quote(a) for a in args)


def _train_device(trainer_params: dict) -> str:
    """``cpu`` or ``cuda``: where Lightning will train with these ``trainer_params`` (``accelerator``)."""
    accelerator = str(trainer_params.get("accelerator", "auto")).lower()
    if accelerator in ("gpu", "cuda"):
        return "cuda"
    if accelerator == "auto" and torch.cuda.is_available():
        return "cuda"
    return "cpu"


def _predict_task_name(train_task_name: str) -> str:
    base = train_task_name[: -len("_train")] if train_task_name.endswith("_train") else train_task_name
    return f"{base}_predict"


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


def predict(cfg: DictConfig) -> float:
    """Recommend for validation and test users of a trained run; return validation NDCG@k."""
    check_predict_config(cfg)
    params = OmegaConf.to_container(cfg.generation_params, resolve=True)
    strategy = build_strategy(params)  # a bad strategy or parameter fails before any loading
    store = RunStore(cfg.run_store)
    train_dir = store.path(cfg.train_task)
    train_cfg = OmegaConf.load(train_dir / CONFIG_FILE)
    split = prepare_split(train_cfg)
    device = _device(cfg.get("device"))
    model, meta = load_trained(train_dir, device)
    if meta["n_items"] != split.n_items:
        raise UserError(
            f"{train_cfg.data_path} now has {split.n_items} items but run {cfg.train_task} was trained on "
            f"{meta['n_items']}; re-prepare the same data or train again"
        )
    k = int(cfg.get("top_k") or train_cfg.seqrec_module.predict_top_k)
    filter_seen = bool(train_cfg.seqrec_module.filter_seen if cfg.get("filter_seen") is None else cfg.filter_seen)
    batch_size = int(cfg.get("test_batch_size") or train_cfg.dataloader.test_batch_size)
    rows = int(params.get("max_rows") or 16 * batch_size)
    n_targets = train_cfg.last_n_items

    boot = {"n_resamples": 10_000, "confidence": 0.95, "seed": 0,
            **OmegaConf.to_container(cfg.get("bootstrap") or OmegaConf.create({}), resolve=True)}
    with open_run(cfg, "predict") as run:
        run.store.update(run.id, hardware=hardware(device, resolve_precision(params.get("precision") or "float32", device)))
        log.info("strategy: %s", strategy.describe())
        metrics: dict[str, float] = {}
        intervals: dict[str, list[float]] = {}
        by_part: dict[str, dict[str, float]] = {}
        per_user_frames = []
        tables = {}
        for part, users in (("val", split.val_users), ("test", split.test_users)):
            targets = split.targets(users, n_targets)
            groups = split.target_groups(users, n_targets)
            started = time.perf_counter()
            recs, scores = generate(
                model, strategy, split.train, users, k=k, max_length=train_cfg.dataset.max_length,
                filter_seen=filter_seen, rows=rows, seed=cfg.random_state, device=device,
                no_repeat=ban_generated(params), precision=params.get("precision") or "float32",
                desc=f"{part}: {strategy.describe()}", progress=bool(cfg.get("progress", True)),
            )
            seconds = time.perf_counter() - started
            part_metrics, per_user = compute_metrics(recs, targets, split.item_counts, split.n_items, k=k, groups=groups,
                                                     with_per_user=True)
            by_part[part] = part_metrics
            metrics.update({f"{part}_{name}": float(v) for name, v in part_metrics.items()})
            metrics[f"{part}_ms_per_user"] = 1000 * seconds / max(len(users), 1)
            # per-user values: what intervals and paired comparisons resample, kept so they need no rerun
            per_user_frames.append(pd.DataFrame({"part": part, "user_id": split.user_ids[users],  # float32: half the
                                                 **{n: v.astype(np.float32) for n, v in per_user.items()}}))  # size
            names = list(per_user)
            ci = bootstrap_table(np.column_stack([per_user[n] for n in names]), n_resamples=int(boot["n_resamples"]),
                                 confidence=float(boot["confidence"]), seed=int(boot["seed"]))
            intervals.update({f"{part}_{n}": [float(lo), float(hi)] for n, lo, hi in zip(names, ci.low, ci.high)})
            tables[part] = per_position_table(part_metrics)
            name = "predictions.parquet" if part == "test" else f"{part}_predictions.parquet"
            atomic_to_parquet(_predictions_frame(split, users, recs, scores), run.dir / name)

        atomic_to_parquet(pd.concat(per_user_frames, ignore_index=True), run.dir / PER_USER_FILE)
        atomic_write_json(run.dir / METRICS_FILE, metrics)
        atomic_write_json(run.dir / INTERVALS_FILE, {**boot, "intervals": intervals})
        table = tables["test"].rename(columns=lambda c: c if c == "position" else f"test_{c}").merge(
            tables["val"].rename(columns=lambda c: c if c == "position" else f"val_{c}"), on="position"
        )
        for part in ("test", "val"):  # the per-position bands
            for end, index in (("low", 0), ("high", 1)):
                table[f"{part}_recall@{k}_{end}"] = [intervals[f"{part}_recall@{k}_pos{p}"][index] for p in table["position"]]
        atomic_to_csv(table, run.dir / "per_position.csv")
        plot_path = run.dir / "per_position.png"
        plot_per_position({f"test: {strategy.describe()}": tables["test"], "validation": tables["val"]}, plot_path,
                          bands={f"test: {strategy.describe()}": _band(intervals, "test", k, tables["test"]),
                                 "validation": _band(intervals, "val", k, tables["val"])})

        for name, value in metrics.items():
            run.tracker.report_single_value(name, value)
        for name, (low, high) in intervals.items():
            run.tracker.report_single_value(f"{name}_ci_low", low)
            run.tracker.report_single_value(f"{name}_ci_high", high)
        run.tracker.report_table("per-position recall", table)
        run.tracker.report_figure("per-position recall", plot_path)
        for name, file in (("predictions", "predictions.parquet"), ("metrics", METRICS_FILE), ("config", CONFIG_FILE),
                           ("per-user metrics", PER_USER_FILE), ("intervals", INTERVALS_FILE)):
            run.tracker.upload_artifact(name, run.dir / file)
        for part, part_metrics in by_part.items():
            print(format_metrics(part_metrics, part, intervals={n[len(part) + 1:]: v for n, v in intervals.items()
                                                                 if n.startswith(f"{part}_")}))
        print(f"intervals: {100 * float(boot['confidence']):g} % bootstrap over users "
              f"({int(boot['n_resamples'])} resamples)")
        print(f"generation: {metrics['test_ms_per_user']:.2f} ms per test user")
        print(f"run {run.id}: predictions and metrics in {run.dir}")
        record_trial(run.id, metrics[f"val_ndcg@{k}"])
    return metrics[f"val_ndcg@{k}"]


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


def _band(intervals: dict, part: str, k: int, table: pd.DataFrame) -> tuple[list[float], list[float]]:
    rows = [intervals[f"{part}_recall@{k}_pos{p}"] for p in table["position"]]
    return [low for low, _ in rows], [high for _, high in rows]


def _predictions_frame(split: SplitData, users: np.ndarray, recs: np.ndarray, scores: np.ndarray) -> pd.DataFrame:
    n_users, k = recs.shape
    return pd.DataFrame(
        {
            "user_id": np.repeat(split.user_ids[users], k),
            "item_id": split.item_ids[recs.reshape(-1) - 1],
            "rank": np.tile(np.arange(1, k + 1), n_users),
            "score": scores.reshape(-1).astype(np.float32),
        }
    )
