"""scripts/bench/bench_dropout.py and bench_negatives.py run end to end on a small log, and their CSV rows hold
what they measured: one row per model (or variant), and each ratio is the quotient of its two times."""

import subprocess
import sys

import pandas as pd

from conftest import ROOT

BENCH = ROOT / "scripts" / "bench"


def _quotient(ratio, a, b):
    """``ratio`` (2 digits) is ``a / b`` of the unrounded times; ``a`` and ``b`` are written to 0.1 ms, so the
    quotient of the written values may be off by the propagated rounding (0.05 ms each) plus 0.005."""
    return abs(ratio - a / b) <= 0.005 + (a / b) * (0.05 / a + 0.05 / b)


def _run(script, tmp_path, data, *extra):
    out = tmp_path / f"{script}.csv"
    res = subprocess.run([sys.executable, str(BENCH / f"{script}.py"), "--data", str(data), "--steps", "1", "--rounds",
                          "1", "--csv", str(out), *extra], cwd=BENCH, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    return pd.read_csv(out), res.stdout


def test_bench_dropout_and_negatives_write_consistent_rows(tmp_path, tiny_csv):
    frame, out = _run("bench_dropout", tmp_path, tiny_csv, "--models", "SASRec", "BERT4Rec")
    assert list(frame["config"]) == ["SASRec_train", "BERT4Rec_train"] and "1 thread(s)" in frame["machine"][0]
    for _, row in frame.iterrows():
        assert row["torch masks"] > 0 and row["fast masks"] > 0
        assert _quotient(row["ratio"], row["torch masks"], row["fast masks"])
    frame, out = _run("bench_negatives", tmp_path, tiny_csv)
    [row] = frame.to_dict("records")
    assert row["config"] == "gSASRec_train" and row["per position"] > 0 and row["per sequence"] > 0
    assert _quotient(row["ratio"], row["per position"], row["per sequence"])
    assert "per sequence vs per position" in out
