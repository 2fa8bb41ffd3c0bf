"""What ``run_train.py`` does: train a configured model in a tracked run (new, resumed or requeued), exactly
resumable. :func:`fit` reads like the lightning-hydra-template's ``train``: data module, Lightning module, callbacks,
logger, trainer, fit, save, return the metric; the parts are built in :mod:`seqrec.training.components`."""

from __future__ import annotations

import logging

import lightning as L
from omegaconf import DictConfig

from seqrec.config.spec import TrainSpec, resolve_train
from seqrec.core.hydra_context import record_trial
from seqrec.models.dropout import set_masks
from seqrec.tracking.lifecycle import run_context
from seqrec.tracking.lightning_logger import TrackerLogger
from seqrec.training.callbacks import TrainingCallbacks
from seqrec.training.commands import predict_command, resume_command
from seqrec.training.components import (
    TrainingData, build_module, build_network, build_trainer, interrupted_line, save_trained,
    signals_as_interruptions,
)

log = logging.getLogger("seqrec")


def single_lightning_output() -> None:
    """Lightning gives its loggers a terminal handler of their own and lets records propagate too, so every start-up
    line ("GPU available: ...") printed twice; the root handler (Hydra's job logging, run.log) shows them once.
    Call after ``import lightning`` (it adds the handlers then); without a root handler (a notebook) nothing changes."""
    if not logging.getLogger().handlers:
        return
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            if type(handler) is logging.StreamHandler:
                logger.removeHandler(handler)
        logger.propagate = True


single_lightning_output()  # after `import lightning`: its start-up lines once, not twice


def train(cfg: DictConfig | TrainSpec) -> float:
    """Train a composed config (resolved and checked here, once) or a resolved :class:`TrainSpec`; return the best
    validation NDCG@k (for sweepers). ``resume=<ID>``: the run continues in its own folder from its last checkpoint."""
    return fit(cfg if isinstance(cfg, TrainSpec) else resolve_train(cfg))


def fit(spec: TrainSpec) -> float:
    """Train ``spec`` in its run folder and return the best validation score."""
    data = TrainingData(spec)  # split and attributes: a bad file fails before any run folder exists
    resume = spec.resume
    with run_context(spec.run, resume and resume.run_id, resume.epoch if resume else 0,
                     continue_command=lambda run_id: resume_command(spec, run_id), replica=spec.replica,
                     interrupted=lambda run_id, stopped: interrupted_line(spec, run_id, stopped)) as run:
        run.record(**_first_record(run, spec))
        run.record(**data.record)  # the data fingerprint, and the check against the resumed / pre-trained run
        L.seed_everything(spec.seed, workers=True, verbose=False)  # after the tracker: ClearML seeds with 1337
        set_masks(spec.dropout_masks)  # dropout's masks: cheap 16-bit ones on a CPU, or torch's own
        module = build_module(spec, build_network(spec, data), data)
        tlogger = TrackerLogger(run.tracker)
        callbacks = TrainingCallbacks(spec, run, tlogger)
        trainer = build_trainer(spec, run, callbacks, tlogger)
        with signals_as_interruptions(spec, run, trainer):
            trainer.fit(module, datamodule=data.module(spec), ckpt_path=resume and resume.checkpoint,
                        weights_only=True)
        if spec.replica:
            return float("nan")  # rank 0 writes the model, metrics and history
        best = save_trained(spec, run, module, data, callbacks, tlogger)
    record_trial(run.id, best)
    print(predict_command(spec, run.id))
    return best


def _first_record(run, spec: TrainSpec) -> dict:
    """What a new run's ``run.json`` gets at once, not only on exit: a killed run is "running" with a dead process,
    and its ClearML offline session (not zipped) can still be imported; a prompt-tuned run names its start."""
    if spec.resume is not None:
        return {}
    session = getattr(run.tracker, "offline_session_dir", None)
    return {**({"clearml_offline_session": str(session)} if session is not None else {}),
            **({"pretrained_task": spec.pretrained.run_id} if spec.pretrained is not None else {})}
