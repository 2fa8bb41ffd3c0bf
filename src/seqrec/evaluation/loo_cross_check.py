"""The leave-one-out cross-check's report: our ML-1M runs beside the published numbers (``scripts/cross_check.py``).

Input: one Top-K predict run under ``protocol=leave_one_out`` per model and training seed
(:func:`seqrec.evaluation.report.leave_one_out_table`), and the training record of each (its ``metrics.json`` with
``stopped_by`` and ``history.csv``). Output in ``out_dir``: ``README.md``, ``cross_check.csv`` (one row per model
and published source), ``runs.csv`` (each seed), ``training.csv`` and ``published.csv``.

* **Intervals.** A model's NDCG@10 and HR@10 carry a 95 % bootstrap CI over the test users: one seed, the predict
  run's own (``intervals.json``); several seeds, each user's value averaged over the seeds first (the users are the
  same), then resampled. The seeds' sd is shown beside it.
* **Against the published figure.** *reaches* when the published number lies inside our CI, *below* / *above* when
  the whole CI is below / above it.
* **Why not reached** is read from the training runs, not guessed: a run ended by its wall-clock budget
  (``stopped_by: max_time``) whose validation made a new best in its last validations is "not reached within the
  budget, validation still rising at its end"; a run ended by early stopping or with a flat validation had
  converged, so the budget is ruled out and the cause stays unmeasured (the remaining protocol differences are
  listed).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable, Mapping, Optional, Sequence

import numpy as np
import pandas as pd

from seqrec.core.io import atomic_to_csv, atomic_write_text
from seqrec.evaluation.baselines import PLATEAU_FACTOR, popularity_validation_ndcg
from seqrec.evaluation.published_loo import NOT_USED, PUBLISHED, Published, published_for
from seqrec.evaluation.report import LOO_METRICS, markdown_table, portable_command
from seqrec.evaluation.stats import bootstrap_ci, seed_summary
from seqrec.tracking.run_folder import RunFolder

MONITOR = "val_next_ndcg@10"  # what training validates on (the validation item's NDCG@10) and stops early on
BUDGET_REASON = "not reached within the budget, validation still rising at its end"
PLATEAU_REASON = (f"not reached within the budget: training had not left the popularity level (validation below "
                  f"{PLATEAU_FACTOR:g}x the popularity baseline's), the start-up plateau of its loss")
#: the cross-check's models in table order: label -> what it is
MODEL_NAMES = {"SASRec": "SASRec (BCE, 1 negative)", "SASRec+": "SASRec+ (full-softmax CE)",
               "gSASRec": "gSASRec (gBCE, 256 negatives)", "BERT4Rec": "BERT4Rec (masked, CE)", "GPT": "GPT-2 (CE)"}
#: the item filter of SASRec's preprocessed ML-1M, which every published number here used
LITERATURE_MIN_ITEM_USERS = 5
LITERATURE_COUNTS = (6040, 3416, 999_611)  # users, items, interactions (gSASRec-pytorch dataset_stats.json)


# --------------------------------------------------------------------------- how a training run ended
def validation_trend(history: Optional[pd.DataFrame], monitor: str = MONITOR,
                     popularity: Optional[float] = None) -> dict:
    """Whether validation was still rising when training ended: over the last ``window`` validations (a quarter of
    them, at least 3, at most all but one) the best value minus the best before them (``gain``); ``rising`` when it
    is > 0 (a new best among the last validations). Fewer than 2 validations: ``rising`` None. ``popularity``: the
    popularity baseline's value of ``monitor`` on the same validation users; ``plateau`` is then whether the best
    stayed below :data:`PLATEAU_FACTOR` times it: a model still at the popularity level (the start-up plateau of
    many-negative losses) is flat because it has not started, not because it converged."""
    values = (history[monitor].dropna().to_numpy(dtype=float)
              if history is not None and monitor in history else np.empty(0))
    n = len(values)
    plateau = (None if popularity is None or not n else bool(values.max() < PLATEAU_FACTOR * popularity))
    level = {"popularity": math.nan if popularity is None else popularity, "plateau": plateau}
    if n < 2:
        return {"validations": n, "window": 0, "gain": math.nan, "rising": None, **level}
    window = min(max(3, math.ceil(n / 4)), n - 1)
    gain = float(values[-window:].max() - values[:-window].max())
    return {"validations": n, "window": window, "gain": gain, "rising": gain > 0, **level}


def popularity_level(run_dir, splits: dict) -> float:
    """The popularity baseline's validation NDCG@10 (next item) on a training run's own validation users and split;
    ``splits`` caches the splits by data settings (runs of one data file share theirs)."""
    from seqrec.config.upgrade import load_run_config
    from seqrec.data.prepare import DataSpec, prepare_split

    spec = DataSpec.of(load_run_config(run_dir, "train"))
    if spec not in splits:
        splits[spec] = popularity_validation_ndcg(prepare_split(spec))
    return splits[spec]


def _at_popularity(row: Mapping) -> bool:
    return row.get("plateau") is True or row.get("plateau") == 1.0


def _plateau_text(row: Mapping) -> str:
    return (f"still at the popularity level (best validation NDCG@10 {row['best_val_next_ndcg@10']:.4f}, below "
            f"{PLATEAU_FACTOR:g}x popularity's {row['popularity']:.4f}: its start-up plateau, not converged)")


def read_history(run_dir) -> Optional[pd.DataFrame]:
    """A training run's ``history.csv`` (None when it has none)."""
    path = RunFolder(run_dir).history
    return pd.read_csv(path) if Path(path).is_file() else None


