"""Layer 9, command-line plumbing: one-line errors for the entry points and scripts, Hydra's errors turned into
suggestions (:mod:`.entry`). May import every layer below it."""
