"""Declarations of the training datasets (:mod:`seqrec.data.datasets`), chosen by ``train_dataset._target_``."""

from seqrec.core.registry import Component, register
from seqrec.core.settings import Num

#: what run_train.py passes every training dataset itself
PASSED = ("train", "max_length", "window", "seed", "n_items", "events")  # events: with event attributes


class TrainDataset(Component):
    kind = "train_dataset"


register(TrainDataset("causal", "seqrec.data.datasets.CausalLMDataset", passed=PASSED,
                      doc="next-item windows, a target at every position"))
register(TrainDataset("masked", "seqrec.data.datasets.MaskedLMDataset", passed=PASSED, settings=(
    Num("mask_rate", "0.2", gt=0, lt=1, default=0.2, doc="share of items replaced by [MASK]"),
    Num("last_item_rate", "0.1", ge=0, le=1, default=0.1, doc="share of windows that mask only their last item"),
), doc="masked-item (cloze) windows"))
