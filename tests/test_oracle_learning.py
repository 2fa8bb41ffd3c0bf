"""Learning tests against an oracle: every model trained on a log whose future is known exactly.

The log (``seqrec.data.oracle``, its defaults) has 3,000 users, each with a hidden taste (one of 8) that decides
where they move next. Three references are computed on the same 1,500 test users, with the same split:

* **popularity** -- the floor every recommender must clear;
* **Markov-1** -- item-to-item counts from the same training data: the best a model can do without reading
  the history (it sees only the last item, so it cannot know the taste);
* **the oracle** -- the exact future distribution: its Top-K (best next-item ranking) and its multi-step list
  (best list for all 10 held-out items). No list beats them in expectation (brute-forced in ``test_oracle.py``).

How each bar is set (none comes from a printed result):

1. *ahead of Markov-1 at the next item* (paired bootstrap CI of NDCG@10 at held-out position 0 above 0). On
   this log the taste is worth a lot at the next item (the oracle's NDCG ~.80 against Markov-1's ~.64, both
   computed here), and all a model needs is there: ~36,000 training transitions (3,000 train parts of 6-20
   items) for 8 tastes x ~230 items, i.e. ~20 per appeal value, and an embedding of 64 dims, more than the 8
   appeals + the item order it has to hold. A model that ignores the history is a Markov-1 model and fails
   this bar (with attention disabled it does: see ``scripts/break_oracle_tests.py``).
2. *at least half of what the taste is worth*, for models trained with a full softmax (cross-entropy over all
   items): next-item NDCG@10 >= (Markov-1 + oracle) / 2. Cross-entropy is the log-likelihood of the next item,
   so its minimiser is the true next-item distribution -- the oracle's ranking; the taste posterior is sharp
   (~.98 on the true taste after 6-20 items), and each transition is seen ~20 times (a relative error of
   ~1/sqrt(20) ~ 22 % on one count), so such a model is not expected to reach the oracle, but must close at
   least half of the gap. Sampled binary losses (BCE, gBCE) have another minimiser: each step compares the
   target with k random items, most of them unreachable from the current item, so the order among the ~10
   reachable items, which is what the taste decides, gets a small share of the gradient. For them bar 1 holds
   (they do read the history), this one is not claimed; ``python scripts/break_oracle_tests.py`` prints where
   they land.
3. *ahead of popularity* over all 10 held-out items (NDCG@10), the floor.
4. *never above the oracle*: NDCG@10 not significantly above the oracle multi-step list, next-item NDCG not
   significantly above the oracle Top-K. Being above is impossible in expectation, so it would mean the
   held-out items leaked into training or scoring.

BERT4Rec is trained for the masked-item task and reaches the next item slowly (its plateau is documented in the
README): measured on this log, 150 epochs (260 s here) give next-item NDCG .648 against Markov-1's .637, not
separable (100 epochs: .618, behind), and more is more than a test can spend. For it bar 1 is "not behind
Markov-1" (the CI's upper end above 0): it has learnt the transitions as well as counting them does. That still catches a BERT4Rec that
cannot read the history: without attention, the appended [MASK] position sees only itself, not even the last
item.

CIs: 2,000 paired bootstrap resamples over the 1,500 test users (95 %); a bar that holds only by chance
fails ~2.5 % of the time per comparison, so the bars are set where the effect is several CIs wide.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from conftest import compose
from seqrec.evaluation.baselines import markov_recs, popularity_recs
from seqrec.data.oracle import Oracle, write_oracle_log
from seqrec.data.split import load_interactions, split_interactions
from seqrec.evaluation.metrics import per_user_metrics
from seqrec import predict, train
from seqrec.evaluation.stats import paired_bootstrap_ci

SMALL = [
    "dataset.max_length=32", "dataloader.batch_size=32", "dataloader.validation_size=500",
    "trainer_params.enable_progress_bar=false", "trainer_params.enable_model_summary=false", "logger=none",
]
LATE = range(5, 10)


@dataclass
class OracleCase:
    csv: object
    split: object
    users: np.ndarray  # test users (split indices)
    base: dict  # name -> per-user metrics of the references


@pytest.fixture(scope="module")
def oracle_case(tmp_path_factory):
    return build_oracle_case(tmp_path_factory.mktemp("oracle") / "oracle.csv")


def build_oracle_case(path) -> OracleCase:
    csv, chain = write_oracle_log(path)
    split = split_interactions(load_interactions(csv), validation_size=2000, random_state=42)
    users = split.test_users
    targets = split.targets(users, 10)
    lists = Oracle(chain, split).recommend(users)
    refs = {
        "oracle Top-K": lists["topk"], "oracle multi-step": lists["multistep"],
        "popularity": popularity_recs(split.item_counts, split.train, users),
        "Markov-1": markov_recs(split.item_counts, split.train, users),
    }
    return OracleCase(csv, split, users, {name: per_user_metrics(r, targets, split.n_items) for name, r in refs.items()})


def late_recall(m: dict) -> np.ndarray:
    return np.mean([m[f"recall@10_pos{p}"] for p in LATE], axis=0)


def train_on_oracle(tmp_path, case: OracleCase, config: str, extra: list[str], strategies: dict) -> dict:
    """Train ``config`` on the oracle log, run each predict config of ``strategies`` ({name: (config, overrides)});
    return {name: per-user metrics of the test users, in ``case.users`` order}."""
    runs = tmp_path / "runs"
    cfg = compose(config, [f"data_path={case.csv}", f"run_store={runs}", "task_name=t_train", *SMALL, *extra])
    train(cfg)
    train_id = next(p.name for p in runs.iterdir())
    out = {}
    for name, (pconfig, params) in strategies.items():
        predict(compose(pconfig, [f"train_task={train_id}", f"run_store={runs}", "logger=none", *params]))
        latest = max((p for p in runs.iterdir() if p.name != train_id), key=lambda p: p.stat().st_mtime_ns)
        df = pd.read_parquet(latest / "per_user.parquet")
        df = df[df["part"] == "test"].set_index("user_id").loc[case.split.user_ids[case.users]]
        out[name] = {c: df[c].to_numpy(np.float64) for c in df.columns if c != "part"}
    return out


@dataclass
class Bar:
    name: str
    diff: float
    low: float
    high: float
    ok: bool

    def __str__(self):
        return f"{'ok  ' if self.ok else 'FAIL'} {self.name}: {self.diff:+.4f} [{self.low:+.4f}, {self.high:+.4f}]"


def paired(a, b):
    return paired_bootstrap_ci(a, b, n_resamples=2000, seed=0)


def topk_bars(m: dict, base: dict, claims: str) -> list[Bar]:
    """Bars 1-4 of the module docstring for one model's Top-K per-user metrics. ``claims``: ``full softmax``
    (all bars), ``sampled`` (no bar 2) or ``masked`` (BERT4Rec: bar 1 as "not behind", no bar 2)."""
    nxt = "ndcg@10_pos0"
    bars = []
    d = paired(m[nxt], base["Markov-1"][nxt])
    if claims == "masked":
        bars.append(Bar("next-item NDCG not behind Markov-1", *d, d[2] > 0))
    else:
        bars.append(Bar("next-item NDCG ahead of Markov-1", *d, d[1] > 0))
    if claims == "full softmax":
        half = (base["Markov-1"][nxt] + base["oracle Top-K"][nxt]) / 2
        d = paired(m[nxt], half)
        bars.append(Bar("next-item NDCG >= half-way from Markov-1 to the oracle", *d, d[0] >= 0))
    d = paired(m["ndcg@10"], base["popularity"]["ndcg@10"])
    bars.append(Bar("NDCG@10 ahead of popularity", *d, d[1] > 0))
    d = paired(m["ndcg@10"], base["oracle multi-step"]["ndcg@10"])
    bars.append(Bar("NDCG@10 not above the oracle multi-step list", *d, d[1] < 0))
    d = paired(m[nxt], base["oracle Top-K"][nxt])
    bars.append(Bar("next-item NDCG not above the oracle Top-K", *d, d[1] < 0))
    return bars


def summary(got: dict, base: dict) -> str:
    """Mean NDCG@10, next-item NDCG@10 and late-position recall of the references and of ``got``'s lists."""
    rows = [f"{'':22s} {'NDCG@10':>8s} {'next NDCG':>9s} {'late recall':>11s}"]
    for name, m in {**base, **got}.items():
        rows.append(f"{name:22s} {np.nanmean(m['ndcg@10']):8.4f} {np.nanmean(m['ndcg@10_pos0']):9.4f} "
                    f"{np.nanmean(late_recall(m)):11.4f}")
    return "\n".join(rows)


