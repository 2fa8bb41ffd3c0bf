"""Local run store: run folders, run.json, lookups and error messages."""

from __future__ import annotations

import json
import os
import logging
from datetime import datetime
from pathlib import Path

import pytest

from seqrec.core.errors import UserError
from seqrec.tracking.run_store import RunStore, file_log_handler, write_json_atomic


@pytest.fixture
def store(tmp_path):
    return RunStore(tmp_path / "runs")


def _run_json(run_dir: Path) -> dict:
    return json.loads((run_dir / "run.json").read_text())


def test_create_writes_run_json(store):
    run_dir = store.create("offline-abc", "train", "sasrec-ml1m")
    assert run_dir == store.root / "offline-abc" and run_dir.is_dir()
    data = _run_json(run_dir)
    assert data["task_id"] == "offline-abc"
    assert data["kind"] == "train"
    assert data["task_name"] == "sasrec-ml1m"
    assert data["status"] == "running"
    created = datetime.fromisoformat(data["created"])
    assert created.tzinfo is not None
    assert [p.name for p in run_dir.iterdir()] == ["run.json"]  # no temp files left behind


def test_create_with_extra_fields(store):
    run_dir = store.create("p1", "predict", "predict", train_task="t1")
    assert _run_json(run_dir)["train_task"] == "t1"
    extra = store.info("p1").extra
    assert extra["train_task"] == "t1" and extra["format"] == 2  # the format of run folders seqrec 1.x writes
    assert extra["process"]["pid"] == os.getpid()  # every run records its process: a dead one means killed
    assert set(extra) == {"train_task", "format", "process"}


def test_create_refuses_existing_folder(store):
    run_dir = store.create("run-1", "train", "first")
    (run_dir / "model.ckpt").write_bytes(b"weights")
    with pytest.raises(UserError) as excinfo:
        store.create("run-1", "train", "second")
    assert "already exists" in str(excinfo.value) and "\n" not in str(excinfo.value)
    assert _run_json(run_dir)["task_name"] == "first"
    assert (run_dir / "model.ckpt").read_bytes() == b"weights"

    (store.root / "stray").mkdir()  # a folder without run.json is not reused either
    with pytest.raises(UserError, match="already exists"):
        store.create("stray", "train", "x")


def test_create_rejects_bad_arguments(store):
    with pytest.raises(ValueError, match="kind"):
        store.create("run-1", "evaluate", "x")
    for bad in ("../escape", "a/b", "", ".hidden", "a..b"):
        with pytest.raises(UserError, match="invalid run ID"):
            store.create(bad, "train", "x")
    assert not (store.root.parent / "escape").exists()


def test_finish_and_update(store):
    store.create("run-1", "train", "t")
    data = store.finish("run-1")
    assert data["status"] == "completed"
    assert datetime.fromisoformat(data["finished"]) >= datetime.fromisoformat(data["created"])
    assert _run_json(store.root / "run-1")["status"] == "completed"
    store.finish("run-1", status="failed")
    assert store.info("run-1").status == "failed"
    with pytest.raises(ValueError):
        store.finish("run-1", status="done")
    with pytest.raises(ValueError):
        store.finish("run-1", status="running")
    store.update("run-1", best_epoch=3)
    assert _run_json(store.root / "run-1")["best_epoch"] == 3
    with pytest.raises(ValueError, match="cannot be changed"):
        store.update("run-1", kind="predict")
    with pytest.raises(UserError, match="unknown run ID"):
        store.finish("nope")


def test_path_known_and_unknown(store):
    for i in range(7):
        store.create(f"train-{i}", "train", f"t{i}")
    store.create("predict-0", "predict", "p")
    assert store.path("train-3") == store.root / "train-3"
    assert store.path("predict-0", kind="predict") == store.root / "predict-0"
    assert store.path("predict-0", kind=None) == store.root / "predict-0"
    assert store.exists("train-3") and not store.exists("nope") and not store.exists("../x")

    with pytest.raises(UserError) as excinfo:
        store.path("nope")
    message = str(excinfo.value)
    assert "\n" not in message
    assert message.startswith("unknown run ID 'nope' in ")
    assert str(store.root) in message
    assert "(7 train runs there; list them with python scripts/check_runs.py" in message  # no unrelated ID
    assert "train-1" not in message and "predict-0" not in message
    assert message.endswith("pass train_task=<ID> printed by run_train.py")


def test_path_kind_mismatch(store):
    store.create("train-0", "train", "t")
    store.create("predict-0", "predict", "p")
    with pytest.raises(UserError) as excinfo:
        store.path("predict-0", kind="train")
    message = str(excinfo.value)
    assert "is a predict run, not a train run (1 train runs there" in message
    (store.root / "predict-0" / "config.yaml").write_text("train_task: train-0\n")  # its parent is named
    with pytest.raises(UserError, match=r"is a predict run, not a train run \(it was made from train run train-0\)"):
        store.path("predict-0", kind="train")


