"""Tables, plots and a README from finished experiment runs (see :mod:`seqrec.experiments.plan`), with their uncertainty.

Input is one row per model x training seed x strategy setting, built from the runs' ``metrics.json`` (and, when a
row has ``run_dir``, the run's ``intervals.json`` and ``per_user.parquet``). Every claim comes from intervals:

* **Selection on validation.** For each model, seed and strategy family (topk, greedy, beam, sampling, rra, ra,
  two_stage, and ``multi`` = the better of rra/ra) the setting with the best *validation* NDCG@10 (all held-out
  items of validation users) is chosen; test numbers are only reported.
* **Paired differences to Top-K.** Each chosen setting is compared with the same model's Top-K on the same test
  users at three horizons: the next item (recall@10 at position 0), late positions (each user's mean recall@10
  over positions 5-9) and overall (NDCG@10). Per-user differences give a bootstrap CI and a sign-flip test
  (:mod:`seqrec.evaluation.stats`); p-values are Holm-corrected over the families compared for that model, seed and horizon.
* **Seeds.** Chosen settings are summarised as mean +- sd over training seeds; pooled over seeds, each user's
  difference is averaged over the seeds first (the users are the same), which gives the pooled CI and test.
* **Verdict.** "ahead" / "behind" only when the CI of the difference excludes 0 *and* the Holm-adjusted p < 0.05;
  otherwise "not separable".

Outputs: ``summary.csv`` (every run with CIs and its paired comparison), ``comparisons.csv`` (chosen settings per
seed and pooled), ``training.csv``, ``per_position.png`` (recall@10 and NDCG@10 by held-out position with bands) and
``README.md``.
"""

from __future__ import annotations

import json
import math
import re
import shlex
from pathlib import Path
from typing import Iterable, Mapping, Optional, Sequence

import numpy as np
import pandas as pd

from seqrec.tracking.run_folder import RunFolder
from seqrec.core import registry
from seqrec.core.io import atomic_to_csv, atomic_write_text
from seqrec.core.errors import require
from seqrec.evaluation.stats import bootstrap_table, holm, paired_permutation_test, seed_summary, verdict_from_test

K = 10
POSITIONS = range(10)
LATE = range(5, 10)  # "long-term": held-out positions 5..9
POS_COLUMNS = [f"recall@{K}_pos{p}" for p in POSITIONS]
NDCG_POS_COLUMNS = [f"ndcg@{K}_pos{p}" for p in POSITIONS]
CI_METRICS = (f"map@{K}", f"ndcg@{K}", f"recall@{K}")
SUMMARY_COLUMNS = [
    "model", "seed", "strategy", "params",
    *[c for name in CI_METRICS for c in (f"test_{name}", f"test_{name}_low", f"test_{name}_high")],
    "late_recall", *POS_COLUMNS, *NDCG_POS_COLUMNS,
    f"coverage@{K}", f"novelty@{K}", f"entropy@{K}", f"val_ndcg@{K}", "ms_per_user", "train_task", "predict_task",
]
TRAINING_COLUMNS = ["model", "seed", "loss", "epochs", "best_epoch", "seconds_per_epoch", "fit_seconds",
                    f"best_val_next_ndcg@{K}", "hardware", "train_task"]
MULTI = ("rra", "ra")
#: horizon -> (label, per-user column of a predict run's per_user.parquet, or "late" for the mean over LATE)
HORIZONS = {"next": ("next item (recall@10, position 0)", f"recall@{K}_pos0"),
            "late": ("late positions (mean recall@10, positions 5-9)", "late"),
            "overall": ("overall (NDCG@10)", f"ndcg@{K}")}
#: with timestamp ties among held-out items: late positions from the tie-averaged recall@10_tpos{p}
TIED_HORIZON = ("late_t", ("late positions, tie-averaged (mean recall@10_tpos, positions 5-9)", "late_t"))
ALPHA = 0.05
N_RESAMPLES = 10_000



def strategy_families() -> tuple[str, ...]:
    """Strategy families in table order, from the registered strategies (``multi``: the better of RRA and RA)."""
    return registry.families()


def references(dataset: str) -> list[tuple[str, str, str, str, tuple[float, float, float]]]:
    """Reference numbers the registered models declare for ``dataset`` (PROTOCOL.md: public code's results, the
    original paper code run on this machine, the paper's own numbers) as (model, strategy, setting, source,
    (MAP, NDCG, Recall)); nan where the source gives no number."""
    return [(m.label, r.strategy, r.params, r.source, r.values)
            for m in registry.components("model") for r in m.references if r.dataset == dataset]


# --------------------------------------------------------------------------- rows
def summary_row(model: str, strategy: str, params: str, metrics: Mapping[str, float],
                train_task: str = "", predict_task: str = "", seed: int = 42, run_dir=None) -> dict:
    """One summary row from a predict run's ``metrics.json`` (keys ``test_*`` and ``val_*``); with ``run_dir``,
    the CIs of its ``intervals.json`` (the per-user values are read later, by :func:`paired_comparisons`)."""
    row: dict = {"model": model, "seed": int(seed), "strategy": strategy, "params": params,
                 "run_dir": str(run_dir) if run_dir is not None else ""}
    intervals = _intervals(run_dir)
    for name in CI_METRICS:
        row[f"test_{name}"] = metrics.get(f"test_{name}", math.nan)
        low, high = intervals.get(f"test_{name}", (math.nan, math.nan))
        row[f"test_{name}_low"], row[f"test_{name}_high"] = low, high
    for name in (*POS_COLUMNS, *NDCG_POS_COLUMNS, f"coverage@{K}", f"novelty@{K}", f"entropy@{K}"):
        row[name] = metrics.get(f"test_{name}", math.nan)
    row["late_recall"] = float(np.mean([row[POS_COLUMNS[p]] for p in LATE]))
    row[f"val_ndcg@{K}"] = metrics.get(f"val_ndcg@{K}", math.nan)
    row["ms_per_user"] = metrics.get("test_ms_per_user", math.nan)
    row["train_task"], row["predict_task"] = train_task, predict_task
    return row


