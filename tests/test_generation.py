"""The generation engine against slow, obvious reference implementations."""

import itertools
from collections import Counter

import numpy as np
import pytest
import torch

from seqrec.data.padding import pad_sequences
from seqrec.data.split import Sequences
from seqrec.core.errors import UserError
from seqrec.generation import build_strategy, generate
from seqrec.generation.strategies import multisequence
from seqrec.models.base import SequentialModel
from seqrec.models.gpt2 import GPT2


class Bigram(SequentialModel):
    """Next-item logits depend on the last item only: easy to reason about by hand."""

    def __init__(self, n_items, seed=0):
        super().__init__()
        self.n_items = n_items
        self.table = torch.randn(n_items + 1, n_items + 1, generator=torch.Generator().manual_seed(seed)) * 2

    def next_item_logits(self, input_ids, attention_mask=None, cache=None):
        return self.table[input_ids[:, -1]].clone()


class Fixed(SequentialModel):
    """The same logits whatever the history."""

    def __init__(self, logits):
        super().__init__()
        self.logits = torch.as_tensor(logits, dtype=torch.float32)
        self.n_items = len(self.logits) - 1

    def next_item_logits(self, input_ids, attention_mask=None, cache=None):
        return self.logits.expand(input_ids.shape[0], -1).clone()


def histories(n_users, n_items, low=2, high=8, seed=0):
    rng = np.random.default_rng(seed)
    lens = rng.integers(low, high, size=n_users)
    items = np.concatenate([rng.choice(np.arange(1, n_items + 1), size=n, replace=False) for n in lens])
    return Sequences.from_lengths(items, lens)


def run(model, params, train, k=5, **kw):
    return generate(model, build_strategy(params), train, np.arange(len(train)), k=k, max_length=30, progress=False, **kw)


def allowed_logp(model, seq, banned):
    logits = model.next_item_logits(torch.tensor([seq])).squeeze(0).double()
    logits[0] = -np.inf
    logits[list(banned)] = -np.inf
    return torch.log_softmax(logits, 0)


@pytest.fixture(params=["bigram", "gpt2"])
def model(request):
    torch.manual_seed(0)
    if request.param == "bigram":
        return Bigram(20)
    return GPT2(n_items=20, n_positions=40, n_embd=16, n_layer=2, n_head=2).eval()


def test_greedy_is_stepwise_argmax(model):
    train = histories(9, 20)
    items, _ = run(model, {"strategy": "greedy"}, train, k=6)
    for u in range(len(train)):
        seq, out = list(train[u]), []
        for _ in range(6):
            with torch.no_grad():
                best = int(allowed_logp(model, seq, set(train[u]) | set(out)).argmax())
            out.append(best)
            seq.append(best)
        assert items[u].tolist() == out


def naive_beam(model, history, B, k):
    beams = [([], 0.0)]
    for _ in range(k):
        cand = []
        for gen, score in beams:
            with torch.no_grad():
                logp = allowed_logp(model, list(history) + gen, set(history) | set(gen))
            cand += [(gen + [i], score + float(logp[i])) for i in range(len(logp)) if np.isfinite(float(logp[i]))]
        beams = sorted(cand, key=lambda c: -c[1])[:B]
    return beams[0][0]


@pytest.mark.parametrize("B", [2, 3])
def test_beam_matches_naive_beam(model, B):
    train = histories(6, 20)
    items, _ = run(model, {"strategy": "beam", "num_beams": B}, train, k=5)
    for u in range(len(train)):
        assert items[u].tolist() == naive_beam(model, train[u], B, 5)


def test_beam_one_is_greedy(model):
    train = histories(8, 20)
    assert (run(model, {"strategy": "beam", "num_beams": 1}, train)[0] == run(model, {"strategy": "greedy"}, train)[0]).all()


def test_beam_on_tiny_vocabulary_is_exhaustive():
    model = Bigram(6, seed=3)
    train = Sequences.from_lengths(np.array([1, 2, 3, 4]), np.array([1, 1, 1, 1]))
    items, _ = run(model, {"strategy": "beam", "num_beams": 5}, train, k=2)
    for u in range(4):
        h = int(train[u][0])
        best = max(
            (pair for pair in itertools.permutations([i for i in range(1, 7) if i != h], 2)),
            key=lambda p: float(allowed_logp(model, [h], {h})[p[0]]) + float(allowed_logp(model, [h, p[0]], {h, p[0]})[p[1]]),
        )
        assert items[u].tolist() == list(best)


