"""The one Lightning module: any :class:`~seqrec.models.base.SequentialModel` + any loss.

Training batches carry ``input_ids`` and ``labels`` (0 = no target at that position), so
causal (shifted) and masked-item objectives share the same step. Validation ranks the
whole catalogue for the next item and reports ``val_next_ndcg@10`` and friends, which early
stopping monitors.

With a ``seed``, the global random generators (torch, numpy, ``random``: dropout, sampled
negatives) are reseeded at the start of every training epoch from ``(seed, epoch)``. Together
with :class:`~seqrec.data.datasets.EpochSampler` this makes epoch ``e`` of a run resumed
from a checkpoint identical to epoch ``e`` of an uninterrupted one (Lightning checkpoints do
not hold the generators' states).
"""

from __future__ import annotations

import logging
import random
import time

import lightning as L
import numpy as np
import torch

from seqrec.evaluation.metrics import compute_metrics
from seqrec.generation.ranking import topk_items

log = logging.getLogger("seqrec")


class SeqRecModule(L.LightningModule):
    def __init__(
        self,
        model,
        loss,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        predict_top_k: int = 10,
        filter_seen: bool = True,
        item_counts: np.ndarray | None = None,
        seed: int | None = None,
        optimizer=None,
        scheduler=None,
        augment=None,
    ):
        super().__init__()
        self.model, self.loss = model, loss
        self.lr, self.weight_decay = lr, weight_decay
        # factories from the optimizer/ and scheduler/ config groups: optimizer(params, lr=, weight_decay=),
        # scheduler(optimizer, total_steps=); None: Adam with PyTorch's defaults, a constant learning rate
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.predict_top_k, self.filter_seen = predict_top_k, filter_seen
        self.item_counts = item_counts if item_counts is not None else np.ones(model.n_items + 1, dtype=np.int64)
        self._val_recs: list[torch.Tensor] = []
        self._val_targets: list[torch.Tensor] = []
        self._epoch_started = time.perf_counter()
        self.seed = seed
        self._seeded_epoch: int | None = None
        # a training stage's batch rewrite, e.g. RecGPT prompt-tuning (seqrec.training.prompt_tuning.PromptAugmenter):
        # augment(model, batch) -> batch, run without gradients before every training step
        self.augment = augment

    def on_train_epoch_start(self):
        self._epoch_started = time.perf_counter()
        self._seed_epoch()

    def on_train_batch_start(self, batch, batch_idx):
        # Lightning skips on_train_epoch_start when it restarts inside an epoch (from a mid-epoch
        # checkpoint); the first batch of every epoch still passes here
        if batch_idx == 0:
            self._seed_epoch()

    def _seed_epoch(self) -> None:
        """Reseed the global generators from ``(seed, epoch)``, once per epoch."""
        epoch = int(self.current_epoch)
        if self.seed is None or self._seeded_epoch == epoch:
            return
        self._seeded_epoch = epoch
        state = np.random.SeedSequence([int(self.seed) & 0xFFFF_FFFF_FFFF_FFFF, epoch, 0x5EED_0002]).generate_state(2)
        torch.manual_seed(int(state[0]))  # CPU and every CUDA device
        np.random.seed(int(state[1]))
        random.seed(int(state[1]))

    def training_step(self, batch, batch_idx):
        if self.augment is not None:
            batch = self.augment(self.model, batch)
        if getattr(self.loss, "uses_step", False):  # a schedule inside the loss, e.g. gBCE's t warm-up
            self.loss.step = int(self.global_step)
        labels = batch["labels"]
        extra = {key: batch[key] for key in ("segments", "events") if key in batch}  # prompt-tuning, attributes
        has_target = labels > 0
        hidden = self.model.encode_targets(batch["input_ids"], batch.get("attention_mask"), has_target, **extra)
        # shared negatives per sequence need to know which rows share a sequence (the [B, L] target mask)
        share = {"positions": has_target} if getattr(self.loss, "wants_positions", False) else {}
        loss = self.loss(self.model, hidden, labels[has_target], **share)
        if self.model.predicts_events and "label_events" in batch:  # features.generated_events=predicted
            event_loss = self.model.event_loss(hidden, labels[has_target], batch["label_events"][has_target])
            self.log("train_event_loss", event_loss, on_step=False, on_epoch=True, batch_size=labels.shape[0],
                     sync_dist=self._distributed)
            loss = loss + event_loss
        self.log("train_loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=labels.shape[0],
                 sync_dist=self._distributed)
        return loss

    def validation_step(self, batch, batch_idx):
        recs, _ = topk_items(self.model, batch, self.predict_top_k, self.filter_seen)
        self._val_recs.append(recs.cpu())
        self._val_targets.append(batch["targets"].cpu())

    def on_validation_epoch_end(self):
        if not self._val_recs:
            return
        recs, targets = torch.cat(self._val_recs), torch.cat(self._val_targets)
        self._val_recs.clear()
        self._val_targets.clear()
        metrics = compute_metrics(recs.numpy(), targets.numpy(), self.item_counts, self.model.n_items, k=self.predict_top_k)
        k = self.predict_top_k
        for name in (f"ndcg@{k}", f"recall@{k}", f"map@{k}"):
            # DDP: every rank validated on all users, so the mean over ranks is the value itself
            self.log(f"val_next_{name}", float(metrics[name]), prog_bar=name.startswith("ndcg"), sync_dist=self._distributed)
        if not self.trainer.sanity_checking and self.trainer.is_global_zero:
            log.info(
                "epoch %d: val_next_ndcg@%d %.4f, val_next_recall@%d %.4f (%.1f s)", self.current_epoch, k,
                metrics[f"ndcg@{k}"], k, metrics[f"recall@{k}"], time.perf_counter() - self._epoch_started,
            )

    @property
    def _distributed(self) -> bool:
        return self._trainer is not None and self.trainer.world_size > 1

    def configure_optimizers(self):
        make = self.optimizer_factory or torch.optim.Adam
        optimizer = make(self.model.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(optimizer, total_steps=int(self.trainer.estimated_stepping_batches))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
