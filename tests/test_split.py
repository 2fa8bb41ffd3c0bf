"""The long-term split of PROTOCOL.md on small hand-made logs."""

import logging

import numpy as np
import pandas as pd
import pytest

from seqrec.data.split import Sequences, load_interactions, ragged_index, split_interactions
from seqrec.core.errors import UserError


def make_log(lengths, seed=0, shuffle=True):
    rng = np.random.default_rng(seed)
    rows = []
    for u, n in enumerate(lengths):
        items = rng.choice(1000, size=n, replace=False) + 100
        rows += [(f"u{u}", int(i), t * 10) for t, i in enumerate(items)]
    df = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    return df.sample(frac=1, random_state=seed).reset_index(drop=True) if shuffle else df


def test_ragged_index_and_tails():
    assert ragged_index(np.array([5, 0, 9]), np.array([2, 0, 3])).tolist() == [5, 6, 9, 10, 11]
    seqs = Sequences.from_lengths(np.arange(1, 8), np.array([3, 0, 4]))
    assert [seqs[u].tolist() for u in range(3)] == [[1, 2, 3], [], [4, 5, 6, 7]]
    tails = seqs.tails(2)
    assert [tails[u].tolist() for u in range(3)] == [[2, 3], [], [6, 7]]
    sel = seqs.select(np.array([2, 0]))
    assert [sel[u].tolist() for u in range(2)] == [[4, 5, 6, 7], [1, 2, 3]]


def test_split_holds_out_last_ten_in_time_order():
    df = make_log([25, 30, 12, 40, 15, 11, 8])
    split = split_interactions(df, last_n_items=10, validation_size=None, random_state=0)
    assert split.n_users == 7
    for u, uid in enumerate(split.user_ids):
        rows = df[df.user_id == uid].sort_values("timestamp")
        idx = np.searchsorted(split.item_ids, rows.item_id.to_numpy()) + 1
        assert split.item_ids[idx - 1].tolist() == rows.item_id.tolist()
        full = np.concatenate([split.train[u], split.holdout[u]])
        assert full.tolist() == idx.tolist()
        if len(rows) > 10:
            assert len(split.holdout[u]) == 10
        else:  # too short to evaluate: everything is training data
            assert len(split.holdout[u]) == 0 and uid not in split.user_ids[np.r_[split.val_users, split.test_users]]
    evaluable = {u for u in range(7) if len(split.holdout[u])}
    assert set(split.val_users) | set(split.test_users) == evaluable
    assert not set(split.val_users) & set(split.test_users)
    assert abs(len(split.val_users) - len(split.test_users)) <= 1
    assert split.item_counts.sum() == len(split.train.items)
    assert split.item_counts[0] == 0


def test_string_ids_and_ties_in_item_id_order():
    df = pd.DataFrame(
        {"user_id": ["b"] * 12 + ["a"] * 12, "item_id": [f"i{k}" for k in range(24)], "timestamp": [5] * 24}
    )
    split = split_interactions(df, last_n_items=10, validation_size=None)
    a = list(split.user_ids).index("a")
    assert [split.item_ids[i - 1] for i in split.train[a]] == ["i12", "i13"]
    assert [split.item_ids[i - 1] for i in split.holdout[a]] == [f"i{k}" for k in range(14, 24)]


def test_split_is_seeded_and_validation_sampled():
    df = make_log([20] * 50)
    a = split_interactions(df, validation_size=10, random_state=1)
    b = split_interactions(df, validation_size=10, random_state=1)
    c = split_interactions(df, validation_size=10, random_state=2)
    assert len(a.val_users) == 10 and len(a.test_users) == 25
    assert a.val_users.tolist() == b.val_users.tolist() and a.test_users.tolist() == b.test_users.tolist()
    assert a.test_users.tolist() != c.test_users.tolist()


def test_targets_matrix():
    df = make_log([14, 20])
    split = split_interactions(df, validation_size=None)
    users = np.array([0, 1])
    t1 = split.targets(users, 1)
    t10 = split.targets(users, 10)
    assert t1[:, 0].tolist() == [split.holdout[0][0], split.holdout[1][0]]
    assert t10.tolist() == [split.holdout[0].tolist(), split.holdout[1].tolist()]