def _intervals(run_dir) -> dict:
    if not run_dir:
        return {}
    path = RunFolder(run_dir).intervals
    if not path.is_file():
        return {}
    return json.loads(path.read_text(encoding="utf-8")).get("intervals", {})


def build_summary(rows: Iterable[Mapping]) -> pd.DataFrame:
    frame = pd.DataFrame(list(rows))
    require(len(frame) > 0, "no finished predict runs to summarise")
    if "seed" not in frame:
        frame["seed"] = 42
    if "run_dir" not in frame:
        frame["run_dir"] = ""
    for column in SUMMARY_COLUMNS:
        if column not in frame:
            frame[column] = math.nan
    return frame[[*SUMMARY_COLUMNS, "run_dir"]].reset_index(drop=True)


# --------------------------------------------------------------------------- selection
def best_per_strategy(summary: pd.DataFrame, with_multi: bool = False) -> pd.DataFrame:
    """For each model x seed x strategy family, the row with the highest validation NDCG (first on ties).

    ``with_multi`` adds family ``multi``: the better of rra and ra on validation (a copy of that row).
    """
    if "seed" not in summary:
        summary = summary.assign(seed=42)
    order = summary.assign(_i=np.arange(len(summary)), family=summary["strategy"])
    if with_multi:
        multi = order[order["strategy"].isin(MULTI)].assign(family="multi")
        order = pd.concat([order, multi], ignore_index=True)
    best = order.sort_values([f"val_ndcg@{K}", "_i"], ascending=[False, True], kind="stable")
    best = best.drop_duplicates(["model", "seed", "family"])
    best = best.assign(_f=best["family"].map({f: i for i, f in enumerate(strategy_families())}))
    best = best.sort_values(["_i", "_f"]).drop(columns=["_i", "_f"])
    if not with_multi:
        best = best.drop(columns="family")
    return best.reset_index(drop=True)


def _label(row: Mapping) -> str:
    return f"{row['strategy']} {row['params']}".strip()


# --------------------------------------------------------------------------- per-user values and comparisons
def _user_values(run_dir: str, cache: dict) -> Optional[pd.DataFrame]:
    """Test users' per-user values of a run (columns of HORIZONS plus per-position metrics), by user id."""
    if not run_dir:
        return None
    if run_dir not in cache:
        path = RunFolder(run_dir).per_user
        if not path.is_file():
            cache[run_dir] = None
        else:
            frame = pd.read_parquet(path)
            frame = frame[frame["part"] == "test"].set_index("user_id").drop(columns="part").astype(np.float64)
            frame["late"] = frame[[POS_COLUMNS[p] for p in LATE]].mean(axis=1, skipna=False)
            tied = [f"recall@{K}_tpos{p}" for p in LATE]
            if set(tied) <= set(frame.columns) and not frame[tied].equals(frame[[POS_COLUMNS[p] for p in LATE]]):
                frame["late_t"] = frame[tied].mean(axis=1, skipna=False)
            cache[run_dir] = frame.sort_index()
    return cache[run_dir]


def paired_comparisons(summary: pd.DataFrame, n_resamples: int = N_RESAMPLES, seed: int = 0) -> pd.DataFrame:
    """Every validation-chosen family against the same model's Top-K, per seed and pooled over seeds.

    One row per model x seed (``"pooled"`` for the seed-averaged users) x family x horizon with the chosen setting,
    both means, the mean difference, its bootstrap CI, the sign-flip p, the Holm-adjusted p (over the families of
    that model, seed and horizon) and the verdict. Models whose runs lack ``per_user.parquet`` are skipped.
    """
    best = best_per_strategy(summary, with_multi=True)
    cache: dict = {}
    rows = []
    for model in dict.fromkeys(best["model"]):
        part = best[best["model"] == model]
        seeds = sorted(set(part["seed"]))
        blocks = {}  # seed -> (chosen rows by family, per-user values by family, setting labels or None)
        for s in seeds:
            chosen = part[part["seed"] == s].set_index("family")
            if "topk" not in chosen.index:
                continue
            values = {f: _user_values(chosen.loc[f, "run_dir"], cache) for f in chosen.index}
            if any(v is None for v in values.values()):
                continue
            blocks[s] = (chosen, values, None)
        if len(blocks) > 1:  # pooled: each user's value averaged over the seeds (same users in every seed)
            per_seed = list(blocks.values())
            families = [f for f in strategy_families() if all(f in chosen.index for chosen, _, _ in per_seed)]
            pooled = {f: sum(values[f] for _, values, _ in per_seed) / len(per_seed) for f in families}
            labels = {f: " / ".join(dict.fromkeys(str(chosen.loc[f, "params"]) or "-" for chosen, _, _ in per_seed))
                      for f in families}
            blocks["pooled"] = (None, pooled, labels)
        for s, (chosen, values, labels) in blocks.items():
            rows += _compare_block(model, s, chosen, values, labels, n_resamples, seed)
    out = pd.DataFrame(rows)
    if len(out):
        out["p_holm"] = np.nan
        for _, index in out.groupby(["model", "seed", "horizon"], sort=False).groups.items():
            compared = out.loc[index]
            # Holm over the families compared: rra and ra separately, and again with multi (the better of the two on
            # validation) in their place; a multi row takes its adjusted p from the second set
            for merged in (False, True):
                family_set = compared[~compared["family"].isin(MULTI)] if merged else compared[compared["family"] != "multi"]
                adjusted = holm(family_set["p"].to_numpy())
                keep = family_set["family"] == "multi" if merged else np.ones(len(family_set), dtype=bool)
                out.loc[family_set.index[keep], "p_holm"] = adjusted[keep]
        out["verdict"] = [verdict_from_test(lo, hi, p, ALPHA) for lo, hi, p in zip(out["diff_low"], out["diff_high"],
                                                                                      out["p_holm"])]
    return out


