"""scripts/reproduce_paper.py: the report builder on fake runs, and a --quick run (then a resume) on synthetic data."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from conftest import ROOT
from seqrec.data.synthetic import make_synthetic
from seqrec.experiments.plan import StrategySpec, sample_groups, strategy_grid
from seqrec.evaluation.report import (POS_COLUMNS, best_per_strategy, build_summary, claim_check, paired_comparisons,
                           summary_row, write_report)


def fake_metrics(ndcg, val, pos):
    m = {"test_map@10": ndcg / 2, "test_ndcg@10": ndcg, "test_recall@10": float(np.mean(pos)), "val_ndcg@10": val,
         "test_coverage@10": 0.5, "test_novelty@10": 9.0, "test_entropy@10": 5.0, "test_ms_per_user": 1.0}
    m.update({f"test_recall@10_pos{p}": v for p, v in enumerate(pos)})
    return m


def fake_summary():
    falling = [0.4 - 0.03 * p for p in range(10)]  # Top-K: strong next item, weak late
    flat = [0.25] * 10                               # generation: flat, ahead from position 5 on
    rows = [
        summary_row("GPT", "topk", "", fake_metrics(0.20, 0.20, falling), "t1", "p1"),
        summary_row("GPT", "greedy", "", fake_metrics(0.18, 0.18, [0.2] * 10), "t1", "p2"),
        summary_row("GPT", "rra", "T=0.3 N=10", fake_metrics(0.22, 0.19, flat), "t1", "p3"),
        summary_row("GPT", "rra", "T=0.6 N=10", fake_metrics(0.30, 0.10, [0.3] * 10), "t1", "p4"),  # best test, worse val
    ]
    return build_summary(rows)


def test_best_setting_is_chosen_on_validation_not_test():
    best = best_per_strategy(fake_summary())
    assert list(best["strategy"]) == ["topk", "greedy", "rra"]
    assert best.loc[best["strategy"] == "rra", "params"].item() == "T=0.3 N=10"
    multi = best_per_strategy(fake_summary(), with_multi=True).set_index("family").loc["multi"]
    assert multi["params"] == "T=0.3 N=10"  # the better of rra/ra on validation, not on test


def test_claim_check_without_per_user_values_gives_no_verdict():
    (line,) = claim_check(fake_summary())
    # late positions 5..9: Top-K mean = 0.4 - 0.03 * 7 = 0.19, rra (chosen on val) 0.25
    assert "point estimates only" in line and "no verdict" in line
    assert "NDCG@10 0.2200 vs Top-K 0.2000; late recall 0.2500 vs 0.1900" in line


def write_fake_run(root, name, hits):
    """A predict run folder with per_user.parquet: ``hits`` [users, 10] 0/1 per held-out position."""
    hits = np.asarray(hits, dtype=float)
    run = root / name
    run.mkdir(parents=True)
    frame = pd.DataFrame({f"recall@10_pos{p}": hits[:, p] for p in range(10)})
    frame[[f"ndcg@10_pos{p}" for p in range(10)]] = hits / 2
    frame["ndcg@10"] = hits.mean(axis=1)  # any per-user number will do: the report only averages and differences it
    frame["part"], frame["user_id"] = "test", np.arange(len(hits))
    frame.to_parquet(run / "per_user.parquet")
    metrics = {"test_ndcg@10": float(frame["ndcg@10"].mean()), "val_ndcg@10": float(frame["ndcg@10"].mean()),
               **{f"test_recall@10_pos{p}": float(hits[:, p].mean()) for p in range(10)}}
    return metrics, run


def fake_runs(tmp_path, shift, seeds=(1, 2)):
    """Top-K and RRA runs on 400 users; RRA's late positions differ by ``shift`` (0: the same lists' hits)."""
    rows = []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        base = (rng.random((400, 10)) < 0.2).astype(float)
        other = base.copy()
        if shift:
            flip = rng.random((400, 5)) < shift  # extra hits at late positions only
            other[:, 5:] = np.maximum(other[:, 5:], flip)
        for strategy, params, hits in (("topk", "", base), ("rra", "T=0.3 N=10", other)):
            metrics, run = write_fake_run(tmp_path, f"{strategy}{seed}", hits)
            rows.append(summary_row("GPT", strategy, params, metrics, "t", run.name, seed=seed, run_dir=run))
    return build_summary(rows)


def test_paired_comparisons_from_per_user_values(tmp_path):
    comparisons = paired_comparisons(fake_runs(tmp_path, shift=0.3), n_resamples=2000)
    late = comparisons[(comparisons["family"] == "multi") & (comparisons["horizon"] == "late")].set_index("seed")
    assert set(late.index) == {1, 2, "pooled"}
    # the next item is untouched: identical per-user values, so difference 0 exactly, p = 1, not separable
    nxt = comparisons[(comparisons["family"] == "rra") & (comparisons["horizon"] == "next")]
    assert (nxt["diff"] == 0).all() and (nxt["p"] == 1).all() and (nxt["verdict"] == "not separable").all()
    # late: 30 % of the ~80 % non-hits turn into hits -> expected gain 0.3 * 0.8 = 0.24 per position. A user's gain is
    # a mean of 5 Bernoulli(0.24) draws (sd sqrt(.24 * .76 / 5) = 0.19), so the mean over 400 users has SE 0.0095 and
    # 0.03 is ~3 SE; the pooled value averages 2 seeds, which only narrows it
    assert late.loc["pooled", "diff"] == pytest.approx(0.24, abs=0.03)
    assert (late["verdict"] == "ahead").all() and (late["diff_low"] > 0).all()
    # pooled = mean over seeds of each user's difference, so its mean is the mean of the per-seed means
    assert late.loc["pooled", "diff"] == pytest.approx((late.loc[1, "diff"] + late.loc[2, "diff"]) / 2)


def test_report_files(tmp_path):
    summary = fake_runs(tmp_path / "runs", shift=0.3)
    training = pd.DataFrame([{"model": "GPT", "seed": 1, "loss": "CrossEntropy", "epochs": 3, "best_epoch": 2,
                              "seconds_per_epoch": 1.5, "fit_seconds": 4.5, "best_val_next_ndcg@10": 0.2,
                              "hardware": "NVIDIA H200, bf16-mixed", "train_task": "t1"}])
    paths = write_report(summary, tmp_path / "ml-1m", "ml-1m", command="python scripts/reproduce_paper.py --dataset ml-1m",
                         training=training, elapsed_seconds=600, n_resamples=1000,
                         seconds_by_hardware={"CPU X, 2 threads": 150, "NVIDIA H200": 450})
    back = pd.read_csv(paths["summary"], keep_default_na=False)
    assert list(back.columns[:5]) == ["model", "seed", "strategy", "params", "test_map@10"]
    assert back["late_verdict_vs_topk"].tolist() == ["", "ahead", "", "ahead"]
    assert paths["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = paths["readme"].read_text()
    assert "10.0 min (NVIDIA H200: 7.5 min; CPU X, 2 threads: 2.5 min)." in text
    assert "| GPT | late |" in text and "**ahead** | 1: ahead, 2: ahead |" in text
    assert "chosen on validation" in text and "![per-position metrics](per_position.png)" in text


def test_strategy_grid_and_names():
    grid = strategy_grid(beams=(2, 3), temperatures=(0.3, 0.6), sequences=(10, 20))
    families = [s.strategy for s in grid]
    # 2 temperatures x 2 N, plus the paper's best ML-20M setting of each aggregation (PROTOCOL.md)
    assert families.count("rra") == families.count("ra") == 5 and families.count("beam") == 2
    assert {s.label for s in grid if s.strategy != "topk"} >= {"T=0.6 top_k=20 N=30", "T=0.7 top_k=50 N=30"}
    assert len(strategy_grid()) == 6 + 2 * 2 * 4 + 2  # the default grid: N = 10, 20, 50, 100
    assert len({s.slug for s in grid}) == len(grid)  # every step has its own task name
    rra = StrategySpec("rra", "temperature", (("temperature", 0.3), ("top_k", 50), ("num_return_sequences", 20),
                                              ("aggregation", "rra")))
    assert rra.label == "T=0.3 top_k=50 N=20"
    # settings that differ only in N and the aggregation share one sampling pass: per temperature, RRA at the largest N
    groups = sample_groups(strategy_grid())
    sources = {source for source, _ in groups.values()}
    assert {s.label for s in sources} == {"T=0.3 top_k=50 N=100", "T=0.6 top_k=50 N=100"}
    assert {s.strategy for s in sources} == {"rra"} and len(groups) == 2 * 2 * 4
    assert all(ns == (10, 20, 50, 100) for _, ns in groups.values())
    assert all(dict(s.params)["temperature"] == dict(source.params)["temperature"] for s, (source, _) in groups.items())
    assert not {s.label for s in groups} & {"T=0.6 top_k=20 N=30", "T=0.7 top_k=50 N=30"}  # alone in their group
    ra_only = [s for s in grid if s.strategy == "ra" and s.label == "T=0.3 top_k=50 N=20"]
    assert sample_groups(ra_only) == {}
    pair = sample_groups([rra, StrategySpec("ra", "temperature", (*rra.params[:3], ("aggregation", "ra")))])
    assert {source for source, _ in pair.values()} == {rra} and set(pair.values()) == {(rra, (20,))}
    assert rra.overrides() == ["generation_params.temperature=0.3", "generation_params.top_k=50",
                               "generation_params.num_return_sequences=20", "generation_params.aggregation=rra"]


def test_labels_and_recgpt_models_come_from_the_declarations():
    """The report's ``params`` label is built from each strategy's declared ``label_params`` (built-ins: today's
    labels), a predict run's ``generation_params`` get the same names (check_runs), and RecGPT's stage takes the models
    whose declaration names a prompt-tuning config."""
    from seqrec.core import registry
    from seqrec.experiments.plan import RecGPTPlan

    grid = strategy_grid(beams=(2,), temperatures=(0.3,), sequences=(20,), paper_settings=())
    assert [(s.strategy, s.label) for s in grid] == [
        ("topk", ""), ("greedy", ""), ("beam", "B=2"), ("sampling", "T=0.3 top_k=50 N=1"),
        ("rra", "T=0.3 top_k=50 N=20"), ("ra", "T=0.3 top_k=50 N=20"), ("two_stage", "first=9")]
    run = {"strategy": "sampling", "temperature": 0.3, "top_k": 50, "top_p": 1.0, "num_return_sequences": 20,
           "aggregation": "ra", "prefix_sequences": None, "do_sample": True}
    assert registry.describe_generation(run) == ("ra", "T=0.3 top_k=50 N=20")
    assert registry.describe_generation({**run, "num_return_sequences": 1}) == ("sampling", "T=0.3 top_k=50 N=1")
    assert registry.describe_generation({"strategy": "two_stage", "first_stage": 8, "prompt_steps": 1}) == (
        "two_stage", "first=8")
    assert registry.describe_generation({"strategy": "not_loaded", "x": 1}) == ("not_loaded", "")
    assert registry.prompt_tunable() == {"GPT": "GPT_prompt_tune", "SASRec": "SASRec_prompt_tune",
                                         "gSASRec": "gSASRec_prompt_tune"}
    assert RecGPTPlan().models == ("GPT", "SASRec")  # gSASRec only when named
    assert registry.recgpt_models(["SASRec", "gSASRec", "BERT4Rec"]) == ["SASRec"]


@pytest.mark.parametrize("args, line", [
    (["--models", "GPT", "BERT4Rec", "--recgpt", "BERT4Rec"],
     "error: --recgpt: BERT4Rec declares no prompt-tuning config (prompt_tune_config); choose among GPT SASRec gSASRec"),
    (["--models", "GPT", "--recgpt", "SASRec"],
     "error: --recgpt SASRec: the experiment does not train SASRec; add it to --models"),
    (["--models", "BERT4Rec", "--recgpt"],
     "error: --recgpt: none of --models BERT4Rec is prompt-tuned by default; name the models (--recgpt MODEL ...) "
     "among GPT SASRec gSASRec"),
])
def test_bad_recgpt_models_are_one_line(tmp_path, args, line):
    data = tmp_path / "syn.csv"
    make_synthetic(n_users=30, n_items=20, min_len=10, max_len=12, seed=1).to_csv(data, index=False)
    result = _run(["--dataset", str(data), "--quick", "--run-store", str(tmp_path / "runs"), "--logger", "none",
                   *args], tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [line]
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())  # nothing was trained


def _run(args, cwd):
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "reproduce_paper.py"), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=600)


def test_quick_run_then_resume(tmp_path):
    data = tmp_path / "syn.csv"
    make_synthetic(n_users=160, n_items=60, min_len=25, max_len=40, seed=3).to_csv(data, index=False)
    args = ["--dataset", str(data), "--quick", "--run-store", str(tmp_path / "runs"), "--results",
            str(tmp_path / "results"), "--logger", "none", "--train-override", "dataloader.validation_size=40",
            "--seeds", "7"]
    first = _run([*args, "--jobs", "2"], tmp_path)  # two chains at once; the resume below runs one at a time
    assert first.returncode == 0, first.stderr[-2000:]
    out = tmp_path / "results" / "syn-quick"
    summary = pd.read_csv(out / "summary.csv", keep_default_na=False)
    n_strategies = len(strategy_grid(beams=(2,), temperatures=(0.5,), sequences=(4,), paper_settings=()))
    assert len(summary) == 4 * n_strategies
    assert set(summary["model"]) == {"GPT", "SASRec", "gSASRec", "BERT4Rec"}
    assert summary["test_ndcg@10"].between(0, 1).all() and summary[POS_COLUMNS].notna().all().all()
    # each row's numbers are those of its run's metrics.json
    row = summary.iloc[5]
    metrics = json.loads((tmp_path / "runs" / row["predict_task"] / "metrics.json").read_text())
    assert row["test_ndcg@10"] == pytest.approx(metrics["test_ndcg@10"])
    assert len(pd.read_csv(out / "training.csv")) == 4
    readme = (out / "README.md").read_text()
    assert (out / "per_position.png").stat().st_size > 0 and "## All runs" in readme and "quick smoke run" in readme
    # the time table: one row per run in timing.csv, and the per-stage sums printed at the end
    timing = pd.read_csv(out / "timing.csv")
    assert len(timing) == 4 * (1 + n_strategies) and (timing["stage"] == "train").sum() == 4
    assert not timing["reused"].any() and (timing["seconds"] > 0).all()
    # RA at the one (T, N) of the quick grid aggregates the sequences its RRA run sampled
    for model, rows in summary.groupby("model"):
        rra_run, ra_run = (rows.loc[rows["strategy"] == name, "predict_task"].item() for name in ("rra", "ra"))
        assert json.loads((tmp_path / "runs" / ra_run / "run.json").read_text())["samples_from"] == rra_run
        assert (tmp_path / "runs" / rra_run / "nested.npz").is_file()
    assert "seconds per run, summed by stage" in first.stdout and "\ntotal " in first.stdout
    # each chain (a model on a seed) ran in a worker with one of the two cores and wrote its output to its own log
    assert "running 4 chains, 2 at a time with 1 thread each" in first.stderr
    for model in ("GPT", "SASRec", "gSASRec", "BERT4Rec"):
        log_text = (tmp_path / "runs" / "logs" / f"syn-quick_{model}_s7.log").read_text()
        assert log_text.startswith("--- ") and f"{model} seed 7 (pid " in log_text and "1 thread)" in log_text
        assert "INFO seqrec: epoch 1: val_" in log_text and "INFO seqrec: strategy: multisequence RRA" in log_text
    for run_log in (tmp_path / "runs").glob("*/run.log"):  # each run's own log as a run made alone has it
        assert " INFO " in run_log.read_text(), run_log
    steps = [line for line in first.stdout.splitlines() if line.startswith("[")]
    assert [int(line[1:].split("/")[0]) for line in steps] == list(range(1, len(steps) + 1))  # numbered on arrival

    runs_before = sorted(p.name for p in (tmp_path / "runs").iterdir())
    second = _run(args, tmp_path)
    assert second.returncode == 0, second.stderr[-2000:]
    steps = [line for line in second.stdout.splitlines() if line.startswith("[")]
    assert len(steps) == 4 * (1 + n_strategies) and all(line.endswith("(reused)") for line in steps)
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == runs_before  # nothing recomputed
    assert pd.read_csv(out / "summary.csv", keep_default_na=False).equals(summary)

    # a finished step whose stored config no longer matches what its config file composes is run again;
    # where a run is stored/logged and options it predates don't count
    gpt_train = pd.read_csv(out / "training.csv").set_index("model").loc["GPT", "train_task"]
    stored = tmp_path / "runs" / gpt_train / "config.yaml"
    stored.write_text(stored.read_text().replace("patience: 10", "patience: 7"))
    sas_train = pd.read_csv(out / "training.csv").set_index("model").loc["SASRec", "train_task"]
    other = tmp_path / "runs" / sas_train / "config.yaml"
    text = other.read_text().replace(str(tmp_path / "runs"), "/elsewhere/runs")
    other.write_text("\n".join(line for line in text.splitlines() if not line.startswith("resume:")) + "\n")
    third = _run([*args, "--models", "GPT", "SASRec"], tmp_path)
    assert third.returncode == 0, third.stderr[-2000:]
    assert "patience=10 (the run has 7)" in third.stderr
    steps = [line for line in third.stdout.splitlines() if line.startswith("[")]
    recomputed = [line for line in steps if not line.endswith("(reused)")]
    assert len(recomputed) == 1 + n_strategies and all(" GPT " in line for line in recomputed), recomputed
    new_runs = set(p.name for p in (tmp_path / "runs").iterdir()) - set(runs_before)
    assert len(new_runs) == 1 + n_strategies
    assert pd.read_csv(out / "training.csv").set_index("model").loc["GPT", "train_task"] in new_runs


def test_stage_times_by_hand():
    from seqrec.evaluation.report import stage_times

    records = [
        {"model": "GPT", "seed": 1, "stage": "train", "seconds": 100.4},
        {"model": "GPT", "seed": 1, "stage": "topk", "seconds": 2.0},
        {"model": "GPT", "seed": 1, "stage": "temperature", "seconds": 30.0},
        {"model": "GPT", "seed": 1, "stage": "temperature", "seconds": 12.0},
        {"model": "SASRec", "seed": 1, "stage": "train", "seconds": 50.0},
        {"model": "SASRec", "seed": 1, "stage": "temperature", "seconds": 8.0},
    ]
    table = stage_times(records)
    assert list(table.columns) == ["train", "topk", "temperature", "total"]
    assert table.loc[("GPT", 1)].tolist() == [100, 2, 42, 144]
    assert table.loc[("SASRec", 1)].tolist() == [50, 0, 8, 58]
    assert table.loc[("total", "")].tolist() == [150, 2, 50, 202]
    assert stage_times([]).empty


def test_bad_dataset_is_one_line(tmp_path):
    result = _run(["--dataset", str(tmp_path / "nope.csv")], tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: --dataset {tmp_path / 'nope.csv'}: not a MovieLens name (ml-100k, ml-1m, ml-20m) nor an existing CSV file"
    ]


def test_report_only_runs_nothing(tmp_path):
    data = tmp_path / "syn.csv"
    make_synthetic(n_users=60, n_items=30, min_len=15, max_len=20, seed=1).to_csv(data, index=False)
    result = _run(["--dataset", str(data), "--quick", "--report-only", "--seeds", "1", "--models", "GPT",
                   "--run-store", str(tmp_path / "runs"), "--logger", "none"], tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("error: no finished predict runs")
    assert "not run yet, left out of the report: GPT seed 1: training and" in result.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())  # nothing was trained


def test_the_plan_shares_samples_unless_told_not_to(tmp_path, tiny_csv):
    """Which overrides each multi-sequence step gets, with fake runs (no training): per group the largest N samples
    with every N of its group as prefixes and the others name it in samples_from; ``share_samples=False`` (the
    ``--independent-samples`` flag) gives plain steps; settings alone in their group are plain either way."""
    from seqrec.experiments.plan import Experiment
    from seqrec.tracking.run_store import RunStore

    calls = []

    def fake(kind):
        def run(cfg):
            _completed_run(store, f"{kind}-{len(calls)}", kind, cfg)
            calls.append(cfg)
            return 0.0
        return run

    grid = strategy_grid(beams=(2,), temperatures=(0.3,), sequences=(10, 20))
    for share in (True, False):
        calls.clear()
        store = RunStore(tmp_path / "runs" / str(share))  # the fakes write here
        Experiment(tiny_csv, "tiny", run_store=tmp_path / "runs" / str(share), models=["GPT"], strategies=grid,
                   logger="none", share_samples=share, train_fn=fake("train"), predict_fn=fake("predict")).run()
        multi = {c.task_name.split("_s42_")[1]: c for c in calls if c.get("generation_params", {}).get(
            "num_return_sequences", 1) > 1}
        prefixes = {name: c.generation_params.get("prefix_sequences") for name, c in multi.items()}
        taken = {name: c.get("samples_from") for name, c in multi.items()}
        assert set(multi) == {"rra_T0.3_top_k50_N10", "rra_T0.3_top_k50_N20", "ra_T0.3_top_k50_N10",
                              "ra_T0.3_top_k50_N20", "rra_T0.6_top_k20_N30", "ra_T0.7_top_k50_N30"}
        if share:
            source = next(r.task_id for r in store.list_runs("predict") if r.task_name.endswith("_rra_T0.3_top_k50_N20"))
            assert prefixes == {**dict.fromkeys(multi), "rra_T0.3_top_k50_N20": [10, 20]}
            assert taken == {**dict.fromkeys(multi), "rra_T0.3_top_k50_N10": source, "ra_T0.3_top_k50_N10": source,
                             "ra_T0.3_top_k50_N20": source}
        else:
            assert prefixes == taken == dict.fromkeys(multi)


def _completed_run(store, task_id, kind, cfg) -> None:
    """What a fake step leaves: a completed run with its config."""
    from omegaconf import OmegaConf

    store.create(task_id, kind, cfg.task_name)
    (store.path(task_id, kind=None) / "config.yaml").write_text(OmegaConf.to_yaml(cfg))
    store.finish(task_id)


def _fake_step(kind, cfg):
    """A stand-in for training / predicting (module level: worker processes unpickle it): makes a completed run,
    except that SASRec's training fails."""
    import uuid

    from seqrec.core.errors import UserError
    from seqrec.tracking.run_store import RunStore

    if kind == "train" and "_SASRec_" in cfg.task_name:
        raise UserError("SASRec training failed on purpose")
    if "+items_s3_" in cfg.task_name:  # slow beside the failing chain: the failure is seen while it still runs
        import time

        time.sleep(1)
    _completed_run(RunStore(cfg.run_store), f"{kind}-{uuid.uuid4().hex}", kind, cfg)
    return 0.0


