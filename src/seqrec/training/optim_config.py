"""Declarations of the optimizers and LR schedules (``optimizer/`` and ``scheduler/`` config groups)."""

from seqrec.core.registry import Component, register
from seqrec.core.settings import Bool, Choice, Int, Num, Setting

#: lr and weight decay come from seqrec_module.lr / .weight_decay; params from the model
OPTIMIZER_PASSED = ("params", "lr", "weight_decay")


class Optimizer(Component):
    kind = "optimizer"


class Scheduler(Component):
    kind = "scheduler"


def _betas(v) -> bool:
    return (isinstance(v, (list, tuple)) and len(v) == 2
            and all(isinstance(b, (int, float)) and not isinstance(b, bool) and 0 <= b < 1 for b in v))


ADAM_SETTINGS = (
    Setting("betas", "number", "[0.9,0.999]", test=_betas, want="two numbers in [0, 1)", default=(0.9, 0.999)),
    Num("eps", "1e-8", gt=0, default=1e-8),
    Bool("amsgrad", "false", default=False),
)
register(Optimizer("adam", "torch.optim.Adam", settings=ADAM_SETTINGS, passed=OPTIMIZER_PASSED))
register(Optimizer("adamw", "torch.optim.AdamW", settings=ADAM_SETTINGS, passed=OPTIMIZER_PASSED))
register(Scheduler("warmup", "seqrec.training.optim.WarmupSchedule", passed=("optimizer", "total_steps"), settings=(
    Int("warmup_steps", "500", ge=0, default=0, doc="optimizer steps of linear warm-up"),
    Choice("decay", ("none", "linear", "cosine"), default="none", doc="after the warm-up"),
    Num("min_factor", "0.0", ge=0, le=1, default=0.0, doc="the decay ends at min_factor x lr"),
)))
