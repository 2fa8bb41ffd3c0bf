"""Two-stage recall (RecGPT): top-N for the history, then M more after appending the best item.

Stage one takes the ``first_stage`` best items of one forward pass; stage two appends
stage one's best item to the sequence, runs the model again and adds the
``k - first_stage`` best items not chosen yet.
"""

from __future__ import annotations

import torch

from seqrec.errors import UserError
from seqrec.generation.base import Strategy, require_do_sample


class TwoStage(Strategy):
    name = "two_stage"
    parameters = frozenset({"first_stage"})

    def __init__(self, first_stage: int):
        self.first_stage = first_stage

    @classmethod
    def from_params(cls, params):
        require_do_sample(params, cls.name, False)
        n = params.get("first_stage", 9)
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise UserError(f"generation_params.first_stage must be an integer >= 1 (got {n!r})")
        return cls(n)

    def describe(self) -> str:
        return f"two_stage (first_stage={self.first_stage})"

    def generate(self, state):
        k = state.ctx.k
        if self.first_stage >= k:
            raise UserError(
                f"generation_params.first_stage={self.first_stage} leaves nothing for stage two; use a value below {k}"
            )
        first = torch.topk(state.logits(), self.first_stage, dim=1)
        state.push(first.indices[:, 0])
        logits = state.logits().scatter_(1, first.indices, float("-inf"))
        second = torch.topk(logits, k - self.first_stage, dim=1)
        return torch.cat([first.indices, second.indices], 1), torch.cat([first.values, second.values], 1)
