"""Old runs upgrade in one place (seqrec.config.upgrade): each step by hand, and the stored format-1 runs of
tests/fixtures/runs_v1 (made by the code before the layered package) predict with the same metrics, resume, and are
recognised by the experiment's reuse check."""

import json
import shutil

import pandas as pd
import pytest

from conftest import ROOT, compose

FIXTURE = ROOT / "tests" / "fixtures" / "runs_v1"
TRAIN, STOPPED, PREDICT = ("local-a1f3668927484e15a4cff730ee2ac425", "local-b640c97c27994728afba52c59db06a2f",
                           "local-45d9acfed4b948a4aec60995e43d5e20")
#: the overrides the fixture's runs were made with (its README)
TINY = ["dataset.max_length=16", "model_params.n_positions=16", "model_params.n_embd=16", "model_params.n_layer=1",
        "dataloader.batch_size=32", "dataloader.validation_size=30", "trainer_params.enable_progress_bar=false",
        "trainer_params.enable_model_summary=false", "data_path=data.csv", "logger=none"]


@pytest.fixture
def v1(tmp_path, monkeypatch):
    """A copy of the fixture (its configs name data.csv relative to the folder they were made in)."""
    copy = tmp_path / "v1"
    shutil.copytree(FIXTURE, copy)
    monkeypatch.chdir(copy)
    return copy


def test_train_step_by_hand():
    from seqrec.config.upgrade import upgrade_config

    old = {"random_state": 7, "model": {"_target_": "seqrec.models.sasrec.SASRec"},
           "model_params": {"embedding_dim": 16, "gbce_t": 0.75},  # gSASRec's own name: not plain SASRec
           "seqrec_module": {"lr": 0.001, "loss": {"_target_": "seqrec.losses.gBCE", "t": 0.75}},
           "hydra": {"callbacks": {"best": {"_target_": "seqrec.sweep.BestTrialRun"}}}}
    new = upgrade_config(old, "train", 1)
    assert new["seqrec_module"]["loss"]["_target_"] == "seqrec.training.losses.gBCE"
    assert new["hydra"]["callbacks"]["best"]["_target_"] == "seqrec.experiments.sweep.BestTrialRun"
    assert new["seed"] == 7  # trained with random_state before seed existed
    assert new["seqrec_module"]["optimizer"] == {"_target_": "torch.optim.Adam", "betas": [0.9, 0.999], "eps": 1e-08}
    assert new["seqrec_module"]["scheduler"] is None and new["callbacks"] == {} and new["features"] is None
    assert new["model"]["name"] == "gsasrec"
    assert new["protocol"] == "long_term"  # made before the protocol group existed: the long-term split
    plain = upgrade_config({**old, "model_params": {"embedding_dim": 16}}, "train", 1)
    assert plain["model"]["name"] == "sasrec"
    assert old["seqrec_module"]["loss"]["_target_"] == "seqrec.losses.gBCE"  # a copy: the input is untouched
    assert upgrade_config(new, "train", 2) == new  # the current format: nothing to do
    with pytest.raises(ValueError, match="format version 3"):
        upgrade_config(new, "train", 3)


def test_predict_step_by_hand():
    from seqrec.config.upgrade import upgrade_config

    new = upgrade_config({"top_k": 5, "generation_params": {"strategy": "topk", "top_k": 50}}, "predict", 1)
    assert new["k"] == 5 and "top_k" not in new
    assert new["generation_params"]["top_k"] == 50  # the sampling cutoff keeps its name
    assert new["generation_params"]["generated_events"] is None and new["samples_from"] is None
    assert new["protocol"] is None  # a predict run uses its training run's protocol


def test_runs_of_the_current_format_made_before_the_protocol_group_are_long_term():
    from seqrec.config.upgrade import upgrade_config

    assert upgrade_config({"random_state": 1}, "train", 2)["protocol"] == "long_term"
    assert upgrade_config({"protocol": "leave_one_out"}, "train", 2)["protocol"] == "leave_one_out"  # its own kept
    assert upgrade_config({"train_task": "x"}, "predict", 2)["protocol"] is None


