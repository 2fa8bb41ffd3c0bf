"""Layer 5, configuration: the checks of a composed training or prediction config against the components'
declarations (:mod:`.checks`). May import every layer below: :mod:`seqrec.core`, :mod:`seqrec.data`,
:mod:`seqrec.models`, :mod:`seqrec.generation`, :mod:`seqrec.tracking`."""
