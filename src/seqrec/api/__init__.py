"""Layer 8, api: the public Python interface to a trained run. :func:`load_run` finds a training run in the run
store by its ID or a unique prefix and returns a :class:`Recommender`, which recommends for histories given as the
user's own item IDs (with optional event attributes) or for users of the run's split, by Top-K or any generation
strategy, through the one engine (:func:`seqrec.generation.generate`) and its settings (:mod:`.recommender`); its
command-line twin is ``seqrec-recommend`` (:mod:`.cli`). May import every layer below it (:mod:`seqrec.core` up to
:mod:`seqrec.training`), never :mod:`seqrec.cli` or :mod:`seqrec.experiments`.

Importing this package is cheap: torch is loaded by :func:`load_run`, not here.
"""

from seqrec.api.recommender import Recommender, load_run

__all__ = ["Recommender", "load_run"]