def check(bars: list[Bar], table: str = ""):
    text = "\n".join(map(str, bars))
    print(f"\n{table}\n{text}")
    assert all(b.ok for b in bars), text


TOPK = {"Top-K": ("predict", [])}
# model -> (config, overrides, which bars it claims). Sizes for a 230-item catalogue: 64-dim embeddings (the 8
# tastes' appeals + the item order), a learning rate for 3,000 short sequences, early stopping as usual.
MODELS = {
    "GPT": ("GPT_train", ["model_params.n_positions=32", "seqrec_module.lr=3e-3", "trainer_params.max_epochs=40"],
            "full softmax"),
    # SASRec's own loss (BCE with 1 negative) lands below Markov-1 here (next-item NDCG .585 vs .637 with these
    # settings, scripts/break_oracle_tests.py --train-override loss=BCE): the architecture is tested with a full softmax
    # (SASRec+, .737), gSASRec covers the sampled losses
    "SASRec": ("SASRec_train", ["loss=CE", "model_params.embedding_dim=64", "seqrec_module.lr=3e-3",
                                "trainer_params.max_epochs=40"], "full softmax"),
    # (gSASRec_train counts its patience in steps, 3,000: more than these 60 epochs, so no early stop)
    "gSASRec": ("gSASRec_train", ["model_params.embedding_dim=64", "seqrec_module.lr=3e-3",
                                  "trainer_params.max_epochs=60"], "sampled"),
    # half of the windows mask only their last item (the next-item task of prediction time): measured here, the
    # default 0.1 needs ~150 epochs to reach Markov-1's level, 0.5 about 60. A constant LR and a patience of 20
    # validations, as these settings were measured with (BERT4Rec_train warms its LR up over 500 steps and counts
    # its patience in steps, settings for ML-1M)
    "BERT4Rec": ("BERT4Rec_train", ["model_params.hidden_size=64", "model_params.inner_size=128", "seqrec_module.lr=3e-3",
                                    "train_dataset.last_item_rate=0.5", "trainer_params.max_epochs=80", "patience=20",
                                    "patience_steps=null", "scheduler=none"],
                 "masked"),
}


