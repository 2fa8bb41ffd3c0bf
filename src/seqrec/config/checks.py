"""Up-front checks of composed configs: a wrong value fails before any data is loaded, and before torch is imported.

Each component (model, loss, training dataset, optimizer, LR schedule, tracker, generation strategy) declares its
own settings beside its code (:mod:`seqrec.core.registry`); this module checks a composed config against those
declarations and against the run-level settings below (data, split, loaders, trainer), which are the pipeline's
own. Closed sections: an unknown key (a typo, or a key added with ``+``) is an error naming the closest known key.
``check_predict_config`` also checks, by default, the training run that ``train_task`` names (its folder, config,
checkpoint and data file) before anything is loaded.
"""

from __future__ import annotations

import copy
import difflib
import inspect
import re
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict

from seqrec.config.upgrade import rename_deprecated
from seqrec.core import registry
from seqrec.core.errors import UserError
from seqrec.core.hydra_context import command_line, command_line_keys  # noqa: F401 -- re-exported
from seqrec.core.paths import resolved_path
from seqrec.core.settings import (  # noqa: F401 -- re-exported: the names other modules and tests use
    _MISSING, SYNONYMS, Bool, Choice, Int, Num, Setting, Str, _get, _int, flat_keys, suggest_key,
)
from seqrec.data.protocols import DEFAULT as DEFAULT_PROTOCOL, PROTOCOLS, protocol as protocol_named

#: lightning.Trainer's ``precision`` values (Lightning 2.x) plus ``auto`` (see pipeline.train)
PRECISIONS = (
    "auto", 64, 32, 16, "64", "32", "16", "bf16", "64-true", "32-true", "16-true", "16-mixed",
    "bf16-true", "bf16-mixed", "transformer-engine", "transformer-engine-float16",
)
#: lightning.Trainer arguments (Lightning 2.x); another name is looked up in the installed
#: Trainer's signature before it is rejected
TRAINER_ARGS = frozenset(
    "accelerator strategy devices num_nodes precision logger callbacks fast_dev_run max_epochs min_epochs "
    "max_steps min_steps max_time limit_train_batches limit_val_batches limit_test_batches limit_predict_batches "
    "overfit_batches val_check_interval check_val_every_n_epoch num_sanity_val_steps log_every_n_steps "
    "enable_checkpointing enable_progress_bar enable_model_summary accumulate_grad_batches gradient_clip_val "
    "gradient_clip_algorithm deterministic benchmark inference_mode use_distributed_sampler profiler "
    "detect_anomaly barebones plugins sync_batchnorm reload_dataloaders_every_n_epochs default_root_dir".split()
)
#: Trainer arguments that run_train.py sets itself
TRAINER_SET_BY_PIPELINE = ("callbacks", "logger", "default_root_dir", "num_sanity_val_steps")


def _max_time(v) -> bool:
    """Lightning's ``max_time``: ``"DD:HH:MM:SS"`` (two-digit hours, minutes, seconds) or a mapping of days, hours,
    minutes, seconds (non-negative numbers)."""
    from collections.abc import Mapping

    if isinstance(v, str):
        return re.fullmatch(r"\d+:\d\d:\d\d:\d\d", v.strip()) is not None
    return (isinstance(v, Mapping) and len(v) > 0 and set(v) <= {"days", "hours", "minutes", "seconds"}
            and all(isinstance(x, (int, float)) and not isinstance(x, bool) and x >= 0 for x in v.values()))


def _batches(v) -> bool:
    return (_int(v) and v >= 1) or (isinstance(v, float) and 0 < v <= 1)


COMMON = (
    Str("project_name", "seqrec"),
    Str("task_name", "ml1_GPT_train"),
    Str("run_store", "runs"),
    Int("random_state", "42"),
)

