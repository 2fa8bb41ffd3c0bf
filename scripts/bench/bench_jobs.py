"""Chains side by side vs one after the other: what ``reproduce_paper.py --jobs J`` buys on this CPU.

The same training runs are made two ways, in alternating rounds so machine noise hits both alike:
  sequential  one run after the other, each with every thread (what ``--jobs 1`` does)
  parallel    all runs at once, each with 1/J of them (what ``--jobs J`` does: ``threads_per_chain``)
and the wall time of each way is printed with their ratio (the best round of each). The networks here are small:
their matrix products use several threads poorly, so one-thread processes side by side get more done.

    python scripts/bench/bench_jobs.py [--data data/ml-1m.csv] [--configs GPT_train gSASRec_train] [--steps 190]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # scripts/bench/<this> -> the repository

from seqrec.experiments.plan import threads_per_chain  # (the thread split --jobs uses)
from seqrec.core.paths import REPO_ROOT


def command(config: str, data: str, steps: int, store: str) -> list[str]:
    return [sys.executable, str(ROOT / "src" / "run_train.py"), f"--config-name={config}", f"data_path={data}",
            f"task_name=bench_jobs_{config}", f"trainer_params.max_steps={steps}", "logger=none", f"run_store={store}",
            "trainer_params.enable_progress_bar=false", "trainer_params.enable_model_summary=false"]


def launch(cmd: list[str], threads: int) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    return subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def finish(process: subprocess.Popen) -> None:
    _, err = process.communicate()
    if process.returncode != 0:
        sys.exit(f"error: a benchmark run failed ({' '.join(process.args[2:4])}):\n{err[-2000:]}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(REPO_ROOT / "data" / "ml-1m.csv"),
                    help="prepared interaction CSV")
    ap.add_argument("--configs", nargs="+", default=["GPT_train", "gSASRec_train"],
                    help="training configs run as the chains (one each; their number is J)")
    ap.add_argument("--steps", type=int, default=190, help="optimizer steps per run (2 epochs of ML-1M at batch 64)")
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    if not Path(args.data).is_file():
        sys.exit(f"error: --data {args.data}: no such file; prepare it with python scripts/prepare_data.py")
    jobs = len(args.configs)
    alone, shared = threads_per_chain(1), threads_per_chain(jobs)
    print(f"{jobs} training runs of {args.steps} steps ({', '.join(args.configs)}) on {args.data}; {alone} threads")
    best = {"sequential": float("inf"), "parallel": float("inf")}
    with tempfile.TemporaryDirectory(prefix="bench_jobs_") as store:
        for r in range(args.rounds):
            for way in (("sequential", "parallel") if r % 2 == 0 else ("parallel", "sequential")):
                cmds = [command(c, args.data, args.steps, store) for c in args.configs]
                started = time.perf_counter()
                if way == "sequential":
                    for cmd in cmds:
                        finish(launch(cmd, alone))
                else:
                    for process in [launch(cmd, shared) for cmd in cmds]:
                        finish(process)
                seconds = time.perf_counter() - started
                best[way] = min(best[way], seconds)
                print(f"round {r + 1} {way:>10}: {seconds:6.1f} s", flush=True)
    print(f"\nsequential ({alone} threads each) {best['sequential']:.1f} s, parallel ({shared} "
          f"thread{'s' if shared > 1 else ''} each) {best['parallel']:.1f} s: "
          f"parallel is {best['sequential'] / best['parallel']:.2f}x faster (wall time, best round of each)")


if __name__ == "__main__":
    main()
