"""Does bf16 change what is recommended? float32 against bf16 (``precision=auto`` where bf16 is native), same model.

For each strategy the same users get recommendations in float32 and in bf16, side by side in this one run. Printed
per strategy: the share of users whose top-10 *set* differs, the share whose top-10 holds tied scores, the number of
distinct scores, test NDCG@10 of both with the paired difference and its 95 % bootstrap CI, and the time ratio.
Evaluation defaults to float32 (``generation_params.precision``) because of what this prints.

    python scripts/bench/bench_precision.py --train-task <TRAIN_ID>                 # a trained run of the run store
    python scripts/bench/bench_precision.py --quick                                 # random GPT-2 weights, synthetic log
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


import numpy as np
import torch

from seqrec.generation import build_strategy, generate
from seqrec.generation.engine import resolve_precision
from seqrec.evaluation.metrics import per_user_metrics
from seqrec.evaluation.stats import bootstrap_table
from seqrec.cli.flags import strategy_names
from seqrec.core.paths import default_run_store

K = 10
STRATEGIES = {
    "topk": {"strategy": "topk"},
    "greedy": {"strategy": "greedy"},
    "rra": {"strategy": "sampling", "do_sample": True, "temperature": 0.3, "top_k": 50, "num_return_sequences": 20},
}


def load(args):
    """(model, split, label) for a trained run, or random GPT-2 weights on a synthetic log (``--quick``)."""
    from seqrec.data.split import load_interactions, split_interactions

    if args.train_task:
        from omegaconf import OmegaConf

        from seqrec.models.loading import load_trained
        from seqrec.tracking.run_folder import CONFIG_FILE, MODEL_FILE
        from seqrec.tracking.run_store import RunStore

        run_dir = RunStore(args.run_store).path(args.train_task)
        cfg = OmegaConf.load(run_dir / CONFIG_FILE)
        split = split_interactions(load_interactions(cfg.data_path), cfg.last_n_items, cfg.dataloader.validation_size,
                                   cfg.random_state)
        model, _ = load_trained(run_dir / MODEL_FILE, torch.device("cpu"))
        return model, split, int(cfg.dataset.max_length), f"run {args.train_task} ({cfg.data_path})"
    from seqrec.data.synthetic import make_synthetic
    from seqrec.models.gpt2 import GPT2

    split = split_interactions(make_synthetic(n_users=600, n_items=400, min_len=20, max_len=120, seed=0))
    torch.manual_seed(0)
    model = GPT2(split.n_items, n_positions=128, n_embd=64, n_layer=2, n_head=1).eval()
    return model, split, 128, "random GPT-2 weights, synthetic log"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train-task", help="a completed training run ID (default: random weights)")
    parser.add_argument("--run-store", default=str(default_run_store()),
                    help="the run store of --train-task (default: <repo>/runs or $SEQREC_RUN_STORE)")
    parser.add_argument("--strategies", nargs="+", default=list(STRATEGIES),
                        help=f"subset of {' '.join(STRATEGIES)} (space- or comma-separated)")
    parser.add_argument("--quick", action="store_true", help="random weights on a small synthetic log")
    args = parser.parse_args(argv)
    args.strategies = strategy_names(args.strategies, STRATEGIES)  # checked before any work
    model, split, max_length, label = load(args)
    fast = resolve_precision("auto", torch.device("cpu"))
    print(f"{label}; {len(split.test_users)} test users; bf16 side: precision=auto -> {fast}")
    if fast == "float32":
        print("this CPU has no native bf16: auto is float32 here, nothing to compare")
        return 0
    users = split.test_users
    targets = split.targets(users, 10)
    print("strategy | users with another top-10 set | users with tied scores in top-10 (fp32 / bf16) | distinct "
          "scores (fp32 / bf16) | NDCG@10 fp32 / bf16 | bf16 - fp32 [95 % CI] | time bf16 / fp32")
    for name in args.strategies:
        strategy = build_strategy(STRATEGIES[name])
        out = {}
        for precision in ("float32", fast):
            started = time.perf_counter()
            recs, scores = generate(model, strategy, split.train, users, k=K, max_length=max_length, rows=4096,
                                    seed=42, precision=precision, progress=False)
            out[precision] = (recs, scores, time.perf_counter() - started)
        (r32, s32, t32), (r16, s16, t16) = out["float32"], out[fast]
        other_set = np.mean([set(a) != set(b) for a, b in zip(r32.tolist(), r16.tolist())])
        ties = [np.mean([len(set(row)) < len(row) for row in s.tolist()]) for s in (s32, s16)]
        distinct = [len(np.unique(s)) for s in (s32, s16)]
        n32 = per_user_metrics(r32, targets, split.n_items)[f"ndcg@{K}"]
        n16 = per_user_metrics(r16, targets, split.n_items)[f"ndcg@{K}"]
        ci = bootstrap_table((n16 - n32)[:, None])
        print(f"{name} | {100 * other_set:.1f} % | {100 * ties[0]:.1f} % / {100 * ties[1]:.1f} % | "
              f"{distinct[0]} / {distinct[1]} | {np.nanmean(n32):.4f} / {np.nanmean(n16):.4f} | "
              f"{ci.mean[0]:+.4f} [{ci.low[0]:+.4f}, {ci.high[0]:+.4f}] | {t16 / t32:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
