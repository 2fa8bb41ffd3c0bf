"""One sampling step: temperature, top-k, top-p (nucleus), then a draw per row."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Sampler:
    temperature: float = 1.0
    top_k: int | None = None
    top_p: float = 1.0

    @classmethod
    def from_params(cls, params) -> "Sampler":
        """From checked ``generation_params``: top_k null or 0 means no cutoff, top_p null means 1."""
        top_p = params.get("top_p")
        return cls(float(params["temperature"]), params.get("top_k") or None, 1.0 if top_p is None else float(top_p))

    def columns(self, n_columns: int) -> int:
        """The width of the distribution a draw samples from: the top k, or all ``n_columns``."""
        return self.top_k if self.cuts(n_columns) else n_columns

    def cuts(self, n_columns: int) -> bool:
        """True when the top-k cut drops some of ``n_columns`` scores."""
        return self.top_k is not None and self.top_k < n_columns

    def __call__(self, logits: torch.Tensor, generator: torch.Generator | None, group: torch.Tensor | None = None):
        """Draw one item per row from ``softmax(logits / T)`` restricted by top-k/top-p.

        ``group``: row ``r``'s logits are ``logits[group[r]]`` (rows that share them, see
        ``GenerationState.grouped_logits``); the top-k cut is then made once per group, and the draws are
        those of the expanded rows (the same random numbers).
        Returns ``(items [R], candidates [R, C] or None, probs [R, C])``: the distribution
        actually sampled from, over ``candidates`` (all items when None).
        """
        candidates = None
        if self.cuts(logits.shape[1]):
            logits, candidates = torch.topk(logits, self.top_k, dim=1)  # sorted; T > 0 keeps the order
        if group is not None:
            logits = logits[group]
            candidates = None if candidates is None else candidates[group]
        return self.draw(logits, candidates, generator)

    def draw(self, logits: torch.Tensor, candidates: torch.Tensor | None, generator: torch.Generator | None):
        """The draw of :meth:`__call__` from ``logits`` over ``candidates`` (all items when None), already cut to the
        top k (``torch.topk``'s sorted values and items, e.g. from ``GenerationState.grouped_top``)."""
        scaled = logits / self.temperature
        if self.top_p < 1.0:
            if candidates is None:
                scaled, candidates = torch.sort(scaled, dim=1, descending=True)
            probs = torch.softmax(scaled, dim=1)
            # drop an item when the items before it already reach top_p (the first always stays)
            drop = (probs.cumsum(1) - probs) >= self.top_p
            scaled = scaled.masked_fill(drop, float("-inf"))
        probs = torch.softmax(scaled, dim=1)
        choice = torch.multinomial(probs, 1, generator=generator).squeeze(1)
        items = choice if candidates is None else candidates.gather(1, choice[:, None]).squeeze(1)
        return items, candidates, probs
