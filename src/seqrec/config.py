"""Up-front checks of composed configs: a wrong value fails before any data is loaded.

The checks are a declared schema: every known key of the training and prediction configs
is a :class:`Setting` (type, range or allowed values, an example for the fix), the
sections listed in :data:`TRAIN_SECTIONS` / :data:`PREDICT_SECTIONS` are closed (an unknown
key, e.g. a typo added with ``+``, is an error naming the closest known key), and a few
rules tie keys together (``dataset.max_length <= model_params.n_positions``, ...).
``check_train_config`` and ``check_predict_config`` both run on this schema; the second
also checks, by default, the training run that ``train_task`` names (its folder, config,
checkpoint and data file) before anything is loaded.
"""

from __future__ import annotations

import copy
import difflib
import inspect
import logging
import re
from dataclasses import dataclass
from numbers import Number
from pathlib import Path
from typing import Any, Callable, Iterable

from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict

from seqrec.errors import UserError

_MISSING = object()


def _get(cfg: DictConfig, key: str) -> Any:
    try:
        value = OmegaConf.select(cfg, key, default=_MISSING, throw_on_missing=True)
    except Exception as exc:  # MissingMandatoryValue, or an interpolation that does not resolve
        if "Missing mandatory value" in str(exc) or type(exc).__name__ == "MissingMandatoryValue":
            raise UserError(f"{key} is required; pass {key}=<value> on the command line") from None
        raise UserError(f"{key} cannot be resolved ({' '.join(str(exc).split())[:120]}); pass {key}=<value>") from None
    return value


def _num(v) -> bool:
    return isinstance(v, Number) and not isinstance(v, bool)


def _int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _text(v) -> bool:
    return isinstance(v, str) and bool(v.strip())


_TYPES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "int": (_int, "an integer"),
    "number": (_num, "a number"),
    "str": (_text, "a non-empty string"),
    "bool": (lambda v: isinstance(v, bool), "true or false"),
    "choice": (lambda v: True, ""),
}


@dataclass(frozen=True)
class Setting:
    """One declared config key: its type, range or allowed values, and an example value.

    ``null``: ``null`` is allowed (it means "default" or "off"); ``required``: the key must be
    in the composed config (else it is checked only when present); ``test`` replaces the
    type/range test for unions (``want`` then describes it); ``hint`` replaces the
    "pass e.g." part of the message.
    """

    key: str
    type: str
    example: str
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    choices: tuple = ()
    null: bool = False
    required: bool = True
    test: Callable[[Any], bool] | None = None
    want: str | None = None
    hint: str | None = None

    def describe(self) -> str:
        if self.want:
            return self.want
        if self.type == "choice":
            text = "one of " + ", ".join(str(c) for c in self.choices)
        else:
            text = _TYPES[self.type][1]
            low = (">=", self.ge) if self.ge is not None else (">", self.gt) if self.gt is not None else None
            high = ("<=", self.le) if self.le is not None else ("<", self.lt) if self.lt is not None else None
            if low and high:
                text += f" in {'[' if low[0] == '>=' else '('}{low[1]:g}, {high[1]:g}{']' if high[0] == '<=' else ')'}"
            elif low:
                text += f" {low[0]} {low[1]:g}"
            elif high:
                text += f" {high[0]} {high[1]:g}"
        return text + (" (or null)" if self.null else "")

    def accepts(self, value: Any) -> bool:
        if value is None:
            return self.null
        try:
            if self.test is not None:
                return bool(self.test(value))
            if self.type == "choice":
                return any(value == c and type(value) is type(c) for c in self.choices)
            if not _TYPES[self.type][0](value):
                return False
            return (
                (self.ge is None or value >= self.ge) and (self.gt is None or value > self.gt)
                and (self.le is None or value <= self.le) and (self.lt is None or value < self.lt)
            )
        except TypeError:
            return False

    def check(self, cfg: DictConfig) -> None:
        value = _get(cfg, self.key)
        if value is _MISSING:
            if self.required:
                raise UserError(f"{self.key} is missing from the config; pass +{self.key}={self.example}")
            return
        if isinstance(value, (DictConfig, ListConfig)) and self.type != "choice" and self.test is None:
            value = OmegaConf.to_container(value)
        if not self.accepts(value):
            fix = self.hint or f"pass e.g. {self.key}={self.example}"
            raise UserError(f"{self.key} must be {self.describe()} (got {_show(value)}); {fix}")


