"""Benchmark the vectorised metrics against the per-user reference on ML-1M-sized random input.

Usage: python scripts/bench/bench_metrics.py [--users 3020] [--items 3706] [--repeats 5] [--seed 0] [--csv PATH]

Builds recommendation lists and held-out targets for ``--users`` users (10 recommendations, up to 10
targets, Zipf-like item popularity, ~15% of the target slots recommended), times
``compute_metrics`` and ``reference_metrics`` (best of ``--repeats`` runs each), checks that they
agree and prints the timings and the speedup. Exits with status 1 if the two disagree.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path


import numpy as np

from seqrec.evaluation.metrics import compute_metrics, format_metrics, reference_metrics

K = 10
T = 10


def make_inputs(
    n_users: int, n_items: int, hit_rate: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random ``recs [U, 10]``, ``targets [U, 10]`` (some right-padded) and ``item_counts``."""
    rng = np.random.default_rng(seed)

    # Zipf-like train popularity over a shuffled catalogue; a few items never seen in train.
    rank = rng.permutation(n_items) + 1
    counts = np.floor(200_000 / rank**1.1).astype(np.int64)
    counts[rng.choice(n_items, size=max(1, n_items // 200), replace=False)] = 0
    item_counts = np.concatenate([[0], counts])

    # 2K distinct items per user drawn by popularity (Gumbel top-k, ordered by key):
    # the first K are the recommendations, the rest a pool of non-recommended targets.
    log_pop = np.log(np.maximum(counts, 1) / counts.sum())
    keys = log_pop + rng.gumbel(size=(n_users, n_items))
    top = np.argpartition(-keys, 2 * K, axis=1)[:, : 2 * K]
    order = np.argsort(-np.take_along_axis(keys, top, axis=1), axis=1)
    drawn = np.take_along_axis(top, order, axis=1) + 1
    recs, pool = drawn[:, :K], drawn[:, K:]

    # Each target slot is a recommended item with probability hit_rate, otherwise a pool item;
    # both sides are taken without repetition, so a user's targets are distinct.
    is_hit = rng.random((n_users, T)) < hit_rate
    slot_order = rng.permuted(np.tile(np.arange(K), (n_users, 1)), axis=1)
    shuffled_recs = np.take_along_axis(recs, slot_order, axis=1)
    hit_idx = np.cumsum(is_hit, axis=1) - 1
    miss_idx = np.cumsum(~is_hit, axis=1) - 1
    targets = np.where(
        is_hit,
        np.take_along_axis(shuffled_recs, np.clip(hit_idx, 0, K - 1), axis=1),
        np.take_along_axis(pool, np.clip(miss_idx, 0, K - 1), axis=1),
    )

    # 5% of the users have fewer than T held-out items (right padding).
    short = rng.random(n_users) < 0.05
    lengths = np.where(short, rng.integers(1, T, size=n_users), T)
    targets[np.arange(T)[None, :] >= lengths[:, None]] = 0
    return recs, targets, item_counts


def best_time(fn, repeats: int) -> tuple[float, dict[str, float]]:
    best = math.inf
    result: dict[str, float] = {}
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def agree(a: dict[str, float], b: dict[str, float], tol: float = 1e-9) -> list[str]:
    """Names whose values differ (nan equals nan); a key-set mismatch is reported too."""
    if list(a) != list(b):
        return [f"keys differ: {list(a)} vs {list(b)}"]
    bad = []
    for name in a:
        x, y = a[name], b[name]
        both_nan = math.isnan(x) and math.isnan(y)
        if not both_nan and not math.isclose(x, y, rel_tol=tol, abs_tol=tol):
            bad.append(f"{name}: {x!r} vs {y!r}")
    return bad


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=3020, help="users (ML-1M test: 3020)")
    parser.add_argument("--items", type=int, default=3706, help="catalogue size (ML-1M: 3706)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of each, best counts")
    parser.add_argument("--hit-rate", type=float, default=0.15, help="share of targets recommended")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--show", action="store_true", help="also print the metric values")
    parser.add_argument("--csv", type=Path, default=None,
                        help="also write the timings as one CSV row (e.g. results/bench/metrics.csv, which "
                             "python scripts/make_docs.py quotes in docs/benchmarks.md)")
    args = parser.parse_args(argv)
    if args.users < 1 or args.items < 2 * K or args.repeats < 1 or not 0 <= args.hit_rate <= 1:
        parser.error(f"need --users >= 1, --items >= {2 * K}, --repeats >= 1, 0 <= --hit-rate <= 1")

    recs, targets, item_counts = make_inputs(args.users, args.items, args.hit_rate, args.seed)
    inputs = (recs, targets, item_counts, args.items)
    compute_metrics(*inputs)  # warm-up (imports, allocator)

    fast_s, fast = best_time(lambda: compute_metrics(*inputs), args.repeats)
    slow_s, slow = best_time(lambda: reference_metrics(*inputs), args.repeats)

    print(
        f"{args.users} users x {K} recs, {T} targets, {args.items} items, "
        f"recall@{K} {fast[f'recall@{K}']:.3f}, best of {args.repeats}"
    )
    if args.show:
        print(format_metrics(fast))
    bad = agree(fast, slow)
    if bad:
        print("MISMATCH between compute_metrics and reference_metrics:")
        print("\n".join(f"  {line}" for line in bad))
        return 1
    print(f"results agree on all {len(fast)} metrics")
    speedup = slow_s / fast_s
    print(
        f"compute_metrics: {fast_s * 1e3:.2f} ms, reference: {slow_s * 1e3:.1f} ms, "
        f"speedup: {speedup:.1f}x"
    )
    if args.csv:
        import os
        import platform

        args.csv.parent.mkdir(parents=True, exist_ok=True)
        row = {"users": args.users, "items": args.items, "repeats": args.repeats, "metrics_checked": len(fast),
               "vectorized_ms": round(fast_s * 1e3, 2), "reference_ms": round(slow_s * 1e3, 1),
               "speedup": round(speedup, 1), "cpu": f"{platform.machine()}, {os.cpu_count()} cores"}
        import csv

        with open(args.csv, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(row))
            writer.writeheader()
            writer.writerow(row)
        print(f"wrote {args.csv}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
