"""What ``run_train.py`` and ``run_predict.py`` do, as plain functions of a composed config."""

from __future__ import annotations

import contextlib
import logging
import shlex
import time
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import numpy as np
import pandas as pd
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from seqrec.config import apply_model_aliases, check_predict_config, check_train_config, model_class
from seqrec.data.datasets import EvalDataset
from seqrec.data.io import atomic_to_csv, atomic_to_parquet, atomic_write, atomic_write_json, atomic_write_text
from seqrec.data.split import SplitData, load_interactions, split_interactions
from seqrec.errors import UserError
from seqrec.metrics import compute_metrics, format_metrics, per_position_table, plot_per_position
from seqrec.module import SeqRecModule
from seqrec.ops import fast_bfloat16
from seqrec.generation import ban_generated, build_strategy, generate
from seqrec.tracking.base import instantiate_tracker
from seqrec.tracking.lightning_logger import TrackerLogger
from seqrec.tracking.run_store import RunStore, file_log_handler

log = logging.getLogger("seqrec")

MODEL_FILE = "model.pt"
CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.json"
MONITOR = "val_ndcg@{k}"


# --------------------------------------------------------------------------- runs
@dataclass
class Run:
    tracker: object
    store: RunStore
    dir: Path

    @property
    def id(self) -> str:
        return self.tracker.task_id


@contextlib.contextmanager
def open_run(cfg: DictConfig, kind: str):
    """A tracked run: ClearML task (or none) + its own folder in the local run store.

    The folder gets the resolved config and a ``run.log`` with everything logged,
    tracebacks included; the run is marked completed or failed on exit.
    """
    tracker = instantiate_tracker(cfg.logger, task_type="training" if kind == "train" else "inference")
    store = RunStore(cfg.run_store)
    try:
        run_dir = store.create(tracker.task_id, kind=kind, task_name=cfg.task_name)
    except BaseException:
        tracker.close(status="failed")
        raise
    handler = file_log_handler(run_dir)
    logging.getLogger().addHandler(handler)
    run = Run(tracker, store, run_dir)
    status = "failed"
    try:
        resolved = OmegaConf.to_container(cfg, resolve=True)
        atomic_write_text(run_dir / CONFIG_FILE, OmegaConf.to_yaml(cfg, resolve=True))
        tracker.connect_config(resolved)
        log.info("%s run %s -> %s", kind, run.id, run_dir)
        yield run
        status = "completed"
    except BaseException:
        log.exception("%s run %s failed", kind, tracker.task_id)
        raise
    finally:
        tracker.close(status=status)
        store.finish(tracker.task_id, status=status)
        session = getattr(tracker, "offline_session_dir", None)
        if session is not None:  # where the ClearML record of this run lives, for a later import
            zipped = getattr(tracker, "offline_session_zip", None)
            store.update(
                tracker.task_id, clearml_offline_session=str(session),
                clearml_offline_zip=str(zipped) if zipped else None,
            )
        logging.getLogger().removeHandler(handler)
        handler.close()


# --------------------------------------------------------------------------- data
def prepare_split(cfg: DictConfig) -> SplitData:
    df = load_interactions(cfg.data_path)
    return split_interactions(
        df,
        last_n_items=cfg.last_n_items,
        validation_size=cfg.dataloader.validation_size,
        random_state=cfg.random_state,
    )


def _device(name: str | None) -> torch.device:
    if name in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


# --------------------------------------------------------------------------- train
def train(cfg: DictConfig) -> float:
    """Train the configured model; return the best validation NDCG@k (for sweepers)."""
    model_args = apply_model_aliases(cfg)  # model_params: model arguments + aliases of other settings
    check_train_config(cfg)
    L.seed_everything(cfg.random_state, workers=True, verbose=False)
    split = prepare_split(cfg)
    with open_run(cfg, "train") as run:
        model = build(model_class(cfg), "model_params", n_items=split.n_items, **model_args)
        loss = build_node(cfg.seqrec_module.loss, "seqrec_module.loss")
        k = cfg.seqrec_module.predict_top_k
        module = SeqRecModule(
            model, loss, lr=cfg.seqrec_module.lr, weight_decay=cfg.seqrec_module.weight_decay,
            predict_top_k=k, filter_seen=cfg.seqrec_module.filter_seen, item_counts=split.item_counts,
        )
        train_set = build_node(  # next-item windows, masked items, ...: chosen by train_dataset._target_
            cfg.train_dataset, "train_dataset", train=split.train, max_length=cfg.dataset.max_length,
            window=cfg.dataset.train_window, seed=cfg.random_state, n_items=split.n_items,
        )
        train_loader = torch.utils.data.DataLoader(
            train_set, batch_size=cfg.dataloader.batch_size, shuffle=True, collate_fn=train_set.collate,
            num_workers=cfg.dataloader.num_workers, generator=torch.Generator().manual_seed(cfg.random_state),
        )
        val_set = EvalDataset(split.train, split.val_users, split.targets(split.val_users, 1), cfg.dataset.max_length)
        val_loader = val_set.loader(cfg.dataloader.test_batch_size, cfg.dataloader.num_workers)

        monitor = MONITOR.format(k=k)
        ckpt = L.pytorch.callbacks.ModelCheckpoint(
            dirpath=run.dir / "checkpoints", filename="best", monitor=monitor, mode="max",
            save_top_k=1, save_last=True, enable_version_counter=False,
        )
        stop = L.pytorch.callbacks.EarlyStopping(monitor=monitor, mode="max", patience=cfg.patience)
        tlogger = TrackerLogger(run.tracker)
        trainer_params = OmegaConf.to_container(cfg.trainer_params, resolve=True)
        if trainer_params.get("precision") == "auto":
            trainer_params["precision"] = "bf16-mixed" if fast_bfloat16() else "32-true"
        trainer = L.Trainer(
            callbacks=[ckpt, stop], logger=tlogger, default_root_dir=str(run.dir), num_sanity_val_steps=0,
            **trainer_params,
        )
        started = time.perf_counter()
        trainer.fit(module, train_loader, val_loader)
        fit_seconds = time.perf_counter() - started
        epochs = trainer.current_epoch
        best = float(ckpt.best_model_score) if ckpt.best_model_score is not None else float("nan")

        if ckpt.best_model_path:
            state = torch.load(ckpt.best_model_path, map_location="cpu", weights_only=False)["state_dict"]
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
    print(predict_command(cfg, run_id))
    return best


