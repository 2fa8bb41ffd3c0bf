"""What a training run is made of, built from its :class:`~seqrec.config.spec.TrainSpec`: the data module, the
network (with its attribute tables, or started from a pre-trained run for prompt-tuning), the Lightning module,
the trainer, and the trained run's files. :func:`seqrec.training.train.fit` composes them."""

from __future__ import annotations

import logging
import warnings
from contextlib import contextmanager

import lightning as L
import pandas as pd
import torch

from seqrec.core.errors import RunInterrupted, UserError
from seqrec.core.hardware import hardware
from seqrec.core.instantiate import build, build_node, partial_node
from seqrec.core.io import atomic_to_csv, atomic_write, atomic_write_json
from seqrec.data.datamodule import SeqRecDataModule
from seqrec.data.datasets import EvalDataset
from seqrec.data.prepare import data_fingerprint, prepare_features, prepare_split
from seqrec.models.fused_output import fast_bfloat16
from seqrec.training.callbacks import AtomicCheckpointIO, TrainingCallbacks, best_epoch
from seqrec.training.commands import interruption_message
from seqrec.training.lightning_module import SeqRecModule
from seqrec.training.prompt_tuning import freeze_item_embeddings, load_pretrained

log = logging.getLogger("seqrec")


class TrainingData:
    """The split and attributes of a run's data (read before any run folder exists: a bad file makes none)."""

    def __init__(self, spec):
        self.split = prepare_split(spec.data)
        # item/event attributes (features=items|items_events); the spec travels with the checkpoint's params
        self.features = prepare_features(spec.data, self.split)
        self.events = self.features.event_sequences() if self.features is not None else None
        # compared with the resumed / pre-trained run's data (one line on a change), once, before any run folder
        fingerprint = data_fingerprint(self.split, self.features)
        check = spec.data_check
        self.record = check.verify(fingerprint) if check is not None else {"data_fingerprint": fingerprint}
        if spec.k > self.split.n_items:
            raise UserError(f"seqrec_module.predict_top_k={spec.k} exceeds the {self.split.n_items} items of "
                            f"{spec.data.path}; pass a smaller seqrec_module.predict_top_k")

    def model_args(self, spec) -> dict:
        args = dict(spec.model_args)
        if self.features is not None:
            args["features"] = self.features.model_spec()
        return args

    def module(self, spec) -> SeqRecDataModule:
        """Training windows (chosen by ``train_dataset._target_``) and validation users as a data module."""
        split, seed = self.split, spec.seed
        train_set = build_node(
            spec.train_dataset, "train_dataset", train=split.train, max_length=spec.max_length,
            window=spec.train_window, seed=seed, n_items=split.n_items,
            **({"events": self.events} if self.events else {}),
        )
        val_set = EvalDataset(split.inputs("val"), split.val_users, split.targets(split.val_users, 1, "val"),
                              spec.max_length, self.events)
        start = None if spec.resume is None else spec.resume.epoch + 1
        return SeqRecDataModule(train_set, val_set, spec.batch_size, spec.test_batch_size, spec.num_workers, seed,
                                start_epoch=start)


def build_network(spec, data: TrainingData) -> torch.nn.Module:
    """The network of ``spec`` for ``data``'s items: with its attribute tables, and for prompt-tuning started
    from the pre-trained run's weights (item tables frozen when asked)."""
    from hydra.utils import get_class

    model = build(get_class(spec.model_target), "model_params", n_items=data.split.n_items, **data.model_args(spec))
    if data.features is not None:
        model.features.set_item_codes(data.features.item_tables())
    if spec.pretrained is not None:
        load_pretrained(model, spec.pretrained.model_path)
        if spec.pretrained.prompt_tuning.get("freeze_item_embeddings"):
            freeze_item_embeddings(model)
    return model


def build_module(spec, network: torch.nn.Module, data: TrainingData) -> SeqRecModule:
    """The Lightning module: network + loss + optimizer/schedule (+ RecGPT's batch augmentation)."""
    augment = None if spec.pretrained is None else build_node(spec.pretrained.prompt_tuning, "prompt_tuning")
    return SeqRecModule(
        network, build_node(spec.loss, "seqrec_module.loss"), lr=spec.lr, weight_decay=spec.weight_decay,
        predict_top_k=spec.k, filter_seen=spec.filter_seen, item_counts=data.split.item_counts,
        seed=spec.seed,  # dropout etc. reseeded from (seed, epoch): a resumed run continues identically
        optimizer=partial_node(spec.optimizer, "seqrec_module.optimizer"),
        scheduler=partial_node(spec.scheduler, "seqrec_module.scheduler"),
        augment=augment,
    )