def test_cold_temperature_and_top_k_one_are_greedy(model):
    train = histories(10, 20)
    greedy = run(model, {"strategy": "greedy"}, train)[0]
    cold = run(model, {"strategy": "sampling", "temperature": 1e-4}, train)[0]
    top1 = run(model, {"strategy": "sampling", "temperature": 1.0, "top_k": 1}, train)[0]
    assert (cold == greedy).all() and (top1 == greedy).all()


def test_sampling_frequencies_follow_softmax():
    logits = torch.tensor([0.0, 1.0, 0.5, 0.0, -0.5, 2.0, 1.5])
    model, T = Fixed(logits), 0.7
    n = 20000
    train = Sequences.from_lengths(np.full(n, 4), np.ones(n, dtype=np.int64))  # everyone has seen item 4
    items, _ = run(model, {"strategy": "sampling", "temperature": T}, train, k=1, rows=4096)
    freq = np.bincount(items[:, 0], minlength=7) / n
    expected = logits / T
    expected[[0, 4]] = -np.inf
    expected = torch.softmax(expected, 0).numpy()
    assert freq[0] == 0 and freq[4] == 0
    np.testing.assert_allclose(freq, expected, atol=0.012)


def test_top_p_keeps_the_nucleus():
    logits = torch.log(torch.tensor([1e-9, 0.5, 0.3, 0.15, 0.05]))
    train = Sequences.from_lengths(np.zeros(0, dtype=np.int64), np.zeros(3000, dtype=np.int64))
    items, _ = run(Fixed(logits), {"strategy": "sampling", "top_p": 0.7}, train, k=1, rows=4096)
    counts = np.bincount(items[:, 0], minlength=5)
    assert counts[3] == counts[4] == 0 and counts[1] > counts[2] > 0  # 0.5 + 0.3 reaches 0.7


def capture_aggregation(monkeypatch):
    seen = []
    real = multisequence.aggregate

    def spy(score, order, banned, k):
        seen.append((score.clone(), order.clone()))
        return real(score, order, banned, k)

    monkeypatch.setattr(multisequence, "aggregate", spy)
    return seen


def test_rra_equals_counter(model, monkeypatch):
    captured = capture_aggregation(monkeypatch)
    train, N, k = histories(5, 20), 6, 4
    items, _ = run(model, {"strategy": "sampling", "temperature": 1.5, "num_return_sequences": N}, train, k=k)
    score, order = captured[0]
    for u in range(len(train)):
        counter = Counter()
        for seq in order[u].view(N, k).tolist():
            for r, item in enumerate(seq, start=1):
                counter[item] += 1.0 / r
        assert items[u].tolist() == [i for i, _ in counter.most_common(k)]
        for item, value in counter.items():
            assert float(score[u, item]) == pytest.approx(value)


def test_ra_sums_probabilities_once_tempered(monkeypatch):
    captured = capture_aggregation(monkeypatch)
    logits = torch.tensor([0.0, 1.0, 0.2, 0.9, -0.3, 1.4, 0.1, 0.7])
    T, N, k = 0.5, 5, 3
    train = Sequences.from_lengths(np.array([2, 6]), np.array([1, 1]))
    items, _ = run(Fixed(logits), {"strategy": "sampling", "temperature": T, "num_return_sequences": N, "aggregation": "ra"}, train, k=k)
    score, order = captured[0]
    for u in range(2):
        naive = Counter()
        hist = int(train[u][0])
        for seq in order[u].view(N, k).tolist():
            for t in range(k):
                scaled = logits / T
                scaled[[0, hist, *seq[:t]]] = -np.inf
                for i, p in enumerate(torch.softmax(scaled, 0).tolist()):
                    naive[i] += p
        for i in range(1, 8):
            assert float(score[u, i]) == pytest.approx(naive[i], abs=1e-5)
        assert items[u].tolist() == [i for i, _ in sorted(naive.items(), key=lambda kv: -kv[1]) if i != hist][:k]


STRATEGIES = [
    {"strategy": "topk"},
    {"strategy": "greedy"},
    {"strategy": "beam", "num_beams": 3},
    {"strategy": "sampling", "temperature": 1.0},
    {"strategy": "sampling", "temperature": 0.5, "top_k": 5, "num_return_sequences": 4},
    {"strategy": "sampling", "temperature": 0.5, "top_p": 0.9, "num_return_sequences": 4, "aggregation": "ra"},
    {"strategy": "two_stage", "first_stage": 3},
]


