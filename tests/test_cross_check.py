"""scripts/cross_check.py (issue 31 item 3): the plan (which runs, which settings), the wall-clock budget and its
record, how a training's end is read, the report beside the published numbers, a --quick run with its reuse, and
the bad inputs (one line each, nothing written)."""

import importlib.util
import json
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from conftest import ROOT, TINY_GPT, compose
from seqrec.core.errors import UserError
from seqrec.data.synthetic import write_synthetic
from seqrec.evaluation.baselines import popularity_validation_ndcg
from seqrec.evaluation.loo_cross_check import (BUDGET_REASON, PLATEAU_REASON, cross_check_table, how_it_ended,
                                               shortfall_reason, validation_trend)
from seqrec.evaluation.published_loo import NOT_USED, PUBLISHED, published_for
from seqrec.experiments.cross_check import TOPK, TRAIN_CONFIGS, cross_check_experiment, filtered_log, max_time

SCRIPT = ROOT / "scripts" / "cross_check.py"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "tiny.csv"
    write_synthetic(path, n_users=120, n_items=50, min_len=12, max_len=30, seed=0)
    return path


# --------------------------------------------------------------------------- the plan
def test_the_plan_runs_five_models_sasrec_plus_on_three_seeds_each_with_a_budget(tiny, tmp_path):
    experiment = cross_check_experiment(tiny, "ml-1m-loo", tmp_path / "runs", logger="none")
    assert [(u.model, u.seed) for u in experiment.units()] == [
        ("SASRec", 42), ("SASRec+", 42), ("gSASRec", 42), ("BERT4Rec", 42), ("GPT", 42), ("SASRec+", 43),
        ("SASRec+", 44)]
    assert experiment._total_steps() == 14  # 7 trainings, each with one Top-K predict run
    assert experiment._plans() == {m: [TOPK] for m in TRAIN_CONFIGS}
    config, overrides = experiment.train_step("SASRec+", 43)
    assert config == "SASRecPlus_loo_train" and "seed=43" in overrides
    assert "trainer_params.max_time=00:00:30:00" in overrides and "task_name=ml-1m-loo_SASRec+_s43_train" in overrides
    assert {m: experiment.train_step(m, 42)[0] for m in TRAIN_CONFIGS} == {
        "SASRec": "SASRec_loo_train", "SASRec+": "SASRecPlus_loo_train", "gSASRec": "gSASRec_loo_train",
        "BERT4Rec": "BERT4Rec_loo_train", "GPT": "GPT_loo_train"}
    # what each step composes: the literature's protocol and loss, and the budget Lightning gets
    losses = {"SASRec": "BCE", "SASRec+": "CrossEntropy", "gSASRec": "gBCE", "BERT4Rec": "CrossEntropy",
              "GPT": "CrossEntropy"}
    for model, loss in losses.items():
        cfg = compose(*experiment.train_step(model, 42))
        assert cfg.protocol == "leave_one_out" and cfg.trainer_params.max_time == "00:00:30:00"
        assert cfg.seqrec_module.loss._target_.rsplit(".", 1)[-1] == loss
    assert compose(*experiment.predict_step("GPT", "local-abc", TOPK, 42)).generation_params.strategy == "topk"
    # a chain worker (--jobs) rebuilds the same plan from the experiment's arguments
    from seqrec.experiments.plan import Experiment

    assert Experiment(**experiment._kwargs).units() == experiment.units()
    # a subset, other seeds, another budget
    small = cross_check_experiment(tiny, "x", tmp_path / "runs", models=["GPT", "SASRec+"], seeds=[7],
                                   plus_seeds=[1, 2], budget_minutes=2.5, logger="none")
    assert [(u.model, u.seed) for u in small.units()] == [("GPT", 7), ("SASRec+", 1), ("SASRec+", 2)]
    assert "trainer_params.max_time=00:00:02:30" in small.train_step("GPT", 7)[1]


def test_budget_strings_and_the_literature_item_filter(tmp_path):
    assert (max_time(30), max_time(0.05), max_time(25 * 60 + 0.5)) == ("00:00:30:00", "00:00:00:03", "01:01:00:30")
    for bad in (0, -1, float("nan"), float("inf")):
        with pytest.raises(UserError, match="--budget-min"):
            max_time(bad)
    # item 9 is rated by 4 users: SASRec's preprocessing drops it, each user's order is kept
    rows = [(u, i, t) for u in range(1, 6) for t, i in enumerate([1, 2, 3] + ([9] if u < 5 else []))]
    csv = tmp_path / "log.csv"
    pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"]).to_csv(csv, index=False)
    assert filtered_log(csv, 0) == csv and filtered_log(csv, 1) == csv
    out = filtered_log(csv, 5)
    assert out.name == "log-min5.csv"
    kept = pd.read_csv(out)
    assert set(kept["item_id"]) == {1, 2, 3} and kept.groupby("user_id")["item_id"].apply(list).tolist() == [[1, 2, 3]] * 5


