"""A synthetic log whose next-item distribution is known in closed form, and its oracle recommender.

The log is drawn from a **taste-mixture Markov chain on a DAG**:

* Items ``0..N-1`` are ordered; from item ``i`` a user moves to ``j in i+1 .. i+window`` (never back), so no
  item repeats within a user, as in real logs, and the chain needs no "seen" bookkeeping.
* Every user has one hidden taste ``g`` (uniform over ``n_tastes``). Taste ``g`` has its own item appeal
  ``a_g`` (Zipf over a taste-specific random permutation) and moves with
  ``P_g[i, j] ∝ a_g[j] * decay ** (j - i - 1)``. The taste is what a history-aware model can infer and a
  first-order (Markov-1) model cannot: the current item alone does not say which of the tastes' moves come next.
* A user has a length ``L`` uniform in ``[min_len, max_len]`` and starts at an item uniform in
  ``[0, N - 1 - window * (L - 1)]``, so no path runs off the end of the catalogue. The start does not depend on
  the taste.

Item labels are a seeded permutation of ``1..N`` (models see ids only; the order is hidden), timestamps are
positions.

Everything about the future is then exact (:class:`Oracle`):

* the posterior over tastes given a history, ``w_g ∝ prod_t P_g[x_{t-1}, x_t]`` (start and length cancel);
* the distribution of the item ``s`` steps ahead, ``sum_g w_g (e_cur P_g^s)``;
* the probability that an item is among the next ``T`` items, the sum of those over ``s = 1..T`` (on a DAG an
  item occurs at most once per path, so the events for different ``s`` are disjoint).

The **oracle Top-K** ranks by the next-item probability (ties, i.e. items unreachable in one step, by their
probability of coming later), which is the best any next-item ranking can do; the **oracle multi-step** list
ranks by the probability of being among the next ``T`` items, which maximises expected recall@K and NDCG@K
over the ``T`` held-out items. Their gap at late positions is the ground truth for the paper's claim.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from seqrec.core.io import write_interaction_log
from seqrec.core.errors import UserError


@dataclass(frozen=True)
class TasteChain:
    """The generating process (see the module docstring). Build it with :func:`make_taste_chain`."""

    transitions: np.ndarray  # [G, N, N] float64, P_g[i, j]; row-stochastic except the last item's
    labels: np.ndarray  # [N] int64, the item id (1..N) of internal item i

    @property
    def n_tastes(self) -> int:
        return self.transitions.shape[0]

    @property
    def n_items(self) -> int:
        return self.transitions.shape[1]


def _validate(n_users, n_items, n_tastes, window, min_len, max_len, decay) -> None:
    if n_users < 1:
        raise UserError(f"n_users must be at least 1, got {n_users}; pass e.g. n_users=600")
    if n_tastes < 1:
        raise UserError(f"n_tastes must be at least 1, got {n_tastes}; pass e.g. n_tastes=2")
    if window < 1:
        raise UserError(f"window must be at least 1, got {window}; pass e.g. window=6")
    if min_len < 2 or max_len < min_len:
        raise UserError(f"need 2 <= min_len <= max_len, got min_len={min_len}, max_len={max_len}")
    need = window * (max_len - 1) + 1
    if n_items < need:
        raise UserError(
            f"n_items ({n_items}) must be at least window * (max_len - 1) + 1 = {need} so that no path runs off "
            f"the end of the item order; raise n_items or lower window/max_len"
        )
    if not 0.0 < decay <= 1.0:
        raise UserError(f"decay must be in (0, 1], got {decay}; pass e.g. decay=0.7")


def make_taste_chain(
    n_items: int = 300, n_tastes: int = 8, window: int = 10, decay: float = 0.7, appeal_exponent: float = 2.0,
    seed: int = 0,
) -> TasteChain:
    """The transition matrices and item labels of a seeded taste chain (no users drawn)."""
    rng = np.random.default_rng(seed)
    ranks = np.stack([rng.permutation(n_items) for _ in range(n_tastes)])  # [G, N] appeal rank of each item
    appeal = (ranks + 1.0) ** -appeal_exponent
    idx = np.arange(n_items)
    dist = idx[None, :] - idx[:, None]  # j - i
    band = (dist >= 1) & (dist <= window)
    base = np.where(band, decay ** np.clip(dist - 1, 0, None), 0.0)  # [N, N]
    trans = base[None, :, :] * appeal[:, None, :]
    totals = trans.sum(axis=2, keepdims=True)
    trans = np.divide(trans, totals, out=np.zeros_like(trans), where=totals > 0)
    labels = rng.permutation(n_items).astype(np.int64) + 1
    return TasteChain(transitions=trans, labels=labels)


def sample_paths(
    chain: TasteChain, n_users: int, min_len: int, max_len: int, window: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(paths [U, max_len] internal items, lengths [U], tastes [U])``; positions past a length are -1."""
    n_items = chain.n_items
    tastes = rng.integers(0, chain.n_tastes, size=n_users)
    lengths = rng.integers(min_len, max_len + 1, size=n_users)
    last_start = n_items - 1 - window * (lengths - 1)
    cur = np.floor(rng.random(n_users) * (last_start + 1)).astype(np.int64)
    cum = np.cumsum(chain.transitions, axis=2)  # [G, N, N]
    paths = np.full((n_users, max_len), -1, dtype=np.int64)
    paths[:, 0] = cur
    for t in range(1, max_len):
        alive = t < lengths
        u = rng.random(n_users) * cum[tastes, cur, -1]
        nxt = (cum[tastes, cur] <= u[:, None]).sum(axis=1)
        nxt = np.minimum(nxt, n_items - 1)
        paths[:, t] = np.where(alive, nxt, -1)
        cur = np.where(alive, nxt, cur)
    return paths, lengths, tastes


