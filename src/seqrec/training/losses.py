"""Training losses, chosen by config (``seqrec_module.loss._target_``).

A loss takes the model, the hidden states of the positions that have a target and
those targets, so sampled-negative losses can score just the items they need.
Named losses (config group ``loss``): ``CE`` (:class:`CrossEntropy`), ``BCE``, ``gBCE``,
``BPR``, ``sampled_softmax`` (:class:`SampledSoftmax`). Sampled losses accept fixed
``negatives`` (``[N, k]``) for tests; otherwise they draw them with torch's generator.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from seqrec.models.fused_output import fast_bfloat16, linear_cross_entropy

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


class CrossEntropy(nn.Module):
    """Full softmax over the whole catalogue at every position (GPT-2, SASRec+).

    Computed by the fused, chunked :func:`~seqrec.models.fused_output.linear_cross_entropy`, never
    materialising all logits at once. ``matmul_dtype: bfloat16`` runs the output-layer
    products in bfloat16 (softmax and accumulation stay fp32).
    """

    def __init__(self, chunk: int = 256, matmul_dtype: str = "auto"):
        super().__init__()
        if matmul_dtype not in (*_DTYPES, "auto"):
            raise ValueError(f"matmul_dtype must be one of auto, {', '.join(_DTYPES)}; got {matmul_dtype!r}")
        # auto: bf16 where the device the loss runs on does it natively, decided there (a CPU run on a GPU host
        # asks the CPU)
        self.chunk, self.matmul_dtype = chunk, None if matmul_dtype == "auto" else _DTYPES[matmul_dtype]

    def forward(self, model, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        dtype = self.matmul_dtype or (torch.bfloat16 if fast_bfloat16(hidden.device) else torch.float32)
        return linear_cross_entropy(hidden, model.output_embeddings(), targets, self.chunk, dtype)


# --------------------------------------------------------------------------- sampled negatives
def sample_negatives(targets: torch.Tensor, n_items: int, k: int) -> torch.Tensor:
    """``[N, k]`` items drawn uniformly from ``1..n_items`` minus each row's target.

    Uses torch's global generator (seeded by Lightning's ``seed_everything``).
    """
    if n_items < 2:
        raise ValueError("sampling negatives needs at least 2 items")
    draws = torch.randint(1, n_items, (targets.shape[0], k), device=targets.device)  # n_items - 1 values
    return draws + (draws >= targets[:, None]).long()  # skip the target: uniform over the others


def score_items(hidden: torch.Tensor, weight: torch.Tensor, items: torch.Tensor, chunk: int = 256) -> torch.Tensor:
    """``scores[n, j] = hidden[n] . weight[items[n, j]]`` without needless memory.

    Gathering ``[N, k, C]`` embeddings costs more than all ``[N, V]`` logits when
    ``k * C >= V``; then the full product is made ``chunk`` rows at a time and gathered at once
    (:class:`_GatheredLogits`: no ``[N, V]`` matrix is kept for backward, which rebuilds each chunk's sparse
    gradient; gSASRec's 256 negatives), in the autocast dtype where autocast is on.
    """
    if items.shape[1] * weight.shape[1] >= weight.shape[0]:
        device = hidden.device.type
        dtype = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else hidden.dtype
        with torch.autocast(device, enabled=False):
            return _GatheredLogits.apply(hidden, weight, items, chunk, dtype)
    return torch.einsum("nc,nkc->nk", hidden, weight[items])


class _GatheredLogits(torch.autograd.Function):
    """``(hidden @ weight.T).gather(1, items)``, chunk by chunk, products in ``dtype`` (accumulated in fp32)."""

    @staticmethod
    def forward(ctx, hidden, weight, items, chunk: int, dtype: torch.dtype):
        h, w = hidden.to(dtype), weight.to(dtype)
        out = torch.cat([(h[s : s + chunk] @ w.T).gather(1, items[s : s + chunk])
                         for s in range(0, h.shape[0], chunk)]) if h.shape[0] else h.new_zeros(items.shape)
        ctx.save_for_backward(h, w, items)
        ctx.chunk, ctx.in_dtypes = chunk, (hidden.dtype, weight.dtype)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        h, w, items = ctx.saved_tensors
        acc = torch.promote_types(h.dtype, torch.float32)  # gradients accumulate in fp32 (fp64 stays fp64)
        grad_h = torch.empty(h.shape, dtype=acc, device=h.device)
        grad_w = torch.zeros(w.shape, dtype=acc, device=h.device)
        for s in range(0, h.shape[0], ctx.chunk):
            hc, ic = h[s : s + ctx.chunk], items[s : s + ctx.chunk]
            dense = torch.zeros(hc.shape[0], w.shape[0], dtype=acc, device=h.device)
            g = dense.scatter_add_(1, ic, grad_out[s : s + ctx.chunk].to(acc)).to(w.dtype)  # repeated items add up
            grad_h[s : s + ctx.chunk] = g @ w
            grad_w += g.T @ hc
        return grad_h.to(ctx.in_dtypes[0]), grad_w.to(ctx.in_dtypes[1]), None, None, None


SHARE_NEGATIVES = ("position", "sequence")


class _Sampled(nn.Module):
    """Base of the sampled-negative losses: scores the positive and ``num_negatives`` uniform
    negatives of every row, then ``loss(pos [N], neg [N, k], n_items)`` combines them.

    ``share_negatives``: ``position`` draws every row's negatives on its own (the reference codes); ``sequence``
    draws ``num_negatives`` items per training sequence, shared by its positions (each position's negatives are
    still uniform over the items; a shared negative equal to a position's target is left out of that position's
    loss, so no position is pushed away from its own target). ``sequence`` needs the ``[B, L]`` target mask
    (``positions``; the training module passes it where :attr:`wants_positions`) and scores all negatives by one
    batched product of ``B * L * k * C`` multiply-adds instead of the whole ``N * V * C`` output layer.
    """

    num_negatives: int
    share_negatives: str = "position"

    def _set_sharing(self, share_negatives: str) -> None:
        if share_negatives not in SHARE_NEGATIVES:
            raise ValueError(f"share_negatives must be one of {', '.join(SHARE_NEGATIVES)}; got {share_negatives!r}")
        self.share_negatives = share_negatives

    @property
    def wants_positions(self) -> bool:
        return self.share_negatives == "sequence"

    def forward(self, model, hidden, targets, negatives=None, positions=None):
        if hidden.shape[0] == 0:
            return hidden.sum() * 0.0
        weight = model.output_embeddings()
        n_items = weight.shape[0] - 1
        pos = (hidden * weight[targets]).sum(-1)
        if negatives is None and self.share_negatives == "sequence":
            if positions is None:
                raise ValueError("share_negatives=sequence needs the [batch, length] target mask (positions=)")
            negatives = torch.randint(1, n_items + 1, (positions.shape[0], self.num_negatives), device=hidden.device)
            return self.loss(pos, sequence_scores(hidden, weight, targets, positions, negatives), n_items)
        if negatives is None:
            negatives = sample_negatives(targets, n_items, self.num_negatives)
        return self.loss(pos, score_items(hidden, weight, negatives), n_items)


def sequence_scores(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, positions: torch.Tensor,
                    negatives: torch.Tensor) -> torch.Tensor:
    """``[N, k]`` scores of the negatives ``[B, k]`` of each row's sequence: ``hidden`` ``[N, C]`` holds the rows
    ``positions`` ``[B, L]`` marks, in row-major order; a negative equal to the row's target scores -inf (its
    term of every sampled loss is then 0, and so is its gradient)."""
    B, L = positions.shape
    padded = hidden.new_zeros(B, L, hidden.shape[1])
    padded[positions] = hidden
    scores = torch.bmm(padded, weight[negatives].to(padded.dtype).transpose(1, 2))[positions]  # [N, k]
    row_negatives = negatives[:, None, :].expand(B, L, negatives.shape[1])[positions]
    return scores.masked_fill(row_negatives == targets[:, None], float("-inf"))

    def loss(self, pos: torch.Tensor, neg: torch.Tensor, n_items: int) -> torch.Tensor:
        raise TypeError(f"{type(self).__name__} does not define loss()")


def _check_count(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return value


class BCE(_Sampled):
    """Binary cross-entropy with ``num_negatives`` uniform negatives per positive (SASRec: 1).

    ``loss = mean over positives of [-log s(s+) - sum_j log(1 - s(s-_j))]``.
    """

    def __init__(self, num_negatives: int = 1, share_negatives: str = "position"):
        super().__init__()
        self.num_negatives = _check_count("num_negatives", num_negatives)
        self._set_sharing(share_negatives)

    def loss(self, pos, neg, n_items):
        return (-F.logsigmoid(pos) - F.logsigmoid(-neg).sum(-1)).mean()


def gbce_beta(neg_per_positive: int, n_items: int, t: float) -> float:
    """gSASRec's calibration power: ``beta = alpha (t (1 - 1/alpha) + 1/alpha)``, ``alpha = k / (|I| - 1)``."""
    alpha = neg_per_positive / (n_items - 1)
    return alpha * (t * (1.0 - 1.0 / alpha) + 1.0 / alpha)