def test_max_time_is_the_budget_and_the_run_records_what_ended_it(tmp_path, tiny):
    """Lightning ignores ``max_time`` beside a Timer callback of the repo's own; the run's Timer takes it instead, and
    ``metrics.json`` says the budget ended the run (a config-length run: max_epochs)."""
    from seqrec import train
    from seqrec.config.checks import check_train_config
    from seqrec.tracking.run_folder import RunFolder
    from seqrec.tracking.run_store import RunStore

    runs = tmp_path / "runs"
    base = [f"data_path={tiny}", f"run_store={runs}", "logger=none", "protocol=leave_one_out",
            "dataloader.validation_size=null", *[o for o in TINY_GPT if "validation_size" not in o]]
    train(compose("GPT_train", [*base, "trainer_params.max_time=00:00:00:01", "trainer_params.max_epochs=10000",
                                "patience=10000"]))
    train(compose("GPT_train", [*base, "trainer_params.max_epochs=2"]))
    budget, epochs = (RunFolder(r.path).read_metrics() for r in RunStore(runs).list_runs("train"))
    assert budget["stopped_by"] == "max_time" and budget["max_time_seconds"] == 1.0
    assert 1.0 <= budget["fit_seconds"] < 30 and budget["epochs"] < 10000
    assert epochs["stopped_by"] == "max_epochs" and epochs["epochs"] == 2 and "max_time_seconds" not in epochs
    for bad in ("30min", "0:30:00", "00:00:30"):
        with pytest.raises(UserError, match='trainer_params.max_time.*"DD:HH:MM:SS"'):
            check_train_config(compose("GPT_train", [f"trainer_params.max_time={bad}"]))


# --------------------------------------------------------------------------- how a training ended
def test_validation_still_rising_is_a_new_best_in_the_last_quarter():
    def trend(values):
        return validation_trend(pd.DataFrame({"val_next_ndcg@10": values}))

    rising = trend([0.1, 0.2, 0.3, 0.35, 0.4, 0.41, 0.42, 0.43])  # last 3 of 8 beat the best before them by .03
    assert (rising["window"], rising["rising"]) == (3, True) and rising["gain"] == pytest.approx(0.03)
    flat = trend([0.1, 0.3, 0.3, 0.29, 0.3, 0.28, 0.27, 0.3])
    assert (flat["rising"], flat["gain"]) == (False, 0.0)
    assert trend([0.1 * i for i in range(20)])["window"] == 5  # a quarter of 20 validations
    assert trend([0.1])["rising"] is None and validation_trend(None)["validations"] == 0
    row = {"stopped_by": "max_time", "max_time_seconds": 1800.0, "epochs": 40, "best_epoch": 39, **rising}
    assert how_it_ended(row) == "the 30-min budget, validation still rising (+0.0300 over its last 3 of 8 validations)"
    assert how_it_ended({**row, **flat}).endswith("validation flat (no new best in its last 3 of 8 validations)")
    assert how_it_ended({**row, "stopped_by": "early_stopping"}) == "early stopping (best at epoch 39 of 40)"
    assert how_it_ended({"stopped_by": ""}).startswith("not recorded")


def test_a_run_still_at_the_popularity_level_is_on_its_plateau_not_converged():
    """gSASRec with 256 negatives from the first step sits at popularity's level for thousands of steps: a 30-min
    budget can end inside that plateau, where validation is flat although training has not started. Measured
    against the popularity baseline's validation NDCG@10 on the same users (a flat run above 1.25x it converged)."""
    flat = [0.014, 0.015, 0.016, 0.015, 0.014, 0.015, 0.016, 0.015]  # no new best in its last 3
    stuck = validation_trend(pd.DataFrame({"val_next_ndcg@10": flat}), popularity=0.0150)
    assert (stuck["rising"], stuck["plateau"], stuck["popularity"]) == (False, True, 0.015)  # .016 < 1.25 x .015
    learnt = validation_trend(pd.DataFrame({"val_next_ndcg@10": flat}), popularity=0.0120)
    assert learnt["plateau"] is False  # .016 >= 1.25 x .012 = .015: above the level popularity can reach
    assert validation_trend(pd.DataFrame({"val_next_ndcg@10": flat}))["plateau"] is None  # no baseline given
    row = {"stopped_by": "max_time", "max_time_seconds": 1800.0, "epochs": 8, "best_epoch": 2,
           "best_val_next_ndcg@10": 0.016, **stuck}
    assert how_it_ended(row) == ("the 30-min budget, still at the popularity level (best validation NDCG@10 0.0160, "
                                 "below 1.25x popularity's 0.0150: its start-up plateau, not converged)")
    runs = pd.DataFrame([{**row, "model": "gSASRec", "seed": 42}])
    assert shortfall_reason(runs) == PLATEAU_REASON + " (seed 42: best validation NDCG@10 0.0160, popularity's 0.0150)"
    assert shortfall_reason(runs.assign(plateau=False)).startswith("the budget ended training with validation flat")


