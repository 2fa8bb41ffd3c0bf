"""Declaration of multi-sequence aggregation (:mod:`.multisequence`): the sampling parameters; in the experiment the
RRA and RA grids over temperatures x sequences, plus the paper's best ML-20M settings."""

from seqrec.generation.strategies.sampling_config import LABEL, SAMPLING, family, prefixes_fit
from seqrec.core.registry import Strategy, StrategySpec, register


def _spec(aggregation, t, n, top_k):
    return StrategySpec(aggregation, "temperature", (
        ("temperature", float(t)), ("top_k", top_k), ("num_return_sequences", int(n)), ("aggregation", aggregation),
    ))


def _grid(options):
    specs = [_spec(a, t, n, options.top_k) for a in ("rra", "ra") for t in options.temperatures for n in options.sequences]
    return specs + [_spec(a, t, n, k) for a, t, n, k in options.paper_settings]


register(Strategy("multisequence", "seqrec.generation.strategies.multisequence.MultiSequence", order=4,
                  samples=True, settings=SAMPLING, rules=(prefixes_fit,), families=("rra", "ra", "multi"), grid=_grid,
                  label_params=LABEL, family_of=family))
