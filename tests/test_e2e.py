"""Train GPT-2 and predict end to end; it must clearly beat the popularity baseline."""

import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import ROOT, compose, shared_data_dir
from seqrec.evaluation.baselines import popularity_recs
from seqrec.data.split import load_interactions, split_interactions
from seqrec.evaluation.metrics import per_user_metrics
from seqrec import predict, train
from seqrec.evaluation.stats import paired_bootstrap_ci

SMALL = [
    "dataset.max_length=32", "model_params.n_positions=32", "dataloader.batch_size=32", "seqrec_module.lr=3e-3",
    "dataloader.validation_size=200", "trainer_params.enable_progress_bar=false",
    "trainer_params.enable_model_summary=false", "logger=clearml_offline",
]


def assert_ahead_of_popularity(data_path, predict_dir, metric, expected_mean):
    """The floor: ``metric`` of the predict run in ``predict_dir`` is above the most-popular-unseen-items
    baseline on the same test users (paired bootstrap CI above 0); its per-user file agrees with
    ``expected_mean`` (metrics.json)."""
    split = split_interactions(load_interactions(data_path), validation_size=2000, random_state=42)
    users = split.test_users
    pop = per_user_metrics(popularity_recs(split.item_counts, split.train, users, k=10),
                           split.targets(users, 10), split.n_items)[metric]
    per_user = pd.read_parquet(predict_dir / "per_user.parquet")
    mine = per_user[per_user["part"] == "test"].set_index("user_id").loc[split.user_ids[users], metric]
    assert mine.mean() == pytest.approx(expected_mean, abs=1e-6)
    _, low, _ = paired_bootstrap_ci(mine.to_numpy(np.float64), pop, n_resamples=2000)
    assert low > 0, (metric, expected_mean, pop.mean())


def train_and_predict(tmp_path, capsys, data_path, extra):
    runs = tmp_path / "runs"
    cfg = compose("GPT_train", [f"data_path={data_path}", f"run_store={runs}", "task_name=t_train", *SMALL, *extra])
    best_val = train(cfg)
    out = capsys.readouterr().out.strip().splitlines()
    command = out[-1]
    match = re.fullmatch(
        r"python src/run_predict\.py --config-name=GPT_predict task_name=t_predict train_task=(\S+) run_store=(\S+)",
        command,
    )
    assert match, command
    train_id = match.group(1)
    assert (runs / train_id / "model.pt").exists() and (runs / train_id / "config.yaml").exists()
    assert best_val > 0
    pcfg = compose("GPT_predict", [f"train_task={train_id}", f"run_store={runs}", "logger=clearml_offline"])
    val_ndcg = predict(pcfg)
    printed = capsys.readouterr().out
    predict_dirs = [p for p in runs.iterdir() if p.name != train_id and p.is_dir()]
    assert len(predict_dirs) == 1
    metrics = json.loads((predict_dirs[0] / "metrics.json").read_text())
    assert metrics["val_ndcg@10"] == pytest.approx(val_ndcg)
    # each run records what it ran on: device, and (CPU) threads, and precision
    import torch

    for run_dir, precisions in ((runs / train_id, ("bf16-mixed", "32-true")), (predict_dirs[0], ("bfloat16", "float32"))):
        hardware = json.loads((run_dir / "run.json").read_text())["hardware"]
        device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f", {torch.get_num_threads()} thread"
        assert device in hardware and hardware.rsplit(", ", 1)[1] in precisions, hardware
    assert f"test_ndcg@10 {metrics['test_ndcg@10']:.4f}" in re.sub(r" +", " ", printed)
    return train_id, predict_dirs[0], metrics


@pytest.fixture(scope="module")
def synthetic_csv(tmp_path_factory):
    from seqrec.data.synthetic import write_synthetic

    path = tmp_path_factory.mktemp("data") / "synthetic.csv"
    write_synthetic(path, n_users=600, n_items=150, min_len=25, max_len=60, seed=0)
    return path


