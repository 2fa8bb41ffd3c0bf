"""The fused linear + cross-entropy equals the plain computation, values and gradients."""

import pytest
import torch
import torch.nn.functional as F

from seqrec.ops import linear_cross_entropy


def reference(h, w, t):
    logits = h @ w.T
    logits = logits.masked_fill(torch.arange(w.shape[0]) == 0, float("-inf"))
    return F.cross_entropy(logits, t)


@pytest.mark.parametrize("chunk", [7, 64, 1000])
def test_matches_cross_entropy(chunk):
    torch.manual_seed(0)
    h = torch.randn(150, 16, requires_grad=True)
    w = torch.randn(40, 16, requires_grad=True)
    t = torch.randint(1, 40, (150,))
    ref = reference(h, w, t)
    gh, gw = torch.autograd.grad(ref, (h, w))
    ours = linear_cross_entropy(h, w, t, chunk=chunk)
    oh, ow = torch.autograd.grad(ours, (h, w))
    torch.testing.assert_close(ours, ref)
    torch.testing.assert_close(oh, gh)
    torch.testing.assert_close(ow, gw)


def test_bfloat16_products_are_close():
    torch.manual_seed(1)
    h = torch.randn(300, 32, requires_grad=True)
    w = (0.3 * torch.randn(500, 32)).requires_grad_()
    t = torch.randint(1, 500, (300,))
    ref = reference(h, w, t)
    gh, gw = torch.autograd.grad(ref, (h, w))
    ours = linear_cross_entropy(h, w, t, dtype=torch.bfloat16)
    oh, ow = torch.autograd.grad(ours, (h, w))
    assert abs(float((ours - ref).detach())) < 1e-2
    assert float((oh - gh).abs().max() / gh.abs().max()) < 2e-2
    assert float((ow - gw).abs().max() / gw.abs().max()) < 2e-2


def test_padding_column_gets_no_gradient_and_empty_input():
    h = torch.randn(5, 4, requires_grad=True)
    w = torch.randn(6, 4, requires_grad=True)
    linear_cross_entropy(h, w, torch.tensor([1, 2, 3, 4, 5])).backward()
    assert torch.all(w.grad[0] == 0)
    empty = linear_cross_entropy(torch.zeros(0, 4, requires_grad=True), w, torch.zeros(0, dtype=torch.long))
    assert float(empty.detach()) == 0.0
