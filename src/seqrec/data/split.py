"""Interaction log -> re-indexed sequences -> the split of a protocol (:mod:`seqrec.data.protocols`): the long-term
split of PROTOCOL.md (the default), or leave-one-out on every user.

Everything here is vectorized over users (numpy/pandas); sequences are stored in a
CSR-like layout (one flat item array plus per-user offsets) so that no step needs a
Python loop over users.

Ids: users are re-indexed to ``0..n_users-1``, items to ``1..n_items``; item 0 is the
padding id and never a real item.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from seqrec.data.fingerprint import interactions_fingerprint
from seqrec.data.sequences import Sequences, pad_array, ragged_index  # noqa: F401 -- Sequences, ragged_index: re-exported
from seqrec.core.errors import UserError, require

log = logging.getLogger("seqrec.data")

REQUIRED_COLUMNS = ("user_id", "item_id", "timestamp")
#: what the split does with identical (user, item, timestamp) events (``duplicates=``): drop all but the first
#: (with a printed count), or refuse the file; the same item at another time is a re-consumption and stays an event
DUPLICATE_POLICIES = ("drop", "refuse")


def load_interactions(path: str | Path) -> pd.DataFrame:
    """Read a prepared interaction CSV (``user_id,item_id,timestamp[,rating]``) and check it."""
    from seqrec.data.movielens import prepare_hint  # the hint names this file and the command that writes it

    path = Path(path)
    if not path.exists():
        raise UserError(f"data_path '{path}' does not exist; {prepare_hint(path, missing=True)}")
    if path.is_dir():
        raise UserError(f"data_path '{path}' is a folder; pass the interaction CSV file, e.g. data_path={path}/<file>.csv")
    try:
        df = pd.read_csv(path)
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"cannot read data_path '{path}' as CSV ({first}); {prepare_hint(path)}") from exc
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    require(
        not missing,
        f"data_path '{path}' lacks column(s) {missing} (has {list(df.columns)}); "
        "expected a header user_id,item_id,timestamp[,rating]",
    )
    require(len(df) > 0, f"data_path '{path}' has no rows; prepare a non-empty interaction file")
    require(
        not df[list(REQUIRED_COLUMNS)].isna().any().any(),
        f"data_path '{path}' has empty values in user_id/item_id/timestamp; fill or drop those rows",
    )
    for col in ("user_id", "item_id"):
        ids = df[col]
        if pd.api.types.is_float_dtype(ids) and (ids != np.floor(ids)).any():
            example = ids[ids != np.floor(ids)].iloc[0].item()
            raise UserError(
                f"data_path '{path}': {col} holds non-integer numbers (first: {example!r}); ids must be integers "
                "(or text labels): check that the header names the columns in the right order"
            )
    df["timestamp"] = _numeric_timestamps(df["timestamp"], path)
    return df


def _numeric_timestamps(ts: pd.Series, path: Path) -> pd.Series:
    if pd.api.types.is_numeric_dtype(ts):
        return ts
    parsed = pd.to_datetime(ts, errors="coerce", utc=True, format="mixed")
    bad = parsed.isna()
    if bad.any():
        example = ts[bad].iloc[0]
        raise UserError(
            f"data_path '{path}': {int(bad.sum())} timestamp(s) are neither numbers nor dates "
            f"(first: {example!r}); use Unix seconds or ISO dates"
        )
    return pd.Series(parsed.astype("int64").to_numpy(), index=ts.index)


@dataclass
class SplitData:
    """A split: train parts of all users, validation and test users, their inputs and held-out items.

    Long-term: every evaluated user's input is its train part and its targets its held-out items, for validation
    and test users alike. Leave-one-out (``protocol="leave_one_out"``): every user is a test user (and a validation
    user, or a sampled one); validation reads the train part and targets the second-to-last item (``val_holdout``),
    test reads the train part plus that item (``test_inputs``) and targets the last item (``holdout``). Read a
    part's inputs and targets through :meth:`inputs` and :meth:`targets` with ``part="val"`` or ``"test"``.
    """

    n_items: int
    user_ids: np.ndarray  # original user id per user index
    item_ids: np.ndarray  # original id of item index i is item_ids[i - 1] (index 0 = padding)
    train: Sequences  # train part of every user (inputs of validation/test too)
    holdout: Sequences  # held-out items of every user (empty for users without any)
    holdout_groups: Sequences  # per held-out item: index of its timestamp-tie group within the user's holdout
    val_users: np.ndarray  # validation users (the sampled ones, see validation_size)
    test_users: np.ndarray
    item_counts: np.ndarray  # train interactions per item, len n_items + 1
    tied_holdout_share: float = 0.0  # share of held-out items sharing their timestamp with another of the user's
    train_extra: dict = field(default_factory=dict)  # requested extra columns, values aligned with train.items
    fingerprint: dict = field(default_factory=dict)  # seqrec.data.fingerprint of the events split (and columns)
    duplicates_dropped: int = 0  # identical (user, item, timestamp) rows dropped (duplicates=drop)
    protocol: str = "long_term"  # seqrec.data.protocols: how the held-out items were chosen
    val_holdout: Sequences | None = None  # leave-one-out: the validation item of every user (None: holdout)
    val_holdout_groups: Sequences | None = None  # its tie groups (one item: 0)
    test_inputs: Sequences | None = None  # leave-one-out: the test input (train part + validation item); None: train
    dropped_users: int = 0  # users too short for the protocol: neither trained on nor evaluated

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    def _held(self, part: str) -> tuple[Sequences, Sequences]:
        if part not in ("val", "test"):
            raise ValueError(f"part must be 'val' or 'test', got {part!r}")
        if part == "val" and self.val_holdout is not None:
            return self.val_holdout, self.val_holdout_groups
        return self.holdout, self.holdout_groups

    def inputs(self, part: str = "test") -> Sequences:
        """The histories a ``part`` (``val`` or ``test``) user's recommendations are made from (indexed by user)."""
        self._held(part)  # checks part
        return self.test_inputs if part == "test" and self.test_inputs is not None else self.train

    def targets(self, users: np.ndarray, n: int, part: str = "test") -> np.ndarray:
        """First ``n`` held-out items of ``users`` in ``part`` as an int matrix, right-padded with 0."""
        return pad_array(self._held(part)[0].select(users), length=n, side="right", keep="first")

    def target_groups(self, users: np.ndarray, n: int, part: str = "test") -> np.ndarray:
        """Tie groups of :meth:`targets`: ``[U, n]`` ints, equal within a user for held-out items that share a
        timestamp (0, 1, 2, ... in time order), ``-1`` on padding. Without ties it is ``0..T-1`` per row."""
        groups = self._held(part)[1].select(users)
        shifted = Sequences(groups.items + 1, groups.offsets)  # padding is 0: shift so group 0 survives
        return pad_array(shifted, length=n, side="right", keep="first") - 1


