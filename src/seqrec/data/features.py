"""Item and event attributes as integer codes, ready for embedding tables (torch-free).

Every attribute becomes small integers, ``0`` meaning *unknown / none* (a missing value, an item without that
attribute, a generated event whose rating nobody gave, padding):

* ``categorical``: each distinct value a code ``1..n`` (in sorted order of the values, so the codes do not depend
  on row order);
* ``multi``: several values in one field separated by ``sep`` (MovieLens genres ``Action|Comedy``), each a code;
  an item holds up to ``width`` codes, right-padded with 0 (the model pools them);
* ``numeric``: bucketed into ``bins`` quantile bins over the items (or events) of the log, codes ``1..bins``.

Item attributes come from an item table (``item_id`` + one column per attribute; for MovieLens
``scripts/prepare_data.py`` writes ``data/<name>.items.csv`` with ``genres`` and ``year``); event attributes are
extra columns of the interaction CSV (MovieLens: ``rating``). Codes are per item *index* of the split (row 0 is
padding), so the model can look up a generated item's attributes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from seqrec.data.features_config import AttributeSpec, FeatureSettings
from seqrec.data.sequences import Sequences
from seqrec.core.errors import UserError


@dataclass
class Codes:
    """One attribute's codes: ``values`` ``[rows, width]`` (0 = unknown) and the number of codes incl. 0."""

    name: str
    kind: str
    values: np.ndarray
    cardinality: int
    labels: list = field(default_factory=list)  # what code i means (i >= 1), for reports

    @property
    def width(self) -> int:
        return self.values.shape[1]


def encode_column(column: pd.Series, spec: AttributeSpec, where: str) -> Codes:
    """Codes of ``column`` (one row per entity) under ``spec``; one-line :class:`UserError` on bad values."""
    if spec.kind == "numeric":
        numbers = pd.to_numeric(column, errors="coerce")
        bad = numbers.isna() & column.notna() & (column.astype(str).str.strip() != "")
        if bad.any():
            raise UserError(f"{where}: column {spec.name!r} is declared numeric but holds text (first: "
                            f"{column[bad].iloc[0]!r}); fix the value or declare kind: categorical")
        known = numbers.dropna().to_numpy(dtype=np.float64)
        if not len(known):
            return Codes(spec.name, spec.kind, np.zeros((len(column), 1), dtype=np.int64), 1)
        edges = np.unique(np.quantile(known, np.linspace(0, 1, spec.bins + 1)[1:-1]))
        codes = np.where(numbers.isna(), 0, 1 + np.searchsorted(edges, numbers.fillna(0).to_numpy(), side="right"))
        bounds = [-np.inf, *edges, np.inf]
        labels = [f"[{bounds[i]:g}, {bounds[i + 1]:g})" for i in range(len(edges) + 1)]
        return Codes(spec.name, spec.kind, codes.astype(np.int64)[:, None], len(edges) + 2, labels)
    text = column.astype("string").str.strip()
    if spec.kind == "categorical":
        present = text.where(text != "")
        vocab = sorted(set(present.dropna()))
        codes = pd.Categorical(present, categories=vocab).codes.astype(np.int64) + 1  # missing: -1 -> 0
        return Codes(spec.name, spec.kind, codes[:, None], len(vocab) + 1, vocab)
    parts = [[p.strip() for p in v.split(spec.sep) if p.strip()] if isinstance(v, str) else [] for v in text.fillna("")]
    vocab = sorted({p for row in parts for p in row})
    index = {v: i + 1 for i, v in enumerate(vocab)}
    width = max(1, max((len(set(row)) for row in parts), default=1))
    codes = np.zeros((len(parts), width), dtype=np.int64)
    for r, row in enumerate(parts):
        unique = list(dict.fromkeys(row))  # a value listed twice counts once
        codes[r, : len(unique)] = [index[p] for p in unique]
    return Codes(spec.name, spec.kind, codes, len(vocab) + 1, vocab)


def item_file_for(data_path: str | Path, item_file: str | None) -> Path | None:
    """The item-attribute CSV: ``item_file``, or with ``auto`` the file ``<data_path stem>.items.csv`` beside it."""
    if item_file is None:
        return None
    if item_file == "auto":
        path = Path(data_path)
        return path.with_name(path.stem + ".items.csv")
    return Path(item_file)


def read_item_table(path: Path, columns: list[str]) -> pd.DataFrame:
    """The item table at ``path`` (``item_id`` + ``columns``), checked: one-line errors otherwise."""
    if not path.exists():
        raise UserError(f"item attribute file {path} does not exist; write it with python scripts/prepare_data.py "
                        "(MovieLens), pass features.item_file=<csv>, or use features=none")
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"cannot read item attribute file {path} as CSV ({first}); it needs a header item_id,<attributes>")
    if "item_id" not in table.columns:
        raise UserError(f"item attribute file {path} has no item_id column (has {list(table.columns)}); "
                        "its header must start item_id,<attribute>,...")
    missing = [c for c in columns if c not in table.columns]
    if missing:
        have = [c for c in table.columns if c != "item_id"]
        raise UserError(f"item attribute file {path} has no column {missing[0]!r} (its attributes: {have}); fix "
                        "features.item_attributes or the file")
    if table["item_id"].isna().any():
        raise UserError(f"item attribute file {path} has rows without an item_id; fill or drop them")
    dup = table["item_id"].duplicated()
    if dup.any():
        raise UserError(f"item attribute file {path} lists item {table['item_id'][dup].iloc[0]!r} twice; keep one row "
                        "per item")
    return table


