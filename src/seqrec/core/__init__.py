"""Layer 0, the foundation: errors, atomic file writes, declared settings and the component registry, building
objects from config nodes, Hydra's job context, paths and hardware. May import nothing else of ``seqrec``."""
