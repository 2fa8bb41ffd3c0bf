"""Event-level embeddings: what an interaction's attributes add to its item-id embedding, shared by every model.

An input event is an item (id embedding, the model's own table) plus

* its **item attributes**, looked up by item id in code tables the model holds as buffers (so a generated item
  brings its genres and year with it, and a reloaded run needs no attribute file): a categorical attribute adds
  one embedding, a multi-valued one (genres) the mean of its values' embeddings (``EmbeddingBag``); code 0 (no
  value) adds nothing;
* its **event attributes** (e.g. the rating), given per position: one embedding per attribute, code 0 being a
  learned *unknown* value -- what a generated event gets, since nobody rated it. Training replaces each event's
  attributes by unknown with probability ``event_dropout``, so that value is trained.

The sum is one vector per event, added to the item embedding (not a stream of attribute tokens). ``output:
attributes`` also scores items by the attribute-aware representation (item table + item attributes). The
module is created after the model's own weights, so a model without features is initialised exactly as before.

``generated_events: predicted`` replaces the unknown value of a generated event by a prediction: a small head
reads the hidden state that scored the item together with the chosen item's output vector and gives each event
attribute's most likely code (argmax; no extra randomness). It is trained beside the item loss, on the true
attributes of every target event (``event_loss_weight`` x the mean of one cross-entropy per attribute; unknown
codes are left out).
"""

from __future__ import annotations

from typing import Mapping

import torch
from torch import nn


