"""A new experiment report against a reference report: does each model's test NDCG@10, per strategy family, stay
inside the reference's interval, and are the paired verdicts the same?

A report is a folder written by :mod:`seqrec.evaluation.report` (``summary.csv``: every run with its 95 % bootstrap
CI over users; ``comparisons.csv``: the setting chosen on validation per model, seed and family, with its paired
verdict against Top-K, and the seeds pooled). A reference may also be such a folder as a git revision holds it
(``<rev>:<path>``), so a report can be checked against the one it replaces.

For each model and family (``topk`` and every family of ``comparisons.csv``) the value is the pooled one (the mean
over seeds); its interval is, for one seed, that run's CI, and for several seeds the pooled value plus or minus the
mean half-width of the seeds' CIs (the CI of a mean over seeds of the same users is not in a report; the seeds'
half-widths are what each seed's value was known to). The verdicts compared are the pooled ones, per horizon.
"""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd

from seqrec.core.errors import UserError

METRIC = "test_ndcg@10"
HORIZONS = ("next", "late", "overall")


def read_report(where: str | Path, name: str) -> pd.DataFrame:
    """``name`` (a CSV) of the report at ``where``: a folder, or ``<rev>:<path>`` of this git repository."""
    text = str(where)
    folder = Path(text)
    if not folder.is_dir() and ":" in text:
        rev, path = text.split(":", 1)
        res = subprocess.run(["git", "show", f"{rev}:{path.rstrip('/')}/{name}"], capture_output=True, text=True)
        if res.returncode:
            raise UserError(f"{text}: git has no {name} there ({res.stderr.strip().splitlines()[-1][:120]}); give a "
                            "report folder or <revision>:<folder>")
        return pd.read_csv(io.StringIO(res.stdout))
    if not (folder / name).is_file():
        raise UserError(f"{text}: no {name} there; give a report folder written by reproduce_paper.py")
    return pd.read_csv(folder / name)


def family_values(where: str | Path, models=None) -> pd.DataFrame:
    """One row per model and family: ``value`` (pooled test NDCG@10), ``low``/``high`` (module docstring),
    ``seeds``, ``settings`` (the chosen ones), and the pooled verdict per horizon (``verdict_<horizon>``)."""
    summary, comparisons = read_report(where, "summary.csv"), read_report(where, "comparisons.csv")
    summary = summary.assign(seed=summary["seed"].astype(str), params=summary["params"].fillna("-").astype(str))
    comparisons = comparisons.assign(seed=comparisons["seed"].astype(str))
    rows = []
    for model in sorted(set(comparisons["model"]) if models is None else models):
        mine = comparisons[comparisons["model"] == model]
        if mine.empty:
            raise UserError(f"{where}: no comparisons for model {model}")
        seeds = sorted(s for s in mine["seed"].unique() if s != "pooled")
        overall = mine[mine["horizon"] == "overall"]
        for family in ["topk", *dict.fromkeys(overall["family"])]:
            chosen = [("topk", "-")] * len(seeds) if family == "topk" else [
                tuple(overall[(overall["family"] == family) & (overall["seed"] == s)][["strategy", "setting"]].iloc[0])
                for s in seeds]
            runs = [summary[(summary["model"] == model) & (summary["seed"] == s) & (summary["strategy"] == st)
                            & (summary["params"] == setting)] for s, (st, setting) in zip(seeds, chosen)]
            if any(len(r) != 1 for r in runs):
                raise UserError(f"{where}: summary.csv does not hold exactly one run per seed for {model} {family}")
            low, high = (np.array([float(r[f"{METRIC}_{end}"].iloc[0]) for r in runs]) for end in ("low", "high"))
            values = np.array([float(r[METRIC].iloc[0]) for r in runs])
            value = float(values.mean())
            if len(seeds) == 1:
                interval = (float(low[0]), float(high[0]))
            else:
                half = float(((high - low) / 2).mean())
                interval = (value - half, value + half)
            pooled = mine[(mine["seed"] == "pooled") if len(seeds) > 1 else (mine["seed"] == seeds[0])]
            verdicts = {}
            for horizon in HORIZONS:
                hit = pooled[(pooled["family"] == family) & (pooled["horizon"] == horizon)]
                verdicts[f"verdict_{horizon}"] = "" if family == "topk" or hit.empty else str(hit["verdict"].iloc[0])
            rows.append({"model": model, "family": family, "value": value, "low": interval[0], "high": interval[1],
                         "seeds": len(seeds), "settings": " / ".join(dict.fromkeys(s for _, s in chosen)), **verdicts})
    return pd.DataFrame(rows)


def check_against(new: str | Path, references: dict[str, str]) -> pd.DataFrame:
    """``new``'s families beside each model's reference (``references``: model -> report): the new pooled value,
    the reference's value and interval, whether it lies inside, and whether each pooled verdict is the same."""
    fresh = family_values(new, list(references))
    rows = []
    for model, where in references.items():
        ref = family_values(where, [model]).set_index("family")
        for _, row in fresh[fresh["model"] == model].iterrows():
            if row["family"] not in ref.index:
                continue  # a family the reference did not run
            r = ref.loc[row["family"]]
            same = [h for h in HORIZONS if row[f"verdict_{h}"] == r[f"verdict_{h}"]]
            changed = [f"{h}: {r[f'verdict_{h}']} -> {row[f'verdict_{h}']}" for h in HORIZONS if h not in same]
            rows.append({"model": model, "family": row["family"], "seeds": row["seeds"], "new": row["value"],
                         "reference": r["value"], "reference_low": r["low"], "reference_high": r["high"],
                         "reference_seeds": r["seeds"], "inside": bool(r["low"] <= row["value"] <= r["high"]),
                         "verdicts": "same" if not changed else "; ".join(changed), "reference_report": str(where)})
    return pd.DataFrame(rows)


def format_check(table: pd.DataFrame) -> str:
    """A markdown table of :func:`check_against`'s rows."""
    lines = ["| model | family | new NDCG@10 (seeds) | reference [interval] (seeds) | inside | paired verdicts |",
             "|---|---|---|---|---|---|"]
    for _, r in table.iterrows():
        lines.append(f"| {r['model']} | {r['family']} | {r['new']:.4f} ({r['seeds']}) | {r['reference']:.4f} "
                     f"[{r['reference_low']:.4f}, {r['reference_high']:.4f}] ({r['reference_seeds']}) | "
                     f"{'yes' if r['inside'] else '**no**'} | {r['verdicts']} |")
    return "\n".join(lines)
