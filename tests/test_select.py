"""generation.select.top_k: the k best scores of each row through segment maxima, against torch.topk."""

import pytest
import torch

from seqrec.generation.select import SEGMENT, top_k


@pytest.mark.parametrize("V,k", [(3707, 50), (3707, 20), (1600, 50), (800, 10), (8 * 400 + 5, 100)])
def test_same_values_and_items_as_torch_topk(V, k):
    """Distinct scores (continuous random values) with ~10 % banned (-inf), V not always a multiple of the
    segment: the same values and the same items, in the same order, as torch.topk."""
    g = torch.Generator().manual_seed(V + k)
    scores = torch.randn(37, V, generator=g)
    scores.masked_fill_(torch.rand(37, V, generator=g) < 0.1, float("-inf"))
    values, items = top_k(scores, k)
    want = torch.topk(scores, k, dim=1)
    assert torch.equal(values, want.values) and torch.equal(items, want.indices)


def test_the_best_columns_crowded_into_one_segment_and_the_tail():
    """The hard case for segments: the k best all in one segment (columns s, s + S, ...) or in the tail columns
    that belong to no segment; still the same as torch.topk."""
    V, k = 8 * 300 + 7, 12
    S = V // SEGMENT
    scores = torch.randn(4, V, generator=torch.Generator().manual_seed(0))
    scores[0, 5 + S * torch.arange(SEGMENT)] += 100  # all 8 columns of segment 5 are among the best
    scores[1, S * SEGMENT:] += 100  # the 7 tail columns are the best
    scores[2, :k] += 100  # the best in k different segments (columns 0 .. k-1)
    values, items = top_k(scores, k)
    want = torch.topk(scores, k, dim=1)
    assert torch.equal(values, want.values) and torch.equal(items, want.indices)


def test_fewer_allowed_items_than_k_and_ties():
    """Only 5 finite scores and k = 40: the 5 come first, as in torch.topk, then -inf at banned columns (which
    ones among equal scores is not specified). Ties: the values always equal torch.topk's."""
    V, k = 3707, 40
    scores = torch.full((2, V), float("-inf"))
    scores[0, torch.tensor([3, 900, 1800, 2500, 3700])] = torch.tensor([1.0, 5.0, 2.0, 4.0, 3.0])
    scores[1] = torch.randint(0, 6, (V,), generator=torch.Generator().manual_seed(1)).float()
    values, items = top_k(scores, k)
    want = torch.topk(scores, k, dim=1)
    assert torch.equal(values, want.values)
    assert items[0, :5].tolist() == [900, 2500, 3700, 1800, 3]
    assert torch.equal(scores.gather(1, items), values) and all(len(set(r.tolist())) == k for r in items)


def test_small_catalogues_and_empty_input_fall_back_to_torch_topk():
    scores = torch.randn(3, 100)
    assert torch.equal(top_k(scores, 50)[1], torch.topk(scores, 50, dim=1).indices)
    values, items = top_k(torch.zeros(0, 3707), 50)
    assert values.shape == (0, 50) and items.shape == (0, 50)