def test_unknown_id_in_empty_store(store):
    with pytest.raises(UserError) as excinfo:
        store.path("abc")
    assert "no train runs yet" in str(excinfo.value)
    assert store.list_runs() == []


def test_list_runs_sorted_by_creation_time(store):
    for name in ("b", "a", "c"):
        store.create(name, "train", name)
    store.create("p", "predict", "p")
    assert [r.task_id for r in store.list_runs()] == ["b", "a", "c", "p"]
    assert [r.task_id for r in store.list_runs("train")] == ["b", "a", "c"]
    assert [r.task_id for r in store.list_runs("predict")] == ["p"]

    # sorting follows the timestamps (not names or folder order)
    data = _run_json(store.root / "c")
    data["created"] = "2001-01-01T00:00:00.000000+00:00"
    write_json_atomic(store.root / "c" / "run.json", data)
    assert [r.task_id for r in store.list_runs("train")] == ["c", "b", "a"]
    record = store.list_runs("train")[0]
    assert record.kind == "train" and record.status == "running" and record.path == store.root / "c"


def test_list_runs_skips_broken_folders(store, caplog):
    store.create("good", "train", "g")
    (store.root / "broken").mkdir()
    (store.root / "broken" / "run.json").write_text("{not json")
    (store.root / "empty").mkdir()
    with caplog.at_level(logging.WARNING):
        assert [r.task_id for r in store.list_runs()] == ["good"]
    assert "broken" in caplog.text


def test_write_json_atomic_replaces_whole_file(tmp_path):
    target = tmp_path / "x.json"
    write_json_atomic(target, {"a": 1})
    write_json_atomic(target, {"b": 2})
    assert json.loads(target.read_text()) == {"b": 2}
    with pytest.raises(TypeError):
        write_json_atomic(target, {"bad": object()})
    assert json.loads(target.read_text()) == {"b": 2}  # failed write left the old file intact
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


def test_file_log_handler(store):
    run_dir = store.create("run-1", "train", "t")
    handler = file_log_handler(run_dir)
    logger = logging.getLogger("seqrec.test_run_store")
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    try:
        logger.info("hello from the run")
        logger.debug("details")
    finally:
        logger.removeHandler(handler)
        handler.close()
    text = (run_dir / "run.log").read_text()
    assert "INFO seqrec.test_run_store: hello from the run" in text
    assert "details" in text