def how_it_ended(row: Mapping) -> str:
    """One training run's end in words: what stopped it and whether validation was still rising."""
    stopped, rising = row.get("stopped_by") or "", row.get("rising")
    trend = (_plateau_text(row) if _at_popularity(row) else
             "" if rising is None or (isinstance(rising, float) and math.isnan(rising)) else
             f"validation still rising (+{row['gain']:.4f} over its last {int(row['window'])} of "
             f"{int(row['validations'])} validations)" if rising else
             f"validation flat (no new best in its last {int(row['window'])} of {int(row['validations'])} validations)")
    if stopped == "max_time":
        budget = row.get("max_time_seconds")
        what = (f"the {budget_text(budget / 60)} budget" if budget and not math.isnan(budget) else
                "the time budget")
    elif stopped == "early_stopping":
        return f"early stopping (best at epoch {row.get('best_epoch')} of {row.get('epochs')})"
    elif stopped in ("max_epochs", "max_steps"):
        what = f"its {stopped} ({row.get('epochs')} epochs)"
    else:
        return "not recorded (a run made before training recorded stopped_by)" if not stopped else stopped
    return f"{what}, {trend}" if trend else what


def budget_text(minutes: float) -> str:
    """``30-min``, ``2.5-min`` or, under a minute, ``3-s``."""
    return f"{minutes * 60:.0f}-s" if minutes < 1 else f"{minutes:g}-min"


def shortfall_reason(runs: pd.DataFrame) -> str:
    """Why a model's runs fall short of a published figure, from how they ended (measured, not guessed)."""
    if not len(runs):
        return "no training record"
    if "plateau" in runs:
        stuck = runs[(runs["stopped_by"] == "max_time") & runs.apply(_at_popularity, axis=1)]
        if len(stuck):
            return PLATEAU_REASON + " (" + "; ".join(
                f"seed {r['seed']}: best validation NDCG@10 {r['best_val_next_ndcg@10']:.4f}, popularity's "
                f"{r['popularity']:.4f}" for _, r in stuck.iterrows()) + ")"
    rising = runs[(runs["stopped_by"] == "max_time") & (runs["rising"] == True)]  # noqa: E712 (None/NaN too)
    if len(rising):
        return BUDGET_REASON + " (" + "; ".join(
            f"seed {r['seed']}: +{r['gain']:.4f} validation NDCG@10 over its last {int(r['window'])} of "
            f"{int(r['validations'])} validations" for _, r in rising.iterrows()) + ")"
    unmeasured = "the cause is not measured here (see the protocol differences)"
    if (runs["stopped_by"] == "max_time").any():
        return f"the budget ended training with validation flat, so more time would not close the gap; {unmeasured}"
    if (runs["stopped_by"] == "early_stopping").any():
        return f"training converged (early stopping), so not the budget; {unmeasured}"
    limits = runs[runs["stopped_by"].isin(["max_epochs", "max_steps"])]
    if len(limits):
        still = (limits["rising"] == True).any()  # noqa: E712
        return (f"the literature's training length ended it with validation {'still rising' if still else 'flat'}"
                + ("" if still else f"; {unmeasured}"))
    return "how training ended is not recorded"


