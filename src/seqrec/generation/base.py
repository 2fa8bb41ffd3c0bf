"""Strategy interface, registry and the shared parameter checks.

A strategy is one file in :mod:`seqrec.generation.strategies` that subclasses
:class:`Strategy` with a ``name``; it is found by that name (``generation_params.strategy``)
with no list to edit. ``from_params`` receives the whole ``generation_params`` mapping.
"""

from __future__ import annotations

import abc
import importlib
import pkgutil
from typing import Any, ClassVar

import torch

from seqrec.errors import UserError
from seqrec.generation.state import GenerationState

REGISTRY: dict[str, type["Strategy"]] = {}
AGGREGATIONS = ("rra", "ra")
# generation_params every strategy reads (the engine's settings and the strategy's name)
COMMON_PARAMETERS = frozenset({"strategy", "precision", "max_rows", "no_repeat_ngram_size", "do_sample"})
SAMPLING_PARAMETERS = frozenset({"temperature", "top_k", "top_p", "num_return_sequences", "aggregation"})


class Strategy(abc.ABC):
    """Produces ``k`` items per user from a :class:`GenerationState`."""

    name: ClassVar[str] = ""
    parameters: ClassVar[frozenset[str]] = frozenset()  # the generation_params it reads, besides the common ones
    width: int = 1  # rows per user it needs (beams, sampled sequences)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.name:
            REGISTRY[cls.name] = cls

    @classmethod
    @abc.abstractmethod
    def from_params(cls, params: dict[str, Any]) -> "Strategy":
        """The strategy configured by ``generation_params`` (checked, one-line errors)."""

    @abc.abstractmethod
    def generate(self, state: GenerationState) -> tuple[torch.Tensor, torch.Tensor]:
        """``(items [U, k], scores [U, k])`` for the users of ``state``."""

    def describe(self) -> str:
        return self.name


def _load_strategies() -> None:
    from seqrec.generation import strategies

    for module in pkgutil.iter_modules(strategies.__path__):
        importlib.import_module(f"{strategies.__name__}.{module.name}")


def build_strategy(params: dict[str, Any]) -> Strategy:
    """The strategy named by ``params["strategy"]``, built from ``params`` (checked)."""
    _load_strategies()
    name = params.get("strategy")
    if name not in REGISTRY:
        raise UserError(
            f"generation_params.strategy={name!r} is unknown; allowed: {', '.join(sorted(REGISTRY))}"
        )
    check_common(params)
    return REGISTRY[name].from_params(params)


def check_applicable(name: str, given: set[str]) -> None:
    """Refuse ``generation_params`` keys the user set that strategy ``name`` does not read (they would be
    silently ignored), e.g. ``num_beams`` with greedy decoding."""
    _load_strategies()
    cls = REGISTRY.get(name)
    if cls is None:
        return  # build_strategy reports the unknown name
    unused = sorted(set(given) - COMMON_PARAMETERS - cls.parameters)
    if unused:
        users = sorted(n for n, c in REGISTRY.items() if unused[0] in c.parameters)
        raise UserError(
            f"generation_params.{unused[0]} does not apply to strategy {name} (it reads "
            f"{', '.join(sorted(cls.parameters)) or 'none of the strategy parameters'}); drop it"
            + (f", or use a config whose strategy reads it ({', '.join(users)})" if users else "")
        )


# ------------------------------------------------------------------ parameter checks
def _int_param(params, key, default, minimum=1) -> int:
    value = params.get(key, default)
    if value is None:
        value = default
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise UserError(f"generation_params.{key} must be an integer >= {minimum} (got {value!r})")
    return value


def num_beams(params) -> int:
    return _int_param(params, "num_beams", 1)


def num_return_sequences(params) -> int:
    return _int_param(params, "num_return_sequences", 1)


def temperature(params) -> float:
    value = params.get("temperature", 1.0)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise UserError(
            f"generation_params.temperature must be > 0 when sampling (got {value!r}); "
            "use --config-name=GPT_greedy for arg-max decoding"
        )
    return float(value)


def top_k(params) -> int | None:
    value = params.get("top_k")
    if value in (None, 0):
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UserError(f"generation_params.top_k must be an integer >= 1, or null for no limit (got {value!r})")
    return value


def top_p(params) -> float:
    value = params.get("top_p", 1.0)
    value = 1.0 if value is None else value
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
        raise UserError(f"generation_params.top_p must be in (0, 1] (got {value!r})")
    return float(value)


def aggregation(params) -> str:
    value = params.get("aggregation", "rra")
    if value not in AGGREGATIONS:
        raise UserError(f"generation_params.aggregation={value!r} is unknown; allowed: {', '.join(AGGREGATIONS)}")
    return value


def check_common(params) -> None:
    precision = params.get("precision", "float32")
    if precision not in ("float32", "bfloat16", "auto"):
        raise UserError(f"generation_params.precision={precision!r} is unknown; allowed: float32, bfloat16, auto")
    max_rows = params.get("max_rows")
    if max_rows is not None and (isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 1):
        raise UserError(f"generation_params.max_rows must be an integer >= 1 or null (got {max_rows!r})")
    ngram = params.get("no_repeat_ngram_size", 1)
    if ngram not in (None, 0, 1):
        raise UserError(
            f"generation_params.no_repeat_ngram_size must be 1 (a sequence never repeats an item) or 0 "
            f"(repeats allowed) (got {ngram!r})"
        )
    do_sample = params.get("do_sample")
    if do_sample is not None and not isinstance(do_sample, bool):
        raise UserError(f"generation_params.do_sample must be true or false (got {do_sample!r})")


def require_do_sample(params, name: str, wanted: bool) -> None:
    """Refuse a ``do_sample`` that contradicts the strategy instead of silently ignoring it."""
    do_sample = params.get("do_sample")
    if do_sample is not None and do_sample != wanted:
        fix = "generation_params.strategy=sampling" if do_sample else f"generation_params.do_sample=false"
        raise UserError(f"generation_params.do_sample={do_sample} contradicts strategy {name}; use {fix}")


def ban_generated(params) -> bool:
    return params.get("no_repeat_ngram_size", 1) == 1
