"""Old runs and configs brought to the current format, in one place, step by step by format version.

A run folder records its format in ``run.json`` (``"format": N``, :data:`seqrec.tracking.run_folder.FORMAT`); a run
without one is version 1. Every reader of a stored ``config.yaml`` (predict, resume, prompt-tuning, the
experiment's reuse check, ``samples_from``) goes through :func:`load_run_config`, so the code below the entry
points only ever sees the current format. A step is a function ``dict -> dict`` from version N to N + 1 for one
kind of run (train or predict); each is tested on a stored fixture of its version (``tests/fixtures/runs/``).

Version 1 -> 2 (package 1.0.0): the modules moved into layer sub-packages, so class paths in ``_target_`` keys
changed (:data:`MOVED`); and the defaults of settings added over time, which older configs lack: ``seed`` (runs
trained with ``random_state``), ``seqrec_module.optimizer`` (Adam) and ``scheduler`` (none), ``callbacks`` (none),
``features`` (none), ``model.name`` (found from the network class and its settings), and for predict runs the
generation options added since (left null: the old behaviour).
"""

from __future__ import annotations

import copy
from typing import Any, Callable

from seqrec.tracking.run_folder import FORMAT, RunFolder

#: class-path prefixes of format 1 -> where those classes live now
MOVED = {
    "seqrec.losses.": "seqrec.training.losses.",
    "seqrec.optim.": "seqrec.training.optim.",
    "seqrec.prompt_tuning.": "seqrec.training.prompt_tuning.",
    "seqrec.sweep.": "seqrec.experiments.sweep.",
    "seqrec.module.": "seqrec.training.lightning_module.",
}

#: the optimizer of runs trained before seqrec_module.optimizer existed
OLD_OPTIMIZER = {"_target_": "torch.optim.Adam", "betas": [0.9, 0.999], "eps": 1e-08}

#: generation options added after the first predict runs; null is the old behaviour
LATER_GENERATION_OPTIONS = ("prefix_sequences", "generated_events", "first_stage", "precision", "max_rows", "workers")


def moved_path(target: str) -> str:
    """The current class path of a format-1 ``_target_``."""
    for old, new in MOVED.items():
        if target.startswith(old):
            return new + target[len(old):]
    return target


def _move_targets(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: moved_path(v) if k == "_target_" and isinstance(v, str) else _move_targets(v)
                for k, v in node.items()}
    if isinstance(node, list):
        return [_move_targets(v) for v in node]
    return node


def _train_1_to_2(cfg: dict) -> dict:
    cfg = _move_targets(cfg)
    cfg.setdefault("seed", cfg.get("random_state"))
    module = cfg.setdefault("seqrec_module", {})
    module.setdefault("optimizer", dict(OLD_OPTIMIZER))
    module.setdefault("scheduler", None)
    cfg.setdefault("callbacks", {})
    cfg.setdefault("features", None)
    model = cfg.get("model")
    if isinstance(model, dict) and not model.get("name"):
        name = _model_name(cfg)
        if name is not None:
            model["name"] = name
    return cfg


def _model_name(cfg: dict) -> str | None:
    """``model.name`` of a config stored before it existed: the first declaration of its network class whose
    settings cover its ``model_params`` (SASRec and gSASRec share a class; gSASRec's own names tell them apart), as
    :func:`seqrec.config.checks.model_declaration` finds it (this module may not import that one: it imports this)."""
    from seqrec.core import registry

    model = cfg.get("model")
    target = model.get("_target_") if isinstance(model, dict) else None
    if not isinstance(target, str) or not target:
        return None
    params = set(cfg.get("model_params") or {})
    candidates = [m for m in registry.components("model") if m.target == target]
    for candidate in candidates:
        if params <= set(candidate.keys()) | set(candidate.aliases) | set(candidate.special):
            return candidate.name
    return candidates[0].name if candidates else None


def _predict_1_to_2(cfg: dict) -> dict:
    cfg = _move_targets(cfg)
    params = cfg.setdefault("generation_params", {})
    if isinstance(params, dict):
        for key in LATER_GENERATION_OPTIONS:
            params.setdefault(key, None)
    cfg.setdefault("samples_from", None)
    for old, new in RENAMED[("predict", 1)].items():  # the list length: top_k -> k
        _rename(cfg, old, new)
    return cfg


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


#: (kind, version) -> the step from that version to the next
STEPS: dict[tuple[str, int], Callable[[dict], dict]] = {
    ("train", 1): _train_1_to_2,
    ("predict", 1): _predict_1_to_2,
}


#: top-level settings added within the current format, by kind: a stored config without one gets this value.
#: ``duplicates``: identical (user, item, timestamp) rows were kept before the policy existed; they are dropped now
#: (a file without such rows, MovieLens among them, splits exactly as before). ``allow_data_change``: the override of
#: the data-fingerprint check, off. ``protocol``: every run made before the protocol group existed was split by the
#: long-term protocol (a predict run's ``protocol`` is null: it uses its training run's). ``dropout_masks``: runs
#: trained before the cheap masks existed drew torch's own.
LATER_DEFAULTS = {"train": {"duplicates": "drop", "allow_data_change": False, "protocol": "long_term",
                            "dropout_masks": "torch"},
                  "predict": {"allow_data_change": False, "protocol": None}}


def upgrade_config(cfg: dict, kind: str, version: int = 1) -> dict:
    """``cfg`` (a stored config of a ``kind`` run, format ``version``) brought to :data:`FORMAT`; a copy."""
    if kind not in ("train", "predict"):
        raise ValueError(f"kind must be train or predict, got {kind!r}")
    if not 1 <= version <= FORMAT:
        raise ValueError(f"format version {version} is not one this package knows (1..{FORMAT}); update seqrec")
    cfg = copy.deepcopy(cfg)
    for step in range(version, FORMAT):
        cfg = STEPS[(kind, step)](cfg)
    for key, value in LATER_DEFAULTS[kind].items():
        cfg.setdefault(key, value)
    return cfg


def run_format(record: dict) -> int:
    """The format version a run's ``run.json`` records (1 when it records none)."""
    value = record.get("format", 1)
    return value if isinstance(value, int) and not isinstance(value, bool) else 1


def load_run_config(folder: RunFolder | str, kind: str | None = None) -> dict:
    """A run's stored ``config.yaml`` in the current format (plain data). ``kind`` defaults to the run's own.

    Raises what :meth:`RunFolder.read_config` / :meth:`RunFolder.read_record` raise for a missing or damaged file.
    """
    folder = folder if isinstance(folder, RunFolder) else RunFolder(folder)
    record = folder.read_record()
    cfg = upgrade_config(folder.read_config(), kind or str(record.get("kind")), run_format(record))
    if isinstance(cfg.get("data_path"), str):  # as a run records it today (an old run's path was stored as written)
        from seqrec.core.paths import resolved_path, stored_path

        cfg["data_path"] = stored_path(resolved_path(cfg["data_path"]))
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
