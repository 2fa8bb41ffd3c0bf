"""The fused linear + cross-entropy equals the plain computation, values and gradients."""

import pytest
import torch
import torch.nn.functional as F

from seqrec.models.fused_output import linear_cross_entropy


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


def test_gradient_scales_with_what_uses_the_loss_and_no_grad_makes_none():
    """The gradients are made in the forward pass and scaled in backward: a loss used as 3 * loss + other terms
    gets 3x the gradient (checked against autograd through F.cross_entropy); without grad mode (validation) the
    forward saves nothing for backward and gives the same value."""
    torch.manual_seed(2)
    h = torch.randn(50, 8, requires_grad=True)
    w = torch.randn(30, 8, requires_grad=True)
    t = torch.randint(1, 30, (50,))
    ref = 3 * reference(h, w, t) + h.sum()
    gh, gw = torch.autograd.grad(ref, (h, w))
    ours = 3 * linear_cross_entropy(h, w, t, chunk=16) + h.sum()
    oh, ow = torch.autograd.grad(ours, (h, w))
    torch.testing.assert_close(oh, gh)
    torch.testing.assert_close(ow, gw)
    with torch.no_grad():
        value = linear_cross_entropy(h, w, t, chunk=16)
    assert value.grad_fn is None
    torch.testing.assert_close(value, reference(h, w, t).detach())


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


def test_auto_precision_is_decided_for_the_device_the_run_uses(monkeypatch):
    """precision=auto asks the device the run trains on: a CPU run on a GPU host asks the CPU (issue: bf16 was
    chosen from the GPU for a trainer=cpu run, on a CPU that may emulate it)."""
    from seqrec.training import components as pipeline, losses  # train-time precision: seqrec.training.components

    asked = []

    def fake(device=None):
        asked.append(torch.device(device).type)
        return torch.device(device).type == "cuda"  # a GPU with bf16, a CPU without

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(pipeline, "fast_bfloat16", fake)
    monkeypatch.setattr(losses, "fast_bfloat16", fake)
    assert pipeline.train_device({"accelerator": "cpu"}) == "cpu"
    assert pipeline.train_device({"accelerator": "gpu"}) == "cuda"
    assert pipeline.train_device({"accelerator": "auto"}) == "cuda"
    # the loss decides at the device its inputs are on: fp32 products on this CPU, identical to matmul_dtype=float32
    torch.manual_seed(0)
    hidden, targets = torch.randn(6, 8), torch.tensor([1, 2, 3, 4, 5, 0])

    class Model:
        weight = torch.randn(7, 8)

        def output_embeddings(self):
            return self.weight

    auto = losses.CrossEntropy(matmul_dtype="auto")(Model(), hidden, targets)
    exact = losses.CrossEntropy(matmul_dtype="float32")(Model(), hidden, targets)
    assert asked == ["cpu"] and auto.item() == exact.item()
