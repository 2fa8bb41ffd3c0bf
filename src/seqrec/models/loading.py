"""A trained network from its ``model.pt``: loaded safely (weights only) and rebuilt."""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import torch
from hydra.utils import instantiate

from seqrec.core.errors import UserError

def load_weights(path: Path) -> dict:
    """``torch.load`` of a run's file with ``weights_only=True``: tensors, numbers, strings and containers only.

    Run folders travel (a colleague, a ClearML server); a pickle that would construct any other object (and so
    could run code) is refused with one line, before anything in it runs."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL (\S+) was not an allowed global", str(exc))
        what = f" ({found.group(1)})" if found else ""
        raise UserError(
            f"{path} holds objects other than weights{what}; refused, since loading it could run code: use run "
            "folders only from sources you trust, or train the run again"
        ) from None


def load_trained(path: Path, device: torch.device):
    """The network saved in ``path`` (a training run's ``model.pt``) on ``device``, in eval mode, and the saved
    record (``target``, ``params``, ``n_items``, ...)."""
    if not path.exists():
        raise UserError(f"run {path.parent.name} has no {path.name} (did its training finish?); train again with "
                        "run_train.py")
    meta = load_weights(path)
    model = instantiate({"_target_": meta["target"]}, n_items=meta["n_items"], **meta["params"])
    model.load_state_dict(meta["state_dict"])
    return model.to(device).eval(), meta
