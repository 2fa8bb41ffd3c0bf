"""Is the data the same as when an earlier run used it? One check for every command that builds on a run.

A training run records the fingerprint of its data in ``run.json`` (``data_fingerprint``, see
:mod:`seqrec.data.fingerprint`); so does a predict run (what it read and checked). A command that builds on a run
compares the data it reads now with that run's record: predict (``train_task=``, and ``samples_from=``), resume
(``resume=``), prompt-tuning (``pretrained_task=``) and the Python API's :func:`seqrec.api.load_run`. The resolver
collects what to compare against (a :class:`DataCheck`, carried by the resolved spec); the command reads its data once
and calls :meth:`DataCheck.verify` with the fingerprint of what it read, before any run folder exists:

* the same data: nothing is said; the run records its fingerprint and the check;
* a changed file: a one-line :class:`~seqrec.core.errors.UserError` naming what changed, unless the override
  (``allow_data_change=true``) is given: then one warning line, and the run records the change it was allowed;
* a run that records no fingerprint (made before fingerprints were recorded): one warning line, and it proceeds.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Mapping

from seqrec.core.errors import UserError
from seqrec.data.fingerprint import describe_change

log = logging.getLogger("seqrec")

#: the config setting that lets a command use a changed data file
OVERRIDE = "allow_data_change"


@dataclass(frozen=True)
class Expected:
    """The data fingerprint that run ``run_id`` (named by setting ``key``) recorded; None: it records none."""

    key: str
    run_id: str
    fingerprint: Mapping[str, Any] | None
    verb: str = "was trained"  # how the message says what the run did with the data

    @classmethod
    def of(cls, store, run_id: str, key: str, verb: str = "was trained") -> "Expected":
        """What run ``run_id`` of ``store`` (a :class:`~seqrec.tracking.run_store.RunStore`) recorded."""
        from seqrec.tracking.run_folder import RunFolder

        record = RunFolder(store.path(run_id, kind=None)).read_record()
        fingerprint = record.get("data_fingerprint")
        return cls(key, run_id, fingerprint if isinstance(fingerprint, Mapping) else None, verb)


@dataclass(frozen=True)
class DataCheck:
    """What the data at ``path`` must still be (``expected``), and whether a change is allowed."""

    path: str
    expected: tuple[Expected, ...] = ()
    allow: bool = False
    override: str = f"{OVERRIDE}=true"  # how the user passes the override, as the message names it
    recorded: bool = True  # the command makes a run that records the check (the API does not)

    def verify(self, current: Mapping[str, Any]) -> dict:
        """Compare ``current`` (the fingerprint of what was read) with every expected one; one-line
        :class:`UserError` on a change unless allowed. Returns the fields the run records in ``run.json``:
        ``data_fingerprint``, ``data_check`` (per compared run: same / changed / unrecorded) and, when a change was
        allowed, ``data_change_allowed``."""
        checked, allowed = [], []
        for expected in self.expected:
            entry = {"setting": expected.key, "run": expected.run_id}
            if expected.fingerprint is None:
                log.warning("run %s (%s=%s) records no data fingerprint (made before seqrec recorded one); data_path "
                            "%s cannot be checked against it", expected.run_id, expected.key, expected.run_id,
                            self.path)
                checked.append({**entry, "result": "unrecorded"})
                continue
            change = describe_change(expected.fingerprint, current)
            if change is None:
                checked.append({**entry, "result": "same"})
                continue
            where = f"data_path {self.path} changed since run {expected.run_id} ({expected.key}) {expected.verb}: {change}"
            if not self.allow:
                then = " (recorded in the run)" if self.recorded else ""
                raise UserError(f"{where}; re-prepare the file the run used, or pass {self.override} to use it "
                                f"anyway{then}")
            log.warning("%s; used anyway (%s)", where, self.override)
            checked.append({**entry, "result": "changed"})
            allowed.append({**entry, "change": change})
        out = {"data_fingerprint": dict(current), "data_check": checked}
        if allowed:
            out["data_change_allowed"] = allowed
        return out


def data_check(run_store: str, path: str, runs: list[tuple[str, str, str]], allow: bool, **kw) -> DataCheck:
    """The :class:`DataCheck` of data at ``path`` against ``runs`` of ``run_store``: ``(setting, run ID, verb)``."""
    from seqrec.tracking.run_store import RunStore

    store = RunStore(run_store)
    return DataCheck(path, tuple(Expected.of(store, run_id, key, verb) for key, run_id, verb in runs), bool(allow),
                     **kw)
