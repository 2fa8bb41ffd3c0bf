"""Hydra callback for sweeps: name the run of the best trial in Optuna's ``optimization_results.yaml``.

Each job of a ``--multirun`` writes ``trial.json`` (run ID, objective, overrides) into its folder of the sweep
directory (:func:`seqrec.core.hydra_context.record_trial`). When the sweep ends, :class:`BestTrialRun` finds the trial whose
objective is ``best_value`` and whose overrides carry ``best_params``, and adds ``best_run_id`` (and every trial's
run ID) to ``optimization_results.yaml``: the best setting is then one ``train_task=<ID>`` away.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import yaml
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from seqrec.core.io import atomic_write_text

log = logging.getLogger("seqrec")


def _same(a: Any, b: Any) -> bool:
    try:
        return yaml.safe_load(str(a)) == yaml.safe_load(str(b))
    except yaml.YAMLError:
        return str(a) == str(b)


def best_trial(results: dict, trials: list[dict]) -> dict | None:
    """The trial of ``trials`` that ``results`` (Optuna's best_params / best_value) describes, or None."""
    wanted = results.get("best_params") or {}
    for trial in trials:
        given = dict(o.lstrip("+").split("=", 1) for o in trial.get("overrides", []) if "=" in o)
        if all(key in given and _same(given[key], value) for key, value in wanted.items()) \
                and abs(float(trial["objective"]) - float(results.get("best_value", "nan"))) < 1e-12:
            return trial
    return None


class BestTrialRun(Callback):
    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        folder = Path(str(config.hydra.sweep.dir))
        path = folder / "optimization_results.yaml"
        if not path.is_file():
            return
        trials = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*/trial.json"))]
        results = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        best = best_trial(results, trials)
        if best is None:
            log.warning("could not tell which run is the best trial (%d trial folders)", len(trials))
            return
        results["best_run_id"] = best["run_id"]
        results["trials"] = [{"run_id": t["run_id"], "objective": t["objective"]} for t in trials]
        atomic_write_text(path, yaml.safe_dump(results, sort_keys=False))
        print(f"best trial: run {best['run_id']} (objective {best['objective']:.4f}); {path}")
