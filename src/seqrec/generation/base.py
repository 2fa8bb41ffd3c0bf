"""Strategy interface and the builder that turns checked ``generation_params`` into a strategy.

A strategy is one implementation file in :mod:`seqrec.generation.strategies` (a :class:`Strategy` subclass) plus
its declaration ``<file>_config.py`` beside it (:class:`seqrec.core.registry.Strategy`: name, parameters with types,
ranges and defaults, rules, experiment grid). :func:`build_strategy` checks ``generation_params`` against the
declaration (:func:`seqrec.core.registry.check_strategy`) and hands the checked values to ``from_params``.
"""

from __future__ import annotations

import abc
from typing import Any, ClassVar, Mapping

import torch

from seqrec.generation.state import GenerationState


class Strategy(abc.ABC):
    """Produces ``k`` items per user from a :class:`GenerationState`."""

    name: ClassVar[str] = ""
    width: int = 1  # rows per user it needs (beams, sampled sequences)
    width_parameter: ClassVar[str] = "num_return_sequences"  # the generation_params key that sets ``width``

    @classmethod
    @abc.abstractmethod
    def from_params(cls, params: dict[str, Any]) -> "Strategy":
        """The strategy configured by checked ``generation_params`` (every declared key present)."""

    @abc.abstractmethod
    def generate(self, state: GenerationState) -> tuple[torch.Tensor, torch.Tensor]:
        """``(items [U, k], scores [U, k])`` for the users of ``state``."""

    def describe(self) -> str:
        return self.name

    def draw_shapes(self, users: int, n_columns: int, k: int) -> list[tuple[int, int]]:
        """The shapes of the distributions it samples from (``torch.multinomial`` draws, in order) for ``users``
        users, ``n_columns`` score columns and ``k`` items: none for a deterministic strategy. The engine replays
        them to start chunks in parallel from the random state the chunks before them leave, and checks them."""
        return []


def build_strategy(params: Mapping[str, Any], given: tuple[str, ...] | set[str] = (),
                   context: Mapping[str, Any] | None = None) -> Strategy:
    """The strategy ``params["strategy"]`` names, built from ``params`` after checking them against its
    declaration (``given``: keys the command line set; ``context``: e.g. ``{"k": 10}`` for rules)."""
    from hydra.utils import get_class

    from seqrec.core.registry import check_strategy

    declared, values = check_strategy(dict(params), given, context)
    return get_class(declared.target).from_params(values)


def ban_generated(params) -> bool:
    return params.get("no_repeat_ngram_size", 1) == 1
