"""Layer 2, models: the sequential networks (GPT-2, SASRec/gSASRec, BERT4Rec), their blocks, KV caches, event-level
embeddings, the fused output kernels and loading a trained ``model.pt``. May import :mod:`seqrec.core` and
:mod:`seqrec.data`."""
