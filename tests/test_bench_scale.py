"""scripts/bench_scale.py runs end to end at a small fraction of ML-20M's users and reports every stage."""

import re
import subprocess
import sys

from conftest import ROOT


def test_bench_scale_small(tmp_path):
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench_scale.py"), "--fractions", "0.008", "0.016",
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
    assert 0.1 < peak < 24
    assert (tmp_path / "ml20m_like_0.016.csv").exists()  # --workdir keeps the logs it wrote
