"""Non-neural baselines on the same split: the floors a trained model must clear.

They follow the split's protocol through the histories they are given: a part's own inputs
(:meth:`seqrec.data.split.SplitData.inputs`; under leave-one-out the test input holds the validation item, which is
then seen and never recommended), scored against that part's targets (:meth:`~seqrec.data.split.SplitData.targets`).
"""

from __future__ import annotations

import numpy as np
import torch

from seqrec.data.padding import pad_sequences
from seqrec.data.split import Sequences
from seqrec.generation.ranking import mask_seen


def popularity_recs(
    item_counts: np.ndarray, train: Sequences, users: np.ndarray, k: int = 10, chunk: int = 4096
) -> np.ndarray:
    """The ``k`` most popular items each user has not seen in ``train`` (the users' histories: a split's inputs of
    their part), ``[len(users), k]`` item ids; popularity is ``item_counts`` (the train parts')."""
    pop = torch.as_tensor(item_counts, dtype=torch.float64)
    out = []
    for start in range(0, len(users), chunk):
        rows = np.asarray(users[start : start + chunk])
        scores = pop.expand(len(rows), -1).clone()
        mask_seen(scores, pad_sequences(train.select(rows), side="right"))
        out.append(torch.topk(scores, k, dim=1).indices)
    return torch.cat(out).numpy() if out else np.zeros((0, k), dtype=np.int64)


#: a model has left the popularity level (the start-up plateau of many-negative losses, gSASRec's) once its validation
#: NDCG@10 reaches this factor times the popularity baseline's on the same users: a level popularity cannot reach
#: by chance on 512+ validation users (scripts/bench/bench_gsasrec_plateau.py, the cross-check's report)
PLATEAU_FACTOR = 1.25


def popularity_validation_ndcg(split, k: int = 10) -> float:
    """NDCG@``k`` of the popularity baseline at the next held-out item of the validation users: the training
    monitor ``val_next_ndcg@k`` of a model that learnt popularity alone (same users, inputs and targets)."""
    from seqrec.evaluation.metrics import compute_metrics

    recs = popularity_recs(split.item_counts, split.inputs("val"), split.val_users, k=k)
    targets = split.targets(split.val_users, 1, part="val")
    return float(compute_metrics(recs, targets, split.item_counts, split.n_items, k=k)[f"ndcg@{k}"])


def markov_recs(
    item_counts: np.ndarray, train: Sequences, users: np.ndarray, k: int = 10, chunk: int = 4096,
    histories: Sequences | None = None,
) -> np.ndarray:
    """First-order Markov baseline: the ``k`` items that most often followed the user's last item in
    anyone's train part, ties (and users whose last item was never followed) by popularity; seen items
    excluded. ``[len(users), k]`` item ids. It sees only the last item, so it is the floor for what a
    sequence model gains from the rest of the history. ``histories``: the users' histories when they are not
    their train parts (a split's inputs of their part, e.g. leave-one-out's test inputs); transitions are
    counted on ``train`` either way."""
    from seqrec.data.split import ragged_index

    n = len(item_counts)
    first = np.zeros(len(train.items), dtype=bool)
    first[train.offsets[:-1][train.lengths > 0]] = True
    prev, nxt = np.roll(train.items, 1)[~first], train.items[~first]
    order = np.argsort(prev, kind="stable")
    prev, nxt = prev[order], nxt[order]
    indptr = np.concatenate([[0], np.cumsum(np.bincount(prev, minlength=n))])
    pop = np.asarray(item_counts, dtype=np.float64)
    tie_break = torch.as_tensor(pop / (pop.max() + 1.0))  # < 1: never outweighs one observed transition
    out = []
    for start in range(0, len(users), chunk):
        rows = np.asarray(users[start : start + chunk])
        seqs = (train if histories is None else histories).select(rows)
        last = np.where(seqs.lengths > 0, seqs.items[np.maximum(seqs.offsets[1:] - 1, 0)], 0)
        counts = indptr[last + 1] - indptr[last]
        flat = ragged_index(indptr[last], counts)
        scores = np.zeros((len(rows), n))
        np.add.at(scores, (np.repeat(np.arange(len(rows)), counts), nxt[flat]), 1.0)
        scores = torch.as_tensor(scores) + tie_break
        mask_seen(scores, pad_sequences(seqs, side="right"))
        out.append(torch.topk(scores, k, dim=1).indices)
    return torch.cat(out).numpy() if out else np.zeros((0, k), dtype=np.int64)
