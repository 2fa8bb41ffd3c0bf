"""The leave-one-out cross-check as a plan of ordinary runs (``scripts/cross_check.py``; issue 31 item 3).

Five models, each with its literature config under ``protocol=leave_one_out`` (:data:`TRAIN_CONFIGS`): SASRec with
BCE and one negative, SASRec+ (full softmax) on three seeds, gSASRec, BERT4Rec and GPT-2 on one seed. Every training
has a wall-clock budget (``trainer_params.max_time``; its config's epochs end it sooner where they are fewer) and
records what ended it (``metrics.json``: ``stopped_by``); each is followed by one Top-K predict run on every user.
The steps are :class:`~seqrec.experiments.plan.Experiment` steps, so a finished run with the same settings is reused
and chains run side by side with ``jobs``. The report: :mod:`seqrec.evaluation.loo_cross_check`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional, Sequence

from seqrec.core.errors import UserError
from seqrec.core.registry import StrategySpec
from seqrec.experiments.plan import Experiment

#: label -> training config (src/configs/), in the report's order
TRAIN_CONFIGS = {"SASRec": "SASRec_loo_train", "SASRec+": "SASRecPlus_loo_train", "gSASRec": "gSASRec_loo_train",
                 "BERT4Rec": "BERT4Rec_loo_train", "GPT": "GPT_loo_train"}
SEEDS = (42,)  # every model but SASRec+
PLUS_SEEDS = (42, 43, 44)  # SASRec+: three seeds, to set the seed spread beside the interval over users
BUDGET_MINUTES = 30.0  # per training run, on a 2-core CPU (issue 31)
TOPK = StrategySpec("topk", "predict")  # leave-one-out predicts Top-K only (seqrec.data.protocols)
#: the literature's ML-1M: items rated by fewer than 5 users removed (SASRec's preprocessing; published_loo)
MIN_ITEM_USERS = 5

# --quick: small networks and short windows, seconds of budget (a smoke test of the machinery, not a result)
QUICK_BUDGET_MINUTES = 0.05
QUICK_TRAIN = ["dataset.max_length=16", "dataloader.batch_size=32", "dataloader.validation_size=null"]
QUICK_MODELS = {
    "SASRec": ["model_params.embedding_dim=16"],
    "SASRec+": ["model_params.embedding_dim=16"],
    "gSASRec": ["model_params.embedding_dim=16", "seqrec_module.loss.neg_per_positive=8"],
    "BERT4Rec": ["model_params.hidden_size=16", "model_params.inner_size=32"],
    "GPT": ["model_params.n_positions=16", "model_params.n_embd=16", "model_params.n_layer=1"],
}
QUICK_PREDICT = ["bootstrap.n_resamples=1000"]


def max_time(minutes: float) -> str:
    """A budget in minutes as ``trainer_params.max_time`` takes it: ``DD:HH:MM:SS`` (whole seconds, at least 1)."""
    if not minutes > 0 or math.isinf(minutes):
        raise UserError(f"--budget-min {minutes:g}: give a positive number of minutes per training run")
    seconds = max(1, round(minutes * 60))
    days, rest = divmod(seconds, 86400)
    return f"{days:02d}:{rest // 3600:02d}:{rest % 3600 // 60:02d}:{rest % 60:02d}"


def check_models(models: Optional[Sequence[str]]) -> list[str]:
    """The models asked for (all of :data:`TRAIN_CONFIGS` when none), or one line naming an unknown one."""
    unknown = [m for m in models or () if m not in TRAIN_CONFIGS]
    if unknown:
        raise UserError(f"--models {unknown[0]}: not a model of the cross-check; choose from {' '.join(TRAIN_CONFIGS)}")
    return list(models or TRAIN_CONFIGS)


def check_seeds(flag: str, seeds: Sequence[int]) -> None:
    """One line for an empty or repeated list of training seeds."""
    if not seeds or len(set(seeds)) != len(seeds):
        raise UserError(f"{flag} {' '.join(map(str, seeds))}: give one or more distinct training seeds")


def filtered_log(csv: Path, min_item_users: int) -> Path:
    """``csv`` less the items rated by fewer than ``min_item_users`` users (SASRec's preprocessing of ML-1M, which
    the published numbers used), written once beside it as ``<stem>-min<N>.csv`` (again when ``csv`` is newer);
    ``csv`` itself when ``min_item_users`` <= 1. Each user's order is kept."""
    if min_item_users < 0:
        raise UserError(f"--min-item-users {min_item_users}: give 0 (keep every item) or a positive count of users")
    if min_item_users <= 1:
        return csv
    out = csv.with_name(f"{csv.stem}-min{min_item_users}.csv")
    if out.is_file() and out.stat().st_mtime >= csv.stat().st_mtime:
        return out
    from seqrec.core.io import atomic_to_csv
    from seqrec.data.split import load_interactions

    frame = load_interactions(csv)
    counts = frame.groupby("item_id")["user_id"].nunique()
    atomic_to_csv(frame[frame["item_id"].isin(counts[counts >= min_item_users].index)], out, index=False)
    return out


def cross_check_experiment(data_path: str | Path, dataset: str, run_store: str | Path, *,
                           models: Optional[Sequence[str]] = None, seeds: Sequence[int] = SEEDS,
                           plus_seeds: Sequence[int] = PLUS_SEEDS, budget_minutes: float = BUDGET_MINUTES,
                           quick: bool = False, logger: str = "clearml_offline", report_only: bool = False,
                           train_overrides: Sequence[str] = (), predict_overrides: Sequence[str] = (),
                           **kwargs) -> Experiment:
    """The cross-check's plan: ``models`` (default all of :data:`TRAIN_CONFIGS`) on ``seeds``, SASRec+ on
    ``plus_seeds``, each training with ``budget_minutes`` of wall-clock time, then Top-K on every user."""
    models = check_models(models)
    check_seeds("--seeds", seeds)
    check_seeds("--seeds-plus", plus_seeds)
    train = ["trainer_params.enable_progress_bar=false", "trainer_params.enable_model_summary=false",
             f"trainer_params.max_time={max_time(budget_minutes)}", *(QUICK_TRAIN if quick else []), *train_overrides]
    return Experiment(
        data_path, dataset=dataset, run_store=run_store, models=models, strategies=[TOPK], train_overrides=train,
        model_overrides={m: QUICK_MODELS[m] for m in models} if quick else None,
        predict_overrides=["progress=false", *(QUICK_PREDICT if quick else []), *predict_overrides], logger=logger,
        seeds=seeds, model_seeds={"SASRec+": plus_seeds} if "SASRec+" in models else None, report_only=report_only,
        train_configs=TRAIN_CONFIGS, **kwargs)
