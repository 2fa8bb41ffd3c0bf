"""Objects built from config nodes (``_target_`` + arguments); a bad value becomes one :class:`UserError` line."""

from __future__ import annotations

from typing import Mapping

from seqrec.core.errors import UserError
from seqrec.core.frozen import thawed


def build(cls, where: str, **kwargs):
    """``cls(**kwargs)``; a bad value (ValueError/TypeError) becomes a one-line UserError."""
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:
        raise UserError(f"{where}: {exc}") from exc


def build_node(node: Mapping, where: str, **kwargs):
    """Instantiate a config node with ``_target_`` plus ``kwargs`` (one-line errors, see :func:`partial_node`)."""
    return partial_node(node, where)(**kwargs)


def partial_node(node: Mapping | None, where: str):
    """A factory calling a config node's ``_target_`` with its other keys plus the caller's arguments (None for a
    null node); a bad value becomes a one-line UserError when it is called."""
    if node is None:
        return None
    from hydra.utils import get_class

    params = thawed(node)
    target = params.pop("_target_", None)
    try:
        cls = get_class(target)
    except Exception as exc:
        raise UserError(f"{where}._target_={target!r} is not an importable class ({exc})") from None
    def make(*args, **kwargs):
        try:
            return cls(*args, **params, **kwargs)
        except (ValueError, TypeError) as exc:
            raise UserError(f"{where}: {exc}") from exc

    return make
