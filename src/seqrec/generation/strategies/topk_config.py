"""Declaration of Top-K (:mod:`.topk`): one forward pass, no parameters."""

from seqrec.core.registry import Strategy, StrategySpec, register

register(Strategy("topk", "seqrec.generation.strategies.topk.TopK", order=0, label_params=(),
                  grid=lambda options: [StrategySpec("topk", "predict")]))
