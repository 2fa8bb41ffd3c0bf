"""Up-front checks of composed configs: a wrong value fails before any data is loaded."""

from __future__ import annotations

import copy
import inspect
from numbers import Number
from typing import Any, Callable

from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict

from seqrec.errors import UserError

_MISSING = object()


def _get(cfg: DictConfig, key: str) -> Any:
    try:
        value = OmegaConf.select(cfg, key, default=_MISSING, throw_on_missing=True)
    except Exception as exc:  # MissingMandatoryValue
        raise UserError(f"{key} is required; pass {key}=<value> on the command line") from exc
    return value


def _rule(key: str, test: Callable[[Any], bool], want: str, example: str, optional: bool = False):
    def check(cfg: DictConfig) -> None:
        value = _get(cfg, key)
        if value is _MISSING or (optional and value is None):
            if optional:
                return
            raise UserError(f"{key} is missing from the config; pass {key}={example}")
        ok = False
        try:
            ok = bool(test(value))
        except TypeError:
            ok = False
        if not ok:
            raise UserError(f"{key} must be {want} (got {value!r}); pass e.g. {key}={example}")

    return check


def _num(v) -> bool:
    return isinstance(v, Number) and not isinstance(v, bool)


def _int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


COMMON = [
    _rule("project_name", lambda v: isinstance(v, str) and v.strip(), "a non-empty string", "seqrec"),
    _rule("task_name", lambda v: isinstance(v, str) and v.strip(), "a non-empty string", "ml1_GPT_train"),
    _rule("run_store", lambda v: isinstance(v, str) and v.strip(), "a folder path", "runs"),
]

TRAIN = COMMON + [
    _rule("data_path", lambda v: isinstance(v, str) and v.strip(), "a CSV path", "data/ml-1m.csv"),
    _rule("last_n_items", lambda v: _int(v) and v >= 1, "an integer >= 1", "10"),
    _rule("random_state", _int, "an integer", "42"),
    _rule("patience", lambda v: _int(v) and v >= 0, "an integer >= 0", "10"),
    _rule("dataset.max_length", lambda v: _int(v) and v >= 2, "an integer >= 2", "128"),
    _rule("dataset.train_window", lambda v: v in ("random", "last"), "'random' or 'last'", "random"),
    _rule("dataloader.batch_size", lambda v: _int(v) and v >= 1, "an integer >= 1", "64"),
    _rule("dataloader.test_batch_size", lambda v: _int(v) and v >= 1, "an integer >= 1", "256"),
    _rule("dataloader.num_workers", lambda v: _int(v) and v >= 0, "an integer >= 0", "0"),
    _rule("dataloader.validation_size", lambda v: _int(v) and v >= 1, "an integer >= 1", "2000"),
    _rule("seqrec_module.lr", lambda v: _num(v) and v > 0, "a number > 0", "1e-3"),
    _rule("seqrec_module.weight_decay", lambda v: _num(v) and v >= 0, "a number >= 0", "0.0"),
    _rule("seqrec_module.predict_top_k", lambda v: _int(v) and v >= 1, "an integer >= 1", "10"),
    _rule("seqrec_module.filter_seen", lambda v: isinstance(v, bool), "true or false", "true"),
    _rule("trainer_params.max_epochs", lambda v: _int(v) and v >= 1, "an integer >= 1", "100"),
    _rule(
        "trainer_params.check_val_every_n_epoch", lambda v: _int(v) and v >= 1, "an integer >= 1", "1", optional=True
    ),
    _rule(
        "trainer_params.limit_train_batches", lambda v: (_int(v) and v >= 1) or (isinstance(v, float) and 0 < v <= 1),
        "an integer >= 1 (batches) or a fraction in (0, 1]", "1.0", optional=True,
    ),
    _rule("model_params.n_positions", lambda v: _int(v) and v >= 2, "an integer >= 2", "128", optional=True),
    _rule("model_params.n_embd", lambda v: _int(v) and v >= 1, "an integer >= 1", "64", optional=True),
    _rule("model_params.n_layer", lambda v: _int(v) and v >= 1, "an integer >= 1", "2", optional=True),
    _rule("model_params.n_head", lambda v: _int(v) and v >= 1, "an integer >= 1", "1", optional=True),
    _rule("model_params.dropout", lambda v: _num(v) and 0 <= v < 1, "a number in [0, 1)", "0.1", optional=True),
]