def test_too_few_users():
    with pytest.raises(UserError, match="at least 2"):
        split_interactions(make_log([20, 5]))


def test_load_interactions_errors(tmp_path):
    with pytest.raises(UserError, match=r"nope\.csv' does not exist; check the path, or pass data_path=<a CSV "):
        load_interactions(tmp_path / "nope.csv")  # the user's own file: no MovieLens command is offered
    with pytest.raises(UserError, match=r"prepare it with: python scripts/prepare_data\.py ml-100k"):
        load_interactions(tmp_path / "ml-100k.csv")  # a MovieLens name: the command that prepares that one
    bad = tmp_path / "bad.csv"
    bad.write_text("user,item,time\n1,2,3\n")
    with pytest.raises(UserError, match="lacks column"):
        load_interactions(bad)
    empty = tmp_path / "empty.csv"
    empty.write_text("user_id,item_id,timestamp\n")
    with pytest.raises(UserError, match="no rows"):
        load_interactions(empty)
    ts = tmp_path / "ts.csv"
    ts.write_text("user_id,item_id,timestamp\n1,2,yesterday-ish\n")
    with pytest.raises(UserError, match="timestamp"):
        load_interactions(ts)
    blank = tmp_path / "blank.csv"
    blank.write_bytes(b"")
    with pytest.raises(UserError, match="cannot read"):
        load_interactions(blank)


def test_load_interactions_parses_dates(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("user_id,item_id,timestamp\n1,2,2020-01-02\n1,3,2020-01-01\n")
    df = load_interactions(p)
    assert df.timestamp.iloc[0] > df.timestamp.iloc[1]


# --------------------------------------------------------------------------- ties in timestamps


def make_tied_log(lengths, seed=0):
    """Like make_log, but timestamps repeat in runs of 1-3 events (ties within a user), and the
    users also share timestamp values with each other."""
    rng = np.random.default_rng(seed)
    rows = []
    for u, n in enumerate(lengths):
        items = rng.choice(1000, size=n, replace=False) + 100
        times = np.cumsum(rng.random(n) < 0.5) * 10  # non-decreasing, ~half the steps tied
        rows += [(f"u{u}", int(i), int(t)) for i, t in zip(items, times)]
    return pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])


def split_state(split, n=12):
    users = np.arange(split.n_users)
    return {
        "user_ids": split.user_ids.tolist(),
        "item_ids": split.item_ids.tolist(),
        "train": (split.train.items.tolist(), split.train.offsets.tolist()),
        "holdout": (split.holdout.items.tolist(), split.holdout.offsets.tolist()),
        "val": split.val_users.tolist(),
        "test": split.test_users.tolist(),
        "targets": split.targets(users, n).tolist(),
        "groups": split.target_groups(users, n).tolist(),
        "item_counts": split.item_counts.tolist(),
    }


def test_tied_log_split_does_not_depend_on_row_order():
    df = make_tied_log([25, 30, 12, 40, 15, 11, 8, 22, 19, 14])
    # the log does have ties inside held-out parts, otherwise the test would prove nothing
    assert df.duplicated(["user_id", "timestamp"]).sum() > 20
    reference = split_state(split_interactions(df, last_n_items=10, validation_size=3, random_state=0))
    assert any(len(set(row) - {-1}) < 10 for row in reference["groups"] if row[0] != -1)
    for seed in range(5):
        shuffled = df.sample(frac=1, random_state=seed).reset_index(drop=True)
        assert not shuffled.equals(df)
        got = split_state(split_interactions(shuffled, last_n_items=10, validation_size=3, random_state=0))
        assert got == reference, seed


def test_tied_log_order_is_time_then_item_id():
    # Independent expectation per user: pandas sort by (timestamp, item_id), mapped to indices.
    df = make_tied_log([25, 30, 12, 40, 15], seed=3).sample(frac=1, random_state=1)
    split = split_interactions(df, last_n_items=10, validation_size=None)
    for u, uid in enumerate(split.user_ids):
        rows = df[df.user_id == uid].sort_values(["timestamp", "item_id"])
        full = np.concatenate([split.train[u], split.holdout[u]])
        assert split.item_ids[full - 1].tolist() == rows.item_id.tolist()


