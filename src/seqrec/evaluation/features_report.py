"""Attributes on the long-term protocol: every model with item attributes and with item + event attributes against
the same model on item ids only, under the same strategy, on the same test users.

Rows come from the experiment summary (:mod:`seqrec.evaluation.report`): models ``<base>`` (ids only) and ``<base>+<variant>``
(:class:`seqrec.experiments.plan.FeaturesPlan`). For each base model x strategy setting x variant: test NDCG@10, recall@10
at held-out positions 0 and 9 and late positions 5-9, and **tail recall**: recall@10 over each user's held-out items
that are among the least popular 20 % of the distinct held-out items of the test users (by train interactions;
:func:`seqrec.evaluation.metrics.least_popular_items`), where attributes should help most. Each variant's per-user NDCG@10 and
tail recall are compared with the ids-only run of the same seed and strategy setting (pooled over the seeds both
have, each user's difference averaged over seeds first): a bootstrap CI and a sign-flip test, Holm-corrected over
the rows of one base model. ``ahead`` / ``behind`` only when the CI excludes 0 and the adjusted p < 0.05.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from seqrec.tracking.run_folder import RunFolder
from seqrec.evaluation.metrics import least_popular_items, tail_recall
from seqrec.evaluation.report import K, LATE, N_RESAMPLES, POS_COLUMNS, _user_values, plot_position_panels, pooled_difference, \
    write_stage_report
from seqrec.evaluation.stats import holm, verdict_from_test

IDS_ONLY = "ids only"
#: what the attribute variants of the ``features`` config group are, for the report's preamble
VARIANTS = {
    "items": "item attributes (genres, year) in each input event",
    "items_events": "item attributes and the rating, a generated event's rating unknown",
    "items_output": "item attributes in the input events and in the scoring table",
    "items_events_predicted": "item attributes and the rating, a generated event's rating predicted by a trained head",
}
TAIL_SHARE = 0.2
METRIC = f"ndcg@{K}"
TAIL = f"tail_recall@{K}"


def split_label(model: str) -> tuple[str, str]:
    """``("GPT", "items")`` for ``GPT+items``; ``("GPT", "ids only")`` for ``GPT``."""
    base, sep, variant = model.partition("+")
    return (base, variant) if sep else (model, IDS_ONLY)


class TailRecall:
    """Per-user tail recall of predict runs, from their ``predictions.parquet`` and the split of their training data
    (one split per training config's data, split seed and held-out length; cached)."""

    def __init__(self, share: float = TAIL_SHARE):
        self.share = share
        self._splits: dict = {}
        self._values: dict = {}

    def _setup(self, train_dir: Path):
        from seqrec.config.upgrade import load_run_config
        from seqrec.data.prepare import DataSpec, prepare_split

        cfg = load_run_config(train_dir, "train")
        key = (str(cfg["data_path"]), int(cfg["random_state"]), int(cfg["last_n_items"]), str(cfg["protocol"]))
        if key not in self._splits:
            # the split is the same with or without attribute columns
            split = prepare_split(DataSpec.of({**cfg, "features": None}))
            users = split.test_users
            targets = split.targets(users, int(cfg["last_n_items"]), "test")
            self._splits[key] = (split.user_ids[users], pd.Index(split.item_ids), targets,
                                 least_popular_items(targets, split.item_counts, self.share))
        return self._splits[key]

    def of(self, run_dir: str, train_task: str) -> Optional[pd.Series]:
        """The run's per-user tail recall by user id (None without predictions)."""
        if run_dir not in self._values:
            path = RunFolder(run_dir).predictions("test")
            if not path.is_file():
                self._values[run_dir] = None
            else:
                user_ids, item_index, targets, tail = self._setup(Path(run_dir).parent / train_task)
                preds = pd.read_parquet(path)
                preds["item"] = item_index.get_indexer(preds["item_id"]) + 1  # raw ids -> item indices
                recs = (preds.pivot(index="user_id", columns="rank", values="item").reindex(user_ids)
                        .fillna(0).astype(np.int64).to_numpy())
                self._values[run_dir] = pd.Series(tail_recall(recs, targets, tail, K), index=user_ids).sort_index()
        return self._values[run_dir]


def features_table(summary: pd.DataFrame, n_resamples: int = N_RESAMPLES, seed: int = 0,
                   tails: Optional[TailRecall] = None) -> pd.DataFrame:
    """One row per base model x strategy setting x variant (see the module doc); empty without attribute runs."""
    frame = summary.copy()
    frame[["base", "variant"]] = [split_label(m) for m in frame["model"]]
    bases = sorted(set(frame.loc[frame["variant"] != IDS_ONLY, "base"]))
    tails = tails or TailRecall()
    cache: dict = {}
    rows = []
    for base in bases:
        part = frame[frame["base"] == base]
        settings = part.loc[part["variant"] != IDS_ONLY, ["strategy", "params"]].drop_duplicates()
        reference = {(g, p, s): (r, t) for g, p, s, r, t in
                     part[part["variant"] == IDS_ONLY][["strategy", "params", "seed", "run_dir", "train_task"]].values}
        block = []
        for strategy, params in settings.values:
            same = part[(part["strategy"] == strategy) & (part["params"] == params)]
            for variant, group in same.groupby("variant", sort=False):
                row = {"model": base, "variant": variant, "strategy": strategy, "params": params,
                       "seeds": " ".join(str(int(s)) for s in sorted(group["seed"])),
                       f"test_{METRIC}": group[f"test_{METRIC}"].mean(), "recall_pos0": group[POS_COLUMNS[0]].mean(),
                       "recall_pos9": group[POS_COLUMNS[9]].mean(), "late_recall": group["late_recall"].mean()}
                tail_values = [tails.of(r, t) for r, t in group[["run_dir", "train_task"]].values]
                if all(v is not None for v in tail_values):
                    row[TAIL] = float(np.nanmean([v.mean() for v in tail_values]))
                if variant != IDS_ONLY:
                    ndcg, tail, used = [], [], []
                    for s, run_dir, train_task in group[["seed", "run_dir", "train_task"]].values:
                        ref = reference.get((strategy, params, s))
                        ours, theirs = _user_values(run_dir, cache), ref and _user_values(ref[0], cache)
                        if ours is None or theirs is None:
                            continue
                        used.append(int(s))
                        ndcg.append((ours[METRIC] - theirs[METRIC]).to_numpy())
                        mine, other = tails.of(run_dir, train_task), tails.of(*ref)
                        if mine is not None and other is not None:
                            tail.append((mine - other).to_numpy())
                    row["paired_seeds"] = " ".join(map(str, used)) or "-"
                    if ndcg:
                        row.update({f"{k}_vs_ids": v for k, v in pooled_difference(ndcg, n_resamples, seed).items()})
                    if tail and len(tail) == len(ndcg):
                        row.update({f"tail_{k}_vs_ids": v for k, v in pooled_difference(tail, n_resamples, seed).items()})
                block.append(row)
        for prefix in ("", "tail_"):
            compared = [r for r in block if f"{prefix}p_vs_ids" in r]
            for r, adjusted in zip(compared, holm([r[f"{prefix}p_vs_ids"] for r in compared]) if compared else []):
                r[f"{prefix}p_holm_vs_ids"] = float(adjusted)
                r[f"{prefix}verdict_vs_ids"] = verdict_from_test(r[f"{prefix}low_vs_ids"], r[f"{prefix}high_vs_ids"],
                                                                 float(adjusted))
        rows += block
    return pd.DataFrame(rows)


def _fmt(value, digits: int = 4) -> str:
    return "" if value is None or (isinstance(value, float) and np.isnan(value)) else f"{value:.{digits}f}"


def _ci(row: dict, prefix: str = "") -> tuple[str, str]:
    diff = row.get(f"{prefix}diff_vs_ids")
    if diff is None or (isinstance(diff, float) and np.isnan(diff)):
        return "", ""
    verdict = row.get(f"{prefix}verdict_vs_ids")
    return (f"{diff:+.4f} [{row[f'{prefix}low_vs_ids']:+.4f}, {row[f'{prefix}high_vs_ids']:+.4f}]",
            verdict if isinstance(verdict, str) else "")


def features_markdown(table: pd.DataFrame) -> str:
    lines = [f"| model | strategy | setting | attributes | seeds | test NDCG@{K} | vs ids only [95 % CI] | verdict | "
             f"recall@{K} pos 0 | pos 9 | late (5-9) | tail recall@{K} | vs ids only [95 % CI] | verdict |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in table.to_dict("records"):
        ci, verdict = _ci(r)
        tail_ci, tail_verdict = _ci(r, "tail_")
        lines.append(f"| {r['model']} | {r['strategy']} | {r['params'] or '-'} | {r['variant']} | {r['seeds']} | "
                     f"{_fmt(r[f'test_{METRIC}'])} | {ci} | {verdict} | {_fmt(r['recall_pos0'])} | "
                     f"{_fmt(r['recall_pos9'])} | {_fmt(r['late_recall'])} | {_fmt(r.get(TAIL))} | {tail_ci} | "
                     f"{tail_verdict} |")
    return "\n".join(lines)


def plot_features(summary: pd.DataFrame, path: Path) -> Optional[Path]:
    """Recall@10 by held-out position, one panel per base model: each attribute variant under Top-K (solid) and
    RRA (dashed), mean over seeds; shaded: the late positions."""
    frame = summary.copy()
    frame[["base", "variant"]] = [split_label(m) for m in frame["model"]]
    settings = frame.loc[frame["variant"] != IDS_ONLY, ["strategy", "params"]].drop_duplicates().values

    def draw(ax, base):
        part = frame[frame["base"] == base]
        for i, variant in enumerate(dict.fromkeys(part["variant"])):
            for (strategy, params), style in zip(settings, ("-", "--", ":", "-.")):
                rows = part[(part["variant"] == variant) & (part["strategy"] == strategy) & (part["params"] == params)]
                if len(rows):
                    ax.plot(range(len(POS_COLUMNS)), rows[POS_COLUMNS].mean().to_numpy(), style, color=f"C{i}",
                            marker="o", markersize=3, label=f"{variant}: {strategy} {params}".strip())
        ax.axvspan(LATE.start - 0.5, LATE.stop - 0.5, color="0.9", zorder=0)

    return plot_position_panels(sorted(set(frame.loc[frame["variant"] != IDS_ONLY, "base"])), path, draw)


def write_features_report(summary: pd.DataFrame, out_dir: Path, n_resamples: int = N_RESAMPLES) -> dict[str, Path]:
    """``features.csv``, ``features.md`` and ``features.png`` in ``out_dir`` (nothing without attribute runs)."""
    table = features_table(summary, n_resamples=n_resamples)
    variants = sorted(set(table["variant"]) - {IDS_ONLY}) if len(table) else []
    described = "; ".join(f"`features={v}`: {VARIANTS.get(v, 'config group features/' + v)}" for v in variants)
    intro = (f"Each model trained on item ids only and with attributes ({described}); test users, K = {K}. "
             f"Differences are paired over the same test "
             f"users against the ids-only run with the same seed and strategy setting (95 % bootstrap CI, sign-flip "
             f"test, Holm over the rows of one model). Tail recall: recall@{K} over each user's held-out items among "
             f"the least popular {100 * TAIL_SHARE:g} % of the distinct held-out items (by train interactions).")
    markdown = f"{intro}\n\n{features_markdown(table)}\n\n![recall by held-out position](features.png)" if len(table) else ""
    return write_stage_report("features", "Attributes on the long-term protocol", table, markdown, out_dir,
                              lambda path: plot_features(summary, path))
