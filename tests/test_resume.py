"""Resuming a training run (``resume=<ID>``): a run killed with SIGKILL continues from its last
checkpoint in its own folder and ends exactly where an uninterrupted run with the same seed ends."""

import io
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time

import pandas as pd
import pytest
import torch

from conftest import ROOT, compose
from seqrec.core.errors import UserError
from seqrec import predict, train
from seqrec.tracking.run_store import RunStore, current_process, process_alive

TINY = [
    "dataset.max_length=16", "model_params.n_positions=16", "model_params.n_embd=16", "model_params.n_layer=1",
    "dataloader.batch_size=32", "dataloader.validation_size=100", "trainer_params.enable_progress_bar=false",
    "trainer_params.enable_model_summary=false",
]
ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _args(data, runs, *extra):
    return [f"data_path={data}", f"run_store={runs}", "task_name=resume_train", *TINY, *extra]


def _run_json(run_dir):
    return json.loads((run_dir / "run.json").read_text())


def _write_run_json(run_dir, **changes):
    data = {**_run_json(run_dir), **changes}
    (run_dir / "run.json").write_text(json.dumps(data))


def _train_id(capsys) -> str:
    return capsys.readouterr().out.strip().splitlines()[-1].split("train_task=")[1].split()[0]


def _cli(*args, timeout=180):
    return subprocess.run(
        [sys.executable, "src/run_train.py", "--config-name=GPT_train", *args], cwd=ROOT, capture_output=True,
        text=True, timeout=timeout, env={**os.environ, **ENV},
    )