# --------------------------------------------------------------------------- our numbers
def pooled_interval(run_dirs: Sequence, metric: str, n_resamples: int = 10_000, seed: int = 0) -> tuple:
    """(mean, low, high) of ``metric`` over the test users with each user's value averaged over the runs (seeds)
    first: the user-bootstrap interval of the seed mean."""
    frames = []
    for run_dir in run_dirs:
        per_user = pd.read_parquet(RunFolder(run_dir).per_user, columns=["part", "user_id", metric])
        frames.append(per_user[per_user["part"] == "test"].set_index("user_id")[metric])
    joined = pd.concat(frames, axis=1, join="inner")
    return bootstrap_ci(joined.mean(axis=1).to_numpy(dtype=float), n_resamples=n_resamples, seed=seed)


def against(published: float, low: float, high: float) -> str:
    """``reaches`` (the published number inside our CI), ``below`` or ``above`` (the whole CI on that side)."""
    if any(math.isnan(v) for v in (published, low, high)):
        return ""
    return "below" if high < published else "above" if low > published else "reaches"


def cross_check_table(runs: pd.DataFrame, training: pd.DataFrame, published: Sequence[Published] = PUBLISHED,
                      n_resamples: int = 10_000) -> pd.DataFrame:
    """One row per model and published source (one row without a source for a model no paper reports): our
    NDCG@10 and HR@10 with their CIs (pooled over seeds), the seeds' sd, the published numbers, whether ours reach
    them, and, where not, the measured reason. ``runs``: :func:`leave_one_out_table` rows with ``run_dir``."""
    out = []
    for model, part in runs.groupby("model", sort=False):
        entry: dict = {"model": model, "seeds": len(part), "seed_list": " ".join(map(str, part["seed"]))}
        for name in LOO_METRICS:
            if len(part) > 1:
                mean, low, high = pooled_interval(list(part["run_dir"]), name, n_resamples)
            else:
                mean, low, high = (float(part.iloc[0][f"test_{name}{s}"]) for s in ("", "_low", "_high"))
            entry.update({f"test_{name}": mean, f"test_{name}_low": low, f"test_{name}_high": high,
                          f"test_{name}_seed_sd": seed_summary(part[f"test_{name}"].to_numpy(dtype=float))[1]})
        mine = training[training["model"] == model] if len(training) else training
        refs = [p for p in published if p.model == model] or [None]
        for ref in refs:
            row = dict(entry)
            if ref is None:
                row.update({"source": "", "published_ndcg@10": math.nan, "published_hr@10": math.nan})
            else:
                row.update({"source": ref.paper.split(",")[0] + f" ({ref.repository})",
                            "published_ndcg@10": ref.ndcg10, "published_hr@10": ref.hr10})
            verdicts = []
            for name in LOO_METRICS:
                verdict = against(row[f"published_{name}"], row[f"test_{name}_low"], row[f"test_{name}_high"])
                row[f"{name}_vs_published"] = verdict
                verdicts.append(verdict)
            row["reason"] = ("no published figure" if ref is None else
                             shortfall_reason(mine) if "below" in verdicts else
                             "above the published figure" if "above" in verdicts else "")
            out.append(row)
    return pd.DataFrame(out)


# --------------------------------------------------------------------------- the data
def data_facts(source: pd.DataFrame, used: pd.DataFrame, min_item_users: int) -> dict:
    """Counts that tell our copy of the log from the literature's: ``source`` the prepared log (sorted by user and
    time), ``used`` what the runs trained on (``source`` less the items rated by fewer than ``min_item_users``
    users, when > 1). Items the literature's filter removes, and the test users whose test item is one of them."""
    counts = source.groupby("item_id")["user_id"].nunique()
    rare = set(counts[counts < LITERATURE_MIN_ITEM_USERS].index)
    last = source.groupby("user_id", sort=False).tail(1)
    return {"users": used["user_id"].nunique(), "items": used["item_id"].nunique(), "interactions": len(used),
            "source_items": source["item_id"].nunique(), "source_interactions": len(source),
            "rare_items": len(rare), "rare_interactions": int(source["item_id"].isin(rare).sum()),
            "rare_test_users": int(last["item_id"].isin(rare).sum()), "min_item_users": int(min_item_users)}


