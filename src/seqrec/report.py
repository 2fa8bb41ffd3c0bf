"""Tables, plots and a README from finished experiment runs (see :mod:`seqrec.experiment`).

Input is one row per model x strategy built from the runs' ``metrics.json``; outputs are

* ``summary.csv`` -- one row per model x strategy (test metrics, per-position recall, beyond-accuracy);
* ``training.csv`` -- one row per model (epochs, best epoch, seconds per epoch, best validation NDCG);
* ``per_position.png`` -- recall@10 by held-out position, one panel per model, one line per strategy
  (for a grid, the setting with the best *validation* NDCG, so test numbers are not used to choose);
* ``README.md`` -- the tables, the reference numbers side by side and whether the paper's claim holds.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable, Mapping, Optional, Sequence

import numpy as np
import pandas as pd

from seqrec.data.io import atomic_to_csv, atomic_write_text
from seqrec.errors import require

K = 10
POSITIONS = range(10)
LATE = range(5, 10)  # "long-term": held-out positions 5..9
POS_COLUMNS = [f"recall@{K}_pos{p}" for p in POSITIONS]
SUMMARY_COLUMNS = [
    "model", "strategy", "params", f"test_map@{K}", f"test_ndcg@{K}", f"test_recall@{K}", *POS_COLUMNS,
    f"coverage@{K}", f"novelty@{K}", f"entropy@{K}", f"val_ndcg@{K}", "ms_per_user", "train_task", "predict_task",
]
TRAINING_COLUMNS = ["model", "loss", "epochs", "best_epoch", "seconds_per_epoch", "fit_seconds",
                    f"best_val_ndcg@{K}", "hardware", "train_task"]
GENERATION = ("greedy", "beam", "sampling", "rra", "ra", "two_stage")
MULTI = ("rra", "ra")

# PROTOCOL.md: public code's earlier results (ML-1M, test users, K = 10), and the original paper code run on
# this machine (order-only ML-1M), as (MAP, NDCG, Recall).
REFERENCE: dict[str, list[tuple[str, str, str, tuple[float, float, float]]]] = {
    "ml-1m": [
        ("SASRec", "topk", "public code (BCE)", (0.0704, 0.1513, 0.1407)),
        ("BERT4Rec", "topk", "public code", (0.0812, 0.1668, 0.1546)),
        ("GPT", "topk", "original code, this machine", (0.0893, 0.1771, 0.1627)),
        ("GPT", "greedy", "original code, this machine", (0.0845, 0.1642, 0.1413)),
        ("GPT", "rra", "original code, this machine (T=0.3 N=20 top_k=50)", (0.0951, 0.1857, 0.1701)),
    ],
}


def summary_row(model: str, strategy: str, params: str, metrics: Mapping[str, float],
                train_task: str = "", predict_task: str = "") -> dict:
    """One summary row from a predict run's ``metrics.json`` (keys ``test_*`` and ``val_*``)."""
    row = {"model": model, "strategy": strategy, "params": params}
    for name in (f"map@{K}", f"ndcg@{K}", f"recall@{K}"):
        row[f"test_{name}"] = metrics.get(f"test_{name}", math.nan)
    for name in (*POS_COLUMNS, f"coverage@{K}", f"novelty@{K}", f"entropy@{K}"):
        row[name] = metrics.get(f"test_{name}", math.nan)
    row[f"val_ndcg@{K}"] = metrics.get(f"val_ndcg@{K}", math.nan)
    row["ms_per_user"] = metrics.get("test_ms_per_user", math.nan)
    row["train_task"], row["predict_task"] = train_task, predict_task
    return row


def build_summary(rows: Iterable[Mapping]) -> pd.DataFrame:
    frame = pd.DataFrame(list(rows))
    require(len(frame) > 0, "no finished predict runs to summarise")
    missing = [c for c in SUMMARY_COLUMNS if c not in frame.columns]
    require(not missing, f"summary rows lack columns {missing}")
    return frame[SUMMARY_COLUMNS].reset_index(drop=True)


def best_per_strategy(summary: pd.DataFrame) -> pd.DataFrame:
    """For each model x strategy family, the row with the highest validation NDCG (first on ties)."""
    order = summary.assign(_i=np.arange(len(summary)))
    best = order.sort_values([f"val_ndcg@{K}", "_i"], ascending=[False, True], kind="stable")
    best = best.drop_duplicates(["model", "strategy"]).sort_values("_i").drop(columns="_i")
    return best.reset_index(drop=True)


def _label(row: Mapping) -> str:
    return f"{row['strategy']} {row['params']}".strip()


