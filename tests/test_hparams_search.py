"""Optuna sweeps of src/configs/hparams_search/: real trials on a tiny synthetic run store.

Each sweep must leave Hydra's ``optimization_results.yaml`` under ``<run_store>/multirun/``, with
best parameters inside the declared spaces and a best value equal to the best trial's
validation NDCG@10 in the run store.
"""

import json
import os
import subprocess
import sys

import pytest
import yaml
from omegaconf import OmegaConf

from conftest import CONFIG_DIR, ROOT, compose

pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
from hydra_plugins.hydra_optuna_sweeper._impl import create_params_from_overrides  # noqa: E402
from optuna.distributions import (  # noqa: E402
    CategoricalDistribution,
    IntLogUniformDistribution,
    IntUniformDistribution,
    LogUniformDistribution,
    UniformDistribution,
)

TINY = [
    "dataset.max_length=16", "model_params.n_positions=16", "dataloader.batch_size=64",
    "dataloader.test_batch_size=128", "dataloader.validation_size=100", "trainer_params.max_epochs=1",
    "trainer_params.enable_progress_bar=false", "trainer_params.enable_model_summary=false", "logger=none",
]
N_TRIALS = 3


@pytest.fixture(scope="module")
def tiny_csv(tmp_path_factory):
    from seqrec.data.synthetic import write_synthetic

    path = tmp_path_factory.mktemp("data") / "tiny.csv"
    write_synthetic(path, n_users=200, n_items=60, min_len=20, max_len=35, seed=0)
    return path


def declared_space(name: str, cli: list[str], config: str = "GPT_train"):
    """The sweeper's search space: the config's ``hydra.sweeper.params`` (for ``training``: the space the model
    of ``config`` declares), then the command line."""
    from seqrec.core.registry import search_space

    params = OmegaConf.to_container(OmegaConf.load(CONFIG_DIR / "hparams_search" / f"{name}.yaml").hydra.sweeper)["params"]
    if name == "training":
        assert params == "${search_space:}"  # read from the registry, not from a list in the file
        params = search_space(config)
    spaces, fixed = create_params_from_overrides([f"{k}={v}" for k, v in params.items()] + cli)
    return {k: v for k, v in spaces.items() if k not in fixed}


def in_space(value, dist) -> bool:
    if isinstance(dist, CategoricalDistribution):
        return value in dist.choices
    if isinstance(dist, (UniformDistribution, LogUniformDistribution, IntUniformDistribution, IntLogUniformDistribution)):
        return dist.low <= value <= dist.high
    raise AssertionError(f"unexpected distribution {dist}")