def test_fixture_runs_are_format_1_and_healthy(v1):
    from seqrec.config.upgrade import load_run_config, run_format
    from seqrec.tracking.run_folder import RunFolder

    for run_id in (TRAIN, STOPPED, PREDICT):
        folder = RunFolder(v1 / "runs" / run_id)
        record, problems = folder.health()
        assert problems == [] and run_format(record) == 1
    stored = RunFolder(v1 / "runs" / TRAIN).read_config()
    assert stored["seqrec_module"]["loss"]["_target_"] == "seqrec.losses.CrossEntropy"
    assert load_run_config(v1 / "runs" / TRAIN)["seqrec_module"]["loss"]["_target_"] == \
        "seqrec.training.losses.CrossEntropy"
    assert "protocol" not in stored and load_run_config(v1 / "runs" / TRAIN)["protocol"] == "long_term"
    assert "top_k" in RunFolder(v1 / "runs" / PREDICT).read_config()
    assert load_run_config(v1 / "runs" / PREDICT)["k"] is None


def test_format_1_run_predicts_the_same_lists_and_metrics(v1):
    """Same seed, same weights: today's code gives the old run's lists and metrics exactly."""
    from seqrec import predict

    predict(compose("GPT_predict", ["run_store=runs", "logger=none", f"train_task={TRAIN}", "progress=false",
                                    "bootstrap.n_resamples=100", "task_name=v2_predict"]))
    new = [p for p in (v1 / "runs").iterdir() if p.name not in (TRAIN, STOPPED, PREDICT)]
    assert len(new) == 1
    record = json.loads((new[0] / "run.json").read_text())
    assert record["format"] == 2 and record["protocol"] == "long_term"  # the old run's protocol
    old_metrics = json.loads((v1 / "runs" / PREDICT / "metrics.json").read_text())
    new_metrics = json.loads((new[0] / "metrics.json").read_text())
    assert set(old_metrics) == set(new_metrics)
    for name, value in old_metrics.items():
        if not name.endswith("ms_per_user"):
            assert new_metrics[name] == pytest.approx(value, abs=1e-9), name
    pd.testing.assert_frame_equal(pd.read_parquet(v1 / "runs" / PREDICT / "predictions.parquet"),
                                  pd.read_parquet(new[0] / "predictions.parquet"))


def test_format_1_interrupted_run_resumes(v1):
    """Its config names seqrec.losses.CrossEntropy; compared in the current format, it is the same run."""
    from seqrec import train

    best = train(compose("GPT_train", [*TINY, "run_store=runs", "task_name=v1_GPT_stopped", f"resume={STOPPED}",
                                       "trainer_params.max_epochs=2"]))
    record = json.loads((v1 / "runs" / STOPPED / "run.json").read_text())
    assert record["status"] == "completed" and record["format"] == 2 and len(record["resumed"]) == 1
    assert json.loads((v1 / "runs" / STOPPED / "metrics.json").read_text())["epochs"] == 2
    assert best == best  # a number, not nan: the resumed run validated
    assert "seqrec.training.losses.CrossEntropy" in (v1 / "runs" / STOPPED / "config.yaml").read_text()


def test_experiment_reuse_recognises_a_format_1_run(v1):
    from seqrec.experiments.plan import stale
    from seqrec.tracking.run_store import RunStore

    record = RunStore("runs").info(TRAIN)
    # the run predates the cheap dropout masks: it trained with torch's, so only a config asking for those reuses it
    cfg = compose("GPT_train", [*TINY, "run_store=runs", "task_name=v1_GPT_train", "trainer_params.max_epochs=2",
                                "dropout_masks=torch"])
    assert stale(record, cfg) == []
    changed = compose("GPT_train", [*TINY, "run_store=runs", "task_name=v1_GPT_train", "trainer_params.max_epochs=3",
                                    "dropout_masks=torch"])
    assert stale(record, changed) == ["trainer_params.max_epochs=3 (the run has 2)"]
    today = compose("GPT_train", [*TINY, "run_store=runs", "task_name=v1_GPT_train", "trainer_params.max_epochs=2"])
    assert stale(record, today) == ["dropout_masks='fast' (the run has 'torch')"]