def test_synthetic_end_to_end(tmp_path, capsys, synthetic_csv):
    train_id, pdir, metrics = train_and_predict(
        tmp_path, capsys, synthetic_csv, ["trainer_params.max_epochs=8", "seqrec_module.lr=3e-3"]
    )
    # The floor, popularity, on the same test users: the next item must be found more often. How well each model
    # learns is measured against an oracle in test_oracle_learning.py; this test checks the pipeline's plumbing.
    assert_ahead_of_popularity(synthetic_csv, pdir, "recall@10_pos0", metrics["test_recall@10_pos0"])
    # every metric of PROTOCOL.md, for validation and test
    for part in ("val", "test"):
        for name in ("map@10", "ndcg@10", "recall@10", "precision@10", "coverage@10", "entropy@10", "novelty@10"):
            assert np.isfinite(metrics[f"{part}_{name}"])
        assert all(f"{part}_recall@10_pos{p}" in metrics for p in range(10))
    preds = pd.read_parquet(pdir / "predictions.parquet")
    assert list(preds.columns) == ["user_id", "item_id", "rank", "score"]
    assert preds.groupby("user_id")["rank"].apply(list).map(lambda r: r == list(range(1, 11))).all()
    # recommended items are never in the user's history
    log = pd.read_csv(synthetic_csv).sort_values(["user_id", "timestamp"], kind="stable")
    log["from_end"] = log.groupby("user_id").cumcount(ascending=False)
    train_part = log.loc[log.from_end >= 10, ["user_id", "item_id"]]
    assert len(preds.merge(train_part, on=["user_id", "item_id"])) == 0
    assert (pdir / "per_position.png").stat().st_size > 1000
    # the ClearML offline session of the predict run exists and holds the metrics
    session = Path(json.loads((pdir / "run.json").read_text())["clearml_offline_session"])
    reported = [json.loads(line) for line in (session / "metrics.jsonl").read_text().splitlines() if line.strip()]
    text = json.dumps(reported)
    assert "test_ndcg@10" in text and f"{metrics['test_ndcg@10']:.6f}"[:6] in text


@pytest.mark.skipif(not (shared_data_dir() / "ml-100k").exists(), reason="../shared/data/ml-100k is absent")
def test_ml100k_end_to_end(tmp_path, capsys):
    from seqrec.data.movielens import prepare_movielens

    csv = prepare_movielens("ml-100k", source=shared_data_dir() / "ml-100k", out=tmp_path / "ml-100k.csv")
    _, pdir, metrics = train_and_predict(
        tmp_path, capsys, csv, ["trainer_params.max_epochs=8", "dataset.max_length=64", "model_params.n_positions=64"]
    )
    # real data: GPT-2 trained 8 epochs is above popularity (NDCG@10 ~.083, PROTOCOL.md) on the same users
    assert_ahead_of_popularity(csv, pdir, "ndcg@10", metrics["test_ndcg@10"])


def run_cli(*args, cwd=ROOT, env=None):
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=300, env={**os.environ, **(env or {})}
    )


