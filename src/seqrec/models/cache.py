"""Key/value caches for causal transformer stacks (GPT-2, SASRec), written in place.

Two layouts, one interface (``begin`` / ``attend`` / ``end`` / ``expand`` / ``reorder``):

* :class:`KVCache` -- one row per sequence, preallocated to its final length; used to
  prefill the users' histories (left-padded) in one pass.
* :class:`SharedPrefixCache` -- what generation runs on: every user's history keys and
  values are stored **once** and shared by the ``width`` rows (beams or sampled
  sequences) of that user; only the generated suffix is stored per row. Attention of
  a new item is computed against the shared prefix with one batched product per user
  (the ``width`` queries act as a query block), so nothing is duplicated per sequence.

The model calls ``positions = cache.begin(new_valid)`` before its layers, then
``cache.attend(layer, q, k, v)`` inside each attention layer, then ``cache.end()``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


class KVCache:
    """Keys/values of ``n_layer`` layers for ``batch`` rows and up to ``capacity`` positions.

    A prefill that fills the whole capacity at once keeps the layers' keys/values as they
    are (no copy); otherwise a buffer is allocated once and written in place.
    """

    def __init__(self, n_layer: int, batch: int, n_head: int, head_dim: int, capacity: int, like: torch.Tensor):
        self.shape = (batch, n_head, capacity, head_dim)
        self.like = like
        self.k: list[torch.Tensor | None] = [None] * n_layer
        self.v: list[torch.Tensor | None] = [None] * n_layer
        self.valid = torch.zeros(batch, capacity, dtype=torch.bool, device=like.device)
        self.n_valid = torch.zeros(batch, dtype=torch.long, device=like.device)
        self.length = 0
        self._mask: torch.Tensor | None = None
        self._causal = False
        self._new_valid: torch.Tensor | None = None

    def begin(self, new_valid: torch.Tensor) -> torch.Tensor:
        """Prepare a step that appends ``new_valid.shape[1]`` positions; return their position ids."""
        T, past = new_valid.shape[1], self.length
        end = past + T
        self.valid[:, past:end] = new_valid
        self._new_valid = new_valid
        if past == 0 and bool((new_valid[:, 1:] <= new_valid[:, :-1]).all()):
            # a first block whose padding (if any) is on the right: a plain causal mask is exact
            # for every real position (padded ones are never read), and the fastest kernel
            self._mask, self._causal = None, T > 1
        else:
            q_idx = torch.arange(past, end, device=new_valid.device)[:, None]
            k_idx = torch.arange(end, device=new_valid.device)[None, :]
            # causal and no padding; a padded query may see itself so no softmax row is empty
            allowed = ((k_idx <= q_idx) & self.valid[:, None, :end]) | (k_idx == q_idx)
            self._mask, self._causal = (None if bool(allowed.all()) else allowed[:, None]), False
        return self.n_valid[:, None] + (new_valid.long().cumsum(1) - 1).clamp_min(0)

    def attend(self, layer: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        T = k.shape[2]
        end = self.length + T
        if self.k[layer] is None and self.length == 0 and T == self.shape[2]:
            self.k[layer], self.v[layer] = k, v
        else:
            if self.k[layer] is None:
                self.k[layer], self.v[layer] = self.like.new_empty(self.shape), self.like.new_empty(self.shape)
            self.k[layer][:, :, self.length : end] = k
            self.v[layer][:, :, self.length : end] = v
        return F.scaled_dot_product_attention(
            q, self.k[layer][:, :, :end], self.v[layer][:, :, :end], attn_mask=self._mask, is_causal=self._causal
        )

    def end(self) -> None:
        self.n_valid += self._new_valid.sum(1)
        self.length += self._new_valid.shape[1]
        self._mask = self._new_valid = None

    def select(self, rows: torch.Tensor) -> "KVCache":
        """A new cache holding ``rows`` (copies)."""
        out = KVCache.__new__(KVCache)
        out.shape, out.like = (len(rows), *self.shape[1:]), self.like
        out.k = [None if t is None else t[rows] for t in self.k]
        out.v = [None if t is None else t[rows] for t in self.v]
        out.valid, out.n_valid, out.length = self.valid[rows], self.n_valid[rows], self.length
        out._mask, out._causal, out._new_valid = None, False, None
        return out

    def shared(self, suffix_capacity: int) -> "SharedPrefixCache":
        """This cache as the shared prefix of a :class:`SharedPrefixCache` (no copy)."""
        return SharedPrefixCache(self, suffix_capacity)


class SharedPrefixCache:
    """A per-user history prefix shared by ``width`` rows per user, plus per-row suffixes.

    Rows are user-major: row ``r`` belongs to user ``r // width``. ``reorder`` may only
    move rows within their user (beam search), since the prefix is per user.
    """

    def __init__(self, prefix: KVCache, suffix_capacity: int):
        # laid out once for the per-step products: keys as [U, H, D, L], values as [U, H, L, D]
        self.pk_t = [k[:, :, : prefix.length].transpose(-1, -2).contiguous() for k in prefix.k]
        self.pv = [v[:, :, : prefix.length].contiguous() for v in prefix.v]
        self.prefix_valid = prefix.valid[:, : prefix.length]
        self.prefix_n_valid = prefix.n_valid
        users, n_head, head_dim, _ = self.pk_t[0].shape
        self.users, self.width, self.capacity = users, 1, suffix_capacity
        self.sk = self.pv[0].new_empty(len(self.pv), users, n_head, suffix_capacity, head_dim)
        self.sv = torch.empty_like(self.sk)
        self.length = 0
        self.scale = 1.0 / math.sqrt(head_dim)
        self._prefix_bias = torch.zeros(self.prefix_valid.shape, dtype=self.pv[0].dtype, device=self.sk.device)
        self._prefix_bias.masked_fill_(~self.prefix_valid, float("-inf"))
        self._prefix_bias = self._prefix_bias[:, None, None, :]  # [U, 1, 1, L]
        self._row_positions: torch.Tensor | None = None

    @property
    def rows(self) -> int:
        return self.users * self.width

    def expand(self, width: int) -> None:
        """Give every row ``width`` copies (its suffix so far is copied, the prefix is not)."""
        self.sk = self.sk.repeat_interleave(width, dim=1)
        self.sv = self.sv.repeat_interleave(width, dim=1)
        self.width *= width

    def reorder(self, rows: torch.Tensor) -> None:
        """Row ``i`` continues from old row ``rows[i]`` (which must belong to the same user)."""
        self.sk = self.sk[:, rows]
        self.sv = self.sv[:, rows]

    def limit_prefix(self, limits: torch.Tensor) -> None:
        """Row ``r`` sees only the first ``limits[r]`` prefix positions of its user (a right-padded prefix), and its
        suffix continues at position ``limits[r]``: every row is its user's history cut at its own point (RecGPT's
        insert mode generates after every real item of a window from one prefill of the window)."""
        U, W, L = self.users, self.width, self.pv[0].shape[2]
        cut = torch.arange(L, device=limits.device)[None, :] >= limits[:, None]  # [R, L]
        bias = self._prefix_bias.expand(U, 1, W, L).clone()
        bias.masked_fill_(cut.view(U, W, L)[:, None], float("-inf"))
        self._prefix_bias, self._row_positions = bias, limits.long()

    def begin(self, new_valid: torch.Tensor) -> torch.Tensor:
        if new_valid.shape[1] != 1:
            raise ValueError("a shared-prefix cache appends one item per row and step")
        if self._row_positions is not None:
            return self._row_positions[:, None] + self.length
        return self.prefix_n_valid.repeat_interleave(self.width)[:, None] + self.length

    def attend(self, layer: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        R, H, _, D = q.shape  # one query per row
        U, W, t = self.users, self.width, self.length
        self.sk[layer, :, :, t] = k[:, :, 0]
        self.sv[layer, :, :, t] = v[:, :, 0]
        q_users = q.view(U, W, H, D).transpose(1, 2)  # [U, H, W, D]: a user's rows share its prefix
        s_prefix = torch.matmul(q_users, self.pk_t[layer]).mul_(self.scale)  # [U, H, W, L]
        s_prefix += self._prefix_bias
        s_suffix = torch.matmul(q, self.sk[layer, :, :, : t + 1].transpose(-1, -2)).mul_(self.scale)  # [R, H, 1, t+1]
        s_suffix = s_suffix.view(U, W, H, t + 1).transpose(1, 2)  # [U, H, W, t+1]
        probs = torch.softmax(torch.cat([s_prefix, s_suffix], dim=-1), dim=-1)
        L = s_prefix.shape[-1]
        out = torch.matmul(probs[..., :L], self.pv[layer])  # [U, H, W, D]
        p_suffix = probs[..., L:].transpose(1, 2).reshape(R, H, 1, t + 1)
        out = out.transpose(1, 2).reshape(R, H, 1, D) + torch.matmul(p_suffix, self.sv[layer, :, :, : t + 1])
        return out

    def end(self) -> None:
        self.length += 1
