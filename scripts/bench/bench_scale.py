#!/usr/bin/env python
"""ML-20M scale: time and peak memory per stage on an ML-20M-sized synthetic log, at growing user counts.

Stages: synthesize the log -> write it (prepared CSV) -> load + long-term split -> train GPT-2 (n_embd 256,
the paper's ML-20M size) for one epoch of capped batches -> Top-K and multi-sequence RRA generation for a
fixed number of test users. Each stage is run at every ``--fractions`` of the full size (138,493 users,
26,744 items, ~20M interactions); a stage scales well when its time grows no faster than the users do.
Peak memory is the highest resident set size sampled while the stage ran (every 20 ms).

    python scripts/bench/bench_scale.py                      # fractions 0.25 and 1 (about 15-25 min on 2 cores)
    python scripts/bench/bench_scale.py --fractions 0.05 --gen-users 1000 --batches 5    # a quick look
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # scripts/bench/<this> -> the repository

import numpy as np
import psutil

ML20M = dict(users=138_493, items=26_744, min_len=20, max_len=268)  # mean length 144 -> ~19.9M interactions


class PeakRSS:
    """Samples this process's resident set size in a thread; ``peak`` in bytes."""

    def __init__(self, interval: float = 0.02) -> None:
        self.interval, self.peak = interval, 0
        self._proc, self._stop = psutil.Process(), threading.Event()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._proc.memory_info().rss)
            self._stop.wait(self.interval)

    def __enter__(self) -> "PeakRSS":
        self.peak = self._proc.memory_info().rss
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)


@contextlib.contextmanager
def stage(results: list, fraction: float, name: str, users: int):
    print(f"  {name} ...", flush=True)
    with PeakRSS() as rss:
        started = time.perf_counter()
        yield
        seconds = time.perf_counter() - started
    results.append(dict(fraction=fraction, stage=name, users=users, seconds=seconds, peak_gib=rss.peak / 2**30))
    print(f"  {name}: {seconds:.1f} s, peak RSS {rss.peak / 2**30:.2f} GiB", flush=True)


def run_fraction(fraction: float, args, workdir: Path, results: list) -> None:
    import torch
    from omegaconf import OmegaConf

    from seqrec.core.io import write_interaction_log
    from seqrec.data.split import load_interactions, split_interactions
    from seqrec.data.synthetic import make_synthetic
    from seqrec.experiments.plan import compose
    from seqrec.generation.base import build_strategy
    from seqrec.generation.engine import generate
    from seqrec import train
    from seqrec.models.loading import load_trained
    from seqrec.tracking.run_folder import MODEL_FILE
    from seqrec.tracking.run_store import RunStore

    n_users = max(1000, int(ML20M["users"] * fraction))
    print(f"fraction {fraction}: {n_users} users, {ML20M['items']} items", flush=True)
    csv = workdir / f"ml20m_like_{fraction}.csv"
    with stage(results, fraction, "synthesize", n_users):
        df = make_synthetic(n_users=n_users, n_items=ML20M["items"], min_len=ML20M["min_len"],
                            max_len=ML20M["max_len"], seed=0)
    n_rows = len(df)
    with stage(results, fraction, "write prepared CSV", n_users):
        write_interaction_log(df, csv, "synthetic")
    del df
    with stage(results, fraction, "load + split", n_users):
        split = split_interactions(load_interactions(csv), validation_size=2000, random_state=42)
    print(f"  {n_rows:,} interactions, {split.n_items} items, {len(split.test_users)} test users", flush=True)

    runs = workdir / "runs"
    cfg = compose("GPT_train", [
        f"data_path={csv}", f"run_store={runs}", "logger=none", f"task_name=scale_{fraction}",
        "model_params.n_embd=256", "trainer_params.max_epochs=1", f"trainer_params.limit_train_batches={args.batches}",
        "trainer_params.enable_progress_bar=false", "trainer_params.enable_model_summary=false",
        "dataloader.validation_size=2000",
    ])
    with stage(results, fraction, f"train 1 epoch ({args.batches} batches, incl. load + split)", n_users):
        train(cfg)
    record = [r for r in RunStore(runs).list_runs("train") if r.task_name == f"scale_{fraction}"][-1]
    model, _ = load_trained(record.path / MODEL_FILE, torch.device("cpu"))
    users = split.test_users[: args.gen_users]
    max_length = OmegaConf.select(cfg, "dataset.max_length")
    for label, params in (
        ("Top-K", {"strategy": "topk"}),
        (f"RRA N={args.sequences}", {"strategy": "sampling", "do_sample": True, "temperature": 0.6, "top_k": 20,
                                     "num_return_sequences": args.sequences, "aggregation": "rra"}),
    ):
        with stage(results, fraction, f"{label}, {len(users)} users", n_users):
            generate(model, build_strategy(params), split.train, users, k=10, max_length=max_length,
                     rows=4096, precision="auto", progress=False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fractions", nargs="+", type=float, default=[0.25, 1.0], help="shares of ML-20M's users")
    ap.add_argument("--batches", type=int, default=50, help="training batches in the one epoch")
    ap.add_argument("--gen-users", type=int, default=10_000, help="test users to generate for")
    ap.add_argument("--sequences", type=int, default=10, help="N of the RRA stage")
    ap.add_argument("--workdir", help="where the logs and runs go (default: a temp folder, removed after)")
    args = ap.parse_args()

    import pandas as pd

    results: list[dict] = []
    with contextlib.ExitStack() as stack:
        workdir = Path(args.workdir) if args.workdir else Path(stack.enter_context(tempfile.TemporaryDirectory()))
        workdir.mkdir(parents=True, exist_ok=True)
        for fraction in sorted(args.fractions):
            run_fraction(fraction, args, workdir, results)
    table = pd.DataFrame(results)
    table["fraction"] = table["fraction"].map(lambda f: f"{f:g}")
    print("\n" + table.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    if len(args.fractions) > 1:
        lo, hi = min(args.fractions), max(args.fractions)
        a, b = (table[table.fraction == f"{f:g}"].set_index("stage") for f in (lo, hi))
        users_ratio = b["users"].iloc[0] / a["users"].iloc[0]
        print(f"\ngrowth from {lo} to {hi} of the users (x{users_ratio:.1f} users):")
        for name in b.index:
            ratio = b.loc[name, "seconds"] / max(a.loc[name, "seconds"], 1e-9)
            verdict = "ok (at most linear)" if ratio <= users_ratio * 1.15 else "WORSE THAN LINEAR"
            print(f"  {name:55s} time x{ratio:5.2f}  memory {a.loc[name, 'peak_gib']:.2f} -> "
                  f"{b.loc[name, 'peak_gib']:.2f} GiB  {verdict}")
    print(f"\npeak RSS over all stages: {table['peak_gib'].max():.2f} GiB (limit 24 GiB)")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
