"""Multi-sequence aggregation: sample N sequences per user, aggregate them into one list.

* ``rra`` (reciprocal rank aggregation): an item at 1-based position r of a sequence
  scores 1/r, summed over the N sequences.
* ``ra`` (relevance aggregation): an item scores the probability it had in the
  distribution sampled from, summed over the k steps and N sequences (temperature
  applied once).

Ties are broken by first appearance (sequence by sequence, position by position), as
a plain ``Counter.most_common`` over the sequences would.

With ``prefixes`` (``generation_params.prefix_sequences``) the same N samples also give, for each listed n, both
aggregations of the first n sequences: exactly what a run with N = n would compute from those n sequences. They are
left in ``state.variants`` under :func:`variant_key` (the engine collects them; a later run takes one with
``samples_from``), so one sampling pass serves a whole grid over N and both aggregations.
"""

from __future__ import annotations

import torch

from seqrec.generation.base import Strategy
from seqrec.generation.sampler import Sampler


class MultiSequence(Strategy):
    name = "multisequence"

    def __init__(self, sampler: Sampler, sequences: int, how: str, prefixes: tuple[int, ...] = ()):
        self.sampler, self.width, self.how = sampler, sequences, how
        self.prefixes = tuple(sorted(set(prefixes)))

    @classmethod
    def from_params(cls, params):
        return cls(Sampler.from_params(params), params["num_return_sequences"], params["aggregation"],
                   tuple(params.get("prefix_sequences") or ()))

    def describe(self) -> str:
        s = self.sampler
        return f"multisequence {self.how.upper()} (N={self.width}, T={s.temperature}, top_k={s.top_k}, top_p={s.top_p})"

    def draw_shapes(self, users: int, n_columns: int, k: int) -> list[tuple[int, int]]:
        return [(users * self.width, self.sampler.columns(n_columns))] * k

    def generate(self, state):
        U, N, k = state.users, self.width, state.ctx.k
        state.expand(N)
        V = state.ctx.seen.shape[1]
        # (aggregation, n): the score of the first n sequences; the main list is (self.how, N)
        wanted = [(self.how, N), *((how, n) for n in self.prefixes for how in ("rra", "ra") if (how, n) != (self.how, N))]
        scores = {key: torch.zeros(U, V, dtype=torch.float64, device=state.ctx.seen.device) for key in wanted}
        for step in range(k):
            # sequences that agree so far share their scores (and their top k)
            if self.sampler.cuts(V):
                values, top, group = state.grouped_top(self.sampler.top_k)
                items, candidates, probs = self.sampler.draw(values[group], top[group], state.ctx.generator)
            else:
                logits, group = state.grouped_logits()
                items, candidates, probs = self.sampler(logits, state.ctx.generator, group)
            for (how, n), score in scores.items():
                _accumulate(score, how, step, items.view(U, N)[:, :n], None if candidates is None else
                            candidates.view(U, N, -1)[:, :n], probs.view(U, N, -1)[:, :n])
            state.push(items)
        generated = state.generated.view(U, N, k)
        for how, n in wanted[1:]:
            state.variants[variant_key(how, n)] = aggregate(scores[how, n], generated[:, :n].reshape(U, n * k),
                                                             state.ctx.seen, k)
        return aggregate(scores[self.how, N], generated.view(U, N * k), state.ctx.seen, k)


def variant_key(how: str, sequences: int) -> str:
    """The name of the list aggregating the first ``sequences`` samples by ``how`` (``rra``/``ra``)."""
    return f"{how}_N{sequences}"


def _accumulate(score: torch.Tensor, how: str, step: int, items: torch.Tensor, candidates: torch.Tensor | None,
                probs: torch.Tensor) -> None:
    """Add one step of ``n`` sequences per user to ``score`` ``[U, V]``: ``items`` ``[U, n]``, and the distributions
    they were drawn from, ``probs`` ``[U, n, C]`` over ``candidates`` ``[U, n, C]`` (all items when None)."""
    U, n = items.shape
    if how == "rra":
        score.scatter_add_(1, items, torch.full((U, n), 1.0 / (step + 1), dtype=score.dtype, device=score.device))
    elif candidates is None:
        score += probs.sum(1, dtype=torch.float64)
    else:
        score.scatter_add_(1, candidates.reshape(U, -1), probs.reshape(U, -1).double())


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
