"""GPT-2 for next-item prediction, with KV caches (see :mod:`seqrec.models.cache`).

Architecturally identical to Hugging Face's ``GPT2LMHeadModel`` (pre-LayerNorm blocks,
tanh-GELU MLP, learned positions, output head tied to the item embeddings); module
names match HF's so weights convert by transposing the linear layers
(:func:`seqrec.models.hf_compat.to_hf_gpt2`, checked by a test). Differences on purpose:
``F.scaled_dot_product_attention``; positions derived from the attention mask (so left
and right padding give the same result); a cache that is written in place instead of
grown by concatenation.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from seqrec.data.padding import positions_from_mask
from seqrec.models.base import SequentialModel
from seqrec.models.blocks import causal_mask
from seqrec.models.cache import KVCache
from seqrec.models.dropout import Dropout, attention


class CausalSelfAttention(nn.Module):
    def __init__(self, n_embd: int, n_head: int, attn_dropout: float, resid_dropout: float):
        super().__init__()
        self.n_head = n_head
        self.c_attn = nn.Linear(n_embd, 3 * n_embd)
        self.c_proj = nn.Linear(n_embd, n_embd)
        self.attn_dropout = attn_dropout
        self.resid_dropout = Dropout(resid_dropout)

    def forward(self, x, mask, cache: KVCache | None, layer: int, last_only: bool = False):
        """``last_only`` (no cache): the last position's output only, ``[B, 1, C]``; its query sees every real
        position (its own row of the causal mask)."""
        B, T, C = x.shape
        q, k, v = self.c_attn(x).view(B, T, 3, self.n_head, C // self.n_head).permute(2, 0, 3, 1, 4)
        causal = mask is None
        if last_only:
            if cache is not None:
                raise ValueError("last_only computes the last query of a whole sequence; not with a KV cache")
            q, mask, causal, T = q[:, :, -1:], (None if mask is None else mask[:, :, -1:]), False, 1
        if cache is not None:
            y = cache.attend(layer, q, k, v)
        else:
            y = attention(
                q, k, v, attn_mask=mask, dropout_p=self.attn_dropout if self.training else 0.0, is_causal=causal
            )
        return self.resid_dropout(self.c_proj(y.transpose(1, 2).reshape(B, T, C)))


class MLP(nn.Module):
    def __init__(self, n_embd: int, n_inner: int, dropout: float):
        super().__init__()
        self.c_fc = nn.Linear(n_embd, n_inner)
        self.c_proj = nn.Linear(n_inner, n_embd)
        self.dropout = Dropout(dropout)

    def forward(self, x):
        return self.dropout(self.c_proj(F.gelu(self.c_fc(x), approximate="tanh")))


class Block(nn.Module):
    def __init__(self, n_embd, n_head, n_inner, dropout, attn_dropout, eps):
        super().__init__()
        self.ln_1 = nn.LayerNorm(n_embd, eps=eps)
        self.attn = CausalSelfAttention(n_embd, n_head, attn_dropout, dropout)
        self.ln_2 = nn.LayerNorm(n_embd, eps=eps)
        self.mlp = MLP(n_embd, n_inner, dropout)

    def forward(self, x, mask, cache, layer, last_only: bool = False):
        x = (x[:, -1:] if last_only else x) + self.attn(self.ln_1(x), mask, cache, layer, last_only)
        return x + self.mlp(self.ln_2(x))


class GPT2(SequentialModel):
    """GPT-2 over items ``1..n_items`` (0 = padding)."""

    encodes_last_only = True  # validation and Top-K run the last block for the last position only

    supports_cache = True

    def __init__(
        self,
        n_items: int,
        n_positions: int = 128,
        n_embd: int = 64,
        n_layer: int = 2,
        n_head: int = 1,
        n_inner: int | None = None,
        dropout: float = 0.1,
        attn_dropout: float | None = None,
        layer_norm_epsilon: float = 1e-5,
        initializer_range: float = 0.02,
        segment_embedding: bool = False,
        features: dict | None = None,
    ):
        super().__init__()
        if n_embd % n_head:
            raise ValueError(f"n_embd ({n_embd}) must be divisible by n_head ({n_head})")
        self.n_items, self.n_positions, self.n_embd = n_items, n_positions, n_embd
        self.n_layer, self.n_head = n_layer, n_head
        self.wte = nn.Embedding(n_items + 1, n_embd)
        self.wpe = nn.Embedding(n_positions, n_embd)
        self.drop = Dropout(dropout)
        attn_dropout = dropout if attn_dropout is None else attn_dropout
        self.h = nn.ModuleList(
            Block(n_embd, n_head, n_inner or 4 * n_embd, dropout, attn_dropout, layer_norm_epsilon)
            for _ in range(n_layer)
        )
        self.ln_f = nn.LayerNorm(n_embd, eps=layer_norm_epsilon)
        self._init_weights(initializer_range)
        if segment_embedding:
            self.add_segment_embedding(n_embd)
        if features:
            self.add_features(features, n_items + 1, n_embd)

    def _init_weights(self, std: float) -> None:
        for name, p in self.named_parameters():
            if name.endswith("bias"):
                nn.init.zeros_(p)
            elif "ln_" in name:
                nn.init.ones_(p)
            elif name.endswith("c_proj.weight"):  # GPT-2's scaled init of residual projections
                nn.init.normal_(p, std=std / math.sqrt(2 * self.n_layer))
            else:
                nn.init.normal_(p, std=std)

    def new_cache(self, batch_size: int, capacity: int) -> KVCache:
        return KVCache(self.n_layer, batch_size, self.n_head, self.n_embd // self.n_head, capacity, self.wte.weight)

    def encode(self, input_ids, attention_mask=None, cache=None, segments=None, events=None, last_only: bool = False):
        """Hidden states ``[B, T, C]``; ``last_only`` (no cache): of the last position only, ``[B, 1, C]`` (the last
        block computes attention and the MLP for that one query)."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids, dtype=torch.bool)
        attention_mask = attention_mask.bool()
        if cache is None:
            positions, mask = positions_from_mask(attention_mask), self._attention_mask(attention_mask)
        else:
            positions, mask = cache.begin(attention_mask), None
        if int(positions.max()) >= self.n_positions:
            raise ValueError(f"sequence longer than n_positions={self.n_positions}; crop the input")
        x = self.drop(self.wte(input_ids) + self.wpe(positions) + self.segment_embeddings(input_ids, segments)
                      + self.feature_embeddings(input_ids, events))
        for layer, block in enumerate(self.h):
            x = block(x, mask, cache, layer, last_only and layer == self.n_layer - 1)
        if cache is not None:
            cache.end()
        return self.ln_f(x)

    def history_budget(self, n_new: int) -> int:
        return self.n_positions - n_new

    _attention_mask = staticmethod(causal_mask)  # shared with SASRec (seqrec.models.blocks)

    def output_embeddings(self) -> torch.Tensor:
        return self.scoring_table(self.wte.weight)  # tied input/output item embeddings

    def item_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return hidden @ self.output_embeddings().T
