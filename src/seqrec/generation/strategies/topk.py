"""Top-K: one forward pass, the ``k`` best allowed items."""

from __future__ import annotations

import torch

from seqrec.generation.base import Strategy


class TopK(Strategy):
    name = "topk"

    @classmethod
    def from_params(cls, params):
        return cls()

    def generate(self, state):
        top = torch.topk(state.logits(), state.ctx.k, dim=1)
        return top.indices, top.values
