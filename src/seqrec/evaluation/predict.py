"""What ``run_predict.py`` does: generate recommendations with a trained run and write predictions, metrics with intervals, per-position tables and plots."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from seqrec.config.spec import PredictSpec, resolve_predict
from seqrec.core.errors import UserError
from seqrec.core.frozen import thawed
from seqrec.core.hardware import device as _device, hardware
from seqrec.core.hydra_context import record_trial
from seqrec.core.io import atomic_to_csv, atomic_to_parquet, atomic_write_json
from seqrec.data.prepare import data_fingerprint, prepare_features, prepare_split
from seqrec.data.split import SplitData
from seqrec.evaluation.metrics import (
    compute_metrics, format_metrics, per_position_table, plot_per_position, protocol_metrics,
)
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
    inputs = PredictionInputs(spec)  # data, model or source, every check: before any run folder or tracker
    with run_context(spec.run) as run:
        run.record(hardware=inputs.hardware(), protocol=spec.data.protocol, **inputs.data_record)
        log.info("strategy: %s", inputs.strategy.describe())
        if inputs.source is not None:
            log.info("lists taken from the sequences sampled by run %s (%s)", inputs.source.run_id, inputs.source.name)
            run.record(samples_from=inputs.source.run_id)
        parts = {part: _score_part(spec, inputs, part, users, run.folder)
                 for part, users in (("val", inputs.split.val_users), ("test", inputs.split.test_users))}
        scores = _write_scores(spec, inputs, parts, run.folder)
        _report(spec, inputs, parts, scores, run)
    return scores.metrics[f"val_ndcg@{spec.k}"]


class PredictionInputs:
    """What a predict run reads and checks before it opens: the split, the histories' event codes, the data check,
    the strategy, and the trained network (or the sampling pass ``samples_from`` names)."""

    def __init__(self, spec: PredictSpec):
        self.params = thawed(spec.generation)
        self.strategy = build_strategy(self.params)
        self.split = split = prepare_split(spec.data)
        # event attributes of the histories (features=items_events); the model holds its item codes itself
        features = prepare_features(spec.data, split, with_items=False)
        self.events = features.event_sequences() if features is not None else None
        # the training run's (and samples_from's) data, compared once: a changed file is one line
        fingerprint = data_fingerprint(split, features)
        self.data_record = (spec.data_check.verify(fingerprint) if spec.data_check is not None
                            else {"data_fingerprint": fingerprint})
        self.device = _device(spec.device)
        self.source, self.model = spec.samples_from, None  # lists taken from a source need no network
        if self.source is not None:
            self.source.check(split)  # its users
            return
        self.model, meta = load_trained(RunFolder(spec.train_folder).model, self.device)
        if meta["n_items"] != split.n_items:
            raise UserError(
                f"{spec.data.path} now has {split.n_items} items but run {spec.train_task} was trained on "
                f"{meta['n_items']}; re-prepare the same data or train again"
            )
        for part, users in (("val", split.val_users), ("test", split.test_users)):  # (generate checks it too)
            check_capacity(self.strategy, split.inputs(part), users, split.n_items, spec.k, spec.filter_seen)

    def hardware(self) -> str:
        return hardware(self.device, resolve_precision(self.params.get("precision") or "float32", self.device))

    def lists(self, spec: PredictSpec, part: str, users: np.ndarray, variants: dict):
        """``(items [U, k], scores [U, k])`` of ``users``: generated, or taken from the source."""
        if self.source is not None:
            return self.source.lists(part, users)
        params = self.params
        return generate(  # a part's own inputs: leave-one-out's test input holds the validation item
            self.model, self.strategy, self.split.inputs(part), users, k=spec.k, max_length=spec.max_length,
            filter_seen=spec.filter_seen, rows=spec.rows, seed=spec.seed, device=self.device,
            no_repeat=ban_generated(params), precision=params.get("precision") or "float32",
            desc=f"{part}: {self.strategy.describe()}", progress=spec.progress, events=self.events,
            variants=variants, generated_events=params.get("generated_events"), workers=params.get("workers"),
        )


@dataclass
class PartScores:
    """One part's (val or test) lists scored: metrics, per-user values, their intervals, the per-position table."""

    users: np.ndarray
    metrics: dict
    per_user: dict
    intervals: dict
    table: pd.DataFrame | None  # None: a protocol with one held-out item (no positions to tell apart)
    seconds: float
    nested: dict  # the prefix lists (prefix_sequences), by variant


