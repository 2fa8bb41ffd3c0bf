"""Training losses, chosen by config (``seqrec_module.loss._target_``).

A loss takes the model, the hidden states of the positions that have a target and
those targets, so sampled-negative losses can score just the items they need.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class CrossEntropy(nn.Module):
    """Full softmax over the whole catalogue at every position (GPT-2, SASRec+)."""

    def forward(self, model, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        logits = model.item_logits(hidden)
        logits[:, 0] = float("-inf")  # padding is never a target
        return F.cross_entropy(logits, targets)
