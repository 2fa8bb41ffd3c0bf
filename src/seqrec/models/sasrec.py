"""SASRec (Kang & McAuley, 2018) with a KV cache; gSASRec is the same network.

Layout of the original implementation: item embeddings scaled by ``sqrt(d)`` plus
learned positions, dropout, ``num_blocks`` blocks of causal self-attention whose
queries (only) are layer-normalised, a point-wise feed-forward network (ReLU) with a
residual, and a final LayerNorm. Scores are dot products with the item embeddings
(``reuse_item_embeddings=True``) or with a separate output embedding table (gSASRec's
option). gSASRec (Petrov & Macdonald, 2023) differs only in training -- many sampled
negatives and the gBCE loss (:class:`seqrec.training.losses.gBCE`) -- so it is this class with
another config (``src/configs/model/gsasrec.yaml``).

Positions come from the attention mask, so left- and right-padded batches agree, and
the attention layers follow the cache protocol of :mod:`seqrec.models.cache`
(``begin`` / ``attend`` / ``end``), so the generation engine decodes it exactly like GPT-2.
"""

from __future__ import annotations

import torch
from torch import nn

from seqrec.data.padding import positions_from_mask
from seqrec.models.base import SequentialModel
from seqrec.models.blocks import ItemPositionEmbedding, TransformerBlock, causal_mask
from seqrec.models.cache import KVCache


#: initialisation of the item/position (and output) embedding tables: xavier (the original SASRec code, like every
#: other matrix) or normal (N(0, 1), PyTorch's default, which the gSASRec code keeps)
EMBEDDING_INITS = ("xavier", "normal")


class SASRec(SequentialModel):
    """Causal self-attentive next-item model over items ``1..n_items`` (0 = padding)."""

    encodes_last_only = True  # validation and Top-K run the last block for the last position only

    supports_cache = True

    def __init__(
        self,
        n_items: int,
        sequence_length: int = 128,
        embedding_dim: int = 64,
        num_blocks: int = 2,
        num_heads: int = 1,
        dropout_rate: float = 0.1,
        reuse_item_embeddings: bool = True,
        layer_norm_eps: float = 1e-8,
        segment_embedding: bool = False,
        embedding_init: str = "xavier",
        scale_embeddings: bool = True,
        features: dict | None = None,
    ):
        super().__init__()
        if embedding_init not in EMBEDDING_INITS:
            raise ValueError(f"embedding_init must be one of {', '.join(EMBEDDING_INITS)}; got {embedding_init!r}")
        if embedding_dim % num_heads:
            raise ValueError(f"embedding_dim ({embedding_dim}) must be divisible by num_heads ({num_heads})")
        self.n_items, self.sequence_length = n_items, sequence_length
        self.embedding_dim, self.num_blocks, self.num_heads = embedding_dim, num_blocks, num_heads
        self.embed = ItemPositionEmbedding(n_items + 1, sequence_length, embedding_dim, dropout_rate,
                                           scale=scale_embeddings)
        self.blocks = nn.ModuleList(
            TransformerBlock(
                embedding_dim, num_heads, embedding_dim, dropout_rate, dropout_rate, layer_norm_eps,
                act="relu", layout="sasrec",
            )
            for _ in range(num_blocks)
        )
        self.final_norm = nn.LayerNorm(embedding_dim, eps=layer_norm_eps)
        self.output_items = None if reuse_item_embeddings else nn.Embedding(n_items + 1, embedding_dim)
        self._init_weights(embedding_init)
        if segment_embedding:
            self.add_segment_embedding(embedding_dim)
        if features:
            self.add_features(features, n_items + 1, embedding_dim)

    def _init_weights(self, embedding_init: str) -> None:
        for name, p in self.named_parameters():
            if "norm" in name:
                nn.init.ones_(p) if name.endswith("weight") else nn.init.zeros_(p)
            elif embedding_init == "normal" and isinstance(self.get_submodule(name.rsplit(".", 1)[0]), nn.Embedding):
                nn.init.normal_(p)  # N(0, 1): PyTorch's default, kept by the gSASRec code
            elif p.dim() > 1:
                nn.init.xavier_normal_(p)  # as the original PyTorch SASRec
            else:
                nn.init.zeros_(p)
        with torch.no_grad():
            self.embed.item.weight[0].zero_()

    def new_cache(self, batch_size: int, capacity: int) -> KVCache:
        head_dim = self.embedding_dim // self.num_heads
        return KVCache(self.num_blocks, batch_size, self.num_heads, head_dim, capacity, self.embed.item.weight)

    def history_budget(self, n_new: int) -> int:
        return self.sequence_length - n_new

    def encode(self, input_ids, attention_mask=None, cache=None, segments=None, events=None, last_only: bool = False):
        """Hidden states ``[B, T, C]``; ``last_only`` (no cache): of the last position only, ``[B, 1, C]`` (the last
        block computes attention and feed-forward for that one query)."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids, dtype=torch.bool)
        attention_mask = attention_mask.bool()
        if cache is None:
            positions, mask = positions_from_mask(attention_mask), causal_mask(attention_mask)
        else:
            positions, mask = cache.begin(attention_mask), None
        x = self.embed(input_ids, positions,
                       self.segment_embeddings(input_ids, segments) + self.feature_embeddings(input_ids, events))
        last = len(self.blocks) - 1
        for layer, block in enumerate(self.blocks):
            x = block(x, mask, cache, layer, causal=True, last_only=last_only and layer == last)
        if cache is not None:
            cache.end()
        return self.final_norm(x)

    def item_embedding_tables(self) -> list[torch.Tensor]:
        return [self.embed.item.weight] + ([] if self.output_items is None else [self.output_items.weight])

    def output_embeddings(self) -> torch.Tensor:
        return self.scoring_table(self.embed.item.weight if self.output_items is None else self.output_items.weight)

    def item_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return hidden @ self.output_embeddings().T