def _same_ids(table_ids: pd.Series, item_ids: np.ndarray) -> pd.Series:
    """The table's ids in the type of the interaction log's ids (ints when the log's are ints)."""
    if np.issubdtype(np.asarray(item_ids).dtype, np.integer):
        numbers = pd.to_numeric(table_ids, errors="coerce")
        if numbers.isna().any() or (numbers != np.floor(numbers)).any():
            return table_ids  # text ids never match integer ones: reported as unknown below
        return numbers.astype(np.int64)
    return table_ids.astype(str)


def item_codes(path: Path, item_ids: np.ndarray, specs: list[AttributeSpec], unknown_items: str = "error") -> list[Codes]:
    """Codes of every item attribute, rows = item index (row 0: padding, all 0).

    Every item of the interaction log must have a row (empty values are allowed: code 0); rows for items the log
    never mentions are an error (a file for another data set) unless ``unknown_items="ignore"``.
    """
    table = read_item_table(path, [s.name for s in specs])
    ids = _same_ids(table["item_id"], item_ids)
    known = pd.Index(item_ids)
    position = known.get_indexer(ids)
    extra = position < 0
    if extra.any() and (unknown_items == "error" or extra.all()):
        raise UserError(
            f"item attribute file {path} has {int(extra.sum())} item id(s) that the interaction log does not have "
            f"(first: {table['item_id'][extra].iloc[0]!r}); drop those rows"
            + (", or set features.unknown_items=ignore" if not extra.all() else "; is it the file of another data set?")
        )
    covered = np.zeros(len(item_ids), dtype=bool)
    covered[position[~extra]] = True
    if not covered.all():
        first = np.asarray(item_ids)[np.flatnonzero(~covered)[0]].item()
        raise UserError(f"item attribute file {path} has no row for {int((~covered).sum())} item(s) of the interaction "
                        f"log (first: {first!r}); add a row per item (empty attribute values are allowed)")
    rows = table[~extra].copy()
    order = np.empty(len(item_ids), dtype=np.int64)
    order[position[~extra]] = np.arange(len(rows))
    rows = rows.iloc[order].reset_index(drop=True)  # row i: item index i + 1
    out = []
    for spec in specs:
        codes = encode_column(rows[spec.name], spec, f"item attribute file {path}")
        padded = np.concatenate([np.zeros((1, codes.width), dtype=np.int64), codes.values])
        out.append(Codes(codes.name, codes.kind, padded, codes.cardinality, codes.labels))
    return out


@dataclass
class Features:
    """The attributes a training run uses: item codes (rows = item index) and event codes (rows = interactions of
    the split's train parts, in :class:`~seqrec.data.split.SplitData` order)."""

    settings: FeatureSettings
    items: list[Codes]
    events: list[Codes] = field(default_factory=list)
    train_offsets: np.ndarray | None = None  # the split's train.offsets, which the event codes follow

    def model_spec(self) -> dict:
        """What a model's :class:`~seqrec.models.features.FeatureEmbedding` is built from (stored with the
        checkpoint, so a reloaded run rebuilds the same tables)."""
        return {
            "items": [{"name": c.name, "kind": c.kind, "cardinality": int(c.cardinality), "width": int(c.width)}
                      for c in self.items],
            "events": [{"name": c.name, "cardinality": int(c.cardinality)} for c in self.events],
            "event_dropout": self.settings.event_dropout,
            "output": self.settings.output,
            "generated_events": self.settings.generated_events,
            "event_loss_weight": self.settings.event_loss_weight,
        }

    def item_tables(self) -> dict[str, np.ndarray]:
        return {c.name: c.values for c in self.items}

    def event_sequences(self) -> list[Sequences] | None:
        """One :class:`Sequences` of codes per event attribute, parallel to the split's train parts (same offsets),
        so selecting users and padding work as for items; None without event attributes."""
        return [Sequences(c.values[:, 0], self.train_offsets) for c in self.events] or None


def load_features(settings: FeatureSettings, data_path: str | Path, split, with_items: bool = True) -> Features | None:
    """``settings`` (:func:`~seqrec.data.features_config.feature_settings`) applied to the data and its ``split``
    (None when they ask for none); one-line errors for a missing or bad attribute file or column. Event codes (and
    numeric bins) come from the train parts. ``with_items=False`` leaves the item file unread."""
    if not settings.enabled:
        return None
    items = []
    if settings.items and with_items:
        path = item_file_for(data_path, settings.item_file)
        items = item_codes(path, split.item_ids, list(settings.items), settings.unknown_items)
    events = [encode_column(pd.Series(split.train_extra[spec.name]), spec, f"column {spec.name!r} of {data_path}")
              for spec in settings.events]
    return Features(settings, items, events, split.train.offsets)
