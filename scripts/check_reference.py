"""A new experiment report against reference reports: each model's test NDCG@10 per strategy family (pooled over
seeds) inside the reference's interval, and the same paired verdicts (next item, late, overall)?

    python scripts/check_reference.py results/ml-1m-cpu \
        --reference GPT=results/ml-1m SASRec=results/ml-1m gSASRec=e2bbf0d:results/ml-1m-cpu BERT4Rec=e2bbf0d:results/ml-1m-cpu \
        [--csv results/ml-1m-cpu/reference_check.csv]

A reference is a report folder or ``<git revision>:<folder>`` (the report as that commit holds it). The interval of
a one-seed reference is its bootstrap CI over users; of a several-seed one, its pooled value plus or minus the mean
half-width of its seeds' CIs (``src/seqrec/evaluation/reference.py``). Exit status 1 when a value lies outside or a
verdict changed.
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    from seqrec.core.errors import UserError
    from seqrec.evaluation.reference import check_against, format_check

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("new", help="the report folder to check (e.g. results/ml-1m-cpu)")
    ap.add_argument("--reference", nargs="+", required=True, metavar="MODEL=REPORT",
                    help="each model's reference report: a folder or <revision>:<folder>")
    ap.add_argument("--csv", help="also write the table here")
    args = ap.parse_args(argv)
    try:
        references = {}
        for item in args.reference:
            model, sep, where = item.partition("=")
            if not sep or not model or not where:
                raise UserError(f"--reference {item}: write MODEL=REPORT, e.g. GPT=results/ml-1m")
            references[model] = where
        table = check_against(args.new, references)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(format_check(table))
    if args.csv:
        table.to_csv(args.csv, index=False)
        print(f"wrote {args.csv}")
    ok = bool(table["inside"].all()) and bool((table["verdicts"] == "same").all())
    return 0 if ok else 1


if __name__ == "__main__":
    from seqrec.core.output import pipe_safe

    sys.exit(pipe_safe(main))
