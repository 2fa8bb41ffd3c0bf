"""Layer 1, data: MovieLens download and preparation, synthetic logs, the split of each evaluation protocol
(long-term, leave-one-out), item and event attributes, torch datasets and the Lightning data module. May import
:mod:`seqrec.core` only."""
