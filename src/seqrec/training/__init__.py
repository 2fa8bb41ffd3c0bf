"""Layer 7, training: the Lightning module, losses, optimizers and schedules, early stopping, RecGPT's
prompt-tuning, distributed workers and the train run (:mod:`.train`). May import the layers up to
:mod:`seqrec.evaluation` (validation uses its metrics)."""
