"""Torch datasets and batch builders on top of :mod:`seqrec.data.split`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, NamedTuple, Union

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from seqrec.data.padding import pad_sequences
from seqrec.data.split import Sequences


def keyed_rng(*key: int) -> np.random.Generator:
    """A generator that is a function of ``key`` only (e.g. ``(seed, epoch, index)``); negative ints allowed."""
    return np.random.default_rng([int(k) & 0xFFFF_FFFF_FFFF_FFFF for k in key])


class EpochIndex(NamedTuple):
    """An index drawn by :class:`EpochSampler`: which example, in which epoch."""

    epoch: int
    index: int


Key = Union[int, EpochIndex]


class EpochSampler(Sampler[EpochIndex]):
    """Every epoch a fresh shuffle of ``range(n)``, a function of ``(seed, epoch)`` only.

    It yields :class:`EpochIndex` pairs, so a training dataset draws the randomness of an
    example (its window, its masked items) from ``(seed, epoch, index)``, in the main process or
    in a worker alike. Lightning calls :meth:`set_epoch` before every epoch, resumed ones
    included: the data of epoch ``e`` is the same whether or not the run was interrupted
    before it.
    """

    _SHUFFLE = 0x5EED_0001  # tags keep the shuffle's stream apart from the examples' streams

    def __init__(self, n: int, seed: int = 0, shuffle: bool = True, rank: int = 0, world_size: int = 1):
        if not 0 <= rank < world_size:
            raise ValueError(f"rank must be in [0, {world_size}), got {rank}")
        self.n, self.seed, self.shuffle, self.epoch = int(n), int(seed), shuffle, 0
        self.rank, self.world_size = int(rank), int(world_size)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def set_rank(self, rank: int, world_size: int) -> None:
        """Distributed training: yield only every ``world_size``-th example of the epoch's order, from ``rank``."""
        if not 0 <= rank < world_size:
            raise ValueError(f"rank must be in [0, {world_size}), got {rank}")
        self.rank, self.world_size = int(rank), int(world_size)

    def __len__(self) -> int:
        return -(-self.n // self.world_size)  # ranks get equal shares (the order is padded from its start)

    def __iter__(self) -> Iterator[EpochIndex]:
        epoch = self.epoch  # read when iteration starts, i.e. after set_epoch
        order = keyed_rng(self.seed, epoch, self._SHUFFLE).permutation(self.n) if self.shuffle else np.arange(self.n)
        if self.world_size > 1:  # the same permutation on every rank, each takes its own slice
            padded = np.concatenate([order, order[: len(self) * self.world_size - self.n]])
            order = padded[self.rank :: self.world_size]
        for i in order:
            yield EpochIndex(epoch, int(i))


class CausalLMDataset(Dataset):
    """Next-item training windows: ``max_length + 1`` consecutive items of a user's train part.

    Users with a longer train part get a fresh random window every time they are drawn
    (``window="random"``, the default: every interaction is trained on across epochs) or
    always their most recent one (``window="last"``). Users with fewer than two items
    carry no training signal and are skipped.

    Indexed by an :class:`EpochIndex` (as :class:`EpochSampler` does during training), the
    random window of example ``i`` in epoch ``e`` is a function of ``(seed, e, i)``: it does
    not depend on what was drawn before, so a resumed run sees the same data. A plain
    integer index draws from the dataset's own generator (a new window every call).
    """

    span_extra = 1  # a window holds max_length inputs + the last target

    def __init__(
        self, train: Sequences, max_length: int, window: str = "random", seed: int = 0, n_items: int | None = None,
        events: list[Sequences] | None = None,
    ):
        # n_items: the catalogue size, given to every training dataset by the pipeline
        # (the masked one needs it for its [MASK] id); causal windows only check against it
        if window not in ("random", "last"):
            raise ValueError(f"window must be 'random' or 'last', got {window!r}")
        if n_items is not None and len(train.items) and int(train.items.max()) > n_items:
            raise ValueError(f"item ids exceed n_items={n_items}")
        self.train, self.max_length, self.window, self.n_items = train, max_length, window, n_items
        # event-attribute codes parallel to train (features=items_events): a window then carries its events
        self.events = events or None
        self.users = np.flatnonzero(train.lengths >= 2)
        self.seed = int(seed)
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.users)

    def example_rng(self, key: Key) -> tuple[int, np.random.Generator]:
        """``(index, generator)`` for an item key: keyed by ``(seed, epoch, index)`` or the shared one."""
        if isinstance(key, tuple):
            epoch, i = key
            return int(i), keyed_rng(self.seed, epoch, i)
        return int(key), self.rng

    def __getitem__(self, key: Key) -> np.ndarray:
        i, rng = self.example_rng(key)
        return self._window(i, rng)

    def _window(self, i: int, rng: np.random.Generator) -> np.ndarray | EventWindow:
        user = self.users[i]
        seq = self.train[user]
        span = self.max_length + self.span_extra
        start = 0
        if len(seq) > span:
            start = len(seq) - span if self.window == "last" else int(rng.integers(0, len(seq) - span + 1))
        stop = min(len(seq), start + span)
        if self.events is None:
            return seq[start:stop]
        return EventWindow(seq[start:stop], np.stack([e[user][start:stop] for e in self.events], 1))

    def collate(self, windows: list[np.ndarray | EventWindow]) -> dict[str, torch.Tensor]:
        batch = pad_sequences([w.items if isinstance(w, EventWindow) else w for w in windows], side="right")
        out = {"input_ids": batch[:, :-1], "labels": batch[:, 1:]}
        if windows and isinstance(windows[0], EventWindow):
            events = pad_events([w.events for w in windows], batch.shape[1])
            # the inputs' attributes, and the targets' (what features.generated_events=predicted learns)
            out["events"], out["label_events"] = events[:, :-1], events[:, 1:]
        return out


