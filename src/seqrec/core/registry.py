"""Components declare themselves: their typed settings, defaults and rules live beside their code.

A *component* is anything a config chooses by name or ``_target_``: a model, a loss, a training dataset, an
optimizer, an LR schedule, a tracker, a generation strategy. Each one is declared by a small, torch-free
module next to its code, named ``<module>_config.py`` (``seqrec/models/gpt2.py`` ->
``seqrec/models/gpt2_config.py``), which calls :func:`register` with a :class:`Component`:

* its **settings** (:class:`~seqrec.core.settings.Setting`: type, range or allowed values, default, example),
  relative to the config section it lives in (:data:`SECTIONS`); the section is closed: any other key is an
  error naming the closest declared one;
* the constructor arguments the pipeline passes itself (``passed``), which a config may not set;
* cross-key **rules** (``rule(values, cfg) -> message or None``);
* for models: the seed code bases' hyper-parameter names (``aliases``, e.g. gSASRec's ``gbce_t``), reference
  numbers, an Optuna search space, whether the network is causal (``kv_cache``), its train and predict configs and
  the config that prompt-tunes one of its runs (RecGPT's stage of the experiment, ``prompt_tune_config``);
* for strategies: the ``generation_params`` they read, whether they sample, their experiment grid, and which of
  their parameters name a setting in the report's tables (``label_params``, with optional short names).

:mod:`seqrec.config.checks` checks a composed config against these declarations only (each rule lives once), before
torch is imported; the paper experiment, the report and the hyper-parameter search read models and strategies
from here instead of lists.

**Finding declarations.** Built-in ones: every ``*_config.py`` under ``src/seqrec`` (a file-system walk, no
package imports). A plug-in outside ``src/`` is found (1) from a config's ``_target_``: for
``pkg.mod.Class`` the modules ``pkg.mod_config`` and then ``pkg.mod`` are imported until one registers it
(a plug-in may declare in the implementation module itself: that costs a torch import, nothing else), or
(2) by listing its modules in ``$SEQREC_PLUGINS`` (comma-separated) or in the ``seqrec.plugins`` entry-point
group of an installed package: needed for strategies (chosen by name) and for the experiment to see it.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import importlib.util
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Mapping, Optional, Sequence

from seqrec.core.errors import UserError
from omegaconf import OmegaConf

from seqrec.core.settings import Setting

#: where a component's settings live in a composed config, by kind
SECTIONS = {
    "model": "model_params",
    "loss": "seqrec_module.loss",
    "train_dataset": "train_dataset",
    "optimizer": "seqrec_module.optimizer",
    "scheduler": "seqrec_module.scheduler",
    "tracker": "logger",
    "strategy": "generation_params",
    "stage": "prompt_tuning",
}
PLUGINS_ENV = "SEQREC_PLUGINS"
ENTRY_POINTS = "seqrec.plugins"

#: ``rule(values, cfg)``: values are the section's (defaults filled in), cfg the whole composed config (or None
#: where a component is built outside a run); returns an error message, or None when the rule holds
Rule = Callable[[Mapping[str, Any], Any], Optional[str]]


@dataclass(frozen=True)
class Component:
    """The declaration of one component: what a config may set for it, and how it is checked."""

    kind: ClassVar[str] = ""
    name: str
    target: str  # the class a config's ``_target_`` names (dotted path)
    settings: tuple[Setting, ...] = ()
    passed: tuple[str, ...] = ()  # constructor arguments the pipeline passes itself (a config may not set them)
    rules: tuple[Rule, ...] = ()
    doc: str = ""

    @property
    def section(self) -> str:
        return SECTIONS[self.kind]

    def setting(self, leaf: str) -> Setting | None:
        return next((s for s in self.settings if s.key == leaf), None)

    def keys(self) -> list[str]:
        return [s.key for s in self.settings]

    def defaults(self) -> dict[str, Any]:
        return {s.key: s.default for s in self.settings if s.has_default}

    def check(self, values: Mapping[str, Any], cfg: Any = None, section: str | None = None,
              extra: Sequence[str] = ()) -> dict[str, Any]:
        """``values`` checked against the declaration (closed keys, types and ranges, rules); returns them with
        the declared defaults filled in. ``extra``: keys the section may also hold (handled elsewhere)."""
        section = self.section if section is None else section
        for key in values:
            if key == "_target_" or key in extra:
                continue
            if key in self.passed:
                raise UserError(f"{section}.{key} is set by run_train.py itself; remove it")
            if self.setting(key) is None:
                allowed = sorted(self.keys())
                near = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
                raise UserError(
                    f"{section}.{key} is not a setting of {self.target.rpartition('.')[2]}; its settings: "
                    f"{', '.join(allowed) or 'none'}" + (f"; did you mean {section}.{near[0]}?" if near else "")
                )
        out = self.defaults()
        for s in self.settings:
            if s.key in values:
                s.at(section).check_value(values[s.key])
                out[s.key] = values[s.key]
        for rule in self.rules:
            message = rule(out, cfg)
            if message:
                raise UserError(message)
        return out


@dataclass(frozen=True)
class Reference:
    """A published or measured result to print beside ours: ``(map, ndcg, recall)`` at K = 10 on test users."""

    dataset: str
    strategy: str
    params: str
    source: str
    values: tuple[float, float, float]


@dataclass(frozen=True)
class Model(Component):
    """A trainable next-item model: its network settings (``model_params``) and how the experiment uses it."""

    kind: ClassVar[str] = "model"
    label: str = ""  # the name in tables and ``--models`` (GPT, SASRec, ...)
    train_config: str = ""  # src/configs/<train_config>.yaml
    predict_config: str = "predict"
    kv_cache: bool = True  # causal: generation may reuse keys/values (where the class has supports_cache), and a run
    # may be prompt-tuned; False (bidirectional): the engine re-runs the whole window every step
    features: bool = False  # takes features= (item/event attributes, seqrec.models.features) from the pipeline
    aliases: Mapping[str, str] = field(default_factory=dict)  # seed code-base name -> the setting it means
    special: Mapping[str, Callable[[Any, dict], None]] = field(default_factory=dict)  # seed names with logic
    references: tuple[Reference, ...] = ()
    search_space: Mapping[str, str] = field(default_factory=dict)  # Optuna sweeper expressions, by config key
    passed: tuple[str, ...] = ("n_items",)
    order: int = 100  # position in the experiment and its tables
    #: src/configs/<prompt_tune_config>.yaml (or a plug-in's config folder) prompt-tunes a training run of this model
    #: (RecGPT, ``pretrained_task=<ID>``); "": it cannot be prompt-tuned (needs a causal model, ``kv_cache``)
    prompt_tune_config: str = ""
    recgpt_by_default: bool = True  # with a prompt_tune_config: in ``reproduce_paper.py --recgpt``'s default models


@dataclass(frozen=True)
class StrategySpec:
    """One generation setting of the experiment: a predict config plus ``generation_params`` overrides."""

    strategy: str  # family: topk, greedy, beam, sampling, rra, ra, two_stage
    config: str  # predict config name (model-neutral)
    params: tuple[tuple[str, object], ...] = ()

    @property
    def label(self) -> str:
        """Human-readable parameters, e.g. ``T=0.3 top_k=50 N=20``: the ``label_params`` its strategy declares
        (:func:`params_label`), the report's ``params`` column."""
        return params_label(self.strategy, dict(self.params))

    @property
    def slug(self) -> str:
        text = "_".join([self.strategy] + [f"{k}{v}" for k, v in self.params if k != "aggregation"])
        return text.replace("num_return_sequences", "N").replace("temperature", "T").replace("num_beams", "B")

    def overrides(self) -> list[str]:
        return [f"generation_params.{k}={'null' if v is None else v}" for k, v in self.params]


