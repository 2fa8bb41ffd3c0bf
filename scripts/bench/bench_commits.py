"""An older commit against this working tree, side by side in one window: generation ms/user per strategy, and
training seconds per epoch per training config.

Each side runs in its own process with its own ``seqrec`` (the old commit is exported with ``git archive`` into a
temporary folder; nothing in this tree changes), on the same data, weights, users, seed, chunk size and threads.
Sides alternate round by round so machine noise hits both alike; the best round of each is reported, with the ratio
old / new. The items of both sides are compared: in float32 they must be identical (same seed), so a speed-up that
changes a single sampled item is reported as a failure (exit status 1).

    python scripts/bench/bench_commits.py --old 5f380de --train-task <ID> --run-store runs --users 500
    python scripts/bench/bench_commits.py --old 5f380de --quick              # random GPT-2 weights, 200 users
    python scripts/bench/bench_commits.py --old 5f380de --model bert4rec --strategies rra greedy
    python scripts/bench/bench_commits.py --old 5f380de --strategies --train-configs gSASRec_train --epochs 2

Training: each config is trained on both sides for ``--epochs`` epochs (same data, split and seed; no tracking; the
start-up ramps of gBCE and the LR warm-up switched off so every step is a full one) and the wall time per epoch
(training and its validation) is reported; the validation NDCG@10 both sides reach is printed beside it (equal in
float32 only where a change is exact).

Strategies (``--strategies``): topk, greedy, beam2, beam3, sampling (T=0.3, top_k 50), rra and ra (T=0.3, top_k 50,
N=20, the paper's best), rra_t06 (T=0.6, top_k 20, N=30), ra_t07 (T=0.7, top_k 50, N=30), rra_n100 (T=0.3, top_k 50,
N=100: the validation grid's one sampling pass).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve()
REPO = HERE.parents[2]
STRATEGIES = {
    "topk": {"strategy": "topk"},
    "greedy": {"strategy": "greedy"},
    "beam2": {"strategy": "beam", "num_beams": 2},
    "beam3": {"strategy": "beam", "num_beams": 3},
    "sampling": {"strategy": "sampling", "temperature": 0.3, "top_k": 50, "num_return_sequences": 1},
    "rra": {"strategy": "sampling", "temperature": 0.3, "top_k": 50, "num_return_sequences": 20, "aggregation": "rra"},
    "ra": {"strategy": "sampling", "temperature": 0.3, "top_k": 50, "num_return_sequences": 20, "aggregation": "ra"},
    "rra_t06": {"strategy": "sampling", "temperature": 0.6, "top_k": 20, "num_return_sequences": 30,
                "aggregation": "rra"},
    "ra_t07": {"strategy": "sampling", "temperature": 0.7, "top_k": 50, "num_return_sequences": 30,
               "aggregation": "ra"},
    "rra_n100": {"strategy": "sampling", "temperature": 0.3, "top_k": 50, "num_return_sequences": 100,
                 "aggregation": "rra"},
}


def worker(job: dict) -> None:
    """One side: generate with every strategy under this process's seqrec; print ms/user, save the items."""
    import time

    import numpy as np
    import torch

    torch.set_num_threads(job["threads"])
    from bench_common import load_model, load_split  # this side's seqrec underneath
    from seqrec.generation import build_strategy, generate

    def network(n_items):
        if job["model"] == "bert4rec":
            from seqrec.models.bert4rec import BERT4Rec

            return BERT4Rec(n_items)
        from seqrec.models.gpt2 import GPT2

        return GPT2(n_items, n_positions=128, n_embd=64, n_layer=2, n_head=1)

    split, _ = load_split(job["data"])
    model, _ = load_model(split, job["train_task"], job["run_store"], network, job["model"])
    model.eval()
    users = np.asarray(split.test_users[: job["users"]])
    out = {}
    for name in job["strategies"]:
        strategy = build_strategy(dict(STRATEGIES[name]))
        kw = dict(k=10, max_length=job["max_length"], rows=job["rows"], seed=42, progress=False)
        generate(model, strategy, split.train, users[: min(len(users), 16)], **kw)  # warm-up
        start = time.perf_counter()
        items, _ = generate(model, strategy, split.train, users, **kw)
        out[name] = 1000 * (time.perf_counter() - start) / len(users)
        np.save(Path(job["out"]) / f"{name}.npy", items)
    print("RESULT " + json.dumps(out), flush=True)


