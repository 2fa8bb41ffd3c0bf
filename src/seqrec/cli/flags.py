"""One flag name per concept across the scripts: an old spelling stays accepted, hidden from ``--help``, and says
(one line on stderr) which name to use. The names: ``--run-store`` (the run store; was ``--store``),
``--train-override`` (a training config override; was ``--override``), ``--strategies`` (names, space- or
comma-separated)."""

from __future__ import annotations

import argparse
import sys


def renamed_flag(parser: argparse.ArgumentParser, old: str, new: str, nargs=None) -> None:
    """Accept ``old`` as a deprecated spelling of the already added flag ``new``: the value goes where ``new``'s
    does (by ``new``'s own action: stored, appended...) and a one-line warning names ``new``. ``nargs``: the old
    flag's, where it took its values differently (e.g. ``"*"`` for an old list flag whose new form repeats)."""
    target = next(a for a in parser._actions if new in a.option_strings)  # noqa: SLF001 -- argparse has no getter

    class Deprecated(argparse.Action):
        def __call__(self, parser_, namespace, values, option_string=None):
            print(f"warning: {option_string} is deprecated; use {new} (same meaning)", file=sys.stderr)
            if nargs is not None and isinstance(values, list) and isinstance(target, argparse._AppendAction):  # noqa: SLF001
                for value in values:  # an old list flag whose new spelling repeats: one append per value
                    target(parser_, namespace, value, new)
            else:
                target(parser_, namespace, values, new)

    parser.add_argument(old, action=Deprecated, dest=argparse.SUPPRESS, default=argparse.SUPPRESS,
                        nargs=target.nargs if nargs is None else nargs, type=target.type, choices=target.choices,
                        metavar=target.metavar, help=argparse.SUPPRESS)


def strategy_names(values: list[str], known) -> list[str]:
    """``--strategies`` values, space- or comma-separated (``greedy rra`` or ``greedy,rra``), in order, no repeats;
    a name not in ``known`` exits with one line naming the known ones."""
    out: list[str] = []
    for value in values:
        for name in value.split(","):
            if name and name not in known:
                sys.exit(f"error: --strategies {name} is unknown; choose from {' '.join(known)}")
            if name and name not in out:
                out.append(name)
    return out
