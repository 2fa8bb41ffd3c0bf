"""Write the generated pages: README.md and docs/*.md from docs/templates/ (every number read from committed files
under results/), and the experiment reports' recorded commands made portable.

    python scripts/make_docs.py                 # rewrite every page that differs
    python scripts/make_docs.py --check         # exit 1 listing the pages that differ from what would be written
    python scripts/make_docs.py --count         # how many numbers the templates generate
    python scripts/make_docs.py --main-summary TRAIN_ID TOPK_ID MULTI_ID [--run-store DIR]
                                                # the end of scripts/main.sh: results/main/summary.json + the paired
                                                # difference, multi-sequence minus Top-K, printed
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    from seqrec.core.errors import UserError
    from seqrec.experiments import docs

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="write nothing; exit 1 if a page differs")
    ap.add_argument("--count", action="store_true", help="print how many numbers the templates generate")
    ap.add_argument("--main-summary", nargs=3, metavar=("TRAIN_ID", "TOPK_ID", "MULTI_ID"))
    ap.add_argument("--run-store", default=None, help="for --main-summary; default: $SEQREC_RUN_STORE or <repo>/runs")
    ap.add_argument("--wall-seconds", type=float, default=None, help="for --main-summary: the job's wall time")
    ap.add_argument("--command", default="", help="for --main-summary: the command that ran the job")
    args = ap.parse_args(argv)
    try:
        if args.main_summary:
            summary = docs.summarize_main_job(args.run_store, *args.main_summary, wall_seconds=args.wall_seconds,
                                              command=args.command)
            print(docs.format_main_difference(summary))
            print(f"summary: {docs.MAIN_SUMMARY} (python scripts/make_docs.py puts it into README.md)")
            return 0
        if args.count:
            print(docs.count_numbers())
            return 0
        if args.check:
            stale = docs.check_pages()
            for page in stale:
                print(f"{page} differs from what python scripts/make_docs.py writes", file=sys.stderr)
            return 1 if stale else 0
        for page in docs.write_pages():
            print(f"wrote {page}")
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
