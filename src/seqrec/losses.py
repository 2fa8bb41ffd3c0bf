"""Training losses, chosen by config (``seqrec_module.loss._target_``).

A loss takes the model, the hidden states of the positions that have a target and
those targets, so sampled-negative losses can score just the items they need.
"""

from __future__ import annotations

import torch
from torch import nn

from seqrec.ops import linear_cross_entropy

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


class CrossEntropy(nn.Module):
    """Full softmax over the whole catalogue at every position (GPT-2, SASRec+).

    Computed by the fused, chunked :func:`~seqrec.ops.linear_cross_entropy`, never
    materialising all logits at once. ``matmul_dtype: bfloat16`` runs the output-layer
    products in bfloat16 (softmax and accumulation stay fp32).
    """

    def __init__(self, chunk: int = 256, matmul_dtype: str = "float32"):
        super().__init__()
        if matmul_dtype not in _DTYPES:
            raise ValueError(f"matmul_dtype must be one of {sorted(_DTYPES)}, got {matmul_dtype!r}")
        self.chunk, self.matmul_dtype = chunk, _DTYPES[matmul_dtype]

    def forward(self, model, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return linear_cross_entropy(hidden, model.output_embeddings(), targets, self.chunk, self.matmul_dtype)