def train_worker(job: dict) -> None:
    """One side: train every config for ``epochs`` epochs under this process's seqrec; print seconds per epoch."""
    import time

    import pandas as pd
    import torch

    torch.set_num_threads(job["threads"])
    from seqrec import train
    from seqrec.experiments.plan import compose

    out = {}
    for config in job["train_configs"]:
        store = Path(job["out"]) / f"store_{config}"
        store.mkdir(parents=True, exist_ok=True)
        overrides = [f"data_path={job['data']}", "logger=none", f"run_store={store}", f"task_name=bench_{config}",
                     f"trainer_params.max_epochs={job['epochs']}", "trainer_params.max_steps=-1", "patience=1000",
                     "patience_steps=null", "trainer_params.enable_progress_bar=false",
                     "trainer_params.enable_model_summary=false", "scheduler=none"]
        if config.startswith("gSASRec"):
            overrides += ["seqrec_module.loss.neg_warmup_steps=0", "seqrec_module.loss.t_warmup_steps=0"]
        cfg = compose(config, overrides)
        start = time.perf_counter()
        train(cfg)
        seconds = (time.perf_counter() - start) / job["epochs"]
        [run] = [d for d in store.iterdir() if (d / "history.csv").exists()]
        history = pd.read_csv(run / "history.csv")
        out[config] = [seconds, float(history["val_next_ndcg@10"].iloc[-1])]
    print("RESULT " + json.dumps(out), flush=True)


def export(rev: str, into: Path) -> Path:
    """The tree of ``rev`` (its ``src/``) in ``into``."""
    into.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(REPO), "archive", rev, "src"], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into / "src"