def build(cls, where: str, **kwargs):
    """``cls(**kwargs)``; a bad value (ValueError/TypeError) becomes a one-line UserError."""
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:
        raise UserError(f"{where}: {exc}") from exc


def build_node(node: DictConfig, where: str, **kwargs):
    """Instantiate a config node with ``_target_`` plus ``kwargs`` (see :func:`build`)."""
    from hydra.utils import get_class

    params = OmegaConf.to_container(node, resolve=True)
    target = params.pop("_target_", None)
    try:
        cls = get_class(target)
    except Exception as exc:
        raise UserError(f"{where}._target_={target!r} is not an importable class ({exc})") from None
    return build(cls, where, **params, **kwargs)


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
    if cfg.run_store != "runs":
        parts.append(f"run_store={shlex.quote(str(cfg.run_store))}")
    return " ".join(parts)


def _predict_task_name(train_task_name: str) -> str:
    base = train_task_name[: -len("_train")] if train_task_name.endswith("_train") else train_task_name
    return f"{base}_predict"


# --------------------------------------------------------------------------- predict
def load_trained(run_dir: Path, device: torch.device):
    path = run_dir / MODEL_FILE
    if not path.exists():
        raise UserError(f"run {run_dir.name} has no {MODEL_FILE} (did its training finish?); train again with run_train.py")
    meta = torch.load(path, map_location="cpu", weights_only=False)
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

    with open_run(cfg, "predict") as run:
        log.info("strategy: %s", strategy.describe())
        metrics: dict[str, float] = {}
        by_part: dict[str, dict[str, float]] = {}
        tables = {}
        for part, users in (("val", split.val_users), ("test", split.test_users)):
            targets = split.targets(users, n_targets)
            started = time.perf_counter()
            recs, scores = generate(
                model, strategy, split.train, users, k=k, max_length=train_cfg.dataset.max_length,
                filter_seen=filter_seen, rows=rows, seed=cfg.random_state, device=device,
                no_repeat=ban_generated(params), precision=params.get("precision") or "float32",
                desc=f"{part}: {strategy.describe()}", progress=bool(cfg.get("progress", True)),
            )
            seconds = time.perf_counter() - started
            part_metrics = compute_metrics(recs, targets, split.item_counts, split.n_items, k=k)
            by_part[part] = part_metrics
            metrics.update({f"{part}_{name}": float(v) for name, v in part_metrics.items()})
            metrics[f"{part}_ms_per_user"] = 1000 * seconds / max(len(users), 1)
            tables[part] = per_position_table(part_metrics)
            name = "predictions.parquet" if part == "test" else f"{part}_predictions.parquet"
            atomic_to_parquet(_predictions_frame(split, users, recs, scores), run.dir / name)
    
        atomic_write_json(run.dir / METRICS_FILE, metrics)
        table = tables["test"].rename(columns=lambda c: c if c == "position" else f"test_{c}").merge(
            tables["val"].rename(columns=lambda c: c if c == "position" else f"val_{c}"), on="position"
        )
        atomic_to_csv(table, run.dir / "per_position.csv")
        plot_path = run.dir / "per_position.png"
        plot_per_position({f"test: {strategy.describe()}": tables["test"], "validation": tables["val"]}, plot_path)

        for name, value in metrics.items():
            run.tracker.report_single_value(name, value)
        run.tracker.report_table("per-position recall", table)
        run.tracker.report_figure("per-position recall", plot_path)
        for name, file in (("predictions", "predictions.parquet"), ("metrics", METRICS_FILE), ("config", CONFIG_FILE)):
            run.tracker.upload_artifact(name, run.dir / file)
        for part, part_metrics in by_part.items():
            print(format_metrics(part_metrics, part))
        print(f"generation: {metrics['test_ms_per_user']:.2f} ms per test user")
        print(f"run {run.id}: predictions and metrics in {run.dir}")
    return metrics[f"val_ndcg@{k}"]


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
