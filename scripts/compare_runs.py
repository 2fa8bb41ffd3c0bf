"""Compare two predict runs on the same users: the paired difference of each metric, with its 95 % bootstrap CI
(10,000 resamples of users) and the sign-flip test's p -- as the experiment reports do, for any two runs.

    python scripts/compare_runs.py <RUN_A> <RUN_B>                                   # test NDCG@10 and recall@10
                                                                                     # (HR@10 under leave_one_out)
    python scripts/compare_runs.py <RUN_A> <RUN_B> --part val --metrics ndcg@10 recall@10_pos9
    python scripts/compare_runs.py <A_SEED42>,<A_SEED43> <B_SEED42>,<B_SEED43>         # pooled over seeds

A run is an ID or a unique prefix of one (`python scripts/check_runs.py --kind predict` lists them). With several
runs per side (one per training seed, paired by position), each user's difference is averaged over the seeds first.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path



def main(argv: list[str] | None = None) -> int:
    from seqrec.evaluation.compare import compare_runs, format_comparison
    from seqrec.core.errors import UserError
    from seqrec.tracking.run_store import existing_store

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_a", help="predict run ID (or unique prefix); comma-separated: one per seed")
    ap.add_argument("run_b", help="the run(s) to compare against, as many as run_a")
    ap.add_argument("--run-store", default=None, help="default: $SEQREC_RUN_STORE or <repo>/runs")
    ap.add_argument("--part", choices=["test", "val"], default="test")
    ap.add_argument("--metrics", nargs="+", default=None,
                    help="per-user metrics (default: ndcg@10 recall@10; ndcg@10 hr@10 for runs under leave_one_out)")
    ap.add_argument("--n-resamples", type=int, default=10_000)
    args = ap.parse_args(argv)
    try:
        store = existing_store(args.run_store)
        table = compare_runs(store, args.run_a.split(","), args.run_b.split(","), args.part, args.metrics,
                             n_resamples=args.n_resamples)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(format_comparison(table, args.part))
    return 0


if __name__ == "__main__":
    from seqrec.core.output import pipe_safe

    sys.exit(pipe_safe(main))  # `| head -1`: the table cut short quietly, no BrokenPipeError traceback