@dataclass(frozen=True)
class GridOptions:
    """The knobs of the paper experiment's strategy grid (``scripts/reproduce_paper.py`` flags)."""

    beams: tuple[int, ...] = (2, 3)
    temperatures: tuple[float, ...] = (0.3, 0.6)
    sequences: tuple[int, ...] = (10, 20, 50, 100)
    sampling_temperature: float = 0.3
    top_k: Optional[int] = 50
    two_stage_first: Optional[int] = 9
    #: the paper's best ML-20M settings (PROTOCOL.md): (aggregation, temperature, sequences, top_k)
    paper_settings: tuple[tuple[str, float, int, Optional[int]], ...] = (("rra", 0.6, 30, 20), ("ra", 0.7, 30, 50))


@dataclass(frozen=True)
class Strategy(Component):
    """A generation strategy: the ``generation_params`` it reads and its place in the experiment."""

    kind: ClassVar[str] = "strategy"
    samples: Optional[bool] = False  # what ``do_sample`` must be (None: either)
    families: tuple[str, ...] = ()  # report families it produces (default: its name)
    order: int = 100  # position in the experiment grid and report tables
    grid: Optional[Callable[[GridOptions], list[StrategySpec]]] = None  # experiment settings (None: none)
    #: the parameters that tell its settings apart in the report's tables, in label order: a key of its settings, or
    #: ``(key, short name)`` (``("temperature", "T")`` prints ``T=0.3``); None: every declared setting, full names
    label_params: Optional[tuple[str | tuple[str, str], ...]] = None
    #: the report family of a run's ``generation_params`` (for strategies that produce several); None: its name
    family_of: Optional[Callable[[Mapping[str, Any]], str]] = None

    def produces(self) -> tuple[str, ...]:
        return self.families or (self.name,)

    def label_names(self) -> dict[str, str]:
        """Label parameter -> the name printed for it, in label order."""
        chosen = self.keys() if self.label_params is None else self.label_params
        pairs = [(p, p) if isinstance(p, str) else tuple(p) for p in chosen]
        return {key: short for key, short in pairs}

    def label(self, params: Mapping[str, Any]) -> str:
        """``name=value`` for each of its label parameters that ``params`` holds, e.g. ``T=0.3 top_k=50 N=20``."""
        return " ".join(f"{short}={params[key]}" for key, short in self.label_names().items() if key in params)

    def family(self, params: Mapping[str, Any]) -> str:
        """The report family of a run made with ``params`` (e.g. ``rra`` for multi-sequence sampling)."""
        return self.name if self.family_of is None else self.family_of(params)


