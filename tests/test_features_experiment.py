"""The attributes experiment: tail recall by hand, and ``reproduce_paper.py --features`` end to end."""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from conftest import ROOT
from seqrec.core.errors import UserError
from seqrec.evaluation.features_report import IDS_ONLY, TAIL, split_label
from seqrec.evaluation.metrics import least_popular_items, tail_recall
from test_features import _rating_log


def test_least_popular_items_by_hand():
    counts = np.array([0, 50, 3, 3, 7, 1, 90])  # train interactions of items 1..6
    targets = np.array([[2, 3, 0], [6, 4, 3], [1, 2, 6]])  # distinct held-out items: 1, 2, 3, 4, 6 (5 never held out)
    # by count: 3 (3, id 2), 3 (3, id 3), 7 (4), 50 (1), 90 (6): ceil(0.2 * 5) = 1 -> item 2; ceil(0.5 * 5) = 3
    assert least_popular_items(targets, counts, 0.2).tolist() == [2]
    assert least_popular_items(targets, counts, 0.5).tolist() == [2, 3, 4]
    assert least_popular_items(targets, counts, 1.0).tolist() == [1, 2, 3, 4, 6]
    with pytest.raises(UserError, match="share must be in"):
        least_popular_items(targets, counts, 0.0)


def test_tail_recall_by_hand():
    targets = np.array([[2, 3, 0], [6, 4, 3], [1, 6, 0]])
    recs = np.array([[3, 9, 8], [2, 4, 1], [1, 6, 5]])
    tail = [2, 3, 4]
    # user 0: tail targets 2, 3 -> 3 found: 1/2; user 1: 4, 3 -> 4 found: 1/2; user 2: no tail target -> nan
    out = tail_recall(recs, targets, tail, k=3)
    assert out[:2].tolist() == [0.5, 0.5] and np.isnan(out[2])
    assert tail_recall(recs, targets, tail, k=1)[:2].tolist() == [0.5, 0.0]  # top-1 only: 3 for user 0, 2 for user 1


def test_split_label():
    assert split_label("GPT+items_events") == ("GPT", "items_events") and split_label("SASRec") == ("SASRec", IDS_ONLY)


def _command(data, tmp_path, *extra):
    return [sys.executable, "scripts/reproduce_paper.py", "--dataset", str(data), "--quick", "--models", "GPT",
            "--seeds", "3", "--run-store", str(tmp_path / "runs"), "--results", str(tmp_path / "results"),
            "--logger", "none", "--train-override", "dataloader.validation_size=30", *extra]


def test_reproduce_paper_features_stage(tmp_path):
    """``--features``: GPT-2 trained ids-only, with item attributes and with item + event attributes; every run
    generates with Top-K and RRA; features.csv pairs each attribute run with the ids-only run of the same strategy."""
    data = _rating_log(tmp_path / "log.csv", n_users=150, length=25)
    command = _command(data, tmp_path, "--features")
    res = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    again = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)  # every step is reused
    steps = [line for line in again.stdout.splitlines() if line.startswith("[")]
    assert steps and all(line.endswith("(reused)") for line in steps), [s for s in steps if "reused" not in s][:3]
    out = tmp_path / "results" / "log-quick"
    table = pd.read_csv(out / "features.csv", keep_default_na=False)
    assert set(table["model"]) == {"GPT"} and set(table["strategy"]) == {"topk", "rra"}
    assert set(table["variant"]) == {IDS_ONLY, "items", "items_events"}
    assert len(table) == 6  # 3 variants x (Top-K, RRA)
    ids = table[table["variant"] == IDS_ONLY].set_index("strategy")
    assert (ids["diff_vs_ids"] == "").all()  # the reference is not compared with itself
    for _, row in table[table["variant"] != IDS_ONLY].iterrows():
        assert row["verdict_vs_ids"] in {"ahead", "behind", "not separable"} and row["paired_seeds"] == "3"
        # one seed, the same users: the paired mean difference is the difference of the two runs' means
        reference = ids.loc[row["strategy"]]
        assert float(row["diff_vs_ids"]) == pytest.approx(row["test_ndcg@10"] - reference["test_ndcg@10"], abs=1e-6)
        assert float(row["tail_diff_vs_ids"]) == pytest.approx(row[TAIL] - reference[TAIL], abs=1e-6)
        assert 0.0 <= row[TAIL] <= 1.0
    training = pd.read_csv(out / "training.csv")
    assert set(training["model"]) == {"GPT", "GPT+items", "GPT+items_events"}
    assert (out / "features.png").stat().st_size > 0 and "tail recall" in (out / "features.md").read_text()


def test_reproduce_paper_bad_features_variant(tmp_path):
    data = _rating_log(tmp_path / "log.csv", n_users=20, length=12)
    res = subprocess.run(_command(data, tmp_path, "--features", "items", "genres"), cwd=ROOT, capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 1 and res.stderr.strip().splitlines()[-1] == (
        "error: --features items genres: give one or more attribute variants from items, items_events, "
        "items_events_predicted, items_output "
        "(ids only, features=none, is the reference every model has)")
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())  # nothing ran
