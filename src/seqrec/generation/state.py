"""The state of a batch of generations: decoder (model + cache), rows, masks, generated items.

Rows are user-major: a batch of ``U`` users has ``U * width`` rows, user ``u`` owning rows
``u * width .. u * width + width - 1`` (beams or sampled sequences). Strategies only see
this class; whether the model decodes with a KV cache or by re-encoding is decided here.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from seqrec.generation.select import top_k
from seqrec.models.base import SequentialModel

NEG_INF = float("-inf")


class CachedDecoder:
    """Prefill every history once, then feed one new item per row and step (KV cache).

    Histories are right-padded: the prefill then runs under a plain causal mask (the
    fastest attention kernel) and the scores are read at each row's last real item.
    A generated event's attributes are unknown (the model's default), or, with ``predict_events`` (a model
    whose ``predicts_events``), predicted from the hidden state that scored the item (kept per row).
    """

    padding_side = "right"
    shares_rows = "scores"  # the cache is per row; the output layer runs once per distinct sequence

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

    def step(self, tokens: torch.Tensor, score_rows: torch.Tensor | None = None) -> "Scores":
        """Feed ``tokens`` (one per row); the next-item scores of the rows ``score_rows`` (all when None)."""
        # a model with a segment embedding sees the items it generated as segment 1 (RecGPT)
        extra = {"segments": torch.ones_like(tokens[:, None])} if getattr(self.model, "segments", False) else {}
        if self.hidden is not None:
            extra["events"] = self.model.predict_events(self.hidden, tokens)[:, None]
        hidden, scores = next_scores(self.model, tokens[:, None], None, self.cache, self.hidden is not None, **extra)
        if self.hidden is not None:
            self.hidden = hidden
        return scores if score_rows is None else scores.take(score_rows)


class RecomputeDecoder:
    """For models without a cache (e.g. bidirectional ones): re-encode the sequence each step. A generated
    event's attributes are unknown (code 0) or, with ``predict_events``, predicted as in :class:`CachedDecoder`."""

    padding_side = "left"
    shares_rows = "decoder"  # one row per distinct sequence (GenerationState)

    def __init__(self, model, input_ids, attention_mask, n_new: int, events=None, predict_events: bool = False):
        self.model, self.ids, self.mask, self.events = model, input_ids, attention_mask.bool(), events
        self.history = input_ids.shape[1]
        self.predicts = predict_events
        if self.predicts and events is None:  # the history's attributes unknown, the generated ones predicted
            self.events = input_ids.new_zeros(*input_ids.shape, model.features.n_events)
        self.hidden, first = self._next(None)
        self.first = first.full()

    def _next(self, segments) -> tuple[torch.Tensor | None, "Scores"]:
        extra = {} if self.events is None else {"events": self.events}
        if segments is not None:
            extra["segments"] = segments
        return next_scores(self.model, self.ids, self.mask, None, self.predicts, **extra)

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

    def step(self, tokens: torch.Tensor) -> "Scores":
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


class Scores:
    """Next-item scores ``[rows, V]`` of some rows, kept as the hidden states they are read from and the model's
    output table while the model scores by the base composition (``item_logits(h) == h @ output_embeddings().T``),
    so that the output layer can run a block of rows at a time right before its consumer (bans, top-k) and the
    scores never leave the cache; otherwise the finished scores. The values are the same either way."""

    def __init__(self, hidden: torch.Tensor | None = None, model=None, full: torch.Tensor | None = None,
                 table: torch.Tensor | None = None):
        self.hidden, self.model, self._full = hidden, model, full
        if full is None and table is None:
            try:  # once per step, not per block (a feature-composed table is built on every call)
                table = model.output_embeddings()
            except TypeError:  # a model with item_logits only: scored through it, block by block
                table = None
        self.table = table

    def __len__(self) -> int:
        return len(self.hidden if self._full is None else self._full)

    def take(self, rows: torch.Tensor) -> "Scores":
        if self._full is not None:
            return Scores(full=self._full[rows])
        return Scores(self.hidden[rows], self.model, table=self.table)

    def full(self) -> torch.Tensor:
        """``[rows, V]`` float scores."""
        return self.block(0, len(self))

    def block(self, start: int, stop: int) -> torch.Tensor:
        """The float scores of rows ``start:stop``."""
        if self._full is not None:
            return self._full[start:stop].float()
        hidden = self.hidden[start:stop]
        return (self.model.item_logits(hidden) if self.table is None else hidden @ self.table.T).float()


