"""What Hydra's job context says: the command line this process runs, and the folder of a ``--multirun`` job."""

from __future__ import annotations

from pathlib import Path

from seqrec.core.io import atomic_write_json


def command_line() -> tuple[str, list[str]] | None:
    """``(config name, overrides)`` of the Hydra command line this process runs, or None outside a Hydra app
    (configs composed in code): the one reader of Hydra's recorded overrides."""
    try:
        from hydra.core.hydra_config import HydraConfig

        if not HydraConfig.initialized():
            return None
        hydra_cfg = HydraConfig.get()
        return hydra_cfg.job.config_name, list(hydra_cfg.overrides.task)
    except Exception:  # noqa: BLE001 -- no Hydra run context: nothing was given on a command line
        return None


def command_line_keys() -> set[str] | None:
    """The keys the command line set (``+``/``~`` stripped), or None outside a Hydra app."""
    given = command_line()
    return None if given is None else {o.split("=", 1)[0].lstrip("+~") for o in given[1]}


def record_trial(run_id: str, objective: float) -> None:
    """In a ``--multirun`` job, write ``trial.json`` (run ID, objective, overrides) into the job's folder of the
    sweep directory, so a sweep's trial folders say which run each trial is (:mod:`seqrec.experiments.sweep`)."""
    given = command_line()
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        if given is None or HydraConfig.get().mode != RunMode.MULTIRUN:
            return
        folder = Path(HydraConfig.get().runtime.output_dir)
    except Exception:  # noqa: BLE001 -- no Hydra job context
        return
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_json(folder / "trial.json", {"run_id": run_id, "objective": float(objective), "overrides": given[1]})
