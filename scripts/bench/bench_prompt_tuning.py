"""Prompt-tuning step cost against a pre-training step: same model, same batches, side by side.

A pre-training step is forward + fused cross-entropy + backward + Adam on a causal window batch. A prompt-tuning
step first rebuilds the batch with the model's own arg-max predictions (:class:`seqrec.training.prompt_tuning.
PromptAugmenter`, through the generation engine, no gradients) and then does the same. Variants are interleaved
round by round, so machine noise hits all alike; the median round of each is reported, with the ratio.

    python scripts/bench/bench_prompt_tuning.py [--data data/ml-1m.csv] [--model gpt2|sasrec] [--steps 10] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path


import torch

from seqrec.data.datasets import CausalLMDataset
from seqrec.data.split import load_interactions, split_interactions
from seqrec.data.synthetic import make_synthetic
from seqrec.training.losses import CrossEntropy
from seqrec.models.gpt2 import GPT2
from seqrec.models.sasrec import SASRec
from seqrec.training.prompt_tuning import PromptAugmenter
from seqrec.core.paths import REPO_ROOT


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(REPO_ROOT / "data" / "ml-1m.csv"),
                    help="prepared CSV (a synthetic ML-1M-sized log if missing)")
    ap.add_argument("--model", choices=("gpt2", "sasrec"), default="gpt2")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--steps", type=int, default=10, help="training steps per round and variant")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()

    if Path(args.data).exists():
        split, source = split_interactions(load_interactions(args.data)), args.data
    else:
        split, source = split_interactions(make_synthetic(n_users=6040, n_items=3706, min_len=20, max_len=400, seed=0)), "synthetic ML-1M-sized log"
    data = CausalLMDataset(split.train, args.max_length, seed=0, n_items=split.n_items)
    batches = [data.collate([data[i] for i in range(s * args.batch_size, (s + 1) * args.batch_size)])
               for s in range(args.steps)]
    torch.manual_seed(0)
    if args.model == "gpt2":
        model = GPT2(split.n_items, n_positions=args.max_length, segment_embedding=True)
    else:
        model = SASRec(split.n_items, sequence_length=args.max_length, segment_embedding=True)
    loss_fn = CrossEntropy(matmul_dtype="float32")
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-4)
    variants = {"pre-training step": None}
    for mode, length in (("replace_last", 1), ("replace_last", 2), ("replace_last", 3), ("insert", 1), ("insert", 3)):
        variants[f"prompt-tuning step ({mode}, P={length})"] = PromptAugmenter(mode, length)

    def step(batch, augment):
        model.train()
        if augment is not None:
            batch = augment(model, batch)
        hidden = model.encode(batch["input_ids"], segments=batch.get("segments"))
        labels = batch["labels"]
        loss = loss_fn(model, hidden[labels > 0], labels[labels > 0])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    for augment in variants.values():  # warm-up: allocator, kernels, first-call overheads
        step(batches[0], augment)
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, augment in variants.items():
            started = time.perf_counter()
            for batch in batches:
                step(batch, augment)
            times[name].append((time.perf_counter() - started) / len(batches))
    base = statistics.median(times["pre-training step"])
    print(f"{source}: {args.model}, batch {args.batch_size}, window {args.max_length}, {torch.get_num_threads()} "
          f"threads, {args.steps} steps x {args.rounds} rounds (median round)")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"  {name:42s} {1000 * median:8.1f} ms/step   x{median / base:.2f}")


if __name__ == "__main__":
    main()
