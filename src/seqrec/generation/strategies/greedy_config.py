"""Declaration of greedy decoding (:mod:`.greedy`): no parameters."""

from seqrec.core.registry import Strategy, StrategySpec, register

register(Strategy("greedy", "seqrec.generation.strategies.greedy.Greedy", order=1, label_params=(),
                  grid=lambda options: [StrategySpec("greedy", "greedy")]))
