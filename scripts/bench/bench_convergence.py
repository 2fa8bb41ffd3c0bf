"""How fast a model converges under training variants, measured on the same budget of optimizer steps.

Trains one training config (default ``BERT4Rec_train``) on the same data, split and seed once per variant, for
``--steps`` optimizer steps without early stopping, and prints per variant its validation NDCG@10 (next item,
validation users) at each quarter of the budget, its best and the step of that best, and **steps to the first
variant's best**: the first validation at or above the best the first variant (the reference, normally
``default``) reached within the budget -- how much sooner a variant gets where the reference ends.

    python scripts/bench/bench_convergence.py --data data/ml-1m.csv --steps 3000 \
        --variants default lr_warmup+lr2x pre_ln+lr2x betas98

Variants (extra training overrides, joined with '+'):
  default    the config as it is (BERT4Rec: post-LN, Adam betas (0.9, 0.999), LR 1e-3, no warm-up)
  lr_warmup  linear LR warm-up over --warmup steps (scheduler=warmup)
  lr2x       twice the config's learning rate
  betas98    Adam betas (0.9, 0.98) (BERT's and most transformer recipes')
  pre_ln     pre-LN blocks + a final LayerNorm (BERT4Rec's model_params.layer_norm=pre)
  mask04     mask rate 0.4 instead of 0.2 (BERT4Rec: twice the targets per window)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # scripts/bench/<this> -> the repository

from bench_common import steps_to
from seqrec.cli.entry import quiet_third_party
from seqrec.cli.flags import renamed_flag
from seqrec.core.paths import REPO_ROOT

VARIANTS = {
    "default": lambda cfg, w: [],
    "lr_warmup": lambda cfg, w: ["scheduler=warmup", f"seqrec_module.scheduler.warmup_steps={w}"],
    "lr2x": lambda cfg, w: [f"seqrec_module.lr={2 * float(cfg.seqrec_module.lr):g}"],
    "betas98": lambda cfg, w: ["seqrec_module.optimizer.betas=[0.9,0.98]"],
    "pre_ln": lambda cfg, w: ["model_params.layer_norm=pre"],
    "mask04": lambda cfg, w: ["train_dataset.mask_rate=0.4"],
}


def variant_names(name: str) -> list[str]:
    parts = name.split("+")
    unknown = [p for p in parts if p not in VARIANTS]
    if unknown:
        raise SystemExit(f"error: unknown variant {unknown[0]!r}; choose from {', '.join(VARIANTS)} (join with '+')")
    return parts


def at_step(history, step: int) -> float | None:
    """Validation NDCG@10 of the last validation at or before ``step`` (None: none yet)."""
    done = history[(history["step"] + 1 <= step) & history["val_next_ndcg@10"].notna()]  # rows without a validation
    return None if done.empty else round(float(done["val_next_ndcg@10"].iloc[-1]), 4)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="BERT4Rec_train", help="training config (src/configs/<name>.yaml)")
    ap.add_argument("--data", default=str(REPO_ROOT / "data" / "ml-1m.csv"),
                    help="prepared interaction CSV")
    ap.add_argument("--steps", type=int, default=3000, help="optimizer steps per variant")
    ap.add_argument("--warmup", type=int, default=500, help="warm-up steps of lr_warmup")
    ap.add_argument("--variants", nargs="+", default=["default", "lr_warmup+lr2x", "pre_ln+lr2x", "betas98"],
                    help="the first is the reference of 'steps to reference best'")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--train-override", action="append", default=[], metavar="KEY=VALUE",
                    help="extra training override (repeatable)")
    renamed_flag(ap, "--override", "--train-override")
    ap.add_argument("--out", help="write every variant's validation history to this CSV")
    args = ap.parse_args()
    if not Path(args.data).is_file():
        print(f"error: {args.data} does not exist; prepare it with python scripts/prepare_data.py", file=sys.stderr)
        return 1
    for name in args.variants:
        variant_names(name)
    quiet_third_party()
    import pandas as pd

    from bench_common import step_budget, train_histories
    from seqrec.experiments.plan import compose

    base = step_budget(args.data, args.seed, args.steps, args.train_override)
    cfg = compose(args.config, base)
    variants = {name: [o for part in variant_names(name) for o in VARIANTS[part](cfg, args.warmup)]
                for name in args.variants}
    quarters = [args.steps * q // 4 for q in (1, 2, 3, 4)]
    rows, histories, reference = [], [], None
    for name, history, seconds in train_histories(args.config, base, variants):
        best = float(history["val_next_ndcg@10"].max())
        reference = best if reference is None else reference
        rows.append({
            "variant": name, **{f"ndcg@{s}": at_step(history, s) for s in quarters}, "best": round(best, 4),
            "best_step": int(history.loc[history["val_next_ndcg@10"].idxmax(), "step"]) + 1,
            f"steps_to_{args.variants[0]}_best": steps_to(history, reference), "seconds": round(seconds),
        })
        histories.append(history.assign(variant=name))
        print(rows[-1], flush=True)
    if args.out:
        pd.concat(histories).to_csv(args.out, index=False)
    print(f"\n{args.config}, {args.data}, {args.steps} steps, seed {args.seed}, warm-up {args.warmup}:")
    print(pd.DataFrame(rows).to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
