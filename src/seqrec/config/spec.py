"""A run resolved once: the composed Hydra config becomes one frozen, typed specification at the entry point.

:func:`resolve_train` takes the composed training config and does, exactly once and in this order, everything a
run's settings depend on: run-ID prefixes expanded, the pre-trained run inherited (prompt-tuning), the model's
aliases applied, every check of :mod:`seqrec.config.checks`, a requeued SLURM job's run found, and a resume settled
(its stored config compared, its run length kept, its last checkpoint found). The caller's config is never changed;
the result is a :class:`TrainSpec` whose parts the code below takes: the data settings (:class:`DataSpec`), the run's
identity and tracker (:class:`RunSpec`), the model, loss, optimizer, loaders, trainer. Nothing below the entry points
reads the Hydra config.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

from omegaconf import DictConfig, OmegaConf

from seqrec.core.errors import UserError
from seqrec.core.frozen import frozen, thawed
from seqrec.core.hydra_context import command_line, command_line_keys
from seqrec.core.paths import stored_path
from seqrec.data.prepare import DataSpec
from seqrec.tracking.lifecycle import RunSpec

log = logging.getLogger("seqrec")


@dataclass(frozen=True)
class ResumeSpec:
    """A training run continued in its own folder: from ``checkpoint`` (the last finished ``epoch``)."""

    run_id: str
    checkpoint: Path
    epoch: int
    requeued: bool = False  # found by the SLURM requeue rule, not given as resume=<ID>


@dataclass(frozen=True)
class PretrainedSpec:
    """RecGPT prompt-tuning: the pre-trained run whose weights start the training, and the augmentation."""

    run_id: str
    model_path: Path
    prompt_tuning: Mapping[str, Any]


@dataclass(frozen=True)
class TrainSpec:
    """Everything a training run needs, resolved and checked once (see :func:`resolve_train`)."""

    run: RunSpec
    data: DataSpec
    seed: int
    model_target: str
    model_args: Mapping[str, Any]
    loss: Mapping[str, Any]
    train_dataset: Mapping[str, Any]
    optimizer: Mapping[str, Any] | None
    scheduler: Mapping[str, Any] | None
    callbacks: Mapping[str, Mapping[str, Any]]
    lr: float
    weight_decay: float
    k: int
    filter_seen: bool
    max_length: int
    train_window: str
    batch_size: int
    test_batch_size: int
    num_workers: int
    patience: int | None
    patience_steps: int | None
    trainer_params: Mapping[str, Any]
    predict_config_name: str
    resume: ResumeSpec | None = None
    pretrained: PretrainedSpec | None = None
    replica: bool = False  # a DDP worker started by Lightning: trains, writes nothing of its own
    dropout_masks: str = "fast"  # seqrec.models.dropout.set_masks: fast (cheap CPU masks) | torch
    extra: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    data_check: Any = None  # a seqrec.config.data_check.DataCheck: the resumed / pre-trained run's data


def full_run_ids(cfg: DictConfig, keys=("train_task", "resume", "pretrained_task")) -> None:
    """``train_task=`` / ``resume=`` / ``pretrained_task=`` may name a run by a unique prefix of its ID: replaced by
    the full ID (in ``cfg``, the resolver's own copy)."""
    from seqrec.tracking.run_store import RunStore

    store = None
    for key in keys:
        value = cfg.get(key) if key in cfg else None
        if isinstance(value, str) and value:
            store = store or RunStore(str(cfg.get("run_store") or "runs"))
            full = store.resolve_id(value)
            if full != value:
                OmegaConf.update(cfg, key, full)


def run_spec(cfg: DictConfig, kind: str) -> RunSpec:
    """The identity, tracker and record of a run of ``kind`` from its resolved config."""
    given = command_line()
    logger = cfg.get("logger")
    return RunSpec(
        kind=kind, project_name=str(cfg.project_name), task_name=str(cfg.task_name), run_store=str(cfg.run_store),
        logger=None if logger is None else frozen(OmegaConf.to_container(logger, resolve=True)),
        config=frozen(OmegaConf.to_container(cfg, resolve=True)),
        command=None if given is None else (given[0], tuple(given[1])),
    )


def _node(cfg: DictConfig, key: str) -> Mapping | None:
    node = OmegaConf.select(cfg, key)
    return None if node is None else frozen(OmegaConf.to_container(node, resolve=True))


def resolve_train(cfg: DictConfig) -> TrainSpec:
    """The :class:`TrainSpec` of a composed training config (checked once; ``cfg`` itself is left unchanged)."""
    from seqrec.config.checks import settle_train_config
    from seqrec.tracking.run_store import distributed_rank

    cfg = copy.deepcopy(cfg)
    OmegaConf.set_readonly(cfg, False)
    full_run_ids(cfg)
    if isinstance(cfg.get("data_path"), str):  # recorded relative to the repo when inside it, else absolute
        cfg.data_path = stored_path(cfg.data_path)
    pretrained, model_args = settle_train_config(cfg)  # inherited, aliases applied, checked: once
    replica = distributed_rank() > 0
    resume = _settle_resume(cfg, replica)
    OmegaConf.set_readonly(cfg, True)  # resolved: from here on nothing changes it
    module = cfg.seqrec_module
    checked = [] if replica else [(key, str(run_id), "was trained") for key, run_id in
                                  (("resume", resume and resume.run_id), ("pretrained_task", cfg.get("pretrained_task")))
                                  if run_id]
    return TrainSpec(
        run=run_spec(cfg, "train"),
        data=DataSpec.of(cfg),
        seed=int(cfg.get("seed", cfg.random_state)),  # the split uses random_state; training uses seed
        model_target=str(cfg.model._target_),
        model_args=frozen(model_args),
        loss=_node(cfg, "seqrec_module.loss"),
        train_dataset=_node(cfg, "train_dataset"),
        optimizer=_node(cfg, "seqrec_module.optimizer"),
        scheduler=_node(cfg, "seqrec_module.scheduler"),
        callbacks=_node(cfg, "callbacks") or frozen({}),
        lr=float(module.lr), weight_decay=float(module.weight_decay), k=int(module.predict_top_k),
        filter_seen=bool(module.filter_seen),
        max_length=int(cfg.dataset.max_length), train_window=str(cfg.dataset.train_window),
        batch_size=int(cfg.dataloader.batch_size), test_batch_size=int(cfg.dataloader.test_batch_size),
        num_workers=int(cfg.dataloader.num_workers),
        patience=cfg.get("patience"), patience_steps=cfg.get("patience_steps"),
        trainer_params=_node(cfg, "trainer_params"),
        predict_config_name=str(cfg.get("predict_config_name") or "predict"),
        resume=resume,
        pretrained=None if pretrained is None else _pretrained(cfg),
        replica=replica,
        dropout_masks=str(cfg.get("dropout_masks") or "fast"),
        data_check=_data_check(cfg, str(cfg.data_path), checked),
    )


def _data_check(cfg: DictConfig, data_path: str, runs: list[tuple[str, str, str]]):
    """What the data at ``data_path`` must still be: the data fingerprints that ``runs`` (setting, run ID, verb) of
    ``cfg``'s run store recorded (:mod:`seqrec.config.data_check`), read here, compared once the command has read
    its data; ``cfg.allow_data_change`` lets a change through."""
    from seqrec.config.data_check import data_check

    return data_check(str(cfg.run_store), data_path, runs, bool(cfg.get("allow_data_change") or False))


def _pretrained(cfg: DictConfig) -> PretrainedSpec:
    from seqrec.tracking.run_folder import RunFolder
    from seqrec.tracking.run_store import RunStore

    run_id = str(cfg.pretrained_task)
    return PretrainedSpec(run_id, RunFolder(RunStore(cfg.run_store).path(run_id)).model,
                          _node(cfg, "prompt_tuning"))


def _settle_resume(cfg: DictConfig, replica: bool) -> ResumeSpec | None:
    """``resume=<ID>`` checked against its run (or, for a requeued SLURM job, the run this job left unfinished)."""
    from seqrec.tracking.run_folder import RunFolder
    from seqrec.tracking.run_store import RunStore, slurm_job

    run_id, requeued = cfg.get("resume"), False
    store = RunStore(cfg.run_store)
    if run_id is None and not replica:  # a preempted SLURM job, requeued: continue its own run, not a new one
        run_id = store.requeued_run(cfg.task_name)
        if run_id is not None:
            log.warning("requeued SLURM job %s: resuming its run %s", slurm_job(), run_id)
            OmegaConf.update(cfg, "resume", run_id, force_add=True)
            requeued = True
    if run_id is None:
        return None
    if replica:  # a DDP worker: rank 0 checked the run; the worker only needs the checkpoint
        return ResumeSpec(str(run_id), RunFolder(store.path(str(run_id))).last_checkpoint, 0, requeued)
    checkpoint, epoch = check_resume(cfg, str(run_id))
    return ResumeSpec(str(run_id), checkpoint, epoch, requeued)


# --------------------------------------------------------------------------- resume
#: keys a resumed run may change (and their model_params aliases): how long it trains, what the screen shows
RESUME_MAY_CHANGE = (
    "resume", "allow_data_change", "trainer_params.max_epochs", "trainer_params.min_epochs", "trainer_params.max_steps",
    "trainer_params.min_steps", "trainer_params.max_time", "trainer_params.enable_progress_bar",
    "trainer_params.enable_model_summary",
)

RUN_LENGTH = ("trainer_params.max_epochs", "trainer_params.min_epochs", "trainer_params.max_steps",
              "trainer_params.min_steps", "trainer_params.max_time")


def _keep_run_length(cfg: DictConfig, stored: dict, run_id: str, aliases: dict) -> None:
    """A resume keeps the run's own length (``max_epochs`` ...) unless the command line sets it: a resume of a
    3-epoch run without ``trainer_params.max_epochs`` must not silently train on to the config default."""
    given = command_line_keys()
    if given is None:  # composed in code: the caller's config is what it means
        return
    for key in RUN_LENGTH:
        named = {key, *(f"model_params.{a}" for a, target in aliases.items() if target == key)}
        if named & given:
            log.info("resume=%s: %s=%s (from the command line)", run_id, key, OmegaConf.select(cfg, key))
            continue
        section, leaf = key.split(".")
        own = (stored.get(section) or {}).get(leaf, "MISSING")
        if own != "MISSING" and own != OmegaConf.select(cfg, key):
            OmegaConf.update(cfg, key, own, force_add=True)
            log.warning("resume=%s: %s=%s, the run's own (pass %s=<N> to change it)", run_id, key, own, key)


#: settings a resumed run keeps from its own config unless the command line names them (then they must match it)
RESUME_KEEPS = ("dropout_masks",)


def _keep_run_own(cfg: DictConfig, stored: dict, run_id: str) -> None:
    """A resume continues with the run's own :data:`RESUME_KEEPS` (a run trained with torch's dropout masks goes on
    with them, whatever today's default)."""
    given = command_line_keys() or set()
    for key in RESUME_KEEPS:
        if key in given or key not in stored or stored[key] == cfg.get(key):
            continue
        OmegaConf.update(cfg, key, stored[key], force_add=True)
        log.info("resume=%s: %s=%s, the run's own", run_id, key, stored[key])


def check_resume(cfg: DictConfig, run_id: str) -> tuple[Path, int]:
    """``checkpoints/last.ckpt`` of training run ``run_id`` and its epoch, checked for ``resume=<ID>``.

    One-line :class:`UserError` when the run is unknown, completed or still running, when its config (brought to
    the current format) differs from ``cfg`` in a key other than :data:`RESUME_MAY_CHANGE`, or when it has no
    readable last checkpoint.
    """
    from seqrec.config.checks import model_declaration
    from seqrec.config.upgrade import load_run_config
    from seqrec.core.config_diff import config_differences
    from seqrec.tracking.run_folder import CONFIG_FILE, LAST_CKPT, RunFolder
    from seqrec.tracking.run_store import RunStore

    store = RunStore(cfg.run_store)
    store.check_resumable(run_id)
    folder = RunFolder(store.path(run_id))
    try:
        stored = load_run_config(folder, "train")
    except FileNotFoundError:
        raise UserError(f"resume={run_id}: the run has no {CONFIG_FILE} in {folder.path}; start a new run") from None
    except Exception as exc:
        raise UserError(f"resume={run_id}: {folder.config} is damaged ({type(exc).__name__}); start a new run") from None
    aliases = dict(model_declaration(cfg).aliases)
    _keep_run_own(cfg, stored, run_id)
    may_change = (*RESUME_MAY_CHANGE, *(f"model_params.{a}" for a, key in aliases.items() if key in RESUME_MAY_CHANGE))
    differences = config_differences(stored, OmegaConf.to_container(cfg, resolve=True), may_change)
    if differences:
        shown = "; ".join(differences[:3]) + (f"; and {len(differences) - 3} more" if len(differences) > 3 else "")
        raise UserError(
            f"resume={run_id}: the config differs from the run's {folder.config}: {shown}; pass the run's own "
            "settings (only trainer_params.max_epochs and similar run-length keys may change)"
        )
    _keep_run_length(cfg, stored, run_id, aliases)
    last = folder.last_checkpoint
    if not last.is_file():
        raise UserError(
            f"resume={run_id}: the run has no {LAST_CKPT} (it stopped before its first checkpoint); start a new run"
        )
    from seqrec.models.loading import load_weights

    try:
        epoch = int(load_weights(last).get("epoch", 0))
    except UserError:
        raise
    except Exception as exc:
        raise UserError(
            f"resume={run_id}: {last} cannot be read ({type(exc).__name__}: {' '.join(str(exc).split())[:80]}); "
            "start a new run"
        ) from None
    return last, epoch


# --------------------------------------------------------------------------- predict
@dataclass(frozen=True)
class PredictSpec:
    """Everything a predict run needs, resolved and checked once (see :func:`resolve_predict`): its own settings,
    and what it takes from the training run (data, split, list length, window)."""

    run: RunSpec
    train_task: str
    train_folder: Path
    data: DataSpec
    generation: Mapping[str, Any]  # generation_params, checked against the strategy's declaration
    k: int
    filter_seen: bool
    max_length: int
    n_targets: int  # held-out items per user (the training run's last_n_items)
    rows: int  # users x beams/sequences per generation chunk
    seed: int
    device: str | None
    progress: bool
    bootstrap: Mapping[str, Any]
    samples_from: Any = None  # a seqrec.generation.shared_samples.SampleSource: lists taken, not generated
    data_check: Any = None  # a seqrec.config.data_check.DataCheck: the training run's (and samples_from's) data

    @property
    def protocol(self):
        """The training run's protocol (:class:`seqrec.data.protocols.Protocol`), which this run uses."""
        from seqrec.data.protocols import protocol

        return protocol(self.data.protocol)


def resolve_predict(cfg: DictConfig) -> PredictSpec:
    """The :class:`PredictSpec` of a composed prediction config (checked once; ``cfg`` itself is left unchanged)."""
    from seqrec.config.checks import settle_predict_config
    from seqrec.tracking.run_folder import RunFolder
    from seqrec.tracking.run_store import RunStore

    cfg = copy.deepcopy(cfg)
    OmegaConf.set_readonly(cfg, False)
    full_run_ids(cfg, ("train_task", "samples_from"))
    train_cfg = settle_predict_config(cfg)
    OmegaConf.set_readonly(cfg, True)
    params = OmegaConf.to_container(cfg.generation_params, resolve=True)
    store = RunStore(cfg.run_store)
    batch_size = int(cfg.get("test_batch_size") or train_cfg.dataloader.test_batch_size)
    boot = {"n_resamples": 10_000, "confidence": 0.95, "seed": 0,
            **OmegaConf.to_container(cfg.get("bootstrap") or OmegaConf.create({}), resolve=True)}
    spec = PredictSpec(
        run=run_spec(cfg, "predict"),
        train_task=str(cfg.train_task),
        train_folder=RunFolder(store.path(str(cfg.train_task))).path,
        data=DataSpec.of(train_cfg),
        generation=frozen(params),
        k=int(cfg.get("k") or train_cfg.seqrec_module.predict_top_k),
        filter_seen=bool(train_cfg.seqrec_module.filter_seen if cfg.get("filter_seen") is None else cfg.filter_seen),
        max_length=int(train_cfg.dataset.max_length),
        n_targets=int(train_cfg.last_n_items),
        rows=int(params.get("max_rows") or 16 * batch_size),
        seed=int(cfg.random_state),
        device=cfg.get("device"),
        progress=bool(cfg.get("progress", True)),
        bootstrap=frozen(boot),
    )
    from dataclasses import replace

    if cfg.get("samples_from"):
        spec = replace(spec, samples_from=_sample_source(str(cfg.samples_from), store, spec))
    runs = [("train_task", spec.train_task, "was trained")]
    if cfg.get("samples_from"):
        runs.append(("samples_from", str(cfg.samples_from), "sampled"))
    return replace(spec, data_check=_data_check(cfg, spec.data.path, runs))


def _sample_source(run_id: str, store, spec: PredictSpec):
    """The sampling pass ``samples_from=<run_id>`` names, checked against this run's settings (one line each)."""
    from seqrec.config.upgrade import load_run_config
    from seqrec.generation import shared_samples
    from seqrec.tracking.run_folder import RunFolder

    record = store.info(run_id)
    folder = RunFolder(record.path)
    return shared_samples.resolve(run_id, record.kind, record.status, folder.nested, load_run_config(folder),
                                  thawed(spec.run.config), thawed(spec.generation))
