"""The one generation engine: any model, any strategy, users in bounded chunks.

Users are processed ``max(1, rows // strategy.width)`` at a time, so memory stays
bounded by ``rows x catalogue`` whatever N or the number of beams. Every strategy sees
the same history window: the last ``min(max_length, model budget - k)`` items, so that
the k generated items still fit the model's positions (Top-K included, for a fair
comparison). Seen items are the user's whole training history, not only the window.

Chunks run ``workers`` at a time on a CPU, each in its own thread with one intra-op thread: small batched
operations scale poorly over a CPU's threads, independent chunks do not. Randomness stays that of one generator
drawn chunk after chunk: each chunk starts from the state the chunks before it leave, found ahead by replaying
their draws (:meth:`Strategy.draw_shapes`) and checked when the chunk ends, so the items are those of
``workers=1`` with one thread, bit for bit.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

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


def resolve_workers(workers: int | None, device: str | torch.device, chunks: int) -> int:
    """Chunks in flight at once: ``workers`` (None: the process's intra-op threads on a CPU, 1 on a GPU), at most
    the number of chunks."""
    engine_setting("workers").check_value(workers)  # the declared rule (generation/engine_config.py)
    on_cpu = torch.device(device).type == "cpu"
    if workers is None:
        workers = torch.get_num_threads() if on_cpu else 1
    if workers > 1 and not on_cpu:
        raise UserError(f"generation_params.workers={workers} runs chunks in CPU threads; on {torch.device(device).type} "
                        "chunks run one at a time: drop it or pass generation_params.workers=1")
    return max(1, min(int(workers), chunks))


def chunk_generators(generator: torch.Generator, strategy: Strategy, sizes: list[int], n_columns: int, k: int):
    """The generator state each chunk starts from (and, last, the state after them all): the states one generator
    passes through drawing the chunks' samples in order, found by replaying their draws' shapes."""
    replay = torch.Generator(device=generator.device)
    replay.set_state(generator.get_state())
    states = [replay.get_state()]
    for size in sizes:
        for shape in strategy.draw_shapes(size, n_columns, k):
            torch.empty(shape, device=generator.device).exponential_(generator=replay)  # what multinomial draws
        states.append(replay.get_state())
    return states


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
    workers: int | None = 1,
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
    ``workers``: chunks generated at once, each in a thread of its own with one intra-op thread (None: the
    process's threads on a CPU, 1 on a GPU); the items do not depend on it.
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
    chunks = [users[start : start + per_chunk] for start in range(0, len(users), per_chunk)]
    n_workers = resolve_workers(workers, device, len(chunks))

    def run_chunk(chunk: np.ndarray, chunk_generator: torch.Generator):
        history = train.select(chunk)
        input_ids = pad_sequences(history, length=window, side=Decoder.padding_side).to(device)
        seen = seen_matrix(history if filter_seen else None, len(chunk), model.n_items + 1, device)
        extra = {} if not events else {
            "events": history_events(events, chunk, input_ids.shape[1], Decoder.padding_side).to(device)}
        with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):  # (per thread)
            decoder = Decoder(model, input_ids, input_ids != 0, n_new=k, predict_events=predict_events, **extra)
            ctx = Context(k=k, seen=seen, ban_generated=no_repeat, generator=chunk_generator)
            state = GenerationState(decoder, ctx)
            items, scores = strategy.generate(state)
        return (items.cpu(), scores.float().cpu(),
                {name: (i.cpu(), s.float().cpu()) for name, (i, s) in state.variants.items()})

    bar = progress_bar(len(users), desc or strategy.describe(), unit="user", enabled=progress)  # lines off a terminal
    results = _run_chunks(run_chunk, chunks, generator, strategy, model.n_items + 1, k, n_workers, bar)
    items_out = [r[0] for r in results]
    scores_out = [r[1] for r in results]
    extra_out: dict = {}
    for _, _, chunk_variants in results:
        for name, pair in chunk_variants.items():
            extra_out.setdefault(name, []).append(pair)
    bar.close()
    if not items_out:
        return np.zeros((0, k), dtype=np.int64), np.zeros((0, k), dtype=np.float32)
    if variants is not None:
        variants.update({name: (torch.cat([i for i, _ in parts]).numpy(), torch.cat([s for _, s in parts]).numpy())
                         for name, parts in extra_out.items()})
    return torch.cat(items_out).numpy(), torch.cat(scores_out).numpy()



def _run_chunks(run_chunk, chunks, generator, strategy: Strategy, n_columns: int, k: int, workers: int, bar):
    """``run_chunk`` over ``chunks`` in order with ``generator`` (``workers`` 1), or ``workers`` at a time, each chunk
    with a generator at the state the chunks before it leave (:func:`chunk_generators`), checked against the replay
    when it ends; ``generator`` ends where drawing them in order would leave it. One intra-op thread meanwhile
    (restored after)."""
    if workers == 1:
        results = []
        for chunk in chunks:
            results.append(run_chunk(chunk, generator))
            bar.update(len(chunk))
        return results
    states = chunk_generators(generator, strategy, [len(c) for c in chunks], n_columns, k)

    def one(j: int):
        g = torch.Generator(device=generator.device)
        g.set_state(states[j])
        out = run_chunk(chunks[j], g)
        if not torch.equal(g.get_state(), states[j + 1]):
            raise RuntimeError(f"strategy {type(strategy).__name__} drew other random numbers than its draw_shapes "
                               "declares, so chunks in parallel would not sample as in order; fix draw_shapes "
                               "(generation/base.py) or pass generation_params.workers=1")
        return out

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = []
            for j, out in enumerate(pool.map(one, range(len(chunks)))):
                results.append(out)
                bar.update(len(chunks[j]))
    finally:
        torch.set_num_threads(threads)
    generator.set_state(states[-1])
    return results