def sweep(script: str, args: list[str], runs):
    res = subprocess.run(
        [sys.executable, script, "--multirun", *args, f"run_store={runs}", f"hydra.sweeper.n_trials={N_TRIALS}"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")},
    )
    assert res.returncode == 0, res.stderr[-3000:]
    found = list(runs.glob("multirun/*/optimization_results.yaml"))
    assert len(found) == 1, "Hydra's optimization_results.yaml belongs under <run_store>/multirun/"
    return yaml.safe_load(found[0].read_text())


def trial_runs(runs, kind: str):
    """(val NDCG@10, resolved config) of every completed run of ``kind`` in the run store."""
    out = []
    for path in runs.iterdir():
        info = path / "run.json"
        if not info.exists() or json.loads(info.read_text())["kind"] != kind:
            continue
        assert json.loads(info.read_text())["status"] == "completed"
        metrics = json.loads((path / "metrics.json").read_text())
        value = metrics["val_ndcg@10"] if kind == "predict" else metrics["best_val_next_ndcg@10"]
        out.append((value, OmegaConf.load(path / "config.yaml")))
    return out


def check_best_run(results, runs, kind):
    """optimization_results.yaml names the best trial's run (seqrec.experiments.sweep.BestTrialRun), and that run is of the
    sweep's kind and has the best objective; every trial is listed with its run."""
    run = runs / results["best_run_id"]
    assert json.loads((run / "run.json").read_text())["kind"] == kind
    metrics = json.loads((run / "metrics.json").read_text())
    value = metrics["val_ndcg@10"] if kind == "predict" else metrics["best_val_next_ndcg@10"]
    assert value == pytest.approx(results["best_value"], abs=1e-9)
    assert len(results["trials"]) == N_TRIALS and all((runs / t["run_id"]).is_dir() for t in results["trials"])


def check_results(results, space, trials):
    assert results["name"] == "optuna"
    best_params, best_value = results["best_params"], results["best_value"]
    assert set(best_params) == set(space)
    for key, value in best_params.items():
        assert in_space(value, space[key]), (key, value, space[key])
    assert len(trials) == N_TRIALS
    values = [value for value, _ in trials]
    assert isinstance(best_value, float) and 0 < best_value <= 1
    assert best_value == pytest.approx(max(values), abs=1e-9)

    best_runs = [cfg for value, cfg in trials if value == pytest.approx(best_value, abs=1e-9)]
    assert any(
        all(OmegaConf.select(cfg, key) == pytest.approx(value) if isinstance(value, float)
            else OmegaConf.select(cfg, key) == value for key, value in best_params.items())
        for cfg in best_runs
    ), (best_params, [OmegaConf.to_container(c.get("generation_params", c.get("model_params"))) for c in best_runs])


def test_generation_search(tmp_path, capsys, tiny_csv):
    from seqrec import train

    runs = tmp_path / "runs"
    train(compose("GPT_train", [f"data_path={tiny_csv}", f"run_store={runs}", *TINY, "seqrec_module.lr=3e-3"]))
    train_id = capsys.readouterr().out.strip().splitlines()[-1].split("train_task=")[1].split()[0]
    cli = ["generation_params.num_return_sequences=choice(1,3)"]
    results = sweep(
        "src/run_predict.py",
        ["--config-name=GPT_temperature", "+hparams_search=generation", f"train_task={train_id}", "logger=none", *cli],
        runs,
    )
    space = declared_space("generation", cli)
    assert set(space) == {
        "generation_params.temperature", "generation_params.top_k",
        "generation_params.num_return_sequences", "generation_params.aggregation",
    }
    check_results(results, space, trial_runs(runs, "predict"))
    check_best_run(results, runs, "predict")


def test_training_search(tmp_path, tiny_csv):
    runs = tmp_path / "runs"
    cli = ["model_params.n_embd=choice(8,16)", "model_params.n_layer=choice(1,2)"]
    results = sweep(
        "src/run_train.py",
        ["--config-name=GPT_train", "+hparams_search=training", f"data_path={tiny_csv}",
         "trainer_params.limit_train_batches=3", *TINY, *cli],
        runs,
    )
    space = declared_space("training", cli)
    assert set(space) == {"seqrec_module.lr", "model_params.dropout", "model_params.n_embd", "model_params.n_layer"}
    check_results(results, space, trial_runs(runs, "train"))
    check_best_run(results, runs, "train")


@pytest.mark.parametrize("config", ["GPT_train", "SASRec_train", "gSASRec_train", "BERT4Rec_train"])
def test_training_spaces_name_settings_of_the_model(config):
    """Every key of the space a model declares is a setting of its config, so no trial fails on a wrong name."""
    from seqrec.config.checks import apply_model_aliases, check_train_config, model_class

    cfg = compose(config)
    space = declared_space("training", [], config)
    assert len(space) >= 3
    assert all(OmegaConf.select(cfg, key) is not None for key in space), list(space)
    largest = []
    for key, dist in space.items():
        value = max(dist.choices) if isinstance(dist, CategoricalDistribution) else dist.high
        largest.append(f"{key}={value}")
    cfg = compose(config, largest)
    check_train_config(cfg)
    model_class(cfg)(n_items=20, **apply_model_aliases(cfg))
