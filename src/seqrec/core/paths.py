"""Where things are: the repository, the default run store, the ``${repo:}`` config resolver, how a run records the
files it read (:func:`given_path`, :func:`stored_path`, :func:`resolved_path`), and how a printed command names a
script of the repository (:func:`script_command`)."""

from __future__ import annotations

import os
from pathlib import Path

from omegaconf import OmegaConf

#: the repository this package lives in (``src/seqrec/core/`` -> the folder above ``src/``)
REPO_ROOT = Path(__file__).resolve().parents[3]

# ``${repo:runs}`` in a config is ``<repo>/runs``: defaults that do not depend on the folder a command starts in
if not OmegaConf.has_resolver("repo"):
    OmegaConf.register_new_resolver("repo", lambda sub="": str(REPO_ROOT / sub))


def sweep_id() -> str:
    """Six random hex digits naming one ``--multirun`` invocation's folder (``${sweep_id:}``): a second sweep started
    in the same second gets a folder of its own. Resolved once per config (``use_cache``), and Hydra copies the
    resolver cache into every job's config of a sweep, so all its jobs share the folder."""
    import secrets

    return secrets.token_hex(3)


if not OmegaConf.has_resolver("sweep_id"):
    OmegaConf.register_new_resolver("sweep_id", sweep_id, use_cache=True)


def default_run_store() -> Path:
    """Where runs go when no ``run_store=`` is given: ``$SEQREC_RUN_STORE`` or ``<repo>/runs``."""
    return Path(os.environ.get("SEQREC_RUN_STORE") or REPO_ROOT / "runs").resolve()


def _expanded(path: str | os.PathLike) -> Path:
    return Path(os.path.expanduser(os.fspath(path)))


def _absolute(path: Path) -> Path:
    """``path`` made absolute with its folder's symlinks resolved (the file itself kept: a linked data file keeps
    its own name)."""
    path = path if path.is_absolute() else Path.cwd() / path
    return path.parent.resolve() / path.name


def given_path(path: str | os.PathLike) -> Path:
    """A file named on a command line, absolute: a relative path is taken in the working folder, or in the
    repository when only there does it exist (the configs' defaults, e.g. ``data/ml-1m.csv``, are repository
    files)."""
    path = _expanded(path)
    if path.is_absolute():
        return _absolute(path)
    here, repo = Path.cwd() / path, REPO_ROOT / path
    return _absolute(repo if not here.exists() and repo.exists() else here)


def stored_path(path: str | os.PathLike) -> str:
    """How a run records a file it reads (``data_path``): relative to the repository when it lies inside it (a step
    is then the same step on every clone), else absolute. ``path`` is taken as :func:`given_path` takes it."""
    absolute = given_path(path)
    try:
        return absolute.relative_to(REPO_ROOT).as_posix()
    except ValueError:
        return str(absolute)


def resolved_path(path: str | os.PathLike) -> Path:
    """The file a stored path names, absolute: a relative one lies in the repository (see :func:`stored_path`).
    Runs stored before that (their path as written, relative to the folder they ran in) keep working: a relative
    path that exists only in the working folder is taken there."""
    path = _expanded(path)
    if path.is_absolute():
        return path
    repo, here = REPO_ROOT / path, Path.cwd() / path
    return _absolute(here if not repo.exists() and here.exists() else repo)


def script_command(script: str | os.PathLike) -> str:
    """``python <script>`` as a printed next command: the repository-relative path (``src/run_predict.py``) when
    the working folder is the repository root, the script's absolute path anywhere else (so it runs when pasted)."""
    import shlex

    path = _expanded(script)
    path = path if path.is_absolute() else REPO_ROOT / path
    if Path.cwd().resolve() == REPO_ROOT:
        try:
            return f"python {path.resolve().relative_to(REPO_ROOT).as_posix()}"
        except ValueError:
            pass
    return f"python {shlex.quote(str(path.resolve()))}"


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
