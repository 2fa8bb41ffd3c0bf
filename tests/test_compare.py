"""scripts/compare_runs.py: two predict runs (or one per seed) compared on the same users, against hand-computed
differences and the sign-flip test of seqrec.evaluation.stats; every bad input is one error line."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from seqrec.evaluation.compare import compare_runs
from seqrec.core.errors import UserError
from seqrec.evaluation.stats import paired_permutation_test
from seqrec.tracking.run_store import RunStore

ROOT = Path(__file__).resolve().parents[1]


def _run(store: RunStore, run_id: str, ndcg, users=(1, 2, 3, 4), status="completed", kind="predict", table=True):
    run_dir = store.create(run_id, kind, f"task_{run_id}")
    if table:
        frame = pd.DataFrame({"part": "test", "user_id": list(users), "ndcg@10": ndcg, "recall@10": np.ones(len(users))})
        val = pd.DataFrame({"part": "val", "user_id": [9], "ndcg@10": [0.0], "recall@10": [0.0]})
        pd.concat([val, frame]).to_parquet(run_dir / "per_user.parquet")
    if status != "running":
        store.finish(run_id, status)
    return run_id


@pytest.fixture
def store(tmp_path):
    s = RunStore(tmp_path / "runs")
    _run(s, "a42", [1.0, 0.0, 0.5, 0.25])
    _run(s, "b42", [0.5, 0.0, 0.0, 0.25])
    _run(s, "a43", [1.0, 1.0, 0.5, 0.0])
    _run(s, "b43", [0.0, 0.5, 0.5, 0.0])
    return s


def test_one_pair_by_hand(store):
    table = compare_runs(store, ["a42"], ["b42"], metrics=["ndcg@10", "recall@10"], n_resamples=2000)
    row = table.set_index("metric").loc["ndcg@10"]
    # differences 0.5, 0, 0.5, 0: mean 0.25
    assert row["a"] == pytest.approx(0.4375) and row["b"] == pytest.approx(0.1875)
    assert row["diff"] == pytest.approx(0.25) and row["low"] <= 0.25 <= row["high"]
    # the two non-zero differences: 4 sign vectors, 2 of them as extreme as observed -> exact p = 0.5
    assert row["p"] == pytest.approx(paired_permutation_test([1.0, 0.0, 0.5, 0.25], [0.5, 0.0, 0.0, 0.25])) == 0.5
    flat = table.set_index("metric").loc["recall@10"]
    assert flat["diff"] == 0.0 and flat["low"] == 0.0 and flat["high"] == 0.0


def test_seeds_pool_each_users_difference(store):
    row = compare_runs(store, ["a42", "a43"], ["b42", "b43"], metrics=["ndcg@10"], n_resamples=2000).iloc[0]
    # per user: seed 42 (0.5, 0, 0.5, 0), seed 43 (1, 0.5, 0, 0) -> averaged (0.75, 0.25, 0.25, 0): mean 0.3125
    assert row["seeds"] == 2 and row["diff"] == pytest.approx(0.3125)
    assert row["p"] == pytest.approx(paired_permutation_test([0.75, 0.25, 0.25, 0.0], [0, 0, 0, 0]))


def test_bad_comparisons_are_one_line_errors(store):
    _run(store, "other", [0.1, 0.2, 0.3], users=(1, 2, 5))
    _run(store, "failed", [0.1] * 4, status="failed")
    _run(store, "bare", None, table=False)
    _run(store, "trained", None, kind="train", table=False)
    cases = [
        (["a42"], ["other"], "scored different users"),
        (["a42"], ["failed"], "is failed, not completed"),
        (["a42"], ["bare"], "has no per_user.parquet"),
        (["a42"], ["trained"], "is a train run, not a predict run"),
        (["a42"], ["nothing"], "unknown run ID 'nothing'"),
        (["a42", "a43"], ["b42"], "give as many A runs as B runs"),
    ]
    for a, b, needle in cases:
        with pytest.raises(UserError, match=needle) as err:
            compare_runs(store, a, b)
        assert "\n" not in str(err.value)
    with pytest.raises(UserError, match="metric 'hits' is not among"):
        compare_runs(store, ["a42"], ["b42"], metrics=["hits"])


def test_the_script_prints_and_fails_in_one_line(store):
    command = [sys.executable, "scripts/compare_runs.py", "a4", "b42", "--run-store", str(store.root),
               "--metrics", "ndcg@10", "--n-resamples", "500"]
    res = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode == 1 and res.stderr.strip().splitlines() == [
        "error: run ID prefix 'a4' matches 2 runs (a42, a43); give more characters"]
    command[2] = "a42"
    res = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "A - B +0.2500" in res.stdout and "(4 test users, 1 seed)" in res.stdout
    bad = subprocess.run([sys.executable, "scripts/compare_runs.py", "a42", "b42", "--run-store", "/nonexistent"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and bad.stderr.strip().splitlines() == [
        "error: /nonexistent is not a folder; pass --run-store <the run store that holds the runs>"]
