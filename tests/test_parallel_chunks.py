"""Chunks generated in parallel (generation_params.workers) give the items and scores of one chunk after another
on one thread, bit for bit, for every strategy and both decoders; a strategy whose declared draws are wrong is
caught, not silently sampled differently."""

import numpy as np
import pytest
import torch

from seqrec.generation import build_strategy, generate
from seqrec.generation.strategies.multisequence import MultiSequence
from test_shared_rows import STRATEGIES, histories, make


def run(model, params, train, workers, rows=24):
    variants = {}
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)  # the reference: one chunk after another on one thread
        items, scores = generate(model, build_strategy(params), train, np.arange(len(train)), k=5, max_length=12,
                                 rows=rows, progress=False, seed=7, variants=variants, workers=workers)
    finally:
        torch.set_num_threads(threads)
    return items, scores, variants


@pytest.mark.parametrize("params", [*STRATEGIES, {"strategy": "topk"}, {"strategy": "two_stage", "first_stage": 3}],
                         ids=lambda p: f"{p['strategy']}-{p.get('num_return_sequences', '')}")
@pytest.mark.parametrize("name", ["gpt2", "bert4rec"])
def test_parallel_chunks_equal_chunks_in_order(name, params):
    model, train = make(name), histories(n_users=41)
    alone = run(model, params, train, workers=1)
    together = run(model, params, train, workers=3)  # rows=24: 2 to 24 users a chunk, several chunks
    np.testing.assert_array_equal(together[0], alone[0])
    np.testing.assert_array_equal(together[1], alone[1])
    assert together[2].keys() == alone[2].keys()
    for key in alone[2]:
        np.testing.assert_array_equal(together[2][key][0], alone[2][key][0])


def test_a_strategy_drawing_other_shapes_than_it_declares_is_refused(monkeypatch):
    model, train = make("gpt2"), histories(n_users=41)
    params = {"strategy": "sampling", "temperature": 0.5, "top_k": 10, "num_return_sequences": 4}
    monkeypatch.setattr(MultiSequence, "draw_shapes", lambda self, users, n_columns, k: [(users, 3)] * k)
    with pytest.raises(RuntimeError, match="draw_shapes"):
        run(model, params, train, workers=2)


def test_workers_is_checked_and_resolved():
    from seqrec.core.errors import UserError
    from seqrec.generation.engine import resolve_workers

    assert resolve_workers(4, "cpu", chunks=2) == 2 and resolve_workers(3, "cpu", chunks=9) == 3
    assert resolve_workers(None, "cpu", chunks=100) == torch.get_num_threads()
    with pytest.raises((UserError, ValueError), match="workers"):
        resolve_workers(0, "cpu", chunks=3)
    assert resolve_workers(None, "meta", chunks=5) == 1  # a GPU (any device but the CPU): one chunk at a time
    with pytest.raises(UserError, match="workers=2 runs chunks in CPU threads"):
        resolve_workers(2, "meta", chunks=5)