TRAIN = COMMON + (
    Str("data_path", "data/ml-1m.csv"),
    Str("resume", "<TRAIN_ID>", null=True, required=False, want="a training run ID printed by run_train.py (or null)"),
    Str("pretrained_task", "<TRAIN_ID>", null=True, required=False,
        want="the ID of a completed training run of a causal model (GPT-2, SASRec, gSASRec)"),
    Choice("protocol", tuple(PROTOCOLS), required=False,
           want=f"one of {', '.join(PROTOCOLS)} (the config group src/configs/protocol/)"),
    Int("last_n_items", "10", ge=1),
    Choice("duplicates", ("drop", "refuse"), required=False,
           want="drop (identical user_id, item_id, timestamp rows counted once, with a printed count) or refuse"),
    Bool("allow_data_change", "false", required=False,
         hint="true: resume or prompt-tune on a data file that changed since the run was trained (recorded)"),
    Int("patience", "10", ge=0, null=True, hint="early stopping patience in validations; null when patience_steps "
        "is given"),
    Int("patience_steps", "3000", ge=1, null=True, required=False,
        hint="early stopping patience in optimizer steps (instead of patience); null: patience counts validations"),
    Int("seed", "42", required=False),
    Choice("dropout_masks", ("fast", "torch"), required=False, want="'fast' (cheap CPU masks) or 'torch'"),
    Int("dataset.max_length", "128", ge=2),
    Choice("dataset.train_window", ("random", "last"), want="'random' or 'last'"),
    Int("dataloader.batch_size", "64", ge=1),
    Int("dataloader.test_batch_size", "256", ge=1),
    Int("dataloader.num_workers", "0", ge=0),
    Int("dataloader.validation_size", "2000", ge=1, null=True,
        hint="pass e.g. dataloader.validation_size=2000 (validation users, at most), or null for all of them"),
    Num("seqrec_module.lr", "1e-3", gt=0),
    Num("seqrec_module.weight_decay", "0.0", ge=0),
    Int("seqrec_module.predict_top_k", "10", ge=1),
    Bool("seqrec_module.filter_seen"),
    Int("trainer_params.max_epochs", "100", ge=1, null=True,
        hint="or trainer_params.max_epochs=null with trainer_params.max_steps=<N> for a budget in optimizer steps"),
    Int("trainer_params.max_steps", "20000", ge=-1, null=True, required=False),
    Setting("trainer_params.max_time", "str", "00:00:30:00", test=_max_time, null=True, required=False,
            want='a wall-clock budget "DD:HH:MM:SS" (e.g. 00:00:30:00 for 30 minutes), or null for none'),
    Int("trainer_params.check_val_every_n_epoch", "1", ge=1, null=True, required=False),
    Int("trainer_params.log_every_n_steps", "20", ge=1, required=False),
    Setting(
        "trainer_params.limit_train_batches", "number", "1.0", test=_batches, null=True, required=False,
        want="an integer >= 1 (batches) or a fraction in (0, 1]",
    ),
    Choice(
        "trainer_params.precision", PRECISIONS, null=True, required=False,
        want="auto or a lightning.Trainer precision (32-true, bf16-mixed, 16-mixed, 64-true, bf16-true, 32, 16, ...)",
    ),
    Bool("trainer_params.enable_progress_bar", required=False),
    Bool("trainer_params.enable_model_summary", required=False),
)

#: open sections (model_params, train_dataset, seqrec_module.loss, logger, trainer_params)
#: are checked by the class they configure; these are closed: no other key is allowed
TRAIN_SECTIONS = {
    "": {c.key for c in COMMON} | {
        "data_path", "resume", "last_n_items", "patience", "patience_steps", "seed", "dataset", "dataloader", "seqrec_module", "train_dataset",
        "trainer_params", "model", "model_params", "predict_config_name", "logger", "hydra", "callbacks",
        "pretrained_task", "prompt_tuning", "features", "duplicates", "allow_data_change", "protocol", "dropout_masks",
    },
    "dataset": {"max_length", "train_window"},
    "dataloader": {"batch_size", "test_batch_size", "num_workers", "validation_size"},
    "seqrec_module": {"lr", "weight_decay", "predict_top_k", "filter_seen", "loss", "optimizer", "scheduler"},
}

_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")

