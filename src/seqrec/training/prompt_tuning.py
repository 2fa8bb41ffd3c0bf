"""RecGPT's personalized prompt-tuning: training sequences augmented with the model's own predictions.

Each training batch is rebuilt on the fly, without gradients, by the model being tuned: its greedy (arg-max)
predictions come from the one generation engine (:func:`seqrec.generation.engine.generate`: batched, KV-cached,
the items a row has seen banned), and are marked as *generated* (segment 1) for the model's segment embedding.

* ``replace_last`` (RecGPT's default): the last ``P`` real inputs of each window are replaced by ``P`` items
  generated from the real items before them; the targets stay the real next items. ``[a0 a1 a2 a3 a4]`` with
  targets ``[a1 .. a5]`` becomes ``[a0 a1 a2 g1 g2]`` (P = 2), ``g1, g2`` generated after ``a0 a1 a2``.
* ``insert``: ``P`` generated items after every real item, each group generated from the real items up to and
  including the one it follows; a real item's target is the next real item, generated positions have none. The
  augmented window keeps the last ``T // (1 + P)`` real items of a ``T``-long window, so it is no longer. All groups
  of a batch come from one prefill of its windows: a shared-prefix KV cache in which each row sees its window cut
  at its own item (:class:`RaggedPrefixDecoder`), driven by the engine's state and greedy strategy.

``none`` is the control: the same fine-tuning stage (loss, learning rate, budget) on unchanged windows, to tell
the effect of the prompts from that of training on.

No generated item depends on any item at or after its own position (RecGPT's code generates from a rotated
window in which the replaced items are visible; ``tests/test_prompt_tuning.py`` checks ours against a slow
reference). Either padding side is accepted; the augmented batch is right-padded.
"""

from __future__ import annotations

import numpy as np
import torch

from seqrec.data.sequences import Sequences

MODES = ("replace_last", "insert", "none")


def greedy_prompts(model, contexts: Sequences, n: int, max_length: int, rows: int = 4096) -> torch.Tensor:
    """``[len(contexts), n]`` arg-max continuations of each context (its items and earlier prompts banned)."""
    from seqrec.generation.base import build_strategy
    from seqrec.generation.engine import generate

    device = next(model.parameters()).device
    was_training = model.training
    try:
        items, _ = generate(model, build_strategy({"strategy": "greedy"}), contexts, np.arange(len(contexts.lengths)),
                            k=n, max_length=max_length, rows=rows, device=device, progress=False)
    finally:
        model.train(was_training)
    return torch.from_numpy(items).to(device)