class EventWindow(NamedTuple):
    """A training window with its events' attribute codes ``[len, n_events]`` (0 = unknown)."""

    items: np.ndarray
    events: np.ndarray


def pad_events(rows: list[np.ndarray], length: int, side: str = "right") -> torch.Tensor:
    """``[B, length, n_events]`` codes, padded with 0 (unknown) on ``side``, as :func:`pad_sequences` pads items."""
    return torch.stack([pad_sequences([r[:, j] for r in rows], length=length, side=side)
                        for j in range(rows[0].shape[1])], -1)


class MaskedWindow(NamedTuple):
    """A masked-LM example before batching: its items and the uniform draws that pick its masks."""

    items: np.ndarray
    draws: np.ndarray  # one per item: masked where < mask_rate
    last_draw: float  # the window masks only its last item where < last_item_rate
    events: np.ndarray | None = None  # [len, n_events] attribute codes (features=items_events)


class MaskedLMDataset(CausalLMDataset):
    """Masked-item (cloze) training windows for bidirectional models (BERT4Rec).

    A window is ``max_length`` consecutive items (random or last, as for
    :class:`CausalLMDataset`). Each item is replaced by the ``[MASK]`` token
    (``n_items + 1``) with probability ``mask_rate`` and becomes a label there; labels
    are 0 elsewhere, so a target is never visible at its own position. A window with
    no masked item gets its last item masked, and with probability ``last_item_rate``
    a window masks only its last item: the next-item task used at prediction time.

    Indexed by an :class:`EpochIndex`, an example is a :class:`MaskedWindow` whose window and
    masks are a function of ``(seed, epoch, index)``; ``collate`` also takes plain windows
    (integer indexing), which it masks with the dataset's own generator.
    """

    span_extra = 0

    def __init__(
        self,
        train: Sequences,
        max_length: int,
        window: str = "random",
        seed: int = 0,
        n_items: int | None = None,
        mask_rate: float = 0.2,
        last_item_rate: float = 0.1,
        events: list[Sequences] | None = None,
    ):
        if n_items is None:
            raise ValueError("MaskedLMDataset needs n_items (the [MASK] token is n_items + 1)")
        if not 0.0 < mask_rate < 1.0:
            raise ValueError(f"mask_rate must be in (0, 1), got {mask_rate}")
        if not 0.0 <= last_item_rate <= 1.0:
            raise ValueError(f"last_item_rate must be in [0, 1], got {last_item_rate}")
        super().__init__(train, max_length, window, seed, n_items, events)
        self.mask_token, self.mask_rate, self.last_item_rate = n_items + 1, mask_rate, last_item_rate

    def __getitem__(self, key: Key) -> np.ndarray | MaskedWindow:
        if not isinstance(key, tuple):
            return super().__getitem__(key)  # a plain window; collate masks it with self.rng
        i, rng = self.example_rng(key)
        return self._masked(self._window(i, rng), rng)

    @staticmethod
    def _masked(window: np.ndarray | EventWindow, rng: np.random.Generator) -> MaskedWindow:
        if isinstance(window, EventWindow):
            return MaskedWindow(window.items, rng.random(len(window.items)), float(rng.random()), window.events)
        return MaskedWindow(window, rng.random(len(window)), float(rng.random()))

    def collate(self, windows: list[np.ndarray | MaskedWindow]) -> dict[str, torch.Tensor]:
        rows = [w if isinstance(w, MaskedWindow) else self._masked(w, self.rng) for w in windows]
        items = pad_sequences([r.items for r in rows], side="right")
        real = items != 0
        draws = np.ones(tuple(items.shape))  # padding: never masked
        for r, row in enumerate(rows):
            draws[r, : len(row.draws)] = row.draws
        masked = torch.from_numpy(draws < self.mask_rate) & real
        lengths = real.sum(1)
        last = torch.zeros_like(real)
        last[torch.arange(len(items)), lengths - 1] = True
        last_draws = np.array([r.last_draw for r in rows])
        only_last = torch.from_numpy(last_draws < self.last_item_rate) | ~masked.any(1)
        masked = torch.where(only_last[:, None], last, masked)
        out = {
            "input_ids": items.masked_fill(masked, self.mask_token),
            "attention_mask": real,
            "labels": items.masked_fill(~masked, 0),
        }
        if rows and rows[0].events is not None:  # a masked event's attributes are unknown, as [MASK]'s at prediction
            events = pad_events([r.events for r in rows], items.shape[1])
            # the targets' attributes are the masked events' true ones (read where labels > 0)
            out["events"], out["label_events"] = events.masked_fill(masked[..., None], 0), events
        return out


