"""BERT4Rec (Sun et al., 2019): a bidirectional encoder trained to fill in masked items.

Token ids: ``0`` padding, ``1..n_items`` items, ``n_items + 1`` the ``[MASK]`` token.
Blocks are post-LN transformer blocks (RecBole's layout: embedding LayerNorm and
dropout, ``n_layers`` blocks, a dense + activation + LayerNorm output head), or, with
``layer_norm="pre"``, pre-LN blocks followed by a final LayerNorm (an option for faster,
warm-up-free training; scripts/bench/bench_convergence.py measures both); scores are
dot products with the item embeddings of ``0..n_items`` only, so the score columns are
those of every other model (column 0 = padding, never recommended).

Next-item scores: ``[MASK]`` is appended after the (left-padded) history and its
output is scored. There is no KV cache -- every position attends to every other, so
appending an item changes all of them -- and the generation engine re-encodes the
sequence at every step (``supports_cache = False``).
"""

from __future__ import annotations

import torch
from torch import nn

from seqrec.data.padding import positions_from_mask
from seqrec.models.base import SequentialModel
from seqrec.models.blocks import ItemPositionEmbedding, TransformerBlock, activation, padding_mask


#: rows per padding group at least: a matrix product of 1 to 3 rows takes the matrix-vector path, whose sums differ
#: from the matrix-matrix path's in the last bits (with 4 rows or more each row's result is that of any batch)
MIN_GROUP_ROWS = 4


def _padding_groups(cut: torch.Tensor):
    """``(cut, rows)`` per group of rows encoded together: rows of one cut, or (a group with fewer than
    ``MIN_GROUP_ROWS`` rows) joined with the rows of the next smaller cuts, cut as little as the least-padded
    row allows; ``rows`` is ``slice(None)`` when one group holds every row."""
    levels = torch.unique(cut).tolist()
    if len(levels) == 1:
        yield int(levels[0]), slice(None)
        return
    groups, pending = [], None
    for c in reversed(levels):  # most padding first; a small group waits for the next level
        rows = (cut == c).nonzero().squeeze(1)
        pending = rows if pending is None else torch.cat([pending, rows])
        if len(pending) >= MIN_GROUP_ROWS:
            groups.append([c, pending])
            pending = None
    if pending is not None:  # the least-padded rows, too few: they join the last group, at their cut
        if groups:
            groups[-1] = [c, torch.cat([groups[-1][1], pending])]
        else:
            groups.append([c, pending])
    if len(groups) == 1:
        groups = [[groups[0][0], slice(None)]]
    yield from (tuple(group) for group in groups)


