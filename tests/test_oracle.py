"""The oracle log: its process, its oracle checked by brute force, and the Markov-1 baseline by hand.

The learning tests that use it (each model against the oracle) are in ``test_oracle_learning.py``.
"""

import dataclasses
import itertools
import math

import numpy as np
import pandas as pd
import pytest

from seqrec.evaluation.baselines import markov_recs
from seqrec.data.oracle import Oracle, make_oracle_log, make_taste_chain, sample_paths
from seqrec.data.split import Sequences, split_interactions
from seqrec.core.errors import UserError

TINY = dict(n_items=13, n_tastes=2, window=3, decay=0.6, appeal_exponent=1.5, seed=3)


def test_oracle_log_never_repeats_and_moves_only_where_its_chain_allows():
    df, chain = make_oracle_log(n_users=400, seed=1)
    assert not df.duplicated(["user_id", "item_id"]).any()
    assert df.groupby("user_id").size().between(16, 30).all()
    internal = np.argsort(chain.labels)[df["item_id"].to_numpy() - 1]  # label -> internal item
    first = df["timestamp"].to_numpy() == 0
    prev, cur = np.roll(internal, 1)[~first], internal[~first]
    assert ((cur - prev >= 1) & (cur - prev <= 10)).all()  # forward moves within the window only
    assert (chain.transitions.max(axis=0)[prev, cur] > 0).all()
    # same seed, same log; another seed, another log
    again, _ = make_oracle_log(n_users=400, seed=1)
    pd.testing.assert_frame_equal(df, again)
    assert not make_oracle_log(n_users=400, seed=2)[0].equals(df)


def test_oracle_log_moves_with_its_transition_probabilities():
    chain = make_taste_chain(**TINY)
    rng = np.random.default_rng(0)
    paths, lengths, tastes = sample_paths(chain, 40_000, 4, 4, 3, rng)
    for g in range(chain.n_tastes):
        rows = paths[tastes == g]
        prev, nxt = rows[:, :-1].ravel(), rows[:, 1:].ravel()
        for i in np.unique(prev):
            n = int((prev == i).sum())
            if n < 500:
                continue
            freq = np.bincount(nxt[prev == i], minlength=chain.n_items) / n
            p = chain.transitions[g, i]
            # 5 binomial standard errors: a false alarm has probability < 1e-6 per cell
            assert np.all(np.abs(freq - p) <= 5 * np.sqrt(p * (1 - p) / n) + 1e-12), (g, i)


def tiny_split(n_users=60, seed=5):
    chain = make_taste_chain(**TINY)
    paths, lengths, _ = sample_paths(chain, n_users, 5, 5, 3, np.random.default_rng(seed))
    df = pd.DataFrame({
        "user_id": np.repeat(np.arange(n_users), 5), "item_id": chain.labels[paths.ravel()],
        "timestamp": np.tile(np.arange(5), n_users),
    })
    return chain, split_interactions(df, last_n_items=2, validation_size=None, random_state=0)


def brute_force_future(chain, history, steps):
    """Every path of ``steps`` moves after ``history`` (internal items) with its exact probability."""
    prior = np.full(chain.n_tastes, 1.0 / chain.n_tastes)
    lik = np.array([math.prod(chain.transitions[g, a, b] for a, b in zip(history, history[1:]))
                    for g in range(chain.n_tastes)])
    post = prior * lik / (prior * lik).sum()
    out = []
    for path in itertools.product(range(chain.n_items), repeat=steps):
        p = sum(post[g] * math.prod(chain.transitions[g, a, b] for a, b in zip([history[-1], *path], path))
                for g in range(chain.n_tastes))
        if p > 0:
            out.append((path, p))
    return post, out