def make_oracle_log(
    n_users: int = 3000, n_items: int = 300, n_tastes: int = 8, window: int = 10, decay: float = 0.7,
    appeal_exponent: float = 2.0, min_len: int = 16, max_len: int = 30, seed: int = 0,
) -> tuple[pd.DataFrame, TasteChain]:
    """A seeded log (``user_id,item_id,timestamp``) from a taste chain, and the chain itself.

    The defaults are the learning tests' log (``tests/test_oracle.py``): 3,000 users of 16-30 items (so 6-20
    train items before the 10 held-out ones), 8 tastes with Zipf(2) appeal, moves of 1-10 items. There the
    taste is worth a lot: the oracle's next-item NDCG@10 is ~.80 where a Markov-1 count model gets ~.64, and
    its multi-step list gets NDCG@10 ~.74 over the 10 held-out items where the best next-item ranking gets ~.30.
    """
    _validate(n_users, n_items, n_tastes, window, min_len, max_len, decay)
    chain = make_taste_chain(n_items, n_tastes, window, decay, appeal_exponent, seed)
    rng = np.random.default_rng([seed, 1])
    paths, lengths, _ = sample_paths(chain, n_users, min_len, max_len, window, rng)
    keep = paths >= 0
    return (
        pd.DataFrame(
            {
                "user_id": np.repeat(np.arange(1, n_users + 1), lengths).astype(np.int64),
                "item_id": chain.labels[paths[keep]],
                "timestamp": np.concatenate([np.arange(n) for n in lengths]).astype(np.int64),
            }
        ),
        chain,
    )


def write_oracle_log(path: str | os.PathLike, **kwargs) -> tuple[Path, TasteChain]:
    """Write :func:`make_oracle_log` ``(**kwargs)`` to ``path`` as CSV (atomically); return it and the chain."""
    df, chain = make_oracle_log(**kwargs)
    return write_interaction_log(df, path, "oracle log"), chain


