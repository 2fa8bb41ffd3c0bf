"""A trained run as a Python object: ``load_run(<ID>).recommend([[1193, 661, 914]])``.

:func:`load_run` reads a training run the way ``run_predict.py`` does (its ``config.yaml``, the split rebuilt from
its data file, the event codes of its features, the weights in ``model.pt``) and returns a :class:`Recommender`.
Every list comes from the one generation engine (:func:`seqrec.generation.generate`) with the predict run's
settings: the same history window, seen-item filter, chunking, precision and seed, and the strategy built from
``generation_params`` by :func:`seqrec.generation.build_strategy` (so a bad parameter fails with the same line as
``run_predict.py``). Histories given as the user's own item IDs become a :class:`~seqrec.data.sequences.Sequences`
of item indices; the users of the run's split use their training part, exactly the input of the predict run.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from seqrec.core.errors import UserError
from seqrec.data.sequences import Sequences

log = logging.getLogger("seqrec")

#: the predict run's default seed (``random_state`` of ``src/configs/base/common.yaml``)
DEFAULT_SEED = 42
#: what an unknown-item message tells a Python caller to pass (the command line says ``--unknown skip``)
SKIP_HINT = 'pass unknown="skip"'
_SEQUENCE_TYPES = (list, tuple, np.ndarray, pd.Series, pd.Index, range)


def load_run(run_id_or_prefix: str, run_store: str | Path | None = None, device: str = "cpu",
             allow_data_change: bool = False) -> "Recommender":
    """The training run ``run_id_or_prefix`` (its ID or a unique prefix of it) of ``run_store`` (default:
    ``$SEQREC_RUN_STORE`` or ``<repo>/runs``), ready to recommend on ``device`` (``cpu``, ``cuda``, ``auto``).

    Its data file must still be there, unchanged: it maps the user's own item IDs to the model's items. One-line
    :class:`~seqrec.core.errors.UserError` for an unknown, ambiguous or damaged run, and for a data file that
    changed since the run was trained (its data fingerprint) unless ``allow_data_change=True`` (the recommender's
    ``data_check`` then says what changed)."""
    from seqrec.config.checks import check_train_run
    from seqrec.core.hardware import device as resolve_device
    from seqrec.core.paths import default_run_store
    from seqrec.config.data_check import data_check
    from seqrec.data.prepare import DataSpec, data_fingerprint, prepare_features, prepare_split
    from seqrec.models.loading import load_trained
    from seqrec.tracking.run_folder import RunFolder
    from seqrec.tracking.run_store import RunStore

    root = Path(run_store) if run_store else default_run_store()
    if not root.is_dir():
        raise UserError(f"run store {root} is not a folder; pass run_store=<the folder that holds the runs> "
                        "(default: $SEQREC_RUN_STORE or <repo>/runs)")
    if not isinstance(run_id_or_prefix, str) or not run_id_or_prefix.strip():
        raise UserError(f"run ID {run_id_or_prefix!r} is not a run ID; pass the ID printed by run_train.py (or a "
                        "unique prefix of it)")
    store = RunStore(root)
    run_id = store.resolve_id(run_id_or_prefix.strip())
    train_cfg = check_train_run(str(root), run_id, key="run_id")  # its config.yaml, in the current format
    torch_device = _device(device, resolve_device)
    data = DataSpec.of(train_cfg)
    split = prepare_split(data)
    features = prepare_features(data, split, with_items=False)  # the model holds its item codes itself
    if not isinstance(allow_data_change, (bool, np.bool_)):
        raise UserError(f"allow_data_change={allow_data_change!r} is not true or false; pass allow_data_change=True "
                        "to use a data file that changed since the run was trained")
    check = data_check(str(root), data.path, [("run_id", run_id, "was trained")], bool(allow_data_change),
                       override="allow_data_change=True", recorded=False)
    checked = check.verify(data_fingerprint(split, features))
    folder = RunFolder(store.path(run_id))
    model, meta = load_trained(folder.model, torch_device)
    if meta["n_items"] != split.n_items:
        raise UserError(
            f"{data.path} now has {split.n_items} items but run {run_id} was trained on {meta['n_items']}; "
            "re-prepare the same data or train again"
        )
    recommender = Recommender(run_id, folder.path, train_cfg, split, features, model, torch_device)
    recommender.data_check = checked  # data_fingerprint, data_check (same/changed/unrecorded), data_change_allowed
    return recommender


def _device(name: Any, resolve):
    if not isinstance(name, str) or not name:
        raise UserError(f"device={name!r} is not a device; pass device='cpu', 'cuda' or 'auto'")
    if name.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise UserError(f"device={name!r} but no CUDA GPU is available here; use device='cpu' or 'auto'")
    try:
        return resolve(name)
    except RuntimeError as exc:
        raise UserError(f"device={name!r} is not a device ({' '.join(str(exc).split())[:80]}); pass device='cpu', "
                        "'cuda' or 'auto'") from None


@dataclass(frozen=True)
class EventEncoder:
    """Raw values of one event attribute -> the codes the run's features give them (0 = unknown): categorical and
    multi values by the run's own labels, numeric values by the quantile bins of its training events
    (:func:`seqrec.data.features.encode_column`; an event keeps the first code of a multi value, as
    :meth:`~seqrec.data.features.Features.event_sequences` does)."""

    name: str
    kind: str
    sep: str
    labels: tuple = ()
    edges: np.ndarray | None = None

    @classmethod
    def of(cls, spec, codes, train_values: np.ndarray) -> "EventEncoder":
        """The encoder of ``spec`` whose codes on the run's training events ``train_values`` are ``codes``."""
        edges = None
        if spec.kind == "numeric":  # the bins of encode_column, over the same training events
            known = pd.to_numeric(pd.Series(train_values), errors="coerce").dropna().to_numpy(dtype=np.float64)
            if len(known):
                edges = np.unique(np.quantile(known, np.linspace(0, 1, spec.bins + 1)[1:-1]))
        return cls(spec.name, spec.kind, spec.sep, tuple(codes.labels), edges)

    def encode(self, values, where: str) -> np.ndarray:
        """Codes of ``values`` (one per event); missing values (None, NaN, "") are 0; a value the run never saw is a
        one-line :class:`UserError` (``where``: which history)."""
        column = pd.Series(list(values), dtype=object)
        if self.kind == "numeric":
            numbers = pd.to_numeric(column, errors="coerce")
            bad = numbers.isna() & column.notna() & (column.astype(str).str.strip() != "")
            if bad.any():
                raise UserError(f"{where}: event attribute {self.name!r} is numeric but holds {column[bad].iloc[0]!r}; "
                                "pass numbers, or None for unknown")
            if self.edges is None:
                return np.zeros(len(column), dtype=np.int64)
            codes = 1 + np.searchsorted(self.edges, numbers.fillna(0).to_numpy(dtype=np.float64), side="right")
            return np.where(numbers.isna(), 0, codes).astype(np.int64)
        index = {label: i + 1 for i, label in enumerate(self.labels)}
        text = column.astype("string").str.strip()
        if self.kind == "multi":
            text = text.map(lambda v: next((p.strip() for p in v.split(self.sep) if p.strip()), "")
                            if isinstance(v, str) else v)
        present = text.where(text != "")
        unseen = present.notna() & ~present.isin(list(index))
        if unseen.any():
            known = ", ".join(map(str, self.labels[:8])) + (", ..." if len(self.labels) > 8 else "")
            raise UserError(f"{where}: event attribute {self.name!r} has value {present[unseen].iloc[0]!r}, which the "
                            f"run never saw (known: {known}); pass a known value, or None for unknown")
        return np.array([0 if pd.isna(v) else index[v] for v in present], dtype=np.int64)


