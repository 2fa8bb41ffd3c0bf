"""Where a run is written and what it names (issue 29 items 4 and 6): a run store or ClearML cache that cannot be
written is one line before any tracker or folder exists; a setting refused by the split makes no folder; a run's
data_path is recorded relative to the repo (inside it) or absolute, so predicting works from any folder; printed
commands and hints name the user's own file and script; tables cut short by ``| head`` end quietly; progress off a
terminal is complete lines; compare_runs and reproduce_paper say what differs and what ran."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from conftest import ROOT, compose
from seqrec.core.errors import UserError

TINY = ["dataset.max_length=16", "model_params.n_positions=16", "model_params.n_embd=16", "model_params.n_layer=1",
        "dataloader.validation_size=50", "trainer_params.max_epochs=1", "trainer_params.enable_progress_bar=false",
        "trainer_params.enable_model_summary=false", "logger=none"]
CLEARML_LOGGER = {"_target_": "seqrec.tracking.clearml_tracker.ClearMLTracker", "project_name": "p", "task_name": "t",
                  "offline": True}


@pytest.fixture
def read_only(tmp_path):
    """A read-only folder (a read-only bind mount: as root, chmod does not stop writes); skipped where mounting is
    not allowed."""
    folder = tmp_path / "read_only"
    folder.mkdir()
    (folder / "kept.txt").write_text("x")
    done = subprocess.run(f"mount --bind {folder} {folder} && mount -o remount,ro,bind {folder}", shell=True,
                          capture_output=True, text=True)
    if done.returncode != 0:
        subprocess.run(["umount", str(folder)], capture_output=True)
        pytest.skip(f"cannot make a read-only mount here ({done.stderr.strip()[:80]})")
    yield folder
    subprocess.run(["umount", str(folder)], check=True)


def _spec(run_store, logger=None):
    from seqrec.tracking.lifecycle import RunSpec

    return RunSpec(kind="predict", project_name="p", task_name="t", run_store=str(run_store), logger=logger,
                   config={"a": 1}, command=None)


def _sessions() -> list[str]:
    offline = Path(os.environ["CLEARML_CACHE_DIR"]) / "offline"
    return sorted(p.name for p in offline.iterdir()) if offline.is_dir() else []


# --------------------------------------------------------------------------- (a) (b) (c) the run store, the cache
def test_read_only_run_store_is_one_line_before_the_tracker(read_only):
    from seqrec.tracking.lifecycle import run_context

    before = _sessions()
    with pytest.raises(UserError) as err:
        with run_context(_spec(read_only, CLEARML_LOGGER)):
            pass
    assert str(err.value) == (f"run store {read_only} is not writable (Read-only file system); pass "
                              "run_store=<a writable folder> or fix SEQREC_RUN_STORE")
    assert _sessions() == before  # no ClearML session was opened for a run that cannot be recorded
    assert sorted(p.name for p in read_only.iterdir()) == ["kept.txt"]


def test_read_only_clearml_cache_names_clearml_cache_dir(read_only, monkeypatch):
    from seqrec.tracking.base import instantiate_tracker

    monkeypatch.setenv("CLEARML_CACHE_DIR", str(read_only))
    with pytest.raises(UserError) as err:
        instantiate_tracker(CLEARML_LOGGER, task_type="inference")
    assert str(err.value) == (f"CLEARML_CACHE_DIR={read_only} is not writable (Read-only file system); ClearML keeps "
                              "its sessions there: set CLEARML_CACHE_DIR to a writable folder, or run with logger=none")


def test_run_store_that_is_a_file(tmp_path, monkeypatch):
    from seqrec.config.checks import check_train_run
    from seqrec.tracking.lifecycle import run_context

    store = tmp_path / "runs"
    store.write_text("not a folder")
    monkeypatch.setenv("SEQREC_RUN_STORE", str(store))
    line = f"run store {store} is a file, not a folder; pass run_store=<a writable folder> or fix SEQREC_RUN_STORE"
    with pytest.raises(UserError) as err:  # training and prediction open their run here
        with run_context(_spec(store)):
            pass
    assert str(err.value) == line
    with pytest.raises(UserError) as err:  # prediction reads its training run first: not "unknown run ID"
        check_train_run(str(store), "local-0123")
    assert str(err.value) == line
    assert store.read_text() == "not a folder" and sorted(p.name for p in tmp_path.iterdir()) == ["runs"]


# --------------------------------------------------------------------------- (d) (e) a trained run
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny training run made in a scratch folder with a relative data_path; its run store and ID."""
    from seqrec import train
    from seqrec.data.synthetic import write_synthetic

    base = tmp_path_factory.mktemp("where")
    write_synthetic(base / "log.csv", n_users=80, n_items=40, min_len=15, max_len=30, seed=0)
    cwd = os.getcwd()
    os.chdir(base)
    try:
        train(compose("GPT_train", ["data_path=log.csv", f"run_store={base / 'runs'}", "task_name=where_train", *TINY]))
    finally:
        os.chdir(cwd)
    (run_id,) = [p.name for p in (base / "runs").iterdir()]
    return base, base / "runs", run_id