def _compare_block(model, seed, chosen, values, labels, n_resamples, boot_seed) -> list[dict]:
    base = values["topk"]
    rows, columns = [], []
    for family in strategy_families():
        if family == "topk" or family not in values:
            continue
        other = values[family]
        require(other.index.equals(base.index), f"{model} seed {seed}: {family} and topk were scored on different users")
        setting = labels[family] if labels is not None else (str(chosen.loc[family, "params"]) or "-")
        strategy = chosen.loc[family, "strategy"] if chosen is not None else family
        horizons = dict(HORIZONS)
        if "late_t" in base.columns and "late_t" in other.columns:
            horizons[TIED_HORIZON[0]] = TIED_HORIZON[1]
        for horizon, (_, column) in horizons.items():
            diff = (other[column] - base[column]).to_numpy()
            columns.append(diff)
            rows.append({"model": model, "seed": seed, "family": family, "strategy": strategy, "setting": setting,
                         "horizon": horizon, "topk": float(np.nanmean(base[column])), "value": float(np.nanmean(other[column])),
                         "diff": float(np.nanmean(diff)), "p": paired_permutation_test(diff, np.zeros_like(diff),
                                                                                        n_resamples, boot_seed),
                         "users": int(np.count_nonzero(~np.isnan(diff)))})
    if columns:
        ci = bootstrap_table(np.column_stack(columns), n_resamples=n_resamples, seed=boot_seed)
        for row, low, high in zip(rows, ci.low, ci.high):
            row["diff_low"], row["diff_high"] = float(low), float(high)
    return rows


def _horizons(comparisons: pd.DataFrame) -> dict:
    """HORIZONS, plus the tie-averaged late horizon where the comparisons have it."""
    out = dict(HORIZONS)
    if TIED_HORIZON[0] in set(comparisons["horizon"]):
        out[TIED_HORIZON[0]] = TIED_HORIZON[1]
    return out


# --------------------------------------------------------------------------- seeds
def seed_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Per model x family: the validation-chosen settings' test metrics as mean, sd and count over seeds."""
    best = best_per_strategy(summary, with_multi=True)
    rows = []
    for (model, family), part in best.groupby(["model", "family"], sort=False):
        row = {"model": model, "family": family,
               "settings": " / ".join(dict.fromkeys(str(p) or "-" for p in part["params"])), "seeds": len(part)}
        for column in (f"test_ndcg@{K}", POS_COLUMNS[0], "late_recall", f"val_ndcg@{K}"):
            mean, sd, _ = seed_summary(part[column].to_numpy(dtype=float))
            row[column], row[f"{column}_sd"] = mean, sd
        rows.append(row)
    frame = pd.DataFrame(rows)
    if len(frame):
        frame["_f"] = frame["family"].map({f: i for i, f in enumerate(strategy_families())})
        frame = frame.sort_values(["model", "_f"], key=lambda c: c if c.name == "_f" else c.map(
            {m: i for i, m in enumerate(dict.fromkeys(best["model"]))})).drop(columns="_f").reset_index(drop=True)
    return frame