PREDICT = COMMON + (
    Str("train_task", "<ID>", want="a run ID printed by run_train.py"),
    Setting("device", "str", "cpu", test=lambda v: isinstance(v, str) and bool(_DEVICE.match(v)),
            want="auto, cpu, mps, cuda or cuda:<N>", null=True),
    Int("k", "10", ge=1, null=True, hint="pass e.g. k=10 (the length of each list), or k=null for the training run's "
        "seqrec_module.predict_top_k"),
    Bool("filter_seen", null=True),
    Int("test_batch_size", "256", ge=1, null=True),
    Bool("progress", required=False),
    Str("samples_from", "<PREDICT_ID>", null=True, required=False,
        want="a predict run ID (one made with generation_params.prefix_sequences), or null"),
    Choice("protocol", tuple(PROTOCOLS), null=True, required=False,
           want=f"one of {', '.join(PROTOCOLS)}, or null (a predict run uses its training run's protocol)"),
    Bool("allow_data_change", "false", required=False,
         hint="true: predict on a data file that changed since the run was trained (recorded in the run)"),
    Int("bootstrap.n_resamples", "10000", ge=100, required=False),
    Num("bootstrap.confidence", "0.95", gt=0, lt=1, required=False),
    Int("bootstrap.seed", "0", required=False),
)

PREDICT_SECTIONS = {
    "": {c.key for c in COMMON} | {
        "train_task", "device", "k", "filter_seen", "test_batch_size", "progress", "generation_params", "logger",
        "samples_from", "allow_data_change", "protocol",
        "bootstrap", "hydra",  # hydra: present when composed with return_hydra_config=True
    },
    "bootstrap": {"n_resamples", "confidence", "seed"},
}


def _check_sections(cfg: DictConfig, sections: dict[str, set[str]], kind: str) -> None:
    """Reject a key that no closed section declares (a typo, or a key added with ``+``)."""
    known = sorted({f"{p}.{k}" if p else k for p, keys in sections.items() for k in keys} | set(flat_keys(cfg)))
    for section, allowed in sections.items():
        node = OmegaConf.select(cfg, section) if section else cfg
        if not isinstance(node, DictConfig):
            continue
        unknown = sorted(str(k) for k in node.keys() if k not in allowed)
        if not unknown:
            continue
        path = f"{section}.{unknown[0]}" if section else unknown[0]
        if section:
            near = difflib.get_close_matches(unknown[0], sorted(allowed), n=1, cutoff=0.6)
            did = f"; did you mean {section}.{near[0]}?" if near else ";"
            raise UserError(f"unknown key {path}{did} {section} takes only {', '.join(sorted(allowed))}")
        near = suggest_key(path, [k for k in known if k not in unknown])
        did = f"; did you mean {near}?" if near else ";"
        base = "train" if kind == "training" else "predict"
        raise UserError(
            f"unknown key {path} in the {kind} config{did} remove it or fix its spelling "
            f"(the keys are those of src/configs/base/{base}.yaml and the config groups)"
        )


def _check_trainer_params(cfg: DictConfig) -> None:
    node = OmegaConf.select(cfg, "trainer_params")
    if not isinstance(node, DictConfig):
        raise UserError("trainer_params must be a mapping of lightning.Trainer arguments, e.g. trainer_params.max_epochs=20")
    for key in node.keys():
        if key in TRAINER_SET_BY_PIPELINE:
            raise UserError(f"trainer_params.{key} is set by run_train.py itself; remove it from the command line/config")
        if key in TRAINER_ARGS:
            continue
        import lightning  # only for a name this table does not know

        args = set(inspect.signature(lightning.Trainer.__init__).parameters) - {"self"}
        if key not in args:
            near = difflib.get_close_matches(str(key), sorted(args), n=1, cutoff=0.6)
            raise UserError(
                f"trainer_params.{key} is not an argument of lightning.Trainer"
                + (f"; did you mean trainer_params.{near[0]}?" if near else "; see the lightning.Trainer docs")
            )


