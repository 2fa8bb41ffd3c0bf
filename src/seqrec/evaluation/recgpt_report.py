"""RecGPT's claims, checked on the long-term protocol: every pre-trained and prompt-tuned variant against the
pre-trained model's Top-K, on the same test users.

Rows come from the experiment summary (:mod:`seqrec.evaluation.report`): models ``<base>`` (pre-trained) and
``<base>-PT-<mode>-P<n>`` (prompt-tuned, :class:`seqrec.experiments.plan.RecGPTPlan`). For each variant x strategy
setting: test NDCG@10, recall@10 at held-out positions 0 and 9 and late positions 5-9, and the per-user difference
of NDCG@10 to the base model's Top-K (same seed; pooled over the seeds a variant has, each user's difference
averaged over seeds first) with a bootstrap CI and a sign-flip test, Holm-corrected over the rows of one base
model. ``ahead`` / ``behind`` only when the CI excludes 0 and the adjusted p < 0.05. Prompt-tuned rows are also
compared with the control (``mode=none``: the same fine-tuning without prompts) under the same strategy setting:
the prompts' own effect, separated from that of training on (e.g. with a new loss).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from seqrec.evaluation.report import K, N_RESAMPLES, POS_COLUMNS, _user_values, plot_position_panels, pooled_difference, \
    write_stage_report
from seqrec.evaluation.stats import holm, verdict_from_test

CONTROL = "fine-tuned, no prompts"
VARIANT = re.compile(r"^(?P<base>.+?)-PT-(?P<mode>[a-z_]+)-P(?P<length>\d+)$")
METRIC = f"ndcg@{K}"


def split_label(model: str) -> tuple[str, str]:
    """``("GPT", "replace_last P=1")`` for ``GPT-PT-replace_last-P1``; ``("GPT", "pre-trained")`` for ``GPT``."""
    hit = VARIANT.match(model)
    if hit is None:
        return model, "pre-trained"
    if hit["mode"] == "none":
        return hit["base"], CONTROL
    return hit["base"], f"{hit['mode']} P={hit['length']}"


def recgpt_table(summary: pd.DataFrame, n_resamples: int = N_RESAMPLES, seed: int = 0) -> pd.DataFrame:
    """One row per base model x variant x strategy setting (see the module doc); empty without prompt-tuned runs."""
    frame = summary.copy()
    frame[["base", "variant"]] = [split_label(m) for m in frame["model"]]
    tuned_bases = set(frame.loc[frame["variant"] != "pre-trained", "base"])
    cache: dict = {}
    rows = []
    for base in sorted(tuned_bases):
        part = frame[frame["base"] == base]
        reference = {s: _user_values(r, cache) for s, r in
                     part[(part["variant"] == "pre-trained") & (part["strategy"] == "topk")][["seed", "run_dir"]].values}
        control = {(g, p, s): _user_values(r, cache) for g, p, s, r in
                   part[part["variant"] == CONTROL][["strategy", "params", "seed", "run_dir"]].values}
        block = []
        for (variant, strategy, params), group in part.groupby(["variant", "strategy", "params"], sort=False):
            diffs, seeds, vs_control = [], [], []
            for s, run_dir in group[["seed", "run_dir"]].values:
                ours, ref = _user_values(run_dir, cache), reference.get(s)
                if ours is None or ref is None:
                    continue
                diffs.append((ours[METRIC] - ref[METRIC]).to_numpy())
                seeds.append(int(s))
                same = control.get((strategy, params, s))
                if variant not in ("pre-trained", CONTROL) and same is not None:
                    vs_control.append((ours[METRIC] - same[METRIC]).to_numpy())
            row = {"model": base, "variant": variant, "strategy": strategy, "params": params,
                   "seeds": " ".join(map(str, seeds)) or "-", f"test_{METRIC}": group[f"test_{METRIC}"].mean(),
                   "recall_pos0": group[POS_COLUMNS[0]].mean(), "recall_pos9": group[POS_COLUMNS[9]].mean(),
                   "late_recall": group["late_recall"].mean()}
            if diffs:
                d = pooled_difference(diffs, n_resamples, seed)
                row.update(diff_vs_topk=d["diff"], low=d["low"], high=d["high"], p=d["p"])
            if vs_control and len(vs_control) == len(diffs):  # the prompts' own effect: against the control, same seeds
                d = pooled_difference(vs_control, n_resamples, seed)
                row.update(diff_vs_control=d["diff"], control_low=d["low"], control_high=d["high"], control_p=d["p"])
            block.append(row)
        compared = [r for r in block if "p" in r and not (r["variant"] == "pre-trained" and r["strategy"] == "topk")]
        for r, adjusted in zip(compared, holm([r["p"] for r in compared]) if compared else []):
            r["p_holm"] = float(adjusted)
            r["verdict"] = verdict_from_test(r["low"], r["high"], r["p_holm"])
        prompted = [r for r in block if "control_p" in r]
        for r, adjusted in zip(prompted, holm([r["control_p"] for r in prompted]) if prompted else []):
            r["control_p_holm"] = float(adjusted)
            r["verdict_vs_control"] = verdict_from_test(r["control_low"], r["control_high"], r["control_p_holm"])
        rows += block
    return pd.DataFrame(rows)


def _fmt(value, digits: int = 4) -> str:
    return "" if value is None or (isinstance(value, float) and np.isnan(value)) else f"{value:.{digits}f}"


def recgpt_markdown(table: pd.DataFrame) -> str:
    lines = [f"| model | variant | strategy | setting | seeds | test NDCG@{K} | vs pre-trained Top-K [95 % CI] | verdict | "
             "vs fine-tuned without prompts, same strategy [95 % CI] | verdict | recall@10 pos 0 | pos 9 | late (5-9) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in table.to_dict("records"):
        diff = r.get("diff_vs_topk", np.nan)
        ci = "" if np.isnan(diff) else f"{diff:+.4f} [{r['low']:+.4f}, {r['high']:+.4f}]"
        verdict = r.get("verdict") if isinstance(r.get("verdict"), str) else ""
        c = r.get("diff_vs_control", np.nan)
        c_ci = "" if c is None or np.isnan(c) else f"{c:+.4f} [{r['control_low']:+.4f}, {r['control_high']:+.4f}]"
        c_verdict = r.get("verdict_vs_control") if isinstance(r.get("verdict_vs_control"), str) else ""
        lines.append(f"| {r['model']} | {r['variant']} | {r['strategy']} | {r['params'] or '-'} | {r['seeds']} | "
                     f"{_fmt(r[f'test_{METRIC}'])} | {ci} | {verdict} | {c_ci} | {c_verdict} | {_fmt(r['recall_pos0'])} | "
                     f"{_fmt(r['recall_pos9'])} | {_fmt(r['late_recall'])} |")
    return "\n".join(lines)


def plot_recgpt(summary: pd.DataFrame, path: Path, main: str = "replace_last P=1") -> Optional[Path]:
    """Recall@10 by held-out position: pre-trained Top-K and two-stage, prompt-tuned (``main``) Top-K, two-stage and
    RRA, one panel per base model (mean over seeds)."""
    frame = summary.copy()
    frame[["base", "variant"]] = [split_label(m) for m in frame["model"]]

    def draw(ax, base):
        part = frame[frame["base"] == base]
        for variant, style in (("pre-trained", "--"), (CONTROL, ":"), (main, "-")):
            for strategy, params in (("topk", ""), ("two_stage", "first=9"), ("rra", None)):
                rows = part[(part["variant"] == variant) & (part["strategy"] == strategy)]
                if params is not None:
                    rows = rows[rows["params"] == params]
                if not len(rows):
                    continue
                ax.plot(range(10), rows[POS_COLUMNS].mean().to_numpy(), style, marker="o", markersize=3,
                        label=f"{variant}: {strategy} {params or ''}".strip())

    return plot_position_panels(sorted(set(frame.loc[frame["variant"] != "pre-trained", "base"])), path, draw)


def write_recgpt_report(summary: pd.DataFrame, out_dir: Path, n_resamples: int = N_RESAMPLES) -> dict[str, Path]:
    """``recgpt.csv``, ``recgpt.md`` and ``recgpt.png`` in ``out_dir`` (nothing without prompt-tuned runs)."""
    table = recgpt_table(summary, n_resamples=n_resamples)
    return write_stage_report("recgpt", "RecGPT on the long-term protocol", table,
                              recgpt_markdown(table) if len(table) else "", out_dir,
                              lambda path: plot_recgpt(summary, path))
