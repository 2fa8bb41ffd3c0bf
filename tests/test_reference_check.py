"""scripts/check_reference.py: a report's pooled NDCG@10 per family against a reference's interval, by hand."""

import subprocess
import sys

import pandas as pd
import pytest

from conftest import ROOT
from seqrec.core.errors import UserError
from seqrec.evaluation.reference import check_against, family_values

SUMMARY_COLUMNS = ["model", "seed", "strategy", "params", "test_ndcg@10", "test_ndcg@10_low", "test_ndcg@10_high"]


def _report(folder, runs, comparisons):
    folder.mkdir(parents=True)
    pd.DataFrame(runs, columns=SUMMARY_COLUMNS).to_csv(folder / "summary.csv", index=False)
    cols = ["model", "seed", "family", "strategy", "setting", "horizon", "verdict"]
    pd.DataFrame(comparisons, columns=cols).to_csv(folder / "comparisons.csv", index=False)
    return folder


def _rows(seed, family, strategy, setting, verdicts):
    return [("M", seed, family, strategy, setting, h, v) for h, v in zip(("next", "late", "overall"), verdicts)]


@pytest.fixture
def reports(tmp_path):
    # two seeds: Top-K .20 [.19, .21] and .22 [.20, .24]; RRA chose N=10 (.23 [.22, .24]) and N=20 (.25 [.22, .28])
    new = _report(tmp_path / "new", [
        ("M", 42, "topk", None, .20, .19, .21), ("M", 43, "topk", None, .22, .20, .24),
        ("M", 42, "rra", "N=10", .23, .22, .24), ("M", 43, "rra", "N=20", .25, .22, .28),
        ("M", 43, "rra", "N=10", .99, .98, 1.0),  # not chosen for seed 43: never read
    ], _rows(42, "rra", "rra", "N=10", ["behind", "ahead", "ahead"])
       + _rows(43, "rra", "rra", "N=20", ["behind", "ahead", "ahead"])
       + _rows("pooled", "rra", "rra", "N=10 / N=20", ["behind", "ahead", "not separable"]))
    # one seed: its own CIs
    ref = _report(tmp_path / "ref", [("M", 42, "topk", None, .205, .20, .215), ("M", 42, "rra", "N=50", .26, .245, .27)],
                  _rows(42, "rra", "rra", "N=50", ["behind", "ahead", "ahead"]))
    return new, ref


def test_family_values_by_hand(reports):
    new, ref = reports
    got = family_values(new).set_index("family")
    # pooled value: the mean over seeds; interval: +- the mean half-width of the seeds' CIs
    assert got.loc["topk", "value"] == pytest.approx(.21) and got.loc["topk", "seeds"] == 2
    assert (got.loc["topk", "low"], got.loc["topk", "high"]) == pytest.approx((.21 - .015, .21 + .015))
    assert got.loc["rra", "value"] == pytest.approx(.24)
    assert (got.loc["rra", "low"], got.loc["rra", "high"]) == pytest.approx((.24 - .02, .24 + .02))  # (.01 + .03) / 2
    assert got.loc["rra", "settings"] == "N=10 / N=20" and got.loc["rra", "verdict_overall"] == "not separable"
    one = family_values(ref).set_index("family")  # one seed: the run's own (asymmetric) CI
    assert (one.loc["rra", "low"], one.loc["rra", "high"]) == pytest.approx((.245, .27))
    assert one.loc["rra", "verdict_overall"] == "ahead"


def test_check_against_flags_values_outside_and_changed_verdicts(reports):
    new, ref = reports
    table = check_against(new, {"M": str(ref)}).set_index("family")
    assert table.loc["topk", "inside"] and table.loc["topk", "verdicts"] == "same"  # .21 in [.20, .215]
    assert not table.loc["rra", "inside"]  # .24 below .245
    assert table.loc["rra", "verdicts"] == "overall: ahead -> not separable"


def test_reference_from_a_git_revision_and_bad_input(tmp_path):
    folder = family_values(ROOT / "results" / "ml-100k")
    from_git = family_values("HEAD:results/ml-100k")
    pd.testing.assert_frame_equal(folder, from_git)
    with pytest.raises(UserError, match="git has no summary.csv"):
        family_values("HEAD:results/no-such-report")
    with pytest.raises(UserError, match="no summary.csv there"):
        family_values(tmp_path)
    script = [sys.executable, str(ROOT / "scripts" / "check_reference.py")]
    res = subprocess.run([*script, "results/ml-100k", "--reference", "GPT"], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 2 and res.stderr.strip().count("\n") == 0 and "write MODEL=REPORT" in res.stderr
    res = subprocess.run([*script, "results/ml-100k", "--reference", "GPT=HEAD:results/ml-100k"], cwd=ROOT,
                         capture_output=True, text=True)
    assert res.returncode == 0 and "| GPT | multi |" in res.stdout  # a report against itself: inside, same verdicts