# --------------------------------------------------------------------------- verdicts in words
def claim_check(summary: pd.DataFrame, comparisons: Optional[pd.DataFrame] = None) -> list[str]:
    """Per model, in words: the validation-chosen multi-sequence setting against Top-K at each horizon.

    From the paired intervals when ``comparisons`` (of :func:`paired_comparisons`) has the model; from the point
    estimates otherwise (said so in the line).
    """
    lines = []
    best = best_per_strategy(summary, with_multi=True)
    for model in dict.fromkeys(best["model"]):
        part = comparisons[(comparisons["model"] == model) & (comparisons["family"] == "multi")] \
            if comparisons is not None and len(comparisons) else pd.DataFrame()
        if len(part):
            seeds = [s for s in dict.fromkeys(part["seed"]) if s != "pooled"]
            scope = "pooled" if "pooled" in set(part["seed"]) else seeds[0]
            pieces = []
            for horizon, (label, _) in _horizons(part).items():
                rows = part[part["horizon"] == horizon]
                main = rows[rows["seed"] == scope].iloc[0]
                per_seed = [r["verdict"] for _, r in rows[rows["seed"] != "pooled"].iterrows()]
                tally = ", ".join(f"{per_seed.count(v)} {v}" for v in ("ahead", "behind", "not separable")
                                  if per_seed.count(v))
                pieces.append(
                    f"{label}: **{main['verdict']}** (multi-sequence {main['value']:.4f} vs Top-K {main['topk']:.4f}, "
                    f"difference {main['diff']:+.4f} [{main['diff_low']:+.4f}, {main['diff_high']:+.4f}], "
                    f"Holm p = {main['p_holm']:.3g}; per seed: {tally})"
                )
            setting = part["setting"].iloc[0]
            where = f"pooled over {len(seeds)} seeds" if scope == "pooled" else f"seed {scope}"
            lines.append(f"**{model}** (multi-sequence chosen on validation: {setting}; {where}): " + "; ".join(pieces) + ".")
            continue
        chosen = best[best["model"] == model].set_index("family")
        if "topk" not in chosen.index or "multi" not in chosen.index:
            continue
        top, multi = chosen.loc["topk"], chosen.loc["multi"]
        if isinstance(top, pd.DataFrame):  # several seeds without per-user values: first seed's rows
            top, multi = top.iloc[0], multi.iloc[0]
        lines.append(
            f"**{model}** (point estimates only: no per-user values, so no verdict): multi-sequence {_label(multi)} "
            f"NDCG@{K} {multi[f'test_ndcg@{K}']:.4f} vs Top-K {top[f'test_ndcg@{K}']:.4f}; late recall "
            f"{multi['late_recall']:.4f} vs {top['late_recall']:.4f}."
        )
    return lines