def protocol_differences(facts: Mapping, budget_minutes: float, hardware: str) -> list[str]:
    """Every difference between our runs and the published ones that remains, in words (with the counts of
    :func:`data_facts`)."""
    users, items, interactions = LITERATURE_COUNTS
    same = (facts["users"], facts["items"], facts["interactions"]) == LITERATURE_COUNTS
    if facts["min_item_users"] >= LITERATURE_MIN_ITEM_USERS:
        filtering = (f"**Item filtering: the literature's.** Items rated by fewer than {LITERATURE_MIN_ITEM_USERS} "
                     f"users are removed (SASRec's preprocessing, which every source used): {facts['items']:,} items, "
                     f"{facts['interactions']:,} interactions of {facts['users']:,} users"
                     + (f", the counts of the literature's copy (gSASRec-pytorch `datasets/ml1m/dataset_stats.json`)."
                        if same else f"; the literature's copy has {items:,} items and {interactions:,} "
                        "interactions: **not the same**."))
    else:
        filtering = (f"**Item filtering: none** (`--min-item-users {facts['min_item_users']}`): our copy keeps "
                     f"{facts['items']:,} items; the literature's removes the {facts['rare_items']:,} items rated by "
                     f"fewer than {LITERATURE_MIN_ITEM_USERS} users ({facts['rare_interactions']:,} interactions; "
                     f"{users:,} users, {items:,} items, {interactions:,} interactions remain), and "
                     f"{facts['rare_test_users']:,} of our test users have such an item as their test item.")
    return [
        filtering,
        "**The data copy: no timestamps, so time ties are listed, not measured.** The shared ML-1M "
        "(`../shared/data/ml-1m`, SOURCES.md) lost its timestamps; each user's order is that of a public BERT4Rec-style "
        "leave-one-out split (WHUIR/DiffuRec `dataset.pkl`), the same (user, item) pairs as the official file. Where a "
        "user's last ratings share one timestamp their order is a convention in every copy: SOURCES.md counts 1,386 "
        "users whose latest item by NCF's timestamps is not our last item, read there as ties at the last timestamp. "
        "The literature's `ml-1m.txt` (SASRec's, whose tie order is unknown) may hold another item last for such users, "
        "so the test and validation items can differ for up to that many users. Its effect is not measured: no "
        "timestamped copy is available here.",
        f"**Training budget and hardware.** Each of our runs had a {budget_text(budget_minutes)} budget of "
        f"wall-clock training ({hardware or 'hardware not recorded'}), or its config's epochs if fewer; the published runs trained to early stopping on "
        "GPUs (Klenitskiy & Vasilev's README: 486 s to 1,409 s, best epochs 53 to 197 on ML-1M). Where a run ended "
        "by the budget with validation still rising, the shortfall is measured to be the budget (table above).",
        "**Validation users.** SASRec, SASRec+, BERT4Rec and GPT-2 validate on every user, as Klenitskiy & Vasilev "
        "(`validation_size: 10000`); gSASRec on 512 sampled users, as its benchmark config (`N_VAL_USERS=512`); "
        "Petrov & Macdonald's BERT4Rec on 2,048. Ours stop early on NDCG@10 of the validation item, as Klenitskiy "
        "& Vasilev (`val_ndcg`) and gSASRec-pytorch (`val_metric = nDCG@10`), with the patience of each config.",
        "**Model settings.** Where a source's model differs from our config it is named in the sources table "
        "below (e.g. the gSASRec and SASRec checkpoints of gSASRec-pytorch use dropout 0.5 and 100 batches per "
        "epoch; Klenitskiy & Vasilev's BCE SASRec is 64-d with dropout 0.1, ours Kang & McAuley's 50-d with 0.2).",
        "**Implementations.** Ours are this repository's networks and training loop (bf16-mixed where the CPU has "
        "native bf16, see each run's hardware), not the sources' code; the SASRec+ and BERT4Rec settings follow "
        "Klenitskiy & Vasilev's configs, which the configs' headers cite.",
        "**Seeds and intervals.** Each published number is one training run without an interval; ours carry a "
        "user-bootstrap CI, and SASRec+ three training seeds, whose spread shows what one run's number is worth.",
    ]


# --------------------------------------------------------------------------- the report
def _ci(mean: float, low: float, high: float) -> str:
    return "" if math.isnan(mean) else f"{mean:.4f} [{low:.4f}, {high:.4f}]"


def _num(value) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.4f}"


