"""A fingerprint of a run's data: what decides its split and the attributes it read, hashed once when they are read.

``interactions`` hashes the (user, item, timestamp) events the split uses in a canonical order (by user, time,
item), with the file's own user and item IDs: a file whose rows are re-sorted gives the same split and the same
fingerprint; permuted item IDs, a moved timestamp, an added or lost event change it. It is taken after the
duplicate policy (``duplicates=drop``: identical events count once), so a file that differs only by identical
duplicate rows is the same data, as its split is the same. ``events`` hashes each event column the run uses
(``features.event_attributes``, e.g. ``rating``), its values in the same order; ``item_table`` the codes and labels
of the item attributes the run read (``features.item_attributes``; what the network's item tables hold), or None
where none were read (a predict run takes its item codes from the trained model and does not read the table).

Everything is vectorized: the split has already sorted the events, so the cost is one pass of BLAKE2b over their
integer arrays (``scripts/bench/bench_fingerprint.py`` measures it). :func:`describe_change` says in words what
differs between a recorded fingerprint and a new one.
"""

from __future__ import annotations

import hashlib
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

#: bumped when what is hashed changes (a fingerprint of another version is not compared)
VERSION = 1


def _digest() -> "hashlib._Hash":
    return hashlib.blake2b(digest_size=16)


def _array_bytes(values) -> bytes:
    """Bytes of a column that do not depend on how it was read: integers as int64, other numbers as float64,
    anything else (text labels) by pandas' stable per-value hash."""
    values = np.asarray(values)
    if values.dtype.kind in "iub":
        return np.ascontiguousarray(values, dtype=np.int64).tobytes()
    if values.dtype.kind == "f":
        whole = np.isfinite(values).all() and (values == np.floor(values)).all()
        return np.ascontiguousarray(values, dtype=np.int64 if whole else np.float64).tobytes()
    return pd.util.hash_array(np.asarray(values, dtype=object)).tobytes()


def _hash(*parts: bytes) -> str:
    h = _digest()
    for part in parts:
        h.update(len(part).to_bytes(8, "little"))  # framed: the parts' boundaries are part of the content
        h.update(part)
    return h.hexdigest()


def interactions_fingerprint(user_ids: np.ndarray, item_ids: np.ndarray, users: np.ndarray, items: np.ndarray,
                             timestamps: np.ndarray, extra: Mapping[str, np.ndarray] | None = None,
                             duplicates_dropped: int = 0) -> dict:
    """The fingerprint of events sorted by (user, time, item) (as :func:`seqrec.data.split.split_interactions`
    orders them): ``users`` indexes ``user_ids`` (the file's sorted distinct user IDs), ``items`` indexes
    ``item_ids`` from 1; ``extra``: event columns, aligned with the events."""
    interactions = _hash(b"users", _array_bytes(user_ids), b"items", _array_bytes(item_ids),
                         np.ascontiguousarray(users, dtype=np.int32).tobytes(),
                         np.ascontiguousarray(items, dtype=np.int32).tobytes(), _array_bytes(timestamps))
    return {
        "version": VERSION,
        "interactions": interactions,
        "events": {name: _hash(name.encode(), _array_bytes(values)) for name, values in (extra or {}).items()},
        "item_table": None,
        "n_rows": int(len(users)),
        "n_users": int(len(user_ids)),
        "n_items": int(len(item_ids)),
        "duplicates_dropped": int(duplicates_dropped),
    }


def item_table_digest(codes: Sequence) -> str | None:
    """Hash of the item attributes a run read (:class:`seqrec.data.features.Codes`, rows = item index): names, kinds,
    codes and what each code means (numeric bins included). None without item attributes."""
    if not codes:
        return None
    parts = []
    for c in codes:
        parts += [c.name.encode(), c.kind.encode(), np.ascontiguousarray(c.values, dtype=np.int64).tobytes(),
                  "\x1f".join(map(str, c.labels)).encode()]
    return _hash(*parts)


def with_item_table(fingerprint: Mapping, codes: Sequence) -> dict:
    """``fingerprint`` with the item attributes that were read (a copy)."""
    return {**fingerprint, "item_table": item_table_digest(codes)}


def describe_change(recorded: Mapping, current: Mapping) -> str | None:
    """What differs between a ``recorded`` fingerprint and the ``current`` one, in words (None: the same data).
    The item table and event columns are compared where both fingerprints have them."""
    if recorded.get("version") != current.get("version"):
        return None  # hashed another way: nothing to compare
    changed = []
    if recorded.get("interactions") != current.get("interactions"):
        counts = ("n_rows", "n_users", "n_items")
        now = [current.get(k) for k in counts]
        was = [recorded.get(k) for k in counts]
        if now == was:
            changed.append(f"its interactions differ (same {now[1]} users, {now[2]} items and {now[0]} events: ids, "
                           "times or which user has which item changed)")
        else:
            changed.append(f"its interactions differ ({now[1]} users, {now[2]} items, {now[0]} events; the run's had "
                           f"{was[1]}, {was[2]}, {was[0]})")
    old_events, new_events = recorded.get("events") or {}, current.get("events") or {}
    for name in sorted(set(old_events) & set(new_events)):
        if old_events[name] != new_events[name]:
            changed.append(f"its event column {name!r} differs")
    old_table, new_table = recorded.get("item_table"), current.get("item_table")
    if old_table is not None and new_table is not None and old_table != new_table:
        changed.append("its item attribute table differs")
    return "; ".join(changed) or None