class Recommender:
    """A trained run, ready to recommend (made by :func:`load_run`).

    ``item_ids``: the catalogue (the user's own IDs); ``user_ids``: the users of the run's data;
    ``event_attributes``: names of the event attributes the run was trained with (empty without);
    ``k`` and ``filter_seen``: the run's defaults (``seqrec_module.predict_top_k``, ``seqrec_module.filter_seen``)."""

    def __init__(self, run_id: str, run_dir: Path, config, split, features, model, device) -> None:
        self.run_id = run_id
        self.run_dir = Path(run_dir)
        self.config = config
        self.split = split
        self.model = model
        self.device = device
        self.item_ids = pd.Index(split.item_ids)
        self.user_ids = pd.Index(split.user_ids)
        self.k = int(config.seqrec_module.predict_top_k)
        self.filter_seen = bool(config.seqrec_module.filter_seen)
        self.max_length = int(config.dataset.max_length)
        self._rows = 16 * int(config.dataloader.test_batch_size)  # run_predict.py's chunking (max_rows=null)
        self._events = features.event_sequences() if features is not None else None
        self._encoders = [] if features is None else [
            EventEncoder.of(spec, codes, split.train_extra[spec.name])
            for spec, codes in zip(features.settings.events, features.events)]
        self.event_attributes = tuple(e.name for e in self._encoders)

    def __repr__(self) -> str:
        model = self.config.get("model", {}).get("name") or type(self.model).__name__
        events = f", event attributes {list(self.event_attributes)}" if self.event_attributes else ""
        return (f"Recommender(run {self.run_id}: {model}, {len(self.item_ids)} items, {len(self.user_ids)} users, "
                f"k={self.k}{events})")

    # ------------------------------------------------------------------ public
    def recommend(self, histories, k: int | None = None, strategy: str = "topk", events=None,
                  filter_seen: bool | None = None, seed: int = DEFAULT_SEED, unknown: str = "error",
                  progress: bool = False, **generation_params) -> pd.DataFrame:
        """The next ``k`` items (default: the run's ``predict_top_k``) for each history.

        ``histories``: a list of histories, or a dict name -> history, each a list of the user's own item IDs in
        time order (one flat list of IDs is one history). ``strategy`` and ``generation_params``: those of
        ``run_predict.py``'s ``generation_params`` (``topk``, ``greedy``, ``beam`` with ``num_beams=3``,
        ``sampling`` with ``temperature=0.3``, ``two_stage`` ...; ``src/configs/base/predict.yaml`` lists them).
        ``events``: for a run trained with event attributes, per history a dict attribute -> one raw value per item
        (``{"rating": [5, 3, 4]}``), shaped like ``histories``; a missing attribute or value is unknown.
        ``filter_seen``: never recommend an item of the history (default: as the run was trained). ``unknown``:
        ``error`` (default) refuses item IDs the run does not know; ``skip`` drops them (the count is logged and
        kept in the table's ``attrs["skipped_items"]``).

        Returns one row per recommendation: ``history`` (the position of the history in the list, or its key),
        ``item_id``, ``rank`` (1..k) and ``score``."""
        keys, lists = _histories(histories)
        attributes = self._event_values(events, keys)
        if unknown not in ("error", "skip"):
            raise UserError(f"unknown={unknown!r} is not a choice; pass unknown='error' (refuse unknown item IDs) or "
                            "unknown='skip' (drop them)")
        train, codes, skipped = self._encode(keys, lists, attributes, unknown == "skip")
        recs, scores = self._generate(train, np.arange(len(keys)), codes, k, strategy, filter_seen, seed, progress,
                                      generation_params)
        frame = self._frame("history", keys, recs, scores)
        frame.attrs["skipped_items"] = skipped
        return frame

    def recommend_users(self, user_ids, k: int | None = None, strategy: str = "topk", filter_seen: bool | None = None,
                        seed: int = DEFAULT_SEED, progress: bool = False, **generation_params) -> pd.DataFrame:
        """Recommendations for users of the run's data (their IDs): the input is each user's test input with its
        event attributes (the training part; under leave-one-out also the validation item), exactly what
        ``run_predict.py`` gives its test users, so a predict run's list of a user is reproduced (sampling
        strategies: for the same users in the same order, as they share one seeded generator). Same arguments as
        :meth:`recommend`; the table has ``user_id`` instead of ``history``."""
        ids = list(user_ids) if isinstance(user_ids, _SEQUENCE_TYPES) else [user_ids]
        if not ids:
            raise UserError("no user IDs given; pass users of the run's data (Recommender.user_ids lists them)")
        users = _positions(self.user_ids, ids)
        if (users < 0).any():
            missing = [ids[i] for i in np.flatnonzero(users < 0)[:3]]
            raise UserError(f"{int((users < 0).sum())} user ID(s) not in run {self.run_id}'s data (first: "
                            f"{', '.join(map(repr, missing))}); pass users of {self.config.data_path}, or give their "
                            "histories to recommend()")
        recs, scores = self._generate(self.split.inputs("test"), users, self._events, k, strategy, filter_seen, seed,
                                      progress, generation_params)
        return self._frame("user_id", self.user_ids[users].tolist(), recs, scores)

    # ------------------------------------------------------------------ inside
    def _event_values(self, events, keys: list) -> list[dict] | None:
        """Per history: attribute -> raw values (checked names); None without events."""
        if events is None:
            return None
        if not self._encoders:
            raise UserError(f"run {self.run_id} was trained without event attributes; drop events (or load a run "
                            "trained with features=items_events)")
        if isinstance(events, Mapping) and set(events) <= set(self.event_attributes) and keys == [0]:
            events = [events]  # one history, one mapping
        if isinstance(events, Mapping):
            extra = [key for key in events if key not in set(keys)]
            if extra:
                raise UserError(f"events name history {extra[0]!r}, which is not among the histories; give events the "
                                "keys of the histories")
            per_history = [events.get(key) for key in keys]
        elif isinstance(events, _SEQUENCE_TYPES):
            per_history = list(events)
            if len(per_history) != len(keys):
                raise UserError(f"events has {len(per_history)} entries for {len(keys)} histories; give one dict "
                                "attribute -> values per history (None: unknown)")
        else:
            raise UserError(f"events is a {type(events).__name__}; pass a list with one dict attribute -> values per "
                            "history (or a dict keyed like the histories)")
        for key, entry in zip(keys, per_history):
            if entry is None:
                continue
            if not isinstance(entry, Mapping):
                raise UserError(f"events of history {key!r} is a {type(entry).__name__}; pass a dict attribute -> "
                                "values, e.g. {'%s': [...]}" % self.event_attributes[0])
            for name in entry:
                if name not in self.event_attributes:
                    raise UserError(f"events of history {key!r}: {name!r} is not an event attribute of run "
                                    f"{self.run_id} (it has {', '.join(self.event_attributes)}); rename or drop it")
        return per_history

    def _encode(self, keys: list, lists: list[list], attributes: list[dict] | None, skip: bool):
        """The histories as item indices (and event codes), unknown IDs refused or dropped."""
        lengths = np.array([len(items) for items in lists], dtype=np.int64)
        flat = [item for items in lists for item in items]
        positions = _positions(self.item_ids, flat)
        known = positions >= 0
        owner = np.repeat(np.arange(len(keys)), lengths)
        n_unknown = int((~known).sum())
        if n_unknown and not skip:
            first = np.flatnonzero(~known)[:3]
            shown = ", ".join(f"{flat[i]!r} (history {keys[owner[i]]!r})" for i in first)
            raise UserError(f"{n_unknown} item ID(s) unknown to run {self.run_id} (first: {shown}); it knows only the "
                            f"items of {self.config.data_path}: drop them, or {SKIP_HINT} to drop them with a count")
        codes = []
        for encoder in self._encoders:
            parts = []
            for key, n, entry in zip(keys, lengths, attributes or [None] * len(keys)):
                values = None if entry is None else entry.get(encoder.name)
                if values is None:
                    parts.append(np.zeros(n, dtype=np.int64))
                    continue
                values = list(values) if isinstance(values, _SEQUENCE_TYPES) else values
                if not isinstance(values, list) or len(values) != n:
                    size = len(values) if isinstance(values, list) else type(values).__name__
                    raise UserError(f"events of history {key!r}: {encoder.name!r} has {size} values for {n} items; "
                                    "give one value per item (None: unknown)")
                parts.append(encoder.encode(values, f"history {key!r}"))
            codes.append(np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64))
        if n_unknown:
            lengths = np.bincount(owner[known], minlength=len(keys)).astype(np.int64)
            empty = np.flatnonzero(lengths == 0)
            if len(empty):
                raise UserError(f"history {keys[empty[0]]!r} has no item known to run {self.run_id} (its "
                                f"{int((owner == empty[0]).sum())} ID(s) were skipped); drop that history")
            log.warning("dropped %d item ID(s) unknown to run %s (first: %r)", n_unknown, self.run_id,
                        flat[int(np.flatnonzero(~known)[0])])
        train = Sequences.from_lengths(positions[known] + 1, lengths)
        events = [Sequences(c[known], train.offsets) for c in codes] or None
        return train, events, n_unknown

    def _generate(self, train: Sequences, users: np.ndarray, events, k, strategy, filter_seen, seed, progress,
                  generation_params: dict) -> tuple[np.ndarray, np.ndarray]:
        """``generate`` with the predict run's settings (run_predict.py: generation_params, top_k, filter_seen)."""
        from seqrec.generation import ban_generated, build_strategy, generate

        k = self.k if k is None else k
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise UserError(f"k={k!r} is not a list length; pass a whole number >= 1, e.g. k=10")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise UserError(f"seed={seed!r} is not a whole number; pass e.g. seed=42")
        if filter_seen is not None and not isinstance(filter_seen, (bool, np.bool_)):
            raise UserError(f"filter_seen={filter_seen!r} is not true or false; pass filter_seen=True or False")
        params = {"strategy": strategy, **generation_params}
        built = build_strategy(params, tuple(generation_params), {"k": int(k)})  # run_predict.py's declarations
        if params.get("prefix_sequences"):
            raise UserError("generation_params.prefix_sequences keeps nested lists of a predict run "
                            "(run_predict.py); drop it here")
        return generate(
            self.model, built, train, users, k=int(k), max_length=self.max_length,
            filter_seen=self.filter_seen if filter_seen is None else bool(filter_seen),
            rows=int(params.get("max_rows") or self._rows), seed=int(seed), device=self.device,
            no_repeat=ban_generated(params), precision=params.get("precision") or "float32",
            progress=progress, events=events, generated_events=params.get("generated_events"),
            workers=params.get("workers"),
        )

    def _frame(self, column: str, keys: list, recs: np.ndarray, scores: np.ndarray) -> pd.DataFrame:
        n, k = recs.shape
        return pd.DataFrame({
            column: np.repeat(np.array(keys, dtype=object), k) if n else np.array([], dtype=object),
            "item_id": self.item_ids[recs.reshape(-1) - 1].to_numpy(),
            "rank": np.tile(np.arange(1, k + 1), n),
            "score": scores.reshape(-1).astype(np.float32),
        })


