"""Declaration of SASRec (:class:`seqrec.models.sasrec.SASRec`): the network's settings, references, search space."""

from seqrec.models.declaration_rules import divisible
from seqrec.core.registry import Model, Reference, register
from seqrec.core.settings import Bool, Choice, Int, Num

NETWORK = (
    Int("sequence_length", "128", ge=2, doc="learned positions; also the window (dataset.max_length)"),
    Int("embedding_dim", "64", ge=1),
    Int("num_blocks", "2", ge=1),
    Int("num_heads", "1", ge=1),
    Num("dropout_rate", "0.1", ge=0, lt=1),
    Bool("reuse_item_embeddings", doc="false: a separate output item-embedding table"),
    Num("layer_norm_eps", "1e-8", gt=0),
    Bool("segment_embedding", "false", doc="RecGPT's real/generated segment embedding (set by prompt-tuning)"),
    Choice("embedding_init", ("xavier", "normal"), default="xavier",
           doc="embedding tables: xavier (SASRec code) or normal N(0,1) (gSASRec code)"),
    Bool("scale_embeddings", "true", default=True, doc="multiply item embeddings by sqrt(embedding_dim) (SASRec code; "
         "the gSASRec code does not)"),
)
SEARCH = {
    "seqrec_module.lr": "tag(log, interval(1e-4, 1e-2))",
    "model_params.dropout_rate": "interval(0.0, 0.5)",
    "model_params.embedding_dim": "choice(32, 64, 128, 256)",  # divisible by model_params.num_heads (1)
    "model_params.num_blocks": "choice(1, 2, 3, 4)",
}

SASREC = register(Model(
    name="sasrec", label="SASRec", order=1, target="seqrec.models.sasrec.SASRec", train_config="SASRec_train",
    kv_cache=True, features=True, prompt_tune_config="SASRec_prompt_tune", settings=NETWORK,
    rules=(divisible("embedding_dim", "num_heads"),),
    # sequence_length is a network argument and the name of the window in the SASRec code: it sets both
    aliases={"sequence_length": "dataset.max_length"},
    references=(Reference("ml-1m", "topk", "", "public code (BCE)", (0.0704, 0.1513, 0.1407)),),
    search_space=SEARCH,
))