def hand_tied_log():
    """Two evaluable users for last_n_items=5 (rows in a scrambled file order).

    a: (item, time) = (11, 1), (12, 2), (70, 5), (60, 5), (80, 7), (90, 9), (15, 9)
       -> time order, ties by item id: 11, 12 | 60, 70, 80, 15, 90
          held-out times [5, 5, 7, 9, 9] -> groups [0, 0, 1, 2, 2]: 4 of 5 positions tied
    b: (item, time) = (21, 1), (22, 2), (23, 3), (24, 3), (25, 4), (26, 5), (27, 6), (28, 7)
       -> 21, 22, 23 | 24, 25, 26, 27, 28: the tie at time 3 straddles train and holdout, so
          no held-out item shares its time with another held-out one: groups [0, 1, 2, 3, 4]
    c: 3 events, train-only (3 <= 5).
    Tied share of held-out positions: 4 / (5 + 5) = 40.0 %.
    """
    rows = [
        ("a", 90, 9), ("b", 24, 3), ("a", 70, 5), ("c", 31, 1), ("b", 28, 7), ("a", 11, 1),
        ("b", 23, 3), ("a", 15, 9), ("b", 21, 1), ("a", 60, 5), ("c", 32, 2), ("b", 26, 5),
        ("a", 80, 7), ("b", 22, 2), ("a", 12, 2), ("b", 27, 6), ("b", 25, 4), ("c", 33, 3),
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])


def test_tied_holdout_order_and_groups_by_hand():
    split = split_interactions(hand_tied_log(), last_n_items=5, validation_size=None)
    assert split.user_ids.tolist() == ["a", "b", "c"]

    def ids(seq):
        return split.item_ids[np.asarray(seq) - 1].tolist()

    assert ids(split.train[0]) == [11, 12]
    assert ids(split.holdout[0]) == [60, 70, 80, 15, 90]  # ties by ascending item id
    assert ids(split.train[1]) == [21, 22, 23]  # 23 < 24 at time 3: 23 stays in train
    assert ids(split.holdout[1]) == [24, 25, 26, 27, 28]
    assert ids(split.train[2]) == [31, 32, 33] and len(split.holdout[2]) == 0
    users = np.array([0, 1, 2])
    assert split.target_groups(users, 5).tolist() == [[0, 0, 1, 2, 2], [0, 1, 2, 3, 4], [-1] * 5]
    # longer than the holdout: padded with -1, aligned with the 0 padding of targets
    groups7 = split.target_groups(users, 7)
    assert groups7.tolist() == [[0, 0, 1, 2, 2, -1, -1], [0, 1, 2, 3, 4, -1, -1], [-1] * 7]
    np.testing.assert_array_equal(groups7 == -1, split.targets(users, 7) == 0)
    # shorter: the first n, like targets
    assert split.target_groups(users, 3).tolist() == [[0, 0, 1], [0, 1, 2], [-1] * 3]
    assert split.target_groups(np.array([1, 0]), 2).tolist() == [[0, 1], [0, 0]]


def test_tie_warning_reports_share_of_tied_positions(caplog):
    caplog.set_level(logging.INFO, logger="seqrec.data")
    split_interactions(hand_tied_log(), last_n_items=5, validation_size=None)
    warnings = [r for r in caplog.records if r.name == "seqrec.data" and r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "40.0 %" in warnings[0].getMessage()  # 4 of 10 held-out positions (docstring above)


def test_no_tie_warning_without_ties(caplog):
    caplog.set_level(logging.INFO, logger="seqrec.data")
    # Distinct times within each user; a's last held-out time (11) equals b's first one (11),
    # so equal times in *different* users must neither warn nor merge groups across users.
    rows = [("a", 100 + t, t) for t in range(12)] + [("b", 200 + t, t) for t in range(9, 21)]
    df = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    split = split_interactions(df, last_n_items=10, validation_size=None)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert any(r.name == "seqrec.data" for r in caplog.records)  # the info line was captured
    assert split.target_groups(np.array([0, 1]), 10).tolist() == [list(range(10))] * 2
    # and make_log (time = 10 * index for every user) has no ties either
    caplog.clear()
    split_interactions(make_log([20, 15, 30]), validation_size=None)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
