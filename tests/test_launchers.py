"""Hydra launchers: a real joblib multirun of run_predict, and the SLURM (submitit) launcher config.

The joblib test trains a tiny GPT-2 once (a subprocess of ``run_train.py``), then runs
``run_predict.py --multirun hydra/launcher=joblib hydra.launcher.n_jobs=2`` over two beam
widths: two jobs in two worker processes, each a completed predict run in the run store with
its own ClearML offline task, and Hydra's multirun folder under ``<run_store>/multirun/``.
"""

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from conftest import CONFIG_DIR, ROOT

pytest.importorskip("hydra_plugins.hydra_joblib_launcher")

TINY = [
    "dataset.max_length=16", "model_params.n_positions=16", "dataloader.batch_size=64",
    "dataloader.test_batch_size=64", "dataloader.validation_size=50", "trainer_params.max_epochs=1",
    "trainer_params.enable_progress_bar=false", "trainer_params.enable_model_summary=false",
]


def run_cli(args, tmp_path, timeout=300):
    """A CLI subprocess with ClearML state (cache, config, ~/.clearml) inside ``tmp_path``.

    On a timeout every Python process of the command (Hydra's and the joblib workers) gets SIGABRT, which
    ``PYTHONFAULTHANDLER`` turns into a traceback of each thread: the failure shows where it hung.
    """
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLEARML_", "TRAINS_"))}
    env.update(
        HOME=str(home), CLEARML_CACHE_DIR=str(home / "clearml_cache"),
        CLEARML_CONFIG_FILE=str(home / "clearml.conf"),
        OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"), PYTHONFAULTHANDLER="1",
    )
    with subprocess.Popen(
        [sys.executable, *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        start_new_session=True,
    ) as process:
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGABRT)
            try:
                stdout, stderr = process.communicate(timeout=30)
            finally:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
            pytest.fail(f"{' '.join(args[:3])} ran past {timeout} s; its threads then:\n{stdout[-3000:]}\n{stderr[-12000:]}")
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(run store, train run ID, data) of a one-epoch GPT-2 on a tiny synthetic log."""
    from seqrec.data.synthetic import write_synthetic

    tmp = tmp_path_factory.mktemp("launchers")
    csv = tmp / "tiny.csv"
    write_synthetic(csv, n_users=120, n_items=50, min_len=20, max_len=30, seed=0)
    runs = tmp / "runs"
    res = run_cli(
        ["src/run_train.py", "--config-name=GPT_train", f"data_path={csv}", f"run_store={runs}",
         "task_name=tiny_train", "logger=none", *TINY],
        tmp,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    match = re.search(r"train_task=(\S+)", res.stdout.strip().splitlines()[-1])
    assert match, res.stdout[-2000:]
    return runs, match.group(1), csv


def test_joblib_multirun_of_predict(trained, tmp_path):
    runs, train_id, _ = trained
    res = run_cli(
        ["src/run_predict.py", "--multirun", "--config-name=GPT_beam", "hydra/launcher=joblib",
         "hydra.launcher.n_jobs=2", f"train_task={train_id}", f"run_store={runs}", "task_name=tiny_beam",
         "logger=clearml_offline", "progress=false", "generation_params.num_beams=2,3"],
        tmp_path,
    )
    output = res.stdout + res.stderr
    assert res.returncode == 0, output[-4000:]
    assert re.search(r"Joblib\.Parallel\(n_jobs=2\b", output), output[-3000:]  # the joblib launcher ran them

    predict_runs = {}
    for info_file in runs.glob("*/run.json"):
        info = json.loads(info_file.read_text())
        if info["kind"] == "predict" and info["task_name"] == "tiny_beam":
            predict_runs[info["task_id"]] = (info_file.parent, info)
    assert len(predict_runs) == 2, sorted(predict_runs)
    beams = set()
    for task_id, (run_dir, info) in predict_runs.items():
        assert run_dir.name == task_id and task_id.startswith("offline-")
        assert info["status"] == "completed"
        assert Path(info["clearml_offline_zip"]).is_file()  # each job its own ClearML offline session
        assert (run_dir / "metrics.json").is_file() and (run_dir / "predictions.parquet").is_file()
        cfg = OmegaConf.load(run_dir / "config.yaml")
        assert cfg.train_task == train_id
        beams.add(cfg.generation_params.num_beams)
    assert beams == {2, 3}

    (sweep_dir,) = (runs / "multirun").iterdir()  # Hydra's multirun folder, beside the run folders
    multirun = yaml.safe_load((sweep_dir / "multirun.yaml").read_text())
    assert multirun["hydra"]["launcher"]["_target_"].endswith("JoblibLauncher")
    assert multirun["hydra"]["launcher"]["n_jobs"] == 2


def test_execute_remotely_refuses_multirun(trained, tmp_path):
    """A run sent to a ClearML agent ends its process: with --multirun only the first job would go."""
    _, _, csv = trained
    runs = tmp_path / "runs"
    res = run_cli(
        ["src/run_train.py", "--multirun", f"data_path={csv}", f"run_store={runs}", "logger=clearml",
         "logger.execute_remotely=gpu", *TINY, "seqrec_module.lr=1e-3,3e-3"],
        tmp_path,
    )
    assert res.returncode == 1, res.stdout[-2000:] + res.stderr[-2000:]
    errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "cannot be used with --multirun" in errors[0], res.stderr[-2000:]
    assert not any(path.name != "multirun" for path in runs.iterdir())  # no run folder


def _compose_hydra(overrides):
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose(config_name="GPT_train", overrides=overrides, return_hydra_config=True)


def test_slurm_launcher_config_composes(tmp_path):
    """``hydra/launcher=submitit_slurm`` (the plugin's) and our ``slurm`` preset compose; the preset's
    values are real submitit parameters: they render an sbatch script the way the launcher does."""
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    import submitit
    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf

    plugin = _compose_hydra(["hydra/launcher=submitit_slurm"]).hydra.launcher
    assert plugin._target_ == "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"

    launcher = _compose_hydra(["hydra/launcher=slurm", "hydra.launcher.partition=gpu"]).hydra.launcher
    assert launcher._target_ == plugin._target_
    assert set(launcher) == set(plugin)  # only the plugin's own fields
    assert launcher.partition == "gpu" and launcher.timeout_min == 720 and launcher.gpus_per_node == 1

    # the parameter mapping of SlurmLauncher.launch (hydra_submitit_launcher), without a cluster
    params = OmegaConf.to_container(launcher, resolve=False)
    params.pop("_target_")
    params.update(name="seqrec", submitit_folder=str(tmp_path))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(submitit.SlurmExecutor, "affinity", classmethod(lambda cls: 1))  # "srun is there"
        executor = submitit.AutoExecutor(
            cluster="slurm", folder=params.pop("submitit_folder"), slurm_max_num_timeout=params.pop("max_num_timeout")
        )
        base = set(OmegaConf.structured(BaseQueueConf).keys())
        executor.update_parameters(**{k if k in base else f"slurm_{k}": v for k, v in params.items()})
        sbatch = executor._executor._make_submission_file_text("python -u -m submitit.core._submit", "0")
    for line in ("--partition=gpu", "--time=720", "--gpus-per-node=1", "--cpus-per-task=4", "--mem=32GB",
                 "--nodes=1", "--ntasks-per-node=1"):
        assert f"#SBATCH {line}\n" in sbatch, (line, sbatch)

    # and from the command line, as a user would check it
    res = run_cli(
        ["src/run_train.py", "--cfg", "hydra", "--package", "hydra.launcher", "hydra/launcher=submitit_slurm"],
        tmp_path, timeout=120,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert "_target_: hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher" in res.stdout


def test_two_sweeps_in_the_same_second_get_folders_of_their_own(monkeypatch):
    """Before: multirun/<second>/ was shared, and the second sweep's trial.json files overwrote the first's. The
    clock is frozen here, so both sweeps start "in the same second"; within one sweep every job resolves the same
    folder (Hydra copies the resolver cache into each job's config, as load_sweep_config does)."""
    from hydra.core.utils import setup_globals
    from omegaconf import OmegaConf

    import seqrec.core.paths  # noqa: F401  # registers ${sweep_id:}
    from conftest import CONFIG_DIR

    OmegaConf.register_new_resolver("now", lambda pattern: "2026-12-07_07-00-00", replace=True)
    common = OmegaConf.load(CONFIG_DIR / "base" / "common.yaml")
    common.run_store = "runs"

    def sweep_dir(config):
        return str(config.hydra.sweep.dir)

    first, second = OmegaConf.create(common), OmegaConf.create(common)
    assert sweep_dir(first) != sweep_dir(second)
    assert sweep_dir(first).startswith("runs/multirun/2026-12-07_07-00-00_")
    job = OmegaConf.create(common)
    OmegaConf.copy_cache(from_config=first, to_config=job)  # what Hydra does for each job of the first sweep
    assert sweep_dir(job) == sweep_dir(first)
    setup_globals()  # Hydra's own ${now:} back
