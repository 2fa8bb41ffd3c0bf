"""Declaration of beam search (:mod:`.beam`): ``num_beams`` (``B`` in the report's labels)."""

from seqrec.core.registry import Strategy, StrategySpec, register
from seqrec.core.settings import Int

register(Strategy(
    "beam", "seqrec.generation.strategies.beam.Beam", order=2,
    settings=(Int("num_beams", "2", ge=1, default=1, doc="partial sequences kept per user"),),
    label_params=(("num_beams", "B"),),  # B=2 in the report
    grid=lambda options: [StrategySpec("beam", "beam", (("num_beams", int(b)),)) for b in options.beams],
))
