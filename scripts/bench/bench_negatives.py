"""gSASRec's training step with its 256 negatives drawn per position (the reference code) or per sequence
(``seqrec_module.loss.share_negatives=sequence``), side by side on the same batches.

Per position, 256 negatives of 64-dim rows cost more to gather than the whole output layer, so the loss computes
all ``N x V`` logits and picks its columns; per sequence, the ``B x 256`` negatives are scored by one batched
product of ``B x L x 256 x C``. Both are built from ``gSASRec_train`` on the data (as ``bench_dropout.py`` builds
them: the negatives' ramp off, so every step scores all 256), alternate round by round on the same batches, and
the best round of each is reported with the CPU and thread count.

    python scripts/bench/bench_negatives.py [--data data/ml-1m.csv] [--steps 5] [--rounds 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import time

import torch

from bench_common import cpu_name
from bench_dropout import EXTRA, model_steps, step_arguments


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    step_arguments(ap)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    variants = {share: model_steps("gSASRec_train", args.data, args.steps,
                                   [*EXTRA["gSASRec"], f"seqrec_module.loss.share_negatives={share}"])
                for share in ("position", "sequence")}
    best = {}
    for step, batches, _ in variants.values():  # warm-up
        step(batches[0])
    for _ in range(args.rounds):
        for share, (step, batches, _) in variants.items():
            start = time.perf_counter()
            for b in batches:
                step(b)
            best[share] = min(best.get(share, float("inf")), (time.perf_counter() - start) / len(batches))
    label = variants["position"][2]
    print(f"{cpu_name()}, {args.threads} thread(s); {args.data}; gSASRec_train ({label}), {args.steps} steps, best of "
          f"{args.rounds} rounds")
    for share in best:
        print(f"negatives per {share:9s} {best[share] * 1000:7.1f} ms/step")
    print(f"per sequence vs per position: {best['position'] / best['sequence']:.2f}x faster per step")
    if args.csv:
        import pandas as pd

        pd.DataFrame([{"machine": f"{cpu_name()}, {args.threads} thread(s)", "config": "gSASRec_train", "setting": label,
                       "unit": "ms/step", "per position": round(best["position"] * 1000, 1),
                       "per sequence": round(best["sequence"] * 1000, 1),
                       "ratio": round(best["position"] / best["sequence"], 2),
                       "rounds": f"best of {args.rounds} x {args.steps} steps"}]).to_csv(args.csv, index=False)
        print(f"wrote {args.csv}")


if __name__ == "__main__":
    main()
