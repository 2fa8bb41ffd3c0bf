"""Non-neural baselines on the same split: the floors a trained model must clear."""

from __future__ import annotations

import numpy as np
import torch

from seqrec.data.padding import pad_sequences
from seqrec.data.split import Sequences
from seqrec.recommend import mask_seen


def popularity_recs(
    item_counts: np.ndarray, train: Sequences, users: np.ndarray, k: int = 10, chunk: int = 4096
) -> np.ndarray:
    """The ``k`` most popular items each user has not seen, ``[len(users), k]`` item ids."""
    pop = torch.as_tensor(item_counts, dtype=torch.float64)
    out = []
    for start in range(0, len(users), chunk):
        rows = np.asarray(users[start : start + chunk])
        scores = pop.expand(len(rows), -1).clone()
        mask_seen(scores, pad_sequences(train.select(rows), side="right"))
        out.append(torch.topk(scores, k, dim=1).indices)
    return torch.cat(out).numpy() if out else np.zeros((0, k), dtype=np.int64)