class gBCE(_Sampled):  # noqa: N801 -- the paper's name
    """Generalised BCE of gSASRec (Petrov & Macdonald, RecSys 2023).

    ``k = neg_per_positive`` uniform negatives per positive; the positive's probability
    is raised to ``beta`` (:func:`gbce_beta`, ``t = gbce_t``):
    ``loss = mean over positives of [-log(s(s+)^beta) - sum_j log(1 - s(s-_j))]``.
    Every log-probability is clamped at ``log(eps)`` (the reference code clamps the
    probabilities to ``[eps, 1 - eps]``).

    Two start-up schedules, in optimizer steps (the training module sets :attr:`step`, its global step, before
    every training step, so a resumed run continues a ramp where it stopped): ``t_warmup_steps`` ramps ``t``
    linearly from 0 (plain BCE, ``beta = 1``) to ``gbce_t``; ``neg_warmup_steps`` ramps the number of negatives
    linearly from 1 to ``neg_per_positive`` (``beta`` follows the number in use).
    """

    uses_step = True  # SeqRecModule sets self.step = global step before each training step

    def __init__(self, neg_per_positive: int = 256, gbce_t: float = 0.75, eps: float = 1e-10, t_warmup_steps: int = 0,
                 neg_warmup_steps: int = 0, share_negatives: str = "position"):
        super().__init__()
        self._set_sharing(share_negatives)
        self.neg_per_positive = _check_count("neg_per_positive", neg_per_positive)
        if not 0.0 <= gbce_t <= 1.0:
            raise ValueError(f"gbce_t must be in [0, 1], got {gbce_t}")
        if not 0.0 < eps < 0.5:
            raise ValueError(f"eps must be in (0, 0.5), got {eps}")
        for name, value in (("t_warmup_steps", t_warmup_steps), ("neg_warmup_steps", neg_warmup_steps)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
        self.t, self.eps, self.t_warmup_steps = float(gbce_t), float(eps), t_warmup_steps
        self.neg_warmup_steps = neg_warmup_steps
        self.step = 0

    @property
    def num_negatives(self) -> int:
        """``neg_per_positive``, or during the negatives' warm-up ``max(1, ceil(k * step / neg_warmup_steps))``."""
        if self.neg_warmup_steps and self.step < self.neg_warmup_steps:
            return max(1, math.ceil(self.neg_per_positive * self.step / self.neg_warmup_steps))
        return self.neg_per_positive

    @property
    def current_t(self) -> float:
        """``gbce_t``, or its share ``step / t_warmup_steps`` during the warm-up."""
        if self.t_warmup_steps and self.step < self.t_warmup_steps:
            return self.t * self.step / self.t_warmup_steps
        return self.t

    def loss(self, pos, neg, n_items):
        beta = gbce_beta(neg.shape[1], n_items, self.current_t)  # the negatives in use (see neg_warmup_steps)
        floor = math.log(self.eps)
        log_pos = F.logsigmoid(pos.double()).clamp_min(floor)
        log_not_neg = F.logsigmoid(-neg.double()).clamp_min(floor)
        return (-beta * log_pos - log_not_neg.sum(-1)).mean().to(pos.dtype)


class BPR(_Sampled):
    """Bayesian personalised ranking: ``-log s(s+ - s-)``, averaged over ``num_negatives`` negatives."""

    def __init__(self, num_negatives: int = 1, share_negatives: str = "position"):
        super().__init__()
        self.num_negatives = _check_count("num_negatives", num_negatives)
        self._set_sharing(share_negatives)

    def loss(self, pos, neg, n_items):
        return -F.logsigmoid(pos[:, None] - neg).mean()


class SampledSoftmax(_Sampled):
    """Softmax cross-entropy over the positive and ``num_negatives`` uniform negatives."""

    def __init__(self, num_negatives: int = 256, share_negatives: str = "position"):
        super().__init__()
        self.num_negatives = _check_count("num_negatives", num_negatives)
        self._set_sharing(share_negatives)

    def loss(self, pos, neg, n_items):
        logits = torch.cat([pos[:, None], neg], 1)
        return F.cross_entropy(logits, torch.zeros(len(pos), dtype=torch.long, device=pos.device))