# --------------------------------------------------------------------------- plot
def plot_per_position(summary: pd.DataFrame, path: str | Path, title: str = "",
                      n_resamples: int = 2_000, seed: int = 0) -> Path:
    """recall@10 (top row) and NDCG@10 (bottom row) by held-out position, one column per model, one line per
    family (validation-chosen setting, averaged over seeds); shaded: 95 % bootstrap band over users."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    best = best_per_strategy(summary, with_multi=True)
    best = best[best["family"] != "multi"]
    models = list(dict.fromkeys(best["model"]))
    fig = Figure(figsize=(4.6 * len(models) + 0.5, 8.0))
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, len(models), squeeze=False, sharey="row")
    cache: dict = {}
    for j, model in enumerate(models):
        part = best[best["model"] == model]
        for family in [f for f in strategy_families() if f in set(part["family"])]:
            rows = part[part["family"] == family]
            style = "-" if family in MULTI else ("--" if family == "topk" else ":")
            label = family if rows["params"].nunique() > 1 else _label(rows.iloc[0])
            frames = [_user_values(d, cache) for d in rows["run_dir"]]
            for i, columns in enumerate((POS_COLUMNS, NDCG_POS_COLUMNS)):
                ax = axes[i, j]
                mean = rows[columns].to_numpy(dtype=float).mean(axis=0)
                (line,) = ax.plot(list(POSITIONS), mean, style, marker="o", ms=3, label=label)
                if family in ("topk", *MULTI) and all(f is not None and set(columns) <= set(f.columns) for f in frames):
                    users = sum(f[columns] for f in frames) / len(frames)
                    ci = bootstrap_table(users.to_numpy(), n_resamples=n_resamples, seed=seed)
                    ax.fill_between(list(POSITIONS), ci.low, ci.high, color=line.get_color(), alpha=0.15, linewidth=0)
        for i, name in enumerate((f"recall@{K}", f"NDCG@{K}")):
            ax = axes[i, j]
            seeds = part["seed"].nunique()
            ax.set_title(f"{model}: {name}" + (f" (mean of {seeds} seeds)" if seeds > 1 else ""), fontsize=10)
            ax.set_xlabel("held-out position (0 = next item)")
            ax.set_ylabel(f"{name} of the item at that position")
            ax.set_xticks(list(POSITIONS))
            ax.grid(True, alpha=0.3)
            ax.set_ylim(bottom=0)
        axes[0, j].legend(fontsize=7)
    fig.suptitle((title + "\n" if title else "") + "bands: 95 % bootstrap CI over test users (Top-K, RRA, RA)",
                 fontsize=10)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=100)
    return path


# --------------------------------------------------------------------------- markdown
def _fmt(value, digits: int = 4) -> str:
    if isinstance(value, (float, np.floating)):
        return "" if math.isnan(value) else f"{value:.{digits}f}"
    return str(value)


def markdown_table(frame: pd.DataFrame, columns: Sequence[str], headers: Optional[Sequence[str]] = None,
                   digits: Optional[Mapping[str, int]] = None) -> str:
    headers = list(headers or columns)
    digits = dict(digits or {})
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for _, row in frame.iterrows():
        lines.append("| " + " | ".join(_fmt(row[c], digits.get(c, 4)) for c in columns) + " |")
    return "\n".join(lines)


def _mean_sd(mean: float, sd: float) -> str:
    if math.isnan(mean):
        return ""
    return f"{mean:.4f}" + ("" if math.isnan(sd) else f" ± {sd:.4f}")


def verdict_table(comparisons: pd.DataFrame, seeds: pd.DataFrame) -> str:
    """Headline: per model and horizon, Top-K and the chosen multi-sequence setting over seeds, the pooled paired
    difference with its CI and Holm p, and the verdict per seed."""
    if comparisons is None or not len(comparisons):
        return ""
    lines = ["| model | horizon | Top-K (mean ± sd over seeds) | multi-sequence (mean ± sd) | difference [95 % CI] | "
             "Holm p | verdict | per seed |", "|---|---|---|---|---|---|---|---|"]
    metric = {"next": POS_COLUMNS[0], "late": "late_recall", "overall": f"test_ndcg@{K}"}
    for model in dict.fromkeys(comparisons["model"]):
        part = comparisons[(comparisons["model"] == model) & (comparisons["family"] == "multi")]
        scope = "pooled" if "pooled" in set(part["seed"]) else part["seed"].iloc[0]
        for horizon in _horizons(part):
            rows = part[part["horizon"] == horizon]
            if not len(rows):
                continue
            main = rows[rows["seed"] == scope].iloc[0]
            s = seeds[(seeds["model"] == model)].set_index("family")
            column = metric.get(horizon)
            if column is None:  # no seed table column (tie-averaged): the pooled means
                top, multi = f"{main['topk']:.4f}", f"{main['value']:.4f}"
            else:
                top = _mean_sd(s.loc["topk", column], s.loc["topk", f"{column}_sd"]) if "topk" in s.index else ""
                multi = _mean_sd(s.loc["multi", column], s.loc["multi", f"{column}_sd"]) if "multi" in s.index else ""
            per_seed = ", ".join(f"{r['seed']}: {r['verdict']}" for _, r in rows[rows["seed"] != "pooled"].iterrows())
            lines.append(f"| {model} | {horizon} | {top} | {multi} | {main['diff']:+.4f} [{main['diff_low']:+.4f}, "
                         f"{main['diff_high']:+.4f}] | {main['p_holm']:.3g} | **{main['verdict']}** | {per_seed} |")
    return "\n".join(lines)


def family_table(comparisons: pd.DataFrame, seeds: pd.DataFrame) -> str:
    """Every family (chosen on validation) against Top-K on NDCG@10 and late recall, pooled over seeds."""
    if comparisons is None or not len(comparisons):
        return ""
    lines = ["| model | family | setting(s) chosen on validation | test NDCG@10 (mean ± sd) | Δ NDCG vs Top-K [CI] | "
             "verdict | late recall (mean ± sd) | Δ late [CI] | verdict | next item Δ [CI] | verdict |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for model in dict.fromkeys(comparisons["model"]):
        part = comparisons[comparisons["model"] == model]
        scope = "pooled" if "pooled" in set(part["seed"]) else part["seed"].iloc[0]
        part = part[part["seed"] == scope]
        s = seeds[seeds["model"] == model].set_index("family")
        if "topk" in s.index:
            t = s.loc["topk"]
            lines.append(f"| {model} | topk | - | {_mean_sd(t[f'test_ndcg@{K}'], t[f'test_ndcg@{K}_sd'])} | | | "
                         f"{_mean_sd(t['late_recall'], t['late_recall_sd'])} | | | | |")
        for family in [f for f in strategy_families() if f in set(part["family"])]:
            rows = part[part["family"] == family].set_index("horizon")
            cell = {h: f"{rows.loc[h, 'diff']:+.4f} [{rows.loc[h, 'diff_low']:+.4f}, {rows.loc[h, 'diff_high']:+.4f}]"
                    for h in HORIZONS}
            f_row = s.loc[family] if family in s.index else None
            ndcg = _mean_sd(f_row[f"test_ndcg@{K}"], f_row[f"test_ndcg@{K}_sd"]) if f_row is not None else ""
            late = _mean_sd(f_row["late_recall"], f_row["late_recall_sd"]) if f_row is not None else ""
            setting = f_row["settings"] if f_row is not None else rows["setting"].iloc[0]
            lines.append(f"| {model} | {family} | {setting} | {ndcg} | {cell['overall']} | {rows.loc['overall', 'verdict']} | "
                         f"{late} | {cell['late']} | {rows.loc['late', 'verdict']} | {cell['next']} | "
                         f"{rows.loc['next', 'verdict']} |")
    return "\n".join(lines)


def reference_table(dataset: str, summary: pd.DataFrame) -> str:
    """Reference numbers next to ours (the reference's setting where given, else the setting chosen on
    validation), mean over seeds."""
    refs = references(dataset)
    if not refs:
        return ""
    best = best_per_strategy(summary)
    lines = ["| model | strategy | setting | reference | ref MAP | ref NDCG | ref Recall | our MAP | our NDCG | our Recall | "
             "NDCG vs ref |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for model, strategy, params, source, (m, n, r) in refs:
        if params:
            ours = summary[(summary["model"] == model) & (summary["strategy"] == strategy) & (summary["params"] == params)]
        else:
            ours = best[(best["model"] == model) & (best["strategy"] == strategy)]
        if len(ours):
            values = [ours[f"test_{x}@{K}"].mean() for x in ("map", "ndcg", "recall")]
            cells = [_fmt(v) for v in values] + [f"{100 * (values[1] / n - 1):+.1f} %"]
        else:
            cells = ["", "", "", ""]
        shown = params or (", ".join(dict.fromkeys(ours["params"])) if len(ours) else "")
        lines.append(f"| {model} | {strategy} | {shown or '-'} | {source} | {_fmt(m)} | {_fmt(n)} | {_fmt(r)} | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines)


def grid_table(summary: pd.DataFrame) -> str:
    """Every setting, mean over seeds (± sd of test NDCG@10)."""
    group = summary.groupby(["model", "strategy", "params"], sort=False, dropna=False)
    frame = group.agg(seeds=("seed", "nunique"), ndcg=(f"test_ndcg@{K}", "mean"), ndcg_sd=(f"test_ndcg@{K}", "std"),
                      low=(f"test_ndcg@{K}_low", "mean"), high=(f"test_ndcg@{K}_high", "mean"),
                      pos0=(POS_COLUMNS[0], "mean"), pos9=(POS_COLUMNS[9], "mean"), late=("late_recall", "mean"),
                      coverage=(f"coverage@{K}", "mean"), val=(f"val_ndcg@{K}", "mean"), ms=("ms_per_user", "mean"))
    frame = frame.reset_index()
    frame["ndcg_text"] = [_mean_sd(m, s) for m, s in zip(frame["ndcg"], frame["ndcg_sd"])]
    frame["ci_text"] = [f"[{lo:.4f}, {hi:.4f}]" if not math.isnan(lo) else "" for lo, hi in zip(frame["low"], frame["high"])]
    return markdown_table(frame, ["model", "strategy", "params", "seeds", "ndcg_text", "ci_text", "pos0", "pos9", "late",
                                  "coverage", "val", "ms"],
                          ["model", "strategy", "params", "seeds", "test NDCG@10 (mean ± sd)", "mean 95 % CI (users)",
                           "pos 0", "pos 9", "late (5-9)", "coverage", "val NDCG@10", "ms/user"], {"ms": 2})


#: the placeholder a recorded command gets for a path outside the repository, by the flag (or key) it follows
PATH_PLACEHOLDERS = {"--run-store": "<run-store>", "run_store": "<run-store>", "--source": "<data>",
                     "--results": "<results>", "data_path": "<data>", "--data": "<data>"}
_ABSOLUTE = re.compile(r"(?<![\w.<>/-])(/[\w.+-]+(?:/[\w.+-]*)*)")


def portable_path(path: str, flag: str = "") -> str:
    """``path`` as a page records it: relative to the repository root when inside it (``.`` for the root itself),
    else the placeholder of the ``flag`` it follows (``<run-store>``, ``<data>``, ``<results>``; ``<path>``
    otherwise). Relative paths are kept."""
    from seqrec.core.paths import REPO_ROOT

    if not path.startswith("/"):
        return path
    try:
        rel = Path(path).resolve().relative_to(REPO_ROOT)
    except ValueError:
        return PATH_PLACEHOLDERS.get(flag, "<path>")
    return str(rel) if str(rel) != "." else "."


def portable_command(command: str) -> str:
    """A command line as a page records it, without the maker's machine paths: each absolute path inside the
    repository made relative, every other one a named placeholder (:func:`portable_path`); e.g.
    ``--run-store /work/runstores/x`` -> ``--run-store <run-store>``. Comments (``# ...``) are kept."""
    if command.lstrip().startswith("#"):
        return command
    match = re.search(r"\s+#.*$", command)
    code, comment = (command[:match.start()], match.group(0)) if match else (command, "")
    if not code.strip():
        return command
    indent = code[:len(code) - len(code.lstrip())]
    tokens, out, flag = shlex.split(code), [], ""
    for token in tokens:
        if "=" in token and not token.startswith("-") and token.split("=", 1)[1].startswith("/"):
            key, _, value = token.partition("=")
            token = f"{key}={portable_path(value, key)}"
        elif token.startswith("/"):
            token = portable_path(token, flag)
        out.append(token)
        flag = token if token.startswith("--") else ""
    text = indent + " ".join(t if re.fullmatch(r"[\w@%+=:,./<>\[\]-]+", t) else shlex.quote(t) for t in out)
    return text + comment


def portable_text(text: str) -> str:
    """Prose with every absolute path made portable as :func:`portable_path` does (no flag: ``<path>``, or the
    run store's placeholder for a path under a folder named ``runstores``)."""
    def one(match: re.Match) -> str:
        path = match.group(1)
        return portable_path(path, "--run-store" if "/runstores/" in path or path.endswith("/runs") else "")

    return _ABSOLUTE.sub(one, text)


def write_report(summary: pd.DataFrame, out_dir: str | Path, dataset: str, command: str = "",
                 training: Optional[pd.DataFrame] = None, elapsed_seconds: Optional[float] = None,
                 seconds_by_hardware: Optional[dict[str, float]] = None, quick: bool = False,
                 n_resamples: int = N_RESAMPLES, tied_share: float = 0.0,
                 missing: Sequence[str] = ()) -> dict[str, Path]:
    """Write summary.csv, comparisons.csv, training.csv, per_position.png and README.md into ``out_dir``.

    ``elapsed_seconds``: the summed duration of all runs; ``seconds_by_hardware`` splits it by what the
    runs ran on (each run's ``hardware`` in ``run.json``). ``quick``: a smoke run (said so at the top).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    comparisons = paired_comparisons(summary, n_resamples=n_resamples)
    seeds = seed_table(summary)
    csv = summary.drop(columns=[c for c in ("run_dir",) if c in summary])
    if len(comparisons):  # each row's own comparison with its model's Top-K (chosen rows; per seed)
        chosen = comparisons[(comparisons["seed"] != "pooled") & (comparisons["family"] != "multi")]
        for horizon in _horizons(chosen):
            h = chosen[chosen["horizon"] == horizon]
            keyed = {(r["model"], int(r["seed"]), r["strategy"], r["setting"]): r for _, r in h.iterrows()}
            for name in ("diff", "diff_low", "diff_high", "p", "p_holm", "verdict"):
                csv[f"{horizon}_{name}_vs_topk"] = [
                    keyed[(m, int(s), st, p or "-")][name] if (m, int(s), st, p or "-") in keyed else
                    (math.nan if name != "verdict" else "")
                    for m, s, st, p in zip(csv["model"], csv["seed"], csv["strategy"], csv["params"])]
    paths = {"summary": atomic_to_csv(csv, out / "summary.csv", index=False)}
    if len(comparisons):
        paths["comparisons"] = atomic_to_csv(comparisons, out / "comparisons.csv", index=False)
    if training is not None and len(training):
        paths["training"] = atomic_to_csv(training, out / "training.csv", index=False)
    paths["plot"] = plot_per_position(summary, out / "per_position.png", title=f"{dataset}: by held-out position")

    text = [f"# Results: {dataset}" + (" (quick smoke run: 2 short epochs, 100 validation users)" if quick else ""), ""]
    if quick:
        text += ["A smoke test of the pipeline, not a result: with a few users and barely trained models the intervals "
                 "are wide and the verdicts say so.", ""]
    if command:
        text += ["Produced by", "", "```", *(portable_command(line) for line in command.split("\n")), "```", ""]
    if elapsed_seconds is not None:
        line = f"Compute time of all runs (sum of each run's duration): {elapsed_seconds / 60:.1f} min"
        if seconds_by_hardware:
            line += " (" + "; ".join(f"{name}: {sec / 60:.1f} min" for name, sec in
                                     sorted(seconds_by_hardware.items(), key=lambda kv: -kv[1])) + ")"
        text += [line + ".", ""]
    if missing:
        text += [f"Not run yet, so left out of this report ({len(missing)} step(s)): " + "; ".join(missing) + ".", ""]
    n_seeds = summary.groupby("model")["seed"].nunique()
    text += [f"Test users, K = 10; training seeds per model: {', '.join(f'{m} {n}' for m, n in n_seeds.items())} (same "
             "split of users for every seed). **Every setting is chosen on validation NDCG@10** (all 10 held-out items of "
             "the validation users), per seed, and reported on test. Differences are paired over the same test users: "
             f"95 % bootstrap CI ({n_resamples:,} resamples of users) and a sign-flip test, Holm-corrected over the "
             "strategy families compared; pooled = each user's difference averaged over the seeds. A verdict is "
             "*ahead*/*behind* only when the CI excludes 0 and the Holm-adjusted p < 0.05.", ""]
    checks = claim_check(summary, comparisons)
    if checks:
        text += ["## Does the paper's claim hold?", "", *[f"- {line}" for line in checks], ""]
    if tied_share > 0:
        text += ["## Timestamp ties", "", f"{100 * tied_share:.1f} % of the held-out items share their timestamp with "
                 "another held-out item of the same user. Their order is a convention (ties broken by item id, the same "
                 "for any row order of the file), so a held-out *position* inside a tie is not a time position, and "
                 "per-position curves mix neighbouring positions. The horizon `late_t` uses the tie-averaged recall "
                 "(each position of a tied group credited with the share of the group found: the expectation over all "
                 "orders of the tied items); where it and `late` agree, the late-position verdict does not hinge on "
                 "the tie convention. The NDCG@10 verdict is order-free (the 10 held-out items as a set).", ""]
    table = verdict_table(comparisons, seeds)
    if table:
        text += ["## Multi-sequence (chosen on validation) against Top-K", "", table, ""]
    table = family_table(comparisons, seeds)
    if table:
        text += ["## Every strategy family against Top-K (pooled over seeds)", "", table, ""]
    ref = reference_table(dataset, summary)
    if ref:
        text += ["## Against the reference numbers", "", "Ours: mean over seeds. The paper's 2023 numbers come from the "
                 "original, timestamped ML-1M; ours from the order-only ML-1M of `../shared/data`: not the same data.",
                 "", ref, ""]
    text += ["## recall@10 and NDCG@10 by held-out position", "", "![per-position metrics](per_position.png)", ""]
    if training is not None and len(training):
        columns = [c for c in TRAINING_COLUMNS[:-1] if c in training]
        text += ["## Training", "", markdown_table(training, columns, columns, {"seconds_per_epoch": 1, "fit_seconds": 0}), ""]
    text += ["## All runs (mean over seeds)", "", grid_table(summary), "",
             "Per-run numbers (each seed), CIs and each chosen setting's paired comparison are in `summary.csv`; every "
             "comparison (per seed and pooled) in `comparisons.csv`.", ""]
    paths["readme"] = atomic_write_text(out / "README.md", "\n".join(text))
    return paths


# --------------------------------------------------------------------------- leave-one-out
#: what a predict run under protocol=leave_one_out reports (seqrec.data.protocols): Top-K's NDCG@10 and HR@10
LOO_METRICS = (f"ndcg@{K}", f"hr@{K}")


def leave_one_out_table(rows: Iterable[Mapping]) -> pd.DataFrame:
    """Top-K predict runs under leave-one-out, one row per ``{model, seed, run_dir}`` (``run_dir``: the predict
    run's folder): test NDCG@10 and HR@10 with their bootstrap CIs over users (the run's ``intervals.json``),
    validation NDCG@10, and the test users. A run that does not report them (made under another protocol) is a
    one-line error."""
    out = []
    for row in rows:
        folder = RunFolder(row["run_dir"])
        metrics, intervals = folder.read_metrics(), _intervals(folder.path)
        require(all(f"test_{m}" in metrics for m in LOO_METRICS),
                f"run {folder.id} reports no test_{LOO_METRICS[1]}: not a predict run under protocol=leave_one_out")
        entry = {"model": row["model"], "seed": int(row.get("seed", 42))}
        for name in LOO_METRICS:
            low, high = intervals.get(f"test_{name}", (math.nan, math.nan))
            entry.update({f"test_{name}": metrics[f"test_{name}"], f"test_{name}_low": low, f"test_{name}_high": high})
        entry[f"val_ndcg@{K}"] = metrics.get(f"val_ndcg@{K}", math.nan)
        parts = pd.read_parquet(folder.per_user, columns=["part"])["part"] if folder.per_user.is_file() else None
        entry["test_users"] = int((parts == "test").sum()) if parts is not None else math.nan
        entry["predict_task"] = folder.id
        out.append(entry)
    require(len(out) > 0, "no leave-one-out predict runs to tabulate")
    return pd.DataFrame(out)


def leave_one_out_markdown(table: pd.DataFrame) -> str:
    """Per model: test NDCG@10 and HR@10 as mean ± sd over its seeds, then each seed with its 95 % CI over users."""
    lines = ["| model | seeds | test NDCG@10 (mean ± sd) | test HR@10 (mean ± sd) | per seed: NDCG@10 [95 % CI], HR@10 "
             "[95 % CI] |", "|---|---|---|---|---|"]
    for model, part in table.groupby("model", sort=False):
        cells = []
        for name in LOO_METRICS:
            mean, sd, _ = seed_summary(part[f"test_{name}"].to_numpy(dtype=float))
            cells.append(_mean_sd(mean, sd))
        seeds = "; ".join(
            f"{r['seed']}: {r[f'test_{LOO_METRICS[0]}']:.4f} [{r[f'test_{LOO_METRICS[0]}_low']:.4f}, "
            f"{r[f'test_{LOO_METRICS[0]}_high']:.4f}], {r[f'test_{LOO_METRICS[1]}']:.4f} "
            f"[{r[f'test_{LOO_METRICS[1]}_low']:.4f}, {r[f'test_{LOO_METRICS[1]}_high']:.4f}]"
            for _, r in part.iterrows())
        lines.append(f"| {model} | {len(part)} | {cells[0]} | {cells[1]} | {seeds} |")
    return "\n".join(lines)


# --------------------------------------------------------------------------- stages of the experiment
def pooled_difference(diffs: Sequence[np.ndarray], n_resamples: int = N_RESAMPLES, seed: int = 0) -> dict:
    """Per-user differences of several seeds (same users), each user's averaged over the seeds first: the mean
    ``diff``, its bootstrap CI ``low``/``high`` and the sign-flip test's ``p``."""
    from seqrec.evaluation.stats import paired_bootstrap_ci

    pooled = np.mean(diffs, axis=0)
    mean, low, high = paired_bootstrap_ci(pooled, np.zeros_like(pooled), n_resamples=n_resamples, seed=seed)
    return {"diff": mean, "low": low, "high": high,
            "p": paired_permutation_test(pooled, np.zeros_like(pooled), n_resamples=n_resamples, seed=seed)}


def plot_position_panels(bases: Sequence[str], path: Path, draw) -> Optional[Path]:
    """Recall@10 by held-out position, one panel per base model; ``draw(ax, base)`` plots its lines."""
    if not bases:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(bases), figsize=(5.5 * len(bases), 4), squeeze=False)
    for ax, base in zip(axes[0], bases):
        draw(ax, base)
        ax.set_title(base)
        ax.set_xlabel("held-out position")
        ax.set_ylabel(f"recall@{K}")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_stage_report(name: str, title: str, table: pd.DataFrame, markdown: str, out_dir: Path,
                       plot) -> dict[str, Path]:
    """``<name>.csv``, ``<name>.md`` (``# title`` + ``markdown``) and, when ``plot(path)`` draws one, ``<name>.png``
    in ``out_dir``; nothing for an empty table."""
    if not len(table):
        return {}
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {f"{name}_table": out_dir / f"{name}.csv", f"{name}_markdown": out_dir / f"{name}.md"}
    atomic_to_csv(table, paths[f"{name}_table"])
    atomic_write_text(paths[f"{name}_markdown"], f"# {title}\n\n{markdown}\n")
    if plot(out_dir / f"{name}.png") is not None:
        paths[f"{name}_plot"] = out_dir / f"{name}.png"
    return paths


# --------------------------------------------------------------------------- time per stage
def stage_times(records: Sequence[Mapping]) -> pd.DataFrame:
    """Seconds per (model, seed) and stage from ``records`` of ``{model, seed, stage, seconds}`` (one per run;
    stage ``train`` or a strategy name): training first, then the strategies in the order they ran, a ``total``
    column and a ``total`` row."""
    if not records:
        return pd.DataFrame()
    frame = pd.DataFrame(records)
    stages = ["train", *[s for s in dict.fromkeys(frame["stage"]) if s != "train"]]
    table = frame.pivot_table(index=["model", "seed"], columns="stage", values="seconds", aggfunc="sum", sort=False)
    table = table.reindex(columns=[s for s in stages if s in table.columns]).fillna(0.0)
    table["total"] = table.sum(axis=1)
    table.loc[("total", ""), :] = table.sum(axis=0)
    return table.round(0).astype(int)