@pytest.mark.parametrize("params", STRATEGIES, ids=lambda p: p["strategy"] + str(p.get("num_return_sequences", "")))
def test_never_seen_never_repeated_cache_equals_recompute(params):
    torch.manual_seed(0)
    model = GPT2(n_items=30, n_positions=40, n_embd=16, n_layer=2, n_head=2).eval()
    train = histories(25, 30, low=3, high=15, seed=2)
    cached = run(model, params, train, k=6, rows=16)
    plain = run(model, params, train, k=6, rows=16, use_cache=False)
    np.testing.assert_array_equal(cached[0], plain[0])
    np.testing.assert_allclose(cached[1], plain[1], atol=1e-4)
    for u, recs in enumerate(cached[0]):
        assert len(set(recs)) == 6 and not set(recs) & set(train[u]) and 0 not in recs


def test_seed_fixes_sampling():
    model = Bigram(20)
    train = histories(30, 20)
    p = {"strategy": "sampling", "temperature": 1.0, "num_return_sequences": 3}
    a, b = run(model, p, train, seed=1)[0], run(model, p, train, seed=1)[0]
    c = run(model, p, train, seed=2)[0]
    assert (a == b).all() and not (a == c).all()


def test_seen_filter_off_and_repeats_allowed_match_plain_argmax():
    model = Fixed([0.0, 3.0, 2.0, 1.0])
    train = Sequences.from_lengths(np.array([1]), np.array([1]))
    items, _ = run(model, {"strategy": "greedy", "no_repeat_ngram_size": 0}, train, k=3, filter_seen=False, no_repeat=False)
    assert items.tolist() == [[1, 1, 1]]


@pytest.mark.parametrize(
    "params, message",
    [
        ({"strategy": "beam", "num_beams": 0}, "num_beams must be an integer >= 1"),
        ({"strategy": "sampling", "num_return_sequences": 0}, "num_return_sequences must be an integer >= 1"),
        ({"strategy": "sampling", "temperature": 0}, "temperature must be a number > 0 (got 0); temperature 0 means arg-max"),
        ({"strategy": "sampling", "temperature": -1.0}, "temperature must be a number > 0"),
        ({"strategy": "sampling", "top_p": 0}, "top_p must be a number in (0, 1]"),
        ({"strategy": "sampling", "top_p": 1.5}, "top_p must be a number in (0, 1]"),
        ({"strategy": "sampling", "top_k": -3}, "top_k must be an integer >= 0 (or null)"),
        ({"strategy": "nucleus"}, "strategy='nucleus' is unknown; allowed: beam, greedy"),
        ({"strategy": "sampling", "num_return_sequences": 3, "aggregation": "borda"}, "aggregation must be one of rra, ra (got 'borda')"),
        ({"strategy": "greedy", "do_sample": True}, "do_sample=True contradicts strategy greedy"),
        ({"strategy": "greedy", "no_repeat_ngram_size": 2}, "no_repeat_ngram_size must be 1"),
    ],
)
def test_bad_parameters(params, message):
    with pytest.raises(UserError) as err:
        build_strategy(params)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_more_beams_than_allowed_items():
    train = histories(3, 20, low=10, high=12)
    with pytest.raises(UserError, match="num_beams=12 exceeds"):
        run(Bigram(20), {"strategy": "beam", "num_beams": 12}, train, k=2)
    with pytest.raises(UserError, match="num_return_sequences=30 exceeds"):
        run(Bigram(20), {"strategy": "sampling", "num_return_sequences": 30}, train, k=2)


def test_bfloat16_precision_keeps_the_contract():
    torch.manual_seed(0)
    model = GPT2(n_items=30, n_positions=40, n_embd=16, n_layer=2, n_head=2).eval()
    train = histories(20, 30, low=3, high=15, seed=4)
    exact = run(model, {"strategy": "greedy"}, train, k=6)[0]
    for params in ({"strategy": "greedy"}, {"strategy": "sampling", "num_return_sequences": 4}):
        items = run(model, params, train, k=6, precision="bfloat16")[0]
        for u, recs in enumerate(items):
            assert len(set(recs)) == 6 and not set(recs) & set(train[u]) and 0 not in recs
    # bf16 may only swap near-ties: with every allowed score moved by at most `err` (measured: bf16 autocast
    # against fp32 on the same padded batch), two items whose fp32 scores differ by more than 2 * err keep
    # their order. So a user whose first greedy item changes must have a fp32 top-2 margin <= 2 * err.
    first = run(model, {"strategy": "greedy"}, train, k=6, precision="bfloat16")[0][:, 0]
    ids = pad_sequences(train, side="left")
    with torch.no_grad():
        exact_logits = model.next_item_logits(ids, ids != 0).double()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            bf16_logits = model.next_item_logits(ids, ids != 0).double()
    allowed = torch.ones_like(exact_logits, dtype=torch.bool)
    allowed[:, 0] = False
    allowed.scatter_(1, ids, False)
    err = (bf16_logits - exact_logits).abs()[allowed].max().item()
    top2 = exact_logits.masked_fill(~allowed, -np.inf).topk(2, dim=1).values
    margin = (top2[:, 0] - top2[:, 1]).numpy()
    changed = first != exact[:, 0]
    assert (margin[changed] <= 2 * err).all(), (margin[changed], err)
    assert (margin > 2 * err).sum() >= len(margin) // 2  # the check has teeth: most users are decidable
    with pytest.raises(UserError, match="precision must be one of float32, bfloat16, auto"):
        build_strategy({"strategy": "greedy", "precision": "half"})


