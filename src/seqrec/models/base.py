"""The interface every sequential model implements.

The Lightning module trains through ``encode`` + ``item_logits`` (plus a loss), and the
generation engine only ever calls ``next_item_logits`` with an optional cache from
``new_cache``: no strategy knows which model it runs.
"""

from __future__ import annotations

import torch
from torch import nn


class SequentialModel(nn.Module):
    """Base class: item sequences in, item scores out (item 0 is padding)."""

    n_items: int
    supports_cache: bool = False  # True: new_cache() gives a cache the generation engine can use
    segments: bool = False  # True: a segment embedding marks real (0) and generated (1) inputs (prompt-tuning)
    max_generation_rows: int | None = None  # caps the engine's rows per chunk where larger chunks are slower
    #: True: ``encode(..., last_only=True)`` (no cache) computes the last block for the last position only; the
    #: next item's hidden state without a cache (validation, Top-K) then skips the other positions' last block
    encodes_last_only: bool = False

    def add_segment_embedding(self, dim: int) -> None:
        """A zero-initialised segment embedding (RecGPT): real items are segment 0, items the model generated
        segment 1. At zero it changes nothing, so a model gaining it starts exactly from its pre-trained self.
        Created after the other weights are initialised, so their initialisation is unchanged."""
        self.segment = nn.Embedding(2, dim)
        nn.init.zeros_(self.segment.weight)
        self.segments = True

    def add_features(self, spec, n_tokens: int, dim: int) -> None:
        """Item/event attribute embeddings (``spec`` from :func:`seqrec.data.features.model_spec`), created after
        the other weights are initialised, so a model without features is initialised exactly as before."""
        from seqrec.models.features import FeatureEmbedding

        self.feature_embedding = FeatureEmbedding(spec, n_tokens, dim)

    @property
    def features(self):
        """The :class:`~seqrec.models.features.FeatureEmbedding` (item/event attributes added to each input
        event), or None."""
        return self._modules.get("feature_embedding")

    def feature_embeddings(self, input_ids: torch.Tensor, events: torch.Tensor | None):
        """What the attributes add to the inputs (0 for a model without features); ``events`` ``[B, T, E]``."""
        return 0 if self.features is None else self.features(input_ids, events)

    def scoring_table(self, table: torch.Tensor) -> torch.Tensor:
        """The item table the scores use: ``table``, attribute-aware with ``features.output: attributes``."""
        return table if self.features is None else self.features.output_table(table)

    def segment_embeddings(self, input_ids: torch.Tensor, segments: torch.Tensor | None):
        """What the segment embedding adds to the inputs (0 for a model without one)."""
        if not self.segments:
            return 0
        return self.segment(torch.zeros_like(input_ids) if segments is None else segments.long())

    def encode(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, cache=None
    ) -> torch.Tensor:
        """Hidden states ``[B, T, C]`` for ``input_ids`` ``[B, T]`` (0 = padding)."""
        raise TypeError(f"{type(self).__name__} does not define encode(); training and the default next_item_logits need it")

    def encode_targets(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None, targets: torch.Tensor,
                       **extra) -> torch.Tensor:
        """``[N, C]``: the hidden states of the positions where ``targets`` ``[B, T]`` is True, in row-major order
        (``encode(...)[targets]``; the training loss reads only these). A model that can skip the other positions'
        work overrides it (BERT4Rec: its masked positions)."""
        return self.encode(input_ids, attention_mask, **extra)[targets]

    def item_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Scores over the whole vocabulary ``[..., n_items + 1]`` (column 0 is padding)."""
        raise TypeError(f"{type(self).__name__} does not define item_logits(); training and the default next_item_logits need it")

    def output_embeddings(self) -> torch.Tensor:
        """``[n_items + 1, C]`` matrix with ``item_logits(h) == h @ output_embeddings().T``."""
        raise TypeError(f"{type(self).__name__} does not define output_embeddings(); the fused training losses need it")

    def item_embedding_tables(self) -> list[torch.Tensor]:
        """The item embedding matrices (input and, when separate, output), e.g. to freeze them."""
        return [self.output_embeddings()]

    def new_cache(self, batch_size: int, capacity: int):
        """An empty cache for ``batch_size`` rows and ``capacity`` positions, or None.

        Models without a cache are generated from by re-encoding the whole sequence at
        every step (the generation engine handles both).
        """
        return None

    def history_budget(self, n_new: int) -> int | None:
        """How many history items fit when ``n_new`` items will be appended (None: unlimited)."""
        return None

    @property
    def predicts_events(self) -> bool:
        """True when generated events get predicted event attributes (``features.generated_events: predicted``)."""
        return self.features is not None and self.features.predicts_events

    def predict_events(self, hidden: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Event-attribute codes ``[N, E]`` of the generated items ``tokens`` ``[N]``, from the hidden states that
        scored them ``[N, C]`` (models whose ``predicts_events``)."""
        return self.features.predict_events(hidden, self.output_embeddings()[tokens])

    def event_loss(self, hidden: torch.Tensor, labels: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        """The event-attribute head's training loss (weighted): the true codes ``[N, E]`` of the target items
        ``labels`` ``[N]``, predicted from the hidden states that score them ``[N, C]``."""
        features = self.features
        return features.event_loss_weight * features.event_loss(hidden, self.output_embeddings()[labels], codes)

    def next_item_state(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, cache=None, segments=None,
        events=None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(hidden [B, C], scores [B, n_items + 1])``: the next item's scores after each (left-padded) sequence
        and the hidden state they are read from (event-attribute prediction reads it); ``segments``: 0/1 per input
        (models with a segment embedding); ``events``: event-attribute codes ``[B, T, E]`` (models with event
        features; None: unknown)."""
        hidden = self.next_item_hidden(input_ids, attention_mask, cache, segments, events)
        return hidden, self.item_logits(hidden)

    def next_item_hidden(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, cache=None, segments=None,
        events=None,
    ) -> torch.Tensor:
        """``[B, C]``: the hidden state the next item's scores are read from (``item_logits`` of it; see
        :meth:`next_item_state`). The generation engine calls this and runs the output layer itself, block by block
        (a model that overrides ``next_item_state`` or ``next_item_logits`` instead is scored through those)."""
        extra = {} if segments is None else {"segments": segments}
        if events is not None:
            extra["events"] = events
        if cache is None and self.encodes_last_only:
            extra["last_only"] = True
        return self.encode(input_ids, attention_mask, cache, **extra)[:, -1]

    def next_item_logits(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, cache=None, segments=None,
        events=None,
    ) -> torch.Tensor:
        """Scores of the next item after each (left-padded) sequence: ``[B, n_items + 1]`` (see
        :meth:`next_item_state`)."""
        return self.next_item_state(input_ids, attention_mask, cache, segments, events)[1]