def test_data_path_is_recorded_absolute_and_predicts_from_another_folder(trained, tmp_path, monkeypatch):
    from seqrec import predict
    from seqrec.tracking.run_folder import RunFolder

    base, runs, run_id = trained
    assert RunFolder(runs / run_id).read_config()["data_path"] == str(base / "log.csv")  # not "log.csv"
    monkeypatch.chdir(tmp_path)  # not where it was trained
    ndcg = predict(compose("GPT_predict", [f"train_task={run_id}", f"run_store={runs}", "logger=none",
                                           "progress=false", "bootstrap.n_resamples=100"]))
    assert 0.0 <= ndcg <= 1.0
    new = [p for p in runs.iterdir() if p.name != run_id]
    assert len(new) == 1 and json.loads((new[0] / "run.json").read_text())["status"] == "completed"
    for p in new:  # leave the module's store as it was for the next test
        import shutil

        shutil.rmtree(p)


def test_capacity_refused_before_any_run_folder(trained):
    from seqrec import predict

    _, runs, run_id = trained
    before = sorted(p.name for p in runs.iterdir())
    with pytest.raises(UserError) as err:
        predict(compose("GPT_temperature", [f"train_task={run_id}", f"run_store={runs}", "logger=none",
                                            "progress=false", "generation_params.num_return_sequences=100000"]))
    assert str(err.value).startswith("generation_params.num_return_sequences=100000 exceeds the ")
    assert sorted(p.name for p in runs.iterdir()) == before  # no failed run folder left behind


def test_stored_and_resolved_paths(tmp_path, monkeypatch):
    from seqrec.core.paths import REPO_ROOT, resolved_path, stored_path

    inside = REPO_ROOT / "tests" / "fixtures" / "runs_v1" / "data.csv"
    monkeypatch.chdir(tmp_path)
    assert stored_path(inside) == "tests/fixtures/runs_v1/data.csv"  # the same step on every clone
    assert resolved_path("tests/fixtures/runs_v1/data.csv") == inside  # against the repo, not the working folder
    (tmp_path / "own.csv").write_text("user_id,item_id,timestamp\n")
    assert stored_path("own.csv") == str(tmp_path / "own.csv")  # outside the repo: absolute
    assert resolved_path("own.csv") == tmp_path / "own.csv"  # an old run's as-written path, found where it ran
    monkeypatch.chdir(REPO_ROOT / "tests")
    assert stored_path("../tests/fixtures/runs_v1/data.csv") == "tests/fixtures/runs_v1/data.csv"


def test_printed_commands_work_from_any_folder(tmp_path, monkeypatch):
    from seqrec.training.commands import predict_command, resume_command

    spec = SimpleNamespace(predict_config_name="GPT_predict", data=SimpleNamespace(path="/d/log.csv"),
                           run=SimpleNamespace(task_name="x_train", run_store=str(tmp_path / "runs"),
                                               command=("GPT_train", ("data_path=log.csv", "seed=3")),
                                               config={"data_path": "/d/log.csv"}))
    monkeypatch.chdir(ROOT)
    assert predict_command(spec, "ID") == ("python src/run_predict.py --config-name=GPT_predict task_name=x_predict "
                                           f"train_task=ID run_store={tmp_path / 'runs'}")
    monkeypatch.chdir(tmp_path)
    assert predict_command(spec, "ID").startswith(f"python {ROOT / 'src' / 'run_predict.py'} --config-name=")
    assert resume_command(spec, "ID") == (f"python {ROOT / 'src' / 'run_train.py'} --config-name=GPT_train "
                                          "data_path=/d/log.csv seed=3 resume=ID")


# --------------------------------------------------------------------------- (f) (g) hints and config kinds
def test_data_file_hints_name_the_users_file(tmp_path, monkeypatch):
    from seqrec.data.split import load_interactions

    monkeypatch.chdir(ROOT)
    with pytest.raises(UserError) as err:
        load_interactions(tmp_path / "ml-100k.csv")
    assert str(err.value) == (f"data_path '{tmp_path / 'ml-100k.csv'}' does not exist; prepare it with: python "
                              f"scripts/prepare_data.py ml-100k --out {tmp_path / 'ml-100k.csv'}")
    (tmp_path / "mine.csv").write_bytes(b"")
    with pytest.raises(UserError) as err:
        load_interactions(tmp_path / "mine.csv")
    assert str(err.value).endswith("; write mine.csv as a CSV with the header user_id,item_id,timestamp[,rating], "
                                   "one row per event")
    assert "ml-1m" not in str(err.value)