def rra_brute_force(sequences, k):
    """RRA of ``sequences`` (lists of items) by hand: 1/rank summed, ties by first appearance (Counter order)."""
    counter = Counter()
    for seq in sequences:
        for r, item in enumerate(seq, start=1):
            counter[item] += 1.0 / r
    return [i for i, _ in counter.most_common(k)]


def test_prefix_lists_aggregate_the_first_n_sequences(model, monkeypatch):
    """RRA and RA of the first n of the N sampled sequences (prefix_sequences), against brute force over the
    sequences the run sampled; the main list is unchanged by asking for prefixes."""
    captured = capture_aggregation(monkeypatch)
    train, N, k = histories(7, 20), 8, 4
    params = {"strategy": "sampling", "temperature": 1.5, "num_return_sequences": N, "top_k": 6}
    variants = {}
    items, scores = run(model, {**params, "prefix_sequences": [2, 5, 8]}, train, k=k, variants=variants)
    assert sorted(variants) == ["ra_N2", "ra_N5", "ra_N8", "rra_N2", "rra_N5"]  # rra N=8 is the main list
    order = captured[-1][1]  # the main list's call: every sampled sequence, user-major
    for n in (2, 5):
        for u in range(len(train)):
            assert variants[f"rra_N{n}"][0][u].tolist() == rra_brute_force(order[u].view(N, k)[:n].tolist(), k)
    plain = run(model, params, train, k=k)
    np.testing.assert_array_equal(items, plain[0])
    np.testing.assert_array_equal(scores, plain[1])
    ra = run(model, {**params, "aggregation": "ra"}, train, k=k)  # the same draws: RA at N is the RA variant
    np.testing.assert_array_equal(variants["ra_N8"][0], ra[0])
    np.testing.assert_allclose(variants["ra_N8"][1], ra[1], rtol=1e-6)


def test_ra_prefix_sums_the_first_n_sequences_probabilities(monkeypatch):
    captured = capture_aggregation(monkeypatch)
    logits = torch.tensor([0.0, 1.0, 0.2, 0.9, -0.3, 1.4, 0.1, 0.7])
    T, N, n, k = 0.5, 6, 3, 3
    train = Sequences.from_lengths(np.array([2, 6]), np.array([1, 1]))
    variants = {}
    run(Fixed(logits), {"strategy": "sampling", "temperature": T, "num_return_sequences": N, "prefix_sequences": [n]},
        train, k=k, variants=variants)
    order = captured[-1][1]
    for u in range(2):
        naive = Counter()
        hist = int(train[u][0])
        for seq in order[u].view(N, k)[:n].tolist():  # only the first n sequences count
            for t in range(k):
                scaled = logits / T
                scaled[[0, hist, *seq[:t]]] = -np.inf
                for i, p in enumerate(torch.softmax(scaled, 0).tolist()):
                    naive[i] += p
        best = [i for i, _ in sorted(naive.items(), key=lambda kv: -kv[1]) if i not in (0, hist)][:k]
        assert variants[f"ra_N{n}"][0][u].tolist() == best
        np.testing.assert_allclose(variants[f"ra_N{n}"][1][u], [naive[i] for i in best], rtol=1e-5)


@pytest.mark.parametrize("prefixes, message", [
    ([3, 9], "asks for the first 9 of only 5 sampled sequences; raise num_return_sequences to 9"),
    ([0], "prefix_sequences must be a list of integers >= 1"),
    ("10", "prefix_sequences must be a list of integers >= 1"),
])
def test_bad_prefixes(prefixes, message):
    with pytest.raises(UserError) as err:
        build_strategy({"strategy": "sampling", "num_return_sequences": 5, "prefix_sequences": prefixes})
    assert message in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(UserError, match="needs multi-sequence sampling"):
        build_strategy({"strategy": "sampling", "num_return_sequences": 1, "prefix_sequences": [1]})