def comparison_markdown(table: pd.DataFrame) -> str:
    lines = ["| model | seeds | our NDCG@10 [95 % CI] | our HR@10 [95 % CI] | published NDCG@10 | published HR@10 | "
             "source | NDCG@10 | HR@10 | why not reached |", "|---|---|---|---|---|---|---|---|---|---|"]
    for _, r in table.iterrows():
        cells = [MODEL_NAMES.get(r["model"], r["model"]), str(r["seeds"]),
                 _ci(r["test_ndcg@10"], r["test_ndcg@10_low"], r["test_ndcg@10_high"]),
                 _ci(r["test_hr@10"], r["test_hr@10_low"], r["test_hr@10_high"]),
                 _num(r["published_ndcg@10"]), _num(r["published_hr@10"]), r["source"] or "-",
                 f"**{r['ndcg@10_vs_published']}**" if r["ndcg@10_vs_published"] else "-",
                 f"**{r['hr@10_vs_published']}**" if r["hr@10_vs_published"] else "-", r["reason"]]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def seed_spread_markdown(runs: pd.DataFrame, table: pd.DataFrame) -> str:
    """Models with several seeds: each seed with its own user-bootstrap CI, the seeds' sd and range, and the pooled
    interval, so the seed spread stands beside the interval over users."""
    lines = []
    for model, part in runs.groupby("model", sort=False):
        if len(part) < 2:
            continue
        pooled = table[table["model"] == model].iloc[0]
        lines += [f"**{MODEL_NAMES.get(model, model)}, {len(part)} seeds**", "",
                  "| metric | " + " | ".join(f"seed {s} [95 % CI over users]" for s in part["seed"])
                  + " | sd over seeds | range over seeds | mean half-width of one seed's CI | seed mean [95 % CI] |",
                  "|---|" + "---|" * (len(part) + 4)]
        for name in LOO_METRICS:
            values = part[f"test_{name}"].to_numpy(dtype=float)
            half = float(np.mean((part[f"test_{name}_high"] - part[f"test_{name}_low"]) / 2))
            lines.append(
                f"| {name.upper()} | " + " | ".join(
                    _ci(r[f"test_{name}"], r[f"test_{name}_low"], r[f"test_{name}_high"]) for _, r in part.iterrows())
                + f" | {_num(pooled[f'test_{name}_seed_sd'])} | {values.max() - values.min():.4f} | {half:.4f} | "
                + _ci(pooled[f"test_{name}"], pooled[f"test_{name}_low"], pooled[f"test_{name}_high"]) + " |")
        lines.append("")
    return "\n".join(lines)


def training_markdown(training: pd.DataFrame) -> str:
    frame = training.copy()
    frame["label"] = [MODEL_NAMES.get(m, m) for m in frame["model"]]
    frame["minutes"] = frame["fit_seconds"].astype(float) / 60
    frame["ended"] = [how_it_ended(r) for _, r in frame.iterrows()]
    return markdown_table(frame, ["label", "seed", "epochs", "best_epoch", "minutes", "best_val_next_ndcg@10",
                                  "popularity", "ended", "hardware"],
                          ["model", "seed", "epochs", "best epoch", "training min", "best validation NDCG@10",
                           "popularity's", "ended by", "hardware"], {"minutes": 1})


def published_frame(published: Iterable[Published] = PUBLISHED) -> pd.DataFrame:
    return pd.DataFrame([{"model": p.model, "ndcg@10": p.ndcg10, "hr@10": p.hr10, "paper": p.paper,
                          "where": p.where, "repository": p.repository, "file": p.file, "commit": p.commit,
                          "setting": p.setting} for p in published])


def sources_markdown(published: Sequence[Published] = PUBLISHED) -> str:
    lines = ["| model | NDCG@10 | HR@10 | paper | where | file @ commit | their setting |",
             "|---|---|---|---|---|---|---|"]
    for p in published:
        lines.append(f"| {MODEL_NAMES.get(p.model, p.model)} | {p.ndcg10:.4f} | {p.hr10:.4f} | {p.paper} | {p.where} | "
                     f"github.com/{p.repository} `{p.file}` @ `{p.commit[:7]}` | {p.setting} |")
    return "\n".join(lines)


