"""Declaration of two-stage recall (:mod:`.two_stage`): ``first_stage`` items from the history, the rest after
appending the best one."""

from seqrec.core.registry import Strategy, StrategySpec, register
from seqrec.core.settings import Int


def first_stage_leaves_room(values, context) -> str | None:
    """Stage two needs at least one of the ``k`` items (``context["k"]``, when known)."""
    k = (context or {}).get("k")
    first = values.get("first_stage")
    if isinstance(k, int) and isinstance(first, int) and first >= k:
        return (f"generation_params.first_stage={first} leaves nothing for stage two of k={k} items; "
                f"pass e.g. generation_params.first_stage={k - 1}")
    return None


def _grid(options):
    if options.two_stage_first is None:
        return []
    return [StrategySpec("two_stage", "two_stage", (("first_stage", int(options.two_stage_first)),))]


register(Strategy(
    "two_stage", "seqrec.generation.strategies.two_stage.TwoStage", order=5,
    settings=(
        Int("first_stage", "9", ge=1, default=9, doc="items of stage one (RecGPT's N)"),
        Int("prompt_steps", "1", ge=1, default=1,
            doc="arg-max items appended (as generated items) before stage two; 1: RecGPT's"),
    ),
    rules=(first_stage_leaves_room,), grid=_grid,
    label_params=(("first_stage", "first"),),  # first=9 in the report; prompt_steps stays at RecGPT's 1 there
))