@pytest.mark.parametrize("model", ["SASRec", "gSASRec", "BERT4Rec"])
def test_model_reaches_its_oracle_bars(tmp_path, oracle_case, model):
    config, extra, claims = MODELS[model]
    strategies = {**TOPK, "greedy": ("greedy", []), "beam": ("beam", ["generation_params.num_beams=2"])}
    got = train_on_oracle(tmp_path, oracle_case, config, extra, strategies)
    bars = topk_bars(got["Top-K"], oracle_case.base, claims)
    # every strategy runs on the trained model and finds the next item more often than popularity (the floor)
    for name in ("greedy", "beam"):
        d = paired(got[name]["recall@10_pos0"], oracle_case.base["popularity"]["recall@10_pos0"])
        bars.append(Bar(f"{name}: next-item recall ahead of popularity", *d, d[1] > 0))
    check(bars, summary({f"{model} {k}": v for k, v in got.items()}, oracle_case.base))


def test_gpt_reaches_its_oracle_bars_and_generation_beats_the_oracle_topk(tmp_path, oracle_case):
    """GPT-2's Top-K bars, and the paper's claim against ground truth: multi-sequence generation (RRA over 20
    sampled sequences) finds more of the late held-out items than GPT-2's own Top-K, and over all 10 held-out
    items it beats the oracle Top-K -- the best any next-item ranking can do (exactly known here), so no
    amount of training could make Top-K catch up. It stays below the oracle multi-step list."""
    config, extra, claims = MODELS["GPT"]
    rra = ("temperature", ["generation_params.num_return_sequences=20", "generation_params.temperature=0.5"])
    got = train_on_oracle(tmp_path, oracle_case, config, extra, {**TOPK, "RRA": rra})
    base = oracle_case.base
    bars = topk_bars(got["Top-K"], base, claims)
    d = paired(late_recall(got["RRA"]), late_recall(got["Top-K"]))
    bars.append(Bar("RRA: late-position recall (held-out 5-9) ahead of Top-K", *d, d[1] > 0))
    d = paired(got["RRA"]["ndcg@10"], base["oracle Top-K"]["ndcg@10"])
    bars.append(Bar("RRA: NDCG@10 ahead of the oracle Top-K", *d, d[1] > 0))
    d = paired(got["RRA"]["ndcg@10"], base["oracle multi-step"]["ndcg@10"])
    bars.append(Bar("RRA: NDCG@10 not above the oracle multi-step list", *d, d[1] < 0))
    check(bars, summary({f"GPT {k}": v for k, v in got.items()}, base))
