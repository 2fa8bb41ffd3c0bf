"""seqrec: long-term sequential recommendation by autoregressive generation.

The package is layered; each sub-package says in its docstring what it holds and what it may import
(``tests/test_import_graph.py`` enforces the order, lowest first):

``core`` -> ``data`` -> ``models`` -> ``generation`` -> ``tracking`` -> ``config`` -> ``evaluation`` ->
``training`` -> ``api`` -> ``cli`` -> ``experiments``.

The root holds only the public names, imported on first use so that ``import seqrec`` stays cheap (the config
checks run before torch is loaded): :func:`train` and :func:`predict` (what ``src/run_train.py`` and
``src/run_predict.py`` do with a composed config) and :func:`load_run` (a trained run, ready to recommend).
"""

from __future__ import annotations

import importlib

from seqrec.core import registry as _registry  # noqa: F401  # registers the ${search_space:} resolver
from seqrec.core.paths import REPO_ROOT, default_run_store

__version__ = "1.0.0"

#: public name -> module that defines it
_PUBLIC = {
    "train": "seqrec.training.train",
    "predict": "seqrec.evaluation.predict",
    "load_run": "seqrec.api",
    "Recommender": "seqrec.api",
}

__all__ = ["REPO_ROOT", "__version__", "default_run_store", *_PUBLIC]


def __getattr__(name: str):
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'seqrec' has no attribute {name!r}")