#: generation_params every strategy reads: the engine's (declared in seqrec/generation/engine_config.py)
ENGINE_SETTINGS: list[Setting] = []

_REGISTRY: dict[str, dict[str, Component]] = {kind: {} for kind in SECTIONS}
_DISCOVERED = False


def register(component: Component) -> Component:
    """Add ``component`` to the registry (a later declaration of the same kind and name replaces it)."""
    if component.kind not in _REGISTRY:
        raise ValueError(f"unknown component kind {component.kind!r}")
    names = [s.key for s in component.settings]
    if len(set(names)) != len(names):
        raise ValueError(f"{component.name}: a setting is declared twice ({names})")
    _REGISTRY[component.kind][component.name] = component
    return component


def engine_settings(*settings: Setting) -> None:
    """Declare ``generation_params`` read by the engine for every strategy (seqrec/generation/engine_config.py)."""
    known = {s.key for s in ENGINE_SETTINGS}
    ENGINE_SETTINGS.extend(s for s in settings if s.key not in known)


def engine_setting(key: str) -> Setting:
    """The declared engine setting ``key``, under ``generation_params``."""
    discover()
    return next(s for s in ENGINE_SETTINGS if s.key == key).at(SECTIONS["strategy"])


def _import(module: str) -> bool:
    try:
        if importlib.util.find_spec(module) is None:
            return False
    except (ImportError, ValueError):  # a parent package is missing
        return False
    importlib.import_module(module)
    return True


