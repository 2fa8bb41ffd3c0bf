"""Training steps of the four models with cheap dropout masks (``dropout_masks=fast``, the default) against
torch's own (``dropout_masks=torch``: ``bernoulli_`` per element, and the attention kernel's math path), side by
side on the same batches.

Each model is built from its ``*_train`` config on the data (network, loss, batch and window as trained), the
two mask modes alternate round by round on the same batches (machine noise hits both alike), the best round of
each is reported in ms per optimizer step (forward, loss, backward, Adam; bf16-mixed where the CPU has native
bf16, as training uses), with the CPU and thread count.

    python scripts/bench/bench_dropout.py [--data data/ml-1m.csv] [--models GPT SASRec gSASRec BERT4Rec]
                                          [--steps 5] [--rounds 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import contextlib
import time

import torch

from bench_common import cpu_name
from seqrec.core.paths import REPO_ROOT
from seqrec.models import dropout as D

CONFIGS = {"GPT": "GPT_train", "SASRec": "SASRec_train", "gSASRec": "gSASRec_train", "BERT4Rec": "BERT4Rec_train"}
# outside a Trainer the global step stays 0: gSASRec's negatives would stay at the start of their ramp (1), so the
# ramp is switched off and every step scores its 256 negatives, as after step 500 of a training
EXTRA = {"gSASRec": ["seqrec_module.loss.neg_warmup_steps=0", "seqrec_module.loss.t_warmup_steps=0"]}


def model_steps(config: str, data: str, steps: int, extra=()):
    """(step function, batches, label) for ``config`` trained on ``data``."""
    from seqrec.config.spec import resolve_train
    from seqrec.experiments.plan import compose
    from seqrec.training.components import TrainingData, build_module, build_network
    from seqrec.models.fused_output import fast_bfloat16

    spec = resolve_train(compose(config, [f"data_path={data}", "logger=none", "seed=0", *extra]))
    training = TrainingData(spec)
    torch.manual_seed(0)
    module = build_module(spec, build_network(spec, training), training).train()
    loader = training.module(spec).train_dataloader()
    batches = [b for _, b in zip(range(steps), loader)]
    opt = torch.optim.Adam(module.parameters(), lr=0.0)  # lr 0: both modes see the same weights
    bf16 = fast_bfloat16(torch.device("cpu"))

    def step(batch):
        ctx = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
        with ctx:
            loss = module.training_step(batch, 0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    shape = tuple(batches[0]["input_ids"].shape)
    return step, batches, f"batch {shape[0]} x {shape[1]}, {'bf16-mixed' if bf16 else 'fp32'}"


def step_arguments(ap: argparse.ArgumentParser) -> None:
    """The options of a training-step benchmark: data, steps per round, rounds, threads, the CSV to write."""
    ap.add_argument("--data", default=str(REPO_ROOT / "data" / "ml-1m.csv"), help="a prepared CSV")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (a --jobs 2 chain has 1)")
    ap.add_argument("--csv", help="also write the table here")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    step_arguments(ap)
    ap.add_argument("--models", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    print(f"{cpu_name()}, {args.threads} thread(s); {args.data}; {args.steps} steps, best of {args.rounds} rounds")
    for name in args.models:
        step, batches, label = model_steps(CONFIGS[name], args.data, args.steps, EXTRA.get(name, ()))
        best = {}
        for mode in D.MASKS:  # warm-up
            D.set_masks(mode)
            step(batches[0])
        for _ in range(args.rounds):
            for mode in D.MASKS:
                D.set_masks(mode)
                start = time.perf_counter()
                for b in batches:
                    step(b)
                best[mode] = min(best.get(mode, float("inf")), (time.perf_counter() - start) / len(batches))
        D.set_masks("fast")
        print(f"{name:9s} ({label}): torch masks {best['torch'] * 1000:7.1f} ms/step, fast masks "
              f"{best['fast'] * 1000:7.1f} ms/step: {best['torch'] / best['fast']:.2f}x", flush=True)
        rows.append({"machine": f"{cpu_name()}, {args.threads} thread(s)", "config": CONFIGS[name], "setting": label,
                     "unit": "ms/step", "torch masks": round(best["torch"] * 1000, 1),
                     "fast masks": round(best["fast"] * 1000, 1), "ratio": round(best["torch"] / best["fast"], 2),
                     "rounds": f"best of {args.rounds} x {args.steps} steps"})
    if args.csv:
        import pandas as pd

        pd.DataFrame(rows).to_csv(args.csv, index=False)
        print(f"wrote {args.csv}")


if __name__ == "__main__":
    main()
