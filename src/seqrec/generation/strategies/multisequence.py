"""Multi-sequence aggregation: sample N sequences per user, aggregate them into one list.

* ``rra`` (reciprocal rank aggregation): an item at 1-based position r of a sequence
  scores 1/r, summed over the N sequences.
* ``ra`` (relevance aggregation): an item scores the probability it had in the
  distribution sampled from, summed over the k steps and N sequences (temperature
  applied once).

Ties are broken by first appearance (sequence by sequence, position by position), as
a plain ``Counter.most_common`` over the sequences would.
"""

from __future__ import annotations

import torch

from seqrec.generation.base import Strategy
from seqrec.generation.sampler import Sampler


class MultiSequence(Strategy):
    name = "multisequence"

    def __init__(self, sampler: Sampler, sequences: int, how: str):
        self.sampler, self.width, self.how = sampler, sequences, how

    @classmethod
    def from_params(cls, params):
        return cls(Sampler.from_params(params), params["num_return_sequences"], params["aggregation"])

    def describe(self) -> str:
        s = self.sampler
        return f"multisequence {self.how.upper()} (N={self.width}, T={s.temperature}, top_k={s.top_k}, top_p={s.top_p})"

    def generate(self, state):
        U, N, k = state.users, self.width, state.ctx.k
        state.expand(N)
        V = state.ctx.seen.shape[1]
        score = torch.zeros(U, V, dtype=torch.float64, device=state.ctx.seen.device)
        for step in range(k):
            logits = state.logits()
            items, candidates, probs = self.sampler(logits, state.ctx.generator)
            if self.how == "rra":
                score.scatter_add_(1, items.view(U, N), torch.full((U, N), 1.0 / (step + 1), dtype=score.dtype, device=score.device))
            elif candidates is None:
                score += probs.view(U, N, V).sum(1, dtype=torch.float64)
            else:
                score.scatter_add_(1, candidates.view(U, -1), probs.view(U, -1).double())
            state.push(items)
        return aggregate(score, state.generated.view(U, N * k), state.ctx.seen, k)


def aggregate(score: torch.Tensor, order: torch.Tensor, seen: torch.Tensor, k: int):
    """The ``k`` best-scoring allowed items, ties broken by first position in ``order`` ``[U, M]``."""
    U, V = score.shape
    M = order.shape[1]
    first = torch.full((U, V), M, dtype=torch.long, device=score.device)
    first.scatter_reduce_(1, order, torch.arange(M, device=score.device).expand(U, M), reduce="amin")
    key = torch.round(score * 1e9)  # equal sums of reciprocals compare equal despite rounding
    key = key.masked_fill(seen, float("-inf"))
    by_first = torch.argsort(first, dim=1, stable=True)
    by_score = torch.argsort(key.gather(1, by_first), dim=1, descending=True, stable=True)
    items = by_first.gather(1, by_score[:, :k])
    return items, score.gather(1, items).float()
