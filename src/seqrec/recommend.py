"""Top-K recommendation from a trained model: one forward pass, best unseen items."""

from __future__ import annotations

import numpy as np
import torch
from tqdm.auto import tqdm

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
    scores = model.next_item_logits(batch["input_ids"], batch["attention_mask"]).float()
    mask_seen(scores, batch["seen"] if filter_seen else None)
    top = torch.topk(scores, k, dim=1)
    return top.indices, top.values


@torch.no_grad()
def recommend_topk(
    model, loader, k: int, filter_seen: bool = True, device: str | torch.device = "cpu", desc: str = "top-k"
) -> tuple[np.ndarray, np.ndarray]:
    """Top-K for every user of an :class:`~seqrec.data.datasets.EvalDataset` loader.

    Returns item indices ``[U, k]`` and scores ``[U, k]`` in the loader's user order.
    """
    model.eval()
    items, scores = [], []
    for batch in tqdm(loader, desc=desc, leave=False, unit="batch"):
        batch = {key: t.to(device) for key, t in batch.items()}
        idx, val = topk_items(model, batch, k, filter_seen)
        items.append(idx.cpu())
        scores.append(val.cpu())
    return torch.cat(items).numpy(), torch.cat(scores).numpy()
