"""scripts/bench/bench_convergence.py and bench_gsasrec_plateau.py: their step arithmetic by hand, and both end to end."""

import subprocess
import sys

import pandas as pd
import pytest

from conftest import ROOT

from seqrec.core.paths import load_file_module

load_file_module(ROOT / "scripts" / "bench" / "bench_common.py")  # the benchmarks import it by name
at_step, steps_to, variant_names = (getattr(load_file_module(ROOT / "scripts" / "bench" / "bench_convergence.py"), name)
                                    for name in ("at_step", "steps_to", "variant_names"))
kick_off = load_file_module(ROOT / "scripts" / "bench" / "bench_gsasrec_plateau.py").kick_off

# validations after optimizer steps 10, 20, 30, 40 ("step" is Lightning's 0-based global step of the validation)
# (a budget that ends mid-epoch leaves a last row without a validation)
HISTORY = pd.DataFrame({"step": [9, 19, 29, 39, 41], "val_next_ndcg@10": [0.05, 0.12, 0.10, 0.15, float("nan")]})

SMALL = ["dataset.max_length=16", "dataloader.batch_size=32", "dataloader.validation_size=100"]


def test_step_arithmetic_by_hand():
    assert steps_to(HISTORY, 0.12) == 20 and steps_to(HISTORY, 0.11) == 20 and steps_to(HISTORY, 0.16) is None
    assert kick_off(HISTORY, 0.15) == 40
    assert at_step(HISTORY, 5) is None and at_step(HISTORY, 20) == 0.12 and at_step(HISTORY, 35) == 0.10
    assert at_step(HISTORY, 42) == 0.15
    assert variant_names("pre_ln+lr2x") == ["pre_ln", "lr2x"]
    with pytest.raises(SystemExit, match="unknown variant 'pre_lm'"):
        variant_names("pre_lm")


def _run(script, args):
    res = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench" / script), *args], cwd=ROOT, capture_output=True,
                         text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    return res.stdout


def test_bench_convergence_end_to_end(tiny_csv, tmp_path):
    out = tmp_path / "histories.csv"
    text = _run("bench_convergence.py", [
        "--data", str(tiny_csv), "--steps", "40", "--variants", "default", "pre_ln+lr2x", "--out", str(out),
        *[a for o in SMALL for a in ("--train-override", o)], "--train-override", "trainer_params.limit_train_batches=5"])
    histories = pd.read_csv(out)
    # 5 batches per epoch -> a validation every 5 steps, 8 in 40 steps, for each variant
    assert histories.groupby("variant").size().to_dict() == {"default": 8, "pre_ln+lr2x": 8}
    assert "steps_to_default_best" in text and "pre_ln+lr2x" in text
    default = histories[histories["variant"] == "default"]
    # the reference reaches its own best exactly at its best validation
    best_step = int(default.loc[default["val_next_ndcg@10"].idxmax(), "step"]) + 1
    assert steps_to(default, default["val_next_ndcg@10"].max()) == best_step


def test_bench_gsasrec_plateau_end_to_end(tiny_csv):
    text = _run("bench_gsasrec_plateau.py", [
        "--data", str(tiny_csv), "--steps", "10", "--variants", "default", "baseline",
        *[a for o in SMALL for a in ("--train-override", o)], "--train-override", "model_params.embedding_dim=16",
        "--override", "seqrec_module.loss.neg_per_positive=8"])
    assert "popularity val NDCG@10" in text and "kick_off_step" in text and "baseline" in text


def test_bench_convergence_bad_variant_is_one_line(tiny_csv):
    res = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench" / "bench_convergence.py"), "--data", str(tiny_csv),
                          "--variants", "default", "warp"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode != 0 and res.stderr.strip().splitlines() == [
        "error: unknown variant 'warp'; choose from default, lr_warmup, lr2x, betas98, pre_ln, mask04 (join with '+')"]
