"""Two predict runs (or two sets of runs, one per training seed) compared on the same users: the paired difference
of each per-user metric with its bootstrap CI and sign-flip p -- what the experiment reports do, for any pair of
runs in a run store (``scripts/compare_runs.py``)."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from seqrec.tracking.run_folder import RunFolder
from seqrec.core.errors import UserError
from seqrec.evaluation.report import N_RESAMPLES, pooled_difference
from seqrec.tracking.run_store import RunStore



def per_user_values(store: RunStore, run_id: str, part: str) -> pd.DataFrame:
    """The ``part`` users' per-user metrics of completed predict run ``run_id`` (an ID or a unique prefix), by user
    id; one-line :class:`UserError` for a run that is unknown, not a predict run, not completed, or without them."""
    run_id = store.resolve_id(run_id)
    run_dir = store.path(run_id, kind="predict")
    status = store.info(run_id).status
    if status != "completed":
        raise UserError(f"run {run_id} is {status}, not completed; compare completed predict runs "
                        "(python scripts/check_runs.py --kind predict lists them)")
    path = RunFolder(run_dir).per_user
    if not path.is_file():
        raise UserError(f"run {run_id} has no {path.name} (it was made before per-user metrics were kept, or its "
                        "folder is damaged); predict again with run_predict.py")
    frame = pd.read_parquet(path)
    frame = frame[frame["part"] == part]
    if not len(frame):
        raise UserError(f"run {run_id} scored no {part} users; use --part test or --part val")
    return frame.drop(columns="part").set_index("user_id").sort_index().astype(np.float64)


#: the metrics compared when none are named: NDCG@10 and recall@10, or HR@10 where a protocol reports it instead
#: (leave-one-out); the first two of these that the runs have
DEFAULT_METRICS = ("ndcg@10", "recall@10", "hr@10")


def compare_runs(store: RunStore, runs_a: Sequence[str], runs_b: Sequence[str], part: str = "test",
                 metrics: Sequence[str] | None = None, n_resamples: int = N_RESAMPLES,
                 seed: int = 0) -> pd.DataFrame:
    """One row per metric: both means, ``diff`` = mean of A - B over the same users (with several runs per side,
    one per training seed, paired by position: each user's difference averaged over the seeds first), its 95 %
    bootstrap CI ``low``/``high`` and the sign-flip ``p``. ``metrics`` None: test NDCG@10 and recall@10 (HR@10
    for runs under leave-one-out). Runs made under different protocols are refused with one line."""
    if not runs_a or len(runs_a) != len(runs_b):
        raise UserError(f"give as many A runs as B runs, one per seed (got {len(runs_a)} and {len(runs_b)})")
    runs_a, runs_b = [store.resolve_id(r) for r in runs_a], [store.resolve_id(r) for r in runs_b]
    pairs = [(per_user_values(store, a, part), per_user_values(store, b, part)) for a, b in zip(runs_a, runs_b)]
    _same_protocol(store, [*runs_a, *runs_b])
    if metrics is None:
        metrics = [m for m in DEFAULT_METRICS if m in pairs[0][0]][:2] or list(DEFAULT_METRICS[:2])
    users = pairs[0][0].index
    for (a, b), run_a, run_b in zip(pairs, runs_a, runs_b):
        for frame, run in ((a, run_a), (b, run_b)):
            if not frame.index.equals(users):
                raise UserError(_different_users(store, runs_a[0], users, run, frame.index, part))
    rows = []
    for metric in metrics:
        missing = [run for (a, b), run in zip(pairs, runs_a) if metric not in a or metric not in b]
        if missing:
            known = ", ".join(c for c in pairs[0][0].columns if "_pos" not in c and "_tpos" not in c)
            raise UserError(f"metric {metric!r} is not among the per-user metrics of run {missing[0]} or its pair "
                            f"({known}, and their _pos<i> columns)")
        diffs = [a[metric].to_numpy() - b[metric].to_numpy() for a, b in pairs]
        rows.append({"metric": metric, "users": len(users), "seeds": len(pairs),
                     "a": float(np.mean([a[metric].mean() for a, _ in pairs])),
                     "b": float(np.mean([b[metric].mean() for _, b in pairs])),
                     **pooled_difference(diffs, n_resamples=n_resamples, seed=seed)})
    return pd.DataFrame(rows)


#: the settings of a training run that decide its split (PROTOCOL.md), as the message names them
SPLIT_SETTINGS = ("protocol", "data_path", "last_n_items", "dataloader.validation_size", "random_state")


def _same_protocol(store: RunStore, runs: Sequence[str]) -> None:
    """One line when the training runs behind predict runs ``runs`` were made under different protocols (their
    users, targets and metrics differ); runs whose settings cannot be read are left to the users' check."""
    seen = {}
    for run in runs:
        settings = split_settings(store, run)
        if settings is not None:
            seen.setdefault(settings["protocol"], run)
    if len(seen) > 1:
        (one, a), (other, b) = list(seen.items())[:2]
        raise UserError(f"runs {a} and {b} were made under different protocols (protocol={one} against "
                        f"protocol={other}); compare predict runs of training runs under the same protocol")


def split_settings(store: RunStore, predict_id: str) -> dict | None:
    """The split settings of the training run behind predict run ``predict_id``; None when they cannot be read."""
    from omegaconf import OmegaConf

    from seqrec.config.upgrade import load_run_config

    try:
        train_id = load_run_config(store.path(predict_id, kind="predict"), "predict").get("train_task")
        train = OmegaConf.create(load_run_config(store.path(str(train_id), kind="train"), "train"))
    except Exception:  # noqa: BLE001 -- a message helper: without the settings it says less, never fails
        return None
    return {key: OmegaConf.select(train, key) for key in SPLIT_SETTINGS}


def _different_users(store: RunStore, ref: str, ref_users: pd.Index, run: str, users: pd.Index, part: str) -> str:
    """Why ``run`` cannot be paired with ``ref``: the split settings in which their training runs differ, or, with
    none, the users they scored."""
    common = len(ref_users.intersection(users))
    scored = f"{len(ref_users)} and {len(users)} {part} users, {common} in common"
    mine, theirs = split_settings(store, ref), split_settings(store, run)
    if mine is not None and theirs is not None:
        differ = [f"{key} {mine[key]} against {theirs[key]}" for key in SPLIT_SETTINGS if mine[key] != theirs[key]]
        if differ:
            return (f"runs {ref} and {run} come from different splits ({'; '.join(differ)}; {scored}); compare "
                    "predict runs of training runs with the same data and split settings")
        return (f"runs {ref} and {run} scored different users ({scored}) though their training runs share data and "
                "split settings: the data file changed between them; predict both again on today's file")
    return f"runs {ref} and {run} scored different users ({scored}); compare runs made on the same data and split"


def format_comparison(table: pd.DataFrame, part: str) -> str:
    """The table as text: one line per metric."""
    lines = []
    for r in table.itertuples():
        lines.append(f"{r.metric:>14s}  A {r.a:.4f}  B {r.b:.4f}  A - B {r.diff:+.4f} [{r.low:+.4f}, {r.high:+.4f}]  "
                     f"p = {r.p:.3g}  ({r.users} {part} users, {r.seeds} seed{'s' if r.seeds > 1 else ''})")
    return "\n".join(lines)