def run_side(src: Path, job: dict) -> dict:
    env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": str(job["threads"])}
    proc = subprocess.run([sys.executable, str(HERE), "--worker", json.dumps(job)], env=env, capture_output=True,
                          text=True, cwd=str(REPO))
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode or not lines:
        sys.exit(f"error: the side at {src} failed:\n{proc.stderr[-2000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--old", default="HEAD", help="the commit to compare with (default HEAD: uncommitted changes)")
    p.add_argument("--data", default=str(REPO / "data" / "ml-1m.csv"), help="prepared CSV (else a synthetic log)")
    p.add_argument("--train-task", help="a training run's ID (else random weights of --model)")
    p.add_argument("--run-store", default=os.environ.get("SEQREC_RUN_STORE", str(REPO / "runs")))
    p.add_argument("--model", choices=["gpt2", "bert4rec"], default="gpt2", help="random weights' network")
    p.add_argument("--users", type=int, default=500)
    p.add_argument("--strategies", nargs="*", default=["greedy", "beam3", "rra", "ra", "rra_t06"],
                   choices=list(STRATEGIES), help="none: no generation")
    p.add_argument("--train-configs", nargs="*", default=[], help="training configs to time, e.g. gSASRec_train")
    p.add_argument("--epochs", type=int, default=2, help="epochs per training config and side")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--threads", type=int, default=1, help="threads per side (reproduce_paper --jobs 2 uses 1)")
    p.add_argument("--rows", type=int, default=4096, help="rows per chunk (predict's default: 16 x 256)")
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--quick", action="store_true", help="200 users, one round")
    p.add_argument("--csv", help="also write the table here (one row per strategy / config)")
    args = p.parse_args()
    if args.worker:
        job = json.loads(args.worker)
        return train_worker(job) if job.get("train_configs") else worker(job)
    if args.quick:
        args.users, args.rounds = 200, 1
    if args.train_task and not (Path(args.run_store) / args.train_task / "model.pt").exists():
        sys.exit(f"error: no run {args.train_task} with a model.pt in {args.run_store}; pass --run-store")
    with tempfile.TemporaryDirectory() as tmp:
        sides = {"old": export(args.old, Path(tmp) / "old"), "new": REPO / "src"}
        best = {side: {} for side in sides}
        ndcg = {side: {} for side in sides}
        for _ in range(args.rounds):
            for side, src in sides.items():
                out = Path(tmp) / f"items_{side}"
                out.mkdir(exist_ok=True)
                job = dict(data=args.data, train_task=args.train_task, run_store=args.run_store, model=args.model,
                           users=args.users, strategies=args.strategies, threads=args.threads, rows=args.rows,
                           max_length=args.max_length, out=str(out))
                results = run_side(src, job) if args.strategies else {}
                for config in args.train_configs:
                    train_out = Path(tmp) / f"train_{side}_{len(best[side])}_{config}"
                    [[seconds, ndcg[side][config]]] = run_side(
                        src, {**job, "train_configs": [config], "epochs": args.epochs, "out": str(train_out)}).values()
                    results[config] = seconds
                for name, value in results.items():
                    best[side][name] = min(value, best[side].get(name, float("inf")))
        import numpy as np
        from bench_common import cpu_name

        print(f"{cpu_name()}, {args.threads} thread(s) per side; old = {args.old}, new = working tree; best of "
              f"{args.rounds} round(s)")
        failed = False
        if args.strategies:
            print(f"generation: {args.users} test users, {args.train_task or 'random ' + args.model} weights, float32")
            print(f"{'strategy':<10} {'old ms/user':>12} {'new ms/user':>12} {'old/new':>8}  items")
        same_items = {}
        for name in args.strategies:
            same = same_items[name] = np.array_equal(np.load(Path(tmp) / "items_old" / f"{name}.npy"),
                                  np.load(Path(tmp) / "items_new" / f"{name}.npy"))
            failed |= not same
            old, new = best["old"][name], best["new"][name]
            print(f"{name:<10} {old:>12.2f} {new:>12.2f} {old / new:>7.2f}x  {'identical' if same else 'DIFFER'}")
        rows = [dict(kind="generation", name=name, unit="ms/user", old=round(best["old"][name], 3),
                     new=round(best["new"][name], 3), ratio=round(best["old"][name] / best["new"][name], 3),
                     check="identical" if same_items[name] else "DIFFER",
                     setting=f"{args.users} test users, {args.train_task or 'random ' + args.model}")
                for name in args.strategies]
        if args.train_configs:
            print(f"training: {args.epochs} epoch(s) per config and side, seconds per epoch (with its validation)")
            print(f"{'config':<16} {'old s/epoch':>12} {'new s/epoch':>12} {'old/new':>8}  val NDCG@10 old / new")
        for config in args.train_configs:
            old, new = best["old"][config], best["new"][config]
            print(f"{config:<16} {old:>12.2f} {new:>12.2f} {old / new:>7.2f}x  "
                  f"{ndcg['old'][config]:.4f} / {ndcg['new'][config]:.4f}")
            rows.append(dict(kind="training", name=config, unit="s/epoch", old=round(old, 3), new=round(new, 3),
                             ratio=round(old / new, 3),
                             check=f"val NDCG@10 {ndcg['old'][config]:.4f} / {ndcg['new'][config]:.4f}",
                             setting=f"{args.epochs} epochs"))
        if args.csv:
            import pandas as pd

            frame = pd.DataFrame(rows)
            frame.insert(0, "machine", f"{cpu_name()}, {args.threads} thread(s) per side")
            frame.insert(1, "old_rev", args.old)
            frame.to_csv(args.csv, index=False)
            print(f"wrote {args.csv}")
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
