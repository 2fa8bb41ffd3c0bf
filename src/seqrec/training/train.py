"""What ``run_train.py`` does: train a configured model in a tracked run (new, resumed or requeued), with exact resume."""

from __future__ import annotations

import logging
import shlex
import warnings
from pathlib import Path

import lightning as L
import pandas as pd
import torch
from omegaconf import DictConfig, OmegaConf

from seqrec.config.checks import (
    apply_model_aliases, check_train_config, command_line, command_line_keys, inherit_pretrained, model_class,
    model_declaration,
)
from seqrec.data.datamodule import SeqRecDataModule
from seqrec.data.datasets import EvalDataset
from seqrec.training.early_stopping import early_stopping
from seqrec.core.io import (
    atomic_to_csv, atomic_write, atomic_write_json, disk_full_message, is_disk_full,
)
from seqrec.core.paths import default_run_store
from seqrec.core.errors import ResumableRunError, RunInterrupted, UserError
from seqrec.training.lightning_module import SeqRecModule
from seqrec.models.ops import fast_bfloat16
from seqrec.tracking.lightning_logger import TrackerLogger
from seqrec.tracking.run_store import RunStore, current_process, slurm_job
from seqrec.tracking.lifecycle import run_lifecycle
from seqrec.tracking.run_folder import CHECKPOINTS, CONFIG_FILE, LAST_CKPT
from seqrec.core.config_diff import config_differences
from seqrec.training.prompt_tuning import freeze_item_embeddings, load_pretrained
from seqrec.core.hardware import hardware
from seqrec.core.hydra_context import record_trial
from seqrec.core.instantiate import build, build_node, partial_node
from seqrec.data.prepare import prepare_features, prepare_split
from seqrec.models.loading import load_weights
from seqrec.tracking.run_folder import HISTORY_FILE, METRICS_FILE, MODEL_FILE
from seqrec.training.distributed import distributed_rank, replica_run

MONITOR = "val_next_ndcg@{k}"  # training: the next item only (predict's val_ndcg@k: all held-out items)

log = logging.getLogger("seqrec")


def single_lightning_output() -> None:
    """Lightning gives its loggers a terminal handler of their own and lets records propagate too, so every start-up
    line ("GPU available: ...") printed twice; the root handler (Hydra's job logging, run.log) shows them once.
    Call after ``import lightning`` (it adds the handlers then); without a root handler (a notebook) nothing changes."""
    if not logging.getLogger().handlers:
        return
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            if type(handler) is logging.StreamHandler:
                logger.removeHandler(handler)
        logger.propagate = True

single_lightning_output()  # after `import lightning`: its start-up lines once, not twice


