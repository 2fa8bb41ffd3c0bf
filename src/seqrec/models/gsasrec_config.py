"""Declaration of gSASRec: the SASRec network (:mod:`seqrec.models.sasrec_config`) trained with gBCE, taking the
hyper-parameter names of the gSASRec code (``neg_per_positive``, ``gbce_t``, ``reuse_item_embeddings``, ...)."""

from seqrec.models import declaration_rules as rules
from seqrec.models.sasrec_config import SASREC
from seqrec.core.registry import register, replace

GSASREC = register(replace(
    SASREC, name="gsasrec", label="gSASRec", order=2, train_config="gSASRec_train", references=(),
    # prompt-tunable, but only when named (reproduce_paper.py --recgpt gSASRec): the paper's stage is GPT and SASRec
    prompt_tune_config="gSASRec_prompt_tune", recgpt_by_default=False,
    aliases={
        **rules.TRAINING_LOOP,
        "weight_decay": "seqrec_module.weight_decay",
        "patience": "patience",
        "sequence_length": "dataset.max_length",
        "max_batches_per_epoch": "trainer_params.limit_train_batches",
        "eval_after_epochs": "trainer_params.check_val_every_n_epoch",
        "filter_rated": "seqrec_module.filter_seen",
        "neg_per_positive": "seqrec_module.loss.neg_per_positive",
        "gbce_t": "seqrec_module.loss.gbce_t",
        "eps": "seqrec_module.loss.eps",
    },
    special={"device": rules.device, "split_ratio": rules.split_ratio},
))
