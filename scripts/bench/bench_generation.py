"""Generation speed: our engine vs Hugging Face ``generate``, same GPT-2 weights, same users.

HF is called two ways, both timed: the way the paper's original code calls it -- one ``generate`` per user
with ``do_sample``, ``num_return_sequences`` and ``no_repeat_ngram_size=1`` (padding id 0 suppressed so every
sequence has 10 items) -- and **batched**: the same users, ``--hf-batch`` per call, left-padded with an
attention mask, same arguments. The per-user ratio mixes batching with the engine; the batched ratio is the
engine's own (KV cache shared across a user's sequences, bans as masks, no per-step Python over rows). Ours
runs the user set in chunks with the shared-prefix KV cache. All sides are timed in this one run; the ratios
are what matters on a shared machine. For greedy and beam search the items are also compared
with seen-item filtering and repeat bans switched off on both sides (they must be
identical).

    python scripts/bench/bench_generation.py --quick          # under a minute
    python scripts/bench/bench_generation.py                  # ML-1M test users (3,020) for our side
    python scripts/bench/bench_generation.py --train-task <ID> --run-store runs   # trained weights
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


import numpy as np
import torch

from bench_common import load_model, load_split
from seqrec.generation import build_strategy, generate
from seqrec.generation.engine import history_length
from seqrec.models.gpt2 import GPT2
from seqrec.models.hf_compat import to_hf_gpt2
from seqrec.cli.flags import strategy_names
from seqrec.core.paths import REPO_ROOT, default_run_store

K = 10
STRATEGIES = {
    "rra": ({"strategy": "sampling", "temperature": 0.3, "top_k": 50, "num_return_sequences": 20},
            dict(do_sample=True, temperature=0.3, top_k=50, num_return_sequences=20)),
    "greedy": ({"strategy": "greedy"}, dict(do_sample=False, num_beams=1)),
    "beam2": ({"strategy": "beam", "num_beams": 2}, dict(do_sample=False, num_beams=2)),
    "beam3": ({"strategy": "beam", "num_beams": 3}, dict(do_sample=False, num_beams=3)),
}


def load(args):
    split, source = load_split(args.data)
    model, weights = load_model(split, args.train_task, args.run_store,
                                lambda n: GPT2(n, n_positions=128, n_embd=64, n_layer=2, n_head=1), "GPT_train")
    return split, model, f"{source}, {weights}"


def hf_generate(hf, history, window, kwargs, ban):
    ids = torch.as_tensor(history[-window:], dtype=torch.long)[None]
    extra = dict(no_repeat_ngram_size=1) if ban else {}
    out = hf.generate(
        input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=K, min_new_tokens=K,
        pad_token_id=0, eos_token_id=None, suppress_tokens=[0], **extra, **kwargs,
    )
    return out[:, ids.shape[1]:]


def hf_generate_batched(hf, histories, window, kwargs, ban, batch):
    """HF ``generate`` on ``batch`` users per call, left-padded; ``[users * sequences, K]`` items."""
    out = []
    for start in range(0, len(histories), batch):
        rows = [h[-window:] for h in histories[start : start + batch]]
        width = max(len(r) for r in rows)
        ids = torch.zeros(len(rows), width, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, r in enumerate(rows):
            ids[i, width - len(r):] = torch.as_tensor(r, dtype=torch.long)
            mask[i, width - len(r):] = 1
        extra = dict(no_repeat_ngram_size=1) if ban else {}
        gen = hf.generate(
            input_ids=ids, attention_mask=mask, max_new_tokens=K, min_new_tokens=K,
            pad_token_id=0, eos_token_id=None, suppress_tokens=[0], **extra, **kwargs,
        )
        out.append(gen[:, width:])
    return torch.cat(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(REPO_ROOT / "data" / "ml-1m.csv"),
                    help="prepared CSV (synthetic ML-1M-sized log if absent)")
    ap.add_argument("--quick", action="store_true", help="fewer users on both sides (under a minute)")
    ap.add_argument("--users", type=int, default=None, help="users for our engine (default: all test users)")
    ap.add_argument("--hf-users", type=int, default=None, help="users for HF generate, one call per user")
    ap.add_argument("--hf-batch", type=int, default=64, help="users per call of batched HF generate")
    ap.add_argument("--hf-batched-users", type=int, default=None,
                    help="users for batched HF generate (default: 4 batches, 2 with --quick)")
    ap.add_argument("--strategies", nargs="+", default=list(STRATEGIES),
                    help=f"subset of {' '.join(STRATEGIES)} (space- or comma-separated)")
    ap.add_argument("--rows", type=int, default=4096, help="rows per chunk for our engine")
    ap.add_argument("--precision", default="auto", help="our engine: float32 | bfloat16 | auto (the predict default)")
    ap.add_argument("--train-task", default=None)
    ap.add_argument("--run-store", default=str(default_run_store()),
                    help="the run store of --train-task (default: <repo>/runs or $SEQREC_RUN_STORE)")
    args = ap.parse_args()
    args.strategies = strategy_names(args.strategies, STRATEGIES)  # checked before any work
    torch.set_grad_enabled(False)

    split, model, source = load(args)
    hf = to_hf_gpt2(model)
    users = split.test_users[: args.users or (300 if args.quick else None)]
    hf_users = {name: split.test_users[: args.hf_users or (2 if args.quick else 10) * (1 if name == "rra" else 5)]
                for name in STRATEGIES}
    window = history_length(model, 128, K)
    print(f"data: {source}; our engine: {len(users)} users, history {window} items, {K} items each, "
          f"precision {args.precision} (the identity check with HF runs in float32)")

    for name in args.strategies:
        ours_params, hf_kwargs = STRATEGIES[name]
        strategy = build_strategy(ours_params)
        run = dict(k=K, rows=args.rows, precision=args.precision, progress=False)
        generate(model, strategy, split.train, users[:8], **run)  # warm-up
        start = time.perf_counter()
        generate(model, strategy, split.train, users, **run)
        ours_ms = 1000 * (time.perf_counter() - start) / len(users)

        hf_users_now = hf_users[name]
        torch.manual_seed(0)
        hf_generate(hf, split.train[hf_users_now[0]], window, hf_kwargs, ban=True)  # warm-up
        start = time.perf_counter()
        for u in hf_users_now:
            hf_generate(hf, split.train[u], window, hf_kwargs, ban=True)
        hf_ms = 1000 * (time.perf_counter() - start) / len(hf_users_now)

        batched_users = split.test_users[: args.hf_batched_users or args.hf_batch * (2 if args.quick else 4)]
        histories = [split.train[u] for u in batched_users]
        torch.manual_seed(0)
        hf_generate_batched(hf, histories[: args.hf_batch], window, hf_kwargs, True, args.hf_batch)  # warm-up
        start = time.perf_counter()
        hf_generate_batched(hf, histories, window, hf_kwargs, True, args.hf_batch)
        hf_batched_ms = 1000 * (time.perf_counter() - start) / len(batched_users)
        line = (f"{name}: ours {ours_ms:.2f} ms/user; HF generate batched ({args.hf_batch} users/call) "
                f"{hf_batched_ms:.1f} ms/user = {hf_batched_ms / ours_ms:.1f}x ours; HF generate per user "
                f"{hf_ms:.1f} ms/user = {hf_ms / ours_ms:.1f}x ours")

        if not hf_kwargs["do_sample"]:  # same items when neither side filters
            ours_items, _ = generate(model, strategy, split.train, hf_users_now, k=K, rows=args.rows,
                                     filter_seen=False, no_repeat=False, precision="float32", progress=False)
            theirs = np.stack([hf_generate(hf, split.train[u], window, hf_kwargs, ban=False)[0].numpy()
                               for u in hf_users_now])
            same = int((ours_items == theirs).all(1).sum())
            line += f"; identical items to HF (no filtering): {same}/{len(hf_users_now)} users"
            if name == "greedy":  # left padding must not change HF's own answer
                padded = hf_generate_batched(hf, [split.train[u] for u in hf_users_now], window, hf_kwargs, False,
                                             args.hf_batch).numpy()
                line += f", batched HF: {int((ours_items == padded).all(1).sum())}/{len(hf_users_now)}"
        print(line, flush=True)


if __name__ == "__main__":
    main()