def test_cli_train_then_printed_predict_command(tmp_path, synthetic_csv):
    runs = tmp_path / "runs"
    res = run_cli(
        "src/run_train.py", "--config-name=GPT_train", f"data_path={synthetic_csv}", "task_name=cli_GPT_train",
        "seqrec_module.lr=1e-3", f"run_store={runs}", "trainer_params.max_epochs=1", *SMALL,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    # start-up lines once each (Lightning's own terminal handler used to repeat them on stderr; the SDK's and our
    # ClearML lines said the same twice)
    screen = res.stdout + res.stderr
    assert screen.count("GPU available:") == 1 and screen.lower().count("offline session stored in") == 1, screen[-3000:]
    last = res.stdout.strip().splitlines()[-1]
    assert last.startswith("python src/run_predict.py --config-name=GPT_predict task_name=cli_GPT_predict train_task=")
    res2 = subprocess.run(last.replace("python", sys.executable, 1), shell=True, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res2.returncode == 0, res2.stderr[-2000:]
    # "name value [low, high]": the first two fields stay "name value", the bootstrap CI follows and holds the value
    line = re.search(r"^test_ndcg@10 +(0\.\d{4}) \[(0\.\d{4}), (0\.\d{4})\]$", res2.stdout, re.M)
    assert line, res2.stdout[-1500:]
    value, low, high = map(float, line.groups())
    assert low <= value <= high and low < high


@pytest.mark.parametrize(
    "args, message",
    [
        (["data_path=/nonexistent/ml-1m.csv"], "prepare_data.py"),
        (["seqrec_module.lr=-1"], "seqrec_module.lr must be"),
        (["dataset.max_length=1"], "dataset.max_length must be"),
    ],
)
def test_cli_bad_train_input(tmp_path, synthetic_csv, args, message):
    res = run_cli("src/run_train.py", f"data_path={synthetic_csv}", f"run_store={tmp_path / 'runs'}", "logger=none", *args)
    assert res.returncode == 1
    assert res.stderr.strip().startswith("error: ") and message in res.stderr
    assert "Traceback" not in res.stderr + res.stdout
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_cli_unknown_train_task(tmp_path):
    res = run_cli("src/run_predict.py", "train_task=nope", f"run_store={tmp_path}", "logger=none")
    assert res.returncode == 1 and "unknown run ID 'nope'" in res.stderr and "Traceback" not in res.stderr
    res = run_cli("src/run_predict.py", f"run_store={tmp_path}", "logger=none")
    assert res.returncode == 1 and "train_task is required" in res.stderr


def test_generation_configs_on_a_trained_run(tmp_path, capsys, caplog, synthetic_csv):
    """Every predict config runs on one trained run; multirun gives one run folder per job."""
    runs = tmp_path / "runs"
    cfg = compose("GPT_train", [f"data_path={synthetic_csv}", f"run_store={runs}", *SMALL, "trainer_params.max_epochs=3"])
    train(cfg)
    train_id = capsys.readouterr().out.strip().splitlines()[-1].split("train_task=")[1].split()[0]
    results = {}
    for name, extra in [
        ("GPT_predict", []), ("GPT_greedy", []), ("GPT_beam", ["generation_params.num_beams=3"]),
        ("GPT_temperature", ["generation_params.temperature=0.3", "generation_params.num_return_sequences=8"]),
        ("GPT_temperature", ["generation_params.num_return_sequences=8", "generation_params.aggregation=ra"]),
        ("GPT_two_stage", []),
    ]:
        pcfg = compose(name, [f"train_task={train_id}", f"run_store={runs}", "logger=none", *extra])
        results[(name, *extra)] = predict(pcfg)
        out = capsys.readouterr().out
        assert re.search(r"^test_recall@10_pos9 +0\.\d{4} \[0\.\d{4}, 0\.\d{4}\]$", out, re.M), out
    assert len([p for p in runs.iterdir() if p.is_dir()]) == 1 + len(results)
    # the list length is k; its old name top_k (easily taken for the sampling cutoff generation_params.top_k) is
    # applied as k with a warning saying how to migrate (tests/test_predict_names.py)
    from seqrec.config.spec import resolve_predict

    with caplog.at_level(logging.WARNING, logger="seqrec"):
        old = compose("GPT_predict", [f"train_task={train_id}", f"run_store={runs}", "+top_k=20"])
        spec = resolve_predict(old)
    assert "top_k is deprecated, use k=20 (top_k is removed in 2.0)" in caplog.text and spec.k == 20
    assert spec.run.config["k"] == 20 and "top_k" not in spec.run.config  # what the run's config.yaml will hold
    # what predict returns is each run's own validation NDCG@10, and each run's files agree with each other:
    # the per-user values average to metrics.json, whose intervals hold the value
    stored = []
    for run in (p for p in runs.iterdir() if (p / "per_user.parquet").exists()):
        metrics = json.loads((run / "metrics.json").read_text())
        intervals = json.loads((run / "intervals.json").read_text())["intervals"]
        per_user = pd.read_parquet(run / "per_user.parquet")
        test = per_user[per_user["part"] == "test"]
        assert test["ndcg@10"].astype(float).mean() == pytest.approx(metrics["test_ndcg@10"], abs=1e-6)  # float32 file
        low, high = intervals["test_ndcg@10"]
        assert low <= metrics["test_ndcg@10"] <= high
        stored.append(metrics["val_ndcg@10"])
    assert sorted(stored) == pytest.approx(sorted(results.values()))


def test_cli_multirun_beam_gives_two_runs(tmp_path, synthetic_csv):
    runs = tmp_path / "runs"
    res = run_cli(
        "src/run_train.py", f"data_path={synthetic_csv}", f"run_store={runs}", "trainer_params.max_epochs=1", *SMALL,
    )
    train_id = res.stdout.strip().splitlines()[-1].split("train_task=")[1].split()[0]
    res = run_cli(
        "src/run_predict.py", "--multirun", "--config-name=GPT_beam", "task_name=ml1_GPT_beam", f"train_task={train_id}",
        f"run_store={runs}", "generation_params.num_beams=2,3",
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.count("strategy: beam (num_beams=2)") == 1 and res.stdout.count("strategy: beam (num_beams=3)") == 1
    predict_runs = [json.loads((p / "run.json").read_text()) for p in runs.iterdir()
                    if (p / "run.json").exists() and p.name != train_id]
    assert list(runs.glob("multirun/*/multirun.yaml")), "Hydra's multirun.yaml belongs under the run store"
    assert len(predict_runs) == 2 and len({r["task_id"] for r in predict_runs}) == 2
    assert all(r["status"] == "completed" and r.get("clearml_offline_session") for r in predict_runs)


@pytest.mark.parametrize(
    "override, message",
    [
        ("generation_params.num_beams=0", "generation_params.num_beams must be an integer >= 1"),
        ("generation_params.strategy=nucleus", "generation_params.strategy='nucleus' is unknown"),
        ("generation_params.temperature=0", "generation_params.temperature must be a number > 0"),
    ],
)
def test_cli_bad_generation_params(tmp_path, override, message):
    cfg = "--config-name=GPT_beam" if "beams" in override else "--config-name=GPT_temperature"
    res = run_cli("src/run_predict.py", cfg, "train_task=whatever", f"run_store={tmp_path}", "logger=none", override)
    assert res.returncode == 1 and message in res.stderr and "Traceback" not in res.stderr, res.stderr
