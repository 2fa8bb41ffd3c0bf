"""The split and the attributes a run's data settings ask for, read from its data file."""

from __future__ import annotations

from dataclasses import dataclass

from seqrec.core.errors import UserError
from seqrec.data.features_config import FeatureSettings
from seqrec.data.split import SplitData, load_interactions, split_interactions


@dataclass(frozen=True)
class DataSpec:
    """What a run reads: the interaction file, the split (its protocol, :mod:`seqrec.data.protocols`) and the
    attributes."""

    path: str
    last_n_items: int
    validation_size: int | None  # None: every validation user (leave_one_out: every user)
    random_state: int
    features: FeatureSettings
    duplicates: str = "drop"  # identical (user, item, timestamp) rows: drop (with a count) or refuse
    protocol: str = "long_term"  # seqrec.data.protocols: long_term | leave_one_out

    @classmethod
    def of(cls, config) -> "DataSpec":
        """The data settings of a training config (a run's stored config, or a composed one)."""
        from omegaconf import DictConfig, OmegaConf

        from seqrec.core.paths import resolved_path
        from seqrec.data.features_config import feature_settings

        from seqrec.data.protocols import DEFAULT

        config = config if isinstance(config, DictConfig) else OmegaConf.create(dict(config))
        validation_size = OmegaConf.select(config, "dataloader.validation_size")
        return cls(path=str(resolved_path(str(config.data_path))), last_n_items=int(config.last_n_items),
                   validation_size=None if validation_size is None else int(validation_size),
                   random_state=int(config.random_state), features=feature_settings(config),
                   duplicates=str(config.get("duplicates") or "drop"), protocol=str(config.get("protocol") or DEFAULT))


def prepare_split(data: DataSpec) -> SplitData:
    """The split of ``data.path``; the columns that ``features.event_attributes`` names ride along."""
    df = load_interactions(data.path)
    events = [s.name for s in data.features.events]
    missing = [c for c in events if c not in df.columns]
    if missing:
        raise UserError(f"features.event_attributes.{missing[0]}: {data.path} has no column {missing[0]!r} (its "
                        f"columns: {list(df.columns)}); name a column of the interaction CSV, or use features=items")
    return split_interactions(
        df,
        last_n_items=data.last_n_items,
        validation_size=data.validation_size,
        random_state=data.random_state,
        extra_columns=events,
        duplicates=data.duplicates,
        source=f"data_path {data.path}",
        protocol=data.protocol,
    )


def prepare_features(data: DataSpec, split: SplitData, with_items: bool = True):
    """The attributes ``data.features`` asks for on ``split`` (:class:`seqrec.data.features.Features`), or None.
    ``with_items=False``: the event codes only (a trained model holds its item codes itself)."""
    from seqrec.data.features import load_features

    return load_features(data.features, data.path, split, with_items)


def data_fingerprint(split: SplitData, features=None) -> dict:
    """The fingerprint of what a run read (:mod:`seqrec.data.fingerprint`): the split's events and event columns,
    and the item attributes when ``features`` read them."""
    from seqrec.data.fingerprint import with_item_table

    return with_item_table(split.fingerprint, features.items if features is not None else [])
