"""scripts/bench/bench_precision.py runs end to end and its numbers are consistent with what it compares."""

import re
import subprocess
import sys

from conftest import ROOT


def test_bench_precision_quick():
    res = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench" / "bench_precision.py"), "--quick"], cwd=ROOT,
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    if "nothing to compare" in res.stdout:  # a CPU without native bf16: auto is float32 there
        return
    rows = {line.split(" | ")[0]: line.split(" | ") for line in res.stdout.splitlines()
            if line.count(" | ") == 6 and not line.startswith("strategy")}
    assert set(rows) >= {"topk", "greedy", "rra"}
    for name, cells in rows.items():
        other = float(cells[1].rstrip(" %"))
        assert 0 <= other <= 100
        fp32_ties = float(cells[2].split(" / ")[0].rstrip(" %"))
        # float32 scores of distinct items under random weights are distinct reals: no ties in a top-10
        # (RRA sums reciprocal ranks, which can tie exactly, so only Top-K and greedy are checked)
        if name in ("topk", "greedy"):
            assert fp32_ties == 0.0
        # the CI of the paired NDCG difference holds its mean
        mean, low, high = map(float, re.match(r"([-+.\d]+) \[([-+.\d]+), ([-+.\d]+)\]", cells[5]).groups())
        assert low <= mean <= high