def test_the_popularity_baseline_on_the_validation_users_by_hand():
    """Leave-one-out on 4 users, every one a validation user: popularity (the train parts' counts) recommends the
    most frequent unseen items; its NDCG@K at each validation item, worked out by hand."""
    from seqrec.data.split import split_interactions

    rows = {1: [1, 2, 3, 4, 5], 2: [1, 2, 4, 3, 6], 3: [1, 3, 2, 5, 4], 4: [2, 1, 3, 6, 5]}
    log = pd.DataFrame([(u, i, t) for u, items in rows.items() for t, i in enumerate(items)],
                       columns=["user_id", "item_id", "timestamp"])
    split = split_interactions(log, last_n_items=1, validation_size=None, random_state=0, protocol="leave_one_out")
    assert len(split.val_users) == 4
    # train parts (all but the last 2): [1,2,3] [1,2,4] [1,3,2] [2,1,3]; counts 1:4 2:4 3:3 4:1 5:0 6:0;
    # validation items 4, 3, 5, 6. User 1 (seen 1,2,3) gets 4 first: 1. User 2 (seen 1,2,4) gets 3 first: 1.
    # Users 3 and 4 (seen 1,2,3 both) get 4, then 5 and 6 tied at 0 in one order for both rows: one of them finds
    # its item at rank 2 (1/log2 3), the other at rank 3 (1/log2 4)
    expected = (1 + 1 + 1 / np.log2(3) + 1 / np.log2(4)) / 4
    assert popularity_validation_ndcg(split, k=3) == pytest.approx(expected)  # 6 items: K = 3 (the unseen ones)


def _training(stopped_by, rising, seed=42):
    return {"model": "SASRec+", "seed": seed, "stopped_by": stopped_by, "rising": rising, "gain": 0.012, "window": 5,
            "validations": 20, "epochs": 20, "best_epoch": 19}


def test_the_reason_for_a_shortfall_is_read_from_how_training_ended():
    budget_rising = pd.DataFrame([_training("max_time", True, 42), _training("early_stopping", False, 43)])
    assert shortfall_reason(budget_rising) == (
        BUDGET_REASON + " (seed 42: +0.0120 validation NDCG@10 over its last 5 of 20 validations)")
    assert shortfall_reason(pd.DataFrame([_training("max_time", False)])).startswith(
        "the budget ended training with validation flat")
    assert shortfall_reason(pd.DataFrame([_training("early_stopping", False)])).startswith(
        "training converged (early stopping), so not the budget")
    assert "not recorded" in shortfall_reason(pd.DataFrame([_training("", None)]))


def test_our_rows_beside_the_published_ones_with_a_verdict_each():
    runs = pd.DataFrame([  # one seed each: the predict run's own CI
        {"model": "SASRec+", "seed": 42, "test_ndcg@10": 0.15, "test_ndcg@10_low": 0.14, "test_ndcg@10_high": 0.16,
         "test_hr@10": 0.31, "test_hr@10_low": 0.30, "test_hr@10_high": 0.32},
        {"model": "GPT", "seed": 42, "test_ndcg@10": 0.19, "test_ndcg@10_low": 0.18, "test_ndcg@10_high": 0.20,
         "test_hr@10": 0.33, "test_hr@10_low": 0.32, "test_hr@10_high": 0.34}])
    table = cross_check_table(runs, pd.DataFrame([_training("max_time", True)]), n_resamples=200).set_index("model")
    plus = table.loc["SASRec+"]
    assert (plus["published_ndcg@10"], plus["published_hr@10"]) == (0.1821, 0.3152)
    assert (plus["ndcg@10_vs_published"], plus["hr@10_vs_published"]) == ("below", "reaches")
    assert plus["reason"].startswith(BUDGET_REASON) and "Klenitskiy" in plus["source"]
    assert table.loc["GPT", "reason"] == "no published figure" and math.isnan(table.loc["GPT", "published_ndcg@10"])


def test_every_published_number_names_its_source():
    assert {p.model for p in PUBLISHED} == {"SASRec", "SASRec+", "gSASRec", "BERT4Rec"} and not published_for("GPT")
    for p in PUBLISHED:
        assert 0 < p.ndcg10 < p.hr10 < 1 and len(p.commit) == 40 and p.file and "/" in p.repository
        assert "RecSys" in p.paper and p.where and p.setting
    assert any("GPT-2" in line for line in NOT_USED)