@dataclass
class _Events:
    """A log's events re-indexed and sorted by (user, time, item), duplicates handled: what every protocol splits."""

    users: np.ndarray  # user index per event
    items: np.ndarray  # item index (1..n_items) per event
    timestamps: np.ndarray
    order: np.ndarray  # the row of the file each event came from
    user_ids: np.ndarray
    item_ids: np.ndarray
    n_dropped: int
    fingerprint: dict
    lengths: np.ndarray  # events per user
    seqs: Sequences  # every user's whole sequence


def _events(df: pd.DataFrame, extra_columns: Sequence[str], duplicates: str, source: str) -> _Events:
    require(duplicates in DUPLICATE_POLICIES, f"duplicates={duplicates!r} is not a policy; pass duplicates=drop "
            "(identical events counted once) or duplicates=refuse")
    users, user_ids = pd.factorize(df["user_id"], sort=True)
    items, item_ids = pd.factorize(df["item_id"], sort=True)
    # Events of one user with equal timestamps are ordered by item id, never by file order, so the same log in any
    # row order gives the same split; identical events are then neighbours, and the first row of each is kept.
    timestamps = df["timestamp"].to_numpy()
    order = np.lexsort((np.arange(len(df)), items, timestamps, users))
    users, items, timestamps = users[order].astype(np.int64), items[order].astype(np.int64) + 1, timestamps[order]
    order, users, items, timestamps, n_dropped = _drop_duplicates(order, users, items, timestamps, user_ids,
                                                                  item_ids, duplicates, source)
    fingerprint = interactions_fingerprint(user_ids, item_ids, users, items, timestamps,
                                           {c: df[c].to_numpy()[order] for c in extra_columns}, n_dropped)
    lengths = np.bincount(users, minlength=len(user_ids))
    return _Events(users, items, timestamps, order, user_ids, item_ids, n_dropped, fingerprint, lengths,
                   Sequences.from_lengths(items, lengths))


