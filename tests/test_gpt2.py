"""Our GPT-2 against Hugging Face's GPT2LMHeadModel with the same weights, and its cache."""

import pytest
import torch

from seqrec.models.gpt2 import GPT2
from seqrec.models.hf_compat import from_hf_gpt2, to_hf_gpt2

transformers = pytest.importorskip("transformers")


@pytest.fixture
def model():
    torch.manual_seed(0)
    return GPT2(n_items=60, n_positions=24, n_embd=32, n_layer=2, n_head=2, dropout=0.1).eval()


def full_logits(model, x, mask=None):
    with torch.no_grad():
        return model.item_logits(model.encode(x, mask))


def test_same_logits_as_hf(model):
    hf = to_hf_gpt2(model)
    x = torch.randint(1, 61, (4, 16))
    with torch.no_grad():
        theirs = hf(input_ids=x).logits
    ours = full_logits(model, x)
    assert ours.shape == theirs.shape == (4, 16, 61)
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)
    # right padding: the real positions are unaffected by padding behind them
    xr = x.clone()
    xr[:2, 10:] = 0
    with torch.no_grad():
        theirs_r = hf(input_ids=xr, attention_mask=(xr != 0).long()).logits
    torch.testing.assert_close(full_logits(model, xr)[:, :10], theirs_r[:, :10], atol=1e-5, rtol=1e-5)


def test_round_trip_from_hf(model):
    back = from_hf_gpt2(to_hf_gpt2(model))
    x = torch.randint(1, 61, (2, 12))
    torch.testing.assert_close(full_logits(back, x), full_logits(model, x))


def test_left_padding_equals_unpadded(model):
    x = torch.randint(1, 61, (3, 9))
    padded = torch.cat([torch.zeros(3, 5, dtype=torch.long), x], 1)
    torch.testing.assert_close(full_logits(model, padded, padded != 0)[:, 5:], full_logits(model, x), atol=1e-5, rtol=1e-5)


def test_causal_no_future_leak(model):
    x = torch.randint(1, 61, (2, 12))
    y = x.clone()
    y[:, 8] = (y[:, 8] % 60) + 1  # perturb a later item
    a, b = full_logits(model, x), full_logits(model, y)
    torch.testing.assert_close(a[:, :8], b[:, :8])
    assert not torch.allclose(a[:, 8:], b[:, 8:])


def test_kv_cache_equals_uncached(model):
    x = torch.randint(1, 61, (3, 14))
    x[0, :4] = 0  # left padding in the prefix
    mask = x != 0
    reference = full_logits(model, x, mask)
    with torch.no_grad():
        cache = model.new_cache(3, 20)
        steps = [model.next_item_logits(x[:, :8], mask[:, :8], cache)]
        for t in range(8, 14):
            steps.append(model.next_item_logits(x[:, t : t + 1], None, cache))
        # selecting rows (beam expansion) keeps every row's cache
        rows = torch.tensor([2, 2, 0])
        sel = cache.select(rows)
        nxt = torch.randint(1, 61, (3, 1))
        cached_next = model.next_item_logits(nxt, None, sel)
    torch.testing.assert_close(torch.stack(steps, 1), reference[:, 7:], atol=1e-5, rtol=1e-5)
    direct = full_logits(model, torch.cat([x[rows], nxt], 1), torch.cat([mask[rows], torch.ones(3, 1, dtype=torch.bool)], 1))
    torch.testing.assert_close(cached_next, direct[:, -1], atol=1e-5, rtol=1e-5)


def test_too_long_input_is_an_error(model):
    with pytest.raises(ValueError, match="n_positions"):
        model.encode(torch.ones(1, 30, dtype=torch.long))