def _check_protocol(cfg: DictConfig) -> None:
    """The rules of the run's protocol (declared in :mod:`seqrec.data.protocols`): its held-out count, and whether
    it takes event attributes."""
    protocol = protocol_named(cfg.get("protocol"))
    last_n_items = cfg.get("last_n_items")
    if protocol.last_n_items is not None and last_n_items != protocol.last_n_items:
        raise UserError(f"protocol={protocol.name} holds out {protocol.last_n_items} item per user "
                        f"(last_n_items={protocol.last_n_items}), got last_n_items={last_n_items}; drop "
                        f"last_n_items={last_n_items}, or use protocol={DEFAULT_PROTOCOL} for {last_n_items} items")
    if not protocol.event_attributes:
        from seqrec.data.features_config import feature_settings

        if feature_settings(cfg).events:
            raise UserError(f"protocol={protocol.name} does not take event attributes (the test input's validation "
                            "item would need its event codes); use features=items or features=none, or "
                            f"protocol={DEFAULT_PROTOCOL}")


def check_predict_protocol(cfg: DictConfig, train_cfg: DictConfig, strategy: str) -> None:
    """A predict run under its training run's protocol: ``protocol=`` may only repeat it, and the run's protocol
    may limit the strategies (leave-one-out: Top-K only). One line each."""
    run = protocol_named(OmegaConf.select(train_cfg, "protocol") or DEFAULT_PROTOCOL)
    given = cfg.get("protocol")
    if given is not None and given != run.name:
        raise UserError(f"run {cfg.train_task} was trained under protocol={run.name}, and a predict run uses its "
                        f"training run's protocol; drop protocol={given} (or train a run with protocol={given})")
    if run.strategies is not None and strategy not in run.strategies:
        raise UserError(f"generation_params.strategy={strategy}: run {cfg.train_task} was trained under "
                        f"protocol={run.name}, where {run.why}; use --config-name=predict (strategy "
                        f"{' or '.join(run.strategies)})")


def _check_features(cfg: DictConfig) -> None:
    """The features section (its rules live in seqrec.data.features_config), and a model that can take them."""
    from seqrec.data.features_config import feature_settings

    settings = feature_settings(cfg)
    if settings.events and cfg.get("prompt_tuning") is not None:
        raise UserError("prompt-tuning inserts generated items whose event attributes nobody knows and does not take "
                        "event attributes; pre-train with features=items (or none)")
    model = model_declaration(cfg) if settings.enabled else None
    if model is not None and not model.features:
        raise UserError(f"{model.label or model.name} does not take attributes (its declaration has no features=True); "
                        "use features=none")


def _check_budget(cfg: DictConfig) -> None:
    """A training run must be bounded: by epochs, by optimizer steps, or both (whichever ends first); its early
    stopping counts validations (``patience``) or optimizer steps (``patience_steps``), exactly one of them."""
    patience, patience_steps = cfg.get("patience"), cfg.get("patience_steps")
    if patience is not None and patience_steps is not None:
        raise UserError(
            f"patience={patience} (validations) and patience_steps={patience_steps} (optimizer steps) are both set; "
            "pass patience_steps=null to count validations, or patience=null to count steps"
        )
    if patience is None and patience_steps is None:
        raise UserError("patience=null needs patience_steps=<N> (early stopping in optimizer steps), or give patience")
    epochs = OmegaConf.select(cfg, "trainer_params.max_epochs")
    steps = OmegaConf.select(cfg, "trainer_params.max_steps")
    if epochs is None and (steps is None or steps == -1):
        raise UserError(
            "trainer_params.max_epochs=null needs a step budget: set trainer_params.max_steps=<N> (optimizer steps), "
            "or give trainer_params.max_epochs"
        )
    if steps == 0:
        raise UserError("trainer_params.max_steps=0 trains nothing; give a number of optimizer steps >= 1, or -1/null "
                        "for no step limit")


#: training sections built from a ``_target_`` (besides the model), by component kind
TRAIN_COMPONENTS = ("loss", "train_dataset", "optimizer", "scheduler", "tracker", "stage")


