"""The long-term split of PROTOCOL.md on small hand-made logs."""

import numpy as np
import pandas as pd
import pytest

from seqrec.data.split import Sequences, load_interactions, ragged_index, split_interactions
from seqrec.errors import UserError


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


def test_ties_keep_file_order_and_ids_can_be_strings():
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
    with pytest.raises(UserError, match="prepare_data.py"):
        load_interactions(tmp_path / "nope.csv")
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
