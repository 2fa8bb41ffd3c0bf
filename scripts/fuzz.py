"""The property-based input tests of ``tests/test_fuzz.py``, run longer: random interaction files and random
override values must end in success or one ``error:`` line, never another exception. Prints how many cases it
tried and the first failing case, if any (exit 1).

    python scripts/fuzz.py --examples 2000 [--seed 1]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--examples", type=int, default=1000, help="cases per property")
    ap.add_argument("--seed", type=int, default=None, help="hypothesis seed (default: random)")
    args = ap.parse_args()

    from hypothesis import HealthCheck, given, seed, settings
    from hypothesis import strategies as st

    from seqrec.core.paths import load_file_module


    load_file_module(ROOT / "tests" / "conftest.py")  # the test module imports its helpers by name

    t = load_file_module(ROOT / "tests" / "test_fuzz.py")

    counts = {"files": 0, "overrides": 0}
    run = settings(max_examples=args.examples, deadline=None, suppress_health_check=list(HealthCheck),
                   database=None)

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "log.csv"

        @run
        @given(data=t.csv_text())
        def files(data):
            counts["files"] += 1
            path.write_bytes(data)
            t.load_and_split(path)

        @run
        @given(key=st.sampled_from(t.TRAIN_KEYS), val=t.value, config=st.sampled_from(["GPT_train", "SASRec_train"]))
        def overrides(key, val, config):
            counts["overrides"] += 1
            t.check_override(config, key, val)

        started = time.perf_counter()
        failed = None
        for prop in (files, overrides):
            if args.seed is not None:
                prop = seed(args.seed)(prop)
            try:
                prop()
            except Exception as exc:  # noqa: BLE001 -- report the falsifying case
                failed = f"{prop.__name__ if hasattr(prop, '__name__') else prop}: {type(exc).__name__}: {exc}"
                break
    print(f"tried {counts['files']} interaction files and {counts['overrides']} override values "
          f"in {time.perf_counter() - started:.0f} s")
    if failed:
        print(f"FAILED {failed}")
        return 1
    print("every case ended in success or one error line")
    return 0


if __name__ == "__main__":
    sys.exit(main())