class BERT4Rec(SequentialModel):
    supports_cache = False
    #: next-item scores compute the last block for the [MASK] query only (the others' outputs are never read);
    #: False runs every position through every block (for the benchmark, scripts/bench/bench_bert4rec.py)
    last_query_only = True
    #: rows per generation chunk at most: re-encoding 4,096 windows of 128 at once is memory-bound (its attention
    #: maps alone ~0.5 GB per layer); on ML-1M, 2 CPU threads, RRA N = 20 takes 51 ms/user at 1,024 rows against
    #: 96 at 4,096 (scripts/bench/bench_bert4rec.py)
    max_generation_rows = 1024
    #: next-item scores cut the left padding that rows of a batch share, in whole steps of this many columns (see
    #: :meth:`_last_hidden`); 0 encodes every row at the batch's full width
    padding_step = 16

    def __init__(
        self,
        n_items: int,
        max_seq_length: int = 128,
        hidden_size: int = 64,
        inner_size: int = 256,
        n_layers: int = 2,
        n_heads: int = 2,
        hidden_dropout_prob: float = 0.1,
        attn_dropout_prob: float = 0.1,
        hidden_act: str = "gelu",
        layer_norm_eps: float = 1e-12,
        initializer_range: float = 0.02,
        layer_norm: str = "post",
        features: dict | None = None,
    ):
        super().__init__()
        if hidden_size % n_heads:
            raise ValueError(f"hidden_size ({hidden_size}) must be divisible by n_heads ({n_heads})")
        if max_seq_length < 2:
            raise ValueError(f"max_seq_length must be >= 2 (history + [MASK]), got {max_seq_length}")
        self.n_items, self.max_seq_length = n_items, max_seq_length
        self.mask_token = n_items + 1
        self.embed = ItemPositionEmbedding(
            n_items + 2, max_seq_length, hidden_size, hidden_dropout_prob, layer_norm_eps=layer_norm_eps
        )
        self.blocks = nn.ModuleList(
            TransformerBlock(
                hidden_size, n_heads, inner_size, hidden_dropout_prob, attn_dropout_prob, layer_norm_eps,
                act=hidden_act, layout=f"{layer_norm}_ln",
            )
            for _ in range(n_layers)
        )
        self.final_norm = nn.LayerNorm(hidden_size, eps=layer_norm_eps) if layer_norm == "pre" else nn.Identity()
        self.head = nn.Linear(hidden_size, hidden_size)
        self.head_act = activation(hidden_act)
        self.head_norm = nn.LayerNorm(hidden_size, eps=layer_norm_eps)
        self._init_weights(initializer_range)
        if features:  # [MASK] (token n_items + 1) has no attributes
            self.add_features(features, n_items + 2, hidden_size)

    def _init_weights(self, std: float) -> None:
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, std=std)
                if isinstance(module, nn.Linear):
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        with torch.no_grad():
            self.embed.item.weight[0].zero_()

    def encode(self, input_ids, attention_mask=None, cache=None, last_only: bool = False, events=None,
               query_index=None):
        """Hidden states ``[B, T, C]``; ``last_only``: of the last position only, ``[B, 1, C]``; ``query_index``
        ``[B, M]``: of those positions, ``[B, M, C]`` (the last block then computes attention and feed-forward for
        those queries alone, and the head runs on them alone)."""
        if cache is not None:
            raise ValueError("BERT4Rec is bidirectional and has no KV cache")
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids, dtype=torch.bool)
        attention_mask = attention_mask.bool()
        mask = padding_mask(attention_mask)
        x = self.embed(input_ids, positions_from_mask(attention_mask), self.feature_embeddings(input_ids, events))
        last = len(self.blocks) - 1
        for layer, block in enumerate(self.blocks):
            x = block(x, mask, None, layer, causal=False, last_only=last_only and layer == last,
                      query_index=query_index if layer == last else None)
        return self.head_norm(self.head_act(self.head(self.final_norm(x))))

    def encode_targets(self, input_ids, attention_mask, targets, **extra):
        """``encode(...)[targets]``, the masked positions' hidden states, with the last block run for those
        queries only: the loss reads no other position, and with masking proportion 0.2 the last block's attention
        and feed-forward shrink about five-fold (BERT4Rec_train on ML-1M: 1.29x per epoch,
        results/bench/commits_train.csv, scripts/bench/bench_commits.py --train-configs BERT4Rec_train)."""
        counts = targets.sum(1)
        width = int(counts.max()) if counts.numel() else 0
        if width == 0:
            return self.encode(input_ids, attention_mask, **extra)[targets]
        # each row's target positions in order, first (a stable sort of "not a target"), padded with other positions
        index = torch.sort((~targets).to(torch.uint8), dim=1, stable=True).indices[:, :width]
        hidden = self.encode(input_ids, attention_mask, query_index=index, **extra)
        return hidden[torch.arange(width, device=counts.device) < counts[:, None]]

    def output_embeddings(self) -> torch.Tensor:
        return self.scoring_table(self.embed.item.weight[: self.n_items + 1])  # [MASK] is never a candidate

    def item_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return hidden @ self.output_embeddings().T

    def history_budget(self, n_new: int) -> int:
        # n_new - 1 generated items are fed back before the last prediction, plus [MASK]
        return self.max_seq_length - n_new

    def next_item_hidden(self, input_ids, attention_mask=None, cache=None, segments=None, events=None):
        """The appended [MASK]'s hidden state (see :meth:`SequentialModel.next_item_hidden`)."""
        if segments is not None:
            raise ValueError("BERT4Rec has no segment embedding")
        if cache is not None:
            raise ValueError("BERT4Rec is bidirectional and has no KV cache")
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids, dtype=torch.bool)
        keep = self.max_seq_length - 1  # the most recent items that fit beside [MASK]
        input_ids, attention_mask = input_ids[:, -keep:], attention_mask[:, -keep:].bool()
        B = input_ids.shape[0]
        ids = torch.cat([input_ids, input_ids.new_full((B, 1), self.mask_token)], 1)
        mask = torch.cat([attention_mask, attention_mask.new_ones(B, 1)], 1)
        if events is not None:  # [MASK]'s event attributes are unknown (0)
            events = torch.cat([events[:, -keep:], events.new_zeros(B, 1, events.shape[-1])], 1)
        return self._last_hidden(ids, mask, events)

    def _last_hidden(self, ids, mask, events):
        """The last position's hidden state ``[B, C]`` of left-padded rows, rows encoded in groups of the same
        padding, each group without the columns of padding its rows share, in whole steps of ``padding_step``.

        A row's result does not depend on the padding before it (positions count from its first real item, padded
        keys are masked out), and a cut of a multiple of 16 columns leaves every float32 sum of SDPA's CPU kernel
        (16-wide vectors over the keys) the same terms in the same order: the same bits as the uncut batch
        (tests/test_models.py). ML-1M's histories are mostly shorter than the window, so generation re-encodes
        far fewer columns (the attention over them is quadratic)."""
        step = self.padding_step
        if not step or ids.shape[0] == 0:
            return self.encode(ids, mask, last_only=self.last_query_only, events=events)[:, -1]
        leading = torch.where(mask.any(1), mask.int().argmax(1), 0)  # columns before each row's first real one
        cut = torch.div(leading, step, rounding_mode="floor") * step
        out = None
        for c, rows in _padding_groups(cut):
            part = self.encode(ids[rows, c:], mask[rows, c:], last_only=self.last_query_only,
                               events=None if events is None else events[rows, c:])[:, -1]
            if isinstance(rows, slice):
                return part
            if out is None:
                out = part.new_empty(ids.shape[0], part.shape[1])
            out[rows] = part
        return out