def test_chains_in_parallel_keep_plan_order_and_a_failure_keeps_the_others(tmp_path, tiny_csv):
    """``run(jobs=2)``: the chains are one per model (and one per attribute variant), their outcomes come back in the
    order of the plan whatever finishes first, and a chain that fails is reported after the others have finished,
    whose runs stay in the store for the next invocation to reuse."""
    import functools

    from seqrec.core.errors import UserError
    from seqrec.experiments.plan import Experiment, FeaturesPlan, Unit
    from seqrec.tracking.run_store import RunStore

    grid = [StrategySpec("topk", "predict")]
    fakes = dict(train_fn=functools.partial(_fake_step, "train"), predict_fn=functools.partial(_fake_step, "predict"))
    features = FeaturesPlan(variants=("items",))
    common = dict(strategies=grid, logger="none", features=features, **fakes)
    store = tmp_path / "runs"
    plan = Experiment(tiny_csv, "tiny", run_store=store, models=["GPT", "gSASRec"], seeds=[1, 2], **common)
    assert plan.units() == [Unit(0, 1, "GPT"), Unit(0, 1, "GPT", "items"), Unit(0, 1, "gSASRec"),
                            Unit(0, 1, "gSASRec", "items"), Unit(1, 2, "GPT"), Unit(1, 2, "GPT", "items"),
                            Unit(1, 2, "gSASRec"), Unit(1, 2, "gSASRec", "items")]
    seen = []
    outcomes = plan.run(on_step=lambda o, done, total: seen.append((done, total)), jobs=2)
    # per chain: training then Top-K (+ RRA, the attribute stage's strategy, on every training run)
    assert [(o.model, o.seed, o.spec is None) for o in outcomes] == [
        (label, seed, first) for seed in (1, 2) for model in ("GPT", "gSASRec")
        for label in (model, f"{model}+items") for first in (True, False, False)]
    assert seen == [(k, 24) for k in range(1, 25)]
    assert len(RunStore(store).list_runs()) == 24

    with pytest.raises(UserError, match="SASRec training failed on purpose"):
        Experiment(tiny_csv, "tiny", run_store=store, models=["SASRec", "GPT"], seeds=[1], **common).run(jobs=2)
    made = {r.task_name for r in RunStore(store).list_runs()}
    assert {"tiny_SASRec+items_s1_train", "tiny_SASRec+items_s1_topk"} <= made  # the chains beside it finished
    assert not any(name.startswith("tiny_SASRec_s1") for name in made)
    assert "SASRec training failed on purpose" in (store / "logs" / "tiny_SASRec_s1.log").read_text()
    # a chain not started when another fails is not started at all
    with pytest.raises(UserError, match="SASRec training failed on purpose"):
        Experiment(tiny_csv, "tiny", run_store=store, models=["SASRec", "gSASRec"], seeds=[3], **common).run(jobs=2)
    made = {r.task_name for r in RunStore(store).list_runs()}
    assert {"tiny_SASRec+items_s3_train", "tiny_SASRec+items_s3_topk"} <= made
    assert not any(name.startswith("tiny_gSASRec") and "_s3_" in name for name in made), sorted(made)
    again = Experiment(tiny_csv, "tiny", run_store=store, models=["GPT"], seeds=[1], **common).run(jobs=2)
    assert all(o.reused for o in again)  # GPT seed 1 is in the store from the first call

    with pytest.raises(UserError, match="^--jobs 0: give 1 or more"):
        Experiment(tiny_csv, "tiny", run_store=store, models=["GPT"], seeds=[1], **common).run(jobs=0)


def test_a_chain_worker_loads_the_whole_package_at_its_start():
    """Chain workers live as long as the command; each imports every module of the package when it starts
    (``load_package`` in ``_init_worker``), so source edited during a long experiment cannot run beside the code it
    started with (a BERT4Rec chain once failed that way: a new ``bert4rec.py`` calling an old ``blocks.py``)."""
    files = {".".join(p.relative_to(ROOT / "src").with_suffix("").parts).removesuffix(".__init__")
             for p in (ROOT / "src" / "seqrec").rglob("*.py")}
    code = ("import sys; from seqrec.experiments.plan import _init_worker; _init_worker(1); "
            "print('\\n'.join(m for m in sys.modules if m == 'seqrec' or m.startswith('seqrec.')))")
    loaded = set(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                                cwd=ROOT).stdout.split())
    assert files - loaded == set()
