"""Training windows and validation users of one split as a ``LightningDataModule``."""

from __future__ import annotations

import lightning as L
import torch

from seqrec.data.datasets import EpochSampler, EvalDataset


class SeqRecDataModule(L.LightningDataModule):
    """Loaders for :meth:`lightning.Trainer.fit`: ``train_set`` in the order of an :class:`EpochSampler` (order,
    windows and masks are functions of ``(seed, epoch)``; with DDP each rank takes its slice of every epoch) and
    every validation user of ``val_set``.

    ``start_epoch``: the epoch a resumed run continues with (checkpoints are taken at the end of an epoch), set
    before any worker starts drawing.
    """

    def __init__(self, train_set, val_set: EvalDataset, batch_size: int, test_batch_size: int, num_workers: int,
                 seed: int, start_epoch: int | None = None):
        super().__init__()
        self.train_set, self.val_set, self.seed = train_set, val_set, int(seed)
        self.batch_size, self.test_batch_size, self.num_workers = batch_size, test_batch_size, num_workers
        self.sampler = EpochSampler(len(train_set), self.seed)
        if start_epoch is not None:
            self.sampler.set_epoch(start_epoch)

    def setup(self, stage: str) -> None:
        if self.trainer is not None:
            self.sampler.set_rank(self.trainer.global_rank, self.trainer.world_size)

    def train_dataloader(self) -> torch.utils.data.DataLoader:
        return torch.utils.data.DataLoader(
            self.train_set, batch_size=self.batch_size, sampler=self.sampler, collate_fn=self.train_set.collate,
            num_workers=self.num_workers, generator=torch.Generator().manual_seed(self.seed),
        )

    def val_dataloader(self) -> torch.utils.data.DataLoader:
        return self.val_set.loader(self.test_batch_size, self.num_workers)