def check_component(cfg: DictConfig, kind: str) -> None:
    """Check the section of ``kind`` against the declaration of the class its ``_target_`` names.

    A class without a declaration (e.g. ``seqrec_module.optimizer._target_=torch.optim.SGD`` given ad hoc) is
    checked against its constructor's signature instead: each key must be an argument.
    """
    section = registry.SECTIONS[kind]
    node = OmegaConf.select(cfg, section)
    if not isinstance(node, DictConfig) or "_target_" not in node:
        if node is not None and kind == "tracker":
            raise UserError("logger must be a tracker config; use logger=clearml_offline, logger=clearml or logger=none")
        return
    values = _resolved(node, section)
    target = values.pop("_target_")
    declared = registry.by_target(kind, str(target))
    if declared is not None:
        declared.check(values, cfg, section)
        return
    from hydra.utils import get_class

    try:
        cls = get_class(str(target))
    except Exception as exc:
        raise UserError(f"{section}._target_={target!r} is not an importable class ({one_line_text(exc)})") from None
    params = inspect.signature(cls.__init__).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return
    args = sorted(set(params) - {"self", "params", "optimizer"})
    for key in values:
        if key not in args:
            near = difflib.get_close_matches(str(key), args, n=1, cutoff=0.6)
            raise UserError(
                f"{section}.{key} is not an argument of {cls.__name__} "
                + (f"(its arguments: {', '.join(args)})" if args else "(it takes none here)")
                + (f"; did you mean {section}.{near[0]}?" if near else "; remove it")
            )


def _check_callbacks(cfg: DictConfig) -> None:
    """``callbacks``: named Lightning callbacks (``_target_`` + arguments), checked against the class's signature."""
    node = OmegaConf.select(cfg, "callbacks")
    if node is None:
        return
    if not isinstance(node, DictConfig):
        raise UserError("callbacks must be a mapping of named callbacks; choose a config: callbacks=none|lr_monitor|swa")
    from hydra.utils import get_class

    for name, callback in node.items():
        where = f"callbacks.{name}"
        if not isinstance(callback, DictConfig) or "_target_" not in callback:
            raise UserError(f"{where} must have a _target_ (a lightning.pytorch.callbacks class), e.g. "
                            f"{where}._target_=lightning.pytorch.callbacks.LearningRateMonitor")
        try:
            cls = get_class(str(callback._target_))
        except Exception as exc:
            raise UserError(f"{where}._target_={callback._target_!r} is not an importable class ({one_line_text(exc)})") from None
        params = inspect.signature(cls.__init__).parameters
        if any(p.kind is p.VAR_KEYWORD for p in params.values()):
            continue
        args = sorted(set(params) - {"self"})
        for key in callback:
            if key != "_target_" and key not in args:
                near = difflib.get_close_matches(str(key), args, n=1, cutoff=0.6)
                raise UserError(f"{where}.{key} is not an argument of {cls.__name__}"
                                + (f"; did you mean {where}.{near[0]}?" if near else f" (its arguments: {', '.join(args)})"))


def _resolved(node: DictConfig, section: str) -> dict[str, Any]:
    """``node``'s values, resolved; an interpolation that does not resolve is one line naming the key."""
    out = {}
    for key in node:
        try:
            value = node[key]
        except Exception as exc:
            raw = OmegaConf.to_container(node, resolve=False).get(key)
            raise UserError(f"{section}.{key}={raw} cannot be resolved: {' '.join(str(exc).split())}") from None
        out[str(key)] = OmegaConf.to_container(value, resolve=True) if isinstance(value, (DictConfig, ListConfig)) else value
    return out


def one_line_text(exc: BaseException, limit: int = 100) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_train_config(cfg: DictConfig) -> None:
    """Check a composed training config, on a copy (:func:`settle_train_config`)."""
    settle_train_config(copy.deepcopy(cfg))