def _real_items(ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row's real (non-padding) items in order, flat, and how many each row has."""
    mask = ids != 0
    return ids[mask], mask.sum(1)


class PromptAugmenter:
    """Rebuilds a causal training batch (``input_ids``, ``labels``) with ``prompt_length`` generated items per
    window (``replace_last``) or per real item (``insert``); adds ``segments`` (1 on generated inputs)."""

    def __init__(self, mode: str = "replace_last", prompt_length: int = 1, max_rows: int = 4096,
                 freeze_item_embeddings: bool = False):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        if prompt_length < 1:
            raise ValueError(f"prompt_length must be >= 1, got {prompt_length}")
        self.mode, self.prompt_length, self.max_rows = mode, int(prompt_length), int(max_rows)
        self.freeze_item_embeddings = bool(freeze_item_embeddings)  # applied by the training run to the model

    def __call__(self, model, batch: dict) -> dict:
        if self.mode == "none":  # the control: the same fine-tuning (loss, lr, budget) without prompts
            return {**batch, "segments": torch.zeros_like(batch["input_ids"])}
        augment = self.replace_last if self.mode == "replace_last" else self.insert
        with torch.no_grad():
            return {**batch, **augment(model, batch["input_ids"], batch["labels"])}

    # ------------------------------------------------------------------ replace_last
    def replace_last(self, model, ids: torch.Tensor, labels: torch.Tensor) -> dict:
        P = self.prompt_length
        mask = ids != 0
        n_real = mask.sum(1)
        rank = mask.cumsum(1) - 1  # index of a real input among its row's real inputs
        usable = n_real > P  # at least one real item to generate from
        prompt = mask & (rank >= (n_real - P)[:, None]) & usable[:, None]
        context = mask & ~prompt & usable[:, None]
        segments = prompt.long()
        out = ids.clone()
        if bool(usable.any()):
            lengths = context.sum(1)[usable].cpu().numpy()
            contexts = Sequences.from_lengths(ids[context].cpu().numpy(), lengths)
            out[prompt] = greedy_prompts(model, contexts, P, ids.shape[1], self.max_rows).reshape(-1)
        return {"input_ids": out, "labels": labels, "segments": segments}

    # ------------------------------------------------------------------ insert
    def insert(self, model, ids: torch.Tensor, labels: torch.Tensor) -> dict:
        P, (B, T) = self.prompt_length, ids.shape
        keep = max(1, T // (1 + P))
        mask = ids != 0
        n_real = mask.sum(1)
        flat, flat_labels = ids[mask], labels[mask]
        kept = torch.minimum(n_real, torch.tensor(keep, device=ids.device))  # real items kept per row
        offsets = torch.cat([n_real.new_zeros(1), n_real.cumsum(0)])
        # (row, j) for the kept real items: their index among the row's real items is n_real - kept + j
        rows = torch.repeat_interleave(torch.arange(B, device=ids.device), kept)
        j = torch.arange(int(kept.sum()), device=ids.device) - torch.repeat_interleave(kept.cumsum(0) - kept, kept)
        index = (n_real - kept)[rows] + j
        out = ids.new_zeros(B, keep * (1 + P))
        new_labels, segments = torch.zeros_like(out), torch.zeros_like(out)
        at = j * (1 + P)
        out[rows, at], new_labels[rows, at] = flat[offsets[rows] + index], flat_labels[offsets[rows] + index]
        if len(rows):
            # group (row, j) is generated after the row's real items 0..index: one prefill of each (right-padded)
            # window, every group a cut of it (limits), P greedy steps for all groups at once
            real = ids.new_zeros(B, T)
            real[torch.repeat_interleave(torch.arange(B, device=ids.device), n_real),
                 torch.arange(len(flat), device=ids.device) - torch.repeat_interleave(offsets[:-1], n_real)] = flat
            limits = torch.ones(B, keep, dtype=torch.long, device=ids.device)  # unused groups: any valid cut
            limits[rows, j] = index + 1
            generated = ragged_greedy(model, real, limits, P)  # [B * keep, P]
            generated = generated.view(B, keep, P)[rows, j]
            for p in range(P):
                out[rows, at + 1 + p] = generated[:, p]
                segments[rows, at + 1 + p] = 1
        return {"input_ids": out, "labels": new_labels, "segments": segments}


class RaggedPrefixDecoder:
    """A generation-engine decoder for many continuations of one window: each window (right-padded) is prefilled
    once into a KV cache, and row ``(b, w)`` continues window ``b`` after its first ``limits[b, w]`` items."""

    padding_side = "right"

    def __init__(self, model, input_ids: torch.Tensor, limits: torch.Tensor, n_new: int):
        self.model = model
        B, T = input_ids.shape
        W = limits.shape[1]
        cache = model.new_cache(B, T)
        hidden = model.encode(input_ids, input_ids != 0, cache)
        last = (limits - 1).clamp_min(0)  # the last visible item of each row
        picked = hidden.gather(1, last[..., None].expand(B, W, hidden.shape[-1]))
        self.first = model.item_logits(picked.reshape(B * W, -1))
        self.cache = cache.shared(n_new)
        self.cache.expand(W)
        self.cache.limit_prefix(limits.reshape(-1))

    def expand(self, width: int) -> None:
        raise ValueError("rows of a ragged prefix are fixed at construction")

    def reorder(self, rows: torch.Tensor) -> None:
        self.cache.reorder(rows)

    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        extra = {"segments": torch.ones_like(tokens[:, None])} if self.model.segments else {}
        return self.model.next_item_logits(tokens[:, None], None, self.cache, **extra)


@torch.no_grad()
def ragged_greedy(model, windows: torch.Tensor, limits: torch.Tensor, n: int) -> torch.Tensor:
    """``[B * W, n]`` greedy continuations of every cut ``limits[b, w]`` of every right-padded window ``b``, through
    the engine's state and greedy strategy; each row bans its visible items and what it generated."""
    from seqrec.generation.base import build_strategy
    from seqrec.generation.state import Context, GenerationState

    budget = model.history_budget(n)
    if budget is not None and windows.shape[1] > budget:  # room for n new positions: drop the oldest items
        drop = windows.shape[1] - budget
        windows, limits = windows[:, drop:], (limits - drop).clamp_min(1)
    was_training = model.training
    model.eval()
    try:
        B, T = windows.shape
        W = limits.shape[1]
        visible = torch.arange(T, device=windows.device)[None, None, :] < limits[..., None]  # [B, W, T]
        seen = torch.zeros(B * W, model.n_items + 1, dtype=torch.bool, device=windows.device)
        seen[:, 0] = True
        seen.scatter_(1, torch.where(visible, windows[:, None, :], 0).reshape(B * W, T), True)
        decoder = RaggedPrefixDecoder(model, windows, limits, n)
        state = GenerationState(decoder, Context(k=n, seen=seen, ban_generated=True))
        items, _ = build_strategy({"strategy": "greedy"}).generate(state)
    finally:
        model.train(was_training)
    return items


def load_pretrained(model, path) -> None:
    """Initialise ``model`` (with a segment embedding) from a pre-trained run's ``model.pt``: every weight must
    match; only the new segment embedding may be missing (it starts at zero, so the model starts as pre-trained)."""
    from seqrec.core.errors import UserError
    from seqrec.models.loading import load_weights

    state = load_weights(path)["state_dict"]
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or set(missing) - {"segment.weight"}:
        raise UserError(f"{path} does not fit the model ({', '.join([*missing, *unexpected][:3])}); "
                        "pretrained_task must be a run of the same model and settings")


def freeze_item_embeddings(model) -> None:
    """Keep the item tables (input and output) at their pre-trained values."""
    for table in model.item_embedding_tables():
        table.requires_grad_(False)
