"""Training-step speed: our GPT-2 vs Hugging Face ``GPT2LMHeadModel``, side by side, same batches.

The HF side is trained the way the paper's original code does it: logits for every
position of the padded batch, then cross-entropy ignoring padding. Ours computes the
fused, chunked cross-entropy over real positions only. Variants are interleaved round
by round so machine noise hits all of them alike; the best round of each is reported.

    python scripts/bench/bench_train.py [--data data/ml-1m.csv] [--steps 8] [--rounds 3]
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path


import torch
import torch.nn.functional as F

from seqrec.data.datasets import CausalLMDataset
from bench_common import load_split
from seqrec.training.losses import CrossEntropy
from seqrec.models.gpt2 import GPT2
from seqrec.models.hf_compat import to_hf_gpt2
from seqrec.core.paths import REPO_ROOT


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(REPO_ROOT / "data" / "ml-1m.csv"),
                    help="prepared CSV (synthetic ML-1M-sized log if absent)")
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--max-length", type=int, default=128)
    args = ap.parse_args()

    split, source = load_split(args.data)
    ds = CausalLMDataset(split.train, args.max_length, seed=0)
    loader = torch.utils.data.DataLoader(ds, batch_size=args.batch_size, shuffle=True, collate_fn=ds.collate,
                                         generator=torch.Generator().manual_seed(0))
    batches = [b for _, b in zip(range(args.steps), loader)]
    torch.manual_seed(0)
    ours = GPT2(split.n_items, n_positions=max(128, args.max_length)).train()
    hf = to_hf_gpt2(ours).train()

    def plain_ce(model, hidden, targets):
        """The unfused reference: all logits of the same positions, then F.cross_entropy (padding column out)."""
        logits = hidden @ model.output_embeddings().T
        logits[:, 0] = float("-inf")
        return F.cross_entropy(logits.float(), targets)

    def our_step(matmul_dtype: str, autocast: bool, fused: bool = True):
        loss_fn = CrossEntropy(matmul_dtype=matmul_dtype) if fused else plain_ce
        opt = torch.optim.Adam(ours.parameters(), lr=0.0)  # lr 0: every variant sees the same weights

        def step(b):
            ctx = torch.autocast("cpu", dtype=torch.bfloat16) if autocast else contextlib.nullcontext()
            with ctx:
                labels = b["labels"]
                hidden = ours.encode(b["input_ids"])
                has = labels > 0
                loss = loss_fn(ours, hidden[has].float(), labels[has])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            return float(loss)

        return step

    hf_opt = torch.optim.Adam(hf.parameters(), lr=0.0)

    def hf_step(b):
        x, labels = b["input_ids"], b["labels"].masked_fill(b["labels"] == 0, -100)
        logits = hf(input_ids=x, attention_mask=(x != 0).long()).logits
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100)
        hf_opt.zero_grad(set_to_none=True)
        loss.backward()
        hf_opt.step()
        return float(loss)

    variants = {
        "HF GPT2LMHeadModel (fp32)": hf_step,
        "ours (fp32)": our_step("float32", False),
        "ours (bf16 output layer)": our_step("bfloat16", False),
        "ours (bf16-mixed)": our_step("bfloat16", True),
        # the same network and positions with an unfused F.cross_entropy: what the fused loss itself gains
        "ours, plain F.cross_entropy (fp32)": our_step("float32", False, fused=False),
        "ours, plain F.cross_entropy (bf16-mixed)": our_step("bfloat16", True, fused=False),
    }
    best = {name: float("inf") for name in variants}
    losses = {}
    for name, fn in variants.items():  # warm-up
        fn(batches[0])
    for _ in range(args.rounds):
        for name, fn in variants.items():
            start = time.perf_counter()
            losses[name] = sum(fn(b) for b in batches) / len(batches)
            best[name] = min(best[name], (time.perf_counter() - start) / len(batches))
    print(f"data: {source}; {args.steps} batches of {args.batch_size} x {args.max_length}, best of {args.rounds} rounds")
    base = best["HF GPT2LMHeadModel (fp32)"]
    steps_per_epoch = len(loader)
    for name in variants:
        print(
            f"{name:42s} {best[name] * 1000:7.1f} ms/step  loss {losses[name]:.4f}  "
            f"~{best[name] * steps_per_epoch:5.1f} s/epoch of steps  speedup vs HF: {base / best[name]:.2f}x"
        )
    for precision, fused, plain in (("fp32", "ours (fp32)", "ours, plain F.cross_entropy (fp32)"),
                                    ("bf16-mixed", "ours (bf16-mixed)", "ours, plain F.cross_entropy (bf16-mixed)")):
        print(f"fused linear + cross-entropy vs plain F.cross_entropy, same positions, {precision}: "
              f"{best[plain] / best[fused]:.2f}x faster per step")


if __name__ == "__main__":
    main()
