"""SIGTERM and SIGINT end every long-running command the same way (seqrec.core.signals): the open run is marked
interrupted, the command prints one line and exits 130 within seconds, whatever tracker the run has; a resume hint
only when a resume can happen; a run whose process is gone is reported as killed, predict runs too."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import ROOT, TINY_GPT, compose

ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
#: a predict run that takes tens of seconds on the log below: wide beams, one user per chunk
SLOW_PREDICT = ["--config-name=GPT_beam", "generation_params.num_beams=30", "generation_params.max_rows=30",
                "progress=false"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from seqrec import train
    from seqrec.data.synthetic import write_synthetic

    folder = tmp_path_factory.mktemp("signals")
    data, runs = folder / "log.csv", folder / "runs"
    write_synthetic(data, n_users=3000, n_items=200, min_len=20, max_len=40, seed=0)  # ~1,500 test users
    train(compose("GPT_train", [f"data_path={data}", f"run_store={runs}", "logger=none", *TINY_GPT,
                                "trainer_params.max_epochs=1", "trainer_params.limit_train_batches=20"]))
    [run] = list(runs.iterdir())
    return runs, run.name


def _start(args, env_extra=None):
    return subprocess.Popen([sys.executable, *args], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, **ENV, **(env_extra or {})})


def _wait_for(condition, proc, seconds=120):
    deadline = time.monotonic() + seconds
    while not condition():
        assert proc.poll() is None, proc.stderr.read()[-3000:]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _new_runs(runs, before):
    return [p for p in runs.iterdir() if p.name not in before and (p / "run.json").is_file()]


@pytest.mark.parametrize("logger", ["none", "clearml_offline"])
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_stops_prediction_with_one_line(trained, logger, signum):
    """Before: SIGTERM with the ClearML logger was swallowed (the run went on to the end and exited 0); with
    logger=none the process died with 143, no message, and run.json said running forever."""
    runs, train_id = trained
    before = {p.name for p in runs.iterdir()}
    proc = _start(["src/run_predict.py", *SLOW_PREDICT, f"run_store={runs}", f"train_task={train_id}",
                   f"logger={logger}"])
    _wait_for(lambda: _new_runs(runs, before), proc)
    time.sleep(1.0)  # well inside generation
    sent = time.monotonic()
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    took = time.monotonic() - sent
    print(f"{logger} {signal.Signals(signum).name}: exited {took:.2f} s after the signal")
    assert proc.returncode == 130, err[-3000:]
    assert took < 5, took  # the bound on ML-1M; this log is smaller
    [run_dir] = _new_runs(runs, before)
    name = "SIGTERM" if signum == signal.SIGTERM else "SIGINT (Ctrl-C)"
    last = err.strip().splitlines()[-1]
    assert last == (f"error: interrupted by {name}: run {run_dir.name} is marked interrupted and its results are "
                    "incomplete; run the command again for a complete run"), err[-3000:]
    assert "Traceback" not in err
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "interrupted" and record["process"]["pid"] == proc.pid


def test_sigterm_in_the_first_epoch_offers_no_resume(tmp_path, tiny_csv):
    """Before: "keeps its checkpoint; continue it with ..." and the printed command was then refused (no
    checkpoints/last.ckpt). Now the line says there is nothing to continue and gives the command that starts over."""
    runs = tmp_path / "runs"
    proc = _start(["src/run_train.py", "--config-name=GPT_train", f"data_path={tiny_csv}", f"run_store={runs}",
                   "logger=none", *TINY_GPT, "dataloader.batch_size=1", "trainer_params.max_epochs=5"])
    _wait_for(lambda: list(runs.glob("*/run.json")), proc)
    time.sleep(0.5)
    assert not list(runs.glob("*/checkpoints/last.ckpt"))  # still in the first epoch (batch size 1: ~6,000 steps)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-3000:]
    [run_dir] = list(runs.iterdir())
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"error: interrupted by SIGTERM in epoch 0, before its first checkpoint: run {run_dir.name} "
                           "is marked interrupted and has nothing to continue from; start it again with: "), last
    assert "resume=" not in last and "src/run_train.py --config-name=GPT_train" in last
    assert json.loads((run_dir / "run.json").read_text())["status"] == "interrupted"


def test_a_killed_predict_run_is_reported_as_killed(trained):
    """SIGKILL leaves no chance to mark anything: the run stays "running" with a dead process, and check_runs.py
    says it was killed (before: predict runs recorded no process, and counted as neither broken nor killed)."""
    runs, train_id = trained
    before = {p.name for p in runs.iterdir()}
    proc = _start(["src/run_predict.py", *SLOW_PREDICT, f"run_store={runs}", f"train_task={train_id}", "logger=none"])
    _wait_for(lambda: _new_runs(runs, before), proc)
    time.sleep(0.5)
    proc.kill()
    proc.communicate(timeout=60)
    [run_dir] = _new_runs(runs, before)
    assert json.loads((run_dir / "run.json").read_text())["status"] == "running"
    res = subprocess.run([sys.executable, "scripts/check_runs.py", "--run-store", str(runs)], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    line = next(line for line in res.stdout.splitlines() if run_dir.name in line)
    assert "killed" in line, res.stdout


def test_the_experiment_runner_stops_with_one_line(tmp_path, tiny_csv):
    """reproduce_paper.py runs its steps in one process: a signal marks the open run and ends with one line."""
    runs = tmp_path / "runs"
    proc = _start(["scripts/reproduce_paper.py", "--dataset", str(tiny_csv), "--quick", "--run-store", str(runs),
                   "--results", str(tmp_path / "results"), "--models", "GPT", "--seeds", "42"])
    _wait_for(lambda: list(runs.glob("*/run.json")), proc, seconds=300)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-3000:]
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: interrupted by SIGTERM"), last
    assert "Traceback" not in err
    statuses = [json.loads(p.read_text())["status"] for p in runs.glob("*/run.json")]
    assert "running" not in statuses and "interrupted" in statuses, statuses
