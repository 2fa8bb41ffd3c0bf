"""The interface every sequential model implements.

The Lightning module trains through ``encode`` + ``item_logits`` (plus a loss), and the
generation engine only ever calls ``next_item_logits`` with an optional cache from
``new_cache``: no strategy knows which model it runs.
"""

from __future__ import annotations

import torch
from torch import nn


class SequentialModel(nn.Module):
    """Base class: item sequences in, item scores out (item 0 is padding)."""

    n_items: int
    supports_cache: bool = False  # True: new_cache() gives a cache the generation engine can use

    def encode(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, cache=None
    ) -> torch.Tensor:
        """Hidden states ``[B, T, C]`` for ``input_ids`` ``[B, T]`` (0 = padding)."""
        raise TypeError(f"{type(self).__name__} does not define encode(); training and the default next_item_logits need it")

    def item_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Scores over the whole vocabulary ``[..., n_items + 1]`` (column 0 is padding)."""
        raise TypeError(f"{type(self).__name__} does not define item_logits(); training and the default next_item_logits need it")

    def output_embeddings(self) -> torch.Tensor:
        """``[n_items + 1, C]`` matrix with ``item_logits(h) == h @ output_embeddings().T``."""
        raise TypeError(f"{type(self).__name__} does not define output_embeddings(); the fused training losses need it")

    def new_cache(self, batch_size: int, capacity: int):
        """An empty cache for ``batch_size`` rows and ``capacity`` positions, or None.

        Models without a cache are generated from by re-encoding the whole sequence at
        every step (the generation engine handles both).
        """
        return None

    def history_budget(self, n_new: int) -> int | None:
        """How many history items fit when ``n_new`` items will be appended (None: unlimited)."""
        return None

    def next_item_logits(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, cache=None
    ) -> torch.Tensor:
        """Scores of the next item after each (left-padded) sequence: ``[B, n_items + 1]``."""
        hidden = self.encode(input_ids, attention_mask, cache)
        return self.item_logits(hidden[:, -1])