def test_check_runs_lists_runs_and_names_what_is_broken(tmp_path, tiny_csv):
    """scripts/check_runs.py: one line per run, every kind of damage named, exit 1 while any run is broken; each
    predict run shows its strategy and parameters as the report names them."""
    import json
    import shutil
    import subprocess
    import sys

    from conftest import ROOT, compose
    from seqrec import predict, train
    from seqrec.core.registry import StrategySpec

    runs = tmp_path / "runs"
    train(compose("GPT_train", [f"data_path={tiny_csv}", f"run_store={runs}", "trainer_params.max_epochs=1",
                                "dataset.max_length=16", "model_params.n_positions=16", "model_params.n_embd=16",
                                "model_params.n_layer=1", "logger=none", "trainer_params.enable_progress_bar=false"]))
    [good] = list(runs.iterdir())
    # predict runs of four strategies: check_runs names each as the report does (family, then its label parameters)
    settings = {
        "GPT_predict": ([], "topk"),
        "GPT_beam": (["generation_params.num_beams=2"], "beam B=2"),
        "GPT_temperature": (["generation_params.temperature=0.5", "generation_params.top_k=20",
                             "generation_params.num_return_sequences=3", "generation_params.aggregation=ra"],
                            "ra T=0.5 top_k=20 N=3"),
        "GPT_two_stage": (["generation_params.first_stage=6"], "two_stage first=6"),
    }
    predicted = {}
    for config, (overrides, _) in settings.items():
        before = set(runs.iterdir())
        predict(compose(config, [f"train_task={good.name}", f"run_store={runs}", "logger=none", "progress=false",
                                 *overrides]))
        [run] = set(runs.iterdir()) - before
        predicted[run.name] = config
    # the report's label of the same setting (StrategySpec.label, the summary's params column) is the same text
    spec = StrategySpec("ra", "temperature", (("temperature", 0.5), ("top_k", 20), ("num_return_sequences", 3),
                                              ("aggregation", "ra")))
    assert f"{spec.strategy} {spec.label}" == settings["GPT_temperature"][1]
    listed = subprocess.run([sys.executable, str(ROOT / "scripts" / "check_runs.py"), "--run-store", str(runs)],
                            capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0 and listed.stderr == "", listed.stderr
    lines = {line.split()[0]: line for line in listed.stdout.splitlines()[:-1]}
    for run_id, config in predicted.items():
        setting = settings[config][1]
        assert f" {setting} " in lines[run_id] and lines[run_id].endswith(f"<- {good.name}"), lines[run_id]
    assert not any(s in lines[good.name] for s in ("topk", "beam", "first=")), lines[good.name]  # a training run
    # the old flag name still works, with one line saying which name to use
    old = subprocess.run([sys.executable, str(ROOT / "scripts" / "check_runs.py"), "--store", str(runs)],
                         capture_output=True, text=True, timeout=120)
    assert old.stdout == listed.stdout and old.stderr.splitlines() == [
        "warning: --store is deprecated; use --run-store (same meaning)"]

    def copy(name, **changes):
        shutil.copytree(good, runs / name)
        data = {**json.loads((good / "run.json").read_text()), "task_id": name, **changes}
        (runs / name / "run.json").write_text(json.dumps(data))
        return runs / name

    (copy("truncated_json") / "run.json").write_text('{"task_id": "truncated_js')
    copy("edited_status", status="finished")
    (copy("bad_config") / "config.yaml").write_text("a: [unclosed\n")
    model = copy("half_model") / "model.pt"
    model.write_bytes(model.read_bytes()[: model.stat().st_size // 2])
    (copy("bad_metrics") / "metrics.json").write_text("{nope")
    (runs / "empty_folder").mkdir()
    for side in ("logs", "multirun", "reports"):  # reproduce_paper --jobs logs, Hydra multirun records, reports
        (runs / side).mkdir()
    copy("killed", status="running", process={"pid": 2**22 + 12345, "host": __import__("socket").gethostname(),
                                              "started": 1.0})
    res = subprocess.run([sys.executable, str(ROOT / "scripts" / "check_runs.py"), "--run-store", str(runs)],
                         capture_output=True, text=True, timeout=120)
    out = res.stdout
    assert res.returncode == 1, out + res.stderr
    expected = {
        "truncated_json": "run.json is damaged", "edited_status": "status 'finished'",
        "bad_config": "config.yaml is damaged", "half_model": "model.pt is damaged",
        "bad_metrics": "metrics.json is damaged", "empty_folder": "no run.json",
    }
    blocks = {}
    for line in out.splitlines():
        if line.startswith("    BROKEN: "):
            blocks.setdefault(current, []).append(line)
        elif not line.startswith(" "):
            current = line.split()[0]
    for name, text in expected.items():
        assert any(text in problem for problem in blocks.get(name, [])), (name, blocks.get(name), out)
    assert good.name not in blocks and "killed" not in blocks  # a killed run is resumable, not broken
    assert any(line.startswith("killed ") and " killed " in line for line in out.splitlines()), out
    assert out.strip().splitlines()[-1].endswith(f"{len(expected)} broken")
    # nothing but broken ones, and a healthy store exits 0
    only = subprocess.run([sys.executable, str(ROOT / "scripts" / "check_runs.py"), "--run-store", str(runs), "--broken"],
                          capture_output=True, text=True, timeout=120).stdout
    assert good.name not in only and "half_model" in only
    for name in expected:
        shutil.rmtree(runs / name)
    res = subprocess.run([sys.executable, str(ROOT / "scripts" / "check_runs.py"), "--run-store", str(runs)],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and res.stdout.strip().endswith("0 broken"), res.stdout
    missing = subprocess.run([sys.executable, str(ROOT / "scripts" / "check_runs.py"), "--run-store", str(tmp_path / "no")],
                             capture_output=True, text=True, timeout=120)
    assert missing.returncode == 1 and missing.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'no'} is not a folder; pass --run-store <the run store that holds the runs>"]


def test_run_id_prefix_and_similar_id_hint(store):
    store.create("offline-abc123", "train", "t")
    store.create("offline-abd999", "train", "t")
    assert store.resolve_id("offline-abc") == "offline-abc123"
    assert store.resolve_id("offline-abc123") == "offline-abc123"
    assert store.resolve_id("nothing") == "nothing"  # unknown: left to path() to report
    with pytest.raises(UserError, match="prefix 'offline-ab' matches 2 runs"):
        store.resolve_id("offline-ab")
    with pytest.raises(UserError) as excinfo:
        store.path("offline-abc124")  # a typo: the similar ID is named, not an unrelated recent run
    assert "did you mean offline-abc123?" in str(excinfo.value)
    with pytest.raises(UserError) as excinfo:
        store.path("zzz")
    assert "2 train runs there; list them with python scripts/check_runs.py" in str(excinfo.value)
