"""Early stopping whose patience may be given in optimizer steps (``patience_steps``) instead of validations.

One step budget serves data sets of any size: ML-100k (15 steps per epoch at batch 64) and ML-1M (95) need
patiences of 200 and 40 *epochs* for the same ~3,000 *steps* of gSASRec's start-up plateau. Lightning counts
patience in validation checks; the steps between two checks are known only once the trainer has sized its
loaders (``limit_train_batches``, DDP slices, ``val_check_interval``, ``check_val_every_n_epoch``,
``accumulate_grad_batches``), so the conversion happens at the start of training, and again on a resume.
"""

from __future__ import annotations

import logging
import math

import torch
from lightning.pytorch.callbacks import EarlyStopping

log = logging.getLogger("seqrec")


def steps_between_validations(trainer) -> int:
    """Optimizer steps from one validation to the next in this trainer's set-up."""
    batches = trainer.val_check_batch if isinstance(trainer.val_check_batch, int) else trainer.num_training_batches
    if not isinstance(batches, int) or batches < 1:  # an iterable of unknown length: a check every batch
        batches = 1
    if batches >= trainer.num_training_batches:  # one check per epoch (or every n epochs)
        batches = trainer.num_training_batches * (trainer.check_val_every_n_epoch or 1)
    return max(1, math.ceil(batches / max(1, trainer.accumulate_grad_batches)))


class ValidationStopping(EarlyStopping):
    """:class:`~lightning.pytorch.callbacks.EarlyStopping` that decides after each validation only.

    Lightning's default also checks at the end of every training epoch, which fails ("metric ... is not
    available") when a run ends before its first validation (validation turned off, or not due yet); here such
    a run ends normally, with one warning, and keeps its last weights. With a validation every epoch the decisions
    are the same (the check follows the validation either way). A step budget that ends mid-epoch validates
    its last step (Lightning would end without it)."""

    def __init__(self, **kwargs):
        super().__init__(check_on_train_epoch_end=False, **kwargs)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        # a step budget that ends mid-epoch: asking to stop makes Lightning validate this last step too, so the
        # final weights are scored (and kept when best) instead of being dropped unvalidated
        if 0 < trainer.max_steps <= trainer.global_step:
            trainer.should_stop = True

    def on_train_end(self, trainer, pl_module) -> None:
        # best_score is checkpointed: a resumed run that validated in an earlier attempt does not warn
        if not torch.isfinite(self.best_score) and trainer.is_global_zero:
            log.warning(
                "training ended after %d steps without a validation (trainer_params: max_steps=%s, "
                "limit_val_batches=%s, check_val_every_n_epoch=%s): no %s, and the model is the last weights",
                trainer.global_step, trainer.max_steps, trainer.limit_val_batches, trainer.check_val_every_n_epoch,
                self.monitor,
            )


class StepPatience(ValidationStopping):
    """Early stopping with ``patience_steps``: training stops once the monitored value has not improved for at
    least that many optimizer steps (rounded up to whole validations)."""

    def __init__(self, patience_steps: int, **kwargs):
        if patience_steps < 1:
            raise ValueError(f"patience_steps must be >= 1, got {patience_steps}")
        super().__init__(patience=1, **kwargs)
        self.patience_steps = patience_steps

    def on_train_start(self, trainer, pl_module) -> None:
        every = steps_between_validations(trainer)
        self.patience = math.ceil(self.patience_steps / every)
        if trainer.is_global_zero:
            log.info("early stopping: patience %d steps = %d validations of %d steps", self.patience_steps,
                     self.patience, every)


def early_stopping(monitor: str, patience: int, patience_steps: int | None) -> EarlyStopping:
    """The early-stopping callback of a training run: ``patience_steps`` (when given) wins over ``patience``."""
    if patience_steps is None:
        return ValidationStopping(monitor=monitor, mode="max", patience=patience)
    return StepPatience(patience_steps, monitor=monitor, mode="max")
