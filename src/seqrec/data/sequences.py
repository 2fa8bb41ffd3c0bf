"""Ragged item sequences in CSR form and their padding to a matrix (numpy only).

:mod:`seqrec.data.split` builds them, :mod:`seqrec.data.padding` turns them into model inputs (torch); both
import this module, neither imports the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

PAD = 0


@dataclass(frozen=True)
class Sequences:
    """Variable-length item sequences in CSR form: user ``u`` owns ``items[offsets[u]:offsets[u+1]]``."""

    items: np.ndarray  # int64, flat
    offsets: np.ndarray  # int64, len = n_sequences + 1

    @classmethod
    def from_lengths(cls, items: np.ndarray, lengths: np.ndarray) -> "Sequences":
        offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        return cls(np.ascontiguousarray(items, dtype=np.int64), offsets)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def __getitem__(self, u: int) -> np.ndarray:
        return self.items[self.offsets[u] : self.offsets[u + 1]]

    def select(self, rows: np.ndarray) -> "Sequences":
        """The sequences of ``rows`` (in that order), vectorized."""
        rows = np.asarray(rows, dtype=np.int64)
        starts, lengths = self.offsets[rows], self.lengths[rows]
        return Sequences.from_lengths(self.items[ragged_index(starts, lengths)], lengths)

    def tails(self, n: int) -> "Sequences":
        """The last ``n`` items of every sequence (all of it when shorter)."""
        lengths = np.minimum(self.lengths, n)
        starts = self.offsets[1:] - lengths
        return Sequences.from_lengths(self.items[ragged_index(starts, lengths)], lengths)


def ragged_index(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Flat indices ``[s0, s0+1, .., s0+l0-1, s1, ..]`` for ragged slices, without a loop."""
    lengths = np.asarray(lengths, dtype=np.int64)
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    seg_starts = np.repeat(np.asarray(starts, dtype=np.int64) - np.cumsum(lengths) + lengths, lengths)
    return seg_starts + np.arange(total, dtype=np.int64)


def pad_array(
    seqs: Sequences, length: int | None = None, side: Literal["left", "right"] = "left",
    keep: Literal["last", "first"] = "last", value: int = PAD,
) -> np.ndarray:
    """Stack ``seqs`` into an ``[n, length]`` int64 array (see :func:`seqrec.data.padding.pad_sequences`)."""
    lengths = seqs.lengths
    if length is None:
        length = int(lengths.max()) if len(lengths) else 0
    kept = np.minimum(lengths, length)
    starts = seqs.offsets[1:] - kept if keep == "last" else seqs.offsets[:-1]
    values = seqs.items[ragged_index(starts, kept)]
    rows = np.repeat(np.arange(len(kept)), kept)
    within = np.arange(len(values)) - np.repeat(np.cumsum(kept) - kept, kept)
    cols = within + np.repeat(length - kept, kept) if side == "left" else within
    out = np.full((len(kept), length), value, dtype=np.int64)
    out[rows, cols] = values
    return out
