"""Ranking metrics for top-K recommendation lists, vectorised over all users.

Conventions
-----------
Items are contiguous ints ``1..n_items``; ``0`` is padding and never a real item. For ``U`` users
(numpy arrays, torch tensors on any device, or nested lists):

* ``recs`` -- int ``[U, >=k]``: recommended item ids in rank order; only the first ``k`` columns
  are used. A ``0`` marks an empty slot (no recommendation). Lists should never repeat an item;
  if one does, only the first occurrence counts and the repeat is treated as an empty slot
  everywhere (never a hit, not counted in coverage, entropy or novelty).
* ``targets`` -- int ``[U, T]``: the held-out items in time order, padded with ``0`` on the right
  (validation has ``T = 1``, test ``T = 10``).
* ``item_counts`` -- int ``[n_items + 1]``: train interactions per item (index 0 unused).

Definitions (binary relevance; relevant set ``R`` = the user's distinct non-zero targets, ``|R|``
may be smaller or larger than ``k``; ``i`` is the 1-based rank):

* ``recall@k = |hits| / |R|``; ``precision@k = |hits| / k``.
* ``ndcg@k = DCG / IDCG`` with ``DCG = sum_{hit at i} 1 / log2(i + 1)`` and IDCG the DCG of
  ``min(|R|, k)`` hits at the top ranks.
* ``map@k = (sum_{hit at i} precision@i) / min(|R|, k)``.
* ``recall@k_pos{p}`` -- among the users that have a p-th target, the share whose p-th target is
  in their top-k (the paper's per-time-index curves).
* ``ndcg@k_pos{p}`` -- the same users' mean of ``1 / log2(r + 1)`` when the p-th target is at rank
  ``r <= k`` (else 0): NDCG@k with the p-th target as the only relevant item.
* ``recall@k_tpos{p}`` (only when ``groups`` are given) -- tie-averaged per-position recall: when the
  p-th target shares its timestamp with other targets of the user (a tie group), which of them is
  "position p" is a convention, so each position of a group is credited with the share of the group
  that is found: the expectation of ``recall@k_pos{p}`` over all orders of the tied items.
* ``coverage@k`` -- distinct recommended items / ``n_items``.
* ``entropy@k`` -- Shannon entropy (natural log) of the distribution of recommended-item
  occurrences pooled over all users' lists.
* ``novelty@k`` -- mean over all recommended slots of ``-log2 pop(i)``, with
  ``pop(i) = max(item_counts[i], 1) / sum(item_counts[1:])``, the item's share of the train
  interactions (an item never seen in train counts as seen once).

Accuracy metrics are averaged over the users with ``|R| >= 1``; users without targets still
contribute their lists to coverage, entropy and novelty. An average over no users is ``nan``.

:func:`compute_metrics` is the vectorised implementation; :func:`reference_metrics` computes the
same definitions one user at a time in plain Python and exists to check it.
"""

from __future__ import annotations

import functools
import math
import re
from collections import Counter
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from seqrec.core.errors import require

__all__ = [
    "compute_metrics",
    "least_popular_items",
    "tail_recall",
    "per_user_metrics",
    "reference_metrics",
    "metric_names",
    "prefixed",
    "protocol_metrics",
    "format_metrics",
    "per_position_table",
    "plot_per_position",
]


# ----------------------------------------------------------------------------------------------
# input handling


def _to_numpy(x: Any, name: str) -> np.ndarray:
    """Turn a numpy array, torch tensor (any device) or nested list into a numpy array."""
    if hasattr(x, "detach") and hasattr(x, "cpu") and hasattr(x, "numpy"):  # torch.Tensor
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    if arr.size == 0 and arr.dtype.kind == "f":  # np.asarray([]) is float64
        arr = arr.astype(np.int64)
    require(
        arr.dtype.kind in "iu",
        f"{name} must hold integer item ids, got dtype {arr.dtype}",
    )
    return arr