def plot_per_position(summary: pd.DataFrame, path: str | Path, title: str = "") -> Path:
    """recall@10 by held-out position: one panel per model, one line per strategy (best setting on validation)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    best = best_per_strategy(summary)
    models = list(dict.fromkeys(best["model"]))
    cols = min(2, len(models))
    rows = math.ceil(len(models) / cols)
    fig = Figure(figsize=(6.5 * cols, 4.2 * rows))
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False, sharey=True)
    for ax, model in zip(axes.flat, models):
        for _, row in best[best["model"] == model].iterrows():
            style = "-" if row["strategy"] in MULTI else ("--" if row["strategy"] == "topk" else ":")
            ax.plot(list(POSITIONS), [row[c] for c in POS_COLUMNS], style, marker="o", ms=3, label=_label(row))
        ax.set_title(model)
        ax.set_xlabel("held-out position (0 = next item)")
        ax.set_ylabel(f"recall@{K}")
        ax.set_xticks(list(POSITIONS))
        ax.grid(True, alpha=0.3)
        ax.set_ylim(bottom=0)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(models):]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=110)
    return path


def late_recall(row: Mapping) -> float:
    return float(np.mean([row[f"recall@{K}_pos{p}"] for p in LATE]))


def claim_check(summary: pd.DataFrame) -> list[str]:
    """Per model: is generation ahead of Top-K at late positions, and is multi-sequence the best long-term?

    Strategies in a grid are represented by their best setting on *validation* NDCG.
    """
    best = best_per_strategy(summary)
    lines = []
    for model in dict.fromkeys(best["model"]):
        part = best[best["model"] == model].set_index("strategy", drop=False)
        if "topk" not in part.index or not any(s in part.index for s in GENERATION):
            continue
        top = part.loc["topk"]
        gen = part[part["strategy"].isin(GENERATION)]
        late = gen.apply(late_recall, axis=1)
        lead = gen.loc[late.idxmax()]
        late_top = late_recall(top)
        ahead = late.max() > late_top
        overall = part.sort_values(f"test_ndcg@{K}", ascending=False, kind="stable").iloc[0]
        multi_best = overall["strategy"] in MULTI
        lines.append(
            f"**{model}**: generation {'is' if ahead else 'is not'} ahead of Top-K at late positions "
            f"(mean recall@{K} over positions 5-9: best generation {_label(lead)} {late.max():.4f} vs Top-K "
            f"{late_top:.4f}); next item (position 0): Top-K {top[POS_COLUMNS[0]]:.4f} vs {_label(lead)} "
            f"{lead[POS_COLUMNS[0]]:.4f}. Best test NDCG@{K}: {_label(overall)} {overall[f'test_ndcg@{K}']:.4f} "
            f"({'multi-sequence' if multi_best else 'not multi-sequence'}; Top-K {top[f'test_ndcg@{K}']:.4f})."
        )
    return lines


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


def reference_table(dataset: str, summary: pd.DataFrame) -> str:
    """Reference numbers next to ours (for grids, our setting with the best validation NDCG)."""
    refs = REFERENCE.get(dataset)
    if not refs:
        return ""
    best = best_per_strategy(summary).set_index(["model", "strategy"])
    lines = ["| model | strategy | reference | ref MAP | ref NDCG | ref Recall | our MAP | our NDCG | our Recall | NDCG vs ref |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for model, strategy, source, (m, n, r) in refs:
        ours = best.loc[(model, strategy)] if (model, strategy) in best.index else None
        cells = ["", "", "", ""] if ours is None else [
            _fmt(ours[f"test_map@{K}"]), _fmt(ours[f"test_ndcg@{K}"]), _fmt(ours[f"test_recall@{K}"]),
            f"{100 * (ours[f'test_ndcg@{K}'] / n - 1):+.1f} %",
        ]
        lines.append(f"| {model} | {strategy} | {source} | {m:.4f} | {n:.4f} | {r:.4f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_report(summary: pd.DataFrame, out_dir: str | Path, dataset: str, command: str = "",
                 training: Optional[pd.DataFrame] = None, elapsed_seconds: Optional[float] = None,
                 seconds_by_hardware: Optional[dict[str, float]] = None) -> dict[str, Path]:
    """Write summary.csv, training.csv, per_position.png and README.md into ``out_dir``.

    ``elapsed_seconds``: the summed duration of all runs; ``seconds_by_hardware`` splits it by what the
    runs ran on (each run's ``hardware`` in ``run.json``).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"summary": atomic_to_csv(summary, out / "summary.csv", index=False)}
    if training is not None and len(training):
        paths["training"] = atomic_to_csv(training, out / "training.csv", index=False)
    paths["plot"] = plot_per_position(summary, out / "per_position.png", title=f"{dataset}: recall@{K} by position")

    text = [f"# Results: {dataset}", ""]
    if command:
        text += ["Produced by", "", "```", command, "```", ""]
    if elapsed_seconds is not None:
        line = f"Compute time of all runs (sum of each run's duration): {elapsed_seconds / 60:.1f} min"
        if seconds_by_hardware:
            line += " (" + "; ".join(f"{name}: {sec / 60:.1f} min" for name, sec in
                                     sorted(seconds_by_hardware.items(), key=lambda kv: -kv[1])) + ")"
        text += [line + ".", ""]
    text += ["Test users, K = 10. Grids (RRA, RA over temperature T and sequences N) are listed in full; the plot and "
             "the checks use, per strategy, the setting with the best validation NDCG@10.", ""]
    checks = claim_check(summary)
    if checks:
        text += ["## Does the paper's claim hold?", "", *[f"- {line}" for line in checks], ""]
    ref = reference_table(dataset, summary)
    if ref:
        text += ["## Against the reference numbers", "", ref, ""]
    text += ["## recall@10 by held-out position", "", "![per-position recall](per_position.png)", ""]
    if training is not None and len(training):
        text += ["## Training", "", markdown_table(
            training, TRAINING_COLUMNS[:-1],
            ["model", "loss", "epochs", "best epoch", "s / epoch", "fit s", "best val NDCG@10", "hardware"],
            {"seconds_per_epoch": 1, "fit_seconds": 0},
        ), ""]
    shown = ["model", "strategy", "params", f"test_map@{K}", f"test_ndcg@{K}", f"test_recall@{K}",
             POS_COLUMNS[0], POS_COLUMNS[-1], f"coverage@{K}", f"novelty@{K}", f"val_ndcg@{K}", "ms_per_user"]
    text += ["## All runs", "", markdown_table(
        summary, shown,
        ["model", "strategy", "params", "MAP", "NDCG", "Recall", "pos 0", "pos 9", "coverage", "novelty", "val NDCG",
         "ms/user"],
        {f"novelty@{K}": 2, "ms_per_user": 2},
    ), "", "Per-position recall for every run is in `summary.csv`.", ""]
    paths["readme"] = atomic_write_text(out / "README.md", "\n".join(text))
    return paths