def test_oracle_probabilities_equal_brute_force_enumeration():
    chain, split = tiny_split()
    oracle = Oracle(chain, split)
    users = split.test_users[:6]
    steps = 3
    probs = oracle.step_probs(users, steps)
    posterior = oracle.posterior(users)
    internal_to_index = np.full(chain.n_items, -1)  # items the log never holds stay -1: the oracle leaves them out
    internal_to_index[oracle.internal] = np.arange(1, split.n_items + 1)
    assert (internal_to_index < 0).any()  # the case is covered: this small log misses some items
    for row, u in enumerate(users):
        history = list(oracle.internal[split.train[u] - 1])
        post, paths = brute_force_future(chain, history, steps)
        np.testing.assert_allclose(posterior[row], post, rtol=1e-12)
        expected = np.zeros((steps, split.n_items + 1))
        for path, p in paths:
            for s, item in enumerate(path):
                if internal_to_index[item] > 0:
                    expected[s, internal_to_index[item]] += p
        np.testing.assert_allclose(probs[row], expected, atol=1e-12)


def test_oracle_multistep_list_is_the_best_list_by_exhaustive_search():
    """Expected DCG@k over the next T items of every ordered k-list of reachable items (brute force): none beats
    the multi-step list, and the Top-K list is the best list for the next item alone."""
    chain, split = tiny_split()
    oracle = Oracle(chain, split)
    k, horizon = 3, 3
    users = split.test_users[:4]
    recs = oracle.recommend(users, k=k, horizon=horizon)
    probs = oracle.step_probs(users, horizon)
    disc = 1 / np.log2(np.arange(2, k + 2))
    for row in range(len(users)):
        inclusion, nxt = probs[row].sum(axis=0), probs[row, 0]
        reachable = np.flatnonzero(inclusion > 0)
        cands = list(itertools.permutations(reachable, min(k, len(reachable))))
        best_multi = max(sum(d * inclusion[i] for d, i in zip(disc, c)) for c in cands)
        best_next = max(sum(d * nxt[i] for d, i in zip(disc, c)) for c in cands)
        got = recs["multistep"][row][: len(cands[0])]
        assert sum(d * inclusion[i] for d, i in zip(disc, got)) == pytest.approx(best_multi, rel=1e-12)
        got = recs["topk"][row][: len(cands[0])]
        assert sum(d * nxt[i] for d, i in zip(disc, got)) == pytest.approx(best_next, rel=1e-12)
    # never an item of the user's history
    for row, u in enumerate(users):
        assert not set(recs["multistep"][row]) & set(split.train[u])
        assert not set(recs["topk"][row]) & set(split.train[u])


def test_oracle_refuses_a_log_from_another_chain():
    chain, split = tiny_split()
    other = dataclasses.replace(chain, labels=chain.labels + 100)
    with pytest.raises(UserError, match="never produced"):
        Oracle(other, split)


@pytest.mark.parametrize("kwargs, message", [
    (dict(n_users=0), "n_users"), (dict(window=0), "window"), (dict(min_len=1), "min_len"),
    (dict(n_items=100), "n_items"), (dict(decay=0.0), "decay"), (dict(n_tastes=0), "n_tastes"),
])
def test_oracle_log_bad_arguments(kwargs, message):
    with pytest.raises(UserError, match=message):
        make_oracle_log(**kwargs)


def test_markov_baseline_by_hand():
    # train parts: 1 2 3 | 1 2 4 | 1 2 4 | 3 1 | 5 2 ; item counts 1:4 2:4 3:2 4:2 5:1
    train = Sequences.from_lengths(np.array([1, 2, 3, 1, 2, 4, 1, 2, 4, 3, 1, 5, 2]), np.array([3, 3, 3, 2, 2]))
    counts = np.bincount(train.items, minlength=7)  # item 6 never seen
    recs = markov_recs(counts, train, np.array([3, 4, 0]), k=3)
    # user 3 (last item 1, seen 3 and 1): 1 was followed by 2 three times -> 2; then by popularity 4, 5 (3 is seen)
    assert recs[0].tolist() == [2, 4, 5]
    # user 4 (last item 2, seen 5 and 2): 2 -> 4 twice, 2 -> 3 once; then by popularity 1
    assert recs[1].tolist() == [4, 3, 1]
    # user 0 (last item 3, seen 1 2 3): 3 -> 1 once, but 1 is seen; by popularity 4, 5, then the unseen item 6
    assert recs[2].tolist() == [4, 5, 6]