def _score_part(spec: PredictSpec, inputs: PredictionInputs, part: str, users: np.ndarray, folder) -> PartScores:
    split, params, boot = inputs.split, inputs.params, spec.bootstrap
    started = time.perf_counter()
    variants: dict = {}
    recs, scores = inputs.lists(spec, part, users, variants)
    seconds = time.perf_counter() - started
    nested = {}
    if params.get("prefix_sequences"):  # the main list too: every (aggregation, n) asked for is there
        nested = {shared_samples.variant_key(params["aggregation"], int(params["num_return_sequences"])):
                  (recs, scores), **variants}
    targets, groups = split.targets(users, spec.n_targets, part), split.target_groups(users, spec.n_targets, part)
    metrics, per_user = compute_metrics(recs, targets, split.item_counts, split.n_items, k=spec.k, groups=groups,
                                        with_per_user=True)
    # what the run's protocol reports (leave-one-out: NDCG@k and HR@k only)
    metrics, per_user = (protocol_metrics(spec.protocol, values, spec.k) for values in (metrics, per_user))
    names = list(per_user)  # per-user values: what intervals and paired comparisons resample
    ci = bootstrap_table(np.column_stack([per_user[n] for n in names]), n_resamples=int(boot["n_resamples"]),
                         confidence=float(boot["confidence"]), seed=int(boot["seed"]))
    atomic_to_parquet(_predictions_frame(split, users, recs, scores), folder.predictions(part))
    return PartScores(users, metrics, per_user, {n: [float(lo), float(hi)] for n, lo, hi in zip(names, ci.low, ci.high)},
                      per_position_table(metrics) if spec.protocol.metrics is None else None, seconds, nested)


@dataclass
class RunScores:
    metrics: dict  # metrics.json: <part>_<metric>, <part>_ms_per_user
    intervals: dict  # <part>_<metric> -> [low, high]
    table: pd.DataFrame | None  # per-position recall of both parts, with bands (None: one held-out position)


def _write_scores(spec: PredictSpec, inputs: PredictionInputs, parts: dict[str, PartScores], folder) -> RunScores:
    """metrics.json, intervals.json, per_user.parquet, per_position.csv/.png (and nested.npz) of the run."""
    k, split = spec.k, inputs.split
    metrics, intervals = {}, {}
    for part, p in parts.items():
        metrics.update({f"{part}_{name}": float(v) for name, v in p.metrics.items()})
        metrics[f"{part}_ms_per_user"] = 1000 * p.seconds / max(len(p.users), 1)
        intervals.update({f"{part}_{name}": ci for name, ci in p.intervals.items()})
    atomic_to_parquet(pd.concat([pd.DataFrame({"part": part, "user_id": split.user_ids[p.users],  # float32: half
                                               **{n: v.astype(np.float32) for n, v in p.per_user.items()}})  # the size
                                 for part, p in parts.items()], ignore_index=True), folder.per_user)
    if any(p.nested for p in parts.values()):
        shared_samples.save(folder.nested, {part: (p.users, p.nested) for part, p in parts.items()})
    atomic_write_json(folder.metrics, metrics)
    atomic_write_json(folder.intervals, {**spec.bootstrap, "intervals": intervals})
    test, val = parts["test"].table, parts["val"].table
    if test is None:  # one held-out item per user (leave-one-out): no per-position table or plot
        return RunScores(metrics, intervals, None)
    table = test.rename(columns=lambda c: c if c == "position" else f"test_{c}").merge(
        val.rename(columns=lambda c: c if c == "position" else f"val_{c}"), on="position")
    for part in ("test", "val"):  # the per-position bands
        for end, index in (("low", 0), ("high", 1)):
            table[f"{part}_recall@{k}_{end}"] = [intervals[f"{part}_recall@{k}_pos{p}"][index] for p in table["position"]]
    atomic_to_csv(table, folder.per_position_table)
    label = f"test: {inputs.strategy.describe()}"
    plot_per_position({label: test, "validation": val}, folder.per_position_plot,
                      bands={label: _band(intervals, "test", k, test), "validation": _band(intervals, "val", k, val)})
    return RunScores(metrics, intervals, table)


def _report(spec: PredictSpec, inputs: PredictionInputs, parts: dict[str, PartScores], scores: RunScores, run) -> None:
    """The tracker's record of the run, and what the screen shows."""
    for name, value in scores.metrics.items():
        run.tracker.report_single_value(name, value)
    for name, (low, high) in scores.intervals.items():
        run.tracker.report_single_value(f"{name}_ci_low", low)
        run.tracker.report_single_value(f"{name}_ci_high", high)
    if scores.table is not None:
        run.tracker.report_table("per-position recall", scores.table)
        run.tracker.report_figure("per-position recall", run.folder.per_position_plot)
    for name, path in run.folder.predict_artifacts().items():
        if path.is_file():
            run.tracker.upload_artifact(name, path)
    for part, p in parts.items():
        print(format_metrics(p.metrics, part, intervals=p.intervals))
    boot = spec.bootstrap
    print(f"intervals: {100 * float(boot['confidence']):g} % bootstrap over users ({int(boot['n_resamples'])} resamples)")
    print(f"generation: {scores.metrics['test_ms_per_user']:.2f} ms per test user")
    print(f"run {run.id}: predictions and metrics in {run.dir}")
    record_trial(run.id, scores.metrics[f"val_ndcg@{spec.k}"])


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