def train(cfg: DictConfig) -> float:
    """Train the configured model; return the best validation NDCG@k (for sweepers).

    With ``resume=<ID>`` the training run ``<ID>`` (killed, failed or interrupted) continues
    in its own folder from ``checkpoints/last.ckpt``; see :func:`check_resume`.
    """
    pretrained = inherit_pretrained(cfg)  # prompt-tuning: the pre-trained run's network and split
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
        last_ckpt = RunStore(cfg.run_store).path(str(resume)) / LAST_CKPT if resume else None
        last_epoch = None
    else:
        last_ckpt, last_epoch = check_resume(cfg, str(resume)) if resume is not None else (None, None)  # before data
    split = prepare_split(cfg)
    features = prepare_features(cfg, split)  # item/event attributes (features=items|items_events), before any folder
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
        if features is not None:  # the spec travels with the checkpoint's params: a reload rebuilds the tables
            model_args = {**model_args, "features": features.model_spec()}
        model = build(model_class(cfg), "model_params", n_items=split.n_items, **model_args)
        if features is not None:
            model.features.set_item_codes(features.item_tables())
        augment = None
        if pretrained is not None:  # RecGPT prompt-tuning: start from the pre-trained weights, augment every batch
            load_pretrained(model, RunStore(cfg.run_store).path(str(cfg.pretrained_task)) / MODEL_FILE)
            augment = build_node(cfg.prompt_tuning, "prompt_tuning")
            if augment.freeze_item_embeddings:
                freeze_item_embeddings(model)
            if run.store is not None and resume is None:
                run.store.update(run.id, pretrained_task=str(cfg.pretrained_task))
        loss = build_node(cfg.seqrec_module.loss, "seqrec_module.loss")
        k = cfg.seqrec_module.predict_top_k
        module = SeqRecModule(
            model, loss, lr=cfg.seqrec_module.lr, weight_decay=cfg.seqrec_module.weight_decay,
            predict_top_k=k, filter_seen=cfg.seqrec_module.filter_seen, item_counts=split.item_counts,
            seed=seed,  # dropout etc. reseeded from (seed, epoch): a resumed run continues identically
            optimizer=partial_node(cfg.seqrec_module.get("optimizer"), "seqrec_module.optimizer"),
            scheduler=partial_node(cfg.seqrec_module.get("scheduler"), "seqrec_module.scheduler"),
            augment=augment,
        )
        events = features.event_sequences() if features is not None else None
        train_set = build_node(  # next-item windows, masked items, ...: chosen by train_dataset._target_
            cfg.train_dataset, "train_dataset", train=split.train, max_length=cfg.dataset.max_length,
            window=cfg.dataset.train_window, seed=seed, n_items=split.n_items,
            **({"events": events} if events else {}),
        )
        val_set = EvalDataset(split.train, split.val_users, split.targets(split.val_users, 1), cfg.dataset.max_length,
                              events)
        data = SeqRecDataModule(
            train_set, val_set, cfg.dataloader.batch_size, cfg.dataloader.test_batch_size, cfg.dataloader.num_workers,
            seed, start_epoch=None if last_epoch is None else last_epoch + 1,
        )

        monitor = MONITOR.format(k=k)
        ckpt = L.pytorch.callbacks.ModelCheckpoint(
            dirpath=run.dir / CHECKPOINTS, filename="best", monitor=monitor, mode="max",
            save_top_k=1, save_last=True, enable_version_counter=False,
        )
        stop = early_stopping(monitor, cfg.patience, cfg.get("patience_steps"))
        tlogger = TrackerLogger(run.tracker)
        progress = _TrainingProgress(tlogger)  # history so far, kept in the checkpoints for a resume
        timer = L.pytorch.callbacks.Timer()  # training time; checkpointed, so it adds up every attempt
        trainer_params = OmegaConf.to_container(cfg.trainer_params, resolve=True)
        if trainer_params.get("precision") == "auto":  # decided for the device the run trains on
            trainer_params["precision"] = "bf16-mixed" if fast_bfloat16(_train_device(trainer_params)) else "32-true"
        extra = [build_node(node, f"callbacks.{name}") for name, node in (cfg.get("callbacks") or {}).items()]
        trainer = L.Trainer(
            callbacks=[ckpt, stop, progress, timer, *extra], logger=tlogger, default_root_dir=str(run.dir), num_sanity_val_steps=0,
            plugins=[AtomicCheckpointIO()],  # a full disk or a kill mid-write keeps the previous checkpoint
            use_distributed_sampler=False,  # DDP: each rank trains on its slice of the epoch (EpochSampler) and
            **trainer_params,               # validates on all validation users, so the metric is exact everywhere
        )
        if run.store is not None:
            run.store.update(run.id, hardware=hardware(trainer.strategy.root_device, trainer_params["precision"],
                                                       trainer.world_size))
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
        fit_seconds = timer.time_elapsed("train") + progress.legacy_seconds  # every attempt of a resumed run
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
            atomic_to_csv(history, run.dir / HISTORY_FILE)
        summary = {
            f"best_{monitor}": best,
            "epochs": epochs,
            "best_epoch": _best_epoch(history, monitor),
            "fit_seconds": round(fit_seconds, 1),
            "seconds_per_epoch": round(fit_seconds / max(epochs, 1), 2),
        }
        atomic_write_json(run.dir / METRICS_FILE, summary)
        for name, value in summary.items():
            if value is not None:  # best_epoch of a run that ended before its first validation
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
    """Checkpointed with the model: the per-epoch history, so a resumed run writes the whole ``history.csv`` and
    reports the earlier epochs to its new tracker task too. (Lightning's ``CSVLogger`` would start a new file per
    attempt; the training time is Lightning's own ``Timer``, whose state is checkpointed as well.)"""

    KEY = "seqrec_training_progress"

    def __init__(self, tlogger: TrackerLogger):
        self.tlogger = tlogger
        self.legacy_seconds = 0.0  # fit time of checkpoints written before the Timer was used

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
        checkpoint[self.KEY] = {"history": history}

    def on_load_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        from seqrec.tracking.lightning_logger import split_metric_name

        state = checkpoint.get(self.KEY) or {}
        earlier = [dict(row) for row in state.get("history", [])]
        self.tlogger.history[:0] = earlier
        self.legacy_seconds = float(state.get("fit_seconds", 0.0))
        tracker = self.tlogger.tracker
        for row in earlier:  # the new tracker task gets the whole curves
            epoch, step = row.get("epoch"), row.get("step")
            for key, value in row.items():
                if key in ("epoch", "step"):
                    continue
                title, series = split_metric_name(key)
                iteration = epoch if epoch is not None and not key.endswith("_step") else (step or 0)
                tracker.report_scalar(title, series, value, iteration)


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