def _histories(histories) -> tuple[list, list[list]]:
    """``(keys, item lists)`` of what :meth:`Recommender.recommend` accepts; one-line errors otherwise."""
    example = "e.g. [[1193, 661, 914]] or {'alice': [1193, 661, 914]}"
    if isinstance(histories, Mapping):
        keys, lists = list(histories), list(histories.values())
    elif isinstance(histories, _SEQUENCE_TYPES):
        lists = list(histories)
        if lists and not any(isinstance(h, _SEQUENCE_TYPES) for h in lists):
            lists = [lists]  # one flat list of item IDs: one history
        keys = list(range(len(lists)))
    else:
        raise UserError(f"histories is a {type(histories).__name__}; pass a list of item-ID lists, {example}")
    if not lists:
        raise UserError(f"no histories given; pass a list of item-ID lists, {example}")
    out = []
    for key, items in zip(keys, lists):
        if not isinstance(items, _SEQUENCE_TYPES):
            raise UserError(f"history {key!r} is {items!r}, not a list of item IDs; pass every history as a list, "
                            f"{example}")
        items = list(items)
        if not items:
            raise UserError(f"history {key!r} is empty; give at least one item ID per history (a user without "
                            "history has nothing to continue: drop it)")
        out.append(items)
    return keys, out


