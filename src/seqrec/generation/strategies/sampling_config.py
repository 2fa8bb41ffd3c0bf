"""Declaration of temperature sampling (:mod:`.sampling`); with ``num_return_sequences > 1`` it is multi-sequence
aggregation (:mod:`.multisequence_config`), so both read the same declared parameters."""

from seqrec.registry import Strategy, StrategySpec, register
from seqrec.settings import Choice, Int, Num

SAMPLING = (
    Num("temperature", "0.3", gt=0, default=1.0,
        hint="temperature 0 means arg-max decoding: use --config-name=GPT_greedy, or e.g. generation_params.temperature=0.3"),
    Int("top_k", "50", ge=0, null=True, default=None, doc="sample among the top_k items (null or 0: all)",
        hint="pass e.g. generation_params.top_k=50, or null (or 0) for no limit"),
    Num("top_p", "0.9", gt=0, le=1, null=True, default=1.0, doc="nucleus sampling"),
    Int("num_return_sequences", "20", ge=1, default=1, doc="N > 1: multi-sequence aggregation"),
    Choice("aggregation", ("rra", "ra"), default="rra", doc="for N > 1: reciprocal rank or summed probability"),
)


def _grid(options):
    return [StrategySpec("sampling", "temperature", (("temperature", float(options.sampling_temperature)),
                                                     ("top_k", options.top_k), ("num_return_sequences", 1)))]


register(Strategy("sampling", "seqrec.generation.strategies.sampling.Sampling", order=3, samples=True,
                  settings=SAMPLING, grid=_grid))