def settle_train_config(cfg: DictConfig) -> tuple[DictConfig | None, dict[str, Any]]:
    """Settle and check a composed training config in place: the pre-trained run inherited (prompt-tuning), the
    model's aliases applied, every rule checked. Returns the pre-trained run's config (or None) and the model's
    constructor arguments. :func:`seqrec.config.spec.resolve_train` calls it once, on its own copy."""
    _check_sections(cfg, TRAIN_SECTIONS, "training")
    Str("pretrained_task", "<TRAIN_ID>", null=True, required=False).check(cfg)
    pretrained = inherit_pretrained(cfg)
    model_args = apply_model_aliases(cfg)
    _check_sections(cfg, TRAIN_SECTIONS, "training")
    for setting in TRAIN:
        setting.check(cfg)
    _check_trainer_params(cfg)
    _check_budget(cfg)
    _check_protocol(cfg)
    _check_features(cfg)
    for kind in TRAIN_COMPONENTS:
        check_component(cfg, kind)
    _check_callbacks(cfg)
    accelerator = str(OmegaConf.select(cfg, "trainer_params.accelerator") or "auto").lower()
    if accelerator in ("gpu", "cuda"):  # before any run folder: Lightning would fail inside the run
        import torch

        if not torch.cuda.is_available():
            raise UserError(
                f"trainer_params.accelerator={accelerator} (trainer=gpu) but no CUDA GPU is available here; "
                "use trainer=cpu, or trainer_params.accelerator=auto to take a GPU when there is one"
            )
    return pretrained, model_args


def _given_keys(section: str) -> set[str]:
    """First-level keys under ``section`` that the command line set; empty outside a Hydra app."""
    prefix = section + "."
    return {k[len(prefix):].split(".", 1)[0] for k in command_line_keys() or () if k.startswith(prefix)}


def check_predict_config(cfg: DictConfig, check_run: bool = True) -> None:
    """Check a composed prediction config, on a copy; with ``check_run``, also the training run it names."""
    settle_predict_config(copy.deepcopy(cfg), check_run)


def settle_predict_config(cfg: DictConfig, check_run: bool = True) -> DictConfig | None:
    """Settle and check a composed prediction config in place; with ``check_run``, also the training run it names,
    whose config (in the current format) it returns. :func:`seqrec.config.spec.resolve_predict` calls it once.

    A key under its old name (the list length's ``top_k``, now ``k``) is applied under the current one, in place,
    with one warning line (:func:`seqrec.config.upgrade.rename_deprecated`). The generation strategy is built once here (its own checks, e.g. ``do_sample`` against the
    strategy), so a bad parameter fails before the run store or any data is touched.
    """
    try:
        if _get(cfg, "train_task") is _MISSING:
            raise UserError("train_task is missing")
    except UserError:
        raise UserError("train_task is required; pass train_task=<ID> printed by run_train.py") from None
    rename_deprecated(cfg, "predict")  # top_k=5 (the list length's old name): applied as k=5, with a warning
    _check_sections(cfg, PREDICT_SECTIONS, "prediction")
    for setting in PREDICT:
        setting.check(cfg)
    device = cfg.get("device")
    if isinstance(device, str) and device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise UserError(f"device={device} but no CUDA GPU is available here; use device=cpu or device=auto")
    check_component(cfg, "tracker")
    params = OmegaConf.to_container(cfg.generation_params, resolve=True)
    registry.check_strategy(params, _given_keys("generation_params"))
    if not check_run:
        return None
    train_cfg = check_train_run(cfg.run_store, cfg.train_task)
    check_predict_protocol(cfg, train_cfg, str(params.get("strategy")))
    k = cfg.get("k") or OmegaConf.select(train_cfg, "seqrec_module.predict_top_k") or 10
    registry.check_strategy(params, (), {"k": k})  # rules that need the list length (two_stage's first_stage)
    return train_cfg


