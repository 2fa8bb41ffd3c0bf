"""Read-only plain data for resolved run specifications, and the mutable copy libraries want."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any, Mapping


def frozen(value: Any) -> Any:
    """Plain data made read-only: mappings become :class:`MappingProxyType`, lists tuples (recursively)."""
    if isinstance(value, Mapping):
        return MappingProxyType({k: frozen(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(frozen(v) for v in value)
    return value


def thawed(value: Any) -> Any:
    """The plain, mutable copy of :func:`frozen` data (or of an OmegaConf node): dicts and lists."""
    try:
        from omegaconf import DictConfig, ListConfig, OmegaConf

        if isinstance(value, (DictConfig, ListConfig)):
            return OmegaConf.to_container(value, resolve=True)
    except ImportError:  # pragma: no cover -- omegaconf is a dependency
        pass
    if isinstance(value, Mapping):
        return {k: thawed(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [thawed(v) for v in value]
    return value
