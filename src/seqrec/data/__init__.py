"""Layer 1, data: MovieLens download and preparation, synthetic logs, the long-term split, item and event
attributes, torch datasets and the Lightning data module. May import :mod:`seqrec.core` only."""
