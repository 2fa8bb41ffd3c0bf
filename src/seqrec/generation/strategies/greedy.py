"""Greedy decoding: ``k`` steps, each appends the arg-max allowed item."""

from __future__ import annotations

import torch

from seqrec.generation.base import Strategy


class Greedy(Strategy):
    name = "greedy"

    @classmethod
    def from_params(cls, params):
        return cls()

    def generate(self, state):
        scores = []
        for step in range(state.ctx.k):
            logp = torch.log_softmax(state.logits(), dim=1)
            best = logp.max(dim=1)
            scores.append(best.values)
            state.push(best.indices)
        return state.generated, torch.stack(scores, 1)
