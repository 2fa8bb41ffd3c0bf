"""SASRec, gSASRec and BERT4Rec: network properties, generation, losses, configs, training."""

import math

import numpy as np
import pytest
import torch

from conftest import compose
from seqrec.config.checks import apply_model_aliases, check_train_config
from seqrec.data.datasets import MaskedLMDataset
from seqrec.data.split import Sequences
from seqrec.core.errors import UserError
from seqrec.generation import build_strategy, generate
from seqrec.models.gpt2 import GPT2
from seqrec.training.losses import BCE, BPR, SampledSoftmax, gBCE, gbce_beta, sample_negatives, score_items
from seqrec.models.bert4rec import BERT4Rec
from seqrec.models.sasrec import SASRec

N_ITEMS = 40


@pytest.fixture
def sasrec():
    torch.manual_seed(0)
    return SASRec(N_ITEMS, sequence_length=24, embedding_dim=16, num_blocks=2, num_heads=2, dropout_rate=0.1).eval()


@pytest.fixture(params=["post", "pre"])
def bert(request):  # both block layouts: BERT's post-LN (the default) and the pre-LN option
    torch.manual_seed(0)
    return BERT4Rec(N_ITEMS, max_seq_length=24, hidden_size=16, inner_size=32, n_layers=2, n_heads=2,
                    layer_norm=request.param).eval()


def full_logits(model, x, mask=None):
    with torch.no_grad():
        return model.item_logits(model.encode(x, mask))


def histories(n_users, low=3, high=10, seed=0):
    rng = np.random.default_rng(seed)
    lens = rng.integers(low, high, size=n_users)
    items = np.concatenate([rng.choice(np.arange(1, N_ITEMS + 1), size=n, replace=False) for n in lens])
    return Sequences.from_lengths(items, lens)


def run(model, params, train_seqs, k=5, **kw):
    return generate(
        model, build_strategy(params), train_seqs, np.arange(len(train_seqs)), k=k, max_length=20, progress=False, **kw
    )


STRATEGIES = [
    {"strategy": "greedy"},
    {"strategy": "beam", "num_beams": 3},
    {"strategy": "sampling", "do_sample": True, "temperature": 0.7, "num_return_sequences": 1},
    {"strategy": "multisequence", "do_sample": True, "temperature": 0.7, "num_return_sequences": 4, "aggregation": "rra"},
    {"strategy": "multisequence", "do_sample": True, "temperature": 0.7, "num_return_sequences": 4, "aggregation": "ra"},
    {"strategy": "two_stage", "first_stage": 3},
]


# --------------------------------------------------------------------------- networks
def test_sasrec_never_attends_to_the_future(sasrec):
    x = torch.randint(1, N_ITEMS + 1, (3, 12))
    y = x.clone()
    y[:, 7] = (y[:, 7] % N_ITEMS) + 1
    a, b = full_logits(sasrec, x), full_logits(sasrec, y)
    torch.testing.assert_close(a[:, :7], b[:, :7])
    assert not torch.allclose(a[:, 7:], b[:, 7:])


def test_bert4rec_is_bidirectional(bert):
    x = torch.randint(1, N_ITEMS + 1, (2, 10))
    y = x.clone()
    y[:, 8] = (y[:, 8] % N_ITEMS) + 1
    assert not torch.allclose(full_logits(bert, x)[:, :8], full_logits(bert, y)[:, :8])


@pytest.mark.parametrize("name", ["sasrec", "bert"])
def test_left_padding_equals_unpadded(name, sasrec, bert):
    model = sasrec if name == "sasrec" else bert
    x = torch.randint(1, N_ITEMS + 1, (3, 9))
    padded = torch.cat([torch.zeros(3, 5, dtype=torch.long), x], 1)
    with torch.no_grad():
        torch.testing.assert_close(
            model.next_item_logits(padded, padded != 0), model.next_item_logits(x), atol=1e-5, rtol=1e-5
        )
    if name == "sasrec":  # right padding too (training batches)
        right = torch.cat([x, torch.zeros(3, 5, dtype=torch.long)], 1)
        torch.testing.assert_close(full_logits(model, right, right != 0)[:, :9], full_logits(model, x), atol=1e-5, rtol=1e-5)


def test_sasrec_kv_cache_equals_uncached(sasrec):
    x = torch.randint(1, N_ITEMS + 1, (3, 14))
    x[0, :4] = 0
    mask = x != 0
    reference = full_logits(sasrec, x, mask)
    with torch.no_grad():
        cache = sasrec.new_cache(3, 20)
        steps = [sasrec.next_item_logits(x[:, :8], mask[:, :8], cache)]
        for t in range(8, 14):
            steps.append(sasrec.next_item_logits(x[:, t : t + 1], None, cache))
    torch.testing.assert_close(torch.stack(steps, 1), reference[:, 7:], atol=1e-5, rtol=1e-5)


