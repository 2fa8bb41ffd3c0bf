"""seqrec: long-term sequential recommendation by autoregressive generation."""

from pathlib import Path

from omegaconf import OmegaConf

__version__ = "0.1.0"

#: the repository this package lives in (``src/seqrec/`` -> the folder above ``src/``)
REPO_ROOT = Path(__file__).resolve().parents[2]

# ``${repo:runs}`` in a config is ``<repo>/runs``: defaults that do not depend on the folder a command starts in
if not OmegaConf.has_resolver("repo"):
    OmegaConf.register_new_resolver("repo", lambda sub="": str(REPO_ROOT / sub))


def default_run_store() -> Path:
    """Where runs go when no ``run_store=`` is given: ``$SEQREC_RUN_STORE`` or ``<repo>/runs``."""
    import os

    return Path(os.environ.get("SEQREC_RUN_STORE") or REPO_ROOT / "runs").resolve()


def search_space(config_name: str, overrides=()) -> dict:
    """The Optuna search space the trained model declares: the model of ``model=<name>`` among ``overrides``, else
    the model whose training config is ``config_name`` (``hparams_search/training.yaml`` reads it through the
    ``search_space`` resolver, from Hydra's own record of the command line)."""
    from seqrec import registry
    from seqrec.errors import UserError

    chosen = [str(o).split("=", 1)[1] for o in overrides if str(o).lstrip("+").startswith("model=")]
    if chosen:
        return dict(registry.get("model", chosen[-1], "model").search_space)
    for model in registry.components("model"):
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
