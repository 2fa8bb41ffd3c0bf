"""Run folders and checkpoints can come from elsewhere: nothing a run folder holds is unpickled beyond weights.

A crafted ``model.pt`` or ``checkpoints/last.ckpt`` whose pickle would create a file when loaded is refused with
one ``error:`` line, and the file is never created.
"""

import builtins
import os
import shutil
import subprocess
import sys

import pytest
import torch

from conftest import ROOT, compose
from seqrec import train

TINY = [
    "dataset.max_length=16", "model_params.n_positions=16", "model_params.n_embd=16", "model_params.n_layer=1",
    "dataloader.batch_size=32", "dataloader.validation_size=100", "trainer_params.enable_progress_bar=false",
    "trainer_params.enable_model_summary=false", "logger=none",
]


class Exploit:
    """Unpickling this calls ``open(path, "w")``: a file appears if the loader runs the pickle's code."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return builtins.open, (self.path, "w")


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_csv):
    runs = tmp_path_factory.mktemp("untrusted") / "runs"
    train(compose("GPT_train", [f"data_path={tiny_csv}", f"run_store={runs}", "trainer_params.max_epochs=1", *TINY]))
    [run_dir] = list(runs.iterdir())
    return runs, run_dir


def _cli(script, *args):
    return subprocess.run([sys.executable, f"src/{script}", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})


def test_crafted_model_file_is_refused_and_runs_nothing(trained, tmp_path):
    runs, run_dir = trained
    bad = runs / "crafted_model"
    shutil.copytree(run_dir, bad)
    (bad / "run.json").write_text((bad / "run.json").read_text().replace(run_dir.name, bad.name))
    marker = tmp_path / "pwned"
    meta = torch.load(run_dir / "model.pt", weights_only=True)
    torch.save({**meta, "params": {**meta["params"], "hook": Exploit(marker)}}, bad / "model.pt")
    # the file really is an exploit: a trusting load creates the marker
    torch.load(bad / "model.pt", weights_only=False)
    assert marker.exists()
    marker.unlink()

    res = _cli("run_predict.py", "--config-name=GPT_predict", f"train_task={bad.name}", f"run_store={runs}", "logger=none")
    assert res.returncode == 1
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "model.pt holds objects other than weights" in last, res.stderr[-2000:]
    assert "refused, since loading it could run code" in last and "Traceback" not in res.stderr
    assert not marker.exists()


def test_crafted_checkpoint_is_refused_on_resume_and_runs_nothing(trained, tmp_path, tiny_csv):
    runs, run_dir = trained
    bad = runs / "crafted_ckpt"
    shutil.copytree(run_dir, bad)
    (bad / "run.json").write_text(
        (bad / "run.json").read_text().replace(run_dir.name, bad.name).replace('"completed"', '"failed"')
    )
    marker = tmp_path / "pwned"
    state = torch.load(bad / "checkpoints" / "last.ckpt", weights_only=True)
    torch.save({**state, "callbacks": Exploit(marker)}, bad / "checkpoints" / "last.ckpt")

    res = _cli("run_train.py", "--config-name=GPT_train", f"data_path={tiny_csv}", f"run_store={runs}",
               "trainer_params.max_epochs=2", *TINY, f"resume={bad.name}")
    assert res.returncode == 1
    last = res.stderr.strip().splitlines()[-1]
    opener = f"({builtins.open.__module__}.{builtins.open.__qualname__})"  # the global the pickle wanted: io.open
    assert "last.ckpt holds objects other than weights " + opener in last, res.stderr[-2000:]
    assert not marker.exists()
