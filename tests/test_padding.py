import numpy as np
import torch

from seqrec.data.datasets import CausalLMDataset, EvalDataset
from seqrec.data.padding import pad_sequences, positions_from_mask
from seqrec.data.split import Sequences


def test_pad_left_right_keep():
    seqs = [np.array([1, 2, 3]), np.array([4]), np.array([], dtype=np.int64)]
    assert pad_sequences(seqs, side="left").tolist() == [[1, 2, 3], [0, 0, 4], [0, 0, 0]]
    assert pad_sequences(seqs, side="right").tolist() == [[1, 2, 3], [4, 0, 0], [0, 0, 0]]
    assert pad_sequences(seqs, length=2, side="left").tolist() == [[2, 3], [0, 4], [0, 0]]
    assert pad_sequences(seqs, length=2, side="right", keep="first").tolist() == [[1, 2], [4, 0], [0, 0]]
    assert pad_sequences(seqs, length=4, side="right").tolist() == [[1, 2, 3, 0], [4, 0, 0, 0], [0, 0, 0, 0]]


def test_positions_same_for_both_sides():
    left = torch.tensor([[0, 0, 5, 6], [1, 2, 3, 4]])
    right = torch.tensor([[5, 6, 0, 0], [1, 2, 3, 4]])
    pl, pr = positions_from_mask(left != 0), positions_from_mask(right != 0)
    assert pl[0, 2:].tolist() == pr[0, :2].tolist() == [0, 1]
    assert pl[1].tolist() == [0, 1, 2, 3]


def test_causal_windows():
    train = Sequences.from_lengths(np.arange(1, 16), np.array([10, 1, 4]))
    ds = CausalLMDataset(train, max_length=4, window="last")
    assert ds.users.tolist() == [0, 2]  # a single item carries no target
    assert ds[0].tolist() == [6, 7, 8, 9, 10]
    batch = ds.collate([ds[0], ds[1]])
    assert batch["input_ids"].tolist() == [[6, 7, 8, 9], [12, 13, 14, 15]]  # 15 has no label: ignored
    assert batch["labels"].tolist() == [[7, 8, 9, 10], [13, 14, 15, 0]]
    rnd = CausalLMDataset(train, max_length=4, window="random", seed=3)
    starts = {int(rnd[0][0]) for _ in range(200)}
    assert starts == {1, 2, 3, 4, 5, 6}  # every window of user 0 is drawn


def test_eval_batch():
    train = Sequences.from_lengths(np.arange(1, 9), np.array([5, 3]))
    ds = EvalDataset(train, np.array([1, 0]), np.array([[20], [30]]), max_length=4)
    batch = ds.collate([0, 1])
    assert batch["input_ids"].tolist() == [[0, 6, 7, 8], [2, 3, 4, 5]]
    assert batch["attention_mask"].tolist() == [[False, True, True, True], [True] * 4]
    assert batch["seen"].tolist() == [[6, 7, 8, 0, 0], [1, 2, 3, 4, 5]]  # whole history, not the window
    assert batch["targets"].tolist() == [[20], [30]]
