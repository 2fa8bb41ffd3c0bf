"""The state of a batch of generations: decoder (model + cache), rows, masks, generated items.

Rows are user-major: a batch of ``U`` users has ``U * width`` rows, user ``u`` owning rows
``u * width .. u * width + width - 1`` (beams or sampled sequences). Strategies only see
this class; whether the model decodes with a KV cache or by re-encoding is decided here.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

NEG_INF = float("-inf")


class CachedDecoder:
    """Prefill every history once, then feed one new item per row and step (KV cache).

    Histories are right-padded: the prefill then runs under a plain causal mask (the
    fastest attention kernel) and the scores are read at each row's last real item.
    A generated event's attributes are unknown (the model's default), or, with ``predict_events`` (a model
    whose ``predicts_events``), predicted from the hidden state that scored the item (kept per row).
    """

    padding_side = "right"

    def __init__(self, model, input_ids, attention_mask, n_new: int, events=None, predict_events: bool = False):
        self.model = model
        B, T = input_ids.shape
        cache = model.new_cache(B, T)
        # events: the history's event-attribute codes [B, T, E]
        hidden = model.encode(input_ids, attention_mask, cache, **({} if events is None else {"events": events}))
        last = attention_mask.sum(1).clamp_min(1) - 1
        hidden = hidden[torch.arange(B, device=hidden.device), last]
        self.first = model.item_logits(hidden)
        self.cache = cache.shared(n_new)
        self.hidden = hidden if predict_events else None

    def expand(self, width: int) -> None:
        self.cache.expand(width)
        if self.hidden is not None:
            self.hidden = self.hidden.repeat_interleave(width, 0)

    def reorder(self, rows: torch.Tensor) -> None:
        self.cache.reorder(rows)
        if self.hidden is not None:
            self.hidden = self.hidden[rows]

    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        # a model with a segment embedding sees the items it generated as segment 1 (RecGPT)
        extra = {"segments": torch.ones_like(tokens[:, None])} if getattr(self.model, "segments", False) else {}
        if self.hidden is None:
            return self.model.next_item_logits(tokens[:, None], None, self.cache, **extra)
        events = self.model.predict_events(self.hidden, tokens)[:, None]
        self.hidden, scores = self.model.next_item_state(tokens[:, None], None, self.cache, events=events, **extra)
        return scores


class RecomputeDecoder:
    """For models without a cache (e.g. bidirectional ones): re-encode the sequence each step. A generated
    event's attributes are unknown (code 0) or, with ``predict_events``, predicted as in :class:`CachedDecoder`."""

    padding_side = "left"

    def __init__(self, model, input_ids, attention_mask, n_new: int, events=None, predict_events: bool = False):
        self.model, self.ids, self.mask, self.events = model, input_ids, attention_mask.bool(), events
        self.history = input_ids.shape[1]
        self.predicts = predict_events
        if self.predicts and events is None:  # the history's attributes unknown, the generated ones predicted
            self.events = input_ids.new_zeros(*input_ids.shape, model.features.n_events)
        self.hidden, self.first = self._next(None)

    def _next(self, segments) -> tuple[torch.Tensor | None, torch.Tensor]:
        extra = {} if self.events is None else {"events": self.events}
        if segments is not None:
            extra["segments"] = segments
        if not self.predicts:
            return None, self.model.next_item_logits(self.ids, self.mask, **extra)
        return self.model.next_item_state(self.ids, self.mask, **extra)

    def expand(self, width: int) -> None:
        self.ids = self.ids.repeat_interleave(width, 0)
        self.mask = self.mask.repeat_interleave(width, 0)
        if self.events is not None:
            self.events = self.events.repeat_interleave(width, 0)
        if self.hidden is not None:
            self.hidden = self.hidden.repeat_interleave(width, 0)

    def reorder(self, rows: torch.Tensor) -> None:
        self.ids, self.mask = self.ids[rows], self.mask[rows]
        if self.events is not None:
            self.events = self.events[rows]
        if self.hidden is not None:
            self.hidden = self.hidden[rows]

    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        self.ids = torch.cat([self.ids, tokens[:, None]], 1)
        self.mask = torch.cat([self.mask, torch.ones_like(self.mask[:, :1])], 1)
        if self.events is not None:  # unknown (code 0), or predicted
            new = (self.model.predict_events(self.hidden, tokens) if self.predicts
                   else self.events.new_zeros(len(tokens), self.events.shape[-1]))
            self.events = torch.cat([self.events, new[:, None].to(self.events.dtype)], 1)
        segments = None
        if getattr(self.model, "segments", False):  # history 0, generated 1: the generated items are the last columns
            segments = torch.zeros_like(self.ids)
            segments[:, self.history:] = 1
        self.hidden, scores = self._next(segments)
        return scores


def decoder_class(model, use_cache: bool = True):
    """The decoder for ``model``: KV-cached where the model supports it."""
    return CachedDecoder if use_cache and getattr(model, "supports_cache", False) else RecomputeDecoder


@dataclass
class Context:
    """What every strategy needs besides the model: list length, bans, randomness."""

    k: int
    seen: torch.Tensor  # [U, V] bool: items never to recommend (column 0, padding, always)
    ban_generated: bool  # a sequence never repeats an item
    generator: torch.Generator | None = None


class GenerationState:
    """Rows of partial sequences; ``logits()`` gives next-item scores with every ban applied."""

    def __init__(self, decoder, ctx: Context):
        self.decoder, self.ctx = decoder, ctx
        self.users = ctx.seen.shape[0]
        self.width = 1
        self.generated = torch.zeros(self.users, 0, dtype=torch.long, device=ctx.seen.device)
        self._logits = decoder.first.float()
        self._pending: torch.Tensor | None = None
        # lists a strategy produces besides its main one, by name: (items [U, k], scores [U, k]) (multi-sequence
        # prefixes); the engine concatenates them over chunks
        self.variants: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    def logits(self) -> torch.Tensor:
        """``[rows, V]`` float scores of the next item with every ban applied (-inf).

        The caller owns the returned tensor and may modify it in place.
        """
        if self._pending is not None:
            scores = self.decoder.step(self._pending).float()
            self._pending = None
        else:  # the first call, or after expand(): keep the raw scores for a later expand()
            scores = self._logits.clone()
        V = scores.shape[1]
        scores.view(self.users, self.width, V).masked_fill_(self.ctx.seen[:, None, :], NEG_INF)
        if self.ctx.ban_generated and self.generated.shape[1]:
            scores.scatter_(1, self.generated, NEG_INF)
        return scores

    def expand(self, width: int) -> None:
        """Each row becomes ``width`` rows (before any item is pushed, or to branch later)."""
        if self._pending is not None:
            self._logits = self.decoder.step(self._pending).float()
            self._pending = None
        self.decoder.expand(width)
        self._logits = self._logits.repeat_interleave(width, 0)
        self.generated = self.generated.repeat_interleave(width, 0)
        self.width *= width

    def push(self, tokens: torch.Tensor, rows: torch.Tensor | None = None) -> None:
        """Append ``tokens[i]`` to row ``i``, which continues old row ``rows[i]`` (beam search)."""
        if rows is not None:
            self.decoder.reorder(rows)
            self.generated = self.generated[rows]
        self.generated = torch.cat([self.generated, tokens[:, None]], 1)
        self._pending = tokens
