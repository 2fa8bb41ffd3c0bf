"""Layer 6, evaluation: ranking metrics, bootstrap and paired statistics, non-neural baselines, the predict run
(:mod:`.predict`: generate, score, write), paired comparison of runs and the experiment reports. May import the
layers up to :mod:`seqrec.config`."""
