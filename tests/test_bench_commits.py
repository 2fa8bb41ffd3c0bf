"""scripts/bench/bench_commits.py: an older commit against the working tree, each in its own process."""

import subprocess
import sys

import pandas as pd

from conftest import ROOT


def test_commit_against_itself_gives_identical_items(tmp_path):
    """HEAD against the working tree on random weights and a synthetic log: every strategy's items are identical
    (the engine's changes since HEAD, if any, keep the samples) and the table names the machine and both sides."""
    out = tmp_path / "commits.csv"
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench" / "bench_commits.py"), "--old", "HEAD", "--data",
         str(tmp_path / "absent.csv"), "--users", "40", "--rounds", "1", "--strategies", "greedy", "beam3", "rra",
         "--csv", str(out)],
        capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    table = pd.read_csv(out)
    assert table["name"].tolist() == ["greedy", "beam3", "rra"]
    assert (table["check"] == "identical").all() and (table["old_rev"] == "HEAD").all()
    assert (table["old"] > 0).all() and (table["new"] > 0).all()
    assert "thread(s) per side" in table["machine"].iloc[0]
