#!/usr/bin/env python
"""The paper's experiment in one command: train GPT-2, SASRec, gSASRec and BERT4Rec, generate with every strategy.

Each step is a normal tracked run (ClearML offline + run store); finished runs are reused, so the command
resumes after an interruption and re-running it only rebuilds the report. Outputs go to
results/<dataset>/ (summary.csv, training.csv, per_position.png, README.md).

Examples:
    python scripts/reproduce_paper.py --dataset ml-100k
    python scripts/reproduce_paper.py --dataset ml-1m --source ../shared/data/ml-1m
    python scripts/reproduce_paper.py --dataset data/my_log.csv --quick          # smoke run, runs/reports/my_log-quick/
    python scripts/reproduce_paper.py --dataset ml-1m --reuse GPT=<TRAIN_ID>     # use a model trained already
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

from seqrec.cli.entry import interruptible
from seqrec.core.errors import UserError
from seqrec.experiments.driver import (add_data_arguments, add_run_arguments, dataset_path, print_step, run_seconds,
                                       start_command, timing_record, training_record)

QUICK_TRAIN = ["trainer_params.max_epochs=2", "trainer_params.limit_train_batches=4", "dataloader.validation_size=100"]
QUICK_GRID = dict(beams=(2,), temperatures=(0.5,), sequences=(4,), paper_settings=())


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key or not value:
        raise argparse.ArgumentTypeError(f"expected MODEL=RUN_ID, got {text!r}")
    return key, value


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_arguments(parser)
    parser.add_argument("--quick", action="store_true", help="2 short epochs and a one-point grid (smoke test); "
                        "its report goes to <run store>/reports/<dataset>-quick, outside the tracked results/")
    parser.add_argument("--report-only", action="store_true",
                        help="rebuild the report from the finished runs in the run store; run nothing (missing steps "
                        "are listed and left out)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[42, 43, 44],
                        help="training seeds: every model is trained once per seed on the same split (default 42 43 44)")
    parser.add_argument("--models", nargs="+", default=None,
                        help="subset of the registered models (GPT SASRec gSASRec BERT4Rec and any plug-in)")
    parser.add_argument("--beams", nargs="+", type=int, default=[2, 3])
    parser.add_argument("--temperatures", nargs="+", type=float, default=[0.3, 0.6])
    parser.add_argument("--sequences", nargs="+", type=int, default=[10, 20, 50, 100],
                        help="N of multi-sequence aggregation")
    parser.add_argument("--independent-samples", action="store_true",
                        help="sample every multi-sequence setting on its own; by default the settings that differ only "
                        "in N and the aggregation share one pass of the largest N (the others aggregate its first "
                        "sequences: same estimate, other random draws; runs made before 2026-12 sampled independently)")
    parser.add_argument("--reduced-grid", nargs="+", default=[], metavar="MODEL",
                        help="for these models, RRA and RA only at the first temperature and the first N "
                        "(e.g. BERT4Rec, which has no KV cache and recomputes every step); 'auto': every model whose "
                        "declaration says it has no KV cache")
    parser.add_argument("--recgpt", nargs="*", default=None, metavar="MODEL",
                        help="RecGPT's stage: prompt-tune these models' runs (default: the models of --models whose "
                        "declaration has a prompt-tuning config and recgpt_by_default: GPT SASRec and any such plug-in; "
                        "gSASRec when named; replace_last P=1 on every seed, P=2,3 and insert on the first), then "
                        "Top-K, two-stage N=8,9 and RRA for pre-trained and tuned runs; adds recgpt.csv/.md/.png to "
                        "the report")
    parser.add_argument("--recgpt-no-ablation", action="store_true",
                        help="with --recgpt: only the main variant (replace_last P=1), on every seed")
    parser.add_argument("--features", nargs="*", default=None, metavar="VARIANT",
                        help="the attributes stage: train every model again with these attribute variants (default "
                        "items items_events; config group features/) on every seed; every training run, the ids-only "
                        "one included, generates with Top-K and RRA (T=0.3, N=20); adds features.csv/.md/.png")
    parser.add_argument("--reuse", action="append", type=_key_value, default=[], metavar="MODEL=TRAIN_ID",
                        help="use this completed training run for MODEL instead of training (repeatable)")
    parser.add_argument("--jobs", type=int, default=1, metavar="J",
                        help="run up to J independent chains (a model's training and its generation runs; a training "
                             "with attributes) at once, each with 1/J of the threads and its output in <run store>/logs/ "
                             "(on this 2-core CPU --jobs 2 is ~1.4x faster; scripts/bench/bench_jobs.py)")
    add_run_arguments(parser)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    start_command(args)  # absolute paths, the repo root as working directory, quiet libraries
    from seqrec.core import registry
    from seqrec.experiments.plan import Experiment, model_configs, strategy_grid
    from seqrec.core.io import atomic_to_csv
    from seqrec.evaluation.report import summary_row, build_summary, stage_times, write_report, TRAINING_COLUMNS

    started = time.perf_counter()
    try:
        label, data = dataset_path(args.dataset, args.source)
        grid = QUICK_GRID if args.quick else dict(beams=args.beams, temperatures=args.temperatures,
                                                   sequences=args.sequences)
        results = Path(args.results) if args.results else (Path(args.run_store) / "reports" if args.quick else ROOT / "results")
        out_dir = results / (f"{label}-quick" if args.quick else label)
        train_overrides = ["trainer_params.enable_progress_bar=false", "trainer_params.enable_model_summary=false"]
        reduced = [m.label for m in registry.components("model") if m.label and not m.kv_cache] \
            if args.reduced_grid == ["auto"] else args.reduced_grid
        from seqrec.experiments.plan import FeaturesPlan, RecGPTPlan

        recgpt = None
        if args.recgpt is not None:
            chosen = tuple(args.recgpt) or tuple(registry.recgpt_models(args.models))
            if not chosen:
                raise UserError(f"--recgpt: none of --models {' '.join(args.models or model_configs())} is prompt-tuned "
                                "by default; name the models (--recgpt MODEL ...) among "
                                f"{' '.join(registry.prompt_tunable()) or 'none registered'}")
            recgpt = RecGPTPlan(models=chosen, ablation=() if args.quick or args.recgpt_no_ablation else RecGPTPlan.ablation,
                                rra=(0.5, 4, 50) if args.quick else RecGPTPlan.rra)
        features = None
        if args.features is not None:
            features = FeaturesPlan(variants=tuple(args.features) or FeaturesPlan.variants,
                                    rra=(0.5, 4, 50) if args.quick else FeaturesPlan.rra)
        experiment = Experiment(
            data, dataset=f"{label}-quick" if args.quick else label, run_store=args.run_store,
            models=args.models or list(model_configs()), strategies=strategy_grid(**grid),
            train_overrides=train_overrides + (QUICK_TRAIN if args.quick else []) + args.train_override,
            predict_overrides=["progress=false", *args.predict_override], reuse=dict(args.reuse), logger=args.logger,
            seeds=args.seeds, report_only=args.report_only, recgpt=recgpt, features=features,
            share_samples=not args.independent_samples,
            model_strategies={m: strategy_grid(**{**grid, "temperatures": grid["temperatures"][:1],
                                                  "sequences": grid["sequences"][:1]}) for m in reduced},
        )

        outcomes = experiment.run(on_step=print_step, jobs=args.jobs)
        if experiment.missing:
            print(f"{len(experiment.missing)} step(s) not run yet, left out of the report: "
                  + "; ".join(experiment.missing[:5]) + ("; ..." if len(experiment.missing) > 5 else ""), file=sys.stderr)
        if not any(o.spec is not None for o in outcomes):
            raise UserError("no finished predict runs for these models and seeds in the run store; run the command "
                            "without --report-only first")
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1

    rows, training, timing = [], [], []
    by_hardware: dict[str, float] = {}
    for o in outcomes:
        timing.append(timing_record(o))
        by_hardware[timing[-1]["hardware"]] = by_hardware.get(timing[-1]["hardware"], 0.0) + run_seconds(o.run)
        metrics = o.metrics()
        if o.spec is None:
            training.append(training_record(o, metrics))
            train_id = o.run.task_id
        else:
            rows.append(summary_row(o.model, o.spec.strategy, o.spec.label, metrics, train_id, o.run.task_id,
                                    seed=o.seed, run_dir=o.run.path))
    import pandas as pd

    compute_seconds = sum(by_hardware.values())

    shown = [a for a in (argv or sys.argv[1:]) if a != "--report-only"]
    command = "python scripts/reproduce_paper.py " + " ".join(shlex.quote(a) for a in shown)
    if args.report_only:
        command += "\n# report rebuilt from that command's finished runs with --report-only"
    from seqrec.data.split import load_interactions, split_interactions

    tied = split_interactions(load_interactions(data)).tied_holdout_share
    summary = build_summary(rows)
    paths = write_report(summary, out_dir, label, command=command, quick=args.quick, tied_share=tied,
                         missing=experiment.missing,
                         training=pd.DataFrame(training, columns=TRAINING_COLUMNS), elapsed_seconds=compute_seconds,
                         seconds_by_hardware=by_hardware)
    if recgpt is not None:
        from seqrec.evaluation.recgpt_report import write_recgpt_report

        paths.update(write_recgpt_report(summary, out_dir))
    if features is not None:
        from seqrec.evaluation.features_report import write_features_report

        paths.update(write_features_report(summary, out_dir))
    paths["timing"] = out_dir / "timing.csv"
    atomic_to_csv(pd.DataFrame(timing), paths["timing"])
    reused = sum(t["reused"] for t in timing)
    print(f"\nseconds per run, summed by stage (each run's own duration{f'; {reused} of {len(timing)} runs reused from the run store' if reused else ''}):")
    print(stage_times(timing).to_string())
    from seqrec.experiments.plan import run_counts

    print(f"{run_counts(len(rows), [(t['model'], t['seed']) for t in training])}; compute time of all runs "
          f"{compute_seconds / 60:.1f} min, this invocation {(time.perf_counter() - started) / 60:.1f} min")
    for name, path in paths.items():
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(interruptible(main))  # SIGTERM/Ctrl-C: the open run is marked interrupted, one line, exit 130
