"""Dropout whose random masks are cheap on a CPU, and attention that uses it.

On a CPU, ``torch.bernoulli_`` draws one 32-bit number per element and converts it to a float: on a 1-thread
gSASRec step (ML-1M, 64 x 200 windows) the masks of attention and hidden dropout took ~20 % of the step
(``scripts/bench/bench_dropout.py``). Here each 64-bit draw of torch's generator gives three 16-bit uniform
numbers, so a mask costs a third of the draws and no float conversion. An element is kept when its number is at
least ``t = round(p * 2**16)``: the drop rate is ``t / 2**16`` (``p`` to within ``2**-17``; 0.1 becomes 0.100006)
and kept values are scaled by ``2**16 / (2**16 - t)``, so the expectation is exact. Masks come from torch's
global generator, which Lightning's ``seed_everything`` seeds: runs stay reproducible.

Attention dropout is applied to the softmax weights inside ``F.scaled_dot_product_attention``, which draws its
mask with ``bernoulli_``; :func:`attention` computes the same product (``softmax(q k^T / sqrt(d) + mask)``,
dropped, times ``v``) with the cheap mask while training on a CPU, and calls ``F.scaled_dot_product_attention``
otherwise (inference, no dropout, GPUs, whose generator is fast).

``set_masks("torch")`` (the training config's ``dropout_masks: torch``) switches back to ``torch``'s own dropout
everywhere; the default is ``fast``.
"""

from __future__ import annotations

import math
import sys

import torch
import torch.nn.functional as F
from torch import nn

MASKS = ("fast", "torch")
_BITS = 1 << 16
_mode = "fast"


def set_masks(mode: str) -> None:
    """``fast`` (cheap 16-bit masks on a CPU) or ``torch`` (``F.dropout`` and the attention kernel's own)."""
    global _mode
    if mode not in MASKS:
        raise ValueError(f"dropout_masks must be one of {', '.join(MASKS)}; got {mode!r}")
    _mode = mode


def masks() -> str:
    return _mode


def _fast(x: torch.Tensor, p: float) -> bool:
    return _mode == "fast" and x.device.type == "cpu" and sys.byteorder == "little" and 0.0 < p < 1.0


def keep_mask(shape: torch.Size | tuple[int, ...], p: float, device=None) -> tuple[torch.Tensor, float]:
    """``(keep [shape] bool, scale)``: each element kept with probability ``1 - round(p * 2**16) / 2**16``, and the
    factor ``1 / that probability`` for the kept values."""
    drop = round(p * _BITS)
    n = math.prod(shape)
    rows = -(-n // 3)
    # [0, 2**63): the three low 16-bit words of each draw are uniform (little-endian), the fourth is not used
    draws = torch.empty(rows, dtype=torch.int64, device=device).random_()
    words = draws.view(torch.int16).view(rows, 4)[:, :3]
    keep = (words >= drop - _BITS // 2).reshape(-1)[:n].view(shape)  # int16 is offset by 2**15
    return keep, _BITS / (_BITS - drop)


class _Dropout(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, p):
        keep, scale = keep_mask(x.shape, p, x.device)
        factor = torch.where(keep, torch.tensor(scale, dtype=x.dtype), torch.tensor(0, dtype=x.dtype))
        ctx.save_for_backward(factor)
        return x * factor

    @staticmethod
    def backward(ctx, grad):
        (factor,) = ctx.saved_tensors
        return grad * factor, None


def dropout(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    """``F.dropout(x, p, training)`` with the cheap mask where it pays (training on a CPU, ``masks() == "fast"``)."""
    if not training or p == 0.0:
        return x
    if _fast(x, p):
        return _Dropout.apply(x, p)
    return F.dropout(x, p, training)


class Dropout(nn.Dropout):
    """``nn.Dropout`` (same parameters and state dict) with :func:`dropout`'s masks."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dropout(x, self.p, self.training)


def attention(q, k, v, attn_mask=None, dropout_p: float = 0.0, is_causal: bool = False) -> torch.Tensor:
    """``F.scaled_dot_product_attention(q, k, v, attn_mask, dropout_p, is_causal)`` (boolean ``attn_mask``: True
    attends), its attention dropout drawn by :func:`dropout` where that is fast."""
    if not _fast(q, dropout_p) or (is_causal and q.shape[-2] != k.shape[-2]):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=dropout_p, is_causal=is_causal)
    if attn_mask is not None and attn_mask.dtype != torch.bool:
        raise ValueError("attention takes a boolean attn_mask (True: attend)")
    scores = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(q.shape[-1]))
    if is_causal:
        T = q.shape[-2]
        attn_mask = torch.ones(T, T, dtype=torch.bool, device=q.device).tril()
    if attn_mask is not None:
        scores = scores.masked_fill(~attn_mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    return _Dropout.apply(weights, dropout_p) @ v