def build_trainer(spec, run, callbacks: TrainingCallbacks, logger) -> L.Trainer:
    """The Lightning trainer of ``spec.trainer_params`` (``precision=auto`` decided for the device it trains on);
    the hardware goes into the run's record."""
    params = {k: (list(v) if isinstance(v, tuple) else v) for k, v in spec.trainer_params.items()}
    params.pop("max_time", None)  # the wall-clock budget is the callbacks' Timer's (TrainingCallbacks)
    if params.get("precision") == "auto":
        params["precision"] = "bf16-mixed" if fast_bfloat16(train_device(params)) else "32-true"
    import sys

    from seqrec.core.progress import is_terminal

    if params.get("enable_progress_bar", True) and not is_terminal(sys.stdout):
        # Lightning's bar redraws with carriage returns: in a log file its last state and the next line share a
        # line. Off a terminal the epoch lines (TrainingCallbacks) are the progress.
        params["enable_progress_bar"] = False
    trainer = L.Trainer(
        callbacks=callbacks.all, logger=logger, default_root_dir=str(run.dir), num_sanity_val_steps=0,
        plugins=[AtomicCheckpointIO()],  # a full disk or a kill mid-write keeps the previous checkpoint
        use_distributed_sampler=False,  # DDP: each rank trains on its slice of the epoch (EpochSampler) and
        **params,                       # validates on all validation users, so the metric is exact everywhere
    )
    run.record(hardware=hardware(trainer.strategy.root_device, params["precision"], trainer.world_size))
    return trainer


def train_device(trainer_params: dict) -> str:
    """``cpu`` or ``cuda``: where Lightning will train with these ``trainer_params`` (``accelerator``)."""
    accelerator = str(trainer_params.get("accelerator", "auto")).lower()
    if accelerator in ("gpu", "cuda"):
        return "cuda"
    if accelerator == "auto" and torch.cuda.is_available():
        return "cuda"
    return "cpu"


@contextmanager
def signals_as_interruptions(spec, run, trainer: L.Trainer):
    """A signal during ``fit`` becomes :class:`RunInterrupted` with the line that says how to go on (the run context
    marks the run interrupted): ours (:func:`seqrec.core.signals.stop_on_signals`, which Lightning calls beside its
    own handler), or Lightning's own ways out (Ctrl-C becomes ``sys.exit(1)``, SIGTERM ``SIGTERMException``)."""
    from lightning.pytorch.trainer.states import TrainerStatus
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    with warnings.catch_warnings():
        if spec.resume is not None:  # its own folder holds its checkpoints, of course
            warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")
        try:
            yield
        except (SystemExit, RunInterrupted) as exc:
            if isinstance(exc, RunInterrupted) and exc.signal_name is not None:
                stopped = exc.signal_name
            elif isinstance(exc, SIGTERMException) or getattr(trainer, "received_sigterm", False):
                stopped = "SIGTERM"
            elif trainer.state.status == TrainerStatus.INTERRUPTED:
                stopped = "SIGINT (Ctrl-C)"
            else:
                raise
            if spec.replica:
                raise
            raise RunInterrupted(interrupted_line(spec, run.id, stopped, trainer.current_epoch), run.id,
                                 stopped) from None


def interrupted_line(spec, run_id: str, stopped: str, epoch: int | None = None) -> str:
    """The line a signal ends a training run with: a resume command only when there is a checkpoint to go on from."""
    from seqrec.tracking.run_folder import RunFolder
    from seqrec.tracking.run_store import RunStore

    can_resume = RunFolder(RunStore(spec.run.run_store).root / run_id).last_checkpoint.is_file()
    return interruption_message(spec, run_id, stopped, epoch, can_resume)


def save_trained(spec, run, module: SeqRecModule, data: TrainingData, callbacks: TrainingCallbacks,
                 tlogger) -> float:
    """The run's files from the best checkpoint: ``model.pt``, ``history.csv``, ``metrics.json`` (also reported
    to the tracker, with the files as artifacts); returns the best validation score."""
    from seqrec.models.loading import load_weights

    folder, best = run.folder, callbacks.best_score()
    if callbacks.checkpoint.best_model_path:
        module.load_state_dict(load_weights(callbacks.checkpoint.best_model_path)["state_dict"])
    record = {"target": spec.model_target, "params": data.model_args(spec), "n_items": data.split.n_items,
              "n_users": data.split.n_users, "state_dict": module.model.state_dict()}
    with atomic_write(folder.model) as tmp:
        torch.save(record, tmp)
    history = pd.DataFrame(tlogger.epoch_history())
    if len(history):
        atomic_to_csv(history, folder.history)
    seconds, epochs = callbacks.fit_seconds(), module.trainer.current_epoch
    summary = {
        f"best_{callbacks.monitor}": best, "epochs": epochs, "best_epoch": best_epoch(history, callbacks.monitor),
        "fit_seconds": round(seconds, 1), "seconds_per_epoch": round(seconds / max(epochs, 1), 2),
        "stopped_by": callbacks.stopped_by(module.trainer),  # early_stopping | max_time | max_steps | max_epochs
    }
    if callbacks.budget_seconds() is not None:
        summary["max_time_seconds"] = round(callbacks.budget_seconds(), 1)
    atomic_write_json(folder.metrics, summary)
    for name, value in summary.items():
        if value is not None and not isinstance(value, str):  # best_epoch None: no validation yet; stopped_by: a word
            run.tracker.report_single_value(name, value)
    for name, path in folder.train_artifacts().items():
        run.tracker.upload_artifact(name, path)
    log.info("trained %d epochs in %.1f s (%.2f s/epoch), stopped by %s; best %s %.4f", epochs, seconds,
             summary["seconds_per_epoch"], summary["stopped_by"], callbacks.monitor, best)
    return best
