"""Fused, chunked "linear + full-softmax cross-entropy" over the item catalogue.

The output layer dominates training cost: ``hidden [N, C] @ items [V, C]^T`` gives
``N x V`` logits (ML-1M: ~6k positions x 3.7k items per batch). Materialising them,
then ``log_softmax``, then its gradient, streams that matrix through memory several
times. Here the logits are produced chunk by chunk and, in the same pass, reduced to
the loss and turned into both gradients (kept for backward); the matrix products can run in bfloat16 (fp32
accumulation and fp32 softmax), which CPUs with AVX512-BF16/AMX and all recent GPUs
run several times faster than fp32. Column 0 (padding) never takes probability mass.
"""

from __future__ import annotations

import functools

import torch


def _logits(h: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    out = (h @ w.T).float()
    out[:, 0] = float("-inf")
    return out


class _LinearCrossEntropy(torch.autograd.Function):
    """One pass over the chunks: each chunk's logits give its losses and, when a gradient is wanted, its share of
    both gradients at once (softmax minus the target's one-hot, times ``w`` and ``h``), so the logits are made and
    exponentiated once per step: three matrix products and one ``exp`` per chunk, where recomputing them in
    backward took four and two. Backward only scales the stored gradients by ``grad_out / n`` (the loss is a mean,
    so its gradient is linear in ``grad_out``)."""

    @staticmethod
    def forward(ctx, hidden, weight, targets, chunk: int, dtype: torch.dtype, want_grads: bool):
        h, w = hidden.to(dtype), weight.to(dtype)
        n = h.shape[0]
        losses = torch.empty(n, dtype=torch.float32, device=hidden.device)
        grad_h = torch.empty(h.shape, dtype=torch.float32, device=h.device) if want_grads else None
        grad_w = torch.zeros(w.shape, dtype=torch.float32, device=h.device) if want_grads else None
        rows = torch.arange(min(chunk, n), device=h.device)
        for s in range(0, n, chunk):
            hc, t = h[s : s + chunk], targets[s : s + chunk]
            logits = _logits(hc, w)
            picked = logits.gather(1, t[:, None]).squeeze(1)
            top = logits.amax(1, keepdim=True)  # finite: only column 0 is -inf
            e = torch.exp_(logits.sub_(top))
            total = e.sum(1)
            losses[s : s + chunk] = top.squeeze(1) + torch.log(total) - picked  # logsumexp - target logit
            if want_grads:
                probs = e.div_(total[:, None])
                probs[rows[: hc.shape[0]], t] -= 1.0
                g = probs.to(w.dtype)
                grad_h[s : s + chunk] = (g @ w).float()
                grad_w += (g.T @ hc).float()
        if want_grads:
            ctx.save_for_backward(grad_h, grad_w)
        ctx.n, ctx.in_dtypes = n, (hidden.dtype, weight.dtype)
        return losses.mean()

    @staticmethod
    def backward(ctx, grad_out):
        grad_h, grad_w = ctx.saved_tensors
        scale = grad_out.float() / ctx.n
        return (grad_h * scale).to(ctx.in_dtypes[0]), (grad_w * scale).to(ctx.in_dtypes[1]), None, None, None, None


def linear_cross_entropy(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    targets: torch.Tensor,
    chunk: int = 256,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """Mean cross-entropy of ``softmax(hidden @ weight.T)`` against ``targets`` (column 0 excluded).

    Equals ``F.cross_entropy(logits_with_col0_masked, targets)``; ``dtype`` (default: the
    inputs' dtype) is the precision of the matrix products only.
    """
    if hidden.shape[0] == 0:
        return hidden.sum() * 0.0
    # the gradients are made in the forward pass (see _LinearCrossEntropy), so only when backward can follow
    want_grads = torch.is_grad_enabled() and (hidden.requires_grad or weight.requires_grad)
    return _LinearCrossEntropy.apply(hidden, weight, targets, chunk, dtype or hidden.dtype, want_grads)


def fast_bfloat16(device: str | torch.device | None = None) -> bool:
    """Whether bfloat16 matrix products run natively (faster than fp32) on ``device``.

    CUDA: GPUs with bf16 support. CPU: AVX512-BF16 or AMX; elsewhere bf16 is emulated and slower.
    """
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    return _fast_bfloat16(device.type)


@functools.lru_cache(maxsize=None)
def _fast_bfloat16(device_type: str) -> bool:  # asked once per device type (the loss asks every step)
    if device_type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in probes)