def discover() -> None:
    """Import every built-in declaration module and the plug-ins (once per process; torch-free)."""
    global _DISCOVERED
    if _DISCOVERED:
        return
    _DISCOVERED = True
    root = Path(__file__).resolve().parents[1]  # the seqrec package
    for path in sorted(root.rglob("*_config.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        importlib.import_module(".".join(parts))
    load_plugins()


def load_plugins() -> None:
    """Import the modules named in ``$SEQREC_PLUGINS`` and the ``seqrec.plugins`` entry points."""
    for name in filter(None, (n.strip() for n in os.environ.get(PLUGINS_ENV, "").split(","))):
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise UserError(f"{PLUGINS_ENV} names module {name!r}, which cannot be imported ({exc}); "
                            "fix the name or put its folder on PYTHONPATH") from None
    from importlib.metadata import entry_points

    for entry in entry_points(group=ENTRY_POINTS):
        entry.load()


def components(kind: str) -> list[Component]:
    """Every registered component of ``kind`` (strategies in grid order)."""
    discover()
    found = list(_REGISTRY[kind].values())
    return sorted(found, key=lambda c: (getattr(c, "order", 0), c.name))


def get(kind: str, name: str, key: str | None = None) -> Component:
    """The component of ``kind`` called ``name``; one-line error naming ``key`` (the config key that chose it)
    and the known names."""
    discover()
    if name in _REGISTRY[kind]:
        return _REGISTRY[kind][name]
    known = sorted(_REGISTRY[kind])
    near = difflib.get_close_matches(str(name), known, n=1, cutoff=0.6)
    raise UserError(f"{key or kind}={name!r} is unknown; allowed: {', '.join(known)}"
                    + (f"; did you mean {near[0]}?" if near else ""))


def check_strategy(params: Mapping[str, Any], given: Sequence[str] = (),
                   context: Mapping[str, Any] | None = None) -> tuple["Strategy", dict[str, Any]]:
    """The strategy ``generation_params`` choose and the values it reads (checked, defaults filled in).

    Refused with one line: an unknown strategy, a key no strategy or the engine declares (did-you-mean), a key
    in ``given`` (set on the command line) that the chosen strategy does not read, a bad value, a ``do_sample``
    that contradicts the strategy, a broken rule (``context``: e.g. ``{"k": 10}``)."""
    section = SECTIONS["strategy"]
    strategy = get("strategy", params.get("strategy"), f"{section}.strategy")
    engine = {s.key: s for s in ENGINE_SETTINGS}
    reads = set(engine) | set(strategy.keys())
    others = {k: c.name for c in components("strategy") for k in c.keys()}
    for key in params:
        if key not in reads and key not in others:
            near = difflib.get_close_matches(str(key), sorted(reads | set(others)), n=1, cutoff=0.6)
            raise UserError(f"unknown key {section}.{key}" + (f"; did you mean {section}.{near[0]}?" if near else "")
                            + f"; strategy {strategy.name} reads {', '.join(sorted(reads))}")
    unused = sorted(set(given) - reads)
    if unused:
        users = sorted(c.name for c in components("strategy") if unused[0] in c.keys())
        raise UserError(
            f"{section}.{unused[0]} does not apply to strategy {strategy.name} (it reads "
            f"{', '.join(sorted(strategy.keys())) or 'none of the strategy parameters'}); drop it"
            + (f", or use a config whose strategy reads it ({', '.join(users)})" if users else "")
        )
    values: dict[str, Any] = {}
    for key, setting in engine.items():
        value = params.get(key, setting.default if setting.has_default else None)
        if key in params:
            setting.at(section).check_value(value)
        values[key] = value
    do_sample = values.get("do_sample")
    if do_sample is not None and strategy.samples is not None and do_sample != strategy.samples:
        fix = f"{section}.strategy=sampling" if do_sample else f"{section}.do_sample=false"
        raise UserError(f"{section}.do_sample={do_sample} contradicts strategy {strategy.name}; use {fix}")
    own = {k: v for k, v in params.items() if k in strategy.keys()}
    values.update(strategy.check(own, context, section))
    return strategy, values


def by_target(kind: str, target: str, name: str | None = None) -> Component | None:
    """The declaration of class ``target`` (and ``name``, when several declare it), importing
    ``<module>_config`` / ``<module>`` of a plug-in if needed; None for an undeclared class."""
    discover()

    def find() -> Component | None:
        hits = [c for c in _REGISTRY[kind].values() if c.target == target]
        if name is not None:
            hits = [c for c in hits if c.name == name] or ([] if len(hits) != 1 else hits)
        return hits[0] if hits else None

    hit = find()
    module = str(target).rpartition(".")[0]
    for candidate in (f"{module}_config", module):
        if hit is not None or not module:
            break
        _import(candidate)
        hit = find()
    return hit


def strategy_of(name: str) -> Optional[Strategy]:
    """The strategy registered as ``name``, else the one whose report families include ``name`` (``rra`` ->
    multisequence); None when neither is registered (e.g. a plug-in whose declarations are not loaded)."""
    discover()
    if name in _REGISTRY["strategy"]:
        return _REGISTRY["strategy"][name]  # type: ignore[return-value]
    return next((s for s in components("strategy") if name in s.produces()), None)  # type: ignore[attr-defined]


def params_label(strategy: str, params: Mapping[str, Any]) -> str:
    """The label of a setting in the report's tables (its ``params`` column): the ``label_params`` the strategy
    (or report family) ``strategy`` declares, read from ``params``; "" for an unregistered strategy."""
    found = strategy_of(strategy)
    return "" if found is None else found.label(params)


def describe_generation(params: Mapping[str, Any]) -> tuple[str, str]:
    """``(report family, label)`` of a predict run's ``generation_params``, e.g. ``("rra", "T=0.3 top_k=50 N=20")``:
    the names the report gives that run; ``(strategy, "")`` for a strategy that is not registered."""
    name = str(params.get("strategy", ""))
    found = strategy_of(name) if name else None
    if found is None:
        return name, ""
    return found.family(params), found.label(params)


def model_by_label(label: str) -> Model:
    """The model the experiment calls ``label`` (GPT, SASRec, ...)."""
    models = {m.label: m for m in components("model") if m.label}
    if label not in models:
        raise UserError(f"unknown model {label!r}; choose from {', '.join(models)}")
    return models[label]  # type: ignore[return-value]


def model_labels() -> list[str]:
    """Labels of the models the paper experiment trains, in the order of the tables."""
    return [m.label for m in components("model") if m.label and m.train_config]  # type: ignore[attr-defined]


def prompt_tunable() -> dict[str, str]:
    """Label -> prompt-tuning config of every model whose declaration has one (RecGPT's stage), in table order."""
    return {m.label: m.prompt_tune_config for m in components("model")  # type: ignore[attr-defined]
            if m.label and m.prompt_tune_config}  # type: ignore[attr-defined]


def recgpt_models(among: Sequence[str] | None = None) -> list[str]:
    """The models ``reproduce_paper.py --recgpt`` prompt-tunes when none are named: those that declare a prompt-tuning
    config and ``recgpt_by_default``, restricted to ``among`` (the experiment's ``--models``) when given."""
    found = [m.label for m in components("model")  # type: ignore[attr-defined]
             if m.label and m.prompt_tune_config and m.recgpt_by_default]  # type: ignore[attr-defined]
    return [m for m in found if among is None or m in among]


def strategy_grid(options: GridOptions | None = None) -> list[StrategySpec]:
    """The experiment's generation settings: every registered strategy's grid, in strategy order, no repeats."""
    options = options or GridOptions()
    specs: list[StrategySpec] = []
    for strategy in components("strategy"):
        if strategy.grid is None:  # type: ignore[attr-defined]
            continue
        for spec in strategy.grid(options):  # type: ignore[attr-defined]
            if spec not in specs:
                specs.append(spec)
    return specs


def families() -> tuple[str, ...]:
    """Report families of the registered strategies, in grid order (``multi``: the better of RRA and RA)."""
    out: list[str] = []
    for strategy in components("strategy"):
        for family in strategy.produces():  # type: ignore[attr-defined]
            if family not in out:
                out.append(family)
    return tuple(out)


def replace(component: Component, **changes) -> Component:
    """A copy of ``component`` with ``changes`` (e.g. gSASRec = SASRec's network with other aliases)."""
    return dataclasses.replace(component, **changes)


# --------------------------------------------------------------------------- Optuna search spaces
def search_space(config_name: str, overrides=()) -> dict:
    """The Optuna search space the trained model declares: the model of ``model=<name>`` among ``overrides``, else
    the model whose training config is ``config_name`` (``hparams_search/training.yaml`` reads it through the
    ``search_space`` resolver, from Hydra's own record of the command line)."""

    chosen = [str(o).split("=", 1)[1] for o in overrides if str(o).lstrip("+").startswith("model=")]
    if chosen:
        return dict(get("model", chosen[-1], "model").search_space)
    for model in components("model"):
        if model.train_config == config_name:
            return dict(model.search_space)
    raise UserError(f"+hparams_search=training: no registered model trains with --config-name={config_name}; "
                    "pass model=<name> or set hydra.sweeper.params on the command line")


def _search_space_resolver() -> dict:
    """``${search_space:}``: Hydra resolves the sweeper's node while it composes, before its own record of the
    command line exists, so the config name and a ``model=`` override are read from the command line itself."""
    import sys

    argv, name = sys.argv[1:], "GPT_train"  # run_train.py's default config
    for i, arg in enumerate(argv):
        if arg.startswith(("--config-name=", "-cn=")):
            name = arg.split("=", 1)[1]
        elif arg in ("--config-name", "-cn") and i + 1 < len(argv):
            name = argv[i + 1]
    return search_space(name, [a for a in argv if not a.startswith("-")])


if not OmegaConf.has_resolver("search_space"):
    OmegaConf.register_new_resolver("search_space", _search_space_resolver)
