"""Declaration of RecGPT's prompt-tuning stage (:mod:`seqrec.training.prompt_tuning`), the ``prompt_tuning`` section of the
``*_prompt_tune`` configs (torch-free). The rules a pre-trained run must meet: :func:`seqrec.config.checks.inherit_pretrained`."""

from __future__ import annotations

from seqrec.core.registry import Component, register
from seqrec.core.settings import Bool, Choice, Int


class Stage(Component):
    kind = "stage"


PROMPT_TUNING = register(Stage("prompt_tuning", "seqrec.training.prompt_tuning.PromptAugmenter", settings=(
    Choice("mode", ("replace_last", "insert", "none"), default="replace_last",
           want="replace_last (RecGPT's default), insert, or none (the control: fine-tuning without prompts)"),
    Int("prompt_length", "1", ge=1, le=16, default=1, doc="generated items per window (replace_last) or per item"),
    Int("max_rows", "4096", ge=1, default=4096, doc="rows per chunk of the prompt generation"),
    Bool("freeze_item_embeddings", "false", default=False, doc="keep the pre-trained item embeddings fixed"),
), doc="sequences augmented with the model's own arg-max predictions"))
