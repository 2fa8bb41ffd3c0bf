"""Declaration of beam search (:mod:`.beam`): ``num_beams``."""

from seqrec.core.registry import Strategy, StrategySpec, register
from seqrec.core.settings import Int

register(Strategy(
    "beam", "seqrec.generation.strategies.beam.Beam", order=2,
    settings=(Int("num_beams", "2", ge=1, default=1, doc="partial sequences kept per user"),),
    grid=lambda options: [StrategySpec("beam", "beam", (("num_beams", int(b)),)) for b in options.beams],
))
