"""The paper's experiment as a plan of ordinary tracked runs: train each model, then generate with each strategy.

Every step is a normal ``run_train`` / ``run_predict`` run (ClearML task + run-store folder), composed
from the same Hydra configs as the command line.  A run records the step it implements
(``experiment_step`` in its ``run.json``); a later invocation reuses every completed run whose step
matches exactly and whose stored ``config.yaml`` still agrees with what the step composes now (an
edited config file makes the step run again), so an interrupted experiment resumes where it stopped
and a finished one is only re-collected.  :mod:`seqrec.evaluation.report` turns the collected rows into tables and plots.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from pathlib import Path
from typing import Callable, Iterable, Mapping, Optional, Sequence

from omegaconf import DictConfig, OmegaConf

from seqrec.core import registry
from seqrec.core.errors import UserError
from seqrec.core.paths import stored_path
from seqrec.core.registry import GridOptions, StrategySpec
from seqrec.tracking.run_folder import RunFolder
from seqrec.tracking.run_store import JOB_LOGS, RunRecord, RunStore

log = logging.getLogger(__name__)

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"  # src/configs
#: plug-ins' config folders (os.pathsep-separated), searched after CONFIG_DIR (src/hydra_plugins/seqrec_searchpath)
PLUGIN_CONFIG_PATH = "SEQREC_CONFIG_PATH"
STEP_FIELD = "experiment_step"
# keys that may differ between a stored run and the step composed now without making the run stale
# (where it is stored and logged, progress output); a trailing "." covers a whole group
REUSE_MAY_DIFFER = ("run_store", "logger.", "progress", "trainer_params.enable_progress_bar",
                    "trainer_params.enable_model_summary")

def model_configs() -> dict[str, str]:
    """Model label -> training config, for every registered model (:mod:`seqrec.core.registry`), in table order."""
    return {m.label: m.train_config for m in registry.components("model") if m.label and m.train_config}


def config_exists(name: str) -> bool:
    """Whether ``--config-name=<name>`` composes: ``src/configs/<name>.yaml`` or one in a plug-in's config folder."""
    folders = [CONFIG_DIR, *map(Path, filter(None, os.environ.get(PLUGIN_CONFIG_PATH, "").split(os.pathsep)))]
    return any((folder / f"{name}.yaml").is_file() for folder in folders)


def strategy_grid(
    beams: Sequence[int] = (2, 3),
    temperatures: Sequence[float] = (0.3, 0.6),
    sequences: Sequence[int] = (10, 20, 50, 100),
    sampling_temperature: float = 0.3,
    top_k: Optional[int] = 50,
    two_stage_first: Optional[int] = 9,
    paper_settings: Sequence[tuple[str, float, int, Optional[int]]] = GridOptions.paper_settings,
) -> list[StrategySpec]:
    """Every registered strategy's grid (Top-K, greedy, beam search, one sampled sequence, RRA / RA over
    ``temperatures`` x ``sequences`` and the paper's best ML-20M settings, two-stage, and any plug-in's)."""
    return registry.strategy_grid(GridOptions(
        tuple(beams), tuple(temperatures), tuple(sequences), sampling_temperature, top_k, two_stage_first,
        tuple(paper_settings),
    ))


def sample_groups(specs: Sequence[StrategySpec]) -> dict[StrategySpec, tuple[StrategySpec, tuple[int, ...]]]:
    """Multi-sequence settings that differ only in N and the aggregation share one sampling pass
    (:mod:`seqrec.generation.shared_samples`): each such spec -> (its group's source, every N of the group). The source is the
    group's largest N (RRA when it has both); it samples once, keeping both aggregations of each N's first
    sequences, and the others take theirs with ``samples_from``. Settings alone in their group are left out."""
    groups: dict[tuple, list[StrategySpec]] = {}
    for spec in specs:
        params = dict(spec.params)
        if int(params.get("num_return_sequences") or 1) < 2:
            continue
        key = (spec.config, tuple(kv for kv in spec.params if kv[0] not in ("num_return_sequences", "aggregation")))
        groups.setdefault(key, []).append(spec)
    out = {}
    for members in groups.values():
        if len(members) < 2:
            continue
        ns = sorted({int(dict(m.params)["num_return_sequences"]) for m in members})
        largest = [m for m in members if int(dict(m.params)["num_return_sequences"]) == ns[-1]]
        source = next((m for m in largest if dict(m.params).get("aggregation") == "rra"), largest[0])
        out.update({m: (source, tuple(ns)) for m in members})
    return out


