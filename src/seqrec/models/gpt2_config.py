"""Declaration of GPT-2 (:class:`seqrec.models.gpt2.GPT2`): its settings, references and search space."""

from seqrec.models.declaration_rules import divisible, window_fits
from seqrec.core.registry import Model, Reference, register
from seqrec.core.settings import Bool, Int, Num

NAN = float("nan")
PAPER = "paper 2023 (timestamped ML-1M)"
ORIGINAL = "original code, this machine"

GPT2 = register(Model(
    name="gpt2", label="GPT", order=0, target="seqrec.models.gpt2.GPT2",
    train_config="GPT_train", predict_config="GPT_predict", kv_cache=True, features=True,
    prompt_tune_config="GPT_prompt_tune",  # RecGPT's stage of the experiment
    settings=(
        Int("n_positions", "128", ge=2, doc="learned positions: the longest window"),
        Int("n_embd", "64", ge=1),
        Int("n_layer", "2", ge=1),
        Int("n_head", "1", ge=1),
        Int("n_inner", "256", ge=1, null=True, doc="feed-forward width (null: 4 x n_embd)"),
        Num("dropout", "0.1", ge=0, lt=1),
        Num("attn_dropout", "0.1", ge=0, lt=1, null=True, doc="null: dropout"),
        Num("layer_norm_epsilon", "1e-5", gt=0),
        Num("initializer_range", "0.02", gt=0),
        Bool("segment_embedding", "false", doc="RecGPT's real/generated segment embedding (set by prompt-tuning)"),
    ),
    rules=(divisible("n_embd", "n_head"), window_fits("n_positions")),
    references=(
        Reference("ml-1m", "topk", "", ORIGINAL, (0.0893, 0.1771, 0.1627)),
        Reference("ml-1m", "greedy", "", ORIGINAL, (0.0845, 0.1642, 0.1413)),
        Reference("ml-1m", "rra", "T=0.3 top_k=50 N=20", ORIGINAL, (0.0951, 0.1857, 0.1701)),
        Reference("ml-1m", "topk", "", PAPER, (NAN, 0.1785, NAN)),
        Reference("ml-1m", "greedy", "", PAPER, (NAN, 0.1736, NAN)),
        Reference("ml-1m", "beam", "B=2", PAPER, (NAN, 0.1739, NAN)),
        Reference("ml-1m", "sampling", "T=0.3 top_k=50 N=1", PAPER, (NAN, 0.1613, NAN)),
        Reference("ml-1m", "rra", "T=0.3 top_k=50 N=20", "paper 2023 (timestamped ML-1M, RRA 20 seq.)", (NAN, 0.1969, NAN)),
        Reference("ml-1m", "rra", "T=0.3 top_k=50 N=100", "paper 2023 (timestamped ML-1M, RRA 100 seq.)", (NAN, 0.2002, NAN)),
    ),
    search_space={
        "seqrec_module.lr": "tag(log, interval(1e-4, 1e-2))",
        "model_params.dropout": "interval(0.0, 0.5)",
        "model_params.n_embd": "choice(32, 64, 128, 256)",  # divisible by model_params.n_head (1)
        "model_params.n_layer": "choice(1, 2, 3, 4)",
    },
))