def _kill_after_first_checkpoint(proc, runs, timeout=120):
    """SIGKILL ``proc`` once its run folder holds a loadable checkpoints/last.ckpt; return the run folder."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"training ended before it was killed: {proc.stderr.read()[-2000:]}"
        folders = [p for p in runs.iterdir() if (p / "run.json").exists()] if runs.is_dir() else []
        last = folders[0] / "checkpoints" / "last.ckpt" if folders else None
        if last is not None and last.exists():
            proc.send_signal(signal.SIGSTOP)  # frozen: the file cannot change while it is checked
            try:
                torch.load(last, map_location="cpu", weights_only=False)
            except Exception:
                proc.send_signal(signal.SIGCONT)  # caught mid-write: wait for the complete file
            else:
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=30)
                return folders[0]
        time.sleep(0.01)
    proc.kill()
    raise AssertionError("no checkpoint within the timeout")


def test_killed_run_resumes_to_the_uninterrupted_result(tmp_path, tiny_csv, capsys):
    runs = tmp_path / "runs"
    # B: a long run (50 epochs) killed with SIGKILL somewhere after its first checkpoint
    proc = subprocess.Popen(
        [sys.executable, "src/run_train.py", "--config-name=GPT_train", *_args(tiny_csv, runs),
         "trainer_params.max_epochs=50", "logger=clearml_offline"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env={**os.environ, **ENV},
    )
    run_dir = _kill_after_first_checkpoint(proc, runs)
    assert proc.returncode == -signal.SIGKILL
    run_id = run_dir.name
    killed = _run_json(run_dir)
    assert killed["status"] == "running" and killed["process"]["pid"] == proc.pid  # what a kill -9 leaves
    assert process_alive(killed["process"]) is False
    killed_ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)
    ckpt_epoch = killed_ckpt["epoch"]
    n_epochs = ckpt_epoch + 3  # at least two epochs after the resume, wherever the kill landed

    res = _cli(*_args(tiny_csv, runs), f"trainer_params.max_epochs={n_epochs}", "logger=clearml_offline", f"resume={run_id}")
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.strip().splitlines()[-1].endswith(f"train_task={run_id} run_store={runs}")
    assert sorted(p.name for p in runs.iterdir()) == [run_id]  # no new run folder
    record = _run_json(run_dir)
    assert record["status"] == "completed" and record["task_id"] == run_id
    [entry] = record["resumed"]
    assert entry["previous_status"] == "running" and entry["checkpoint_epoch"] == ckpt_epoch
    assert record["tracker_task_ids"] == [run_id, entry["tracker_task_id"]] and entry["tracker_task_id"] != run_id
    assert os.path.isdir(entry["clearml_offline_session"])  # the new ClearML (offline) task of the resumed part
    assert record["clearml_offline_session"] != entry["clearml_offline_session"]
    assert f"max_epochs: {n_epochs}" in (run_dir / "config.yaml").read_text()
    log = (run_dir / "run.log").read_text()
    assert f"resumed from checkpoints/last.ckpt (epoch {ckpt_epoch}" in log
    # training time adds up every attempt: the killed part's (Lightning's Timer state in the checkpoint it resumed
    # from) is part of the total
    killed_seconds = next(v for k, v in killed_ckpt["callbacks"].items() if k.startswith("Timer"))["time_elapsed"]["train"]
    assert json.loads((run_dir / "metrics.json").read_text())["fit_seconds"] >= round(killed_seconds, 1) > 0

    # A: the same seed and settings, never interrupted (in-process is fine: same numbers on CPU with the same
    # number of threads as B's processes, ENV; other thread counts change float reductions in the last bits)
    threads = torch.get_num_threads()
    torch.set_num_threads(int(ENV["OMP_NUM_THREADS"]))
    try:
        train(compose("GPT_train", _args(tiny_csv, tmp_path / "runs_a", f"trainer_params.max_epochs={n_epochs}",
                                         "logger=none")))
    finally:
        torch.set_num_threads(threads)
    dir_a = tmp_path / "runs_a" / _train_id(capsys)

    hist_a, hist_b = pd.read_csv(dir_a / "history.csv"), pd.read_csv(run_dir / "history.csv")
    assert list(hist_b["epoch"]) == list(range(n_epochs))  # the epochs before the kill are kept
    pd.testing.assert_frame_equal(hist_a, hist_b, check_exact=True)  # val metrics and train_loss, every epoch
    metrics_a, metrics_b = (json.loads((d / "metrics.json").read_text()) for d in (dir_a, run_dir))
    for key in ("best_val_next_ndcg@10", "epochs", "best_epoch"):
        assert metrics_a[key] == metrics_b[key], key
    state_a = torch.load(dir_a / "model.pt", weights_only=False)["state_dict"]
    state_b = torch.load(run_dir / "model.pt", weights_only=False)["state_dict"]
    assert state_a.keys() == state_b.keys() and all(torch.equal(state_a[k], state_b[k]) for k in state_a)

    predicted = {}
    for name, store in (("a", dir_a.parent), ("b", runs)):
        pcfg = compose("GPT_predict", [f"train_task={dir_a.name if name == 'a' else run_id}", f"run_store={store}",
                                       "logger=none", "progress=false"])
        predict(pcfg)
        [pdir] = [p for p in store.iterdir() if _run_json(p)["kind"] == "predict"]
        metrics = json.loads((pdir / "metrics.json").read_text())
        predicted[name] = (pd.read_parquet(pdir / "predictions.parquet"),
                           {k: v for k, v in metrics.items() if not k.endswith("ms_per_user")})
    pd.testing.assert_frame_equal(predicted["a"][0], predicted["b"][0], check_exact=True)
    assert predicted["a"][1] == predicted["b"][1]

    # a completed run is not resumed: one line, nothing changed
    res = _cli(*_args(tiny_csv, runs), f"trainer_params.max_epochs={n_epochs}", f"resume={run_id}", "logger=none")
    assert res.returncode == 1 and "Traceback" not in res.stderr + res.stdout
    assert res.stderr.strip().splitlines()[-1].startswith(f"error: run {run_id} is completed, there is nothing to resume")
    assert _run_json(run_dir) == record


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, tiny_csv):
    """A completed 1-epoch run (logger=none) and its store."""
    runs = tmp_path_factory.mktemp("resume_errors") / "runs"
    train(compose("GPT_train", _args(tiny_csv, runs, "trainer_params.max_epochs=1", "logger=none")))
    [run_dir] = list(runs.iterdir())
    return runs, run_dir


def _copy(runs, run_dir, new_id, **changes):
    """A copy of a run folder under another ID with run.json changed (e.g. a failed run)."""
    shutil.copytree(run_dir, runs / new_id)
    _write_run_json(runs / new_id, task_id=new_id, **changes)
    return runs / new_id


def _resume(tiny_csv, runs, run_id, *extra):
    train(compose("GPT_train", _args(tiny_csv, runs, "trainer_params.max_epochs=2", "logger=none", f"resume={run_id}", *extra)))


@pytest.mark.parametrize(
    "case, message",
    [
        ("completed", "is completed, there is nothing to resume"),
        ("alive", "is still running (pid"),
        ("other_host", "is marked running on host elsewhere"),
        ("no_checkpoint", "has no checkpoints/last.ckpt (it stopped before its first checkpoint); start a new run"),
        ("damaged_checkpoint", "checkpoints/last.ckpt cannot be read"),
        ("other_config", "the config differs from the run's"),
        ("unknown", "unknown run ID 'nope'"),
        ("predict_run", "is a predict run, not a train run"),
    ],
)
def test_resume_refusals_are_one_line(finished_run, tiny_csv, case, message):
    runs, run_dir = finished_run
    run_id, extra = run_dir.name, []
    if case == "alive":  # this very process
        run_id = _copy(runs, run_dir, "alive", status="running", process=current_process()).name
    elif case == "other_host":
        run_id = _copy(runs, run_dir, "other_host", status="running", process={"pid": 1, "host": "elsewhere"}).name
    elif case == "no_checkpoint":
        copy = _copy(runs, run_dir, "no_ckpt", status="failed")
        shutil.rmtree(copy / "checkpoints")
        run_id = copy.name
    elif case == "damaged_checkpoint":
        copy = _copy(runs, run_dir, "damaged", status="interrupted")
        data = (copy / "checkpoints" / "last.ckpt").read_bytes()
        (copy / "checkpoints" / "last.ckpt").write_bytes(data[: len(data) // 2])
        run_id = copy.name
    elif case == "other_config":
        run_id = _copy(runs, run_dir, "other_cfg", status="failed").name
        extra = ["seqrec_module.lr=0.5", "patience=3"]
    elif case == "unknown":
        run_id = "nope"
    elif case == "predict_run":
        run_id = _copy(runs, run_dir, "a_predict_run", status="failed", kind="predict").name
    before = _run_json(runs / run_id) if (runs / run_id).exists() else None
    with pytest.raises(UserError) as excinfo:
        _resume(tiny_csv, runs, run_id, *extra)
    text = str(excinfo.value)
    assert message in text and "\n" not in text, text
    if case == "other_config":  # says what differs
        assert "patience=3 (the run has 10)" in text and "seqrec_module.lr=0.5 (the run has 0.001)" in text
    if before is not None:
        assert _run_json(runs / run_id) == before  # a refused resume changes nothing


def test_failed_run_resumes_and_is_recorded(finished_run, tiny_csv, capsys):
    """A failed run (e.g. an exception in epoch 2) resumes; every resume is recorded."""
    runs, run_dir = finished_run
    copy = _copy(runs, run_dir, "failed_once", status="failed", finished="2001-01-01T00:00:00+00:00")
    _resume(tiny_csv, runs, copy.name, "trainer_params.enable_progress_bar=true")  # display keys may change
    assert _train_id(capsys) == copy.name
    record = _run_json(copy)
    assert record["status"] == "completed" and record["finished"] != "2001-01-01T00:00:00+00:00"
    assert record["resumed"][0]["previous_status"] == "failed"
    assert record["resumed"][0]["previous_finished"] == "2001-01-01T00:00:00+00:00"
    assert len(record["tracker_task_ids"]) == 2 and record["tracker_task_ids"][0] == "failed_once"
    assert json.loads((copy / "metrics.json").read_text())["epochs"] == 2
    assert list(pd.read_csv(copy / "history.csv")["epoch"]) == [0, 1]


# --------------------------------------------------------------------------- run store
def test_run_store_resume_bookkeeping(tmp_path):
    store = RunStore(tmp_path)
    store.create("r1", "train", "t")
    store.finish("r1", status="interrupted")
    first = store.resume("r1", tracker_task_id="t2", checkpoint_epoch=3)
    assert first["status"] == "running" and "finished" not in first
    assert first["resumed"][0]["tracker_task_id"] == "t2" and first["resumed"][0]["checkpoint_epoch"] == 3
    store.update_last_resume("r1", clearml_offline_session="/x")
    store.update("r1", process={"pid": 2**22 + 12345, "host": socket.gethostname()})  # no such process: killed
    second = store.resume("r1", tracker_task_id="t3")
    assert [e["tracker_task_id"] for e in second["resumed"]] == ["t2", "t3"]
    assert second["resumed"][0]["clearml_offline_session"] == "/x"
    assert second["resumed"][1]["previous_status"] == "running"
    assert second["tracker_task_ids"] == ["r1", "t2", "t3"]
    store.finish("r1")
    with pytest.raises(UserError, match="is completed"):
        store.resume("r1")


def test_process_alive(tmp_path):
    me = current_process()
    assert process_alive(me) is True
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert process_alive({**me, "pid": child.pid, "started": None}) is False
    assert process_alive({**me, "host": "elsewhere"}) is None
    assert process_alive(None) is None
    parent = {"pid": os.getppid(), "host": me["host"]}
    assert process_alive(parent) is True
    assert process_alive({**parent, "started": 12.0}) is False  # the pid now belongs to a later process


def test_resume_after_early_stopping_trains_no_more(tmp_path, tiny_csv):
    """Killed after early stopping decided, before the run was marked completed: the resume trains no more."""
    runs, settings = tmp_path / "runs", ["trainer_params.max_epochs=15", "patience=0", "logger=none"]
    train(compose("GPT_train", _args(tiny_csv, runs, *settings)))
    [run_dir] = list(runs.iterdir())
    epochs = json.loads((run_dir / "metrics.json").read_text())["epochs"]
    model = (run_dir / "model.pt").read_bytes()
    _write_run_json(run_dir, status="interrupted")
    train(compose("GPT_train", _args(tiny_csv, runs, *settings, f"resume={run_dir.name}")))
    assert json.loads((run_dir / "metrics.json").read_text())["epochs"] == epochs
    assert len(pd.read_csv(run_dir / "history.csv")) == epochs
    before = torch.load(io.BytesIO(model), weights_only=False)["state_dict"]
    after = torch.load(run_dir / "model.pt", weights_only=False)["state_dict"]
    assert all(torch.equal(before[k], after[k]) for k in before)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_marks_the_run_interrupted_and_prints_the_command_that_continues_it(tmp_path, tiny_csv, signum):
    """SIGTERM (what SLURM sends before preemption) and SIGINT (Ctrl-C): the run stops at the end of the current
    batch, is marked interrupted (not failed), keeps its last epoch checkpoint, and the last line gives the exact
    command that continues it; that command, run as printed, finishes the run in the same folder."""
    runs = tmp_path / "runs"
    proc = subprocess.Popen(
        [sys.executable, "src/run_train.py", "--config-name=GPT_train", *_args(tiny_csv, runs),
         "trainer_params.max_epochs=8", "patience=50", "logger=none"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env={**os.environ, **ENV},
    )
    deadline = time.monotonic() + 120
    while not list(runs.glob("*/checkpoints/last.ckpt")):
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()[-2000:]
        time.sleep(0.01)
    sent = time.monotonic()
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)  # a hang fails here
    print(f"{signal.Signals(signum).name}: exited {time.monotonic() - sent:.2f} s after the signal")
    assert proc.returncode == 130, err[-3000:]
    [run_dir] = list(runs.iterdir())
    last = err.strip().splitlines()[-1]
    name = "SIGTERM" if signum == signal.SIGTERM else "SIGINT (Ctrl-C)"
    assert last.startswith(f"error: interrupted by {name} in epoch ") and "Traceback" not in err, err[-3000:]
    record = _run_json(run_dir)
    assert record["status"] == "interrupted"
    command = last.split("continue it with: ", 1)[1]
    args = shlex.split(command)
    assert args[:2] == ["python", "src/run_train.py"] and args[-1] == f"resume={run_dir.name}"
    epoch = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["epoch"]

    res = subprocess.run([sys.executable, *args[1:]], cwd=ROOT, capture_output=True, text=True, timeout=300,
                         env={**os.environ, **ENV})
    assert res.returncode == 0, res.stderr[-3000:]
    record = _run_json(run_dir)
    assert record["status"] == "completed" and record["resumed"][0]["previous_status"] == "interrupted"
    assert record["resumed"][0]["checkpoint_epoch"] == epoch
    assert list(pd.read_csv(run_dir / "history.csv")["epoch"]) == list(range(8))
    assert sorted(p.name for p in runs.iterdir()) == [run_dir.name]


def test_two_simultaneous_resumes_one_is_refused(tmp_path, monkeypatch):
    """Two processes resuming one run at the same moment: the check and the "running" mark happen under a lock,
    so one resumes and the other is refused. The check is slowed down here so that both are inside it at once
    (without the lock both would resume)."""
    import threading

    store = RunStore(tmp_path)
    store.create("r1", "train", "t")
    store.finish("r1", status="interrupted")
    original = RunStore.check_resumable

    def slow_check(self, task_id):
        data = original(self, task_id)
        time.sleep(0.3)
        return data

    monkeypatch.setattr(RunStore, "check_resumable", slow_check)
    outcomes = []

    def attempt():
        try:
            RunStore(tmp_path).resume("r1", tracker_task_id="t")
            outcomes.append("resumed")
        except UserError as exc:
            outcomes.append(str(exc))

    threads = [threading.Thread(target=attempt) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes)[0] == "resumed" and "is still running (pid" in sorted(outcomes)[1], outcomes
    assert len(_run_json(tmp_path / "r1")["resumed"]) == 1


def test_resume_keeps_the_run_length_unless_the_command_changes_it(finished_run, tiny_csv):
    """A 1-epoch run resumed without trainer_params.max_epochs stays a 1-epoch run (it used to train on to the
    config default, 100, silently); giving the key changes it, and says so."""
    runs, run_dir = finished_run
    copy = _copy(runs, run_dir, "keeps_length", status="failed")
    res = _cli(*_args(tiny_csv, runs), "logger=none", f"resume={copy.name}")
    assert res.returncode == 0, res.stderr[-3000:]
    said = res.stdout + res.stderr + (copy / "run.log").read_text()
    assert "trainer_params.max_epochs=1, the run's own (pass trainer_params.max_epochs=<N> to change it)" in said
    assert list(pd.read_csv(copy / "history.csv")["epoch"]) == [0]
    assert "max_epochs: 1\n" in (copy / "config.yaml").read_text()
    longer = _copy(runs, run_dir, "longer", status="failed")
    res = _cli(*_args(tiny_csv, runs), "logger=none", "trainer_params.max_epochs=2", f"resume={longer.name}")
    assert res.returncode == 0, res.stderr[-3000:]
    assert list(pd.read_csv(longer / "history.csv")["epoch"]) == [0, 1]


def test_preempted_slurm_job_requeued_resumes_its_own_run(tmp_path, tiny_csv):
    """SLURM preemption with requeue (submitit's checkpoint/requeue, or Lightning's): the job gets SIGTERM, its
    run is marked interrupted; the requeued job runs the same command again (same job ID, SLURM_RESTART_COUNT
    1) and continues that run in its folder instead of starting a new one. Simulated with the environment SLURM
    sets and a real signal."""
    runs = tmp_path / "runs"
    command = [sys.executable, "src/run_train.py", "--config-name=GPT_train", *_args(tiny_csv, runs),
               "trainer_params.max_epochs=6", "patience=50", "logger=none"]
    job = {"SLURM_JOB_ID": "4242", "SLURM_RESTART_COUNT": "0"}
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **ENV, **job})
    deadline = time.monotonic() + 120
    while not list(runs.glob("*/checkpoints/last.ckpt")):
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()[-2000:]
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=120)
    [run_dir] = list(runs.iterdir())
    record = _run_json(run_dir)
    assert record["status"] == "interrupted" and record["process"]["slurm_job"] == "4242"

    # another job's first start (no restart) is a new run; the requeued job continues its own
    other = subprocess.run([*command[:-2], "trainer_params.max_epochs=1", "logger=none"], cwd=ROOT, capture_output=True,
                           text=True, timeout=300, env={**os.environ, **ENV, "SLURM_JOB_ID": "4242",
                                                        "SLURM_RESTART_COUNT": "0"})
    assert other.returncode == 0, other.stderr[-2000:]
    assert len(list(runs.iterdir())) == 2
    res = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300,
                         env={**os.environ, **ENV, "SLURM_JOB_ID": "4242", "SLURM_RESTART_COUNT": "1"})
    assert res.returncode == 0, res.stderr[-3000:]
    assert f"requeued SLURM job 4242: resuming its run {run_dir.name}" in res.stdout + res.stderr
    assert len(list(runs.iterdir())) == 2  # no third run
    record = _run_json(run_dir)
    assert record["status"] == "completed" and record["resumed"][0]["previous_status"] == "interrupted"
    assert list(pd.read_csv(run_dir / "history.csv")["epoch"]) == list(range(6))