def rra_spec(temperature: float, sequences: int, top_k: int) -> StrategySpec:
    """Multi-sequence generation aggregated by reciprocal rank (the grid's RRA step for these settings)."""
    return StrategySpec("rra", "temperature", (("temperature", float(temperature)), ("top_k", int(top_k)),
                                                ("num_return_sequences", int(sequences)), ("aggregation", "rra")))


@dataclasses.dataclass(frozen=True)
class FeaturesPlan:
    """The attributes stage of the experiment (``reproduce_paper.py --features``): each model is trained again with
    each attribute ``variant`` (the ``features`` config group: ``items``, ``items_events``) on every seed, and every
    training run, the ids-only one of the main plan included, generates with Top-K and multi-sequence RRA. Labels:
    ``<Model>+<variant>``; the ids-only run is the reference (:mod:`seqrec.evaluation.features_report`)."""

    variants: tuple[str, ...] = ("items", "items_events")
    rra: tuple[float, int, int] = (0.3, 20, 50)  # temperature, sequences, top_k

    @staticmethod
    def label(model: str, variant: str) -> str:
        return f"{model}+{variant}"

    def strategies(self) -> list[StrategySpec]:
        return [StrategySpec("topk", "predict"), rra_spec(*self.rra)]

    def base_strategies(self, plan: Sequence[StrategySpec]) -> list[StrategySpec]:
        """The strategies the ids-only run's own plan lacks."""
        return [s for s in self.strategies() if s not in plan]


@dataclasses.dataclass(frozen=True)
class RecGPTPlan:
    """RecGPT's stage of the experiment (``reproduce_paper.py --recgpt``): each of ``models``' training runs is
    prompt-tuned (with the config its declaration names, ``prompt_tune_config``) in the ``main`` variant on every seed
    and in the ``ablation`` variants on the first seed; the pre-trained and tuned runs generate with Top-K, two-stage
    recall (N = ``first_stages``) and multi-sequence RRA. The ``none`` variant is the control: the same fine-tuning
    without prompts. ``models`` defaults to the registered models that declare a prompt-tuning config and
    ``recgpt_by_default`` (GPT, SASRec and any such plug-in)."""

    models: tuple[str, ...] = dataclasses.field(default_factory=lambda: tuple(registry.recgpt_models()))
    main: tuple[tuple[str, int], ...] = (("replace_last", 1), ("none", 1))
    ablation: tuple[tuple[str, int], ...] = (("replace_last", 2), ("replace_last", 3), ("insert", 1), ("insert", 2),
                                             ("insert", 3))
    first_stages: tuple[int, ...] = (8, 9)
    rra: tuple[float, int, int] = (0.3, 20, 50)  # temperature, sequences, top_k
    train_overrides: tuple[str, ...] = ()

    @staticmethod
    def label(model: str, mode: str, length: int) -> str:
        return f"{model}-PT-{mode}-P{length}"

    def variants(self, first_seed: bool) -> list[tuple[str, int]]:
        return [*self.main, *(self.ablation if first_seed else ())]

    def strategies(self) -> list[StrategySpec]:
        return [StrategySpec("topk", "predict"),
                *(StrategySpec("two_stage", "two_stage", (("first_stage", int(f)),)) for f in self.first_stages),
                rra_spec(*self.rra)]

    def base_strategies(self, plan: Sequence[StrategySpec]) -> list[StrategySpec]:
        """The RecGPT strategies the pre-trained run's own plan lacks."""
        return [s for s in self.strategies() if s not in plan]


@dataclasses.dataclass(frozen=True)
class Unit:
    """One independent chain of the experiment's steps: a model's ids-only training on a seed with everything that
    depends on it, or (``variant``) its training with an attribute variant and that stage's strategies."""

    seed_index: int
    seed: int
    model: str
    variant: Optional[str] = None

    def describe(self) -> str:
        return f"{self.model}{f' + {self.variant}' if self.variant else ''} seed {self.seed}"

    def log_name(self, dataset: str) -> str:
        return f"{dataset}_{self.model}{f'+{self.variant}' if self.variant else ''}_s{self.seed}.log"


