"""Dropout with cheap CPU masks (seqrec.models.dropout): the drop rate, the scaling, the gradient, reproducibility,
attention against its definition, and the switch back to torch's own dropout."""

import math

import pytest
import torch
import torch.nn.functional as F

from conftest import compose
from seqrec.config.checks import check_train_config
from seqrec.core.errors import UserError
from seqrec.models import dropout as D


@pytest.fixture(autouse=True)
def fast_masks():
    D.set_masks("fast")
    yield
    D.set_masks("fast")


def test_keep_rate_is_p_rounded_to_16_bits_on_every_word():
    """p = 0.1: t = round(0.1 * 65536) = 6554, keep rate 1 - 6554/65536 = 0.899994, scale 65536/58982. Each of the
    three 16-bit words of a draw keeps at that rate (the fourth word of a draw in [0, 2**63) is never uniform: using
    it would keep ~100 % there). Bound: 5 binomial standard deviations."""
    torch.manual_seed(0)
    n = 3 * 400_000
    keep, scale = D.keep_mask((n,), 0.1)
    rate = 1 - 6554 / 65536
    assert scale == pytest.approx(65536 / (65536 - 6554), rel=1e-12) and scale * rate == pytest.approx(1.0, rel=1e-12)
    for word in range(3):  # element i comes from word i % 3 of draw i // 3
        share = keep[word::3].double().mean().item()
        assert abs(share - rate) < 5 * math.sqrt(rate * (1 - rate) / (n // 3)), word
    for p in (0.5, 0.9, 1 / 3):
        keep, scale = D.keep_mask((200_000,), p)
        want = 1 - round(p * 65536) / 65536
        assert abs(keep.double().mean().item() - want) < 5 * math.sqrt(want * (1 - want) / 200_000)
        assert scale * want == pytest.approx(1.0)


def test_dropout_values_gradient_and_seeds():
    x = torch.rand(64, 50, dtype=torch.float64) + 0.5
    torch.manual_seed(3)
    y = D.dropout(x.requires_grad_(), 0.2)
    torch.manual_seed(3)
    keep, scale = D.keep_mask(x.shape, 0.2)
    torch.testing.assert_close(y, torch.where(keep, x * scale, 0.0), rtol=0, atol=0)  # kept: scaled; dropped: 0
    y.sum().backward()
    torch.testing.assert_close(x.grad, torch.where(keep, torch.tensor(scale, dtype=torch.float64), 0.0), rtol=0, atol=0)
    torch.manual_seed(3)
    assert torch.equal(D.dropout(x, 0.2), y)  # the same seed, the same mask
    assert not torch.equal(D.dropout(x, 0.2), y)  # the generator moved on
    assert D.dropout(x, 0.2, training=False) is x and D.dropout(x, 0.0) is x
    # the expectation: the mean of many dropped copies of x is x (scale exact for the rounded rate)
    torch.manual_seed(4)
    ones = torch.ones(2_000_000)
    mean = D.dropout(ones, 0.3).double().mean().item()
    keep_rate = 1 - round(0.3 * 65536) / 65536
    assert abs(mean - 1) < 5 * math.sqrt((1 - keep_rate) / keep_rate / 2_000_000)


def test_dropout_module_is_nn_dropout_with_the_cheap_masks():
    module = D.Dropout(0.25)
    assert isinstance(module, torch.nn.Dropout) and module.p == 0.25 and module.state_dict() == {}
    x = torch.randn(8, 9)
    torch.manual_seed(5)
    y = module(x)
    torch.manual_seed(5)
    keep, scale = D.keep_mask(x.shape, 0.25)
    assert torch.equal(y, torch.where(keep, x * scale, 0.0))
    assert module.eval()(x) is x
    D.set_masks("torch")  # torch's own dropout, draw for draw
    module.train()
    torch.manual_seed(5)
    y = module(x)
    torch.manual_seed(5)
    assert torch.equal(y, F.dropout(x, 0.25, True))
    with pytest.raises(ValueError, match="dropout_masks must be one of fast, torch"):
        D.set_masks("slow")


@pytest.mark.parametrize("case", ["causal", "bool_mask", "padding_broadcast", "fewer_queries"])
def test_attention_equals_its_definition_with_the_same_mask(case):
    """softmax(q k^T / sqrt(d), masked) with the cheap dropout mask, times v; without dropout (or with torch's
    masks) it is F.scaled_dot_product_attention itself."""
    g = torch.Generator().manual_seed(1)
    B, H, T, d = 3, 2, 7, 4
    q, k, v = (torch.randn(B, H, T, d, generator=g, dtype=torch.float64) for _ in range(3))
    mask, causal = None, False
    if case == "causal":
        causal = True
        allowed = torch.ones(T, T, dtype=torch.bool).tril()
    elif case == "bool_mask":
        mask = torch.rand(B, 1, T, T, generator=g) < 0.7
        mask |= torch.eye(T, dtype=torch.bool)  # no empty row
        allowed = mask
    elif case == "padding_broadcast":
        mask = torch.ones(B, 1, 1, T, dtype=torch.bool)
        mask[0, ..., :3] = False
        allowed = mask
    else:  # BERT4Rec's last layer on a few positions: 2 queries, 7 keys, bidirectional
        q = q[:, :, :2]
        allowed = torch.ones(1, dtype=torch.bool)
    scores = (q @ k.transpose(-2, -1)) / math.sqrt(d)
    weights = torch.softmax(scores.masked_fill(~allowed, float("-inf")), -1)
    torch.manual_seed(9)
    keep, scale = D.keep_mask(weights.shape, 0.3)
    torch.manual_seed(9)
    got = D.attention(q, k, v, attn_mask=mask, dropout_p=0.3, is_causal=causal)
    torch.testing.assert_close(got, torch.where(keep, weights * scale, 0.0) @ v)
    sdpa = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal)
    torch.testing.assert_close(sdpa, weights @ v)  # the definition above is SDPA's
    assert torch.equal(D.attention(q, k, v, attn_mask=mask, is_causal=causal), sdpa)  # no dropout: SDPA itself
    D.set_masks("torch")
    torch.manual_seed(9)
    got = D.attention(q, k, v, attn_mask=mask, dropout_p=0.3, is_causal=causal)
    torch.manual_seed(9)
    assert torch.equal(got, F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=0.3, is_causal=causal))


def test_models_train_with_the_configured_masks(tmp_path, tiny_csv):
    """dropout_masks is a training setting: checked in one line, recorded, and applied by run_train.py."""
    from seqrec import train

    cfg = compose("GPT_train")
    assert cfg.dropout_masks == "fast"
    with pytest.raises(UserError, match="dropout_masks") as err:
        check_train_config(compose("GPT_train", ["dropout_masks=bernoulli"]))
    assert "\n" not in str(err.value)
    D.set_masks("fast")
    runs = tmp_path / "runs"
    train(compose("GPT_train", [f"data_path={tiny_csv}", f"run_store={runs}", "logger=none", "dropout_masks=torch",
                                "trainer_params.max_epochs=1", "model_params.n_embd=8", "model_params.n_layer=1",
                                "model_params.n_head=1", "model_params.n_positions=16", "dataset.max_length=16"]))
    assert D.masks() == "torch"
    [run] = list(runs.iterdir())
    assert "dropout_masks: torch" in (run / "config.yaml").read_text()
