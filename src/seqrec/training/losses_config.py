"""Declarations of the losses (:mod:`seqrec.training.losses`), chosen by the ``loss/`` config group."""

from seqrec.core.registry import Component, register
from seqrec.core.settings import Choice, Int, Num


class Loss(Component):
    kind = "loss"


def _negatives(default: int):
    return Int("num_negatives", str(default), ge=1, default=default, doc="uniformly sampled negatives per positive")


# the values are losses.SHARE_NEGATIVES (not imported: declarations load without torch)
SHARE = Choice("share_negatives", ("position", "sequence"), default="position",
               doc="position: each position draws its own negatives; sequence: one draw per training sequence, "
                   "shared by its positions (one batched product instead of the whole output layer)")


register(Loss("CE", "seqrec.training.losses.CrossEntropy", settings=(
    Int("chunk", "256", ge=1, default=256, doc="positions per chunk of the fused output layer + softmax"),
    Choice("matmul_dtype", ("auto", "float32", "bfloat16"), default="auto",
           doc="auto: bfloat16 output-layer products where the device runs them natively"),
), doc="full softmax over the whole catalogue"))
register(Loss("BCE", "seqrec.training.losses.BCE", settings=(_negatives(1), SHARE), doc="binary cross-entropy, sampled negatives"))
register(Loss("BPR", "seqrec.training.losses.BPR", settings=(_negatives(1), SHARE), doc="Bayesian personalised ranking"))
register(Loss("sampled_softmax", "seqrec.training.losses.SampledSoftmax", settings=(_negatives(256), SHARE),
              doc="softmax over the positive and sampled negatives"))
register(Loss("gBCE", "seqrec.training.losses.gBCE", settings=(
    Int("neg_per_positive", "256", ge=1, default=256),
    Num("gbce_t", "0.75", ge=0, le=1, default=0.75, doc="calibration: 0 is BCE, 1 the full-softmax limit"),
    Num("eps", "1e-10", gt=0, lt=0.5, default=1e-10),
    Int("t_warmup_steps", "1000", ge=0, default=0, doc="ramp gbce_t linearly from 0 over these optimizer steps"),
    Int("neg_warmup_steps", "1000", ge=0, default=0,
        doc="ramp the negatives linearly from 1 to neg_per_positive over these optimizer steps"),
    SHARE,
), doc="gSASRec's generalised BCE"))