def write_cross_check_report(runs: pd.DataFrame, training: pd.DataFrame, out_dir: str | Path, *, dataset: str = "ML-1M",
                             command: str = "",
                             facts: Mapping, budget_minutes: float, hardware: str = "",
                             seconds_by_hardware: Optional[Mapping[str, float]] = None, quick: bool = False,
                             missing: Sequence[str] = (), n_resamples: int = 10_000,
                             published: Sequence[Published] = PUBLISHED) -> dict[str, Path]:
    """Write ``README.md``, ``cross_check.csv``, ``runs.csv``, ``training.csv`` and ``published.csv`` into
    ``out_dir``. ``runs``: :func:`leave_one_out_table` rows plus ``run_dir``; ``training``: one row per training run
    (:func:`seqrec.experiments.driver.training_record` plus :func:`validation_trend`)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    training = training.copy()
    for column in ("stopped_by", "rising", "gain", "window", "validations", "max_time_seconds", "popularity",
                   "plateau"):
        if column not in training:
            training[column] = None
    table = cross_check_table(runs, training, published, n_resamples)
    paths = {"cross_check": atomic_to_csv(table, out / "cross_check.csv", index=False),
             "runs": atomic_to_csv(runs.drop(columns=["run_dir"], errors="ignore"), out / "runs.csv", index=False),
             "published": atomic_to_csv(published_frame(published), out / "published.csv", index=False)}
    if len(training):
        paths["training"] = atomic_to_csv(training, out / "training.csv", index=False)
    test_users = runs["test_users"].dropna()
    text = [f"# {dataset} under leave-one-out: our models beside the published ML-1M numbers"
            + (" (quick smoke run)" if quick else ""), ""]
    if quick:
        text += ["A smoke test of the machinery on a small log with a budget of seconds, not a result: the published "
                 "numbers are ML-1M's and ours are not, so the verdicts below mean nothing here.", ""]
    if command:
        text += ["Produced by", "", "```", *(portable_command(line) for line in command.split("\n")), "```", ""]
    if seconds_by_hardware:
        total = sum(seconds_by_hardware.values())
        text += [f"Compute time of all runs (sum of each run's duration): {total / 60:.1f} min ("
                 + "; ".join(f"{name}: {sec / 60:.1f} min" for name, sec in
                             sorted(seconds_by_hardware.items(), key=lambda kv: -kv[1])) + ").", ""]
    if missing:
        text += [f"Not run yet, so left out of this report ({len(missing)} step(s)): " + "; ".join(missing) + ".", ""]
    text += [
        f"Protocol: leave-one-out on every user (`protocol=leave_one_out`): the last item is the test item, the one "
        f"before it the validation item, the test input holds the validation item; the whole catalogue is ranked with "
        f"seen items removed; Top-K. {int(test_users.iloc[0]) if len(test_users) else '?'} test users; "
        f"{facts['items']:,} items. Each model trains with its literature config (`src/configs/<model>_loo_train.yaml`) "
        f"for a {budget_text(budget_minutes)} budget of wall-clock time, or the config's epochs if fewer. 95 % CIs: bootstrap "
        f"over the test users ({n_resamples:,} resamples); with several seeds, each user's value is averaged over the "
        "seeds first. A model **reaches** a published figure when the figure lies inside our CI; **below**/**above** "
        "when the whole CI is on that side of it; where below, the reason is read from how its training ended.", "",
        "## Our numbers beside the published ones", "", comparison_markdown(table), ""]
    spread = seed_spread_markdown(runs, table)
    if spread:
        text += ["## Seed spread beside the user-bootstrap interval", "", spread]
    if len(training):
        text += ["## How each training ended", "",
                 "`stopped_by` from each run's `metrics.json`; \"still rising\" = a new best validation NDCG@10 among "
                 "the last quarter of its validations (at least 3) over the best before them.", "",
                 training_markdown(training), ""]
    text += ["## Protocol differences that remain", "",
             *[f"{i}. {line}" for i, line in enumerate(protocol_differences(facts, budget_minutes, hardware), 1)], "",
             "## The published numbers and where they come from", "",
             "Also in `published.csv`, from `src/seqrec/evaluation/published_loo.py`. Every source: leave-one-out on "
             "every user, full ranking with seen items removed, SASRec's preprocessed ML-1M (items rated by at least 5 "
             "users).", "", sources_markdown(published), "", "Not used:", "",
             *[f"- {line}" for line in NOT_USED], "",
             "Per-seed numbers: `runs.csv`; the table above: `cross_check.csv`; each training run: `training.csv`.", ""]
    paths["readme"] = atomic_write_text(out / "README.md", "\n".join(text))
    return paths