@dataclass
class EvalBatchBuilder:
    """Builds evaluation batches for a list of users: history, full seen set, targets."""

    train: Sequences
    max_length: int
    events: list[Sequences] | None = None

    def __call__(self, users: np.ndarray) -> dict[str, torch.Tensor]:
        hist = self.train.select(users)
        inputs = pad_sequences(hist, length=self.max_length, side="left")
        out = {
            "users": torch.from_numpy(np.asarray(users, dtype=np.int64)),
            "input_ids": inputs,
            "attention_mask": inputs != 0,
            "seen": pad_sequences(hist, side="right"),
        }
        if self.events:
            out["events"] = history_events(self.events, users, inputs.shape[1], "left")
        return out


def history_events(events: list[Sequences], users: np.ndarray, length: int, side: str) -> torch.Tensor:
    """``[U, length, n_events]`` attribute codes of the users' (most recent) train events, padded like their items."""
    return torch.stack([pad_sequences(e.select(users), length=length, side=side) for e in events], -1)


class EvalDataset(Dataset):
    """Users to evaluate with their targets; batches are built vectorized by ``collate``."""

    def __init__(self, train: Sequences, users: np.ndarray, targets: np.ndarray, max_length: int,
                 events: list[Sequences] | None = None):
        self.users = np.asarray(users, dtype=np.int64)
        self.targets = torch.as_tensor(targets, dtype=torch.long)
        self.builder = EvalBatchBuilder(train, max_length, events)

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
