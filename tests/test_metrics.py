"""Tests for seqrec.evaluation.metrics: hand-computed cases, agreement with the reference, helpers."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
import torch

from seqrec.core.errors import UserError
from seqrec.evaluation.metrics import (
    compute_metrics,
    format_metrics,
    metric_names,
    per_position_table,
    per_user_metrics,
    plot_per_position,
    prefixed,
    reference_metrics,
)

BOTH = pytest.mark.parametrize("metrics_fn", [compute_metrics, reference_metrics])
LOG2_3 = math.log2(3)  # 1 / LOG2_3 = 0.6309: discount of rank 2


def assert_same(a: dict[str, float], b: dict[str, float]) -> None:
    assert list(a) == list(b)
    for name in a:
        if math.isnan(a[name]):
            assert math.isnan(b[name]), name
        else:
            assert a[name] == pytest.approx(b[name], rel=1e-9, abs=1e-12), name


# --------------------------------------------------------------------------------------------
# hand-computed cases


@BOTH
def test_two_users_by_hand(metrics_fn):
    # K = 3, T = 3, n_items = 8.
    # User A: recs [1, 2, 3], targets [2, 5, 1] -> R = {1, 2, 5}, hits at ranks 1 and 2.
    #   recall 2/3, precision 2/3
    #   DCG = 1/log2(2) + 1/log2(3) = 1 + 0.63093 = 1.63093
    #   IDCG (min(3, 3) = 3 hits) = 1 + 0.63093 + 1/log2(4) = 2.13093 -> NDCG = 0.76536
    #   AP = (P@1 + P@2) / 3 = (1 + 1) / 3 = 2/3
    # User B: recs [4, 6, 7], targets [7, 8, 0] -> R = {7, 8}, hit at rank 3.
    #   recall 1/2, precision 1/3
    #   DCG = 1/log2(4) = 0.5, IDCG (2 hits) = 1.63093 -> NDCG = 0.30657
    #   AP = P@3 / min(2, 3) = (1/3) / 2 = 1/6
    recs = np.array([[1, 2, 3], [4, 6, 7]])
    targets = np.array([[2, 5, 1], [7, 8, 0]])
    # train counts of items 1..8: total 16, so -log2(pop) is 1, 2, 3, 4, 4, 4(unseen->1), 4, 4
    item_counts = np.array([0, 8, 4, 2, 1, 1, 0, 0, 0])
    m = metrics_fn(recs, targets, item_counts, n_items=8, k=3)

    assert list(m) == metric_names(k=3, n_positions=3)
    ndcg_a = (1 + 1 / LOG2_3) / (1 + 1 / LOG2_3 + 0.5)
    ndcg_b = 0.5 / (1 + 1 / LOG2_3)
    assert ndcg_a == pytest.approx(0.76536, abs=1e-5)
    assert ndcg_b == pytest.approx(0.30657, abs=1e-5)
    assert m["ndcg@3"] == pytest.approx((ndcg_a + ndcg_b) / 2)
    assert m["map@3"] == pytest.approx((2 / 3 + 1 / 6) / 2)  # 5/12
    assert m["recall@3"] == pytest.approx((2 / 3 + 1 / 2) / 2)  # 7/12
    assert m["precision@3"] == pytest.approx((2 / 3 + 1 / 3) / 2)  # 1/2
    # per position: pos0 targets 2 (A, hit) and 7 (B, hit) -> 2/2; pos1 targets 5 and 8, both
    # missed -> 0/2; pos2 only A has one (item 1, hit) -> 1/1, B is excluded.
    assert m["recall@3_pos0"] == pytest.approx(1.0)
    assert m["recall@3_pos1"] == pytest.approx(0.0)
    assert m["recall@3_pos2"] == pytest.approx(1.0)
    # recommended {1, 2, 3, 4, 6, 7}: coverage 6/8; each once in 6 slots: entropy ln 6;
    # novelty = mean(1, 2, 3, 4, 4, 4) = 3 (item 6 and 7 have 0 counts -> counted as 1)
    assert m["coverage@3"] == pytest.approx(0.75)
    assert m["entropy@3"] == pytest.approx(math.log(6))
    assert m["novelty@3"] == pytest.approx(3.0)


@BOTH
def test_fewer_relevant_than_k(metrics_fn):
    # K = 5, n_items = 10.
    # User A: R = {3} (one target, T = 2 with padding), hit at rank 2.
    #   recall 1, precision 1/5, NDCG = (1/log2 3) / 1 = 0.63093, AP = P@2 / min(1, 5) = 1/2
    # User B: R = {6, 9}, hits at ranks 1 and 4.
    #   recall 1, precision 2/5, NDCG = (1 + 1/log2 5) / (1 + 1/log2 3) = 0.87722,
    #   AP = (P@1 + P@4) / min(2, 5) = (1 + 2/4) / 2 = 3/4
    recs = np.array([[1, 3, 2, 4, 5], [6, 1, 2, 9, 3]])
    targets = np.array([[3, 0], [9, 6]])
    item_counts = np.ones(11, dtype=np.int64)
    m = metrics_fn(recs, targets, item_counts, n_items=10, k=5)
    ndcg_b = (1 + 1 / math.log2(5)) / (1 + 1 / LOG2_3)
    assert ndcg_b == pytest.approx(0.87722, abs=1e-5)
    assert m["recall@5"] == pytest.approx(1.0)
    assert m["precision@5"] == pytest.approx((1 / 5 + 2 / 5) / 2)
    assert m["ndcg@5"] == pytest.approx((1 / LOG2_3 + ndcg_b) / 2)
    assert m["map@5"] == pytest.approx((1 / 2 + 3 / 4) / 2)
    # pos0: 3 (A) and 9 (B) both found; pos1: only B has one (6), found
    assert m["recall@5_pos0"] == 1.0 and m["recall@5_pos1"] == 1.0


@BOTH
def test_more_relevant_than_k(metrics_fn):
    # K = 2, R = {1, 2, 3}: recs [1, 2] -> both hit. IDCG and the MAP denominator use
    # min(|R|, K) = 2, so NDCG = MAP = precision = 1 while recall = 2/3.
    m = metrics_fn(np.array([[1, 2]]), np.array([[1, 2, 3]]), np.ones(4, dtype=int), 3, k=2)
    assert m["ndcg@2"] == pytest.approx(1.0)
    assert m["map@2"] == pytest.approx(1.0)
    assert m["precision@2"] == pytest.approx(1.0)
    assert m["recall@2"] == pytest.approx(2 / 3)
    assert [m[f"recall@2_pos{p}"] for p in range(3)] == [1.0, 1.0, 0.0]


@BOTH
def test_duplicate_recommendation_counts_once(metrics_fn):
    # recs [5, 5, 2], target {2}: the second 5 is an empty slot; hit at rank 3.
    # NDCG = (1/log2 4) / 1 = 0.5, AP = P@3 = 1/3, precision 1/3.
    # Beyond accuracy sees two slots (5 and 2): coverage 2/6, entropy ln 2,
    # novelty with counts 5 -> 2/8, 2 -> 4/8: mean(2, 1) = 1.5
    item_counts = np.array([0, 1, 4, 0, 0, 2, 1])  # total 8
    m = metrics_fn(np.array([[5, 5, 2]]), np.array([[2]]), item_counts, n_items=6, k=3)
    assert m["ndcg@3"] == pytest.approx(0.5)
    assert m["map@3"] == pytest.approx(1 / 3)
    assert m["precision@3"] == pytest.approx(1 / 3)
    assert m["coverage@3"] == pytest.approx(2 / 6)
    assert m["entropy@3"] == pytest.approx(math.log(2))
    assert m["novelty@3"] == pytest.approx(1.5)


@BOTH
def test_entropy_and_coverage_uneven(metrics_fn):
    # Lists [1, 2] and [1, 3]: occurrences 1 -> 2, 2 -> 1, 3 -> 1 of 4 slots.
    # entropy = -(0.5 ln 0.5 + 2 * 0.25 ln 0.25) = 1.03972; coverage 3/10.
    # novelty with all counts 1 (total 10): every item has -log2(1/10) = 3.32193.
    recs = np.array([[1, 2], [1, 3]])
    m = metrics_fn(recs, np.array([[9], [9]]), np.ones(11, dtype=int), n_items=10, k=2)
    assert m["entropy@2"] == pytest.approx(-(0.5 * math.log(0.5) + 0.5 * math.log(0.25)))
    assert m["entropy@2"] == pytest.approx(1.03972, abs=1e-5)
    assert m["coverage@2"] == pytest.approx(0.3)
    assert m["novelty@2"] == pytest.approx(math.log2(10))
    assert m["ndcg@2"] == 0.0 and m["map@2"] == 0.0 and m["recall@2"] == 0.0


@BOTH
def test_users_without_targets_are_excluded_from_accuracy(metrics_fn):
    # User B has no targets: accuracy is user A's alone (hit at rank 1, |R| = 1 -> all 1 but
    # precision 1/2); user B's list still counts for coverage (items 1, 3, 4 of 4).
    recs = np.array([[1, 2], [3, 4]])
    targets = np.array([[1], [0]])
    m = metrics_fn(recs, targets, np.ones(5, dtype=int), n_items=4, k=2)
    assert m["ndcg@2"] == m["map@2"] == m["recall@2"] == pytest.approx(1.0)
    assert m["precision@2"] == pytest.approx(0.5)
    assert m["recall@2_pos0"] == pytest.approx(1.0)
    assert m["coverage@2"] == pytest.approx(1.0)


@BOTH
def test_no_user_with_targets_gives_nan_accuracy(metrics_fn):
    m = metrics_fn(np.array([[1, 2]]), np.array([[0, 0]]), np.ones(3, dtype=int), n_items=2, k=2)
    for name in ["map@2", "ndcg@2", "recall@2", "precision@2", "recall@2_pos0", "recall@2_pos1"]:
        assert math.isnan(m[name])
    assert m["coverage@2"] == pytest.approx(1.0)


@BOTH
def test_k_and_n_positions(metrics_fn):
    # recs has 4 columns, k = 2 uses the first two. targets T = 2, n_positions = 4:
    # positions 2 and 3 exist for no user -> nan; n_positions = 1 reports only pos0.
    recs = np.array([[1, 2, 3, 4]])
    targets = np.array([[3, 1]])
    m = metrics_fn(recs, targets, np.ones(5, dtype=int), n_items=4, k=2, n_positions=4)
    assert list(m) == metric_names(k=2, n_positions=4)
    assert m["recall@2"] == pytest.approx(0.5)  # only item 1 is in the top 2
    assert m["recall@2_pos0"] == 0.0 and m["recall@2_pos1"] == 1.0
    assert math.isnan(m["recall@2_pos2"]) and math.isnan(m["recall@2_pos3"])
    m1 = metrics_fn(recs, targets, np.ones(5, dtype=int), n_items=4, k=2, n_positions=1)
    assert list(m1) == metric_names(k=2, n_positions=1)


@BOTH
def test_perfect_recommendations(metrics_fn):
    rng = np.random.default_rng(3)
    n_users, n_items, k = 50, 200, 10
    recs = np.stack([rng.permutation(n_items)[:k] + 1 for _ in range(n_users)])
    # full targets = the list in some order; a few users have only the first 1..9 of their list
    targets = np.stack([rng.permutation(row) for row in recs])
    lengths = rng.integers(1, k + 1, size=n_users)
    lengths[:25] = k
    for u, n in enumerate(lengths):
        targets[u, n:] = 0
        relevant = targets[u, :n]
        recs[u] = np.concatenate([relevant, [i for i in recs[u] if i not in set(relevant)]])
    m = metrics_fn(recs, targets, np.ones(n_items + 1, dtype=int), n_items=n_items, k=k)
    assert m["ndcg@10"] == pytest.approx(1.0)
    assert m["map@10"] == pytest.approx(1.0)
    assert m["recall@10"] == pytest.approx(1.0)
    for p in range(k):
        assert m[f"recall@10_pos{p}"] == pytest.approx(1.0)


# --------------------------------------------------------------------------------------------
# agreement with the reference, input types


def random_case(seed: int):
    """Small catalogues so duplicates, empty slots, padding and target-less users all occur."""
    rng = np.random.default_rng(seed)
    n_users = int(rng.integers(1, 300))
    k = int(rng.integers(1, 13))
    n_targets = int(rng.integers(1, 13))
    n_items = int(rng.integers(max(k, 2), 60))
    recs = rng.integers(1, n_items + 1, size=(n_users, k + int(rng.integers(0, 3))))
    recs[rng.random(recs.shape) < 0.03] = 0  # empty slots
    targets = rng.integers(1, n_items + 1, size=(n_users, n_targets))
    lengths = rng.integers(0, n_targets + 1, size=n_users)
    targets[np.arange(n_targets)[None, :] >= lengths[:, None]] = 0
    item_counts = rng.zipf(1.5, size=n_items + 1) - 1
    item_counts[0] = 0
    item_counts[1] += 1  # at least one train interaction
    n_positions = None if seed % 2 else int(rng.integers(0, n_targets + 3))
    return recs, targets, item_counts, n_items, k, n_positions


@pytest.mark.parametrize("seed", range(12))
def test_agrees_with_reference(seed):
    recs, targets, item_counts, n_items, k, n_positions = random_case(seed)
    fast = compute_metrics(recs, targets, item_counts, n_items, k=k, n_positions=n_positions)
    slow = reference_metrics(recs, targets, item_counts, n_items, k=k, n_positions=n_positions)
    assert_same(fast, slow)


def test_agrees_with_reference_large_catalogue():
    # int32 internal ids (n_items >= 2**15) and distinct-item lists like real recommendations
    rng = np.random.default_rng(7)
    n_users, n_items = 500, 40_000
    recs = np.argsort(rng.random((n_users, 3000)), axis=1)[:, :10] + n_items - 3000 + 1
    others = rng.integers(1, n_items + 1, size=(n_users, 10))
    targets = np.where(rng.random((n_users, 10)) < 0.3, recs[:, ::-1], others)
    item_counts = rng.integers(0, 50, size=n_items + 1)
    assert_same(
        compute_metrics(recs, targets, item_counts, n_items),
        reference_metrics(recs, targets, item_counts, n_items),
    )


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32])
def test_torch_and_numpy_inputs_agree(dtype):
    recs, targets, item_counts, n_items, k, _ = random_case(100)
    expected = compute_metrics(recs, targets, item_counts, n_items, k=k)
    got = compute_metrics(
        torch.as_tensor(recs, dtype=dtype),
        torch.as_tensor(targets, dtype=dtype),
        torch.as_tensor(item_counts),
        n_items,
        k=k,
    )
    assert_same(got, expected)
    slow = reference_metrics(
        torch.as_tensor(recs), torch.as_tensor(targets), item_counts, n_items, k=k
    )
    assert_same(slow, expected)


def test_non_contiguous_and_unsigned_inputs():
    recs, targets, item_counts, n_items, k, _ = random_case(5)
    expected = compute_metrics(recs, targets, item_counts, n_items, k=k)
    wide = np.zeros((recs.shape[0], recs.shape[1] * 2), dtype=np.int64)
    wide[:, ::2] = recs
    assert_same(compute_metrics(wide[:, ::2], targets, item_counts, n_items, k=k), expected)
    unsigned = compute_metrics(
        recs.astype(np.uint16), targets.astype(np.uint32), item_counts, n_items, k=k
    )
    assert_same(unsigned, expected)
    lists = compute_metrics(recs.tolist(), targets.tolist(), item_counts.tolist(), n_items, k=k)
    assert_same(lists, expected)


@pytest.mark.parametrize(
    "recs, targets, counts, n_items, k, message",
    [
        ([[1, 2]], [[1], [2]], [0, 1, 1], 2, 2, "users"),
        ([[1, 3]], [[1]], [0, 1, 1], 2, 2, "item ids"),
        ([[1, -1]], [[1]], [0, 1, 1], 2, 2, "item ids"),
        ([[1, 2]], [[0, 1]], [0, 1, 1], 2, 2, "padded"),
        ([[1, 2]], [[1]], [0, 1], 2, 2, "n_items \\+ 1"),
        ([[1, 2]], [[1]], [0, 0, 0], 2, 2, "at least one"),
        ([[1, 2]], [[1]], [0, 1, 1], 2, 3, "fewer than k"),
        ([[1.0, 2.0]], [[1]], [0, 1, 1], 2, 2, "integer"),
        ([1, 2], [[1]], [0, 1, 1], 2, 2, "matrix"),
    ],
)
def test_bad_inputs_raise_user_error(recs, targets, counts, n_items, k, message):
    with pytest.raises(UserError, match=message):
        compute_metrics(np.array(recs), np.array(targets), np.array(counts), n_items, k=k)


# --------------------------------------------------------------------------------------------
# naming, formatting, tables, plots


def test_prefixed():
    m = {"ndcg@10": 0.5, "recall@10_pos0": 0.25}
    assert prefixed(m, "test") == {"test_ndcg@10": 0.5, "test_recall@10_pos0": 0.25}
    assert prefixed(m, "val_") == {"val_ndcg@10": 0.5, "val_recall@10_pos0": 0.25}
    assert prefixed(m, "") == m


def test_format_metrics_order_and_values():
    recs, targets, item_counts, n_items, _, _ = random_case(1)
    m = compute_metrics(recs[:, :1], targets[:, :1], item_counts, n_items, k=1, n_positions=12)
    shuffled = dict(reversed(list(m.items())))
    text = format_metrics(shuffled, "test")
    lines = text.splitlines()
    names = [line.split()[0] for line in lines]
    assert names == [f"test_{name}" for name in metric_names(k=1, n_positions=12)]
    first = lines[0].split()
    assert first[0] == "test_map@1" and first[1] == f"{m['map@1']:.4f}"
    assert all(len(line.split()[1].split(".")[1]) == 4 for line in lines if "nan" not in line)
    assert "test_recall@1_pos11 nan" in " ".join(text.split())
    assert format_metrics({"ndcg@10": 0.12345}) == "ndcg@10 0.1235"


def test_per_position_table_and_plot(tmp_path):
    m = {f"recall@10_pos{p}": 0.3 - 0.02 * p for p in range(10)} | {"ndcg@10": 0.2}
    table = per_position_table(prefixed(m, "test"))
    assert list(table.columns) == ["position", "recall@10"]
    assert table["position"].tolist() == list(range(10))
    assert table["recall@10"].tolist() == pytest.approx([0.3 - 0.02 * p for p in range(10)])
    flat = pd.DataFrame({"position": range(10), "recall@10": [0.15] * 10})
    path = plot_per_position({"top-k": table, "greedy": flat}, tmp_path / "plots" / "pos.png")
    assert path.exists()
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_per_position_table_needs_position_keys():
    with pytest.raises(UserError):
        per_position_table({"ndcg@10": 0.1})


# --------------------------------------------------------------------------------------------
# per-user values, ndcg@k_pos{p}, tie-averaged per-position recall, intervals in format_metrics


def random_groups(targets: np.ndarray, rng: np.random.Generator, p_new: float = 0.5) -> np.ndarray:
    """Tie groups like SplitData.target_groups: 0, 1, 2, ... non-decreasing along each row (a new
    group starts with probability ``p_new``), -1 on padding."""
    new = rng.random(targets.shape) < p_new
    new[:, 0] = True
    groups = np.cumsum(new, axis=1) - 1
    groups[targets == 0] = -1
    return groups


def rank_of(recs_row, k: int) -> dict[int, int]:
    """item -> 1-based rank of its first occurrence among the first k slots (0 = empty slot)."""
    ranks: dict[int, int] = {}
    for rank, item in enumerate(recs_row[:k], start=1):
        if item != 0 and int(item) not in ranks:
            ranks[int(item)] = rank
    return ranks


def test_per_user_metrics_by_hand():
    # K = 3, T = 3, n_items = 9 (users A and B as in test_two_users_by_hand, C has no target).
    # A: recs [1, 2, 3], targets [2, 5, 1]: recall 2/3, precision 2/3, AP 2/3,
    #    NDCG (1 + 1/log2 3) / (1 + 1/log2 3 + 1/2).
    #    pos0: item 2 at rank 2 -> recall 1, ndcg 1/log2 3; pos1: item 5 missing -> 0, 0;
    #    pos2: item 1 at rank 1 -> 1, 1/log2 2 = 1.
    # B: recs [4, 6, 7], targets [7, 8, 0]: recall 1/2, precision 1/3, AP (1/3) / 2 = 1/6,
    #    NDCG (1/2) / (1 + 1/log2 3). pos0: item 7 at rank 3 -> 1, 1/log2 4 = 1/2;
    #    pos1: item 8 missing -> 0, 0; pos2: no third target -> nan, nan.
    # C: recs [1, 2, 3], no targets -> nan in every metric.
    recs = np.array([[1, 2, 3], [4, 6, 7], [1, 2, 3]])
    targets = np.array([[2, 5, 1], [7, 8, 0], [0, 0, 0]])
    per_user = per_user_metrics(recs, targets, n_items=9, k=3)
    assert set(per_user) == set(metric_names(k=3, n_positions=3)[:-3])
    nan = math.nan
    expected = {
        "recall@3": [2 / 3, 1 / 2, nan],
        "precision@3": [2 / 3, 1 / 3, nan],
        "map@3": [2 / 3, 1 / 6, nan],
        "ndcg@3": [(1 + 1 / LOG2_3) / (1 + 1 / LOG2_3 + 0.5), 0.5 / (1 + 1 / LOG2_3), nan],
        "recall@3_pos0": [1.0, 1.0, nan],
        "recall@3_pos1": [0.0, 0.0, nan],
        "recall@3_pos2": [1.0, nan, nan],
        "ndcg@3_pos0": [1 / LOG2_3, 0.5, nan],
        "ndcg@3_pos1": [0.0, 0.0, nan],
        "ndcg@3_pos2": [1.0, nan, nan],
    }
    for name, values in expected.items():
        got = per_user[name]
        assert isinstance(got, np.ndarray) and got.shape == (3,), name
        np.testing.assert_allclose(got, values, rtol=1e-12, atol=0, equal_nan=True, err_msg=name)
    # positions no user has (n_positions > T) are nan for every user
    wide = per_user_metrics(recs, targets, n_items=9, k=3, n_positions=4)
    assert np.isnan(wide["recall@3_pos3"]).all() and np.isnan(wide["ndcg@3_pos3"]).all()
    # n_positions = 1 keeps only position 0
    narrow = per_user_metrics(recs, targets, n_items=9, k=3, n_positions=1)
    assert set(narrow) == set(metric_names(k=3, n_positions=1)[:-3])


@pytest.mark.parametrize("seed", range(12))
def test_per_user_means_are_compute_metrics(seed):
    # The docstring's contract: the mean over the non-nan users of each per-user array is
    # compute_metrics's value (and a column that is nan for every user is nan there).
    recs, targets, item_counts, n_items, k, n_positions = random_case(seed)
    n_pos = targets.shape[1] if n_positions is None else n_positions
    groups = random_groups(targets, np.random.default_rng(1000 + seed))
    for g in (None, groups):
        per_user = per_user_metrics(recs, targets, n_items, k=k, n_positions=n_positions, groups=g)
        m = compute_metrics(recs, targets, item_counts, n_items, k=k, n_positions=n_positions, groups=g)
        assert set(per_user) == set(metric_names(k, n_pos, tie_groups=g is not None)[:-3])
        for name, values in per_user.items():
            assert values.shape == (recs.shape[0],), name
            if np.isnan(values).all():
                assert math.isnan(m[name]), name
            else:
                assert m[name] == pytest.approx(np.nanmean(values), rel=1e-12, abs=1e-15), name
            # bounds that hold for every user: all accuracy values lie in [0, 1]
            finite = values[~np.isnan(values)]
            assert ((finite >= 0) & (finite <= 1)).all(), name
        for p in range(n_pos):
            rec_p, ndcg_p = per_user[f"recall@{k}_pos{p}"], per_user[f"ndcg@{k}_pos{p}"]
            # same users have a p-th target; a found target has gain in [1/log2(k + 1), 1],
            # a missing one 0, so recall/log2(k+1) <= ndcg_pos <= recall.
            np.testing.assert_array_equal(np.isnan(rec_p), np.isnan(ndcg_p))
            ok = ~np.isnan(rec_p)
            assert (ndcg_p[ok] <= rec_p[ok] + 1e-12).all()
            assert (ndcg_p[ok] >= rec_p[ok] / math.log2(k + 1) - 1e-12).all()


def test_per_user_ndcg_pos_is_inverse_log_rank():
    # Independent per-user check of ndcg@k_pos{p} = 1 / log2(r + 1) for the target's rank r
    # (first occurrence among the first k slots), 0 if not listed, nan if no p-th target.
    recs, targets, _, n_items, k, _ = random_case(3)
    per_user = per_user_metrics(recs, targets, n_items, k=k)
    for u in range(recs.shape[0]):
        ranks = rank_of(recs[u], k)
        for p in range(targets.shape[1]):
            got = per_user[f"ndcg@{k}_pos{p}"][u]
            item = int(targets[u, p])
            if item == 0:
                assert math.isnan(got)
            elif item in ranks:
                assert got == pytest.approx(1 / math.log2(ranks[item] + 1), rel=1e-12)
            else:
                assert got == 0.0


@BOTH
def test_ndcg_pos_by_hand(metrics_fn):
    # Users A and B of test_per_user_metrics_by_hand, plus D whose list repeats an item:
    # D: recs [5, 5, 2], targets [2, 9, 0]: the repeated 5 is an empty slot but keeps its rank,
    #    so item 2 is at rank 3 -> ndcg_pos0 = 1/log2 4 = 1/2; item 9 missing -> 0.
    # pos0 over A, B, D: (1/log2 3 + 1/2 + 1/2) / 3; pos1: (0 + 0 + 0) / 3 = 0;
    # pos2: only A has one (rank 1) -> 1.
    recs = np.array([[1, 2, 3], [4, 6, 7], [5, 5, 2]])
    targets = np.array([[2, 5, 1], [7, 8, 0], [2, 9, 0]])
    m = metrics_fn(recs, targets, np.ones(10, dtype=int), n_items=9, k=3, n_positions=4)
    assert list(m) == metric_names(k=3, n_positions=4)
    assert m["ndcg@3_pos0"] == pytest.approx((1 / LOG2_3 + 0.5 + 0.5) / 3, rel=1e-12)
    assert m["ndcg@3_pos1"] == 0.0
    assert m["ndcg@3_pos2"] == pytest.approx(1.0, rel=1e-12)
    assert math.isnan(m["ndcg@3_pos3"])
    # the recall counterparts: pos0 all three found, pos1 none, pos2 A's found
    assert [m[f"recall@3_pos{p}"] for p in range(3)] == [1.0, 0.0, 1.0]


# tie case: K = 3, n_items = 9
#   A: recs [1, 7, 8], targets [1, 2, 3], groups [0, 0, 1]: found [yes, no, no]
#      pos = [1, 0, 0]; the {1, 2} group has 1 of 2 found -> tpos0 = tpos1 = 1/2; tpos2 = 0.
#   B: recs [5, 6, 9], targets [4, 5, 6], groups [0, 0, 0]: found [no, yes, yes]
#      pos = [0, 1, 1]; one group with 2 of 3 found -> tpos = 2/3 everywhere.
#   C: recs [4, 1, 2], targets [3, 4, 0], groups [0, 0, -1]: found [no, yes]
#      pos = [0, 1, nan]; tpos = [1/2, 1/2, nan].
TIE_RECS = np.array([[1, 7, 8], [5, 6, 9], [4, 1, 2]])
TIE_TARGETS = np.array([[1, 2, 3], [4, 5, 6], [3, 4, 0]])
TIE_GROUPS = np.array([[0, 0, 1], [0, 0, 0], [0, 0, -1]])


@BOTH
def test_tied_recall_by_hand(metrics_fn):
    m = metrics_fn(TIE_RECS, TIE_TARGETS, np.ones(10, dtype=int), n_items=9, k=3, groups=TIE_GROUPS)
    assert list(m) == metric_names(k=3, n_positions=3, tie_groups=True)
    # pos means: (1 + 0 + 0) / 3, (0 + 1 + 1) / 3, (0 + 1) / 2
    assert [m[f"recall@3_pos{p}"] for p in range(3)] == pytest.approx([1 / 3, 2 / 3, 1 / 2], rel=1e-12)
    # tpos means: (1/2 + 2/3 + 1/2) / 3 = 5/9 twice, then (0 + 2/3) / 2 = 1/3
    assert [m[f"recall@3_tpos{p}"] for p in range(3)] == pytest.approx([5 / 9, 5 / 9, 1 / 3], rel=1e-12)
    # without groups there are no tpos keys
    plain = metrics_fn(TIE_RECS, TIE_TARGETS, np.ones(10, dtype=int), n_items=9, k=3)
    assert not any("tpos" in name for name in plain)


def test_tied_recall_per_user_by_hand():
    per_user = per_user_metrics(TIE_RECS, TIE_TARGETS, n_items=9, k=3, groups=TIE_GROUPS)
    nan = math.nan
    expected = {
        "recall@3_tpos0": [1 / 2, 2 / 3, 1 / 2],
        "recall@3_tpos1": [1 / 2, 2 / 3, 1 / 2],
        "recall@3_tpos2": [0.0, 2 / 3, nan],
        "recall@3_pos0": [1.0, 0.0, 0.0],
        "recall@3_pos1": [0.0, 1.0, 1.0],
        "recall@3_pos2": [0.0, 1.0, nan],
    }
    for name, values in expected.items():
        np.testing.assert_allclose(per_user[name], values, rtol=1e-12, equal_nan=True, err_msg=name)


@pytest.mark.parametrize("seed", range(4))
def test_tied_recall_without_ties_is_recall_pos(seed):
    # groups = 0, 1, 2, ... (every target its own group): the share found of a one-item group
    # is exactly that item's 0/1, so tpos must equal pos bit for bit (nan where absent).
    recs, targets, item_counts, n_items, k, n_positions = random_case(seed)
    groups = np.broadcast_to(np.arange(targets.shape[1]), targets.shape).copy()
    groups[targets == 0] = -1
    per_user = per_user_metrics(recs, targets, n_items, k=k, n_positions=n_positions, groups=groups)
    m = compute_metrics(recs, targets, item_counts, n_items, k=k, n_positions=n_positions, groups=groups)
    n_pos = targets.shape[1] if n_positions is None else n_positions
    for p in range(n_pos):
        np.testing.assert_array_equal(per_user[f"recall@{k}_tpos{p}"], per_user[f"recall@{k}_pos{p}"])
        assert m[f"recall@{k}_tpos{p}"] == pytest.approx(m[f"recall@{k}_pos{p}"], rel=1e-12, nan_ok=True)


def brute_force_tied_recall(recs: np.ndarray, targets: np.ndarray, groups: np.ndarray, k: int) -> np.ndarray:
    """[U, T]: the mean of recall_pos{p} over every order of the items inside each tie group
    (all permutations per group, product over groups), nan on padding."""
    out = np.full(targets.shape, np.nan)
    for u in range(targets.shape[0]):
        listed = set(rank_of(recs[u], k))
        n = int((targets[u] != 0).sum())
        items = [int(x) for x in targets[u, :n]]
        labels = groups[u, :n].tolist()
        blocks = [[p for p in range(n) if labels[p] == g] for g in dict.fromkeys(labels)]
        total = np.zeros(n)
        count = 0
        for perms in itertools.product(*(itertools.permutations(block) for block in blocks)):
            order = list(range(n))
            for block, perm in zip(blocks, perms):
                for dst, src in zip(block, perm):
                    order[dst] = src
            total += [items[src] in listed for src in order]  # recall_pos of this ordering
            count += 1
        out[u, :n] = total / count
    return out


@pytest.mark.parametrize("seed", range(3))
def test_tied_recall_matches_brute_force_over_orders(seed):
    # Small catalogue (so targets repeat and lists hit often), T <= 6, and groups of up to 6
    # tied items (at most 6! = 720 orders per user).
    rng = np.random.default_rng(50 + seed)
    n_users, n_items, k, n_targets = 40, 12, 4, 6
    recs = rng.integers(1, n_items + 1, size=(n_users, k))
    recs[rng.random(recs.shape) < 0.1] = 0
    targets = rng.integers(1, n_items + 1, size=(n_users, n_targets))
    lengths = rng.integers(0, n_targets + 1, size=n_users)
    targets[np.arange(n_targets)[None, :] >= lengths[:, None]] = 0
    groups = random_groups(targets, rng, p_new=0.4)
    assert (groups[:, 1:] == groups[:, :-1])[targets[:, 1:] != 0].any()  # the case has ties
    expected = brute_force_tied_recall(recs, targets, groups, k)
    per_user = per_user_metrics(recs, targets, n_items, k=k, groups=groups)
    got = np.stack([per_user[f"recall@{k}_tpos{p}"] for p in range(n_targets)], axis=1)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15, equal_nan=True)
    # and both aggregations agree with the brute-force means over users having position p
    for fn in (compute_metrics, reference_metrics):
        m = fn(recs, targets, np.ones(n_items + 1, dtype=int), n_items, k=k, groups=groups)
        for p in range(n_targets):
            column = expected[:, p]
            want = np.nanmean(column) if (~np.isnan(column)).any() else math.nan
            assert m[f"recall@{k}_tpos{p}"] == pytest.approx(want, rel=1e-12, nan_ok=True)


@pytest.mark.parametrize("seed", range(12))
def test_agrees_with_reference_with_groups(seed):
    recs, targets, item_counts, n_items, k, n_positions = random_case(seed)
    groups = random_groups(targets, np.random.default_rng(2000 + seed))
    fast = compute_metrics(recs, targets, item_counts, n_items, k=k, n_positions=n_positions, groups=groups)
    slow = reference_metrics(recs, targets, item_counts, n_items, k=k, n_positions=n_positions, groups=groups)
    n_pos = targets.shape[1] if n_positions is None else n_positions
    assert list(fast) == metric_names(k, n_pos, tie_groups=True)
    assert_same(fast, slow)


def test_groups_must_match_targets_shape():
    with pytest.raises(UserError, match="groups"):
        compute_metrics(TIE_RECS, TIE_TARGETS, np.ones(10, dtype=int), 9, k=3, groups=TIE_GROUPS[:, :2])


def test_format_metrics_with_intervals():
    # The documented line: value then the interval, 4 decimals each.
    text = format_metrics({"ndcg@10": 0.19604}, "test", intervals={"ndcg@10": (0.19018, 0.20191)})
    assert text == "test_ndcg@10 0.1960 [0.1902, 0.2019]"
    # Several metrics: names are padded (compare with whitespace collapsed); a metric without an
    # interval stays "name value"; interval keys are unprefixed names; an interval for a metric
    # that is not reported adds nothing.
    text = format_metrics(
        {"recall@10": 0.3, "ndcg@10": 0.19604, "recall@10_pos0": 0.25},
        "test",
        intervals={"ndcg@10": (0.19018, 0.20191), "recall@10_pos0": (0.2, 0.3), "map@10": (0.0, 1.0)},
    )
    lines = [" ".join(line.split()) for line in text.splitlines()]
    assert lines == [
        "test_ndcg@10 0.1960 [0.1902, 0.2019]",
        "test_recall@10 0.3000",
        "test_recall@10_pos0 0.2500 [0.2000, 0.3000]",
    ]
    # the first two fields stay aligned: every value starts in the same column
    starts = {line.index(" 0.") for line in text.splitlines()}
    assert len(starts) == 1


def test_compute_metrics_with_per_user_is_per_user_metrics():
    recs, targets, item_counts, n_items, k, _ = random_case(5)
    aggregate, per_user = compute_metrics(recs, targets, item_counts, n_items, k=k, with_per_user=True)
    assert_same(aggregate, compute_metrics(recs, targets, item_counts, n_items, k=k))
    expected = per_user_metrics(recs, targets, n_items, k=k)
    assert list(per_user) == list(expected)
    for name in expected:
        np.testing.assert_array_equal(per_user[name], expected[name])