PREDICT = COMMON + [
    _rule("train_task", lambda v: isinstance(v, str) and v.strip(), "a run ID printed by run_train.py", "<ID>"),
]


def check_train_config(cfg: DictConfig) -> None:
    """Check a composed training config (its ``model_params`` aliases applied to a copy)."""
    cfg = copy.deepcopy(cfg)
    apply_model_aliases(cfg)
    for rule in TRAIN:
        rule(cfg)
    n_positions = OmegaConf.select(cfg, "model_params.n_positions")
    max_length = cfg.dataset.max_length
    if n_positions is not None and max_length > n_positions:
        raise UserError(
            f"dataset.max_length ({max_length}) exceeds model_params.n_positions ({n_positions}); "
            f"lower dataset.max_length or raise model_params.n_positions"
        )
    n_embd, n_head = OmegaConf.select(cfg, "model_params.n_embd"), OmegaConf.select(cfg, "model_params.n_head")
    if n_embd is not None and n_head is not None and n_embd % n_head:
        raise UserError(f"model_params.n_embd ({n_embd}) must be divisible by model_params.n_head ({n_head})")


def check_predict_config(cfg: DictConfig) -> None:
    for rule in PREDICT:
        rule(cfg)


# --------------------------------------------------------------------------- model_params
# Hyper-parameter names of the models' original code bases, accepted under model_params.
# A key is either an argument of the model class (``model._target_``), or an alias of the
# setting it names here, or handled by a function below -- or it is rejected. This table is
# the one place where such names are mapped; models declare nothing.
ALIASES = {
    "batch_size": "dataloader.batch_size",
    "eval_batch_size": "dataloader.test_batch_size",
    "n_epochs": "trainer_params.max_epochs",
    "learning_rate": "seqrec_module.lr",
    "weight_decay": "seqrec_module.weight_decay",
    "patience": "patience",
    "early_stopping_step": "patience",
    "sequence_length": "dataset.max_length",
    "max_seq_length": "dataset.max_length",
    "max_batches_per_epoch": "trainer_params.limit_train_batches",
    "eval_after_epochs": "trainer_params.check_val_every_n_epoch",
    "eval_step": "trainer_params.check_val_every_n_epoch",
    "filter_rated": "seqrec_module.filter_seen",
    "mask_rate": "train_dataset.mask_rate",
    "neg_per_positive": "seqrec_module.loss.neg_per_positive",
    "gbce_t": "seqrec_module.loss.gbce_t",
    "eps": "seqrec_module.loss.eps",
}

LOSS_TYPES = {"CE": "seqrec.losses.CrossEntropy", "BCE": "seqrec.losses.BCE", "BPR": "seqrec.losses.BPR"}
SAMPLED_SOFTMAX = "seqrec.losses.SampledSoftmax"


def _loss_settings(cfg: DictConfig, params: dict) -> None:
    """``loss_type`` (CE | BCE | BPR) replaces the loss; ``negative_samples_count`` sets its negatives.

    CE with ``negative_samples_count > 0`` is a sampled softmax over that many negatives;
    0 (or null) with CE is the full softmax.
    """
    loss_type, count = params.get("loss_type"), params.get("negative_samples_count")
    if count is not None and (not _int(count) or count < 0):
        raise UserError(f"model_params.negative_samples_count must be an integer >= 0 (got {count!r})")
    if loss_type is not None:
        if loss_type not in LOSS_TYPES:
            raise UserError(f"model_params.loss_type must be one of {', '.join(LOSS_TYPES)} (got {loss_type!r})")
        node: dict[str, Any] = {"_target_": LOSS_TYPES[loss_type]}
        if loss_type != "CE":
            node["num_negatives"] = 1
        cfg.seqrec_module.loss = node
    if not count:
        return
    loss = cfg.seqrec_module.loss
    if "num_negatives" in loss:
        loss.num_negatives = count
    elif loss._target_ == LOSS_TYPES["CE"]:
        cfg.seqrec_module.loss = {"_target_": SAMPLED_SOFTMAX, "num_negatives": count}
    else:
        raise UserError(
            f"model_params.negative_samples_count={count} but the loss {loss._target_} samples no negatives; "
            f"use loss_type CE, BCE or BPR"
        )


