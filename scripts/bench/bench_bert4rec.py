"""BERT4Rec generation speed: what each change to its (uncached) decoding costs, side by side, same users.

BERT4Rec has no KV cache: every generated item re-encodes the whole window plus ``[MASK]``. Variants, each adding one
change to the one before, timed in one run (interleaved rounds, best round reported), over the chunk sizes ``--rows``:
the full encoding (every position through every block and the output head); the last block and head computed for
the ``[MASK]`` query only (``BERT4Rec.last_query_only``); rows re-encoded without the left padding they share
(``BERT4Rec.padding_step``); chunks in parallel (``generate(workers=None)``: one chunk per thread); and that last one
in bfloat16. The float32 variants' items are compared with the last-query variant's (same seed: the same
computation, identical with one thread; with several, sampled draws may flip where scores differ by rounding).

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

#: label -> (last_query_only, padding_step, workers, precision), each adding one change to the one before
VARIANTS = {
    "full encoding": (False, 0, 1, "float32"),
    "last query": (True, 0, 1, "float32"),
    "last query, padding cut": (True, 16, 1, "float32"),
    "last query, padding cut, parallel chunks": (True, 16, None, "float32"),
    "the same in bfloat16": (True, 16, None, "bfloat16"),
}
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
    ap.add_argument("--rows", type=int, nargs="+", default=[1024])
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
        variants = {(label, rows): setting for label, setting in VARIANTS.items() for rows in args.rows}
        best = dict.fromkeys(variants, float("inf"))
        items = {}
        for _ in range(args.rounds):
            for (label, rows), (last, step, workers, precision) in variants.items():
                model.last_query_only, model.padding_step = last, step
                start = time.perf_counter()
                out, _ = generate(model, strategy, split.train, users, rows=rows, precision=precision, progress=False,
                                  workers=workers)
                best[label, rows] = min(best[label, rows], time.perf_counter() - start)
                items[label, rows] = out
        model.last_query_only, model.padding_step = True, BERT4Rec.padding_step
        base = best[next(iter(VARIANTS)), args.rows[0]]
        for (label, rows), seconds in best.items():
            print(f"{name}: {label:42s} rows {rows:5d}: {1000 * seconds / len(users):7.2f} ms/user "
                  f"({base / seconds:.2f}x the full float32 encoding at rows {args.rows[0]})")
        reference = items["last query", args.rows[0]]
        for (label, rows), out in items.items():
            if VARIANTS[label][3] == "float32" and label != "last query":
                same = float((out == reference).all(1).mean()) if out.shape == reference.shape else 0.0
                print(f"{name}: float32 lists of '{label}' (rows {rows}) identical to the last-query variant's for "
                      f"{100 * same:.1f} % of users", flush=True)

if __name__ == "__main__":
    main()