def _show(value: Any) -> str:
    text = repr(OmegaConf.to_container(value) if isinstance(value, (DictConfig, ListConfig)) else value)
    return text if len(text) <= 60 else text[:57] + "..."


def Int(key, example, ge=None, **kw) -> Setting:  # noqa: N802 - reads like a type in the tables below
    return Setting(key, "int", example, ge=ge, **kw)


def Num(key, example, **kw) -> Setting:  # noqa: N802
    return Setting(key, "number", example, **kw)


def Str(key, example, **kw) -> Setting:  # noqa: N802
    return Setting(key, "str", example, **kw)


def Bool(key, example="true", **kw) -> Setting:  # noqa: N802
    return Setting(key, "bool", example, **kw)


def Choice(key, choices, example=None, **kw) -> Setting:  # noqa: N802
    return Setting(key, "choice", str(example if example is not None else choices[0]), choices=tuple(choices), **kw)


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


def _batches(v) -> bool:
    return (_int(v) and v >= 1) or (isinstance(v, float) and 0 < v <= 1)


COMMON = (
    Str("project_name", "seqrec"),
    Str("task_name", "ml1_GPT_train"),
    Str("run_store", "runs"),
    Int("random_state", "42"),
    Num("logger.reachability_timeout", "5.0", gt=0, required=False),
)

TRAIN = COMMON + (
    Str("data_path", "data/ml-1m.csv"),
    Str("resume", "<TRAIN_ID>", null=True, required=False, want="a training run ID printed by run_train.py (or null)"),
    Int("last_n_items", "10", ge=1),
    Int("patience", "10", ge=0),
    Int("seed", "42", required=False),
    Int("dataset.max_length", "128", ge=2),
    Choice("dataset.train_window", ("random", "last"), want="'random' or 'last'"),
    Int("dataloader.batch_size", "64", ge=1),
    Int("dataloader.test_batch_size", "256", ge=1),
    Int("dataloader.num_workers", "0", ge=0),
    Int("dataloader.validation_size", "2000", ge=1),
    Num("seqrec_module.lr", "1e-3", gt=0),
    Num("seqrec_module.weight_decay", "0.0", ge=0),
    Int("seqrec_module.predict_top_k", "10", ge=1),
    Bool("seqrec_module.filter_seen"),
    Int("trainer_params.max_epochs", "100", ge=1),
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
    Int("model_params.n_positions", "128", ge=2, required=False),
    Int("model_params.n_embd", "64", ge=1, required=False),
    Int("model_params.n_layer", "2", ge=1, required=False),
    Int("model_params.n_head", "1", ge=1, required=False),
    Num("model_params.dropout", "0.1", ge=0, lt=1, required=False),
)

