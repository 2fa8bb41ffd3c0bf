"""Torch datasets and batch builders on top of :mod:`seqrec.data.split`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from seqrec.data.padding import pad_sequences
from seqrec.data.split import Sequences


class CausalLMDataset(Dataset):
    """Next-item training windows: ``max_length + 1`` consecutive items of a user's train part.

    Users with a longer train part get a fresh random window every time they are drawn
    (``window="random"``, the default: every interaction is trained on across epochs) or
    always their most recent one (``window="last"``). Users with fewer than two items
    carry no training signal and are skipped.
    """

    def __init__(self, train: Sequences, max_length: int, window: str = "random", seed: int = 0):
        if window not in ("random", "last"):
            raise ValueError(f"window must be 'random' or 'last', got {window!r}")
        self.train, self.max_length, self.window = train, max_length, window
        self.users = np.flatnonzero(train.lengths >= 2)
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.users)

    def __getitem__(self, i: int) -> np.ndarray:
        seq = self.train[self.users[i]]
        span = self.max_length + 1
        if len(seq) <= span:
            return seq
        start = len(seq) - span if self.window == "last" else int(self.rng.integers(0, len(seq) - span + 1))
        return seq[start : start + span]

    @staticmethod
    def collate(windows: list[np.ndarray]) -> dict[str, torch.Tensor]:
        batch = pad_sequences(windows, side="right")
        return {"input_ids": batch[:, :-1], "labels": batch[:, 1:]}


@dataclass
class EvalBatchBuilder:
    """Builds evaluation batches for a list of users: history, full seen set, targets."""

    train: Sequences
    max_length: int

    def __call__(self, users: np.ndarray) -> dict[str, torch.Tensor]:
        hist = self.train.select(users)
        inputs = pad_sequences(hist, length=self.max_length, side="left")
        return {
            "users": torch.from_numpy(np.asarray(users, dtype=np.int64)),
            "input_ids": inputs,
            "attention_mask": inputs != 0,
            "seen": pad_sequences(hist, side="right"),
        }


class EvalDataset(Dataset):
    """Users to evaluate with their targets; batches are built vectorized by ``collate``."""

    def __init__(self, train: Sequences, users: np.ndarray, targets: np.ndarray, max_length: int):
        self.users = np.asarray(users, dtype=np.int64)
        self.targets = torch.as_tensor(targets, dtype=torch.long)
        self.builder = EvalBatchBuilder(train, max_length)

    def __len__(self) -> int:
        return len(self.users)

    def __getitem__(self, i: int) -> int:
        return i

    def collate(self, rows: list[int]) -> dict[str, torch.Tensor]:
        rows_arr = np.asarray(rows, dtype=np.int64)
        batch = self.builder(self.users[rows_arr])
        batch["targets"] = self.targets[rows_arr]
        return batch

    def loader(self, batch_size: int, num_workers: int = 0) -> DataLoader:
        return DataLoader(
            self, batch_size=batch_size, shuffle=False, collate_fn=self.collate, num_workers=num_workers
        )