def _device(cfg: DictConfig, params: dict) -> None:
    value = params.get("device")
    if value is None or value == "auto":
        cfg.trainer_params.accelerator = "auto"
        return
    if value == "cpu":
        cfg.trainer_params.accelerator = "cpu"
        return
    name, _, index = str(value).partition(":")
    if name not in ("cuda", "gpu") or (index and not index.isdigit()):
        raise UserError(f"model_params.device must be auto, cpu, cuda, gpu or cuda:<N> (got {value!r})")
    import torch

    if not torch.cuda.is_available():
        raise UserError(f"model_params.device={value} but no CUDA GPU is available here; use device=cpu or auto")
    if index and int(index) >= torch.cuda.device_count():
        raise UserError(f"model_params.device={value} but only {torch.cuda.device_count()} GPU(s) are visible")
    cfg.trainer_params.accelerator = "gpu"
    if index:
        cfg.trainer_params.devices = [int(index)]


def _split_ratio(cfg: DictConfig, params: dict) -> None:
    value = params.get("split_ratio")
    if value is not None and value != 0.5:
        raise UserError(
            f"model_params.split_ratio={value}: the long-term protocol splits evaluable users 50/50 into "
            "validation and test users; only 0.5 is supported"
        )


def _sampled_evaluation(cfg: DictConfig, params: dict) -> None:
    strategy = params.get("sample_strategy")
    if strategy not in (None, "none", "full"):
        raise UserError(
            f"model_params.sample_strategy={strategy!r}: evaluation always ranks the whole catalogue "
            "(PROTOCOL.md); use null or full"
        )
    for key in ("sample_seed", "sample_ratio"):
        if params.get(key) is not None:
            raise UserError(
                f"model_params.{key} only applies to sampled evaluation (sample_strategy), which the protocol "
                "does not use; set it to null"
            )


SPECIAL: dict[str, Callable[[DictConfig, dict], None]] = {
    "loss_type": _loss_settings,
    "negative_samples_count": _loss_settings,
    "device": _device,
    "split_ratio": _split_ratio,
    "sample_strategy": _sampled_evaluation,
    "sample_seed": _sampled_evaluation,
    "sample_ratio": _sampled_evaluation,
}


def model_class(cfg: DictConfig) -> type:
    from hydra.utils import get_class

    target = OmegaConf.select(cfg, "model._target_")
    try:
        return get_class(target)
    except Exception as exc:
        raise UserError(f"model._target_={target!r} is not an importable class ({exc})") from None


def model_arg_names(cls: type) -> set[str]:
    params = inspect.signature(cls.__init__).parameters.values()
    return {
        p.name for p in params
        if p.name not in ("self", "n_items") and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    }


def _resolved_params(cfg: DictConfig) -> dict[str, Any]:
    node = OmegaConf.select(cfg, "model_params")
    if node is None:
        return {}
    out = {}
    for key in node:
        try:
            value = node[key]
        except Exception as exc:
            raw = OmegaConf.to_container(node, resolve=False).get(key)
            raise UserError(f"model_params.{key}={raw} cannot be resolved: {' '.join(str(exc).split())}") from None
        out[str(key)] = OmegaConf.to_container(value, resolve=True) if isinstance(value, (DictConfig, ListConfig)) else value
    return out


def apply_model_aliases(cfg: DictConfig) -> dict[str, Any]:
    """Map ``model_params`` onto the config; return the model's constructor arguments.

    Every key of ``model_params`` must be an argument of the model class, a key of
    :data:`ALIASES` (copied to the setting it names) or of :data:`SPECIAL`; anything else is
    a :class:`UserError` listing the allowed keys. ``cfg.model_params`` is replaced by its
    resolved values (aliases in model configs are interpolations of the setting they name,
    so overriding either side works). Idempotent.
    """
    cls = model_class(cfg)
    args = model_arg_names(cls)
    params = _resolved_params(cfg)
    allowed = args | set(ALIASES) | set(SPECIAL)
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise UserError(
            f"model_params.{unknown[0]} is not a setting of {cls.__name__}; allowed keys: {', '.join(sorted(allowed))}"
        )
    with open_dict(cfg):
        done = set()
        for key in params:  # the loss first: later aliases may set its parameters
            if key in SPECIAL and SPECIAL[key] is _loss_settings and _loss_settings not in done:
                _loss_settings(cfg, params)
                done.add(_loss_settings)
        set_by: dict[str, str] = {}
        for key, value in params.items():
            if key in SPECIAL:
                if SPECIAL[key] not in done:
                    SPECIAL[key](cfg, params)
                    done.add(SPECIAL[key])
                continue
            if key not in ALIASES:
                continue
            path = ALIASES[key]
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
    return {k: v for k, v in params.items() if k in args}
