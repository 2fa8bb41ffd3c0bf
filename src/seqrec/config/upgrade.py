"""Old runs and configs brought to the current format, in one place, step by step by format version.

A stored ``config.yaml`` is format 1 unless its run records another; a step is a function ``dict -> dict`` from
version N to N + 1 for one kind of run (train or predict). An old name a user still gives on the command line
(``top_k=5``) is applied under its current name with one warning line saying how to migrate, until
:data:`REMOVED_IN` (:func:`rename_deprecated`).

Version 1 -> 2 (package 1.0.0): a prediction's list length is ``k`` (it was the top-level ``top_k``, easily taken
for the sampling cutoff ``generation_params.top_k``, which keeps its name, as in HF and the paper). Training's
``seqrec_module.predict_top_k`` keeps its name.
"""

from __future__ import annotations

import copy
from typing import Any, Callable

#: the format this version writes
FORMAT = 2

#: (kind, step version) -> the step's renamed keys, old dotted key -> new dotted key; an old name a user still
#: gives is applied under the new one with a warning (:func:`rename_deprecated`) until :data:`REMOVED_IN`
RENAMED: dict[tuple[str, int], dict[str, str]] = {
    ("train", 1): {},  # seqrec_module.predict_top_k keeps its name
    ("predict", 1): {"top_k": "k"},  # the list length; generation_params.top_k (the sampling cutoff) keeps its name
}
#: the version that drops the old names of :data:`RENAMED`
REMOVED_IN = "2.0"


def _rename(cfg: dict, old: str, new: str) -> None:
    """In plain data: the value at dotted ``old`` moved to dotted ``new`` (unless ``new`` already holds a value)."""
    *parents, leaf = old.split(".")
    node = cfg
    for part in parents:
        node = node.get(part) if isinstance(node, dict) else None
    if not isinstance(node, dict) or leaf not in node:
        return
    value = node.pop(leaf)
    *parents, leaf = new.split(".")
    node = cfg
    for part in parents:
        node = node.setdefault(part, {})
    if node.get(leaf) is None:
        node[leaf] = value


def _train_1_to_2(cfg: dict) -> dict:
    for old, new in RENAMED[("train", 1)].items():
        _rename(cfg, old, new)
    return cfg


def _predict_1_to_2(cfg: dict) -> dict:
    for old, new in RENAMED[("predict", 1)].items():  # the list length: top_k -> k
        _rename(cfg, old, new)
    return cfg


#: (kind, version) -> the step from that version to the next
STEPS: dict[tuple[str, int], Callable[[dict], dict]] = {
    ("train", 1): _train_1_to_2,
    ("predict", 1): _predict_1_to_2,
}


def upgrade_config(cfg: dict, kind: str, version: int = 1) -> dict:
    """``cfg`` (a stored config of a ``kind`` run, format ``version``) brought to :data:`FORMAT`; a copy."""
    if kind not in ("train", "predict"):
        raise ValueError(f"kind must be train or predict, got {kind!r}")
    if not 1 <= version <= FORMAT:
        raise ValueError(f"format version {version} is not one this package knows (1..{FORMAT}); update seqrec")
    cfg = copy.deepcopy(cfg)
    for step in range(version, FORMAT):
        cfg = STEPS[(kind, step)](cfg)
    return cfg


# --------------------------------------------------------------------------- old names given by a user
def renamed(kind: str) -> dict[str, str]:
    """Old dotted key -> current dotted key, over every step, for configs of ``kind`` (train or predict)."""
    return {old: new for (k, _), names in sorted(RENAMED.items()) if k == kind for old, new in names.items()}


def _text(value: Any) -> str:
    return "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def rename_deprecated(cfg, kind: str) -> None:
    """Apply an old key a user gave (``top_k=5``; :func:`old_overrides` lets Hydra compose it) under its current
    name, in place, with one warning line saying what to write instead; the old and the current key both set to
    different values is a one-line :class:`UserError`. Idempotent: a second call finds nothing to do."""
    import logging

    from omegaconf import DictConfig, OmegaConf, open_dict

    from seqrec.core.errors import UserError

    for old, new in renamed(kind).items():
        parent, _, leaf = old.rpartition(".")
        node = OmegaConf.select(cfg, parent) if parent else cfg
        if not isinstance(node, DictConfig) or leaf not in node:
            continue
        value, current = node[leaf], OmegaConf.select(cfg, new, default=None)
        if current is not None and value is not None and current != value:
            raise UserError(f"{old}={_text(value)} and {new}={_text(current)} both set the same thing; drop {old} "
                            f"(its old name, removed in {REMOVED_IN})")
        logging.getLogger("seqrec").warning("%s is deprecated, use %s=%s (%s is removed in %s)", old, new,
                                            _text(value), old, REMOVED_IN)
        with open_dict(cfg):
            del node[leaf]
            if current is None:
                OmegaConf.update(cfg, new, value, force_add=True)


def old_overrides(args: list[str], kind: str) -> list[str]:
    """Command-line arguments with Hydra's ``+`` added to an override of a renamed key (``top_k=5`` ->
    ``+top_k=5``): the composed config no longer has the key, so Hydra would reject it; composed, it is applied
    under its current name by :func:`rename_deprecated`, which says how to migrate."""
    old = renamed(kind)
    return ["+" + arg if "=" in arg and not arg.startswith("-") and arg.split("=", 1)[0] in old else arg
            for arg in args]
