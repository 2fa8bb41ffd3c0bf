"""``seqrec-recommend``: recommendations of a trained run on the command line (the twin of
:meth:`seqrec.api.Recommender.recommend`).

::

    seqrec-recommend <RUN_ID> --items 1193,661,914 [--k 10] [--strategy beam --param num_beams=3]
    seqrec-recommend <RUN_ID> --csv histories.csv [--out recs.csv] [--run-store DIR]

``--items``: one history, the user's own item IDs in time order (``--event rating=5,3,4`` gives an event attribute
of a run trained with them, one value per item, empty = unknown). ``--csv``: one row per event, columns
``history`` (or ``user_id``) and ``item_id``, rows in time order (or a ``timestamp`` column), and optionally the
run's event attributes. Writes a CSV ``history,item_id,rank,score`` (``user_id,...`` when the input named users
so) to stdout or ``--out``. Every failure is one line ``error: <what was wrong>; <what to do>`` on stderr and exit
status 1. The layer of this module is :mod:`seqrec.api`, below :mod:`seqrec.cli`, so the few lines of error
printing live here.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from seqrec.core.errors import UserError

PROG = "seqrec-recommend"
_HELP = f"see {PROG} --help"


class _Parser(argparse.ArgumentParser):
    """argparse whose mistakes are one :class:`UserError` line instead of usage text and exit status 2."""

    def error(self, message: str):  # noqa: D401 -- argparse's hook
        raise UserError(f"{message}; {_HELP}")


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, description="Recommend the next items with a trained run of the run store.")
    p.add_argument("run_id", metavar="RUN_ID", help="a training run's ID (or a unique prefix), printed by run_train.py")
    given = p.add_mutually_exclusive_group(required=True)
    given.add_argument("--items", help="one history: the user's own item IDs in time order, comma-separated")
    given.add_argument("--csv", type=Path, help="histories: a CSV with columns history (or user_id) and item_id, "
                                                "rows in time order (or a timestamp column), optional event columns")
    p.add_argument("--event", action="append", default=[], metavar="NAME=V1,V2,...",
                   help="with --items: an event attribute of the run, one value per item (empty: unknown)")
    p.add_argument("--k", type=int, default=None, help="items per history (default: the run's predict_top_k)")
    p.add_argument("--strategy", default="topk", help="topk | greedy | beam | sampling | multisequence | two_stage")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="a generation_params value, e.g. num_beams=3 or temperature=0.3 (repeatable)")
    seen = p.add_mutually_exclusive_group()
    seen.add_argument("--filter-seen", dest="filter_seen", action="store_true", default=None,
                      help="never recommend an item of the history (default: as the run was trained)")
    seen.add_argument("--no-filter-seen", dest="filter_seen", action="store_false")
    p.add_argument("--seed", type=int, default=None, help="seed of sampling strategies (default: run_predict.py's, 42)")
    p.add_argument("--unknown", choices=("error", "skip"), default="error",
                   help="item IDs the run does not know: error (default) or skip (drop them, with a count)")
    p.add_argument("--run-store", default=None, help="the run store (default: $SEQREC_RUN_STORE or <repo>/runs)")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda or auto")
    p.add_argument("--out", type=Path, default=None, help="write the CSV here instead of stdout")
    return p


def main(argv: list[str] | None = None) -> int:
    """The console script; returns the exit status (0, or 1 after one ``error:`` line)."""
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from seqrec.core.output import pipe_safe

    try:
        return pipe_safe(lambda: _main(argv))  # `| head`: the CSV cut short quietly
    except UserError as exc:
        from seqrec.api.recommender import SKIP_HINT

        return _fail(str(exc).replace(SKIP_HINT, "pass --unknown skip"))
    except KeyboardInterrupt:
        return _fail("interrupted (Ctrl-C); nothing was written", status=130)
    except Exception as exc:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        return _fail(f"unexpected {type(exc).__name__}: {' '.join(str(exc).split())[:150]} (rerun with "
                     "HYDRA_FULL_ERROR=1 for the traceback; please report it if the input looks right)")


def _fail(message: str, status: int = 1) -> int:
    sys.stdout.flush()
    print(f"error: {' '.join(message.split())}", file=sys.stderr, flush=True)
    return status


def _main(argv: list[str] | None) -> int:
    args = parser().parse_args(argv)
    params = dict(_param(text) for text in args.param)
    if args.csv is not None:
        if args.event:
            raise UserError("--event goes with --items; with --csv give event attributes as columns of the CSV")
        histories, events, column = _read_csv(args.csv)
    else:
        histories, column = [_split_list(args.items, "--items")], "history"
        events = [dict(_event(text) for text in args.event)] if args.event else None
    from seqrec.api.recommender import DEFAULT_SEED, load_run

    recommender = load_run(args.run_id, args.run_store, device=args.device)
    if args.csv is not None:  # a CSV's columns the run has no use for (a run without ratings, a note) are left alone
        wanted = set(recommender.event_attributes)
        events = {key: {c: v for c, v in entry.items() if c in wanted} for key, entry in events.items()} \
            if events and wanted & set(next(iter(events.values()))) else None
    frame = recommender.recommend(histories, k=args.k, strategy=args.strategy, events=events,
                                  filter_seen=args.filter_seen, seed=DEFAULT_SEED if args.seed is None else args.seed,
                                  unknown=args.unknown, **params)
    frame = frame.rename(columns={"history": column})
    if args.out is None:
        frame.to_csv(sys.stdout, index=False)
    else:
        from seqrec.core.io import atomic_to_csv

        atomic_to_csv(frame, args.out)
        print(f"{len(frame)} recommendations for {frame[column].nunique()} histories written to {args.out}",
              file=sys.stderr)
    if frame.attrs.get("skipped_items"):
        print(f"skipped {frame.attrs['skipped_items']} unknown item ID(s)", file=sys.stderr)
    return 0


def _param(text: str) -> tuple[str, object]:
    import yaml

    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise UserError(f"--param {text!r} is not KEY=VALUE; pass e.g. --param num_beams=3")
    try:
        return key.strip(), yaml.safe_load(value) if value.strip() else None
    except yaml.YAMLError:
        raise UserError(f"--param {text!r}: cannot read the value {value!r}; quote it, e.g. --param 'top_k=50'") from None


def _split_list(text: str, flag: str) -> list[str]:
    parts = [p.strip() for p in text.split(",")]
    if not any(parts):
        raise UserError(f"{flag} is empty; give the history's item IDs, e.g. {flag} 1193,661,914")
    if not all(parts):
        raise UserError(f"{flag} {text!r} has an empty item ID; separate the IDs by single commas, e.g. 1193,661,914")
    return parts


def _event(text: str) -> tuple[str, list]:
    name, sep, values = text.partition("=")
    if not sep or not name.strip():
        raise UserError(f"--event {text!r} is not NAME=V1,V2,...; pass e.g. --event rating=5,3,4")
    return name.strip(), [v.strip() or None for v in values.split(",")]


def _read_csv(path: Path) -> tuple[dict, dict | None, str]:
    """``(history -> item IDs, history -> {attribute: values} or None, the key column's name)``."""
    import pandas as pd

    if not path.is_file():
        raise UserError(f"--csv {path} is not a file; pass a CSV with columns history (or user_id) and item_id")
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"cannot read --csv {path} ({first}); it needs a header history,item_id[,<event columns>]")
    column = next((c for c in ("history", "user_id") if c in table.columns), None)
    if column is None or "item_id" not in table.columns:
        raise UserError(f"--csv {path} has columns {list(table.columns)}; it needs history (or user_id) and item_id")
    if not len(table):
        raise UserError(f"--csv {path} has no rows; give one row per event of each history")
    for name in (column, "item_id"):
        if table[name].isna().any():
            row = int(table.index[table[name].isna()][0]) + 2
            raise UserError(f"--csv {path}: line {row} has no {name}; fill or drop it")
    keys = list(dict.fromkeys(table[column]))  # the CSV's order of first appearance
    if "timestamp" in table.columns:
        order = pd.to_numeric(table["timestamp"], errors="coerce")
        if order.isna().any():
            order = pd.to_datetime(table["timestamp"], errors="coerce", utc=True, format="mixed")
        if order.isna().any():
            raise UserError(f"--csv {path}: timestamp {table['timestamp'][order.isna()].iloc[0]!r} is neither a "
                            "number nor a date; fix it or drop the timestamp column (rows are then in time order)")
        table = table.assign(_order=order).sort_values([column, "_order"], kind="stable")
    extra = [c for c in table.columns if c not in (column, "item_id", "timestamp", "_order")]
    histories, events = {}, {}
    for key, rows in table.groupby(column, sort=False):
        histories[key] = rows["item_id"].tolist()
        events[key] = {c: [None if pd.isna(v) else v for v in rows[c]] for c in extra}
    return ({k: histories[k] for k in keys}, {k: events[k] for k in keys} if extra else None, column)