def test_bert4rec_scores_the_appended_mask(bert):
    x = torch.randint(1, N_ITEMS + 1, (2, 6))
    with torch.no_grad():
        logits = bert.next_item_logits(x)
        direct = full_logits(bert, torch.cat([x, torch.full((2, 1), bert.mask_token)], 1))[:, -1]
    assert logits.shape == (2, N_ITEMS + 1)  # the [MASK] token is never a candidate
    torch.testing.assert_close(logits, direct)
    assert bert.history_budget(10) == 24 - 10
    with torch.no_grad():  # a history longer than the positions keeps its most recent items
        long = torch.randint(1, N_ITEMS + 1, (2, 40))
        torch.testing.assert_close(bert.next_item_logits(long), bert.next_item_logits(long[:, -23:]))
    # the last block computes only the [MASK] query (last_only): equal to taking the last row of the full
    # encoding, with left padding too
    padded = torch.cat([torch.zeros(3, 4, dtype=torch.long), torch.randint(1, N_ITEMS + 1, (3, 7))], 1)
    padded[1, 4:6] = 0
    keep = padded != 0
    with torch.no_grad():
        ids = torch.cat([padded, torch.full((3, 1), bert.mask_token)], 1)
        mask = torch.cat([keep, torch.ones(3, 1, dtype=torch.bool)], 1)
        full = bert.item_logits(bert.encode(ids, mask)[:, -1])
        torch.testing.assert_close(bert.next_item_logits(padded, keep), full, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="last_only"):  # a cache needs every position's keys written
        bert.blocks[0](torch.zeros(1, 3, 16), causal=False, cache=object(), last_only=True)


