"""gSASRec's start-up plateau, measured: how many optimizer steps each variant spends at popularity level.

gSASRec (256 negatives, gBCE t = 0.75) first learns item popularity and stays there for thousands of optimizer
steps before validation NDCG climbs (see ../shared/PROTOCOL.md). This trains the same network, seed and split
under each variant for a fixed budget of steps and prints, per variant, the **kick-off step**: the first
validation whose NDCG@10 (next item, validation users) reaches ``--factor`` (default 1.25) times the popularity
baseline's on the same users -- a level popularity alone cannot reach -- and the best NDCG within the budget.

    python scripts/bench/bench_gsasrec_plateau.py --data data/ml-100k.csv --steps 1500 [--variants baseline t_warmup ...]

Variants (extra training overrides, on top of ``gSASRec_train``):
  default      the config as it is (negatives and t warmed up over 500 steps)
  baseline     without any warm-up (gSASRec as the gBCE authors train it)
  t_warmup     gbce_t ramped from 0 (plain BCE) to 0.75 over the first --warmup steps
  neg_warmup   the negatives ramped from 1 to 256 over the first --warmup steps
  reference    the gSASRec code's tables: separate output embeddings, N(0, 1) init, no sqrt(d) input scaling
  lr_warmup    linear LR warm-up over --warmup steps (scheduler=warmup)
  t_warmup+reference, ...: variants joined with '+'
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # scripts/bench/<this> -> the repository

from bench_common import steps_to as kick_off  # (the kick-off step: the first validation at a level)
from seqrec.cli.entry import quiet_third_party
from seqrec.cli.flags import renamed_flag
from seqrec.core.paths import REPO_ROOT
from seqrec.evaluation.baselines import PLATEAU_FACTOR

#: every variant but ``default`` starts from gSASRec without any warm-up, the config before its plateau fix
NO_WARMUP = ["seqrec_module.loss.t_warmup_steps=0", "seqrec_module.loss.neg_warmup_steps=0"]
VARIANTS = {
    "default": None,  # gSASRec_train as it is
    "baseline": lambda w: [],
    "t_warmup": lambda w: [f"seqrec_module.loss.t_warmup_steps={w}"],
    "neg_warmup": lambda w: [f"seqrec_module.loss.neg_warmup_steps={w}"],
    "reference": lambda w: ["model_params.reuse_item_embeddings=false", "model_params.embedding_init=normal",
                            "model_params.scale_embeddings=false"],
    "lr_warmup": lambda w: ["scheduler=warmup", f"seqrec_module.scheduler.warmup_steps={w}"],
}


def overrides_of(name: str, warmup: int) -> list[str]:
    parts = name.split("+")
    unknown = [p for p in parts if p not in VARIANTS]
    if unknown:
        raise SystemExit(f"error: unknown variant {unknown[0]!r}; choose from {', '.join(VARIANTS)} (join with '+')")
    if parts == ["default"]:
        return []
    if "default" in parts:
        raise SystemExit("error: variant 'default' (the config as it is) cannot be combined with others")
    return NO_WARMUP + [o for p in parts for o in VARIANTS[p](warmup)]


def popularity_level(cfg) -> float:
    """Validation NDCG@10 (first held-out item) of the popularity baseline on the training run's validation users."""
    from seqrec.data.prepare import DataSpec, prepare_split
    from seqrec.evaluation.baselines import popularity_validation_ndcg

    return popularity_validation_ndcg(prepare_split(DataSpec.of(cfg)))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(REPO_ROOT / "data" / "ml-100k.csv"),
                    help="prepared interaction CSV")
    ap.add_argument("--steps", type=int, default=1500, help="optimizer steps per variant")
    ap.add_argument("--warmup", type=int, default=500, help="warm-up steps of t_warmup and lr_warmup")
    ap.add_argument("--factor", type=float, default=PLATEAU_FACTOR,
                    help=f"kick-off: validation NDCG >= factor x popularity's (default {PLATEAU_FACTOR})")
    ap.add_argument("--variants", nargs="+", default=["baseline", "neg_warmup+t_warmup"])
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--train-override", action="append", default=[], metavar="KEY=VALUE",
                    help="extra training override (repeatable)")
    renamed_flag(ap, "--override", "--train-override")
    args = ap.parse_args()
    if not Path(args.data).is_file():
        print(f"error: {args.data} does not exist; prepare it with python scripts/prepare_data.py", file=sys.stderr)
        return 1
    for name in args.variants:
        overrides_of(name, args.warmup)
    quiet_third_party()
    import pandas as pd

    from bench_common import step_budget, train_histories
    from seqrec.experiments.plan import compose

    base = step_budget(args.data, args.seed, args.steps, args.train_override)
    level = args.factor * popularity_level(compose("gSASRec_train", base))
    print(f"popularity val NDCG@10 {level / args.factor:.4f}; kick-off level {args.factor} x = {level:.4f}", flush=True)
    rows = []
    variants = {name: overrides_of(name, args.warmup) for name in args.variants}
    for name, history, seconds in train_histories("gSASRec_train", base, variants):
        rows.append({
            "variant": name, "kick_off_step": kick_off(history, level),
            "best_ndcg": round(float(history["val_next_ndcg@10"].max()), 4),
            "best_step": int(history.loc[history["val_next_ndcg@10"].idxmax(), "step"]) + 1,
            "seconds": round(seconds),
        })
        print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    print(f"\n{args.data}, {args.steps} steps, seed {args.seed}, warm-up {args.warmup}:")
    print(table.to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