#: open sections (model_params, train_dataset, seqrec_module.loss, logger, trainer_params)
#: are checked by the class they configure; these are closed: no other key is allowed
TRAIN_SECTIONS = {
    "": {c.key for c in COMMON} | {
        "data_path", "resume", "last_n_items", "patience", "seed", "dataset", "dataloader", "seqrec_module", "train_dataset",
        "trainer_params", "model", "model_params", "predict_config_name", "logger", "hydra",
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
    Int("top_k", "10", ge=1, null=True, hint="pass e.g. top_k=10, or top_k=null for the training run's k"),
    Bool("filter_seen", null=True),
    Int("test_batch_size", "256", ge=1, null=True),
    Bool("progress", required=False),
    Str("generation_params.strategy", "topk"),
    Int("generation_params.num_return_sequences", "1", ge=1),
    Int("generation_params.num_beams", "2", ge=1),
    Bool("generation_params.do_sample", "false", null=True),
    Num("generation_params.temperature", "0.3", gt=0,
        hint="temperature 0 means arg-max decoding: use --config-name=GPT_greedy, or e.g. generation_params.temperature=0.3"),
    Int("generation_params.top_k", "50", ge=0, null=True,
        hint="pass e.g. generation_params.top_k=50, or null (or 0) for no limit"),
    Num("generation_params.top_p", "0.9", gt=0, le=1, null=True),
    Choice("generation_params.no_repeat_ngram_size", (1, 0), null=True),
    Choice("generation_params.aggregation", ("rra", "ra")),
    Int("generation_params.first_stage", "9", ge=1),
    Choice("generation_params.precision", ("auto", "float32", "bfloat16"), null=True),
    Int("generation_params.max_rows", "4096", ge=1, null=True),
    Int("bootstrap.n_resamples", "10000", ge=100, required=False),
    Num("bootstrap.confidence", "0.95", gt=0, lt=1, required=False),
    Int("bootstrap.seed", "0", required=False),
)

PREDICT_SECTIONS = {
    "": {c.key for c in COMMON} | {
        "train_task", "device", "top_k", "filter_seen", "test_batch_size", "progress", "generation_params", "logger",
        "bootstrap", "hydra",  # hydra: present when composed with return_hydra_config=True
    },
    "generation_params": {s.key.split(".", 1)[1] for s in PREDICT if s.key.startswith("generation_params.")},
    "bootstrap": {"n_resamples", "confidence", "seed"},
}


# --------------------------------------------------------------------------- key names
def flat_keys(cfg: DictConfig | dict, prefix: str = "") -> list[str]:
    """Every key of ``cfg`` as a dotted path (sections and leaves), without resolving values."""
    node = OmegaConf.to_container(cfg, resolve=False) if isinstance(cfg, (DictConfig, ListConfig)) else cfg
    out: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            path = f"{prefix}{key}"
            out.append(path)
            if isinstance(value, dict):
                out.extend(flat_keys(value, path + "."))
    return out


# Names other libraries use for a setting this repo spells differently: leaf -> our leaf.
SYNONYMS = {
    "learning_rate": "lr", "lr_rate": "lr", "epochs": "max_epochs", "num_epochs": "max_epochs",
    "n_epochs": "max_epochs", "bs": "batch_size", "batch": "batch_size", "early_stopping_patience": "patience",
    "list_length": "top_k", "k": "top_k", "beams": "num_beams", "n_beams": "num_beams",
    "num_sequences": "num_return_sequences", "n_sequences": "num_return_sequences", "temp": "temperature",
}


def suggest_key(key: str, candidates: Iterable[str]) -> str | None:
    """The known key ``key`` most likely meant (``lr`` -> ``seqrec_module.lr``, ``seqrec_module.learning_rate``
    -> ``seqrec_module.lr``), or None."""
    candidates = [c for c in candidates if c != key]
    section, _, leaf = key.rpartition(".")
    if leaf in SYNONYMS:  # another library's name: the candidate with our leaf, in the same section if any
        same = [c for c in candidates if c.rpartition(".")[2] == SYNONYMS[leaf]]
        if same:
            return next((c for c in same if c.rpartition(".")[0] == section), same[0])
    hit = difflib.get_close_matches(key, candidates, n=1, cutoff=0.75)
    if hit:
        return hit[0]
    by_leaf: dict[str, str] = {}
    for cand in candidates:
        by_leaf.setdefault(cand.rsplit(".", 1)[-1], cand)
    hit = difflib.get_close_matches(leaf, list(by_leaf), n=1, cutoff=0.75)
    return by_leaf[hit[0]] if hit else None


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


#: arguments run_train.py passes itself to the classes of these sections (not settable there)
TARGET_SECTIONS = {
    "train_dataset": ("train", "max_length", "window", "seed", "n_items"),
    "seqrec_module.loss": (),
    "seqrec_module.optimizer": ("params", "lr", "weight_decay"),  # lr, weight_decay: seqrec_module.lr / .weight_decay
    "seqrec_module.scheduler": ("optimizer", "total_steps"),
}


def _check_target_args(cfg: DictConfig) -> None:
    """Every key of a ``_target_`` section is an argument of that class (checked before any data)."""
    from hydra.utils import get_class

    for section, passed in TARGET_SECTIONS.items():
        node = OmegaConf.select(cfg, section)
        if not isinstance(node, DictConfig) or "_target_" not in node:
            continue
        try:
            cls = get_class(node._target_)
        except Exception as exc:
            raise UserError(f"{section}._target_={node._target_!r} is not an importable class ({one_line_text(exc)})") from None
        params = inspect.signature(cls.__init__).parameters
        if any(p.kind is p.VAR_KEYWORD for p in params.values()):
            continue
        args = sorted(set(params) - {"self", *passed})
        for key in node.keys():
            if key == "_target_":
                continue
            if key in passed:
                instead = f" and set seqrec_module.{key}" if key in ("lr", "weight_decay") else ""
                raise UserError(f"{section}.{key} is set by run_train.py itself; remove it{instead}")
            if key not in args:
                near = difflib.get_close_matches(str(key), args, n=1, cutoff=0.6)
                raise UserError(
                    f"{section}.{key} is not an argument of {cls.__name__} "
                    + (f"(its arguments: {', '.join(args)})" if args else "(it takes none here)")
                    + (f"; did you mean {section}.{near[0]}?" if near else "; remove it")
                )


def one_line_text(exc: BaseException, limit: int = 100) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_train_config(cfg: DictConfig) -> None:
    """Check a composed training config (its ``model_params`` aliases applied to a copy)."""
    cfg = copy.deepcopy(cfg)
    _check_sections(cfg, TRAIN_SECTIONS, "training")
    apply_model_aliases(cfg)
    for setting in TRAIN:
        setting.check(cfg)
    _check_trainer_params(cfg)
    _check_target_args(cfg)
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
    accelerator = str(OmegaConf.select(cfg, "trainer_params.accelerator") or "auto").lower()
    if accelerator in ("gpu", "cuda"):  # before any run folder: Lightning would fail inside the run
        import torch

        if not torch.cuda.is_available():
            raise UserError(
                f"trainer_params.accelerator={accelerator} (trainer=gpu) but no CUDA GPU is available here; "
                "use trainer=cpu, or trainer_params.accelerator=auto to take a GPU when there is one"
            )


def command_line() -> tuple[str, list[str]] | None:
    """``(config name, overrides)`` of the Hydra command line this process runs, or None outside a Hydra app
    (configs composed in code): the one reader of Hydra's recorded overrides."""
    try:
        from hydra.core.hydra_config import HydraConfig

        if not HydraConfig.initialized():
            return None
        hydra_cfg = HydraConfig.get()
        return hydra_cfg.job.config_name, list(hydra_cfg.overrides.task)
    except Exception:  # noqa: BLE001 -- no Hydra run context: nothing was given on a command line
        return None


def command_line_keys() -> set[str] | None:
    """The keys the command line set (``+``/``~`` stripped), or None outside a Hydra app."""
    given = command_line()
    return None if given is None else {o.split("=", 1)[0].lstrip("+~") for o in given[1]}


def _given_keys(section: str) -> set[str]:
    """First-level keys under ``section`` that the command line set; empty outside a Hydra app."""
    prefix = section + "."
    return {k[len(prefix):].split(".", 1)[0] for k in command_line_keys() or () if k.startswith(prefix)}


def check_predict_config(cfg: DictConfig, check_run: bool = True) -> None:
    """Check a composed prediction config; with ``check_run``, also the training run it names.

    The generation strategy is built once here (its own checks, e.g. ``do_sample`` against the
    strategy), so a bad parameter fails before the run store or any data is touched.
    """
    try:
        if _get(cfg, "train_task") is _MISSING:
            raise UserError("train_task is missing")
    except UserError:
        raise UserError("train_task is required; pass train_task=<ID> printed by run_train.py") from None
    _check_sections(cfg, PREDICT_SECTIONS, "prediction")
    for setting in PREDICT:
        setting.check(cfg)
    device = cfg.get("device")
    if isinstance(device, str) and device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise UserError(f"device={device} but no CUDA GPU is available here; use device=cpu or device=auto")
    params = OmegaConf.to_container(cfg.generation_params, resolve=True)
    from seqrec.generation import build_strategy
    from seqrec.generation.base import check_applicable

    build_strategy(params)
    check_applicable(params.get("strategy"), _given_keys("generation_params"))
    if not check_run:
        return
    train_cfg = check_train_run(cfg.run_store, cfg.train_task)
    train_k = OmegaConf.select(train_cfg, "seqrec_module.predict_top_k") or 10
    k = cfg.get("top_k") or train_k
    if k != train_k:  # top_k (list length) is easily taken for generation_params.top_k (sampling cutoff)
        logging.getLogger("seqrec").warning(
            "top_k=%d sets the length K of each list: every metric will be @%d (the training run used %d); the "
            "sampling cutoff is generation_params.top_k", k, k, train_k,
        )
    first = params.get("first_stage")
    if params.get("strategy") == "two_stage" and _int(first) and first >= k:
        raise UserError(
            f"generation_params.first_stage={first} leaves nothing for stage two of k={k} items; "
            f"pass e.g. generation_params.first_stage={k - 1}"
        )


def check_train_run(run_store: str, train_task: str) -> DictConfig:
    """The config of training run ``train_task``, after checking that its folder is usable.

    One-line :class:`UserError` for an unknown or damaged run: a ``run.json`` that does not
    parse, a missing or unreadable ``config.yaml``, a missing or damaged ``model.pt``, or a
    training data file that is gone.
    """
    import json
    import zipfile

    from seqrec.tracking.run_store import RUN_FILE, RunStore

    store = RunStore(run_store)
    again = "train again with run_train.py or pass another train_task"
    hint = "pass train_task=<ID> printed by run_train.py"
    run_dir = Path(run_store) / train_task
    if store.exists(train_task):  # a valid ID with a run.json: it must parse and be a training run
        try:
            record = json.loads((run_dir / RUN_FILE).read_text(encoding="utf-8"))
            if not isinstance(record, dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError) as exc:
            detail = "not valid JSON" if isinstance(exc, json.JSONDecodeError) else " ".join(str(exc).split())[:80]
            raise UserError(f"run {train_task}: {run_dir / RUN_FILE} is damaged ({detail}); {again}") from None
        if record.get("kind") != "train":
            raise UserError(
                f"run {train_task} is a {record.get('kind')} run, not a train run; {hint} ({store.known_hint('train', train_task)})"
            )
        status = record.get("status")
    else:
        try:
            store.path(train_task, kind=None)
        except UserError as exc:
            if "invalid run ID" in str(exc):  # e.g. ../x: the run store's own message
                raise
        if run_dir.is_dir():
            raise UserError(f"run folder {run_dir} has no {RUN_FILE}: not a complete run; {again}")
        raise UserError(f"unknown run ID {train_task!r} in {run_store}; {hint} ({store.known_hint('train', train_task)})")
    run_dir = store.path(train_task)
    config = run_dir / "config.yaml"
    try:
        train_cfg = OmegaConf.load(config)
        if not isinstance(train_cfg, DictConfig) or "data_path" not in train_cfg:
            raise ValueError("not a training config")
    except FileNotFoundError:
        raise UserError(f"run {train_task} has no config.yaml in {run_dir} (status: {status}); {again}") from None
    except Exception as exc:  # yaml errors, a list instead of a mapping, ...
        raise UserError(f"run {train_task}: {config} is damaged ({type(exc).__name__}); {again}") from None
    model = run_dir / "model.pt"
    if not model.is_file():
        raise UserError(
            f"run {train_task} has no model.pt (status: {status}; did its training finish?); {again}"
        )
    try:
        with zipfile.ZipFile(model) as archive:  # torch.save's format; a truncated copy fails here
            bad = archive.testzip()
        if bad is not None:
            raise zipfile.BadZipFile(f"bad CRC in {bad}")
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise UserError(f"run {train_task}: model.pt is damaged ({' '.join(str(exc).split())[:60]}); {again}") from None
    data_path = train_cfg.get("data_path")
    if isinstance(data_path, str) and not Path(data_path).is_file():
        raise UserError(
            f"run {train_task} was trained on data_path '{data_path}', which is gone; restore or re-prepare that "
            "file (scripts/prepare_data.py), or train again"
        )
    return train_cfg


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
        near = difflib.get_close_matches(unknown[0], sorted(allowed), n=1, cutoff=0.6)
        raise UserError(
            f"model_params.{unknown[0]} is not a setting of {cls.__name__}; allowed keys: {', '.join(sorted(args))} "
            "and aliases such as batch_size (ALIASES in src/seqrec/config.py)"
            + (f"; did you mean model_params.{near[0]}?" if near else "")
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