@dataclasses.dataclass
class Outcome:
    """A finished step: its run and whether it was reused."""

    model: str
    spec: Optional[StrategySpec]
    run: RunRecord
    reused: bool
    seconds: float
    seed: int = 42

    def metrics(self) -> dict:
        return RunFolder(self.run.path).read_metrics()


def compose(config_name: str, overrides: Iterable[str]) -> DictConfig:
    """Compose ``config_name`` with ``overrides`` exactly as the entry points do."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    if GlobalHydra.instance().is_initialized():
        return hydra_compose(config_name=config_name, overrides=list(overrides))
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return hydra_compose(config_name=config_name, overrides=list(overrides))


class Experiment:
    """Train ``models`` on ``data_path`` and generate with ``strategies``, reusing finished runs.

    ``reuse`` maps a model label to an existing completed training run to use instead of training;
    ``model_strategies`` replaces ``strategies`` for the models it names (e.g. a smaller grid for a
    model without a KV cache).
    ``train_overrides`` / ``predict_overrides`` are extra Hydra overrides for every run of that kind
    (``model_overrides`` per model label).
    ``share_samples``: multi-sequence settings that differ only in N and the aggregation take their lists from one
    sampling pass (:func:`sample_groups`); False samples each setting independently.
    ``train_configs`` (model label -> training config) replaces the registered models' labels and configs, e.g. the
    leave-one-out cross-check's ``SASRec+ -> SASRecPlus_loo_train`` (``scripts/cross_check.py``); ``model_seeds``
    gives the models it names their own training seeds instead of ``seeds``.
    """

    def __init__(
        self,
        data_path: str | Path,
        dataset: str,
        run_store: str | Path = "runs",
        models: Sequence[str] = (),
        strategies: Sequence[StrategySpec] = (),
        train_overrides: Sequence[str] = (),
        model_overrides: Optional[Mapping[str, Sequence[str]]] = None,
        predict_overrides: Sequence[str] = (),
        reuse: Optional[Mapping[str, str]] = None,
        model_strategies: Optional[Mapping[str, Sequence[StrategySpec]]] = None,
        logger: str = "clearml_offline",
        seeds: Sequence[int] = (42,),
        report_only: bool = False,
        recgpt: Optional[RecGPTPlan] = None,
        features: Optional[FeaturesPlan] = None,
        share_samples: bool = True,
        train_fn: Optional[Callable[[DictConfig], float]] = None,
        predict_fn: Optional[Callable[[DictConfig], float]] = None,
        train_configs: Optional[Mapping[str, str]] = None,
        model_seeds: Optional[Mapping[str, Sequence[int]]] = None,
    ) -> None:
        # what a worker process needs to build the same experiment (``run(jobs=...)``)
        self._kwargs = {k: v for k, v in locals().items() if k not in ("self", "__class__")}
        self.model_configs = dict(train_configs) if train_configs else model_configs()
        for label, config in self.model_configs.items():
            if train_configs and not config_exists(config):
                raise UserError(f"{label}'s training config {config}.yaml is neither in {CONFIG_DIR} nor in "
                                f"${PLUGIN_CONFIG_PATH}")
        models = list(models) or list(self.model_configs)
        unknown = [m for m in models if m not in self.model_configs]
        if unknown:
            raise UserError(f"unknown model {unknown[0]!r}; choose from {', '.join(self.model_configs)}")
        # as a run records it (relative to the repo when inside it): a step's identity is then the same on every
        # machine the repo is cloned to, so runs made elsewhere (a GPU machine) are reused here
        self.data_path = stored_path(data_path)
        self.dataset = dataset
        self.run_store = str(Path(run_store).resolve())
        self.store = RunStore(self.run_store)
        self.models = list(models)
        self.strategies = list(strategies) or strategy_grid()
        self.model_strategies = {k: list(v) for k, v in (model_strategies or {}).items()}  # per-model replacement
        for model in self.model_strategies:
            if model not in self.model_configs:
                raise UserError(f"--reduced-grid {model}: unknown model; choose from {', '.join(self.model_configs)}")
        self.train_overrides = list(train_overrides)
        self.model_overrides = {k: list(v) for k, v in (model_overrides or {}).items()}
        self.predict_overrides = list(predict_overrides)
        self.reuse = dict(reuse or {})
        for model, run_id in self.reuse.items():
            if model not in self.model_configs:
                raise UserError(f"--reuse {model}={run_id}: unknown model; choose from {', '.join(self.model_configs)}")
            record = self.store.info(run_id)
            if record.kind != "train" or record.status != "completed":
                raise UserError(f"--reuse {model}={run_id}: that run is a {record.status} {record.kind} run; "
                                "pass a completed training run")
        self.logger = logger
        self.seeds = [int(seed) for seed in seeds]
        self.model_seeds = {m: [int(seed) for seed in v] for m, v in (model_seeds or {}).items()}
        self.report_only = report_only  # collect finished steps only; a step not run yet is skipped, not run
        self.recgpt = recgpt
        self.features = features
        self.share_samples = share_samples
        if features is not None:
            known = sorted(p.stem for p in (CONFIG_DIR / "features").glob("*.yaml") if p.stem != "none")
            if not features.variants or any(v not in known for v in features.variants):
                raise UserError(f"--features {' '.join(features.variants)}: give one or more attribute variants from "
                                f"{', '.join(known)} (ids only, features=none, is the reference every model has)")
        if recgpt is not None:
            tunable = registry.prompt_tunable()
            for model in recgpt.models:
                if model not in tunable:
                    what = "declares no prompt-tuning config (prompt_tune_config)" if model in self.model_configs \
                        else "is not a registered model"
                    raise UserError(f"--recgpt: {model} {what}; choose among {' '.join(tunable) or 'none registered'}")
                if not config_exists(tunable[model]):
                    raise UserError(f"--recgpt: {model}'s prompt-tuning config {tunable[model]}.yaml is neither in "
                                    f"{CONFIG_DIR} nor in ${PLUGIN_CONFIG_PATH}; add it there or fix the declaration")
                if model not in self.models:
                    raise UserError(f"--recgpt {model}: the experiment does not train {model}; add it to --models")
        for given in (self.seeds, *self.model_seeds.values()):
            if not given or len(set(given)) != len(given):
                raise UserError(f"--seeds {' '.join(map(str, given))}: give one or more distinct training seeds")
        for model in self.model_seeds:
            if model not in self.models:
                raise UserError(f"seeds for {model}: the experiment does not train {model}")
        if any(len(self.seeds_of(model)) > 1 for model in self.reuse):
            raise UserError("--reuse names one training run per model; use it with a single --seeds value")
        if train_fn is None or predict_fn is None:
            from seqrec.evaluation.predict import predict
            from seqrec.training.train import train

            train_fn = train_fn or train
            predict_fn = predict_fn or predict
        self.train_fn, self.predict_fn = train_fn, predict_fn

    def seeds_of(self, model: str) -> list[int]:
        """The training seeds of ``model``: its own (``model_seeds``) or the experiment's."""
        return self.model_seeds.get(model, self.seeds)

    # ------------------------------------------------------------------ steps
    def _common(self) -> list[str]:
        return [f"run_store={self.run_store}", f"logger={self.logger}"]

    def train_step(self, model: str, seed: int = 42) -> tuple[str, list[str]]:
        overrides = [f"data_path={self.data_path}", f"task_name={self.dataset}_{model}_s{seed}_train", f"seed={seed}",
                     *self.train_overrides, *self.model_overrides.get(model, [])]
        return self.model_configs[model], overrides

    def predict_step(self, model: str, train_id: str, spec: StrategySpec, seed: int = 42,
                     extra: Sequence[str] = ()) -> tuple[str, list[str]]:
        overrides = [f"train_task={train_id}", f"task_name={self.dataset}_{model}_s{seed}_{spec.slug}",
                     *spec.overrides(), *extra, *self.predict_overrides]
        return spec.config, overrides

    @staticmethod
    def _key(config: str, overrides: Sequence[str]) -> str:
        return json.dumps([config, sorted(overrides)])

    def _finished_steps(self) -> dict[str, RunRecord]:
        """Completed runs by the step they implement: one pass over the store (newest wins)."""
        return {r.extra[STEP_FIELD]: r for r in self.store.list_runs()
                if r.status == "completed" and STEP_FIELD in r.extra}

    def _folders(self) -> set[str]:
        root = Path(self.run_store)
        return {p.name for p in root.iterdir() if RunFolder(p).record_file.is_file()} if root.is_dir() else set()

    def _run(self, kind: str, config: str, overrides: list[str], done: dict[str, RunRecord]):
        """``(record, reused, seconds)`` of the step; ``done`` (step -> finished run) is updated."""
        key = self._key(config, overrides)
        cfg = compose(config, [*overrides, *self._common()])
        if key in done and done[key].kind == kind:
            changed = stale(done[key], _as_run(cfg))
            if not changed:
                return done[key], True, 0.0
            log.warning("%s: run %s no longer matches the config (%s); %s",
                        cfg.task_name, done[key].task_id, "; ".join(changed[:3]),
                        "skipped (report only)" if self.report_only else "running it again")
        if self.report_only:
            return None, False, 0.0
        before = self._folders()
        started = time.perf_counter()
        (self.train_fn if kind == "train" else self.predict_fn)(cfg)
        seconds = time.perf_counter() - started
        new = [r for r in map(self.store.info, sorted(self._folders() - before))
               if r.kind == kind and r.task_name == cfg.task_name]
        if len(new) != 1:
            raise UserError(f"could not find the {kind} run just made for {cfg.task_name} in {self.run_store}")
        self.store.update(new[0].task_id, **{STEP_FIELD: key})
        done[key] = self.store.info(new[0].task_id)
        return done[key], False, seconds

    # ------------------------------------------------------------------ plan
    def units(self) -> list[Unit]:
        """The experiment's independent chains of steps, in plan order: per seed and model the ids-only chain
        (training, its strategies, the RecGPT stage), then one chain per attribute variant."""
        out = []
        seeds = list(dict.fromkeys([*self.seeds, *(s for m in self.models for s in self.seeds_of(m))]))
        for seed in seeds:
            for model in self.models:
                if seed not in self.seeds_of(model):
                    continue
                i = self.seeds_of(model).index(seed)
                out.append(Unit(i, seed, model))
                out.extend(Unit(i, seed, model, variant) for variant in (self.features.variants if self.features else ()))
        return out

    def _plans(self) -> dict[str, list[StrategySpec]]:
        return {model: self.model_strategies.get(model, self.strategies) for model in self.models}

    def _total_steps(self) -> int:
        plans, recgpt, features = self._plans(), self.recgpt, self.features
        total = 0
        for unit in self.units():
            if unit.variant is not None:  # a training with attributes and that stage's strategies
                total += 1 + len(features.strategies())
                continue
            plan = plans[unit.model]
            total += 1 + len(plan) + (len(features.base_strategies(plan)) if features is not None else 0)
            if recgpt is not None and unit.model in recgpt.models:
                total += len(recgpt.base_strategies(plan))
                total += len(recgpt.variants(unit.seed_index == 0)) * (1 + len(recgpt.strategies()))
        return total

    def run(self, on_step: Optional[Callable[[Outcome, int, int], None]] = None, jobs: int = 1,
            log_dir: str | Path | None = None) -> list[Outcome]:
        """Run (or reuse) every step; ``on_step(outcome, done, total)`` is called after each.

        ``jobs`` > 1 runs up to that many chains (:meth:`units`) at once, each in its own process with
        :func:`threads_per_chain` threads, writing its output to a log file in ``log_dir`` (default
        ``<run store>/logs``):
        small networks use two threads poorly, so two one-thread chains finish sooner than one after the other
        (``scripts/bench/bench_jobs.py``). Outcomes come back in plan order either way.
        """
        if jobs < 1:
            raise UserError(f"--jobs {jobs}: give 1 or more chains to run at once")
        self.missing: list[str] = []
        self._done, self._total, self._on_step = 0, self._total_steps(), on_step
        units = self.units()
        if jobs == 1 or self.report_only or len(units) == 1:
            finished = self._finished_steps()
            return [o for unit in units for o in self.run_unit(unit, finished)]
        return self._run_parallel(units, jobs, Path(log_dir) if log_dir else Path(self.run_store) / JOB_LOGS)

    def run_unit(self, unit: Unit, finished: dict[str, RunRecord]) -> list[Outcome]:
        """Run (or reuse) one chain's steps (``finished``: step -> completed run, updated); its outcomes."""
        outcomes: list[Outcome] = []
        model, seed, plan = unit.model, unit.seed, self._plans()[unit.model]
        if unit.variant is not None:  # a training with attributes and the attribute stage's strategies
            features = self.features
            label = features.label(model, unit.variant)
            step = self.features_step(model, unit.variant, seed)
            with_attributes = self._collect(outcomes, label, None, *self._run("train", *step, finished), seed,
                                            features.strategies())
            if with_attributes is not None:
                self._predict_all(outcomes, label, with_attributes, features.strategies(), seed, finished)
            return outcomes
        if model in self.reuse:
            record, reused, seconds = self.store.info(self.reuse[model]), True, 0.0
        else:
            record, reused, seconds = self._run("train", *self.train_step(model, seed), finished)
        trained = self._collect(outcomes, model, None, record, reused, seconds, seed, plan)
        if trained is None:
            return outcomes
        self._predict_all(outcomes, model, trained, plan, seed, finished)
        if self.features is not None:
            self._predict_all(outcomes, model, trained, self.features.base_strategies(plan), seed, finished)
        recgpt = self.recgpt
        if recgpt is None or model not in recgpt.models:
            return outcomes
        self._predict_all(outcomes, model, trained, recgpt.base_strategies(plan), seed, finished)
        for mode, length in recgpt.variants(unit.seed_index == 0):
            label = recgpt.label(model, mode, length)
            step = self.prompt_step(model, trained.run.task_id, mode, length, seed)
            tuned = self._collect(outcomes, label, None, *self._run("train", *step, finished), seed,
                                  recgpt.strategies())
            if tuned is not None:
                self._predict_all(outcomes, label, tuned, recgpt.strategies(), seed, finished)
        return outcomes

    def _run_parallel(self, units: list[Unit], jobs: int, log_dir: Path) -> list[Outcome]:
        import multiprocessing
        import threading
        from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

        threads = threads_per_chain(jobs)
        log_dir.mkdir(parents=True, exist_ok=True)
        context = multiprocessing.get_context("spawn")  # a fresh interpreter per worker: no forked torch threads
        manager = context.Manager()
        events = manager.Queue()
        log.warning("running %d chains, %d at a time with %d thread%s each; their output goes to %s", len(units),
                    jobs, threads, "s" if threads > 1 else "", log_dir)

        def relay():  # the workers' finished steps, numbered here as they arrive
            while (outcome := events.get()) is not None:
                self._done += 1
                if self._on_step:
                    self._on_step(outcome, self._done, self._total)

        listener = threading.Thread(target=relay, daemon=True)
        listener.start()
        results: dict[Unit, list[Outcome]] = {}
        try:
            with ProcessPoolExecutor(jobs, mp_context=context, initializer=_init_worker, initargs=(threads,)) as pool:
                waiting = list(units)  # handed to the pool only when a worker is free, so a failure leaves them unrun
                futures: dict = {}
                running: set = set()
                failed = None
                while waiting or running:
                    while waiting and failed is None and len(running) < jobs:
                        unit = waiting.pop(0)
                        future = pool.submit(_unit_in_worker, self._kwargs, unit,
                                             str(log_dir / unit.log_name(self.dataset)), events)
                        futures[future] = unit
                        running.add(future)
                    done, running = wait(running, return_when=FIRST_COMPLETED)
                    newly = next((f for f in done if f.exception() is not None), None)
                    if failed is None and newly is not None:
                        failed = newly
                        log.warning("%s failed; %d chain(s) not started are skipped, and the %d running finish first "
                                    "(their runs are kept; Ctrl-C stops them)", futures[failed].describe(),
                                    len(waiting), len(running))
                        waiting = []
                if failed is not None:
                    raise failed.exception()
                for future, unit in futures.items():
                    outcomes, missing = future.result()
                    results[unit] = outcomes
                    self.missing.extend(missing)
        finally:
            events.put(None)
            listener.join()
            manager.shutdown()
        return [o for unit in units for o in results[unit]]

    def features_step(self, model: str, variant: str, seed: int) -> tuple[str, list[str]]:
        """``model``'s training step with the attribute ``variant`` (config group ``features``)."""
        config, overrides = self.train_step(model, seed)
        label = self.features.label(model, variant)
        return config, [*(f"task_name={self.dataset}_{label}_s{seed}_train" if o.startswith("task_name=") else o
                          for o in overrides), f"features={variant}"]

    def _collect(self, outcomes, model, spec, record, reused, seconds, seed, plan=()) -> Optional[Outcome]:
        """Record one finished step (or note it missing, with the ``plan`` that depends on it)."""
        self._done += 1
        if record is None:  # report only, not run yet (a training run: its strategies cannot have run either)
            what = f"training and {len(plan)} strategies" if spec is None else f"{spec.strategy} {spec.label}".strip()
            self.missing.append(f"{model} seed {seed}: {what}")
            self._done += len(plan) if spec is None else 0
            return None
        outcome = Outcome(model, spec, record, reused, seconds, seed)
        outcomes.append(outcome)
        if self._on_step:
            self._on_step(outcome, self._done, self._total)
        return outcome

    def _predict_all(self, outcomes, model, trained: Outcome, specs, seed, finished) -> None:
        shared = sample_groups(specs) if self.share_samples else {}
        sources: dict = {}  # a group's source runs when the group's first setting is reached; outcomes keep plan order

        def source(spec):
            if spec not in sources:
                prefixes = f"generation_params.prefix_sequences=[{','.join(map(str, shared[spec][1]))}]"
                sources[spec] = self._run("predict", *self.predict_step(model, trained.run.task_id, spec, seed,
                                                                        [prefixes]), finished)
            return sources[spec]

        for spec in specs:
            if spec not in shared:
                done = self._run("predict", *self.predict_step(model, trained.run.task_id, spec, seed), finished)
            elif shared[spec][0] == spec:
                done = source(spec)
            else:
                record = source(shared[spec][0])[0]
                done = (None, False, 0.0) if record is None else self._run("predict", *self.predict_step(
                    model, trained.run.task_id, spec, seed, [f"samples_from={record.task_id}"]), finished)
            self._collect(outcomes, model, spec, *done, seed)

    def prompt_step(self, model: str, pretrained_id: str, mode: str, length: int, seed: int) -> tuple[str, list[str]]:
        """RecGPT prompt-tuning of ``model``'s training run ``pretrained_id`` (the config its declaration names)."""
        config = registry.prompt_tunable()[model]
        label = self.recgpt.label(model, mode, length)
        overrides = [f"data_path={self.data_path}", f"task_name={self.dataset}_{label}_s{seed}_train", f"seed={seed}",
                     f"pretrained_task={pretrained_id}", f"prompt_tuning.mode={mode}",
                     f"prompt_tuning.prompt_length={length}", *self.train_overrides, *self.recgpt.train_overrides]
        return config, overrides


