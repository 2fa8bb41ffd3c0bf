"""A full disk during training, on a real size-limited filesystem (tmpfs; skipped where mounting is not allowed).

The run store lives on a small tmpfs. After the first checkpoint the disk is filled up to a little less than a
checkpoint needs; the next checkpoint write fails with ENOSPC. Then: one ``error:`` line naming the path and the
free space, no partial file, the earlier files intact (the last good checkpoint loads), the run marked failed,
and the printed command resumes it once there is room again.
"""

import os
import shlex
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch

from conftest import ROOT

ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@pytest.fixture
def small_disk(tmp_path):
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()[:80]}); the ENOSPC path needs a small filesystem")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_full_disk_while_training_keeps_the_last_checkpoint_and_resumes(small_disk, tiny_csv):
    runs = small_disk / "runs"
    args = [f"data_path={tiny_csv}", f"run_store={runs}", "task_name=disk", "logger=none", "dataset.max_length=16",
            "model_params.n_positions=16", "model_params.n_embd=64", "model_params.n_layer=2",
            "dataloader.batch_size=32", "dataloader.validation_size=100", "trainer_params.max_epochs=6",
            "patience=50", "trainer_params.enable_progress_bar=false"]
    proc = subprocess.Popen([sys.executable, "src/run_train.py", "--config-name=GPT_train", *args], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env={**os.environ, **ENV})
    deadline = time.monotonic() + 120
    while not list(runs.glob("*/checkpoints/last.ckpt")):
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()[-2000:]
        time.sleep(0.01)
    proc.send_signal(signal.SIGSTOP)  # frozen while the disk is filled
    [run_dir] = list(runs.iterdir())
    last = run_dir / "checkpoints" / "last.ckpt"
    time.sleep(0.2)
    ckpt_size = last.stat().st_size
    filler = small_disk / "filler"
    free = shutil.disk_usage(small_disk).free
    # leave room for run.json and logs (tens of KiB), not for another checkpoint
    leave = min(ckpt_size // 2, 256 * 1024)
    with open(filler, "wb") as f:
        f.write(b"\0" * max(free - leave, 0))
    proc.send_signal(signal.SIGCONT)
    _, err = proc.communicate(timeout=180)

    assert proc.returncode == 1, err[-3000:]
    line = err.strip().splitlines()[-1]
    assert line.startswith("error: no space left on device writing "), line
    assert "KiB free on" in line or "MiB free on" in line
    assert f"run {run_dir.name} is marked failed and keeps its last good checkpoint" in line, line
    assert "Traceback" not in err
    leftovers = [p for p in run_dir.rglob("*") if p.name.endswith(".tmp")]
    assert not leftovers, leftovers  # no partial file
    epoch = torch.load(last, weights_only=True)["epoch"]  # the last good checkpoint is whole
    assert (run_dir / "config.yaml").read_text().startswith("data_path") or "data_path" in (run_dir / "config.yaml").read_text()
    import json

    assert json.loads((run_dir / "run.json").read_text())["status"] == "failed"

    filler.unlink()  # room again: the printed command continues the run
    command = shlex.split(line.split("continue it with: ", 1)[1])
    res = subprocess.run([sys.executable, *command[1:]], cwd=ROOT, capture_output=True, text=True, timeout=300,
                         env={**os.environ, **ENV})
    assert res.returncode == 0, res.stderr[-3000:]
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "completed" and record["resumed"][0]["checkpoint_epoch"] == epoch


def test_full_disk_in_any_other_write_is_one_line(tmp_path, capsys):
    """Predictions, metrics, a prepared CSV: any write that hits a full disk ends with one line naming the path
    and the free space (injected at the write call; the training test above uses a real full filesystem)."""
    import errno

    from omegaconf import OmegaConf

    from seqrec.cli.entry import run_main

    target = tmp_path / "runs" / "r1" / "predictions.parquet"

    def write_fails(cfg):
        raise OSError(errno.ENOSPC, "No space left on device", str(target))

    with pytest.raises(SystemExit) as exit_info:
        run_main(write_fails, OmegaConf.create({"run_store": str(tmp_path / "runs")}))
    assert exit_info.value.code == 1
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith(f"error: no space left on device writing {target} (")
    assert f"free on {tmp_path}" in line and "earlier files are intact" in line