def _rank_major(arr: np.ndarray, n_items: int, name: str, what: str) -> np.ndarray:
    """``arr.T`` as a C-contiguous matrix of the smallest signed int type holding ``-1..n_items``,
    after checking that every id lies in ``0..n_items``."""
    arr_t = np.ascontiguousarray(arr.T)
    if arr_t.size:
        # One comparison checks both ends: negatives become huge once viewed as unsigned.
        as_unsigned = arr_t.view(f"u{arr_t.itemsize}")
        require(
            not (as_unsigned > n_items).any(),
            f"{name} must hold item ids in 0..{n_items} (0 = {what})",
        )
    dtype = np.int16 if n_items < 2**15 - 1 else np.int32 if n_items < 2**31 - 1 else np.int64
    return arr_t.astype(dtype, copy=False)


def _check_inputs(
    recs: Any, targets: Any, item_counts: Any, n_items: int, k: int, n_positions: int | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Validate and convert the inputs shared by :func:`compute_metrics` and the reference.

    Returns ``recs`` and ``targets`` rank-major (``[k, U]`` and ``[T, U]``, users contiguous) so the
    vectorised code runs along the long user axis; ``item_counts`` as int64; ``n_positions``.
    """
    recs = _to_numpy(recs, "recs")
    targets = _to_numpy(targets, "targets")
    item_counts = _to_numpy(item_counts, "item_counts").astype(np.int64, copy=False)
    n_items = int(n_items)
    k = int(k)
    require(k >= 1, f"k must be >= 1, got {k}")
    require(n_items >= 1, f"n_items must be >= 1, got {n_items}")
    require(recs.ndim == 2, f"recs must be a [users, k] matrix, got shape {recs.shape}")
    require(targets.ndim == 2, f"targets must be a [users, T] matrix, got shape {targets.shape}")
    require(
        recs.shape[0] == targets.shape[0],
        f"recs has {recs.shape[0]} users but targets has {targets.shape[0]}",
    )
    require(recs.shape[0] >= 1, "metrics need at least one user")
    require(
        recs.shape[1] >= k,
        f"recs has {recs.shape[1]} items per user, fewer than k={k}",
    )
    require(
        item_counts.shape == (n_items + 1,),
        f"item_counts must have n_items + 1 = {n_items + 1} entries, got shape {item_counts.shape}",
    )
    require(bool((item_counts >= 0).all()), "item_counts must be non-negative")
    require(int(item_counts[1:].sum()) > 0, "item_counts must count at least one train interaction")
    recs_t = _rank_major(recs[:, :k], n_items, "recs", "empty slot")
    targets_t = _rank_major(targets, n_items, "targets", "padding")
    require(
        not ((targets_t[:-1] == 0) & (targets_t[1:] != 0)).any(),
        "targets must be padded with 0 on the right only (found an item after a 0)",
    )
    if n_positions is None:
        n_positions = targets.shape[1]
    n_positions = int(n_positions)
    require(n_positions >= 0, f"n_positions must be >= 0, got {n_positions}")
    return recs_t, targets_t, item_counts, n_positions


def _check_groups(groups: Any, targets_t: np.ndarray) -> np.ndarray | None:
    """Tie groups ``[U, T]`` (as :meth:`SplitData.target_groups`) rank-major, or None."""
    if groups is None:
        return None
    groups = _to_numpy(groups, "groups")
    require(
        groups.shape == targets_t.T.shape,
        f"groups must have the shape of targets {targets_t.T.shape}, got {groups.shape}",
    )
    return np.ascontiguousarray(groups.T)


def metric_names(k: int = 10, n_positions: int = 10, tie_groups: bool = False) -> list[str]:
    """Keys returned by :func:`compute_metrics`, in their order."""
    names = USER_METRICS_FORMAT.copy()
    names = [name.format(k=k) for name in names]
    names += [f"recall@{k}_pos{p}" for p in range(n_positions)]
    names += [f"ndcg@{k}_pos{p}" for p in range(n_positions)]
    if tie_groups:
        names += [f"recall@{k}_tpos{p}" for p in range(n_positions)]
    names += [f"coverage@{k}", f"entropy@{k}", f"novelty@{k}"]
    return names


USER_METRICS_FORMAT = ["map@{k}", "ndcg@{k}", "recall@{k}", "precision@{k}"]


# ----------------------------------------------------------------------------------------------
# vectorised implementation


def _first_occurrence(x_t: np.ndarray) -> np.ndarray:
    """For a rank-major ``[L, U]`` matrix: non-zero entries that do not repeat an earlier one in
    their column (i.e. the first occurrence of each item in a user's list)."""
    repeat = np.zeros(x_t.shape, dtype=bool)
    for i in range(x_t.shape[0] - 1):  # over list positions (<= k), not over users
        repeat[i + 1 :] |= x_t[i + 1 :] == x_t[i]  # later copies of the entry at position i
    return (x_t != 0) & ~repeat


@functools.lru_cache(maxsize=16)
def _rank_weights(k: int) -> tuple[np.ndarray, np.ndarray]:
    """``weights [k + 2, k]`` and ``ideal_dcg [k]`` for a rank-major hit matrix ``hit [k, U]``.

    ``weights @ hit`` stacks, per user: row 0 the number of hits, row 1 the DCG
    (``sum 1 / log2(i + 1)`` over hit ranks ``i``), rows ``2 + (i - 1)`` precision@i (hits at ranks
    ``<= i`` divided by ``i``). ``ideal_dcg[n - 1]`` is the DCG of ``n`` hits at the top.
    """
    ranks = np.arange(1, k + 1, dtype=np.float64)
    discount = 1.0 / np.log2(ranks + 1.0)
    precision = np.tril(np.ones((k, k))) / ranks[:, None]
    weights = np.vstack([np.ones(k), discount, precision])
    weights.setflags(write=False)
    ideal_dcg = np.cumsum(discount)
    ideal_dcg.setflags(write=False)
    return weights, ideal_dcg


def _per_user(
    recs_t: np.ndarray, targets_t: np.ndarray, k: int, n_positions: int, groups_t: np.ndarray | None
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Per-user accuracy values (``nan`` where a user has no target, or no p-th target) and the
    cleaned rank-major list (``-1`` for empty and repeated slots)."""
    n_targets, n_users = targets_t.shape
    # Repeated and empty slots become -1, which matches neither a real item nor target padding.
    rec_valid = _first_occurrence(recs_t)
    clean_t = np.where(rec_valid, recs_t, -1)
    n_relevant = _first_occurrence(targets_t).sum(axis=0)

    match = clean_t[:, None, :] == targets_t[None, :, :]  # [k, T, U]
    hit = match.any(axis=1)  # [k, U]: rec slot is relevant
    found = match.any(axis=0)  # [T, U]: target position is in the list

    has_relevant = n_relevant > 0
    n_ideal = np.clip(n_relevant, 1, k)
    # One small matmul gives, per user: |hits|, DCG and precision@i at every rank i.
    weights, ideal_dcg = _rank_weights(k)
    per_rank = weights @ hit.astype(np.float64)  # [k + 2, U]
    n_hits, dcg, precision_at = per_rank[0], per_rank[1], per_rank[2:]
    nan = np.full(n_users, np.nan)
    out = {
        f"map@{k}": np.where(has_relevant, (precision_at * hit).sum(axis=0) / n_ideal, nan),
        f"ndcg@{k}": np.where(has_relevant, dcg / ideal_dcg[n_ideal - 1], nan),
        f"recall@{k}": np.where(has_relevant, n_hits / np.maximum(n_relevant, 1), nan),
        f"precision@{k}": np.where(has_relevant, n_hits / k, nan),
    }
    present = targets_t != 0  # [T, U]
    gain = np.einsum("k,ktu->tu", weights[1], match.astype(np.float64))  # [T, U]: 1/log2(r+1) of target p
    per_position = {f"recall@{k}_pos{{p}}": found, f"ndcg@{k}_pos{{p}}": gain}
    if groups_t is not None:
        same = (groups_t[:, None, :] == groups_t[None, :, :]) & present[None, :, :]  # [T, T, U]
        per_position[f"recall@{k}_tpos{{p}}"] = (same & found[None, :, :]).sum(axis=1) / np.maximum(same.sum(axis=1), 1)
    for label, values in per_position.items():
        for p in range(n_positions):
            out[label.format(p=p)] = (
                np.where(present[p], values[p], np.nan) if p < n_targets else nan.copy()
            )
    return out, clean_t


def per_user_metrics(
    recs: Any, targets: Any, n_items: int, k: int = 10, n_positions: int | None = None, groups: Any = None
) -> dict[str, np.ndarray]:
    """Every accuracy metric of :func:`compute_metrics` per user: ``{name: float array [U]}``.

    A user without targets (or without a p-th target) has ``nan`` there; the means over the
    non-``nan`` users are exactly :func:`compute_metrics`'s values. These are what confidence
    intervals and paired tests resample (:mod:`seqrec.evaluation.stats`). ``groups``: optional tie groups of the
    targets (``[U, T]``, see :meth:`seqrec.data.split.SplitData.target_groups`) for ``recall@k_tpos{p}``.
    """
    item_counts = np.ones(int(n_items) + 1, dtype=np.int64)  # unused by the accuracy metrics
    recs_t, targets_t, _, n_positions = _check_inputs(recs, targets, item_counts, n_items, k, n_positions)
    out, _ = _per_user(recs_t, targets_t, int(k), n_positions, _check_groups(groups, targets_t))
    return out


def compute_metrics(
    recs: Any,
    targets: Any,
    item_counts: Any,
    n_items: int,
    k: int = 10,
    n_positions: int | None = None,
    groups: Any = None,
    with_per_user: bool = False,
) -> dict[str, float] | tuple[dict[str, float], dict[str, np.ndarray]]:
    """All metrics of the module docstring for top-``k`` lists, vectorised over users.

    Args:
        recs: int ``[U, >=k]`` recommended items in rank order (numpy array or torch tensor).
        targets: int ``[U, T]`` held-out items in time order, right-padded with 0.
        item_counts: int ``[n_items + 1]`` train interactions per item (index 0 unused).
        n_items: catalogue size (items are ``1..n_items``).
        k: list length to evaluate; names carry it (``ndcg@5`` for ``k=5``).
        n_positions: how many per-position keys to report (default ``T``); positions that no
            user has (``p >= T``) are ``nan``.
        groups: optional int ``[U, T]`` timestamp-tie groups of the targets; adds ``recall@k_tpos{p}``.

    Returns:
        ``{name: value}`` with the keys of :func:`metric_names`, in that order; with ``with_per_user``
        also the per-user values the means come from (those of :func:`per_user_metrics`), from the same pass.
    """
    # Rank-major [k, U] / [T, U] with users contiguous: numpy then vectorises along the long user
    # axis rather than along rows of length 10 (several times faster).
    recs_t, targets_t, item_counts, n_positions = _check_inputs(
        recs, targets, item_counts, n_items, k, n_positions
    )
    groups_t = _check_groups(groups, targets_t)
    per_user, clean_t = _per_user(recs_t, targets_t, k, n_positions, groups_t)

    def mean(values: np.ndarray) -> float:
        counted = ~np.isnan(values)
        n = int(counted.sum())
        return float(values[counted].sum() / n) if n else float("nan")

    out = {name: mean(values) for name, values in per_user.items()}
    out = {name: out[name] for name in metric_names(k, n_positions, groups_t is not None)[:-3]}

    # clean_t + 1: -1 (no item) -> bin 0, item i -> bin i + 1
    occurrences = np.bincount((clean_t + 1).ravel(), minlength=n_items + 2)[2:]
    n_slots = int(occurrences.sum())
    out[f"coverage@{k}"] = float(np.count_nonzero(occurrences) / n_items)
    if n_slots:
        share = occurrences[occurrences > 0] / n_slots
        out[f"entropy@{k}"] = float(-(share * np.log(share)).sum())
        counts = item_counts[1:].astype(np.float64)
        self_info = -np.log2(np.maximum(counts, 1.0) / counts.sum())
        out[f"novelty@{k}"] = float(occurrences @ self_info / n_slots)
    else:
        out[f"entropy@{k}"] = float("nan")
        out[f"novelty@{k}"] = float("nan")
    return (out, per_user) if with_per_user else out


# ----------------------------------------------------------------------------------------------
# slow reference implementation (tests, benchmark)


def reference_metrics(
    recs: Any,
    targets: Any,
    item_counts: Any,
    n_items: int,
    k: int = 10,
    n_positions: int | None = None,
    groups: Any = None,
) -> dict[str, float]:
    """Per-user pure-Python version of :func:`compute_metrics` (same definitions, same output).

    Deliberately obvious and slow; used to check the vectorised code. It shares no code with it: inputs
    (numpy arrays, torch tensors or nested lists of valid ids) become plain Python lists here, so the
    vectorised input handling (dtype narrowing, rank-major layout) is checked too.
    """

    def rows(x: Any) -> list:
        return x.tolist() if hasattr(x, "tolist") else list(x)

    k = int(k)
    recs_l = [[int(item) for item in row][:k] for row in rows(recs)]
    targets_l = [[int(item) for item in row] for row in rows(targets)]
    groups_l = [[int(g) for g in row] for row in rows(groups)] if groups is not None else [None] * len(targets_l)
    counts_l = [int(c) for c in rows(item_counts)]
    if n_positions is None:
        n_positions = len(targets_l[0]) if targets_l else 0
    total_train = sum(counts_l[1:])

    aps, ndcgs, recalls, precisions = [], [], [], []
    pos_found = [0.0] * n_positions
    pos_gain = [0.0] * n_positions
    pos_tied = [0.0] * n_positions
    pos_users = [0] * n_positions
    occurrences: Counter[int] = Counter()

    for user_recs, user_targets, user_groups in zip(recs_l, targets_l, groups_l):
        # the user's list without empty slots and repeats, keeping ranks
        ranked: list[tuple[int, int]] = []  # (1-based rank, item)
        listed: dict[int, int] = {}  # item -> rank
        for rank, item in enumerate(user_recs, start=1):
            if item != 0 and item not in listed:
                listed[item] = rank
                ranked.append((rank, item))
                occurrences[item] += 1

        for p, item in enumerate(user_targets[:n_positions]):
            if item != 0:
                pos_users[p] += 1
                if item in listed:
                    pos_found[p] += 1
                    pos_gain[p] += 1.0 / math.log2(listed[item] + 1)
                if user_groups is not None:
                    tied = [t for t, g in zip(user_targets, user_groups) if t != 0 and g == user_groups[p]]
                    pos_tied[p] += sum(t in listed for t in tied) / len(tied)

        relevant = {item for item in user_targets if item != 0}
        if not relevant:
            continue
        n_hits = 0
        dcg = 0.0
        precision_sum = 0.0
        for rank, item in ranked:
            if item in relevant:
                n_hits += 1
                dcg += 1.0 / math.log2(rank + 1)
                precision_sum += n_hits / rank
        n_ideal = min(len(relevant), k)
        idcg = sum(1.0 / math.log2(rank + 1) for rank in range(1, n_ideal + 1))
        aps.append(precision_sum / n_ideal)
        ndcgs.append(dcg / idcg)
        recalls.append(n_hits / len(relevant))
        precisions.append(n_hits / k)

    def mean(values: list[float]) -> float:
        return sum(values) / len(values) if values else float("nan")

    out: dict[str, float] = {
        f"map@{k}": mean(aps),
        f"ndcg@{k}": mean(ndcgs),
        f"recall@{k}": mean(recalls),
        f"precision@{k}": mean(precisions),
    }
    for p in range(n_positions):
        out[f"recall@{k}_pos{p}"] = pos_found[p] / pos_users[p] if pos_users[p] else float("nan")
    for p in range(n_positions):
        out[f"ndcg@{k}_pos{p}"] = pos_gain[p] / pos_users[p] if pos_users[p] else float("nan")
    if groups is not None:
        for p in range(n_positions):
            out[f"recall@{k}_tpos{p}"] = pos_tied[p] / pos_users[p] if pos_users[p] else float("nan")

    n_slots = sum(occurrences.values())
    out[f"coverage@{k}"] = len(occurrences) / n_items
    if n_slots:
        out[f"entropy@{k}"] = -sum(
            c / n_slots * math.log(c / n_slots) for c in occurrences.values()
        )
        out[f"novelty@{k}"] = (
            sum(
                c * -math.log2(max(counts_l[item], 1) / total_train)
                for item, c in occurrences.items()
            )
            / n_slots
        )
    else:
        out[f"entropy@{k}"] = float("nan")
        out[f"novelty@{k}"] = float("nan")
    return out


# ----------------------------------------------------------------------------------------------
# naming, printing, tables, plots

_NAME = re.compile(r"^(?P<base>[a-z]+)@(?P<k>\d+)(?:_(?P<kind>t?pos)(?P<pos>\d+))?$")
_ORDER = ["map", "ndcg", "recall", "precision", "recall_pos", "ndcg_pos", "recall_tpos", "coverage", "entropy",
          "novelty"]


def least_popular_items(targets: Any, item_counts: Any, share: float = 0.2) -> np.ndarray:
    """The least popular ``share`` of the distinct held-out items: the distinct non-zero ``targets`` sorted by their
    train interactions (``item_counts[item]``; ties by item id), the first ``ceil(share * n_distinct)`` of them."""
    require(0.0 < share <= 1.0, f"share must be in (0, 1], got {share}")
    items = np.unique(np.asarray(targets, dtype=np.int64))
    items = items[items != 0]
    counts = np.asarray(item_counts, dtype=np.int64)
    order = np.lexsort((items, counts[items]))  # by count, then id
    return np.sort(items[order[: math.ceil(share * len(items))]])


def tail_recall(recs: Any, targets: Any, tail: Any, k: int = 10) -> np.ndarray:
    """Per-user recall@k over the user's held-out items that are in ``tail`` (``nan`` for a user with none): the
    share of those items found in the user's top-``k``. Ids may be internal or raw (``0`` = padding)."""
    recs = np.asarray(recs, dtype=np.int64)[:, :k]
    targets = np.asarray(targets, dtype=np.int64)
    require(recs.shape[0] == targets.shape[0], f"recs has {recs.shape[0]} users, targets {targets.shape[0]}")
    in_tail = np.isin(targets, np.asarray(tail, dtype=np.int64)) & (targets != 0)
    found = (targets[:, :, None] == recs[:, None, :]).any(axis=2)
    n_tail = in_tail.sum(axis=1)
    return np.where(n_tail > 0, (found & in_tail).sum(axis=1) / np.maximum(n_tail, 1), np.nan)


def protocol_metrics(protocol, values: Mapping[str, Any], k: int = 10) -> dict[str, Any]:
    """The metrics (or per-user values) of :func:`compute_metrics` that a run under ``protocol`` (a
    :class:`seqrec.data.protocols.Protocol` or its name) reports: all of them, or the protocol's own (leave-one-out:
    ``ndcg@k`` and ``hr@k``, the hit rate, which with one held-out item is ``recall@k``)."""
    from seqrec.data.protocols import protocol as protocol_named

    protocol = protocol_named(protocol) if protocol is None or isinstance(protocol, str) else protocol
    if protocol.metrics is None:
        return dict(values)
    values = {**values, f"hr@{k}": values[f"recall@{k}"]}
    return {name: value for name, value in values.items() if protocol.reports(name)}


def prefixed(metrics: Mapping[str, float], prefix: str) -> dict[str, float]:
    """Prefix every key: ``prefixed({"ndcg@10": x}, "test") == {"test_ndcg@10": x}``.

    An empty prefix leaves the keys unchanged; a trailing ``_`` on the prefix is not doubled.
    """
    prefix = prefix.rstrip("_")
    if not prefix:
        return dict(metrics)
    return {f"{prefix}_{name}": float(value) for name, value in metrics.items()}


def _sort_key(name: str) -> tuple[int, int, int, str]:
    """Order: map, ndcg, recall, precision, per-position recall, coverage, entropy, novelty,
    then unknown names alphabetically."""
    match = _NAME.match(name)
    if match is None:
        return (len(_ORDER), 0, 0, name)
    base = match["base"]
    pos = match["pos"]
    if pos is not None:
        base = f"{base}_{match['kind']}"
    rank = _ORDER.index(base) if base in _ORDER else len(_ORDER)
    return (rank, int(match["k"]), int(pos) if pos is not None else -1, name)


def format_metrics(
    metrics: Mapping[str, float], prefix: str = "", intervals: Mapping[str, Any] | None = None
) -> str:
    """One ``name value`` line per metric (4 decimals), e.g. ``test_ndcg@10 0.1234``.

    Lines follow a fixed order (accuracy, per-position recall by position, beyond-accuracy, then any
    other keys alphabetically) whatever the dict's own order; names are padded to align the values.
    With ``intervals`` (``{name: (low, high)}``, unprefixed names) a metric that has one gets it after
    its value: ``test_ndcg@10 0.1960 [0.1902, 0.2019]`` (the first two fields stay ``name value``).
    """
    intervals = intervals or {}
    names = sorted(metrics, key=_sort_key)
    labels = prefixed({name: 0.0 for name in names}, prefix)
    width = max((len(label) for label in labels), default=0)
    lines = []
    for label, name in zip(labels, names):
        line = f"{label:<{width}} {float(metrics[name]):.4f}"
        if name in intervals:
            low, high = intervals[name]
            line += f" [{float(low):.4f}, {float(high):.4f}]"
        lines.append(line)
    return "\n".join(lines)


_POSITION_KEY = re.compile(r"(?:^|_)recall@(?P<k>\d+)_pos(?P<pos>\d+)$")


def per_position_table(metrics: Mapping[str, float]):
    """The ``recall@k_pos{p}`` entries as a DataFrame with columns ``position`` and ``recall@k``.

    Accepts plain or prefixed keys (``test_recall@10_pos3``); rows are sorted by position.
    """
    import pandas as pd

    rows: dict[int, float] = {}
    ks: set[str] = set()
    for name, value in metrics.items():
        match = _POSITION_KEY.search(name)
        if match is not None:
            ks.add(match["k"])
            rows[int(match["pos"])] = float(value)
    require(bool(rows), "no per-position metrics (keys like 'recall@10_pos0') found")
    require(len(ks) == 1, f"per-position metrics for several k values: {sorted(ks)}")
    column = f"recall@{ks.pop()}"
    positions = sorted(rows)
    return pd.DataFrame({"position": positions, column: [rows[p] for p in positions]})


def plot_per_position(tables: Mapping[str, Any], path: str | Path, bands: Mapping[str, Any] | None = None) -> Path:
    """Save a PNG line plot of recall@k by held-out position, one line per label.

    ``tables`` maps a label (e.g. a generation strategy) to a :func:`per_position_table` frame;
    ``bands`` optionally maps a label to ``(lows, highs)`` per position (a confidence band, shaded).
    Uses matplotlib's Agg canvas directly, so it neither needs a display nor changes the backend.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    require(bool(tables), "plot_per_position needs at least one table")
    bands = bands or {}
    path = Path(path)
    fig = Figure(figsize=(7, 4.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ylabel = None
    for label, table in tables.items():
        columns = [c for c in table.columns if str(c).startswith("recall@")]
        require(
            "position" in table.columns and len(columns) == 1,
            f"table {label!r} needs columns 'position' and one 'recall@k'",
        )
        ylabel = columns[0]
        (line,) = ax.plot(table["position"], table[ylabel], marker="o", label=str(label))
        if label in bands:
            low, high = bands[label]
            ax.fill_between(table["position"], low, high, color=line.get_color(), alpha=0.2, linewidth=0)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("held-out position (0 = next item)")
    ax.set_ylabel(ylabel)
    title = f"{ylabel} by held-out position"
    ax.set_title(title + (" (bands: 95 % bootstrap CI over users)" if bands else ""), fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.set_ylim(bottom=0)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=120)
    return path