def split_interactions(
    df: pd.DataFrame, last_n_items: int = 10, validation_size: int | None = 2000, random_state: int = 42,
    extra_columns: Sequence[str] = (), duplicates: str = "drop", source: str = "the interaction log",
    protocol: str = "long_term",
) -> SplitData:
    """Re-index ids, order each user's items by time, hold out the last ``last_n_items``.

    Identical (user, item, timestamp) events are dropped but for the first row of each (``duplicates="drop"``, a
    warning line with their count) or refused (``"refuse"``, a one-line :class:`UserError` naming the first);
    ``source`` names the data in those lines. The same item at another time stays an event (a re-consumption).

    Users with more than ``last_n_items`` interactions are evaluable; they are split 50/50
    (seeded) into validation and test users, and at most ``validation_size`` validation
    users are kept (seeded sample). Users with ``last_n_items`` or fewer interactions keep
    everything in their train part and are never evaluated.

    ``protocol="leave_one_out"`` splits as :func:`split_leave_one_out` instead (``last_n_items`` is 1 there).
    """
    from seqrec.data.protocols import LEAVE_ONE_OUT, protocol as protocol_named

    if protocol_named(protocol) is LEAVE_ONE_OUT:
        return split_leave_one_out(df, validation_size, random_state, extra_columns, duplicates, source)
    require(last_n_items >= 1, f"last_n_items must be >= 1, got {last_n_items}")
    events = _events(df, extra_columns, duplicates, source)
    users, items, timestamps, order = events.users, events.items, events.timestamps, events.order
    user_ids, item_ids, n_dropped, fingerprint = events.user_ids, events.item_ids, events.n_dropped, events.fingerprint
    n_users, n_items = len(user_ids), len(item_ids)
    lengths, seqs = events.lengths, events.seqs
    evaluable = lengths > last_n_items
    n_hold = np.where(evaluable, last_n_items, 0)
    train_len = lengths - n_hold
    train_index = ragged_index(seqs.offsets[:-1], train_len)
    train = Sequences.from_lengths(items[train_index], train_len)
    train_extra = {c: df[c].to_numpy()[order][train_index] for c in extra_columns}
    hold_index = ragged_index(seqs.offsets[:-1] + train_len, n_hold)
    holdout = Sequences.from_lengths(items[hold_index], n_hold)
    holdout_groups, tied_share = _tie_groups(timestamps[hold_index], n_hold)

    eval_users = np.flatnonzero(evaluable)
    require(
        len(eval_users) >= 2,
        f"only {len(eval_users)} user(s) have more than last_n_items={last_n_items} interactions; "
        "at least 2 are needed to split into validation and test users (lower last_n_items or use more data)",
    )
    rng = np.random.default_rng(random_state)
    shuffled = rng.permutation(eval_users)
    half = len(shuffled) // 2
    val_users, test_users = np.sort(shuffled[:half]), np.sort(shuffled[half:])
    if validation_size is not None and len(val_users) > validation_size:
        val_users = np.sort(rng.choice(val_users, size=validation_size, replace=False))
    item_counts = np.bincount(train.items, minlength=n_items + 1)
    n_short = int((~evaluable).sum())
    if tied_share > 0:
        log.warning(
            "split: %.1f %% of held-out positions share their timestamp with another held-out item of the same user; "
            "their order (ties broken by item id) is a convention, so per-position metrics at those positions are "
            "not time positions (the tie-averaged recall@k_tpos{p} counts each tied group once)", 100 * tied_share,
        )
    log.info(
        "split: %d users, %d items, %d interactions; %d validation users, %d test users%s",
        n_users, n_items, len(users), len(val_users), len(test_users),
        f"; {n_short} users with <= {last_n_items} interactions are train-only" if n_short else "",
    )
    return SplitData(
        n_items=n_items,
        user_ids=np.asarray(user_ids),
        item_ids=np.asarray(item_ids),
        train=train,
        holdout=holdout,
        holdout_groups=holdout_groups,
        val_users=val_users,
        test_users=test_users,
        item_counts=item_counts,
        tied_holdout_share=tied_share,
        train_extra=train_extra,
        fingerprint=fingerprint,
        duplicates_dropped=n_dropped,
    )



