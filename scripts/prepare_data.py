#!/usr/bin/env python
"""Prepare a MovieLens release as data/<name>.csv (user_id,item_id,timestamp,rating).

Examples:
    python scripts/prepare_data.py ml-1m                                  # download + verify md5
    python scripts/prepare_data.py ml-1m --source ../shared/data/ml-1m    # local copy, no network
    python scripts/prepare_data.py ml-100k --source ml-100k.zip --out /tmp/ml-100k.csv
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


from seqrec.data.movielens import DATASETS, prepare_movielens
from seqrec.cli.entry import run_script


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", choices=list(DATASETS), help="which MovieLens release")
    parser.add_argument("--source", metavar="PATH", help="local zip, extracted folder, folder of .gz members or ratings file (default: download)")
    parser.add_argument("--out", metavar="FILE", help="output CSV (default: data/<name>.csv)")
    parser.add_argument("--cache-dir", metavar="DIR", help="download cache (default: $SEQREC_CACHE/movielens or ~/.cache/seqrec/movielens)")
    parser.add_argument("--mirror", metavar="URL", help="base URL (or local folder) holding <name>.zip instead of files.grouplens.org")
    args = parser.parse_args(argv)

    return run_script(
        prepare_movielens, args.name, source=args.source, out=args.out, cache_dir=args.cache_dir, mirror=args.mirror
    )


if __name__ == "__main__":
    sys.exit(main())
