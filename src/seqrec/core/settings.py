"""Declared settings: one config key with its type, range or allowed values, default and an example for the fix.

Components (:mod:`seqrec.core.registry`) declare their settings with these; :mod:`seqrec.config.checks` checks a composed
config against the declarations. Torch-free, so a wrong value fails before any heavy import.
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass
from numbers import Number
from typing import Any, Callable, Iterable

from omegaconf import DictConfig, ListConfig, OmegaConf

from seqrec.core.errors import UserError

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
    default: Any = _MISSING  # what a component uses when its config leaves the key out
    doc: str = ""

    def at(self, prefix: str) -> "Setting":
        """This setting under section ``prefix`` (``num_beams`` -> ``generation_params.num_beams``)."""
        return dataclasses.replace(self, key=f"{prefix}.{self.key}" if prefix else self.key)

    @property
    def leaf(self) -> str:
        return self.key.rpartition(".")[2]

    @property
    def has_default(self) -> bool:
        return self.default is not _MISSING

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
            if self.required and not self.has_default:
                raise UserError(f"{self.key} is missing from the config; pass +{self.key}={self.example}")
            return
        self.check_value(value)

    def check_value(self, value: Any) -> None:
        """One-line :class:`UserError` unless ``value`` is allowed."""
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
    "list_length": "k", "k": "predict_top_k", "beams": "num_beams", "n_beams": "num_beams",
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