@pytest.mark.parametrize("name", ["sasrec", "gpt2"])
def test_causal_last_only_equals_the_last_row_of_the_full_encoding(name, sasrec):
    """Validation and Top-K (no cache) run the last block for the last position only: the same hidden state as the
    full encoding's last row, with left padding and without; and the next-item scores through it."""
    torch.manual_seed(2)
    model = sasrec if name == "sasrec" else GPT2(N_ITEMS, n_positions=24, n_embd=16, n_layer=2, n_head=2).eval()
    ids = torch.randint(1, N_ITEMS + 1, (3, 10))
    ids[0, :4] = 0
    ids[1, :1] = 0
    for mask in (ids != 0, torch.ones_like(ids, dtype=torch.bool)):
        with torch.no_grad():
            full = model.encode(ids, mask)
            last = model.encode(ids, mask, last_only=True)
            assert last.shape == (3, 1, 16)
            torch.testing.assert_close(last, full[:, -1:], atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(model.next_item_logits(ids, mask), model.item_logits(full[:, -1]),
                                       atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="last_only"):
        model.encode(ids[:, :3], None, model.new_cache(3, 8), last_only=True)


def test_bert4rec_next_item_cuts_shared_left_padding_to_the_same_bits(bert):
    """Next-item hidden states with the rows' shared left padding cut in steps of 16 columns (rows grouped by it,
    at least 4 rows a group) equal the uncut batch's bit for bit with one thread (reproduce_paper's chains, the
    benchmarks): rows with 0..117 padded columns of the paper's 128-position network, one with a hole inside its
    history (the cut stops at its first real item, not at its count of padding). With two threads a matrix
    product's split over the threads follows the batch's shape, so there they agree to float rounding."""
    torch.manual_seed(3)
    layout = "pre" if isinstance(bert.final_norm, torch.nn.LayerNorm) else "post"
    model = BERT4Rec(N_ITEMS, max_seq_length=128, hidden_size=64, inner_size=256, n_layers=2, n_heads=2,
                     layer_norm=layout).eval()
    pads = [0, 3, 15, 16, 17, 31, 32, 40, 45, 45, 60, 70, 100, 117]
    ids = torch.randint(1, N_ITEMS + 1, (len(pads), 118))
    for row, pad in enumerate(pads):
        ids[row, :pad] = 0
    ids[1, 10:30] = 0  # a hole: 23 padded columns, 3 of them before the first item
    mask = ids != 0
    threads = torch.get_num_threads()
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            with torch.no_grad():
                model.padding_step = 16
                cut = model.next_item_hidden(ids, mask)
                model.padding_step = 0
                whole = model.next_item_hidden(ids, mask)
            if n == 1:
                assert torch.equal(cut, whole)
            else:  # float32 rounding of sums of 64 to 256 terms
                torch.testing.assert_close(cut, whole, rtol=1e-5, atol=1e-5)
    finally:
        torch.set_num_threads(threads)


def test_bert4rec_padding_groups_hold_at_least_four_rows():
    """Rows are grouped by their cut; a group of fewer than 4 rows waits for the next smaller cut (a product of 1-3
    rows would take the matrix-vector path); the least-padded rows, too few, join the group before them."""
    from seqrec.models.bert4rec import _padding_groups

    cut = torch.tensor([0, 0, 0, 16, 16, 16, 32, 32, 32, 32, 48, 64, 96, 112])
    groups = [(c, rows.tolist()) for c, rows in _padding_groups(cut)]
    assert groups == [(48, [13, 12, 11, 10]), (32, [6, 7, 8, 9]), (0, [3, 4, 5, 0, 1, 2])]
    # one least-padded row joins the only group: one group of every row, uncut
    assert list(_padding_groups(torch.tensor([0, 32, 32, 32, 32]))) == [(0, slice(None))]
    [(c, rows)] = list(_padding_groups(torch.tensor([16, 16, 16])))
    assert c == 16 and rows == slice(None)
    [(c, rows)] = list(_padding_groups(torch.tensor([0, 16])))  # two rows: one group at the smaller cut
    assert c == 0 and rows == slice(None)


def test_bert4rec_encode_targets_equals_the_full_encoding_at_the_targets(bert):
    """Training's masked positions only (the last block runs for those queries alone): the same hidden states, in
    the same row-major order, and the same gradients as ``encode(...)[targets]``, with left padding, rows with
    different numbers of targets and a row with none (dropout off: its draws differ with the tensor's shape)."""
    torch.manual_seed(1)
    ids = torch.randint(1, N_ITEMS + 1, (4, 9))
    ids[0, :3] = 0
    mask = ids != 0
    targets = torch.zeros(4, 9, dtype=torch.bool)
    targets[0, [3, 8]] = True
    targets[1, [0, 2, 4, 5, 8]] = True
    targets[3, 6] = True  # row 2 has none
    ids = torch.where(targets, torch.full_like(ids, bert.mask_token), ids)
    labels = torch.randint(1, N_ITEMS + 1, (int(targets.sum()),))

    def loss_and_grads(hidden_of):
        bert.zero_grad()
        hidden = hidden_of()
        loss = torch.nn.functional.cross_entropy(bert.item_logits(hidden), labels)
        loss.backward()
        return hidden.detach(), {n: p.grad.clone() for n, p in bert.named_parameters() if p.grad is not None}

    h_full, g_full = loss_and_grads(lambda: bert.encode(ids, mask)[targets])
    h_some, g_some = loss_and_grads(lambda: bert.encode_targets(ids, mask, targets))
    assert h_some.shape == (8, 16)  # 2 + 5 + 0 + 1 targets
    torch.testing.assert_close(h_some, h_full, atol=1e-5, rtol=1e-5)
    assert g_some.keys() == g_full.keys()
    for name in g_full:
        torch.testing.assert_close(g_some[name], g_full[name], atol=1e-5, rtol=1e-4, msg=name)
    none = torch.zeros_like(targets)  # no target anywhere: an empty [0, C]
    assert bert.encode_targets(ids, mask, none).shape == (0, 16)
    with pytest.raises(ValueError, match="query_index"):
        bert.blocks[0](torch.zeros(1, 3, 16), causal=True, query_index=torch.zeros(1, 1, dtype=torch.long))


def test_block_layouts_by_hand():
    """Each layout against its formula, written out with the block's own sub-modules (dropout off)."""
    from seqrec.models.blocks import TransformerBlock

    torch.manual_seed(0)
    x = torch.randn(2, 5, 8)
    for layout in TransformerBlock.LAYOUTS:
        block = TransformerBlock(8, 2, 16, 0.1, 0.1, 1e-6, act="gelu", layout=layout).eval()
        attn = lambda q, kv: block.attn(q, kv, None, None, 0, False)  # noqa: E731 - bidirectional, no mask
        with torch.no_grad():
            if layout == "sasrec":
                q = block.attn_norm(x)
                h = block.ffn_norm(q + attn(q, x))
                expected = h + block.ffn(h)
            elif layout == "post_ln":
                h = block.attn_norm(x + attn(x, x))
                expected = block.ffn_norm(h + block.ffn(h))
            else:
                n = block.attn_norm(x)
                h = x + attn(n, n)
                expected = h + block.ffn(block.ffn_norm(h))
            torch.testing.assert_close(block(x, causal=False), expected)
            # the last query alone gives the full block's last row, bidirectional and causal
            torch.testing.assert_close(block(x, causal=False, last_only=True), expected[:, -1:])
            torch.testing.assert_close(block(x, causal=True, last_only=True), block(x, causal=True)[:, -1:])
    with pytest.raises(ValueError, match="unknown block layout"):
        TransformerBlock(8, 2, 16, 0.1, 0.1, 1e-6, layout="sandwich")


def test_bert4rec_pre_ln_has_a_final_norm():
    torch.manual_seed(0)
    post = BERT4Rec(N_ITEMS, max_seq_length=24, hidden_size=16, inner_size=32, layer_norm="post")
    pre = BERT4Rec(N_ITEMS, max_seq_length=24, hidden_size=16, inner_size=32, layer_norm="pre")
    assert isinstance(post.final_norm, torch.nn.Identity) and isinstance(pre.final_norm, torch.nn.LayerNorm)
    assert {b.layout for b in pre.blocks} == {"pre_ln"} and {b.layout for b in post.blocks} == {"post_ln"}


@pytest.mark.parametrize("params", STRATEGIES, ids=lambda p: f"{p['strategy']}-{p.get('aggregation', '')}")
def test_sasrec_cached_generation_equals_uncached(sasrec, params):
    seqs = histories(9)
    a_items, a_scores = run(sasrec, params, seqs, use_cache=True, seed=3)
    b_items, b_scores = run(sasrec, params, seqs, use_cache=False, seed=3)
    np.testing.assert_array_equal(a_items, b_items)
    np.testing.assert_allclose(a_scores, b_scores, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("params", STRATEGIES, ids=lambda p: f"{p['strategy']}-{p.get('aggregation', '')}")
def test_bert4rec_generates_with_every_strategy(bert, params):
    seqs = histories(7)
    items, scores = run(bert, params, seqs, k=5, seed=1)
    assert items.shape == scores.shape == (7, 5)
    for u in range(7):
        assert len(set(items[u])) == 5 and not set(items[u]) & set(seqs[u]) and items[u].min() >= 1
        assert items[u].max() <= N_ITEMS


def test_bert4rec_greedy_is_stepwise_argmax_with_mask_appended(bert):
    seqs = histories(4)
    items, _ = run(bert, {"strategy": "greedy"}, seqs, k=4)
    for u in range(4):
        seq, out = list(seqs[u]), []
        for _ in range(4):
            with torch.no_grad():
                logits = bert.next_item_logits(torch.tensor([seq])).squeeze(0)
            logits[[0, *seqs[u], *out]] = -math.inf
            out.append(int(logits.argmax()))
            seq.append(out[-1])
        assert list(items[u]) == out


# --------------------------------------------------------------------------- masked-item training data
def test_bert4rec_masking_never_leaks_the_target():
    seqs = histories(200, low=2, high=30, seed=4)
    ds = MaskedLMDataset(seqs, max_length=16, seed=0, n_items=N_ITEMS, mask_rate=0.2, last_item_rate=0.1)
    batch = ds.collate([ds[i] for i in range(len(ds))])
    ids, labels, real = batch["input_ids"], batch["labels"], batch["attention_mask"]
    masked = labels > 0
    assert (ids[masked] == ds.mask_token).all()  # a target's own position shows [MASK], never the item
    assert not (ids[~masked] == ds.mask_token).any()
    assert (labels[~real] == 0).all() and masked.any(1).all()  # every window trains on something
    windows = [ds[i] for i in range(len(ds))]  # fresh random windows: check against the originals instead
    batch = ds.collate(windows)
    original = torch.zeros_like(batch["input_ids"])
    for r, w in enumerate(windows):
        original[r, : len(w)] = torch.as_tensor(w)
    masked = batch["labels"] > 0
    assert (batch["labels"][masked] == original[masked]).all()
    assert (batch["input_ids"][~masked] == original[~masked]).all()
    for r, w in enumerate(windows):  # the label item is nowhere in the visible input of its row
        visible = set(batch["input_ids"][r].tolist())
        assert not visible & set(batch["labels"][r][masked[r]].tolist())
    rate = masked.sum().item() / batch["attention_mask"].sum().item()
    assert 0.12 < rate < 0.35
    last = batch["attention_mask"].sum(1) - 1
    assert 0 < masked[torch.arange(len(windows)), last].float().mean() < 1  # the last item: sometimes
    only_last = MaskedLMDataset(seqs, 16, seed=0, n_items=N_ITEMS, last_item_rate=1.0)
    b = only_last.collate([only_last[i] for i in range(len(only_last))])
    assert (b["labels"] > 0).sum(1).eq(1).all()
    assert (b["labels"][torch.arange(len(b["labels"])), b["attention_mask"].sum(1) - 1] > 0).all()


# --------------------------------------------------------------------------- losses
class TinyModel(torch.nn.Module):
    def __init__(self, n_items=30, dim=8):
        super().__init__()
        self.w = torch.nn.Parameter(torch.randn(n_items + 1, dim, generator=torch.Generator().manual_seed(0)))

    def output_embeddings(self):
        return self.w


def test_gbce_beta_by_hand():
    # alpha = 256 / 3705; beta = alpha * (t * (1 - 1/alpha) + 1/alpha) = 1 - t * (1 - alpha)
    alpha = 256 / 3705
    assert gbce_beta(256, 3706, 0.75) == pytest.approx(1 - 0.75 * (1 - alpha))
    assert gbce_beta(256, 3706, 0.75) == pytest.approx(0.3018218623, rel=1e-9)
    assert gbce_beta(256, 3706, 0.0) == pytest.approx(1.0)  # t = 0: plain BCE
    assert gbce_beta(3705, 3706, 0.5) == pytest.approx(1.0)  # every other item sampled: no correction
    assert gbce_beta(1, 101, 1.0) == pytest.approx(0.01)  # t = 1: beta = alpha


def test_gbce_equals_direct_computation():
    model = TinyModel()
    h = torch.randn(5, 8, generator=torch.Generator().manual_seed(1))
    targets = torch.tensor([1, 5, 7, 30, 2])
    negs = torch.randint(1, 31, (5, 4), generator=torch.Generator().manual_seed(2))
    loss = gBCE(neg_per_positive=4, gbce_t=0.6)(model, h, targets, negatives=negs)
    w = model.w.detach().double()
    hd = h.double()
    beta = (4 / 29) * (0.6 * (1 - 29 / 4) + 29 / 4)
    direct = 0.0
    for n in range(5):
        p_pos = torch.sigmoid(hd[n] @ w[targets[n]])
        direct += -torch.log(p_pos**beta)
        for j in range(4):
            direct += -torch.log(1 - torch.sigmoid(hd[n] @ w[negs[n, j]]))
    assert loss.item() == pytest.approx((direct / 5).item(), rel=1e-6)
    loss.backward()
    assert model.w.grad is not None and torch.isfinite(model.w.grad).all()


def test_sampled_losses_against_direct_formulas():
    model = TinyModel()
    h = torch.randn(6, 8, generator=torch.Generator().manual_seed(3))
    targets = torch.tensor([3, 4, 9, 11, 1, 30])
    negs = torch.randint(1, 31, (6, 3), generator=torch.Generator().manual_seed(4))
    w = model.w.detach()
    pos = (h * w[targets]).sum(1)
    neg = torch.stack([(h * w[negs[:, j]]).sum(1) for j in range(3)], 1)
    bce = -(torch.log(torch.sigmoid(pos)) + torch.log(1 - torch.sigmoid(neg)).sum(1)).mean()
    bpr = -torch.log(torch.sigmoid(pos[:, None] - neg)).mean()
    ssm = -torch.log_softmax(torch.cat([pos[:, None], neg], 1), 1)[:, 0].mean()
    with torch.no_grad():
        assert BCE(3)(model, h, targets, negs).item() == pytest.approx(bce.item(), rel=1e-5)
        assert BPR(3)(model, h, targets, negs).item() == pytest.approx(bpr.item(), rel=1e-5)
        assert SampledSoftmax(3)(model, h, targets, negs).item() == pytest.approx(ssm.item(), rel=1e-5)
        # gBCE with t = 0 (beta = 1) is BCE
        assert gBCE(3, gbce_t=0.0)(model, h, targets, negs).item() == pytest.approx(bce.item(), rel=1e-5)
        # both scoring paths (gathered embeddings, gathered full logits) agree
        small, big = negs[:, :1], torch.randint(1, 31, (6, 8))
        for items in (small, big):
            torch.testing.assert_close(score_items(h, w, items), (h @ w.T).gather(1, items))
    for loss in (BCE(2), BPR(2), SampledSoftmax(5), gBCE(5)):  # sampling path runs and is differentiable
        value = loss(model, h, targets)
        assert torch.isfinite(value)
        assert loss(model, h[:0], targets[:0]).item() == 0.0


def test_negatives_are_uniform_and_never_the_target():
    torch.manual_seed(0)
    targets = torch.full((20000,), 3)
    negs = sample_negatives(targets, 10, 2)
    assert negs.min() >= 1 and negs.max() <= 10 and not (negs == 3).any()
    counts = torch.bincount(negs.flatten(), minlength=11)[1:].float()
    counts = counts[torch.arange(10) != 2]
    assert (counts / counts.sum() - 1 / 9).abs().max() < 0.01



def test_negatives_shared_per_sequence_against_brute_force():
    """share_negatives=sequence: every row scores its sequence's k negatives, a negative equal to the row's target
    drops out of that row's sum; the loss equals the per-row formula with those negatives, for every sampled loss."""
    model = TinyModel(n_items=6)  # few items: collisions with targets are certain
    positions = torch.tensor([[False, True, True, True], [True, True, False, False], [False, False, False, True]])
    rows = positions.nonzero()[:, 0]  # each row's sequence
    h = torch.randn(len(rows), 8, generator=torch.Generator().manual_seed(5))
    targets = torch.tensor([1, 2, 3, 4, 5, 6])
    w = model.w.detach().double()
    for cls, k in ((BCE, 3), (BPR, 3), (SampledSoftmax, 3), (gBCE, 3)):
        loss = cls(k, share_negatives="sequence")
        assert loss.wants_positions and not cls(k).wants_positions
        torch.manual_seed(7)
        value = loss(model, h, targets, positions=positions)
        torch.manual_seed(7)
        negs = torch.randint(1, 7, (3, k))  # the same draw: one row of k items per sequence
        assert (negs[rows] == targets[:, None]).any()  # the case of a shared negative hitting a target is tested
        hd, direct = h.detach().double(), []
        for r in range(len(rows)):
            pos = hd[r] @ w[targets[r]]
            neg = torch.stack([hd[r] @ w[j] for j in negs[rows[r]] if j != targets[r]])
            if cls is BCE:
                direct.append(-torch.log(torch.sigmoid(pos)) - torch.log(1 - torch.sigmoid(neg)).sum())
            elif cls is BPR:  # the mean over k: a dropped negative counts as a zero term
                direct.append(-torch.log(torch.sigmoid(pos - neg)).sum() / k)
            elif cls is SampledSoftmax:
                direct.append(-torch.log_softmax(torch.cat([pos[None], neg]), 0)[0])
            else:
                beta = gbce_beta(k, 6, 0.75)
                direct.append(-beta * torch.log(torch.sigmoid(pos)) - torch.log(1 - torch.sigmoid(neg)).sum())
        assert value.item() == pytest.approx(torch.stack(direct).mean().item(), rel=1e-5), cls.__name__
        value.backward()
        assert torch.isfinite(model.w.grad).all()
        model.w.grad = None
    with pytest.raises(ValueError, match="share_negatives must be one of position, sequence"):
        BCE(1, share_negatives="batch")
    with pytest.raises(ValueError, match="needs the .* target mask"):
        BCE(1, share_negatives="sequence")(model, h, targets)

# --------------------------------------------------------------------------- configs
GSASREC_KEYS = {
    "batch_size": 32, "eval_batch_size": 100, "n_epochs": 3, "device": "cpu", "learning_rate": 0.002,
    "weight_decay": 0.01, "patience": 4, "sequence_length": 48, "embedding_dim": 32, "num_heads": 2,
    "num_blocks": 1, "dropout_rate": 0.2, "reuse_item_embeddings": False, "max_batches_per_epoch": 7,
    "gbce_t": 0.5, "filter_rated": False, "neg_per_positive": 16, "eval_after_epochs": 2, "split_ratio": 0.5,
    "eps": 1e-8,
}
BERT4REC_KEYS = {
    "batch_size": 32, "eval_batch_size": 100, "n_epochs": 3, "negative_samples_count": 2, "device": "cpu",
    "hidden_size": 32, "inner_size": 64, "learning_rate": 0.002, "attn_dropout_prob": 0.2, "hidden_act": "relu",
    "hidden_dropout_prob": 0.3, "n_heads": 4, "n_layers": 1, "layer_norm_eps": 1e-6, "initializer_range": 0.01,
    "mask_rate": 0.3, "loss_type": "BPR", "max_seq_length": 48, "sample_strategy": None, "sample_seed": None,
    "sample_ratio": None, "eval_step": 2, "early_stopping_step": 5,
}


def _override(key, value):
    return f"model_params.{key}={'null' if value is None else value}"


def test_gsasrec_accepts_its_hyper_parameters():
    # the gSASRec code's patience counts validations, so the config's step patience is switched off
    cfg = compose("gSASRec_train", [_override(k, v) for k, v in GSASREC_KEYS.items()] + ["patience_steps=null"])
    check_train_config(cfg)
    args = apply_model_aliases(cfg)
    # the gSASRec code's names, plus two of ours that choose its initialisation (embedding_init, scale_embeddings)
    assert set(cfg.model_params) == set(GSASREC_KEYS) | {"embedding_init", "scale_embeddings"}
    assert args == {**{k: GSASREC_KEYS[k] for k in (
        "sequence_length", "embedding_dim", "num_heads", "num_blocks", "dropout_rate", "reuse_item_embeddings")},
        "embedding_init": "xavier", "scale_embeddings": True}
    assert (cfg.dataloader.batch_size, cfg.dataloader.test_batch_size, cfg.trainer_params.max_epochs) == (32, 100, 3)
    assert cfg.trainer_params.accelerator == "cpu" and cfg.seqrec_module.lr == 0.002
    assert cfg.seqrec_module.weight_decay == 0.01 and cfg.patience == 4 and cfg.dataset.max_length == 48
    assert cfg.trainer_params.limit_train_batches == 7 and cfg.trainer_params.check_val_every_n_epoch == 2
    assert cfg.seqrec_module.filter_seen is False
    assert dict(cfg.seqrec_module.loss) == {
        "_target_": "seqrec.training.losses.gBCE", "neg_per_positive": 16, "gbce_t": 0.5, "eps": 1e-8, "t_warmup_steps": 500,
        "neg_warmup_steps": 500, "share_negatives": "position"}
    model = SASRec(50, **args)
    assert model.output_embeddings() is not model.embed.item.weight  # reuse_item_embeddings=False


def test_bert4rec_accepts_its_hyper_parameters():
    # RecBole's early_stopping_step counts validations, so the config's step patience is switched off
    cfg = compose("BERT4Rec_train", [_override(k, v) for k, v in BERT4REC_KEYS.items()] + ["patience_steps=null"])
    check_train_config(cfg)
    args = apply_model_aliases(cfg)
    assert set(cfg.model_params) == set(BERT4REC_KEYS) | {"layer_norm"}  # RecBole's names + our block layout option
    assert dict(cfg.seqrec_module.loss) == {"_target_": "seqrec.training.losses.BPR", "num_negatives": 2}
    assert cfg.train_dataset.mask_rate == 0.3 and cfg.patience == 5 and cfg.dataset.max_length == 48
    assert cfg.trainer_params.check_val_every_n_epoch == 2 and cfg.dataloader.batch_size == 32
    model = BERT4Rec(50, **args)
    assert len(model.blocks) == 1 and model.max_seq_length == 48 and model.blocks[0].attn.n_heads == 4


def test_defaults_follow_the_settings_they_alias():
    cfg = compose("gSASRec_train", ["dataloader.batch_size=16", "dataset.max_length=40", "seqrec_module.loss.gbce_t=0.3"])
    args = apply_model_aliases(cfg)
    assert cfg.model_params.batch_size == 16 and args["sequence_length"] == 40 and cfg.model_params.gbce_t == 0.3


@pytest.mark.parametrize("config, seed_names", [
    ("SASRec_train", None), ("gSASRec_train", "batch_size, device, eps"), ("BERT4Rec_train", "batch_size, device")])
def test_unknown_hyper_parameter_is_rejected(config, seed_names):
    """The message lists the model's own settings and the seed names *it* declares (SASRec declares none beyond
    its network's; gSASRec and BERT4Rec the names of their code bases)."""
    with pytest.raises(UserError, match=r"model_params\.hidden_sise is not a setting of \w+; its settings: ") as err:
        check_train_config(compose(config, ["+model_params.hidden_sise=64"]))
    if seed_names is None:
        assert "seed names" not in str(err.value)
    else:
        assert f"seed names {seed_names}" in str(err.value)


@pytest.mark.parametrize(
    "config, override, match",
    [
        ("gSASRec_train", "model_params.split_ratio=0.8", "split_ratio"),
        ("gSASRec_train", "loss=CE", "neg_per_positive|gbce_t|eps"),
        ("BERT4Rec_train", "model_params.loss_type=hinge", "loss_type must be one of CE, BCE, BPR"),
        ("BERT4Rec_train", "model_params.sample_strategy=uni100", "whole catalogue"),
        ("BERT4Rec_train", "model_params.sample_seed=3", "sample_seed"),
        ("BERT4Rec_train", "model_params.hidden_act=gelu2", None),
        ("BERT4Rec_train", "model_params.device=tpu", "device must be"),
        ("BERT4Rec_train", "model_params.layer_norm=sandwich", "layer_norm must be one of post, pre"),
        ("SASRec_train", "+model_params.mask_rate=0.3", "mask_rate is not a setting of SASRec"),  # BERT4Rec's name
        ("BERT4Rec_train", "+model_params.gbce_t=0.5", "gbce_t is not a setting of BERT4Rec"),  # gSASRec's name
    ],
)
def test_bad_hyper_parameters(config, override, match, tmp_path):
    cfg = compose(config, [override, f"data_path={tmp_path / 'none.csv'}", f"run_store={tmp_path}", "logger=none"])
    if match is None:  # a bad network argument fails when the model is built, as a UserError
        with pytest.raises(UserError, match="hidden_act|activation"):
            apply_model_aliases(cfg)
            from seqrec.core.instantiate import build
            from seqrec.config.checks import model_class

            build(model_class(cfg), "model_params", n_items=10, **apply_model_aliases(cfg))
        return
    with pytest.raises(UserError, match=match):
        check_train_config(cfg)


def test_device_cuda_without_gpu_is_an_error():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(UserError, match="no CUDA GPU"):
        check_train_config(compose("gSASRec_train", ["model_params.device=cuda"]))


@pytest.mark.parametrize("label", ["GPT", "SASRec", "gSASRec", "BERT4Rec"])
def test_every_alias_targets_an_existing_setting(label):
    """Each seed name a model declares points at a key its own training config has."""
    from omegaconf import OmegaConf

    from seqrec.core import registry

    model = registry.model_by_label(label)
    cfg = compose(model.train_config)
    for key, path in model.aliases.items():
        assert OmegaConf.select(cfg, path, default="MISSING") != "MISSING", (label, key, path)


@pytest.mark.parametrize("label", ["GPT", "SASRec", "gSASRec", "BERT4Rec"])
def test_declared_network_settings_are_the_constructor_arguments(label):
    """A model's declaration names exactly its class's arguments (less n_items), so no argument is unchecked
    and no declared setting is silently dropped."""
    import inspect

    from hydra.utils import get_class

    from seqrec.core import registry

    model = registry.model_by_label(label)
    params = inspect.signature(get_class(model.target).__init__).parameters
    # features= (item/event attributes) is passed by the pipeline to models that declare features=True
    assert model.features == ("features" in params)
    assert set(model.keys()) == set(params) - {"self", "n_items", "features"}


# Training each model to its bars on a log with a known optimum: tests/test_oracle_learning.py


def test_chunked_gathered_logits_equal_the_full_product_and_its_gradient():
    """The dense regime of score_items (k * C >= V: gSASRec's 256 negatives) made chunk by chunk: values and both
    gradients equal autograd through the full ``[N, V]`` product, repeated items included (their gradients add)."""
    torch.manual_seed(0)
    h = torch.randn(37, 8, dtype=torch.float64, requires_grad=True)
    w = torch.randn(21, 8, dtype=torch.float64, requires_grad=True)
    items = torch.randint(1, 21, (37, 9))
    items[0, :3] = 5  # one item drawn three times for a row
    upstream = torch.randn(37, 9, dtype=torch.float64)
    got = score_items(h, w, items, chunk=8)  # 37 rows: four full chunks and a partial one
    want = (h @ w.T).gather(1, items)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-12)
    g_h, g_w = torch.autograd.grad(got, (h, w), upstream)
    r_h, r_w = torch.autograd.grad(want, (h, w), upstream)
    torch.testing.assert_close(g_h, r_h, rtol=0, atol=1e-12)
    torch.testing.assert_close(g_w, r_w, rtol=0, atol=1e-12)
    # under bf16 autocast the products run in bf16 (as autograd through the full product would), gradients in fp32
    h32, w32 = h.detach().float().requires_grad_(), w.detach().float().requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = score_items(h32, w32, items, chunk=8)
        ref = (h32 @ w32.T).gather(1, items)
    assert low.dtype == ref.dtype == torch.bfloat16
    torch.testing.assert_close(low, ref)
    g_h, g_w = torch.autograd.grad(low.float().sum(), (h32, w32))
    assert g_h.dtype == g_w.dtype == torch.float32
    r_h, r_w = torch.autograd.grad((h32 @ w32.T).gather(1, items).sum(), (h32, w32))
    torch.testing.assert_close(g_h, r_h, rtol=0.02, atol=0.05)  # bf16 products: 8 mantissa bits
    torch.testing.assert_close(g_w, r_w, rtol=0.02, atol=0.05)
