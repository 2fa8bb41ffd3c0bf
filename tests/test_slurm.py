"""A real SLURM (one node: this machine, started by ``scripts/slurm/start_cluster.sh``), not an imitation of its
environment: a ``--multirun hydra/launcher=submitit_slurm`` sweep runs its jobs as a SLURM job array and records every
trial; a training job that SLURM requeues (``scontrol requeue``) or preempts (a job of the higher-priority partition
``urgent`` takes its CPUs; ``PreemptMode=REQUEUE``) continues its own run from its last checkpoint, and ends exactly
where the same training, never interrupted, ends.

Skipped, with the reason, where there is no ``sinfo`` or the one-node cluster does not answer within a few seconds.
"""

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import uuid

import pandas as pd
import pytest
import torch

from conftest import ROOT, TINY_GPT

START = "bash scripts/slurm/start_cluster.sh (as root)"
#: a training long enough that SLURM's requeue lands in the middle of it (0.1-0.3 s an epoch on one thread; the
#: preempting job starts within a scheduling pass, up to 2 s, after it is submitted)
EPOCHS = 50


def _slurm(*args, timeout=30, env=None):
    return subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, env=env)


def _node_up() -> str | None:
    """None if a node of the default partition is idle (or busy), else why not."""
    if shutil.which("sinfo") is None:
        return f"no SLURM here (sinfo not found); start the one-node cluster with {START}"
    deadline, states = time.monotonic() + 5, ""
    while time.monotonic() < deadline:
        try:
            res = _slurm("sinfo", "-h", "-o", "%P %T", timeout=5)
        except subprocess.TimeoutExpired:
            res = None
        states = (res.stdout + res.stderr).strip() if res else "sinfo did not answer in 5 s"
        if res and res.returncode == 0 and re.search(r"^\S+\* (idle|mixed|allocated)", states, re.M):
            return None
        time.sleep(0.5)
    return f"the SLURM cluster is not up ({states or 'sinfo printed nothing'}); start it with {START}"


_why = _node_up()
pytestmark = pytest.mark.skipif(_why is not None, reason=_why or "")


