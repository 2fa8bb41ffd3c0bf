"""Where things are: the repository, the default run store, and the ``${repo:}`` config resolver."""

from __future__ import annotations

import os
from pathlib import Path

from omegaconf import OmegaConf

#: the repository this package lives in (``src/seqrec/core/`` -> the folder above ``src/``)
REPO_ROOT = Path(__file__).resolve().parents[3]

# ``${repo:runs}`` in a config is ``<repo>/runs``: defaults that do not depend on the folder a command starts in
if not OmegaConf.has_resolver("repo"):
    OmegaConf.register_new_resolver("repo", lambda sub="": str(REPO_ROOT / sub))


def default_run_store() -> Path:
    """Where runs go when no ``run_store=`` is given: ``$SEQREC_RUN_STORE`` or ``<repo>/runs``."""
    return Path(os.environ.get("SEQREC_RUN_STORE") or REPO_ROOT / "runs").resolve()


def load_file_module(path: Path, name: str | None = None):
    """Import the Python file ``path`` (a script of ``scripts/`` or a test module) as module ``name`` (its stem by
    default), registered in ``sys.modules`` so that files importing it by name find it; ``sys.path`` is left alone."""
    import importlib.util
    import sys

    name = name or Path(path).stem
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module
