"""Padding, in one place: every batch of variable-length sequences goes through here.

Causal models train on right-padded batches (a plain causal mask then never lets a real
position see padding) and predict from left-padded ones (the last real item always sits
in the last column, which is what the KV-cached generation engine appends to).
Positions are always derived from the attention mask, so both layouts give the same
positional embeddings to the same items.
"""

from __future__ import annotations

from typing import Literal, Sequence as Seq

import numpy as np
import torch

from seqrec.data.sequences import PAD, Sequences, pad_array


def pad_sequences(
    seqs: Sequences | Seq[np.ndarray],
    length: int | None = None,
    side: Literal["left", "right"] = "left",
    keep: Literal["last", "first"] = "last",
    value: int = PAD,
) -> torch.Tensor:
    """Stack ragged sequences into a ``[n, length]`` LongTensor.

    ``length`` defaults to the longest sequence; longer sequences keep their ``last`` (model
    inputs: the most recent history) or ``first`` (targets: the next items) ``length`` items.
    """
    if not isinstance(seqs, Sequences):
        arrays = [np.asarray(s, dtype=np.int64) for s in seqs]
        lens = np.array([len(a) for a in arrays], dtype=np.int64)
        flat = np.concatenate(arrays) if arrays else np.zeros(0, dtype=np.int64)
        seqs = Sequences.from_lengths(flat, lens)
    return torch.from_numpy(pad_array(seqs, length, side, keep, value))


def positions_from_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """0-based positions of real tokens (padding gets 0) for either padding side."""
    return (attention_mask.long().cumsum(-1) - 1).clamp_min(0)
