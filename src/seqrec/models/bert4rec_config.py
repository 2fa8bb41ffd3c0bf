"""Declaration of BERT4Rec (:class:`seqrec.models.bert4rec.BERT4Rec`), with RecBole's hyper-parameter names."""

from seqrec.models import declaration_rules as rules
from seqrec.models.declaration_rules import divisible
from seqrec.core.registry import Model, Reference, register
from seqrec.core.settings import Choice, Int, Num

BERT4REC = register(Model(
    name="bert4rec", label="BERT4Rec", order=3, target="seqrec.models.bert4rec.BERT4Rec",
    train_config="BERT4Rec_train", kv_cache=False, features=True,  # bidirectional: every step re-encodes the window
    settings=(
        Int("max_seq_length", "128", ge=2, doc="positions, [MASK] included; also the window"),
        Int("hidden_size", "64", ge=1),
        Int("inner_size", "256", ge=1),
        Int("n_layers", "2", ge=1),
        Int("n_heads", "2", ge=1),
        Num("hidden_dropout_prob", "0.1", ge=0, lt=1),
        Num("attn_dropout_prob", "0.1", ge=0, lt=1),
        Choice("hidden_act", ("gelu", "gelu_tanh", "relu", "swish", "silu", "tanh", "sigmoid"), example="gelu"),
        Num("layer_norm_eps", "1e-12", gt=0),
        Num("initializer_range", "0.02", gt=0),
        Choice("layer_norm", ("post", "pre"), default="post",
               doc="post: BERT's post-LN blocks (the paper's); pre: pre-LN blocks + a final LayerNorm"),
    ),
    rules=(divisible("hidden_size", "n_heads"),),
    aliases={
        **rules.TRAINING_LOOP,
        "max_seq_length": "dataset.max_length",
        "mask_rate": "train_dataset.mask_rate",
        "eval_step": "trainer_params.check_val_every_n_epoch",
        "early_stopping_step": "patience",
    },
    special={
        "loss_type": rules.loss_settings, "negative_samples_count": rules.loss_settings, "device": rules.device,
        "sample_strategy": rules.sampled_evaluation, "sample_seed": rules.sampled_evaluation,
        "sample_ratio": rules.sampled_evaluation,
    },
    references=(Reference("ml-1m", "topk", "", "public code", (0.0812, 0.1668, 0.1546)),),
    search_space={
        "seqrec_module.lr": "tag(log, interval(1e-4, 1e-2))",
        "model_params.hidden_dropout_prob": "interval(0.0, 0.5)",
        "model_params.attn_dropout_prob": "interval(0.0, 0.5)",
        "model_params.hidden_size": "choice(32, 64, 128, 256)",  # divisible by n_heads (2); inner_size stays 256
        "model_params.n_layers": "choice(1, 2, 3, 4)",
    },
))
