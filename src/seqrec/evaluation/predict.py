"""What ``run_predict.py`` does: generate recommendations with a trained run and write predictions, metrics with intervals, per-position tables and plots."""

from __future__ import annotations

import logging
import time

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from seqrec.config.spec import PredictSpec, resolve_predict, thawed
from seqrec.core.errors import UserError
from seqrec.core.hardware import device as _device, hardware
from seqrec.core.hydra_context import record_trial
from seqrec.core.io import atomic_to_csv, atomic_to_parquet, atomic_write_json
from seqrec.data.prepare import data_fingerprint, prepare_features, prepare_split
from seqrec.data.split import SplitData
from seqrec.evaluation.metrics import compute_metrics, format_metrics, per_position_table, plot_per_position
from seqrec.evaluation.stats import bootstrap_table
from seqrec.generation import ban_generated, build_strategy, generate, shared_samples
from seqrec.generation.engine import check_capacity, resolve_precision
from seqrec.models.loading import load_trained
from seqrec.tracking.lifecycle import run_context
from seqrec.tracking.run_folder import RunFolder

log = logging.getLogger("seqrec")


def predict(cfg: DictConfig | PredictSpec) -> float:
    """Recommend for the validation and test users of a trained run (a composed config, resolved and checked here
    once, or a resolved :class:`PredictSpec`); return validation NDCG@k."""
    return recommend_and_score(cfg if isinstance(cfg, PredictSpec) else resolve_predict(cfg))


def recommend_and_score(spec: PredictSpec) -> float:
    """Generate (or take from ``samples_from``) the lists of ``spec``, score them and write the run's files."""
    params = thawed(spec.generation)
    strategy = build_strategy(params)
    split = prepare_split(spec.data)
    # event attributes of the histories (features=items_events); the model holds its item codes itself
    features = prepare_features(spec.data, split, with_items=False)
    events = features.event_sequences() if features is not None else None
    # the training run's (and samples_from's) data, compared once: a changed file is one line, before any folder
    fingerprint = data_fingerprint(split, features)
    data_record = spec.data_check.verify(fingerprint) if spec.data_check is not None else {
        "data_fingerprint": fingerprint}
    device = _device(spec.device)
    source, model = spec.samples_from, None  # lists taken from a source need no network
    if source is not None:
        source.check(split)  # its users, before any folder is made
    else:
        model, meta = load_trained(RunFolder(spec.train_folder).model, device)
        if meta["n_items"] != split.n_items:
            raise UserError(
                f"{spec.data.path} now has {split.n_items} items but run {spec.train_task} was trained on "
                f"{meta['n_items']}; re-prepare the same data or train again"
            )
    k, boot = spec.k, spec.bootstrap
    if source is None:  # what needs only the split and the strategy: refused before any run folder or tracker
        for users in (split.val_users, split.test_users):
            check_capacity(strategy, split.train, users, split.n_items, k, spec.filter_seen)
    with run_context(spec.run) as run:
        folder = run.folder
        run.record(hardware=hardware(device, resolve_precision(params.get("precision") or "float32", device)),
                   **data_record)
        log.info("strategy: %s", strategy.describe())
        metrics: dict[str, float] = {}
        intervals: dict[str, list[float]] = {}
        by_part: dict[str, dict[str, float]] = {}
        per_user_frames = []
        tables = {}
        nested = {}  # part -> (users, the prefix lists), with prefix_sequences
        if source is not None:
            log.info("lists taken from the sequences sampled by run %s (%s)", source.run_id, source.name)
            run.record(samples_from=source.run_id)
        for part, users in (("val", split.val_users), ("test", split.test_users)):
            targets = split.targets(users, spec.n_targets)
            groups = split.target_groups(users, spec.n_targets)
            started = time.perf_counter()
            variants: dict = {}
            if source is not None:
                recs, scores = source.lists(part, users)
            else:
                recs, scores = generate(
                    model, strategy, split.train, users, k=k, max_length=spec.max_length,
                    filter_seen=spec.filter_seen, rows=spec.rows, seed=spec.seed, device=device,
                    no_repeat=ban_generated(params), precision=params.get("precision") or "float32",
                    desc=f"{part}: {strategy.describe()}", progress=spec.progress, events=events,
                    variants=variants, generated_events=params.get("generated_events"),
                )
            seconds = time.perf_counter() - started
            if params.get("prefix_sequences"):  # the main list too: every (aggregation, n) asked for is there
                name = shared_samples.variant_key(params["aggregation"], int(params["num_return_sequences"]))
                nested[part] = (users, {name: (recs, scores), **variants})
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
            atomic_to_parquet(_predictions_frame(split, users, recs, scores), folder.predictions(part))

        atomic_to_parquet(pd.concat(per_user_frames, ignore_index=True), folder.per_user)
        if nested:
            shared_samples.save(folder.nested, nested)
        atomic_write_json(folder.metrics, metrics)
        atomic_write_json(folder.intervals, {**boot, "intervals": intervals})
        table = tables["test"].rename(columns=lambda c: c if c == "position" else f"test_{c}").merge(
            tables["val"].rename(columns=lambda c: c if c == "position" else f"val_{c}"), on="position"
        )
        for part in ("test", "val"):  # the per-position bands
            for end, index in (("low", 0), ("high", 1)):
                table[f"{part}_recall@{k}_{end}"] = [intervals[f"{part}_recall@{k}_pos{p}"][index] for p in table["position"]]
        atomic_to_csv(table, folder.per_position_table)
        plot_per_position({f"test: {strategy.describe()}": tables["test"], "validation": tables["val"]},
                          folder.per_position_plot,
                          bands={f"test: {strategy.describe()}": _band(intervals, "test", k, tables["test"]),
                                 "validation": _band(intervals, "val", k, tables["val"])})

        for name, value in metrics.items():
            run.tracker.report_single_value(name, value)
        for name, (low, high) in intervals.items():
            run.tracker.report_single_value(f"{name}_ci_low", low)
            run.tracker.report_single_value(f"{name}_ci_high", high)
        run.tracker.report_table("per-position recall", table)
        run.tracker.report_figure("per-position recall", folder.per_position_plot)
        for name, path in folder.predict_artifacts().items():
            if path.is_file():
                run.tracker.upload_artifact(name, path)
        for part, part_metrics in by_part.items():
            print(format_metrics(part_metrics, part, intervals={n[len(part) + 1:]: v for n, v in intervals.items()
                                                                 if n.startswith(f"{part}_")}))
        print(f"intervals: {100 * float(boot['confidence']):g} % bootstrap over users "
              f"({int(boot['n_resamples'])} resamples)")
        print(f"generation: {metrics['test_ms_per_user']:.2f} ms per test user")
        print(f"run {run.id}: predictions and metrics in {run.dir}")
        record_trial(run.id, metrics[f"val_ndcg@{k}"])
    return metrics[f"val_ndcg@{k}"]


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
