"""List the runs of a run store with their status, and what is wrong with the broken ones.

One line per run: ID, kind, status, date, task name, key metric (a training run's best validation
next-item NDCG@10, a predict run's test NDCG@10), a predict run's strategy and parameters (from its config.yaml
``generation_params``, named as the experiment's report names them: ``rra T=0.3 top_k=50 N=20``), its parent (the
training run a predict run used), and the problems found (``seqrec.tracking.run_folder.RunFolder.health``). Exits 1 if
any run is broken, 0 otherwise; a run killed while training (marked running, process gone) is listed as ``killed``,
resumable, not broken.

    python scripts/check_runs.py                              # <repo>/runs (or $SEQREC_RUN_STORE)
    python scripts/check_runs.py --kind train --status failed interrupted killed
    python scripts/check_runs.py --task ml-1m_GPT --broken     # task names containing ml-1m_GPT, broken only
    python scripts/check_runs.py --run-store /data/runs --kind predict
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path



def generation_setting(params) -> str:
    """``rra T=0.3 top_k=50 N=20`` for a predict run's ``generation_params``: the strategy's report family and its
    label parameters, by the registry's label builder (the same text as the report's ``strategy`` and ``params``)."""
    from seqrec.core import registry

    if not isinstance(params, dict) or not params.get("strategy"):
        return ""
    family, label = registry.describe_generation(params)
    return f"{family} {label}".strip()


def describe(run_dir: Path) -> dict:
    from seqrec.config.upgrade import load_run_config
    from seqrec.tracking.run_folder import RunFolder
    from seqrec.tracking.run_store import process_alive

    folder = RunFolder(run_dir)
    data, problems = folder.health()
    status = str(data.get("status", "?"))
    if status == "running" and process_alive(data.get("process")) is False:
        status = "killed"
    metric = ""
    if data.get("status") == "completed" and folder.metrics.is_file():
        try:
            metrics = folder.read_metrics()
            key = "best_val_next_ndcg@10" if data.get("kind") == "train" else "test_ndcg@10"
            if isinstance(metrics.get(key), (int, float)):
                metric = f"{key}={metrics[key]:.4f}"
        except (OSError, ValueError):
            pass
    parent, setting = "", ""
    if data.get("kind") == "predict":
        try:
            config = load_run_config(folder, "predict")
        except Exception:  # noqa: BLE001 -- reported by the health check already
            config = {}
        parent = str(config.get("train_task", "") or "")
        setting = generation_setting(config.get("generation_params"))
    return {
        "id": run_dir.name, "kind": str(data.get("kind", "?")), "status": status,
        "date": str(data.get("created", ""))[:16].replace("T", " "), "task": str(data.get("task_name", "")),
        "metric": metric, "setting": setting, "parent": parent, "problems": problems,
    }


def main(argv: list[str] | None = None) -> int:
    from seqrec.cli.flags import renamed_flag
    from seqrec.core.errors import UserError
    from seqrec.tracking.run_store import SIDE_FOLDERS, existing_store

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run-store", default=None, help="the run store (default: <repo>/runs or $SEQREC_RUN_STORE)")
    ap.add_argument("--kind", choices=["train", "predict"], help="only runs of this kind")
    ap.add_argument("--status", nargs="+", help="only these statuses (running, completed, failed, interrupted, killed)")
    ap.add_argument("--task", help="only task names containing this text")
    ap.add_argument("--broken", action="store_true", help="only broken runs")
    renamed_flag(ap, "--store", "--run-store")
    args = ap.parse_args(argv)
    try:
        root = existing_store(args.run_store, "--run-store").root
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    rows = [describe(p) for p in sorted(root.iterdir()) if p.is_dir() and p.name not in SIDE_FOLDERS]
    rows.sort(key=lambda r: (r["date"], r["id"]))
    broken = sum(bool(r["problems"]) for r in rows)
    shown = [r for r in rows
             if (not args.kind or r["kind"] == args.kind) and (not args.status or r["status"] in args.status)
             and (not args.task or args.task in r["task"]) and (not args.broken or r["problems"])]
    for r in shown:
        line = (f"{r['id']:42s} {r['kind']:7s} {r['status']:11s} {r['date']:16s} {r['task'][:40]:40s} "
                f"{r['metric']:28s} {r['setting']:28s} {('<- ' + r['parent']) if r['parent'] else ''}")
        print(line.rstrip())
        for problem in r["problems"]:
            print(f"    BROKEN: {problem}")
    counts = {}
    for r in rows:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    print(f"{len(rows)} runs in {root} ({summary}); {broken} broken" + (f"; {len(shown)} shown" if len(shown) != len(rows) else ""))
    return 1 if broken else 0


if __name__ == "__main__":
    from seqrec.core.output import pipe_safe

    sys.exit(pipe_safe(main))  # `| head -1`: the table cut short quietly, no BrokenPipeError traceback
