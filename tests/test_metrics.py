"""Tests for seqrec.metrics: hand-computed cases, agreement with the reference, helpers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from seqrec.errors import UserError
from seqrec.metrics import (
    compute_metrics,
    format_metrics,
    metric_names,
    per_position_table,
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
