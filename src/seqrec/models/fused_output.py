"""Fused, chunked "linear + full-softmax cross-entropy" over the item catalogue.

The output layer dominates training cost: ``hidden [N, C] @ items [V, C]^T`` gives
``N x V`` logits (ML-1M: ~6k positions x 3.7k items per batch). Materialising them,
then ``log_softmax``, then its gradient, streams that matrix through memory several
times. Here the logits are produced chunk by chunk, reduced to ``logsumexp`` at once,
and recomputed in backward; the matrix products can run in bfloat16 (fp32
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
    @staticmethod
    def forward(ctx, hidden, weight, targets, chunk: int, dtype: torch.dtype):
        h, w = hidden.to(dtype), weight.to(dtype)
        losses = torch.empty(hidden.shape[0], dtype=torch.float32, device=hidden.device)
        lse = torch.empty_like(losses)
        for s in range(0, hidden.shape[0], chunk):
            logits = _logits(h[s : s + chunk], w)
            lse[s : s + chunk] = torch.logsumexp(logits, dim=1)
            picked = logits.gather(1, targets[s : s + chunk, None]).squeeze(1)
            losses[s : s + chunk] = lse[s : s + chunk] - picked
        ctx.save_for_backward(h, w, targets, lse)
        ctx.chunk, ctx.in_dtypes = chunk, (hidden.dtype, weight.dtype)
        return losses.mean()

    @staticmethod
    def backward(ctx, grad_out):
        h, w, targets, lse = ctx.saved_tensors
        n = h.shape[0]
        scale = grad_out.float() / n
        grad_h = torch.empty(h.shape, dtype=torch.float32, device=h.device)
        grad_w = torch.zeros(w.shape, dtype=torch.float32, device=h.device)
        rows = torch.arange(min(ctx.chunk, n), device=h.device)
        for s in range(0, n, ctx.chunk):
            hc = h[s : s + ctx.chunk]
            probs = torch.exp_(_logits(hc, w).sub_(lse[s : s + ctx.chunk, None]))
            probs[rows[: hc.shape[0]], targets[s : s + ctx.chunk]] -= 1.0
            g = probs.mul_(scale).to(w.dtype)
            grad_h[s : s + ctx.chunk] = (g @ w).float()
            grad_w += (g.T @ hc).float()
        return grad_h.to(ctx.in_dtypes[0]), grad_w.to(ctx.in_dtypes[1]), None, None, None


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
    return _LinearCrossEntropy.apply(hidden, weight, targets, chunk, dtype or hidden.dtype)


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