def split_leave_one_out(
    df: pd.DataFrame, validation_size: int | None = None, random_state: int = 42, extra_columns: Sequence[str] = (),
    duplicates: str = "drop", source: str = "the interaction log",
) -> SplitData:
    """Leave-one-out on every user (the sequential-recommendation literature's protocol): the last item of each user
    is its test item, the second-to-last its validation item, training uses the rest; the test input is the train
    part plus the validation item. Events are ordered and de-duplicated as :func:`split_interactions` does.

    Every user with at least 3 interactions is a test user; validation users are all of them (``validation_size``
    None) or a seeded sample of ``validation_size`` (``random_state``). Users with fewer than 3 interactions are
    dropped (neither trained on nor evaluated; their items stay in the catalogue) with a printed count. One-line
    :class:`UserError` when no user is left, or when ``validation_size`` exceeds the users.
    """
    from seqrec.data.protocols import LEAVE_ONE_OUT

    events = _events(df, extra_columns, duplicates, source)
    items, order, lengths, seqs = events.items, events.order, events.lengths, events.seqs
    n_users, n_items = len(events.user_ids), len(events.item_ids)
    need = LEAVE_ONE_OUT.min_interactions
    evaluable = lengths >= need
    eval_users = np.flatnonzero(evaluable)
    n_dropped_users = int(n_users - len(eval_users))
    require(
        len(eval_users) >= 1,
        f"{source}: no user has {need} or more interactions, so protocol=leave_one_out leaves no validation or test "
        f"user (each needs a training item, a validation item and a test item); use more data or protocol=long_term",
    )
    if validation_size is not None and validation_size > len(eval_users):
        raise UserError(
            f"dataloader.validation_size={validation_size} exceeds the {len(eval_users)} users protocol=leave_one_out "
            f"validates on in {source}; pass dataloader.validation_size=null (all users) or at most {len(eval_users)}"
        )
    starts = seqs.offsets[:-1]
    train_len = np.where(evaluable, lengths - 2, 0)
    one = evaluable.astype(np.int64)
    train_index = ragged_index(starts, train_len)
    test_input_index = ragged_index(starts, train_len + one)
    val_index = ragged_index(starts + train_len, one)
    test_index = ragged_index(starts + train_len + one, one)
    train = Sequences.from_lengths(items[train_index], train_len)
    # one held-out item each: the validation and test items of a user tie when they share a timestamp
    tied = events.timestamps[val_index] == events.timestamps[test_index]
    tied_share = float(tied.mean()) if len(tied) else 0.0
    rng = np.random.default_rng(random_state)
    val_users = eval_users
    if validation_size is not None and validation_size < len(eval_users):
        val_users = np.sort(rng.choice(eval_users, size=validation_size, replace=False))
    if n_dropped_users:
        log.warning("split (protocol=leave_one_out): dropped %d user(s) with fewer than %d interactions (neither "
                    "trained on nor evaluated)", n_dropped_users, need)
    if tied_share > 0:
        log.warning("split (protocol=leave_one_out): %.1f %% of users have validation and test items with the same "
                    "timestamp; which of them is the test item is a convention (ties broken by item id)",
                    100 * tied_share)
    log.info("split (protocol=leave_one_out): %d users, %d items, %d interactions; %d validation users, %d test "
             "users", n_users, n_items, len(items), len(val_users), len(eval_users))
    zeros = Sequences.from_lengths(np.zeros(int(one.sum()), dtype=np.int64), one)  # one item each: tie group 0
    return SplitData(
        n_items=n_items,
        user_ids=np.asarray(events.user_ids),
        item_ids=np.asarray(events.item_ids),
        train=train,
        holdout=Sequences.from_lengths(items[test_index], one),
        holdout_groups=zeros,
        val_users=val_users,
        test_users=eval_users,
        item_counts=np.bincount(train.items, minlength=n_items + 1),
        tied_holdout_share=tied_share,
        train_extra={c: df[c].to_numpy()[order][train_index] for c in extra_columns},
        fingerprint=events.fingerprint,
        duplicates_dropped=events.n_dropped,
        protocol=LEAVE_ONE_OUT.name,
        val_holdout=Sequences.from_lengths(items[val_index], one),
        val_holdout_groups=zeros,
        test_inputs=Sequences.from_lengths(items[test_input_index], train_len + one),
        dropped_users=n_dropped_users,
    )

