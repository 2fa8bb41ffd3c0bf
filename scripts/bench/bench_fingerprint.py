"""What the data fingerprint costs (seqrec.data.fingerprint): seconds to hash a log's events, against reading and
splitting its file, on ML-1M and on the ML-20M-sized synthetic log of bench_scale.py.

    python scripts/bench/bench_fingerprint.py                      # data/ml-1m.csv and the ML-20M-sized log
    python scripts/bench/bench_fingerprint.py --synthetic 0.25      # a quarter of ML-20M's users (~5M events)
    python scripts/bench/bench_fingerprint.py --no-synthetic --data <csv>

The synthetic log is written to a temporary folder (``--workdir``, default the system's), never into the repository.
The split itself hashes as it goes; the fingerprint's share is timed here on the split's own sorted arrays.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bench_common import cpu_name

ROOT = Path(__file__).resolve().parents[2]
ML20M = dict(users=138_493, items=26_744, min_len=20, max_len=268)  # as scripts/bench/bench_scale.py


def measure(csv: Path, label: str, repeats: int) -> dict:
    from seqrec.data.fingerprint import interactions_fingerprint
    from seqrec.data.split import load_interactions, split_interactions

    started = time.perf_counter()
    df = load_interactions(csv)
    read = time.perf_counter() - started
    started = time.perf_counter()
    split = split_interactions(df, validation_size=2000, random_state=42)
    split_seconds = time.perf_counter() - started
    # the arrays the split hashes: events sorted by (user, time, item), ids re-indexed
    users, user_ids = pd.factorize(df["user_id"], sort=True)
    items, item_ids = pd.factorize(df["item_id"], sort=True)
    timestamps = df["timestamp"].to_numpy()
    order = np.lexsort((items, timestamps, users))
    users, items, timestamps = users[order], items[order] + 1, timestamps[order]
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        fingerprint = interactions_fingerprint(user_ids, item_ids, users, items, timestamps)
        best = min(best, time.perf_counter() - started)
    assert fingerprint["interactions"] == split.fingerprint["interactions"]
    total = read + split_seconds
    print(f"{label}: {len(df):,} events, {split.n_users:,} users, {split.n_items:,} items")
    print(f"  read {read:.2f} s + split {split_seconds:.2f} s (fingerprint included) = {total:.2f} s; "
          f"fingerprint {best:.3f} s (best of {repeats}) = {100 * best / total:.1f} % of reading and splitting")
    return dict(label=label, events=len(df), read=read, split=split_seconds, fingerprint=best)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(ROOT / "data" / "ml-1m.csv"),
                        help="a prepared interaction CSV (default: data/ml-1m.csv; skipped when it does not exist)")
    parser.add_argument("--synthetic", type=float, default=1.0, metavar="FRACTION",
                        help="share of ML-20M's 138,493 users in the synthetic log (default 1: ~20M events)")
    parser.add_argument("--no-synthetic", action="store_true", help="measure --data only")
    parser.add_argument("--repeats", type=int, default=3, help="fingerprint timings, the best is shown (default 3)")
    parser.add_argument("--workdir", default=None, help="where the synthetic CSV is written (default: a temp folder)")
    args = parser.parse_args(argv)
    if not 0 < args.synthetic <= 1:
        print(f"error: --synthetic {args.synthetic} is not a share of ML-20M's users; pass a number in (0, 1]",
              file=sys.stderr)
        return 2
    if args.repeats < 1:
        print(f"error: --repeats {args.repeats} must be >= 1", file=sys.stderr)
        return 2
    print(f"CPU: {cpu_name()} ({platform.machine()}), Python {platform.python_version()}, numpy {np.__version__}, "
          f"pandas {pd.__version__}")
    data = Path(args.data)
    if data.is_file():
        measure(data, data.name, args.repeats)
    else:
        print(f"{data} does not exist: skipped (prepare it with python scripts/prepare_data.py ml-1m)")
    if args.no_synthetic:
        return 0
    from seqrec.core.io import write_interaction_log
    from seqrec.data.synthetic import make_synthetic

    n_users = max(1000, int(ML20M["users"] * args.synthetic))
    with tempfile.TemporaryDirectory(dir=args.workdir, prefix="bench_fingerprint_") as tmp:
        csv = Path(tmp) / "ml20m_like.csv"
        started = time.perf_counter()
        df = make_synthetic(n_users=n_users, n_items=ML20M["items"], min_len=ML20M["min_len"],
                            max_len=ML20M["max_len"], seed=0)
        write_interaction_log(df, csv, "synthetic")
        del df
        print(f"(synthetic log of {n_users:,} users made and written in {time.perf_counter() - started:.0f} s)")
        measure(csv, f"ML-20M-sized synthetic log ({args.synthetic:g} of its users)", args.repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
