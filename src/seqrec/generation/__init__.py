"""Recommendation by generation: one engine (:mod:`.engine`), strategies in :mod:`.strategies`."""

from seqrec.generation.base import REGISTRY, Strategy, ban_generated, build_strategy
from seqrec.generation.engine import generate

__all__ = ["REGISTRY", "Strategy", "ban_generated", "build_strategy", "generate"]
