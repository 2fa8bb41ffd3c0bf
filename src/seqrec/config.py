"""Up-front checks of composed configs: a wrong value fails before any data is loaded."""

from __future__ import annotations

from numbers import Number
from typing import Any, Callable

from omegaconf import DictConfig, OmegaConf

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
