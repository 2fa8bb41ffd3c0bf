"""scripts/bench/bench_scale.py runs end to end at a small fraction of ML-20M's users and reports every stage."""

import re
import subprocess
import sys

from conftest import ROOT


def test_bench_scale_small(tmp_path):
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench" / "bench_scale.py"), "--fractions", "0.008", "0.016",
         "--gen-users", "40", "--batches", "2", "--sequences", "2", "--workdir", str(tmp_path)],
        capture_output=True, text=True, timeout=600, env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin",
                                                          "HOME": str(tmp_path)},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    # 1,107 and 2,215 users (0.8 % and 1.6 % of 138,493): the growth line compares twice the users
    assert "fraction 0.008: 1107 users, 26744 items" in out and "fraction 0.016: 2215 users" in out
    assert "(x2.0 users)" in out
    stages = re.findall(r"^  (.+?)\s+time x\s*([\d.]+)\s+memory", out, flags=re.M)
    assert [s.strip() for s, _ in stages] == [
        "synthesize", "write prepared CSV", "load + split", "train 1 epoch (2 batches, incl. load + split)",
        "Top-K, 40 users", "RRA N=2, 40 users",
    ]
    peak = float(re.search(r"peak RSS over all stages: ([\d.]+) GiB", out).group(1))
    # Memory bound from the sizes: the largest tensors are generation's [rows, items] fp32 score matrices
    # (bench_scale generates 4,096 rows at a time: 4,096 x 26,745 x 4 B = 0.41 GiB each); a sampling step holds
    # at most 4 of them (logits, probabilities, masks, cumulative sums). Everything else (60k-row log, a 7M-
    # parameter model with Adam states, 2 training batches) is < 0.5 GiB. On top: the interpreter with the same
    # libraries imported, measured here. Holding more score matrices alive than that breaks the bound.
    matrix = 4096 * 26745 * 4 / 2**30
    base = subprocess.run(
        [sys.executable, "-c", "import psutil, seqrec.training.train, seqrec.evaluation.predict, seqrec.generation.engine, pandas, torch;"
         "print(psutil.Process().memory_info().rss)"],
        capture_output=True, text=True, timeout=300, cwd=ROOT / "src", env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"},
    )
    # the RSS the bench samples (psutil), not ru_maxrss: on Linux a child's ru_maxrss can carry the RSS its parent
    # had when it forked (a pytest process that ran many tests: 1.75 GiB once), whatever the child itself holds
    baseline = int(base.stdout.strip()) / 2**30
    assert baseline < peak <= baseline + 4 * matrix + 0.5, (peak, baseline)
    print(f"peak {peak:.2f} GiB, baseline {baseline:.2f} GiB, bound {baseline + 4 * matrix + 0.5:.2f} GiB")
    assert (tmp_path / "ml20m_like_0.016.csv").exists()  # --workdir keeps the logs it wrote