def next_scores(model, input_ids, attention_mask, cache, want_hidden: bool, **extra):
    """``(hidden or None, Scores)`` of the next item after each sequence (see ``SequentialModel.next_item_state``):
    lazy where the model scores by the base composition, else from its own ``next_item_state``/``next_item_logits``."""
    cls = type(model)
    if cls.next_item_state is SequentialModel.next_item_state and cls.next_item_logits is SequentialModel.next_item_logits:
        hidden = model.next_item_hidden(input_ids, attention_mask, cache, **extra)
        return hidden, Scores(hidden, model)
    if want_hidden:
        hidden, scores = model.next_item_state(input_ids, attention_mask, cache, **extra)
        return hidden, Scores(full=scores)
    return None, Scores(full=model.next_item_logits(input_ids, attention_mask, cache, **extra))


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
    """Rows of partial sequences; ``logits()`` gives next-item scores with every ban applied.

    Rows with the same user and the same generated items so far (a *group*: sampled sequences that agree, the
    copies of a row right after ``expand``) have the same next-item scores, so each group is scored once: a
    decoder whose ``shares_rows`` is ``"decoder"`` keeps one row per group (the whole forward is shared, e.g.
    re-encoding BERT4Rec), one whose ``shares_rows`` is ``"scores"`` keeps every row (its cache is per row) but
    computes the output layer for one row per group (``step(tokens, score_rows)``); any other decoder scores
    every row. Strategies that only call :meth:`logits` see the same ``[rows, V]`` scores either way;
    :meth:`grouped_logits` hands out the ``[groups, V]`` scores and the row -> group map, so per-row work
    (top-k) can be done once per group too. Values are those of the row-by-row computation: one group's rows
    would have been computed from identical inputs.
    """

    def __init__(self, decoder, ctx: Context):
        self.decoder, self.ctx = decoder, ctx
        self.users = ctx.seen.shape[0]
        self.width = 1
        self.generated = torch.zeros(self.users, 0, dtype=torch.long, device=ctx.seen.device)
        self._sharing = getattr(decoder, "shares_rows", None)
        self.group = torch.arange(self.users, device=ctx.seen.device)  # row -> its group
        self.rep = self.group.clone()  # group -> its first row
        self._logits = decoder.first.float()  # [groups, V], raw (no bans)
        self._pending: torch.Tensor | None = None  # tokens to feed: per decoder row
        # lists a strategy produces besides its main one, by name: (items [U, k], scores [U, k]) (multi-sequence
        # prefixes); the engine concatenates them over chunks
        self.variants: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self._seen_lists: torch.Tensor | None = None  # [U, L]: each user's banned columns (see _banned_lists)
        self._lists_made = False

    @property
    def groups(self) -> int:
        return len(self.rep)

    def _scores(self) -> Scores:
        """The raw scores of the groups: after the pending tokens, or (the first call, or after expand()) the kept
        ones, which stay for a later expand()."""
        if self._pending is None:
            return Scores(full=self._logits.clone())
        tokens, self._pending = self._pending, None
        if self._sharing == "scores":
            every = len(self.rep) == len(self.group) and _is_identity(self.rep)
            scores = self.decoder.step(tokens, None if every else self.rep)
        else:
            scores = self.decoder.step(tokens)
        return scores if isinstance(scores, Scores) else Scores(full=scores)

    def _ban(self, scores: torch.Tensor, start: int = 0) -> torch.Tensor:
        """Set the banned items of groups ``start : start + len(scores)`` to -inf, in place."""
        rep = self.rep[start : start + len(scores)]
        if len(scores) == len(self.group) and _is_identity(rep):  # every row its own group: no gather of the bans
            scores.view(self.users, self.width, -1).masked_fill_(self.ctx.seen[:, None, :], NEG_INF)
        elif (lists := self._banned_lists()) is not None:  # short lists: write -inf at their columns
            scores.scatter_(1, lists[rep // self.width], NEG_INF)
        else:
            scores.masked_fill_(self.ctx.seen[rep // self.width], NEG_INF)
        if self.ctx.ban_generated and self.generated.shape[1]:
            scores.scatter_(1, self.generated[rep], NEG_INF)
        return scores

    def _banned_lists(self) -> torch.Tensor | None:
        """``[U, L]`` the columns ``ctx.seen`` bans for each user, padded with column 0 (always banned), or None
        when the longest list is over half the catalogue: writing -inf at L columns of a gathered row costs less
        than a masked fill of all V columns (a bool row gathered per group) up to about that length."""
        if not self._lists_made:
            self._lists_made = True
            seen = self.ctx.seen
            counts = seen.sum(1)
            longest = int(counts.max()) if len(counts) else 0
            if 2 * longest <= seen.shape[1]:
                rows, cols = seen.nonzero(as_tuple=True)
                at = torch.arange(len(rows), device=seen.device) - (torch.cumsum(counts, 0) - counts)[rows]
                self._seen_lists = torch.zeros(len(seen), longest, dtype=torch.long, device=seen.device)
                self._seen_lists[rows, at] = cols
        return self._seen_lists

    def grouped_logits(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(scores [groups, V], group [rows])``: row ``r``'s scores with every ban applied (-inf) are
        ``scores[group[r]]``. The caller owns ``scores`` and may modify it in place."""
        return self._ban(self._scores().full()), self.group

    def grouped_top(self, k: int, block: int | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(values [groups, k], items [groups, k], group [rows])``: each group's ``k`` best scores with every ban
        applied, sorted (``torch.topk`` of :meth:`grouped_logits`, the same values and order; equal scores may come in
        another order, see :mod:`seqrec.generation.select`), computed a block of groups at a time so that a block's
        scores stay in the cache from the output layer to the top-k."""
        scores = self._scores()
        V = self.ctx.seen.shape[1]
        block = block or max(16, (1 << 18) // V)  # ~1 MB of float scores per block
        parts = [top_k(self._ban(scores.block(i, i + block), i), k) for i in range(0, len(scores), block)]
        return torch.cat([v for v, _ in parts]), torch.cat([i for _, i in parts]), self.group

    def logits(self) -> torch.Tensor:
        """``[rows, V]`` float scores of the next item with every ban applied (-inf).

        The caller owns the returned tensor and may modify it in place.
        """
        scores, group = self.grouped_logits()
        return scores if len(scores) == len(group) and _is_identity(group) else scores[group]

    def expand(self, width: int) -> None:
        """Each row becomes ``width`` rows (before any item is pushed, or to branch later)."""
        if self._pending is not None:
            self._logits = self._scores().full()
        if self._sharing != "decoder":
            self.decoder.expand(width)
        if self._sharing is None:  # every row scored on its own
            self._logits = self._logits.repeat_interleave(width, 0)
            self.group = torch.arange(len(self.group) * width, device=self.group.device)
            self.rep = self.group.clone()
        else:  # the copies join their row's group
            self.group = self.group.repeat_interleave(width)
            self.rep = self.rep * width
        self.generated = self.generated.repeat_interleave(width, 0)
        self.width *= width

    def push(self, tokens: torch.Tensor, rows: torch.Tensor | None = None) -> None:
        """Append ``tokens[i]`` to row ``i``, which continues old row ``rows[i]`` (beam search)."""
        if rows is not None:
            self.generated = self.generated[rows]
        self.generated = torch.cat([self.generated, tokens[:, None]], 1)
        if self._sharing is None:
            if rows is not None:
                self.decoder.reorder(rows)
            self._pending = tokens
            return
        before = self.groups
        parent = self.group if rows is None else self.group[rows]
        V = self.ctx.seen.shape[1]
        keys, inverse = torch.unique(parent * V + tokens, return_inverse=True)  # new group: (old group, token)
        R, G = len(inverse), len(keys)
        row_ids = torch.arange(R, device=tokens.device)
        first = torch.full((G,), R, dtype=torch.long, device=tokens.device).scatter_reduce_(0, inverse, row_ids, "amin")
        # groups numbered in the order of their first rows: where no two rows agree, group and rep are the identity
        # (no gathers), as for beams
        order = torch.argsort(first)
        rank = torch.empty_like(order)
        rank[order] = torch.arange(G, device=tokens.device)
        keys, self.group, self.rep = keys[order], rank[inverse], first[order]
        if self._sharing == "decoder":  # decoder rows are groups: group g continues old group keys[g] // V
            old = torch.div(keys, V, rounding_mode="floor")
            if len(old) != before or not _is_identity(old):
                self.decoder.reorder(old)
            self._pending = keys - old * V
        else:
            if rows is not None:
                self.decoder.reorder(rows)
            self._pending = tokens


def _is_identity(index: torch.Tensor) -> bool:
    return bool((index == torch.arange(len(index), device=index.device)).all())