def _drop_duplicates(order, users, items, timestamps, user_ids, item_ids, policy: str, source: str):
    """The sorted events without identical (user, item, timestamp) repeats (they are neighbours after the sort; the
    first row of the file is kept), or a one-line :class:`UserError` for ``policy="refuse"``."""
    same = np.zeros(len(users), dtype=bool)
    same[1:] = (users[1:] == users[:-1]) & (items[1:] == items[:-1]) & (timestamps[1:] == timestamps[:-1])
    n = int(same.sum())
    if not n:
        return order, users, items, timestamps, 0
    j = int(np.flatnonzero(same)[0])
    first = (f"user {_plain(user_ids[users[j]])}, item {_plain(item_ids[items[j] - 1])}, timestamp "
             f"{_plain(timestamps[j])}, on lines {int(order[j - 1]) + 2} and {int(order[j]) + 2} of the file)")
    if policy == "refuse":
        raise UserError(f"{source} has {n} identical (user_id, item_id, timestamp) row(s) (first: {first}; remove "
                        "them, or pass duplicates=drop to keep the first row of each (the count is printed)")
    log.warning("%s: dropped %d identical (user_id, item_id, timestamp) row(s), keeping the first of each (first: %s); "
                "pass duplicates=refuse to refuse such a file", source, n, first[:-1])
    keep = ~same
    return order[keep], users[keep], items[keep], timestamps[keep], n


def _plain(value):
    return value.item() if hasattr(value, "item") else value


def _tie_groups(timestamps: np.ndarray, lengths: np.ndarray) -> tuple[Sequences, float]:
    """Per held-out item, the index of its group of equal timestamps within its user (0, 1, 2, ... in time
    order), and the share of held-out items that share their timestamp with another held-out item."""
    lengths = np.asarray(lengths, dtype=np.int64)
    if timestamps.size == 0:
        return Sequences.from_lengths(np.zeros(0, dtype=np.int64), lengths), 0.0
    starts = np.zeros(len(lengths), dtype=np.int64)
    np.cumsum(lengths[:-1], out=starts[1:])
    first = np.zeros(timestamps.size, dtype=bool)  # first item of a user's holdout, or a new timestamp
    first[starts[lengths > 0]] = True
    first[1:] |= timestamps[1:] != timestamps[:-1]
    group_id = np.cumsum(first) - 1  # global group ids, time-ordered within users
    base = np.repeat(group_id[starts[lengths > 0]], lengths[lengths > 0])
    size = np.bincount(group_id)
    tied = float((size[group_id] > 1).mean())
    return Sequences.from_lengths(group_id - base, lengths), tied