def threads_per_chain(jobs: int) -> int:
    """The threads each of ``jobs`` chains gets: torch's own count (the cores, or ``OMP_NUM_THREADS`` where a user
    or a cluster's scheduler set it) shared out, at least one."""
    import torch

    return max(1, torch.get_num_threads() // jobs)


def load_package() -> None:
    """Import every module of this package now. A chain worker lives as long as its command (hours) and would
    otherwise import a module the first time a chain needs it: source edited in the meantime would then run beside
    the start's own (a mixed version that fails or, worse, silently computes something else). A module whose
    optional dependency is missing is left for the step that needs it to report."""
    import importlib
    import pkgutil

    package = Path(__file__).resolve().parents[1]  # src/seqrec, without importing the root package (a layer above)
    for module in pkgutil.walk_packages([str(package)], "seqrec."):
        try:
            importlib.import_module(module.name)
        except ImportError:
            pass


def _init_worker(threads: int) -> None:
    """A chain worker's start: its share of the cores, the whole package imported (:func:`load_package`), and the
    same quiet library output as the parent."""
    import torch

    from seqrec.cli.entry import quiet_third_party

    torch.set_num_threads(threads)
    load_package()
    quiet_third_party()
    # records at INFO, as in the parent: each run's run.log (a root handler) gets what it gets there; the chain's log
    # (this process's stderr) gets this package's progress lines (epochs, strategies) and libraries' warnings
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(lambda record: record.levelno >= logging.WARNING or record.name.startswith("seqrec"))
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    root.addHandler(handler)


def _unit_in_worker(kwargs: dict, unit: Unit, log_path: str, events) -> tuple[list[Outcome], list[str]]:
    """Run one chain in a worker process, its output appended to ``log_path``; each finished step is also put on
    ``events`` as it happens (the parent prints it). Returns the chain's outcomes and its missing steps."""
    import contextlib
    import os
    import sys
    from datetime import datetime

    import torch

    experiment = Experiment(**kwargs)
    experiment.missing, experiment._done, experiment._total = [], 0, 0
    experiment._on_step = lambda outcome, done, total: events.put(outcome)
    with open(log_path, "a", encoding="utf-8") as out, contextlib.ExitStack() as restore:
        threads = torch.get_num_threads()
        out.write(f"--- {datetime.now().isoformat(timespec='seconds')} {unit.describe()} (pid {os.getpid()}, "
                  f"{threads} thread{'s' if threads > 1 else ''})\n")
        out.flush()
        for stream, fd in ((sys.stdout, 1), (sys.stderr, 2)):  # at the descriptor: C libraries' output too
            stream.flush()
            saved = os.dup(fd)
            os.dup2(out.fileno(), fd)
            restore.callback(os.close, saved)
            restore.callback(os.dup2, saved, fd)
            restore.callback(stream.flush)
        try:
            outcomes = experiment.run_unit(unit, experiment._finished_steps())
        except BaseException:
            import traceback

            traceback.print_exc()  # into the chain's log; the parent reports the error itself
            raise
    return outcomes, experiment.missing


def _as_run(cfg: DictConfig) -> DictConfig:
    """``cfg`` as a run would store it: a prompt-tuning run takes its network from its pre-trained run."""
    if cfg.get("pretrained_task") is None:
        return cfg
    import copy

    from seqrec.config.checks import inherit_pretrained

    cfg = copy.deepcopy(cfg)
    inherit_pretrained(cfg)
    return cfg


def run_counts(n_predict: int, trainings: Sequence[tuple[str, int]]) -> str:
    """``21 predict runs, 1 model x 3 seeds (3 training runs)``: what an experiment ran, counting models (not the
    training runs, one per model and seed); ``trainings``: (model, seed) of each training run."""
    models, seeds = {model for model, _ in trainings}, {seed for _, seed in trainings}

    def count(n: int, word: str) -> str:
        return f"{n} {word}{'' if n == 1 else 's'}"

    return (f"{count(n_predict, 'predict run')}, {count(len(models), 'model')} x {count(len(seeds), 'seed')} "
            f"({count(len(trainings), 'training run')})")


def stale(record: RunRecord, cfg: DictConfig) -> list[str]:
    """How ``cfg`` differs from the config stored with ``record`` (empty: the run is still valid).

    Keys the stored config lacks (options added since) and :data:`REUSE_MAY_DIFFER` don't count;
    an unreadable ``config.yaml`` makes the run stale.
    """
    from seqrec.config.upgrade import load_run_config
    from seqrec.core.config_diff import config_differences

    try:
        stored = load_run_config(record.path, record.kind)  # in the current format: an old run is still recognised
    except Exception as exc:  # missing or damaged: run the step again
        return [f"config.yaml unreadable ({type(exc).__name__})"]
    current = OmegaConf.to_container(cfg, resolve=True)
    if isinstance(current.get("data_path"), str):  # as the run recorded it (stored_path), whatever folder names it
        current["data_path"] = stored_path(current["data_path"])
    return config_differences(stored, current, REUSE_MAY_DIFFER, new_keys_ok=True)
