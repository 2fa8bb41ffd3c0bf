"""A seeded synthetic sequential dataset with learnable item-to-item transitions.

Each item has ``n_successors`` likely next items, drawn once from the seed with a
Zipf-like preference for a few popular items (so a popularity baseline is not
trivial). A user's sequence starts at a popularity-weighted item; each next item is,
with probability ``1 - noise``, one of the current item's successors (earlier
successors more likely) and otherwise a uniformly random item. Items never repeat
within a user: seen successors are skipped, and if every successor was already
seen, a random unseen item is taken. A first-order model that learns the
transitions therefore clearly beats popularity.

Generation is vectorised over users; the only Python loop runs over positions
(and over fixed-size blocks of users when the catalogue is large, to bound the
memory of the per-user "seen" mask).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from seqrec.core.io import write_interaction_log
from seqrec.core.errors import UserError


ZIPF_EXPONENT = 1.0  # popularity of item at popularity rank r is proportional to r ** -ZIPF_EXPONENT
_SEEN_MASK_BUDGET = 1 << 25  # at most this many booleans in the per-block "seen" mask (32 MiB)
_REJECTION_ROUNDS = 16


def _validate(n_users: int, n_items: int, min_len: int, max_len: int, n_successors: int, noise: float) -> None:
    if n_users < 1:
        raise UserError(f"n_users must be at least 1, got {n_users}; pass e.g. --users 1000")
    if min_len < 1 or max_len < min_len:
        raise UserError(f"need 1 <= min_len <= max_len, got min_len={min_len}, max_len={max_len}; pass e.g. --min-len 30 --max-len 80")
    if n_items <= max_len:
        raise UserError(
            f"n_items ({n_items}) must exceed max_len ({max_len}) because items never repeat within a user; "
            f"pass --items {max_len + 1} or more"
        )
    if not 1 <= n_successors < n_items:
        raise UserError(f"n_successors must be in [1, n_items - 1], got {n_successors}; pass e.g. --successors 3")
    if not 0.0 <= noise <= 1.0:
        raise UserError(f"noise must be in [0, 1], got {noise}; pass e.g. --noise 0.1")


def _popularity(rng: np.random.Generator, n_items: int) -> np.ndarray:
    """Zipf-like item weights over a random permutation of the items (0-based ids)."""
    weights = np.empty(n_items)
    weights[rng.permutation(n_items)] = np.arange(1, n_items + 1, dtype=float) ** -ZIPF_EXPONENT
    return weights / weights.sum()


def _successor_table(rng: np.random.Generator, popularity: np.ndarray, n_successors: int) -> np.ndarray:
    """``(n_items, n_successors)`` distinct successors per item, never the item itself.

    Column j is drawn with probability proportional to popularity among the items not
    yet taken in that row (successive sampling without replacement), so earlier
    columns lean towards popular items. Draws are by rejection, with an exact
    masked draw for the rare rows that keep colliding.
    """
    n_items = len(popularity)
    rows = np.arange(n_items)
    table = np.full((n_items, n_successors), -1, dtype=np.int64)

    def taken(idx: np.ndarray, cand: np.ndarray, j: int) -> np.ndarray:
        return (cand == idx) | (table[idx, :j] == cand[:, None]).any(axis=1)

    for j in range(n_successors):
        cand = rng.choice(n_items, size=n_items, p=popularity)
        bad = taken(rows, cand, j)
        for _ in range(_REJECTION_ROUNDS):
            if not bad.any():
                break
            idx = np.flatnonzero(bad)
            cand[idx] = rng.choice(n_items, size=len(idx), p=popularity)
            bad[idx] = taken(idx, cand[idx], j)
        for i in np.flatnonzero(bad):  # exact draw among the items still free in row i
            p = popularity.copy()
            p[i] = 0.0
            p[table[i, :j]] = 0.0
            cand[i] = rng.choice(n_items, p=p / p.sum())
        table[:, j] = cand
    return table


def _random_unseen(rng: np.random.Generator, seen: np.ndarray) -> np.ndarray:
    """One uniformly random unseen item per row of the boolean ``seen`` mask."""
    n_rows, n_items = seen.shape
    rows = np.arange(n_rows)
    pick = rng.integers(0, n_items, size=n_rows)
    bad = seen[rows, pick]
    for _ in range(_REJECTION_ROUNDS):
        if not bad.any():
            return pick
        idx = np.flatnonzero(bad)
        pick[idx] = rng.integers(0, n_items, size=len(idx))
        bad[idx] = seen[idx, pick[idx]]
    idx = np.flatnonzero(bad)
    if len(idx):  # nearly exhausted rows: exact draw among the unseen items
        keys = rng.random((len(idx), n_items))
        keys[seen[idx]] = -1.0
        pick[idx] = keys.argmax(axis=1)
    return pick


def _generate_block(
    rng: np.random.Generator,
    n_rows: int,
    max_len: int,
    popularity: np.ndarray,
    successors: np.ndarray,
    succ_weights: np.ndarray,
    noise: float,
) -> np.ndarray:
    """``(n_rows, max_len)`` 0-based item sequences without repeats."""
    n_items = len(popularity)
    rows = np.arange(n_rows)
    seqs = np.empty((n_rows, max_len), dtype=np.int64)
    seen = np.zeros((n_rows, n_items), dtype=bool)
    cur = rng.choice(n_items, size=n_rows, p=popularity)
    seqs[:, 0] = cur
    seen[rows, cur] = True
    for t in range(1, max_len):
        cand = successors[cur]  # (n_rows, k)
        weights = succ_weights[None, :] * ~seen[rows[:, None], cand]
        total = weights.sum(axis=1)
        follow = (rng.random(n_rows) >= noise) & (total > 0)
        u = rng.random(n_rows) * total
        j = (np.cumsum(weights, axis=1) <= u[:, None]).sum(axis=1)
        j = np.minimum(j, cand.shape[1] - 1)
        nxt = np.where(follow, cand[rows, j], -1)
        other = ~follow
        if other.any():
            nxt[other] = _random_unseen(rng, seen[other])
        seqs[:, t] = nxt
        seen[rows, nxt] = True
        cur = nxt
    return seqs


def make_synthetic(
    n_users: int = 1000,
    n_items: int = 300,
    min_len: int = 30,
    max_len: int = 80,
    n_successors: int = 3,
    noise: float = 0.1,
    seed: int = 0,
) -> pd.DataFrame:
    """A seeded sequential interaction log: columns ``user_id,item_id,timestamp,rating``.

    User ids are ``1..n_users``; item ids start at 1 and are contiguous (items that
    never occur are dropped and the rest renumbered in order, so with the default
    sizes they are exactly ``1..n_items``). ``timestamp`` is the position in the
    user's sequence (0, 1, ...); ``rating`` is 5 for a followed transition and a
    random 1..5 otherwise. Same arguments, same frame.
    """
    _validate(n_users, n_items, min_len, max_len, n_successors, noise)
    rng = np.random.default_rng(seed)
    popularity = _popularity(rng, n_items)
    successors = _successor_table(rng, popularity, n_successors)
    succ_weights = 1.0 / np.arange(1, n_successors + 1)
    lengths = rng.integers(min_len, max_len + 1, size=n_users)

    block = max(1, _SEEN_MASK_BUDGET // n_items)
    parts = [
        _generate_block(rng, min(block, n_users - start), max_len, popularity, successors, succ_weights, noise)
        for start in range(0, n_users, block)
    ]
    seqs = np.concatenate(parts, axis=0)

    keep = np.arange(max_len)[None, :] < lengths[:, None]
    items = seqs[keep]  # row-major: user by user, position by position
    users = np.repeat(np.arange(1, n_users + 1), lengths)
    positions = np.concatenate([np.arange(n) for n in lengths])
    prev = np.concatenate([[-1], items[:-1]])
    followed = (positions > 0) & (successors[np.maximum(prev, 0)] == items[:, None]).any(axis=1)
    ratings = np.where(followed, 5, rng.integers(1, 6, size=len(items)))
    _, item_ids = np.unique(items, return_inverse=True)
    return pd.DataFrame(
        {
            "user_id": users.astype(np.int64),
            "item_id": item_ids.astype(np.int64) + 1,
            "timestamp": positions.astype(np.int64),
            "rating": ratings.astype(np.int64),
        }
    )


def write_synthetic(path: str | os.PathLike, **kwargs) -> Path:
    """Write :func:`make_synthetic` ``(**kwargs)`` to ``path`` as CSV (atomically); return ``path``."""
    return write_interaction_log(make_synthetic(**kwargs), path, "synthetic")