def check_train_run(run_store: str, train_task: str, key: str = "train_task") -> DictConfig:
    """The config of training run ``train_task`` (brought to the current format), after checking that its folder
    is usable: one-line :class:`UserError` for an unknown run, a run of the other kind, or any problem of
    :meth:`RunFolder.health <seqrec.tracking.run_folder.RunFolder.health>` (the one health check), a training that
    has no model yet, or a training data file that is gone."""
    from seqrec.config.upgrade import load_run_config
    from seqrec.tracking.run_folder import RUN_FILE, RunFolder
    from seqrec.tracking.run_store import RunStore

    store = RunStore(run_store)
    again = f"train again with run_train.py or pass another {key}"
    hint = f"pass {key}=<ID> printed by run_train.py"
    if not store.exists(train_task):
        store._run_dir(train_task)  # an invalid ID (e.g. ../x): the run store's own message
        if (Path(run_store) / train_task).is_dir():
            raise UserError(f"run folder {Path(run_store) / train_task} has no {RUN_FILE}: not a complete run; {again}")
        raise UserError(f"unknown run ID {train_task!r} in {run_store}; {hint} ({store.known_hint('train', train_task)})")
    folder = RunFolder(store.path(train_task, kind=None))
    record, problems = folder.health()
    if record and record.get("kind") != "train":
        raise UserError(
            f"run {train_task} is a {record.get('kind')} run, not a train run; {hint} ({store.known_hint('train', train_task)})"
        )
    status = record.get("status")
    if problems:
        raise UserError(f"run {train_task}: {problems[0]} in {folder.path} (status: {status}); {again}")
    # health() checked a completed run's model.pt; one that is not completed (killed, interrupted) may lack it
    model = folder.model_problem() if status != "completed" else None
    if model is not None:
        finish = "; did its training finish?" if model.startswith("has no") else ""
        raise UserError(f"run {train_task} {model} (status: {status}{finish}); {again}")
    train_cfg = OmegaConf.create(load_run_config(folder))
    if "data_path" not in train_cfg:
        raise UserError(f"run {train_task}: {folder.config} is not a training config; {again}")
    data_path = train_cfg.get("data_path")
    if isinstance(data_path, str) and not resolved_path(data_path).is_file():
        from seqrec.data.movielens import prepare_hint

        raise UserError(f"run {train_task} was trained on data_path '{resolved_path(data_path)}', which is gone; "
                        f"restore that file or train again ({prepare_hint(resolved_path(data_path), missing=True)})")
    return train_cfg


# --------------------------------------------------------------------------- model_params
def model_declaration(cfg: DictConfig) -> registry.Model:
    """The declaration of the model ``cfg`` trains: by ``model.name`` (several models may share a network class,
    e.g. SASRec and gSASRec), else by ``model._target_`` (a stored config without ``model.name`` gets it from
    :mod:`seqrec.config.upgrade`)."""
    name, target = OmegaConf.select(cfg, "model.name"), OmegaConf.select(cfg, "model._target_")
    if not isinstance(target, str) or not target:
        raise UserError("model._target_ is missing; choose a model config, e.g. model=gpt2")
    declared = registry.by_target("model", target, name)
    if declared is None:
        raise UserError(
            f"model {name or target} has no declaration; add a <module>_config.py beside {target} that registers "
            "a seqrec.core.registry.Model (README: add a model)"
        )
    return declared  # type: ignore[return-value]


def _model_keys(model: registry.Model) -> set[str]:
    return set(model.keys()) | set(model.aliases) | set(model.special)


def model_class(cfg: DictConfig) -> type:
    from hydra.utils import get_class

    target = OmegaConf.select(cfg, "model._target_")
    try:
        return get_class(target)
    except Exception as exc:
        raise UserError(f"model._target_={target!r} is not an importable class ({exc})") from None


def _resolved_params(cfg: DictConfig) -> dict[str, Any]:
    node = OmegaConf.select(cfg, "model_params")
    return {} if node is None else _resolved(node, "model_params")


