"""Declaration of temperature sampling (:mod:`.sampling`); with ``num_return_sequences > 1`` it is multi-sequence
aggregation (:mod:`.multisequence_config`), so both read the same declared parameters."""

from seqrec.core.registry import Strategy, StrategySpec, register
from seqrec.core.settings import Choice, Int, Num, Setting


def _prefix_list(value) -> bool:
    if value is None:
        return True
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        return False
    return all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in value)

SAMPLING = (
    Num("temperature", "0.3", gt=0, default=1.0,
        hint="temperature 0 means arg-max decoding: use --config-name=GPT_greedy, or e.g. generation_params.temperature=0.3"),
    Int("top_k", "50", ge=0, null=True, default=None, doc="sample among the top_k items (null or 0: all)",
        hint="pass e.g. generation_params.top_k=50, or null (or 0) for no limit"),
    Num("top_p", "0.9", gt=0, le=1, null=True, default=1.0, doc="nucleus sampling"),
    Int("num_return_sequences", "20", ge=1, default=1, doc="N > 1: multi-sequence aggregation"),
    Choice("aggregation", ("rra", "ra"), default="rra", doc="for N > 1: reciprocal rank or summed probability"),
    Setting("prefix_sequences", "list", "[10,20,50]", null=True, default=None, test=_prefix_list,
            want="a list of integers >= 1, each at most num_return_sequences (or null)",
            hint="pass e.g. 'generation_params.prefix_sequences=[10,20,50]'",
            doc="for N > 1: also aggregate the first n of the N sampled sequences, both ways, for each n listed "
                "(kept in the run's nested.npz; a later run takes one with samples_from=<this run>)"),
)


#: what tells sampling settings apart in the report (``T=0.3 top_k=50 N=20``); the aggregation is the family's name
LABEL = (("temperature", "T"), "top_k", ("num_return_sequences", "N"))


def family(params) -> str:
    """A sampling run's report family: ``sampling`` for one sequence, else its aggregation (``rra`` or ``ra``)."""
    return str(params.get("aggregation") or "rra") if int(params.get("num_return_sequences") or 1) > 1 else "sampling"


def prefixes_fit(values, context) -> str | None:
    """Every prefix of ``prefix_sequences`` is at most ``num_return_sequences``, which must then exceed 1."""
    prefixes, n = values.get("prefix_sequences") or [], values.get("num_return_sequences")
    if prefixes and isinstance(n, int) and n < 2:
        return ("generation_params.prefix_sequences needs multi-sequence sampling; pass "
                "generation_params.num_return_sequences >= 2, or drop prefix_sequences")
    if prefixes and isinstance(n, int) and max(prefixes) > n:
        return (f"generation_params.prefix_sequences={prefixes} asks for the first {max(prefixes)} of only {n} sampled "
                f"sequences; raise num_return_sequences to {max(prefixes)} or drop the larger prefixes")
    return None


def _grid(options):
    return [StrategySpec("sampling", "temperature", (("temperature", float(options.sampling_temperature)),
                                                     ("top_k", options.top_k), ("num_return_sequences", 1)))]


register(Strategy("sampling", "seqrec.generation.strategies.sampling.Sampling", order=3, samples=True,
                  settings=SAMPLING, rules=(prefixes_fit,), grid=_grid, label_params=LABEL, family_of=family))
