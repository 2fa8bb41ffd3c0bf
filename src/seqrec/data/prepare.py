"""The split and the attributes a training config asks for, read from its data file."""

from __future__ import annotations

from omegaconf import DictConfig

from seqrec.core.errors import UserError
from seqrec.data.split import SplitData, load_interactions, split_interactions


def prepare_split(cfg: DictConfig) -> SplitData:
    """The split of ``cfg.data_path``; the columns that ``features.event_attributes`` names ride along."""
    from seqrec.data.features_config import feature_settings

    df = load_interactions(cfg.data_path)
    events = [s.name for s in feature_settings(cfg).events]
    missing = [c for c in events if c not in df.columns]
    if missing:
        raise UserError(f"features.event_attributes.{missing[0]}: {cfg.data_path} has no column {missing[0]!r} (its "
                        f"columns: {list(df.columns)}); name a column of the interaction CSV, or use features=items")
    return split_interactions(
        df,
        last_n_items=cfg.last_n_items,
        validation_size=cfg.dataloader.validation_size,
        random_state=cfg.random_state,
        extra_columns=events,
    )


def prepare_features(cfg: DictConfig, split: SplitData, with_items: bool = True):
    """The attributes of a training config's ``features`` on ``split`` (:class:`seqrec.data.features.Features`),
    or None. ``with_items=False``: the event codes only (a trained model holds its item codes itself)."""
    from seqrec.data.features import load_features
    from seqrec.data.features_config import feature_settings

    return load_features(feature_settings(cfg), cfg.data_path, split, with_items)