class FeatureEmbedding(nn.Module):
    """``spec``: ``{"items": [{name, kind, cardinality, width}], "events": [{name, cardinality}], "event_dropout": p,
    "output": "ids" | "attributes", "generated_events": "unknown" | "predicted", "event_loss_weight": w}`` (as
    :meth:`seqrec.data.features.Features.model_spec` builds it; specs stored before the last two keys mean unknown)."""

    def __init__(self, spec: Mapping, n_tokens: int, dim: int):
        super().__init__()
        self.item_specs = [dict(s) for s in spec.get("items", ())]
        self.event_specs = [dict(s) for s in spec.get("events", ())]
        # checked where the spec is made (seqrec.data.features_config.parse_features)
        self.event_dropout = float(spec.get("event_dropout", 0.0))
        self.output = spec.get("output", "ids")
        self.item_tables = nn.ModuleList()
        for s in self.item_specs:
            # the code table of this attribute: row = token id, filled by set_item_codes (or a loaded state dict)
            self.register_buffer(f"codes_{s['name']}", torch.zeros(n_tokens, int(s["width"]), dtype=torch.long))
            if s["kind"] == "multi":
                self.item_tables.append(nn.EmbeddingBag(int(s["cardinality"]), dim, mode="mean", padding_idx=0))
            else:
                self.item_tables.append(nn.Embedding(int(s["cardinality"]), dim, padding_idx=0))
        self.event_tables = nn.ModuleList(nn.Embedding(int(s["cardinality"]), dim) for s in self.event_specs)
        for table in [*self.item_tables, *self.event_tables]:
            nn.init.normal_(table.weight, std=0.02)
            if table.padding_idx is not None:
                with torch.no_grad():
                    table.weight[table.padding_idx].zero_()
        self.predicts_events = spec.get("generated_events", "unknown") == "predicted" and bool(self.event_specs)
        self.event_loss_weight = float(spec.get("event_loss_weight", 1.0))
        if self.predicts_events:  # created last: the tables above are initialised as without it
            self.event_head = nn.Sequential(nn.Linear(2 * dim, dim), nn.GELU())
            self.event_out = nn.ModuleList(nn.Linear(dim, int(s["cardinality"])) for s in self.event_specs)

    @property
    def n_events(self) -> int:
        return len(self.event_specs)

    def set_item_codes(self, codes: Mapping[str, torch.Tensor]) -> None:
        """Fill the code tables: ``codes[name]`` ``[rows, width]`` for token ids ``0..rows-1`` (rows beyond, such
        as BERT4Rec's ``[MASK]``, keep code 0)."""
        for s in self.item_specs:
            table = getattr(self, f"codes_{s['name']}")
            values = torch.as_tensor(codes[s["name"]], dtype=torch.long)
            if values.shape[1] != table.shape[1] or values.shape[0] > table.shape[0]:
                raise ValueError(f"codes of {s['name']} have shape {tuple(values.shape)}, the table "
                                 f"{tuple(table.shape)}")
            table.zero_()
            table[: values.shape[0]] = values

    def item_part(self, ids: torch.Tensor) -> torch.Tensor | float:
        """Sum of the item-attribute embeddings of ``ids`` (any shape), ``[*ids.shape, dim]``."""
        out: torch.Tensor | float = 0.0
        flat = ids.reshape(-1)
        for s, table in zip(self.item_specs, self.item_tables):
            codes = getattr(self, f"codes_{s['name']}")[flat]
            vec = table(codes) if s["kind"] == "multi" else table(codes[:, 0])
            out = out + vec.view(*ids.shape, -1)
        return out

    def event_part(self, events: torch.Tensor | None, shape: torch.Size) -> torch.Tensor | float:
        """Sum of the event-attribute embeddings, ``events`` ``[B, T, n_events]`` (None: all unknown)."""
        if not self.event_specs:
            return 0.0
        if events is None:
            events = torch.zeros(*shape, self.n_events, dtype=torch.long, device=self.event_tables[0].weight.device)
        if self.training and self.event_dropout > 0:  # the unknown value is what generated events will get
            drop = torch.rand(events.shape[:-1], device=events.device) < self.event_dropout
            events = events.masked_fill(drop[..., None], 0)
        out: torch.Tensor | float = 0.0
        for j, table in enumerate(self.event_tables):
            out = out + table(events[..., j])
        return out

    def event_logits(self, hidden: torch.Tensor, item_vectors: torch.Tensor) -> list[torch.Tensor]:
        """Scores of each event attribute's codes ``[N, cardinality]`` for the events whose item has output vector
        ``item_vectors`` ``[N, C]``, read from the hidden states that scored those items ``[N, C]``."""
        z = self.event_head(torch.cat([hidden, item_vectors.to(hidden.dtype)], -1))
        return [out(z) for out in self.event_out]

    def predict_events(self, hidden: torch.Tensor, item_vectors: torch.Tensor) -> torch.Tensor:
        """``[N, n_events]`` codes of generated events: each attribute's most likely known code (never 0)."""
        # code 0, unknown, is what prediction replaces: the argmax runs over codes 1.. only
        return torch.stack([logits[:, 1:].float().argmax(-1) + 1 for logits in self.event_logits(hidden, item_vectors)],
                           -1)

    def event_loss(self, hidden: torch.Tensor, item_vectors: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        """Mean over attributes of the cross-entropy of the true codes ``[N, n_events]`` (unknown codes, 0, are left
        out; an attribute with none known adds 0)."""
        total = hidden.new_zeros((), dtype=torch.float32)
        for j, logits in enumerate(self.event_logits(hidden, item_vectors)):
            target = codes[:, j]
            known = (target > 0).sum().clamp_min(1)  # a tensor: no device sync
            total = total + nn.functional.cross_entropy(logits.float(), target, ignore_index=0, reduction="sum") / known
        return total / len(self.event_out)

    def forward(self, input_ids: torch.Tensor, events: torch.Tensor | None = None) -> torch.Tensor | float:
        return self.item_part(input_ids) + self.event_part(events, input_ids.shape)

    def output_table(self, table: torch.Tensor) -> torch.Tensor:
        """The scoring table: ``table`` (rows = item ids), plus the item attributes with ``output: attributes``."""
        if self.output != "attributes" or not self.item_specs:
            return table
        ids = torch.arange(table.shape[0], device=table.device)
        return table + self.item_part(ids)
