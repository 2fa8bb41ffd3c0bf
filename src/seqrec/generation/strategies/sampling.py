"""Temperature sampling of one sequence (``num_return_sequences > 1``: multi-sequence)."""

from __future__ import annotations

import torch

from seqrec.generation.base import Strategy
from seqrec.generation.sampler import Sampler


class Sampling(Strategy):
    name = "sampling"

    def __init__(self, sampler: Sampler):
        self.sampler = sampler

    @classmethod
    def from_params(cls, params):
        if params["num_return_sequences"] > 1:
            from seqrec.generation.strategies.multisequence import MultiSequence

            return MultiSequence.from_params(params)
        return cls(Sampler.from_params(params))

    def describe(self) -> str:
        s = self.sampler
        return f"sampling (T={s.temperature}, top_k={s.top_k}, top_p={s.top_p})"

    def draw_shapes(self, users: int, n_columns: int, k: int) -> list[tuple[int, int]]:
        return [(users, self.sampler.columns(n_columns))] * k

    def generate(self, state):
        scores = []
        for _ in range(state.ctx.k):
            logits = state.logits()
            items, _, _ = self.sampler(logits, state.ctx.generator)
            scores.append(torch.log_softmax(logits, 1).gather(1, items[:, None]).squeeze(1))
            state.push(items)
        return state.generated, torch.stack(scores, 1)
