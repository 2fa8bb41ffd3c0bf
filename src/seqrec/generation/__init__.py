"""Layer 3, generation: one engine (:mod:`.engine`) for every model, strategies in :mod:`.strategies` (one file
each), Top-K scoring and seen-item masking (:mod:`.ranking`), shared sampling passes (:mod:`.shared_samples`).
May import :mod:`seqrec.core`, :mod:`seqrec.data` and :mod:`seqrec.models`.

The names below are imported on first use, so importing a declaration module of this package
(``*_config.py``, read by the config checks) does not import torch.
"""

import importlib

_LAZY = {"Strategy": "base", "ban_generated": "base", "build_strategy": "base", "generate": "engine"}
__all__ = list(_LAZY)


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    globals()[name] = value
    return value