def apply_model_aliases(cfg: DictConfig) -> dict[str, Any]:
    """Check ``model_params`` against the model's declaration, map its seed names onto the config, and return
    the model's constructor arguments.

    Every key of ``model_params`` must be a declared network setting, an alias the model declares (copied to the
    setting it names; a key may be both, e.g. SASRec's ``sequence_length``) or a seed name with logic
    (``special``); anything else is a :class:`UserError` with the closest name. ``cfg.model_params`` is replaced
    by its resolved values (aliases in model configs are interpolations of the setting they name, so overriding
    either side works). Idempotent.
    """
    model = model_declaration(cfg)
    params = _resolved_params(cfg)
    network = {k: v for k, v in params.items() if model.setting(k) is not None}
    unknown = sorted(set(params) - _model_keys(model))
    if unknown:
        near = difflib.get_close_matches(unknown[0], sorted(_model_keys(model)), n=1, cutoff=0.6)
        seed = sorted((set(model.aliases) | set(model.special)) - set(model.keys()))
        raise UserError(
            f"model_params.{unknown[0]} is not a setting of {model.label or model.name}; its settings: "
            f"{', '.join(model.keys())}" + (f", and the seed names {', '.join(seed)}" if seed else "")
            + (f"; did you mean model_params.{near[0]}?" if near else "")
        )
    with open_dict(cfg):
        done = set()
        for key in params:  # the loss first: later aliases may set its parameters
            handler = model.special.get(key)
            if handler is shared_loss_settings() and handler not in done:
                handler(cfg, params)
                done.add(handler)
        set_by: dict[str, str] = {}
        for key, value in params.items():
            if key in model.special:
                if model.special[key] not in done:
                    model.special[key](cfg, params)
                    done.add(model.special[key])
                continue
            if key not in model.aliases:
                continue
            path = model.aliases[key]
            if path in set_by and params[set_by[path]] != value:
                raise UserError(f"model_params.{set_by[path]} and model_params.{key} both set {path} but differ")
            set_by[path] = key
            parent, _, leaf = path.rpartition(".")
            node = OmegaConf.select(cfg, parent) if parent else cfg
            if node is None or leaf not in node:
                owner = OmegaConf.select(cfg, f"{parent}._target_") if parent else None
                raise UserError(
                    f"model_params.{key} sets {path}, which this config does not have"
                    + (f" ({owner} takes no {leaf})" if owner else "")
                    + f"; remove model_params.{key} or choose a config that has {path}"
                )
            node[leaf] = value
        cfg.model_params = params
    return model.check(network, cfg)


def shared_loss_settings():
    from seqrec.models.declaration_rules import loss_settings

    return loss_settings


# --------------------------------------------------------------------------- prompt-tuning
#: what a prompt-tuning run takes from its pre-trained run: the network (its declared settings; the seed code
#: bases' names of training settings stay the prompt-tuning config's) and the data split
INHERITED = ("model", "model_params", "dataset.max_length", "protocol", "last_n_items", "random_state", "train_dataset",
             "features", "duplicates")


def inherit_pretrained(cfg: DictConfig) -> DictConfig | None:
    """For ``pretrained_task=<ID>``: check the run (a completed, causal training run on the same data) and copy its
    network and split settings into ``cfg`` (``model_params.segment_embedding`` turned on); returns the
    pre-trained run's config, or None without ``pretrained_task``. One-line errors otherwise."""
    run_id = cfg.get("pretrained_task")
    if run_id is None:
        return None
    if cfg.get("prompt_tuning") is None:
        raise UserError("pretrained_task is for prompt-tuning; use --config-name=GPT_prompt_tune (or SASRec_/gSASRec_)")
    pre = check_train_run(cfg.run_store, str(run_id), key="pretrained_task")
    model = model_declaration(pre)
    if not model.kv_cache:
        causal = ", ".join(m.label for m in registry.components("model") if m.kv_cache and m.label)
        raise UserError(f"pretrained_task={run_id} is a {model.label or model.name} run; prompt-tuning generates "
                        f"left to right and needs a causal model ({causal})")
    same = resolved_path(str(pre.data_path)).resolve() == resolved_path(str(cfg.data_path)).resolve()
    if not same:
        raise UserError(f"pretrained_task={run_id} was trained on data_path={pre.data_path}; prompt-tuning continues "
                        f"on its split: pass data_path={pre.data_path}")
    network = {k: v for k, v in (OmegaConf.select(pre, "model_params") or {}).items() if model.setting(k) is not None}
    with open_dict(cfg):
        for key in INHERITED:
            value = network if key == "model_params" else OmegaConf.select(pre, key)
            if value is not None:
                OmegaConf.update(cfg, key, value, merge=False, force_add=True)
        cfg.model_params.segment_embedding = True
    return pre
