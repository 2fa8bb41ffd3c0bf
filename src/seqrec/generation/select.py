"""The k best scores of each row, found through segment maxima instead of a partial sort of every row.

``torch.topk`` on a CPU keeps a heap of k (value, index) pairs while it walks the whole row: on ML-1M's 3,707
columns, k = 50, that was the largest item of multi-sequence generation's profile (a third of RRA's time). Here
the row is cut into ``S`` interleaved segments (column ``c`` belongs to segment ``c mod S``); their maxima come
from one vectorised reduction, ``topk`` picks the k segments with the largest maxima among those ``S`` values,
and the final ``topk`` runs over only those segments' columns.

Why it is exact: if an item among the row's k best lay in a segment outside the chosen k, each chosen segment
would hold a larger score than it (its maximum), k larger scores in all, and the item would not be among the k
best. So the chosen segments hold all k best scores: the values equal ``torch.topk``'s, sorted the same way, and
so do the indices wherever the scores differ. Among exactly equal scores (in practice only banned ``-inf``
columns, which a sampler never draws) the columns may come in another order.
"""

from __future__ import annotations

import torch

SEGMENT = 8  # columns per segment: fewer means more maxima to rank, more means more candidates in the final topk


def top_k(scores: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(values [R, k], indices [R, k])`` of each row's ``k`` largest ``scores``, sorted, as ``torch.topk``."""
    R, V = scores.shape
    S = V // SEGMENT
    if S < 4 * k or R == 0:  # too few segments to gain over one topk of the row
        return tuple(torch.topk(scores, k, dim=1))
    body = S * SEGMENT
    maxima = scores[:, :body].view(R, SEGMENT, S).amax(1)  # the maximum of segment s = columns s, s + S, ...
    chosen = torch.topk(maxima, k, dim=1, sorted=False).indices
    cols = (chosen[:, :, None] + S * torch.arange(SEGMENT, device=scores.device)).view(R, k * SEGMENT)
    if body < V:  # the last V - body columns belong to no segment: always candidates
        cols = torch.cat([cols, torch.arange(body, V, device=scores.device).expand(R, V - body)], 1)
    values, at = torch.topk(scores.gather(1, cols), k, dim=1)
    return values, cols.gather(1, at)
