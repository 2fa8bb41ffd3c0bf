"""What the benchmark scripts share: their data and their model.

Data: the prepared CSV when it exists, else a synthetic ML-1M-sized log (so a benchmark runs anywhere). Model: a
training run's weights (``--train-task``), else random weights of the benchmark's default network.
"""

from __future__ import annotations

import platform
import sys
from pathlib import Path
from typing import Callable


import torch

from seqrec.data.split import SplitData, load_interactions, split_interactions
from seqrec.data.synthetic import make_synthetic


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``), for the line that names the machine of a timing."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_split(path: str | None) -> tuple[SplitData, str]:
    """The split of ``path`` (a prepared CSV), or of a synthetic ML-1M-sized log when it does not exist."""
    if path and Path(path).exists():
        return split_interactions(load_interactions(path)), path
    df = make_synthetic(n_users=6040, n_items=3706, min_len=20, max_len=400, seed=0)
    return split_interactions(df), "synthetic ML-1M-sized log"


def load_model(split: SplitData, train_task: str | None, run_store: str, default: Callable[[int], torch.nn.Module],
               default_label: str) -> tuple[torch.nn.Module, str]:
    """A training run's model (``train_task`` in ``run_store``), else ``default(n_items)`` with seed-0 weights."""
    if train_task:
        from seqrec.models.loading import load_trained
        from seqrec.tracking.run_folder import MODEL_FILE
        from seqrec.tracking.run_store import RunStore

        model, _ = load_trained(RunStore(run_store).path(train_task) / MODEL_FILE, torch.device("cpu"))
        return model.eval(), f"weights of run {train_task}"
    torch.manual_seed(0)
    return default(split.n_items).eval(), f"random {default_label}-sized weights"


def step_budget(data: str, seed: int, steps: int, extra=()) -> list[str]:
    """Training overrides for a convergence probe: ``steps`` optimizer steps, no early stop, no tracking, quiet."""
    return [f"data_path={data}", "logger=none", f"seed={seed}", "trainer_params.max_epochs=null",
            f"trainer_params.max_steps={steps}", f"patience_steps={10 * steps}", "patience=null", "trainer_params.enable_progress_bar=false",
            "trainer_params.enable_model_summary=false", *extra]


def steps_to(history, level: float) -> int | None:
    """Optimizer steps until the first validation at or above ``level`` (None: never within the budget)."""
    above = history[history["val_next_ndcg@10"] >= level]
    return None if above.empty else int(above["step"].iloc[0]) + 1


def train_histories(config: str, base: list[str], variants: dict[str, list[str]]):
    """Train ``config`` once per variant (its extra overrides on top of ``base``) in a temporary run store.

    Yields ``(name, validation history, seconds)``; the history is the run's ``history.csv`` (one row per
    validation: ``step``, ``val_next_ndcg@10``, ...)."""
    import tempfile
    import time

    import pandas as pd

    from seqrec.experiments.plan import compose
    from seqrec import train
    from seqrec.tracking.run_folder import RunFolder

    with tempfile.TemporaryDirectory() as store:
        for name, extra in variants.items():
            cfg = compose(config, [*base, f"run_store={store}", f"task_name=bench_{name}", *extra])
            before = set(Path(store).iterdir())
            started = time.perf_counter()
            train(cfg)
            [run] = set(Path(store).iterdir()) - before
            yield name, pd.read_csv(RunFolder(run).history), time.perf_counter() - started
