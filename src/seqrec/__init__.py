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