class Oracle:
    """Exact future-item probabilities for the users of a split of a taste-chain log.

    ``split`` is :func:`seqrec.data.split.split_interactions` of the log; items are its indices ``1..n_items``
    (index 0 padding). Items that never occur in the log are left out (no model can recommend them and no
    held-out item is one).
    """

    def __init__(self, chain: TasteChain, split):
        inverse = np.full(int(chain.labels.max()) + 1, -1, dtype=np.int64)
        inverse[chain.labels] = np.arange(chain.n_items)
        self.chain = chain
        self.n_items = split.n_items
        self.internal = inverse[np.asarray(split.item_ids, dtype=np.int64)]  # split index - 1 -> internal item
        if (self.internal < 0).any():
            raise UserError("the split holds item ids the taste chain never produced; pass the chain of this log")
        self.split = split

    def _histories(self, users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per user, the log-likelihood of its train part under each taste ``[U, G]`` and its last item."""
        seqs = self.split.train.select(np.asarray(users))
        items = self.internal[seqs.items - 1]
        lengths = seqs.lengths
        if (lengths < 1).any():
            raise UserError("every user needs at least one train item for the oracle")
        owner = np.repeat(np.arange(len(lengths)), lengths)
        first = np.zeros(len(items), dtype=bool)
        first[seqs.offsets[:-1]] = True
        prev = np.roll(items, 1)
        step = ~first
        with np.errstate(divide="ignore"):
            logp = np.log(self.chain.transitions[:, prev[step], items[step]])  # [G, n_steps]
        loglik = np.zeros((len(lengths), self.chain.n_tastes))
        for g in range(self.chain.n_tastes):
            np.add.at(loglik[:, g], owner[step], logp[g])
        return loglik, items[seqs.offsets[1:] - 1]

    def posterior(self, users: np.ndarray) -> np.ndarray:
        """``[U, G]`` probability of each taste given the user's train part."""
        return self._posterior_and_last(users)[0]

    def _posterior_and_last(self, users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        loglik, last = self._histories(users)
        w = np.exp(loglik - loglik.max(axis=1, keepdims=True))
        return w / w.sum(axis=1, keepdims=True), last

    def step_probs(self, users: np.ndarray, steps: int = 10) -> np.ndarray:
        """``[U, steps, n_items + 1]``: probability that the item ``s + 1`` steps after the train part is each
        item (split indices; column 0 is padding and always 0)."""
        w, last = self._posterior_and_last(users)
        n_users, n_internal = len(last), self.chain.n_items
        state = np.zeros((n_users, self.chain.n_tastes, n_internal))
        state[np.arange(n_users), :, last] = 1.0
        state *= w[:, :, None]
        out = np.zeros((n_users, steps, self.n_items + 1))
        for s in range(steps):
            state = np.einsum("ugi,gij->ugj", state, self.chain.transitions)
            out[:, s, 1:] = state.sum(axis=1)[:, self.internal]
        return out

    def recommend(self, users: np.ndarray, k: int = 10, horizon: int = 10) -> dict[str, np.ndarray]:
        """``{"topk": [U, k], "multistep": [U, k]}`` split item indices (see the module docstring).

        ``topk`` ranks by the next-item probability and breaks its ties (items one step cannot reach) by the
        probability of being among the next ``horizon`` items; ``multistep`` ranks by the latter. Items of
        the train part have probability 0 and are never ranked above a reachable item."""
        probs = self.step_probs(users, horizon)
        inclusion = probs.sum(axis=1)
        inclusion[:, 0] = -1.0
        next_item = probs[:, 0].copy()
        next_item[:, 0] = -1.0
        seen = self.split.train.select(np.asarray(users))
        owner = np.repeat(np.arange(len(seen)), seen.lengths)
        inclusion[owner, seen.items] = -1.0
        next_item[owner, seen.items] = -1.0
        # lexicographic: next-item probability first, inclusion second (both in [0, 1], stable sort)
        by_inclusion = np.argsort(-inclusion, axis=1, kind="stable")
        topk_order = np.take_along_axis(
            by_inclusion, np.argsort(-np.take_along_axis(next_item, by_inclusion, axis=1), axis=1, kind="stable"), 1
        )
        return {"topk": topk_order[:, :k], "multistep": by_inclusion[:, :k]}
