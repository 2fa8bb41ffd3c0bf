"""Declaration of the ``features`` section (item and event attributes; :mod:`seqrec.data.features`), torch- and
pandas-free so the config check stays fast: every rule about it is here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from seqrec.core.errors import UserError

KINDS = ("categorical", "multi", "numeric")


@dataclass(frozen=True)
class AttributeSpec:
    """How one column becomes codes."""

    name: str
    kind: str = "categorical"
    sep: str = "|"
    bins: int = 10

    @classmethod
    def parse(cls, name: str, node: Mapping | None, where: str) -> "AttributeSpec":
        node = dict(node or {})
        unknown = sorted(set(node) - {"kind", "sep", "bins"})
        if unknown:
            raise UserError(f"{where}.{name}.{unknown[0]} is not an attribute setting; use kind, sep (multi) or "
                            "bins (numeric)")
        kind = node.get("kind", "categorical")
        if kind not in KINDS:
            raise UserError(f"{where}.{name}.kind={kind!r} is not a kind of attribute; use one of {', '.join(KINDS)}")
        sep, bins = node.get("sep", "|"), node.get("bins", 10)
        if not isinstance(sep, str) or not sep:
            raise UserError(f"{where}.{name}.sep must be a non-empty string (the separator of a multi-valued field)")
        if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
            raise UserError(f"{where}.{name}.bins={bins!r} must be an integer >= 1 (quantile bins of a numeric column)")
        return cls(name, kind, sep, bins)


OUTPUTS = ("ids", "attributes")
UNKNOWN_ITEMS = ("error", "ignore")
GENERATED_EVENTS = ("unknown", "predicted")
KEYS = ("item_file", "item_attributes", "event_attributes", "event_dropout", "output", "unknown_items",
        "generated_events", "event_loss_weight")


@dataclass(frozen=True)
class FeatureSettings:
    """The checked ``features`` section."""

    item_file: str | None
    items: tuple[AttributeSpec, ...]
    events: tuple[AttributeSpec, ...]
    event_dropout: float
    output: str
    unknown_items: str
    generated_events: str = "unknown"
    event_loss_weight: float = 1.0

    @property
    def enabled(self) -> bool:
        return bool(self.items or self.events)


def parse_features(node: Mapping[str, Any] | None) -> FeatureSettings:
    """Check a resolved ``features`` section (None or empty: no features); one-line :class:`UserError`."""
    node = dict(node or {})
    unknown = sorted(set(node) - set(KEYS))
    if unknown:
        raise UserError(f"features.{unknown[0]} is not a features setting; it takes {', '.join(KEYS)}")
    item_file = node.get("item_file", "auto")
    if item_file is not None and (not isinstance(item_file, str) or not item_file):
        raise UserError(f"features.item_file={item_file!r} must be auto, a CSV path or null")
    specs = {}
    for group in ("item_attributes", "event_attributes"):
        value = node.get(group) or {}
        if not isinstance(value, Mapping):
            raise UserError(f"features.{group} must map column names to {{kind: ..., sep: ..., bins: ...}}, got "
                            f"{value!r}")
        specs[group] = tuple(AttributeSpec.parse(str(k), v, f"features.{group}") for k, v in value.items())
    dropout = node.get("event_dropout", 0.1)
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise UserError(f"features.event_dropout={dropout!r} must be a number in [0, 1) (the share of training events "
                        "whose attributes are replaced by the unknown value)")
    output = node.get("output", "ids")
    if output not in OUTPUTS:
        raise UserError(f"features.output={output!r} must be ids (score by item embeddings) or attributes (item "
                        "embeddings + item attributes)")
    unknown_items = node.get("unknown_items", "error")
    if unknown_items not in UNKNOWN_ITEMS:
        raise UserError(f"features.unknown_items={unknown_items!r} must be error or ignore")
    if specs["item_attributes"] and item_file is None:
        raise UserError("features.item_attributes need an item file; set features.item_file=auto or a CSV path")
    reserved = {"user_id", "item_id", "timestamp"} & {s.name for s in specs["event_attributes"]}
    if reserved:
        raise UserError(f"features.event_attributes.{sorted(reserved)[0]} is a column the split itself uses; event "
                        "attributes are the other columns of the interaction CSV (e.g. rating)")
    generated = node.get("generated_events", "unknown")
    if generated not in GENERATED_EVENTS:
        raise UserError(f"features.generated_events={generated!r} must be unknown (a generated event gets the learned "
                        "unknown value) or predicted (a head predicts its attributes)")
    if generated == "predicted" and not specs["event_attributes"]:
        raise UserError("features.generated_events=predicted needs event attributes to predict; use "
                        "features=items_events_predicted or add features.event_attributes")
    weight = node.get("event_loss_weight", 1.0)
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0 < weight < float("inf"):
        raise UserError(f"features.event_loss_weight={weight!r} must be a number > 0 (the weight of the "
                        "event-attribute head's loss beside the item loss)")
    return FeatureSettings(item_file, specs["item_attributes"], specs["event_attributes"], float(dropout), output,
                           unknown_items, generated, float(weight))


def feature_settings(cfg) -> FeatureSettings:
    """The checked ``features`` section of a training config (none for configs stored before it existed)."""
    from omegaconf import DictConfig, OmegaConf

    node = cfg.get("features")
    if node is not None and not isinstance(node, DictConfig):
        raise UserError("features must be a features config; use features=none, features=items or features=items_events")
    return parse_features(None if node is None else OmegaConf.to_container(node, resolve=True))
