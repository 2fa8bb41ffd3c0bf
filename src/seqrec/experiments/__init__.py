"""Layer 10, experiments: the paper's experiment as a plan of ordinary runs (:mod:`.plan`) and the sweep callback
(:mod:`.sweep`). The top layer: may import everything."""