def _positions(index: pd.Index, values: list) -> np.ndarray:
    """Position of each value in ``index`` (-1: not there); numbers given as text or floats match integer IDs."""
    if not len(values):
        return np.zeros(0, dtype=np.int64)
    if pd.api.types.is_numeric_dtype(index.dtype):
        numbers = pd.to_numeric(pd.Series(values, dtype=object).map(_number), errors="coerce")
        whole = numbers.notna().to_numpy() & np.isfinite(numbers.fillna(0).to_numpy(dtype=np.float64))
        out = np.full(len(values), -1, dtype=np.int64)
        if whole.any():
            wanted = numbers[whole].to_numpy(dtype=np.float64)
            integral = wanted == np.floor(wanted)
            found = np.full(len(wanted), -1, dtype=np.int64)
            if integral.any():
                found[integral] = index.get_indexer(wanted[integral].astype(index.dtype))
            out[whole] = found
        return out
    return index.get_indexer(pd.Index([str(v).strip() for v in values], dtype=object))


def _number(value):
    """``value`` as a number when it is one (``"1193"`` -> 1193), else NaN; booleans are not item IDs."""
    if isinstance(value, (bool, np.bool_)):
        return math.nan
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            try:
                return float(text)
            except ValueError:
                return math.nan
    return value if isinstance(value, (int, float, np.integer, np.floating)) else math.nan
