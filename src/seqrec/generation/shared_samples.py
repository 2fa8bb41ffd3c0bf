"""Several multi-sequence settings from one sampling pass (``prefix_sequences`` and ``samples_from``).

RRA and RA at N = 10, 20, 50 and 100 all aggregate sampled sequences. A predict run with
``generation_params.prefix_sequences=[10,20,50,100]`` samples its N sequences once and also aggregates, both ways,
the first n of them for each listed n; it keeps those lists, for validation and test users, in its run folder
(``nested.npz``). A later predict run with ``samples_from=<that run>`` and e.g. ``num_return_sequences=20
aggregation=ra`` takes its lists from there instead of sampling again, then scores and reports them like any run.
Its lists are exactly what sampling N = 20 would give if those 20 sequences had been drawn (the random draws differ
from an independent N = 20 run; what the metric estimates does not).

Every rule about the pair is checked here, once: the source is a completed predict run of the same training run,
with the same settings except N, the aggregation and the prefixes (temperature, top-k/top-p, seed, list length,
chunking...), that kept this (aggregation, N), for the same users.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from seqrec.core.errors import UserError
from seqrec.generation.strategies.multisequence import variant_key

# settings that may differ between the source run and the runs that take its samples (where a run is stored and
# logged, how it reports: these do not change the sampled sequences)
MAY_DIFFER = ("task_name", "run_store", "logger.", "progress", "samples_from", "allow_data_change", "bootstrap.", "hydra.",
              "generation_params.num_return_sequences", "generation_params.aggregation",
              "generation_params.prefix_sequences")


def save(path: Path, parts: dict[str, tuple[np.ndarray, dict[str, tuple[np.ndarray, np.ndarray]]]]) -> Path:
    """Write ``{part: (users, {variant: (items, scores)})}`` to ``path`` (the run's ``nested.npz``); returns it."""
    from seqrec.core.io import atomic_write

    arrays = {}
    for part, (users, variants) in parts.items():
        arrays[f"{part}/users"] = np.asarray(users, dtype=np.int64)
        for name, (items, scores) in variants.items():
            arrays[f"{part}/{name}/items"] = np.asarray(items, dtype=np.int32)
            arrays[f"{part}/{name}/scores"] = np.asarray(scores, dtype=np.float32)
    path = Path(path)
    with atomic_write(path) as tmp, open(tmp, "wb") as handle:  # a file object: savez adds no ".npz" to the name
        np.savez_compressed(handle, **arrays)
    return path


class SampleSource:
    """The lists of one (aggregation, N) that run ``run_id`` kept, by part (``val``/``test``)."""

    def __init__(self, run_id: str, arrays: dict[str, np.ndarray], name: str):
        self.run_id, self.arrays, self.name = run_id, arrays, name

    def check(self, split) -> None:
        """Refuse (one line) a source that sampled for other validation or test users than ``split`` has."""
        for part, users in (("val", split.val_users), ("test", split.test_users)):
            self.lists(part, users)

    def lists(self, part: str, users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(items [U, k], scores [U, k])`` for ``users`` (checked to be the source's users, in its order)."""
        kept = self.arrays.get(f"{part}/users")
        if kept is None or not np.array_equal(kept, np.asarray(users)):
            raise UserError(f"samples_from={self.run_id} sampled for other {part} users than this split has (the "
                            "data or split changed since); drop samples_from to sample again")
        return (self.arrays[f"{part}/{self.name}/items"].astype(np.int64),
                self.arrays[f"{part}/{self.name}/scores"].astype(np.float32))


def resolve(run_id: str, kind: str, status: str, nested: Path, stored: dict, asked: dict,
            params: dict) -> SampleSource:
    """The source that ``samples_from=<run_id>`` names (a ``kind`` run with ``status``, its stored config in the
    current format, its ``nested`` file), after checking every rule of the pair against the ``asked`` config and
    its generation ``params`` (one-line errors)."""
    from seqrec.core.config_diff import config_differences

    if kind != "predict" or status != "completed":
        raise UserError(f"samples_from={run_id} is a {status} {kind} run; pass a completed predict run "
                        "made with generation_params.prefix_sequences")
    changed = config_differences(stored, asked, MAY_DIFFER)
    if changed:
        raise UserError(f"samples_from={run_id} sampled with other settings than this run asks for: "
                        f"{changed[0]}; use the same settings or drop samples_from")
    n, how = int(params["num_return_sequences"]), params["aggregation"]
    if n < 2:
        raise UserError("samples_from takes multi-sequence lists; pass generation_params.num_return_sequences >= 2")
    path = Path(nested)
    if not path.is_file():
        raise UserError(f"samples_from={run_id} kept no prefix lists ({path.name} is missing); sample with "
                        f"generation_params.prefix_sequences=[{n}] there, or drop samples_from")
    with np.load(path) as data:
        arrays = {key: data[key] for key in data.files}
    name = variant_key(how, n)
    if f"test/{name}/items" not in arrays:
        kept = sorted({key.split("/")[1] for key in arrays if key.count("/") == 2})
        raise UserError(f"samples_from={run_id} kept {', '.join(kept) or 'no lists'}, not {name} "
                        f"(aggregation {how}, N={n}); pick one of those or drop samples_from")
    return SampleSource(run_id, arrays, name)