@pytest.mark.parametrize("script, name, line", [
    ("src/run_train.py", "GPT_predict", "error: GPT_predict is a prediction config; run it with python "
                                        "src/run_predict.py --config-name=GPT_predict train_task=<ID> ..."),
    ("src/run_predict.py", "GPT_train", "error: GPT_train is a training config; run it with python "
                                        "src/run_train.py --config-name=GPT_train data_path=<csv> ..."),
    ("src/run_train.py", "GPT_train", "error: unknown config key 'foo' in foo=1; fix the spelling (python "
                                      "src/run_train.py --cfg job lists every key)"),
])
def test_a_config_of_the_other_kind_is_named(script, name, line):
    args = ["data_path=x.csv", "foo=1"] if script.endswith("train.py") else ["train_task=abc"]
    res = subprocess.run([sys.executable, script, f"--config-name={name}", *args], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 1 and res.stderr.strip().splitlines()[-1] == line, res.stderr[-1500:]


# --------------------------------------------------------------------------- (h) (i) output
def test_check_runs_cut_short_by_head_ends_quietly(tmp_path):
    store = tmp_path / "runs"
    for i in range(900):  # more than a pipe holds: the script is still writing when head has gone
        (store / f"local-{i:04d}").mkdir(parents=True)
        (store / f"local-{i:04d}" / "run.json").write_text(json.dumps(
            {"task_id": f"local-{i:04d}", "kind": "predict", "task_name": "t" * 30, "created": "2024-01-01T00:00:00",
             "status": "failed", "format": 2}))
    res = subprocess.run(f"{sys.executable} scripts/check_runs.py --run-store {store} | head -1", shell=True,
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert res.stdout.startswith("local-0000 ") and len(res.stdout.splitlines()) == 1
    assert res.stderr == "", res.stderr[-1500:]  # no BrokenPipeError traceback


def test_progress_off_a_terminal_is_complete_lines(monkeypatch):
    from seqrec.core.progress import LineProgress, progress

    stream = io.StringIO()
    bar = LineProgress(4, "test: greedy", unit="user", interval=0.0, stream=stream)
    for _ in range(4):
        bar.update(1)
    bar.close()
    lines = stream.getvalue().split("\n")
    assert lines[-1] == "" and "\r" not in stream.getvalue()  # every line complete
    assert [line.split(" (")[0] for line in lines[:3]] == ["test: greedy: 1/4 users", "test: greedy: 2/4 users",
                                                           "test: greedy: 3/4 users"]
    assert lines[3].startswith("test: greedy: 4/4 users in ")
    quiet = io.StringIO()
    short = LineProgress(4, "val", interval=60.0, stream=quiet)
    short.update(4)
    short.close()
    assert quiet.getvalue() == ""  # a loop too short to report stays silent
    monkeypatch.setattr(sys, "stderr", io.StringIO())  # not a terminal
    assert isinstance(progress(10, "x"), LineProgress)


# --------------------------------------------------------------------------- (j) (k) what differs, what ran
def test_compare_names_the_split_setting_that_differs(tmp_path):
    import pandas as pd
    import yaml

    from seqrec.evaluation.compare import compare_runs
    from seqrec.tracking.run_store import RunStore

    store = RunStore(tmp_path / "runs")
    for name, seed, users in (("a", 42, [1, 2, 3]), ("b", 7, [1, 2, 4])):
        train_dir = store.create(f"{name}-train", "train", "t")
        (train_dir / "config.yaml").write_text(yaml.safe_dump({
            "data_path": str(tmp_path / "log.csv"), "last_n_items": 10, "dataloader": {"validation_size": 50},
            "random_state": seed}))
        run_dir = store.create(name, "predict", "p")
        (run_dir / "config.yaml").write_text(yaml.safe_dump({"train_task": f"{name}-train"}))
        pd.DataFrame({"part": "test", "user_id": users, "ndcg@10": [0.5] * 3, "recall@10": [1.0] * 3}).to_parquet(
            run_dir / "per_user.parquet")
        store.finish(name)
    with pytest.raises(UserError) as err:
        compare_runs(store, ["a"], ["b"])
    assert str(err.value) == ("runs a and b come from different splits (random_state 42 against 7; 3 and 3 test users, "
                              "2 in common); compare predict runs of training runs with the same data and split "
                              "settings")


def test_reproduce_paper_counts_models_not_trainings():
    from seqrec.experiments.plan import run_counts

    assert run_counts(21, [("GPT", 42), ("GPT", 43), ("GPT", 44)]) == \
        "21 predict runs, 1 model x 3 seeds (3 training runs)"
    assert run_counts(1, [("GPT", 42), ("SASRec", 42)]) == "1 predict run, 2 models x 1 seed (2 training runs)"
