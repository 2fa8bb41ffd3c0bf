#!/usr/bin/env python
"""The literature's cross-check: our models on ML-1M under leave-one-out, beside the published numbers (issue 31).

Trains SASRec (BCE, one negative), SASRec+ (full softmax, three seeds), gSASRec, BERT4Rec and GPT-2 (one seed each)
with their literature configs (src/configs/<model>_loo_train.yaml, protocol=leave_one_out) on the log less the items
rated by fewer than 5 users (SASRec's preprocessing, which the papers used), each for at most --budget-min minutes of
wall-clock training (trainer_params.max_time) or its config's epochs if fewer; then Top-K on every user. Every step is
a normal tracked run, and a finished run with the same settings is reused, so the command resumes after an
interruption and re-running it only rebuilds the report: results/<dataset>-loo/ (README.md, cross_check.csv,
runs.csv, training.csv, published.csv, timing.csv). The published numbers and their sources:
src/seqrec/evaluation/published_loo.py.

Examples:
    python scripts/cross_check.py --dataset ml-1m --source ../shared/data/ml-1m --budget-min 30 --jobs 2
    python scripts/cross_check.py --dataset ml-1m --budget-min 30 --report-only    # the report from finished runs
    python scripts/cross_check.py --dataset data/my_log.csv --quick                # smoke run: <run store>/reports/
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

from seqrec.cli.entry import interruptible
from seqrec.core.errors import UserError
from seqrec.experiments.cross_check import (BUDGET_MINUTES, MIN_ITEM_USERS, PLUS_SEEDS, QUICK_BUDGET_MINUTES, SEEDS,
                                            TRAIN_CONFIGS)
from seqrec.experiments.driver import (add_data_arguments, add_run_arguments, dataset_path, hardware_of, print_step,
                                       run_seconds, start_command, timing_record, training_record)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_arguments(parser)
    parser.add_argument("--budget-min", type=float, default=None, metavar="MIN",
                        help=f"wall-clock training budget per run in minutes (default {BUDGET_MINUTES:g}; "
                        f"{QUICK_BUDGET_MINUTES:g} with --quick); a config's epochs end it sooner where fewer")
    parser.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS),
                        help="training seeds of every model but SASRec+ (default 42)")
    parser.add_argument("--seeds-plus", nargs="+", type=int, default=list(PLUS_SEEDS),
                        help="training seeds of SASRec+ (default 42 43 44): its seed spread beside the interval")
    parser.add_argument("--models", nargs="+", default=None, metavar="MODEL",
                        help=f"a subset of {' '.join(TRAIN_CONFIGS)}")
    parser.add_argument("--min-item-users", type=int, default=MIN_ITEM_USERS, metavar="N",
                        help=f"drop the items rated by fewer than N users first (default {MIN_ITEM_USERS}: the "
                        "literature's ML-1M; 0 keeps every item)")
    parser.add_argument("--jobs", type=int, default=1, metavar="J",
                        help="run up to J chains (a training and its predict run) at once, each with 1/J of the "
                        "threads, its output in <run store>/logs/")
    parser.add_argument("--report-only", action="store_true",
                        help="rebuild the report from the finished runs in the run store; run nothing")
    parser.add_argument("--quick", action="store_true",
                        help="small networks and seconds of budget (smoke test); the report goes to "
                        "<run store>/reports/<dataset>-loo-quick, outside the tracked results/")
    add_run_arguments(parser, report="<dataset>-loo")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    start_command(args)
    from seqrec.experiments.cross_check import (check_models, check_seeds, cross_check_experiment, filtered_log,
                                                max_time)

    started = time.perf_counter()
    budget = args.budget_min if args.budget_min is not None else (QUICK_BUDGET_MINUTES if args.quick else BUDGET_MINUTES)
    try:
        if args.jobs < 1:  # the bad inputs first: nothing is prepared or written for them
            raise UserError(f"--jobs {args.jobs}: give 1 or more chains to run at once")
        max_time(budget)
        check_models(args.models)
        check_seeds("--seeds", args.seeds)
        check_seeds("--seeds-plus", args.seeds_plus)
        if args.min_item_users < 0:
            raise UserError(f"--min-item-users {args.min_item_users}: give 0 (keep every item) or a positive count "
                            "of users")
        label, source_csv = dataset_path(args.dataset, args.source)
        data = filtered_log(source_csv, args.min_item_users)
        name = f"{label}-loo" + ("-quick" if args.quick else "")
        results = Path(args.results) if args.results else (Path(args.run_store) / "reports" if args.quick else ROOT / "results")
        experiment = cross_check_experiment(
            data, name, args.run_store, models=args.models, seeds=args.seeds, plus_seeds=args.seeds_plus,
            budget_minutes=budget, quick=args.quick, logger=args.logger, report_only=args.report_only,
            train_overrides=args.train_override, predict_overrides=args.predict_override)
        outcomes = experiment.run(on_step=print_step, jobs=args.jobs)
        if not any(o.spec is not None for o in outcomes):
            raise UserError("no finished leave-one-out predict runs for these models and seeds in the run store; run "
                            "the command without --report-only first")
        if experiment.missing:
            print(f"{len(experiment.missing)} step(s) not run yet, left out of the report: "
                  + "; ".join(experiment.missing[:5]) + ("; ..." if len(experiment.missing) > 5 else ""), file=sys.stderr)
        paths = report(args, outcomes, experiment, source_csv, data, results / name, budget, argv)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"compute time of all runs {sum(run_seconds(o.run) for o in outcomes) / 60:.1f} min, this invocation "
          f"{(time.perf_counter() - started) / 60:.1f} min")
    for key, path in paths.items():
        print(f"{key}: {path}")
    return 0


def report(args, outcomes, experiment, source_csv: Path, data: Path, out_dir: Path, budget: float, argv) -> dict:
    """The report's inputs from the outcomes (per-seed predict runs, training records with how each ended), then
    :func:`write_cross_check_report`."""
    import pandas as pd

    from seqrec.core.io import atomic_to_csv
    from seqrec.data.split import load_interactions
    from seqrec.evaluation.loo_cross_check import (data_facts, popularity_level, read_history, validation_trend,
                                                   write_cross_check_report)
    from seqrec.evaluation.report import leave_one_out_table

    rows, training, timing, splits = [], [], [], {}
    by_hardware: dict[str, float] = {}
    for o in outcomes:
        timing.append(timing_record(o))
        by_hardware[timing[-1]["hardware"]] = by_hardware.get(timing[-1]["hardware"], 0.0) + run_seconds(o.run)
        if o.spec is None:
            training.append({**training_record(o, o.metrics()),
                             **validation_trend(read_history(o.run.path), popularity=popularity_level(o.run.path, splits))})
        else:
            rows.append({"model": o.model, "seed": o.seed, "run_dir": o.run.path})
    runs = leave_one_out_table(rows)
    runs["run_dir"] = [r["run_dir"] for r in rows]

    def ordered(frame):
        return frame.sort_values("model", key=lambda s: s.map(list(TRAIN_CONFIGS).index), kind="stable")

    runs = ordered(runs)
    training = ordered(pd.DataFrame(training)) if training else pd.DataFrame()
    source = load_interactions(source_csv).sort_values(["user_id", "timestamp"], kind="stable")
    used = load_interactions(data) if data != source_csv else source
    trained_on = Counter(hardware_of(o.run) for o in outcomes if o.spec is None)
    shown = [a for a in (argv or sys.argv[1:]) if a != "--report-only"]
    command = "python scripts/cross_check.py " + " ".join(shlex.quote(a) for a in shown)
    if args.report_only:
        command += "\n# report rebuilt from that command's finished runs with --report-only"
    paths = write_cross_check_report(
        runs, training, out_dir, dataset="ML-1M" if source_csv.stem == "ml-1m" else source_csv.stem, command=command, facts=data_facts(source, used, args.min_item_users),
        budget_minutes=budget, hardware=trained_on.most_common(1)[0][0] if trained_on else "",
        seconds_by_hardware=by_hardware, quick=args.quick, missing=experiment.missing,
        n_resamples=1000 if args.quick else 10_000)
    paths["timing"] = atomic_to_csv(pd.DataFrame(timing), out_dir / "timing.csv", index=False)
    reused = sum(t["reused"] for t in timing)
    print(f"{len(rows)} predict runs, {len(training)} training runs"
          + (f"; {reused} of {len(timing)} runs reused from the run store" if reused else ""))
    return paths


if __name__ == "__main__":
    sys.exit(interruptible(main))  # SIGTERM/Ctrl-C: the open run is marked interrupted, one line, exit 130