# --------------------------------------------------------------------------- the command
def _run(args, cwd=ROOT):
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_quick_run_then_reuse(tmp_path, tiny):
    runs, results = tmp_path / "runs", tmp_path / "results"
    args = ["--dataset", str(tiny), "--quick", "--models", "SASRec+", "GPT", "--seeds", "7", "--seeds-plus", "1", "2",
            "--budget-min", "0.03", "--run-store", str(runs), "--results", str(results), "--logger", "none"]
    first = _run(args)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "[6/6]" in first.stdout and "reused" not in first.stdout
    out = results / "tiny-loo-quick"
    training = pd.read_csv(out / "training.csv")
    assert sorted(zip(training["model"], training["seed"])) == [("GPT", 7), ("SASRec+", 1), ("SASRec+", 2)]
    assert set(training["stopped_by"]) <= {"max_time", "early_stopping", "max_epochs"}
    budget = training[training["stopped_by"] == "max_time"]
    assert (budget["max_time_seconds"] == 2.0).all() and (budget["fit_seconds"] >= 2.0).all()
    assert training["validations"].min() >= 1 and training["hardware"].str.startswith("CPU").all()
    for run_id in training["train_task"]:  # the data: the log less the items of fewer than 5 users
        config = (runs / run_id / "config.yaml").read_text()
        assert "tiny-min5.csv" in config and "00:00:00:02" in config
    table = pd.read_csv(out / "cross_check.csv", keep_default_na=False)
    assert list(table["model"]) == ["SASRec+", "GPT"] and list(table["seeds"]) == [2, 1]
    assert float(table.loc[0, "published_ndcg@10"]) == 0.1821 and table.loc[1, "reason"] == "no published figure"
    readme = (out / "README.md").read_text()
    assert "quick smoke run" in readme and "| SASRec+ (full-softmax CE) | 2 |" in readme
    assert "github.com/antklen/sasrec-bert4rec-recsys23 `README.md` @ `29c272e`" in readme
    assert "## Seed spread beside the user-bootstrap interval" in readme and "## Protocol differences" in readme
    assert str(tmp_path) not in readme and "--run-store <run-store>" in readme  # no machine paths in the page
    assert set(pd.read_csv(out / "published.csv")["model"]) == {"SASRec", "SASRec+", "gSASRec", "BERT4Rec"}
    # the same command again runs nothing: every step is reused, the report is rebuilt
    again = _run(args)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "6 of 6 runs reused" in again.stdout
    assert pd.read_csv(out / "cross_check.csv", keep_default_na=False).equals(table)
    # another budget is another step (report only: it is listed as not run, the report keeps what exists)
    other = _run([*args[:-8], "--budget-min", "0.5", *args[-6:], "--report-only"])
    assert other.returncode == 1 and other.stderr.strip().splitlines() == [
        "error: no finished leave-one-out predict runs for these models and seeds in the run store; run the command "
        "without --report-only first"]


def _main():
    spec = importlib.util.spec_from_file_location("cross_check_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


@pytest.mark.parametrize("args, line", [
    (["--dataset", "no/such.csv"], "error: --dataset no/such.csv: not a MovieLens name"),
    (["--budget-min", "0"], "error: --budget-min 0: give a positive number of minutes per training run"),
    (["--budget-min", "-5"], "error: --budget-min -5: give a positive number"),
    (["--seeds-plus", "42", "42"], "error: --seeds-plus 42 42: give one or more distinct training seeds"),
    (["--seeds", "1", "1"], "error: --seeds 1 1: give one or more distinct training seeds"),
    (["--models", "SASRec", "GRU4Rec"], "error: --models GRU4Rec: not a model of the cross-check; choose from SASRec "
                                        "SASRec+ gSASRec BERT4Rec GPT"),
    (["--jobs", "0"], "error: --jobs 0: give 1 or more chains to run at once"),
    (["--min-item-users", "-1"], "error: --min-item-users -1: give 0 (keep every item)"),
    (["--report-only"], "error: no finished leave-one-out predict runs"),
])
def test_bad_inputs_are_one_line_and_write_nothing(tmp_path, monkeypatch, capsys, args, line):
    monkeypatch.chdir(tmp_path)  # the command moves to the repository root; this puts the test's folder back after
    data = tmp_path / "data" / "log.csv"
    write_synthetic(data, n_users=30, n_items=20, min_len=5, max_len=8, seed=0)
    argv = ["--dataset", str(data), "--quick", "--run-store", str(tmp_path / "runs"), "--logger", "none", *args]
    assert _main()(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(line), err
    assert not (tmp_path / "runs" / "reports").exists()
    if "--report-only" not in args:  # refused before the data is touched
        assert sorted(p.name for p in data.parent.iterdir()) == ["log.csv"]
