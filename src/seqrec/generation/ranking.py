"""Top-K from one forward pass (validation during training) and seen-item masking."""

from __future__ import annotations

import torch

NEG_INF = float("-inf")


def mask_seen(scores: torch.Tensor, seen: torch.Tensor | None) -> torch.Tensor:
    """Set the scores of padding and of every item in ``seen`` (``[B, S]``, 0-padded) to -inf, in place."""
    scores[:, 0] = NEG_INF
    if seen is not None and seen.numel():
        scores.scatter_(1, seen, NEG_INF)
    return scores


@torch.no_grad()
def topk_items(
    model, batch: dict[str, torch.Tensor], k: int, filter_seen: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` best items after each history in ``batch`` and their scores."""
    extra = {"events": batch["events"]} if "events" in batch else {}  # event attributes of the history
    scores = model.next_item_logits(batch["input_ids"], batch["attention_mask"], **extra).float()
    mask_seen(scores, batch["seen"] if filter_seen else None)
    top = torch.topk(scores, k, dim=1)
    return top.indices, top.values
