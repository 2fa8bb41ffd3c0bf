"""BERT4Rec generation speed: what each change to its (uncached) decoding costs, side by side, same users.

BERT4Rec has no KV cache: every generated item re-encodes the whole window plus ``[MASK]``. Variants, timed in one
run (interleaved rounds, best round reported): the full encoding (every position through every block and the output
head) against the last block and head computed for the ``[MASK]`` query only (``BERT4Rec.last_query_only``, the
default), each in float32 and bfloat16, over several chunk sizes (``--rows``). The items of the float32 variants
must be identical (same seed): the last-query path is the same computation.

    python scripts/bench/bench_bert4rec.py [--train-task <ID> --run-store runs] [--users 300] [--strategies greedy rra]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


import torch

from bench_common import load_model, load_split
from seqrec.generation import build_strategy, generate
from seqrec.models.bert4rec import BERT4Rec
from seqrec.cli.flags import strategy_names
from seqrec.core.paths import REPO_ROOT, default_run_store

STRATEGIES = {
    "greedy": {"strategy": "greedy"},
    "rra": {"strategy": "sampling", "temperature": 0.3, "top_k": 50, "num_return_sequences": 20, "aggregation": "rra"},
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(REPO_ROOT / "data" / "ml-1m.csv"),
                    help="prepared CSV (synthetic ML-1M-sized log if absent)")
    ap.add_argument("--users", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--rows", type=int, nargs="+", default=[1024, 4096])
    ap.add_argument("--strategies", nargs="+", default=list(STRATEGIES), help=f"subset of {' '.join(STRATEGIES)} "
                    "(space- or comma-separated)")
    ap.add_argument("--train-task", default=None)
    ap.add_argument("--run-store", default=str(default_run_store()),
                    help="the run store of --train-task (default: <repo>/runs or $SEQREC_RUN_STORE)")
    args = ap.parse_args()
    args.strategies = strategy_names(args.strategies, STRATEGIES)  # checked before any work
    split, source = load_split(args.data)
    model, weights = load_model(split, args.train_task, args.run_store, BERT4Rec, "BERT4Rec_train")
    source += f", {weights}"
    model.max_generation_rows = None  # this benchmark sets the chunk size itself
    users = split.test_users[: args.users]
    print(f"data: {source}; {len(users)} test users, 10 items each, {torch.get_num_threads()} threads")
    for name in args.strategies:
        strategy = build_strategy(STRATEGIES[name])
        variants = {(last, precision, rows): None for last in (False, True) for precision in ("float32", "bfloat16")
                    for rows in args.rows}
        best = dict.fromkeys(variants, float("inf"))
        items = {}
        for _ in range(args.rounds):
            for last, precision, rows in variants:
                model.last_query_only = last
                start = time.perf_counter()
                out, _ = generate(model, strategy, split.train, users, rows=rows, precision=precision, progress=False)
                best[last, precision, rows] = min(best[last, precision, rows], time.perf_counter() - start)
                items[last, precision, rows] = out
        model.last_query_only = True
        base = best[False, "float32", args.rows[0]]
        for (last, precision, rows), seconds in best.items():
            what = "last query only" if last else "full encoding  "
            print(f"{name}: {what} {precision:8s} rows {rows:5d}: {1000 * seconds / len(users):7.2f} ms/user "
                  f"({base / seconds:.2f}x the full float32 encoding at rows {args.rows[0]})")
        a, b = items[False, "float32", args.rows[0]], items[True, "float32", args.rows[0]]
        same = float((a == b).all(1).mean())
        note = "" if name == "greedy" else " (sampled draws may flip where the two paths' scores differ by rounding)"
        print(f"{name}: float32 lists identical with and without the last-query path for {100 * same:.1f} % of "
              f"users{note}", flush=True)


if __name__ == "__main__":
    main()
