"""Rows that agree so far are scored once (GenerationState groups), and the top-k cut is made a block of rows at a
time: the same items and scores as scoring every row on its own and cutting the full scores, bit for bit, for every
strategy and both decoders (KV-cached GPT-2, re-encoding BERT4Rec)."""

import numpy as np
import pytest
import torch

from seqrec.data.split import Sequences
from seqrec.generation import build_strategy, generate
from seqrec.generation.state import CachedDecoder, Context, GenerationState, RecomputeDecoder
from seqrec.models.bert4rec import BERT4Rec
from seqrec.models.gpt2 import GPT2

N_ITEMS = 30
STRATEGIES = [
    {"strategy": "greedy"},
    {"strategy": "beam", "num_beams": 3},
    {"strategy": "sampling", "temperature": 0.7, "top_k": 10, "num_return_sequences": 1},
    # cold and many sequences: most sequences agree for several steps, so groups are far fewer than rows
    {"strategy": "sampling", "temperature": 0.1, "top_k": 8, "num_return_sequences": 12, "aggregation": "rra"},
    {"strategy": "sampling", "temperature": 0.3, "num_return_sequences": 6, "aggregation": "ra",
     "prefix_sequences": [2, 4]},
    {"strategy": "sampling", "temperature": 0.5, "top_p": 0.8, "num_return_sequences": 5, "aggregation": "rra"},
]


def histories(n_users=23, seed=0):
    rng = np.random.default_rng(seed)
    lens = rng.integers(2, 9, size=n_users)
    items = np.concatenate([rng.choice(np.arange(1, N_ITEMS + 1), size=n, replace=False) for n in lens])
    return Sequences.from_lengths(items, lens)


def make(name):
    torch.manual_seed(0)
    if name == "gpt2":
        return GPT2(n_items=N_ITEMS, n_positions=40, n_embd=16, n_layer=2, n_head=2).eval()
    return BERT4Rec(N_ITEMS, max_seq_length=24, hidden_size=16, inner_size=32, n_layers=2, n_heads=2).eval()


def run(model, params, train, rows=64):
    variants = {}
    items, scores = generate(model, build_strategy(params), train, np.arange(len(train)), k=5, max_length=12,
                             rows=rows, progress=False, seed=7, variants=variants)
    return items, scores, variants


@pytest.mark.parametrize("params", STRATEGIES, ids=lambda p: f"{p['strategy']}-{p.get('num_return_sequences', '')}")
@pytest.mark.parametrize("name", ["gpt2", "bert4rec"])
def test_shared_rows_equal_row_by_row(name, params, monkeypatch):
    model, train = make(name), histories()
    blocked = GenerationState.grouped_top
    with monkeypatch.context() as patch:  # blocks of 3 groups (the default block holds every group of this catalogue)
        patch.setattr(GenerationState, "grouped_top", lambda state, k: blocked(state, k, block=3))
        shared = run(model, params, train)
    for decoder in (CachedDecoder, RecomputeDecoder):
        monkeypatch.setattr(decoder, "shares_rows", None)  # every row scored on its own (the engine before groups)
    # and the top-k cut made on the full scores (not a block at a time)
    def full_top(state, k):
        logits, group = state.grouped_logits()
        values, items = torch.topk(logits, k, dim=1)
        return values, items, group

    monkeypatch.setattr(GenerationState, "grouped_top", full_top)
    alone = run(model, params, train)
    np.testing.assert_array_equal(shared[0], alone[0])
    np.testing.assert_array_equal(shared[1], alone[1])
    assert shared[2].keys() == alone[2].keys()
    for key in shared[2]:
        np.testing.assert_array_equal(shared[2][key][0], alone[2][key][0])


@pytest.mark.parametrize("name", ["gpt2", "bert4rec"])
def test_groups_follow_the_sequences(name):
    """Groups are exactly the distinct (user, generated items) pairs; the decoder scores one row per group."""
    model, train = make(name), histories(5)
    calls = []
    Decoder = CachedDecoder if name == "gpt2" else RecomputeDecoder
    from seqrec.data.padding import pad_sequences

    ids = pad_sequences(train, length=10, side=Decoder.padding_side)
    seen = torch.zeros(5, N_ITEMS + 1, dtype=torch.bool)
    seen[:, 0] = True
    decoder = Decoder(model, ids, ids != 0, n_new=3)
    step = decoder.step
    decoder.step = lambda tokens, *rest: calls.append((len(tokens), *(len(r) for r in rest if r is not None))) or step(
        tokens, *rest)
    state = GenerationState(decoder, Context(k=3, seen=seen, ban_generated=True))
    state.expand(4)
    assert state.groups == 5 and len(state.group) == 20  # the 4 copies of a user share its scores
    # rows 0-3 of user 0: two take item 1, two item 2; every other user's rows all take item 3
    tokens = torch.full((20,), 3)
    tokens[:4] = torch.tensor([1, 2, 1, 2])
    state.push(tokens)
    assert state.groups == 6
    assert state.group[0] == state.group[2] != state.group[1] == state.group[3]
    assert len(set(state.group[4:].tolist())) == 4
    scores, group = state.grouped_logits()
    assert scores.shape == (6, N_ITEMS + 1)
    # the decoder fed one token per group (re-encoding) or per row and scored one row per group (KV cache)
    assert calls[-1] == ((6,) if name == "bert4rec" else (20, 6))
    full = scores[group]
    assert torch.isinf(full[0, 1]) and torch.isinf(full[1, 2]) and not torch.isinf(full[0, 2])
