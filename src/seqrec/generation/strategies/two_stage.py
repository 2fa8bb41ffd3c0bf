"""Two-stage recall (RecGPT): top-N for the history, then M more after appending the best item.

Stage one takes the ``first_stage`` best items of one forward pass; stage two appends
stage one's best item to the sequence as a generated item (segment 1 for a prompt-tuned model),
runs the model again and adds the ``k - first_stage`` best items not chosen yet, from the hidden
state at the appended position. With ``prompt_steps`` > 1 the arg-max continuation grows by
that many generated items before stage two (each banned from the list, as generated items are).
"""

from __future__ import annotations

import torch

from seqrec.core.errors import UserError
from seqrec.generation.base import Strategy
from seqrec.generation.strategies.two_stage_config import first_stage_leaves_room


class TwoStage(Strategy):
    name = "two_stage"

    def __init__(self, first_stage: int, prompt_steps: int = 1):
        self.first_stage, self.prompt_steps = first_stage, prompt_steps

    @classmethod
    def from_params(cls, params):
        return cls(params["first_stage"], params.get("prompt_steps", 1))

    def describe(self) -> str:
        steps = f", prompt_steps={self.prompt_steps}" if self.prompt_steps != 1 else ""
        return f"two_stage (first_stage={self.first_stage}{steps})"

    def generate(self, state):
        k = state.ctx.k
        message = first_stage_leaves_room({"first_stage": self.first_stage}, {"k": k})  # the declared rule
        if message:
            raise UserError(message)
        first = torch.topk(state.logits(), self.first_stage, dim=1)
        state.push(first.indices[:, 0])
        for _ in range(1, self.prompt_steps):  # the greedy continuation, as generated items
            state.push(state.logits().argmax(1))
        logits = state.logits().scatter_(1, first.indices, float("-inf"))
        second = torch.topk(logits, k - self.first_stage, dim=1)
        return torch.cat([first.indices, second.indices], 1), torch.cat([first.values, second.values], 1)
