"""Building blocks shared by the SASRec family and BERT4Rec (and the masks GPT-2 uses).

* :class:`ItemPositionEmbedding` -- item embedding + learned positional embedding, with
  the optional ``sqrt(d)`` scaling of SASRec and the LayerNorm of BERT.
* :class:`MultiHeadAttention` -- separate query and key/value inputs (SASRec normalises
  only the queries), ``F.scaled_dot_product_attention``, and the KV-cache protocol of
  :mod:`seqrec.models.cache` (``cache.attend(layer, q, k, v)``).
* :class:`TransformerBlock` -- attention + point-wise feed-forward in three layouts:
  ``"sasrec"``, the original SASRec block (``Q = LN(x); x = Q + Attn(Q, x); x = LN(x); x = x + FFN(x)``);
  ``"post_ln"``, the BERT block (``x = LN(x + Attn(x)); x = LN(x + FFN(x))``); ``"pre_ln"``, the
  pre-LN block of GPT-2 and most later transformers (``x = x + Attn(LN(x)); x = x + FFN(LN(x))``; the model
  adds a final LayerNorm).
* :func:`causal_mask`, :func:`padding_mask` -- boolean attention masks from an
  attention mask of real tokens (None when the plain causal / no mask is exact).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from seqrec.models.dropout import Dropout, attention

ACTIVATIONS = {
    "gelu": F.gelu,
    "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "relu": F.relu,
    "swish": F.silu,
    "silu": F.silu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
}


def activation(name: str):
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; use one of {', '.join(ACTIVATIONS)}") from None


def causal_mask(attention_mask: torch.Tensor) -> torch.Tensor | None:
    """``[B, 1, T, T]`` causal mask without padded keys, or None when plain causal is exact.

    Padded query rows may see themselves, so no softmax row is empty (their outputs
    are never used).
    """
    if bool(attention_mask.all()):
        return None
    T = attention_mask.shape[1]
    idx = torch.arange(T, device=attention_mask.device)
    allowed = ((idx[None, :] <= idx[:, None]) & attention_mask[:, None, :]) | torch.eye(
        T, dtype=torch.bool, device=attention_mask.device
    )
    return allowed[:, None]


def padding_mask(attention_mask: torch.Tensor) -> torch.Tensor | None:
    """``[B, 1, 1, T]`` bidirectional mask hiding padded keys, or None without padding.

    Every row must hold at least one real token (otherwise its softmax would be empty).
    """
    if bool(attention_mask.all()):
        return None
    return attention_mask[:, None, None, :]


class ItemPositionEmbedding(nn.Module):
    """``dropout(norm(item(ids) * scale + position(pos)))``; item 0 (padding) embeds to zero."""

    def __init__(
        self,
        n_tokens: int,
        n_positions: int,
        dim: int,
        dropout: float,
        scale: bool = False,
        layer_norm_eps: float | None = None,
    ):
        super().__init__()
        self.n_positions = n_positions
        self.item = nn.Embedding(n_tokens, dim, padding_idx=0)
        self.position = nn.Embedding(n_positions, dim)
        self.scale = math.sqrt(dim) if scale else 1.0
        self.norm = nn.LayerNorm(dim, eps=layer_norm_eps) if layer_norm_eps is not None else None
        self.dropout = Dropout(dropout)

    def forward(self, input_ids: torch.Tensor, positions: torch.Tensor, extra=0) -> torch.Tensor:
        if positions.numel() and int(positions.max()) >= self.n_positions:
            raise ValueError(f"sequence longer than the model's {self.n_positions} positions; crop the input")
        x = self.item(input_ids) * self.scale + self.position(positions) + extra
        if self.norm is not None:
            x = self.norm(x)
        return self.dropout(x)


class MultiHeadAttention(nn.Module):
    def __init__(self, dim: int, n_heads: int, attn_dropout: float):
        super().__init__()
        if dim % n_heads:
            raise ValueError(f"the hidden size ({dim}) must be divisible by the number of heads ({n_heads})")
        self.n_heads, self.attn_dropout = n_heads, attn_dropout
        self.query = nn.Linear(dim, dim)
        self.key = nn.Linear(dim, dim)
        self.value = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, query, key_value, mask, cache, layer: int, causal: bool):
        B, T, C = query.shape

        def heads(t):  # queries may be fewer than keys (BERT4Rec's last layer at prediction: one query)
            return t.view(B, t.shape[1], self.n_heads, C // self.n_heads).transpose(1, 2)

        q, k, v = heads(self.query(query)), heads(self.key(key_value)), heads(self.value(key_value))
        if cache is not None:
            y = cache.attend(layer, q, k, v)
        else:
            y = attention(
                q, k, v, attn_mask=mask, dropout_p=self.attn_dropout if self.training else 0.0,
                is_causal=causal and mask is None,
            )
        return self.out(y.transpose(1, 2).reshape(B, T, C))


class FeedForward(nn.Module):
    """Point-wise feed-forward: ``dropout(W2 dropout(act(W1 x)))``."""

    def __init__(self, dim: int, inner: int, dropout: float, act: str):
        super().__init__()
        self.fc1 = nn.Linear(dim, inner)
        self.fc2 = nn.Linear(inner, dim)
        self.act = activation(act)
        self.dropout = Dropout(dropout)

    def forward(self, x):
        return self.dropout(self.fc2(self.dropout(self.act(self.fc1(x)))))


class TransformerBlock(nn.Module):
    LAYOUTS = ("sasrec", "post_ln", "pre_ln")

    def __init__(
        self,
        dim: int,
        n_heads: int,
        inner: int,
        dropout: float,
        attn_dropout: float,
        eps: float,
        act: str = "relu",
        layout: str = "sasrec",
    ):
        super().__init__()
        if layout not in self.LAYOUTS:
            raise ValueError(f"unknown block layout {layout!r}; use one of {', '.join(self.LAYOUTS)}")
        self.layout = layout
        self.attn_norm = nn.LayerNorm(dim, eps=eps)
        self.attn = MultiHeadAttention(dim, n_heads, attn_dropout)
        self.ffn_norm = nn.LayerNorm(dim, eps=eps)
        self.ffn = FeedForward(dim, inner, dropout, act)
        self.dropout = Dropout(dropout)

    def forward(self, x, mask=None, cache=None, layer: int = 0, causal: bool = True, last_only: bool = False,
                query_index: torch.Tensor | None = None):
        """Outputs ``[B, T, C]``, or of some positions only: ``last_only``, the last one (``[B, 1, C]``; causal or
        not: the last query sees every real position); ``query_index`` ``[B, M]``, those positions of each row
        (``[B, M, C]``; bidirectional only). The other positions' attention and feed-forward are skipped. Not with
        a cache (there every position's keys must be written)."""
        if (last_only or query_index is not None) and cache is not None:
            raise ValueError("last_only/query_index compute some queries of a whole sequence; not with a KV cache")
        if query_index is not None and causal:
            raise ValueError("query_index is for bidirectional blocks (a causal query would need its own mask row)")
        if last_only and causal:  # the last query's own row of the causal mask: every real position
            mask, causal = (None if mask is None else mask[:, :, -1:]), False

        def rows(t):  # the query positions' rows of t [B, T, C]
            if last_only:
                return t[:, -1:]
            if query_index is not None:
                return t.gather(1, query_index[..., None].expand(-1, -1, t.shape[-1]))
            return t

        if self.layout == "sasrec":  # original SASRec: only the queries are normalised
            q = self.attn_norm(rows(x))
            x = q + self.attn(q, x, mask, cache, layer, causal)
            x = self.ffn_norm(x)
            return x + self.ffn(x)
        if self.layout == "pre_ln":
            keys = self.attn_norm(x)
            x = rows(x) + self.dropout(self.attn(rows(keys), keys, mask, cache, layer, causal))
            return x + self.ffn(self.ffn_norm(x))
        query = rows(x)
        x = self.attn_norm(query + self.dropout(self.attn(query, x, mask, cache, layer, causal)))
        return self.ffn_norm(x + self.ffn(x))
