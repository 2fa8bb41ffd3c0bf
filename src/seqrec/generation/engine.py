"""The one generation engine: any model, any strategy, users in bounded chunks.

Users are processed ``max(1, rows // strategy.width)`` at a time, so memory stays
bounded by ``rows x catalogue`` whatever N or the number of beams. Every strategy sees
the same history window: the last ``min(max_length, model budget - k)`` items, so that
the k generated items still fit the model's positions (Top-K included, for a fair
comparison). Seen items are the user's whole training history, not only the window.
"""

from __future__ import annotations

import numpy as np
import torch
from seqrec.core.progress import progress as progress_bar

from seqrec.data.datasets import history_events
from seqrec.data.padding import pad_sequences
from seqrec.data.split import Sequences
from seqrec.core.errors import UserError
from seqrec.generation.base import Strategy
from seqrec.generation.state import Context, GenerationState, decoder_class
from seqrec.models.fused_output import fast_bfloat16
from seqrec.core.registry import engine_setting



def history_length(model, max_length: int, k: int) -> int:
    budget = model.history_budget(k)
    return max_length if budget is None else min(max_length, budget)


def seen_matrix(history: Sequences | None, n_users: int, n_columns: int, device) -> torch.Tensor:
    """``[U, V]`` bool: padding (column 0) and, when given, every item of each user's history."""
    seen = torch.zeros(n_users, n_columns, dtype=torch.bool, device=device)
    seen[:, 0] = True
    if history is not None and len(history.items):
        seen.scatter_(1, pad_sequences(history, side="right").to(device), True)
    return seen


def check_capacity(strategy: Strategy, train: Sequences, users: np.ndarray, n_items: int, k: int, filter_seen: bool):
    """Refuse more beams/sequences (or a longer list) than some user has allowed items."""
    longest = int(train.lengths[users].max()) if filter_seen and len(users) else 0
    allowed = n_items - longest
    if k > allowed:
        raise UserError(
            f"a user has only {allowed} unseen items but {k} recommendations were asked; pass a smaller k"
        )
    if strategy.width > allowed:
        raise UserError(
            f"generation_params.{strategy.width_parameter}={strategy.width} exceeds the {allowed} unseen items some user has; "
            f"use at most {allowed}"
        )


def resolve_precision(precision: str, device: str | torch.device) -> str:
    """``float32`` or ``bfloat16``: what ``precision`` (``auto`` included) means on ``device``."""
    engine_setting("precision").check_value(precision)  # the declared rule (generation/engine_config.py)
    if precision == "auto":
        return "bfloat16" if fast_bfloat16(torch.device(device)) else "float32"
    return precision


@torch.no_grad()
def generate(
    model,
    strategy: Strategy,
    train: Sequences,
    users: np.ndarray,
    k: int = 10,
    max_length: int = 128,
    filter_seen: bool = True,
    rows: int = 1024,
    seed: int = 42,
    device: str | torch.device = "cpu",
    use_cache: bool = True,
    no_repeat: bool = True,
    precision: str = "float32",
    desc: str | None = None,
    progress: bool = True,
    events: list[Sequences] | None = None,
    variants: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
    generated_events: str | None = "model",
) -> tuple[np.ndarray, np.ndarray]:
    """Recommend ``k`` items to each of ``users`` (indices into ``train``) with ``strategy``.

    Returns item ids ``[U, k]`` and scores ``[U, k]`` in the order of ``users``. The same
    ``seed`` gives the same recommendations (on the same device and chunking).
    ``no_repeat=False`` lets a sequence repeat items (only for comparisons with HF ``generate``).
    ``precision``: ``float32``; ``bfloat16`` runs the model's matrix products in bf16 (autocast;
    softmax, sampling and aggregation stay fp32); ``auto``: bf16 where the hardware runs it natively.
    ``events``: event-attribute codes parallel to ``train`` (features=items_events); generated events get the
    unknown code.
    ``variants``: a dict to receive the lists a strategy produces besides its main one (multi-sequence with
    ``prefix_sequences``), by name, as ``(items [U, k], scores [U, k])`` in the order of ``users``.
    ``generated_events``: ``model`` (or None): a model trained with ``features.generated_events=predicted`` gives
    generated events its head's codes; ``unknown``: every generated event gets the unknown code (an ablation).
    """
    model.eval()
    device = torch.device(device)
    bf16 = resolve_precision(precision, device) == "bfloat16"
    users = np.asarray(users, dtype=np.int64)
    check_capacity(strategy, train, users, model.n_items, k, filter_seen)
    window = history_length(model, max_length, k)
    generator = torch.Generator(device=device).manual_seed(seed)
    rows = min(rows, getattr(model, "max_generation_rows", None) or rows)  # e.g. BERT4Rec: memory-bound beyond
    per_chunk = max(1, rows // strategy.width)
    engine_setting("generated_events").check_value(generated_events)  # the declared rule (engine_config.py)
    Decoder = decoder_class(model, use_cache)
    predict_events = generated_events != "unknown" and bool(getattr(model, "predicts_events", False))
    items_out, scores_out, extra_out = [], [], {}
    bar = progress_bar(len(users), desc or strategy.describe(), unit="user", enabled=progress)  # lines off a terminal
    for start in range(0, len(users), per_chunk):
        chunk = users[start : start + per_chunk]
        history = train.select(chunk)
        input_ids = pad_sequences(history, length=window, side=Decoder.padding_side).to(device)
        seen = seen_matrix(history if filter_seen else None, len(chunk), model.n_items + 1, device)
        extra = {} if not events else {
            "events": history_events(events, chunk, input_ids.shape[1], Decoder.padding_side).to(device)}
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            decoder = Decoder(model, input_ids, input_ids != 0, n_new=k, predict_events=predict_events, **extra)
            ctx = Context(k=k, seen=seen, ban_generated=no_repeat, generator=generator)
            state = GenerationState(decoder, ctx)
            items, scores = strategy.generate(state)
        items_out.append(items.cpu())
        scores_out.append(scores.float().cpu())
        for name, (extra_items, extra_scores) in state.variants.items():
            extra_out.setdefault(name, []).append((extra_items.cpu(), extra_scores.float().cpu()))
        bar.update(len(chunk))
    bar.close()
    if not items_out:
        return np.zeros((0, k), dtype=np.int64), np.zeros((0, k), dtype=np.float32)
    if variants is not None:
        variants.update({name: (torch.cat([i for i, _ in parts]).numpy(), torch.cat([s for _, s in parts]).numpy())
                         for name, parts in extra_out.items()})
    return torch.cat(items_out).numpy(), torch.cat(scores_out).numpy()