def _env(tmp_path):
    """The environment of the jobs (sbatch passes it on) and of the uninterrupted twin: no SLURM variables of
    an enclosing job, one thread (the same float reductions in every process), ClearML state in ``tmp_path``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "SBATCH_", "CLEARML_", "TRAINS_"))}
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env.update(HOME=str(home), CLEARML_CACHE_DIR=str(home / "clearml_cache"),
               CLEARML_CONFIG_FILE=str(home / "clearml.conf"), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               PYTHONFAULTHANDLER="1")
    return env


def _job(job_id: str) -> dict:
    """``scontrol show job`` as a dict (JobState, Restarts, ...); {} once SLURM has forgotten the job."""
    res = _slurm("scontrol", "-o", "show", "job", job_id)
    return dict(f.split("=", 1) for f in res.stdout.split() if "=" in f) if res.returncode == 0 else {}


@pytest.fixture
def job_name():
    """A name unique to this test for its SLURM jobs; whatever of them still runs at the end is cancelled."""
    name = f"seqrec-test-{uuid.uuid4().hex[:8]}"
    yield name
    _slurm("scancel", f"--name={name}")


def _run_json(run_dir):
    return json.loads((run_dir / "run.json").read_text())


def test_submitit_sweep_runs_as_slurm_jobs(tmp_path, tiny_csv, job_name):
    """Two trainings of a sweep, two tasks of one SLURM job array; each job a completed run with its trial.json."""
    runs = tmp_path / "runs"
    cmd = [sys.executable, "src/run_train.py", "--multirun", "--config-name=GPT_train",
           "hydra/launcher=submitit_slurm", "hydra.launcher.timeout_min=10", f"hydra.launcher.name={job_name}",
           f"data_path={tiny_csv}", f"run_store={runs}", "task_name=slurm_sweep", "logger=none", *TINY_GPT,
           "trainer_params.max_epochs=2", "seqrec_module.lr=1e-3,3e-3"]
    started = time.monotonic()
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=240, env=_env(tmp_path))
    output = res.stdout + res.stderr
    assert res.returncode == 0, output[-4000:]
    assert "Submitit 'slurm' sweep output dir" in output, output[-3000:]

    (sweep,) = (runs / "multirun").iterdir()
    (script,) = (sweep / ".submitit").glob("*/*_submission.sh")
    array = script.parent.name  # the job array's ID: its tasks are <array>_0 and <array>_1
    assert "#SBATCH --array=0-1" in script.read_text()
    trials = {int(p.parent.name): json.loads(p.read_text()) for p in sweep.glob("*/trial.json")}
    assert sorted(trials) == [0, 1], sorted(p.name for p in sweep.iterdir())
    lrs = {}
    for index, trial in trials.items():
        run_dir = runs / trial["run_id"]
        record = _run_json(run_dir)
        assert record["status"] == "completed" and record["kind"] == "train"
        assert record["process"]["slurm_job"] == f"{array}_{index}"  # it ran as that task of the array
        assert record["process"]["host"] == _slurm("hostname").stdout.strip()
        metrics = json.loads((run_dir / "metrics.json").read_text())
        assert metrics["epochs"] == 2 and trial["objective"] == metrics["best_val_next_ndcg@10"]
        lrs[index] = next(o for o in trial["overrides"] if o.startswith("seqrec_module.lr="))
        log = (sweep / ".submitit" / f"{array}_{index}" / f"{array}_{index}_0_log.out").read_text()
        assert f"Starting with JobEnvironment(job_id={array}_{index}" in log
    assert sorted(lrs.values()) == ["seqrec_module.lr=0.001", "seqrec_module.lr=0.003"]
    assert len([p for p in runs.iterdir() if p.name != "multirun"]) == 2
    print(f"sweep: job array {array}, tasks {sorted(f'{array}_{i}' for i in trials)} -> runs "
          f"{[trials[i]['run_id'] for i in sorted(trials)]} ({lrs}), objectives "
          f"{[round(trials[i]['objective'], 4) for i in sorted(trials)]}, {time.monotonic() - started:.0f} s")


def _train_args(tiny_csv, runs):
    return ["src/run_train.py", "--config-name=GPT_train", f"data_path={tiny_csv}", f"run_store={runs}",
            "task_name=slurm_requeue", "logger=none", *TINY_GPT, f"trainer_params.max_epochs={EPOCHS}", "patience=100"]


@pytest.fixture(scope="module")
def twin(tmp_path_factory, tiny_csv):
    """The same training as the requeued job's (same overrides, seed and thread count), never interrupted, run
    directly (not through SLURM)."""
    tmp = tmp_path_factory.mktemp("twin")
    runs = tmp / "runs"
    res = subprocess.run([sys.executable, *_train_args(tiny_csv, runs)], cwd=ROOT, capture_output=True, text=True,
                         timeout=300, env=_env(tmp))
    assert res.returncode == 0, res.stderr[-3000:]
    (run_dir,) = runs.iterdir()
    return run_dir


@pytest.mark.parametrize("how", ["scontrol requeue", "preempted"])
def test_requeued_training_continues_its_run_to_the_uninterrupted_result(tmp_path, tiny_csv, job_name, twin, how):
    runs = tmp_path / "runs"
    wrapper = tmp_path / "train.sh"
    wrapper.write_text("#!/bin/bash\n"
                       'echo "start: job $SLURM_JOB_ID restart ${SLURM_RESTART_COUNT:-0}"\n'
                       f"exec {shlex.join([sys.executable, *_train_args(tiny_csv, runs)])}\n")
    log = tmp_path / "job.out"
    cpus = os.cpu_count() if how == "preempted" else 1  # preempted: all the node's CPUs, so the urgent job needs them
    submit = _slurm("sbatch", "--parsable", "--requeue", "--open-mode=append", f"--job-name={job_name}",
                    "--partition=debug", f"--cpus-per-task={cpus}", f"--output={log}", f"--chdir={ROOT}",
                    str(wrapper), env=_env(tmp_path))
    assert submit.returncode == 0, submit.stderr
    job_id = submit.stdout.strip().split(";")[0]

    deadline = time.monotonic() + 120
    while not list(runs.glob("*/checkpoints/last.ckpt")):
        state = _job(job_id).get("JobState")
        assert state in ("PENDING", "CONFIGURING", "RUNNING") and time.monotonic() < deadline, \
            f"job {job_id} {state}, no checkpoint: {log.read_text()[-3000:] if log.exists() else ''}"
        time.sleep(0.1)
    if how == "scontrol requeue":
        res = _slurm("scontrol", "requeue", job_id)
        assert res.returncode == 0, res.stderr
    else:  # a job of the higher-priority partition needs the node's CPUs: SLURM preempts (requeues) the training
        res = _slurm("sbatch", "--parsable", "--partition=urgent", f"--cpus-per-task={cpus}",
                     f"--job-name={job_name}", f"--output={tmp_path / 'urgent.out'}", "--wrap=sleep 1")
        assert res.returncode == 0, res.stderr

    deadline = time.monotonic() + 240
    while (info := _job(job_id)).get("JobState") != "COMPLETED":
        assert info.get("JobState") in ("PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "REQUEUED") \
            and time.monotonic() < deadline, f"job {job_id}: {info.get('JobState')}\n{log.read_text()[-4000:]}"
        time.sleep(0.5)
    out = log.read_text()
    assert info["Restarts"] == "1", out[-3000:]
    reason = "JOB REQUEUE" if how == "scontrol requeue" else "PREEMPTION"
    assert "CANCELLED AT" in out and f"DUE TO {reason}" in out, out[-3000:]
    assert f"start: job {job_id} restart 0" in out and f"start: job {job_id} restart 1" in out

    (run_dir,) = runs.iterdir()  # one run: the requeued job continued it, no second one
    assert f"requeued SLURM job {job_id}: resuming its run {run_dir.name}" in out
    record = _run_json(run_dir)
    assert record["status"] == "completed" and record["process"]["slurm_job"] == job_id
    [resumed] = record["resumed"]
    assert resumed["previous_status"] == "interrupted"  # SLURM's SIGTERM, handled: not a kill
    assert 0 <= resumed["checkpoint_epoch"] < EPOCHS - 1, resumed  # requeued in the middle of the training

    # against the twin, never interrupted: every epoch's metrics and loss, the best score, the weights. Both on
    # one thread (_env): a job with the machine's default thread count (2 here) ends elsewhere in the last bits
    # (measured: val_next_ndcg@10 of epoch 5 0.587005 against 0.583315, uninterrupted and without SLURM too)
    assert record["hardware"] == _run_json(twin)["hardware"], (record["hardware"], _run_json(twin)["hardware"])
    hist, hist_twin = pd.read_csv(run_dir / "history.csv"), pd.read_csv(twin / "history.csv")
    assert list(hist["epoch"]) == list(range(EPOCHS))
    pd.testing.assert_frame_equal(hist, hist_twin, check_exact=True)
    metrics, metrics_twin = (json.loads((d / "metrics.json").read_text()) for d in (run_dir, twin))
    for key in ("best_val_next_ndcg@10", "epochs", "best_epoch"):
        assert metrics[key] == metrics_twin[key], key
    state = torch.load(run_dir / "model.pt", weights_only=False)["state_dict"]
    state_twin = torch.load(twin / "model.pt", weights_only=False)["state_dict"]
    assert state.keys() == state_twin.keys() and all(torch.equal(state[k], state_twin[k]) for k in state)
    print(f"{how}: job {job_id} interrupted after epoch {resumed['checkpoint_epoch']} of {EPOCHS}, restarted "
          f"(Restarts=1), run {run_dir.name} resumed and completed; best val_next_ndcg@10 "
          f"{metrics['best_val_next_ndcg@10']!r} (epoch {metrics['best_epoch']}) = twin {twin.name}'s "
          f"{metrics_twin['best_val_next_ndcg@10']!r}; history.csv and model.pt identical")
