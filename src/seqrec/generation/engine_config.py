"""The ``generation_params`` the engine reads for every strategy (declared once, here)."""

from seqrec.core.registry import engine_settings
from seqrec.core.settings import Bool, Choice, Int, Str

engine_settings(
    Str("strategy", "topk", doc="the strategy's registered name"),
    Choice("precision", ("float32", "bfloat16", "auto"), null=True, default="float32",
           doc="auto: bf16 matrix products where native (faster; bf16 scores tie and reorder items)"),
    Int("max_rows", "4096", ge=1, null=True, default=None, doc="rows (users x beams or sequences) per chunk"),
    Int("workers", "2", ge=1, null=True, default=None,
        doc="chunks generated at once, one thread each (null: the CPU's threads; 1 on a GPU); same items"),
    Choice("no_repeat_ngram_size", (1, 0), null=True, default=1,
           want="1 (a sequence never repeats an item) or 0 (repeats allowed, only to compare with HF)"),
    Bool("do_sample", "false", null=True, default=None, doc="must agree with the strategy when given"),
    Choice("generated_events", ("model", "unknown"), null=True, default=None,
           doc="a generated event's attributes: model = as the run was trained (predicted with "
               "features.generated_events=predicted, else unknown); unknown = the learned unknown value (ablation)"),
)
