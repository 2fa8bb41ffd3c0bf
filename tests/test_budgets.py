"""Training budgets in optimizer steps (``patience_steps``, ``trainer_params.max_steps``), gBCE's t warm-up and
SASRec's reference-code initialisation options."""

import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import TINY_GPT, compose
from seqrec.config.checks import apply_model_aliases, check_train_config
from seqrec.training.early_stopping import StepPatience, early_stopping, steps_between_validations
from seqrec.core.errors import UserError
from seqrec.training.losses import BCE, gBCE, gbce_beta
from seqrec.models.sasrec import SASRec
from seqrec import train

TINY = [*TINY_GPT, "logger=none"]


def _train(data, runs, *extra):
    before = set(runs.iterdir()) if runs.is_dir() else set()
    train(compose("GPT_train", [f"data_path={data}", f"run_store={runs}", *TINY, *extra]))
    [run_dir] = set(runs.iterdir()) - before
    return run_dir


def _expected_stop(values: list[float], patience: int) -> int:
    """Validations Lightning's rule runs before it stops: stop at the first one that is the ``patience``-th in a
    row without a strict improvement; all of them when that never happens."""
    best, wait = -math.inf, 0
    for i, v in enumerate(values, 1):
        if v > best:
            best, wait = v, 0
        else:
            wait += 1
            if wait >= patience:
                return i
    return len(values)


def _fake_trainer(batches, val_check_batch=None, every=1, accumulate=1):
    return SimpleNamespace(num_training_batches=batches, val_check_batch=val_check_batch or batches,
                           check_val_every_n_epoch=every, accumulate_grad_batches=accumulate, is_global_zero=True)


def test_steps_between_validations_by_hand():
    assert steps_between_validations(_fake_trainer(95)) == 95  # one check per epoch
    assert steps_between_validations(_fake_trainer(95, every=2)) == 190  # every second epoch
    assert steps_between_validations(_fake_trainer(95, val_check_batch=20)) == 20  # val_check_interval=20
    assert steps_between_validations(_fake_trainer(95, accumulate=2)) == 48  # ceil(95 / 2) optimizer steps
    stop = StepPatience(3000, monitor="m", mode="max")
    stop.on_train_start(_fake_trainer(95), None)  # ML-1M, batch 64: ceil(3000 / 95) = 32 validations
    assert stop.patience == 32
    stop.on_train_start(_fake_trainer(15), None)  # ML-100k: ceil(3000 / 15) = 200, the old hand-set epochs
    assert stop.patience == 200
    assert early_stopping("m", 7, None).patience == 7 and not isinstance(early_stopping("m", 7, None), StepPatience)
    with pytest.raises(ValueError, match="patience_steps"):
        StepPatience(0, monitor="m")


@pytest.mark.parametrize("every, patience_steps", [(1, 7), (2, 7)])
def test_patience_in_steps_stops_where_the_rule_says(tmp_path, tiny_csv, every, patience_steps):
    # 3 batches per epoch; patience 7 steps = ceil(7 / 3) = 3 validations every epoch, ceil(7 / 6) = 2 every second
    # epoch. lr 1e-9 keeps validation flat, so the run must stop early (well before its 40 epochs)
    run = _train(tiny_csv, tmp_path / "runs", "trainer_params.limit_train_batches=3", "seqrec_module.lr=1e-9",
                 "trainer_params.max_epochs=40", f"trainer_params.check_val_every_n_epoch={every}",
                 f"patience_steps={patience_steps}", "patience=null")
    history = pd.read_csv(run / "history.csv")
    values = history["val_next_ndcg@10"].dropna().tolist()
    patience = math.ceil(patience_steps / (3 * every))
    assert len(values) == _expected_stop(values, patience) < 40 // every
    assert history["step"].iloc[-1] + 1 == 3 * every * len(values)  # steps taken: 3 per epoch


def test_max_steps_budget_without_epochs(tmp_path, tiny_csv, caplog):
    import logging

    with caplog.at_level(logging.INFO):  # Lightning's budget line, and the no-validation warning were it given
        run = _train(tiny_csv, tmp_path / "runs", "trainer_params.limit_train_batches=3",
                     "trainer_params.max_epochs=null", "trainer_params.max_steps=7")
    assert "`max_steps=7` reached" in caplog.text
    assert "without a validation" not in caplog.text
    # validations after the 3rd and 6th steps (whole epochs) and after the 7th, where the budget ends mid-epoch
    # (Lightning alone would skip that one: the last row had no validation metric)
    history = pd.read_csv(run / "history.csv")
    assert history["step"].tolist() == [2, 5, 6]
    assert history["val_next_ndcg@10"].notna().all()


def test_training_without_any_validation_ends_normally(tmp_path, tiny_csv, caplog):
    """``max_steps`` below one validation interval with validation turned off (``limit_val_batches=0``): no metric
    to stop on; the run completes with one warning (Lightning's end-of-epoch check used to fail it with "metric
    ... is not available") and keeps its last weights."""
    import json
    import logging

    with caplog.at_level(logging.WARNING, logger="seqrec"):
        run = _train(tiny_csv, tmp_path / "runs", "trainer_params.max_steps=2", "+trainer_params.limit_val_batches=0")
    warnings = [r.getMessage() for r in caplog.records if "without a validation" in r.getMessage()]
    assert len(warnings) == 1 and "after 2 steps" in warnings[0] and "limit_val_batches=0" in warnings[0], warnings
    assert json.loads((run / "run.json").read_text())["status"] == "completed"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["best_epoch"] is None and math.isnan(metrics["best_val_next_ndcg@10"])
    assert (run / "model.pt").is_file()
    history = pd.read_csv(run / "history.csv")  # the training loss of the 2 steps, and no validation
    assert history["step"].tolist() == [1] and "val_next_ndcg@10" not in history


@pytest.mark.parametrize("overrides, needle", [
    (["trainer_params.max_epochs=null"], "trainer_params.max_epochs=null needs a step budget"),
    (["trainer_params.max_epochs=null", "trainer_params.max_steps=-1"], "needs a step budget"),
    (["trainer_params.max_steps=0"], "trains nothing"),
    (["patience_steps=0"], "patience_steps"),
    (["patience_steps=abc"], "patience_steps"),
    # early stopping counts validations or steps, never both: a patience given to a step-counting config is not
    # silently ignored
    (["patience_steps=3000"], r"^patience=10 \(validations\) and patience_steps=3000 \(optimizer steps\) are both set; "
                              "pass patience_steps=null to count validations, or patience=null to count steps$"),
    (["patience=null"], r"^patience=null needs patience_steps=<N>"),
])
def test_bad_budgets_are_one_line_errors(tmp_path, tiny_csv, overrides, needle):
    with pytest.raises(UserError, match=needle) as err:
        train(compose("GPT_train", [f"data_path={tiny_csv}", f"run_store={tmp_path / 'runs'}", *TINY, *overrides]))
    assert "\n" not in str(err.value)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())  # no run folder


@pytest.mark.parametrize("config", ["gSASRec_train", "BERT4Rec_train"])
def test_step_budgets_are_the_same_for_every_dataset(config):
    cfg = compose(config, ["data_path=data/ml-100k.csv"])
    other = compose(config, ["data_path=data/ml-1m.csv"])
    assert cfg.patience_steps == other.patience_steps and cfg.patience_steps is not None and cfg.patience is None
    assert cfg.trainer_params.max_steps == other.trainer_params.max_steps > 0
    assert cfg.trainer_params.max_epochs is None
    check_train_config(cfg)  # exactly one patience


def test_gsasrec_decays_its_learning_rate_by_a_cosine_without_warm_up():
    """gSASRec_train: cosine to 0 at step 8,000 (the same Top-K test NDCG@10 as 20,000 steps at a constant LR on ML-1M,
    config), no LR warm-up (the gBCE ramps start the run)."""
    cfg = compose("gSASRec_train")
    assert cfg.seqrec_module.scheduler._target_ == "seqrec.training.optim.WarmupSchedule"
    assert cfg.seqrec_module.scheduler.decay == "cosine" and cfg.seqrec_module.scheduler.warmup_steps == 0
    assert cfg.trainer_params.max_steps == 8000 and cfg.seqrec_module.lr == 1e-3
    check_train_config(cfg)
    assert compose("gSASRec_train", ["scheduler=none"]).seqrec_module.scheduler is None  # a constant LR, by one override


def test_bert4rec_warm_up_comes_from_the_scheduler_group():
    cfg = compose("BERT4Rec_train")
    assert cfg.seqrec_module.scheduler._target_ == "seqrec.training.optim.WarmupSchedule"
    assert cfg.seqrec_module.scheduler.warmup_steps == 500 and cfg.seqrec_module.lr == 2e-3
    # cosine decay to 0 at the step budget (8,000: the same Top-K test NDCG@10 as 12,000 at a constant LR, config)
    assert cfg.seqrec_module.scheduler.decay == "cosine" and cfg.seqrec_module.scheduler.min_factor == 0.0
    assert cfg.trainer_params.max_steps == 8000
    off = compose("BERT4Rec_train", ["scheduler=none"])  # a constant LR, as every other model trains
    assert off.seqrec_module.scheduler is None
    check_train_config(off)


def test_a_patience_given_to_a_step_counting_config_is_an_error():
    """gSASRec's seed name ``patience`` (and BERT4Rec's ``early_stopping_step``) count validations: with the step
    patience of their configs they must say so, not be ignored."""
    for config, override in (("gSASRec_train", "model_params.patience=20"),
                             ("BERT4Rec_train", "model_params.early_stopping_step=20"), ("BERT4Rec_train", "patience=20")):
        cfg = compose(config, [override])
        with pytest.raises(UserError, match="patience=20 .* and patience_steps=3000 .* are both set"):
            check_train_config(cfg)
        cfg = compose(config, [override, "patience_steps=null"])
        check_train_config(cfg)
        apply_model_aliases(cfg)
        assert cfg.patience == 20


# --------------------------------------------------------------------------- gBCE t warm-up
def test_gbce_t_warmup_ramps_beta_from_bce():
    loss = gBCE(neg_per_positive=4, gbce_t=0.8, t_warmup_steps=100)
    for step, t in [(0, 0.0), (25, 0.2), (50, 0.4), (100, 0.8), (5000, 0.8)]:
        loss.step = step
        assert loss.current_t == pytest.approx(t)
    torch.manual_seed(0)
    model = SASRec(20, sequence_length=8, embedding_dim=8)
    hidden, targets = torch.randn(6, 8), torch.randint(1, 21, (6,))
    negatives = torch.randint(1, 21, (6, 4))
    loss.step = 0  # t = 0: beta = 1, gBCE is BCE with the same negatives
    assert loss(model, hidden, targets, negatives).item() == pytest.approx(BCE(4)(model, hidden, targets, negatives).item(),
                                                                          rel=1e-6)
    loss.step = 50  # halfway: the gBCE of t = 0.4
    assert loss(model, hidden, targets, negatives).item() == pytest.approx(
        gBCE(4, gbce_t=0.4)(model, hidden, targets, negatives).item(), rel=1e-6)
    assert gbce_beta(4, 20, 0.4) < 1.0
    with pytest.raises(ValueError, match="t_warmup_steps"):
        gBCE(4, t_warmup_steps=-1)


def test_gbce_negative_warmup_ramps_the_negatives_and_beta():
    loss = gBCE(neg_per_positive=256, gbce_t=0.75, neg_warmup_steps=100)
    for step, k in [(0, 1), (1, 3), (50, 128), (99, 254), (100, 256), (10_000, 256)]:  # ceil(256 * step / 100)
        loss.step = step
        assert loss.num_negatives == k
    torch.manual_seed(0)
    model = SASRec(20, sequence_length=8, embedding_dim=8)
    hidden, targets = torch.randn(6, 8), torch.randint(1, 21, (6,))
    negatives = torch.randint(1, 21, (6, 3))
    # with 3 negatives in use, beta is that of k = 3 (not 256): the same as a gBCE built with 3
    assert loss(model, hidden, targets, negatives).item() == pytest.approx(
        gBCE(3, gbce_t=0.75)(model, hidden, targets, negatives).item(), rel=1e-6)
    with pytest.raises(ValueError, match="neg_warmup_steps"):
        gBCE(4, neg_warmup_steps=1.5)


def test_training_module_gives_the_loss_its_global_step():
    import lightning as L

    from seqrec.data.datasets import CausalLMDataset
    from seqrec.data.sequences import Sequences
    from seqrec.training.lightning_module import SeqRecModule

    rows = [[1, 2, 3, 4, 5, 6], [3, 4, 5, 6, 7, 8], [2, 4, 6, 8, 1, 3]] * 4
    seqs = Sequences.from_lengths(np.concatenate(rows), np.array([len(r) for r in rows]))
    data = CausalLMDataset(seqs, 6, seed=0)
    loader = torch.utils.data.DataLoader(data, batch_size=4, collate_fn=data.collate)
    loss = gBCE(neg_per_positive=3, gbce_t=0.5, t_warmup_steps=100)
    module = SeqRecModule(SASRec(8, sequence_length=6, embedding_dim=8), loss)
    seen = []
    original = loss.forward

    def spy(*args, **kwargs):
        seen.append(loss.step)
        return original(*args, **kwargs)

    loss.forward = spy
    L.Trainer(max_steps=5, logger=False, enable_checkpointing=False, enable_progress_bar=False,
              enable_model_summary=False, limit_val_batches=0).fit(module, loader)
    assert seen == [0, 1, 2, 3, 4]



def test_training_module_gives_a_sequence_sharing_loss_its_target_mask(tmp_path, tiny_csv):
    """share_negatives=sequence: the loss gets the batch's [B, L] target mask, one True per row it scores; a
    per-position loss gets none. End to end, gSASRec trains by config with shared negatives."""
    import lightning as L

    from seqrec.data.datasets import CausalLMDataset
    from seqrec.data.sequences import Sequences
    from seqrec.training.lightning_module import SeqRecModule

    rows = [[1, 2, 3, 4, 5, 6], [3, 4, 5, 6, 7, 8], [2, 4, 6, 8]] * 4
    seqs = Sequences.from_lengths(np.concatenate(rows), np.array([len(r) for r in rows]))
    data = CausalLMDataset(seqs, 6, seed=0)
    loader = torch.utils.data.DataLoader(data, batch_size=4, collate_fn=data.collate)
    for share in ("sequence", "position"):
        loss = gBCE(neg_per_positive=3, share_negatives=share)
        module = SeqRecModule(SASRec(8, sequence_length=6, embedding_dim=8), loss)
        seen = []
        original = loss.forward

        def spy(model, hidden, targets, **kwargs):
            seen.append((len(targets), kwargs.get("positions")))
            return original(model, hidden, targets, **kwargs)

        loss.forward = spy
        L.Trainer(max_steps=3, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                  enable_model_summary=False, limit_val_batches=0).fit(module, loader)
        assert len(seen) == 3
        for n, positions in seen:
            assert (positions is None) == (share == "position")
            assert positions is None or (positions.dtype == torch.bool and positions.shape == (4, 5)  # windows of 6: 5 inputs
                                         and int(positions.sum()) == n)
    runs = tmp_path / "runs"
    train(compose("gSASRec_train", [f"data_path={tiny_csv}", f"run_store={runs}", "logger=none",
                                    "trainer_params.max_epochs=1", "trainer_params.max_steps=-1",
                                    "model_params.embedding_dim=8", "dataset.max_length=8",
                                    "seqrec_module.loss.neg_per_positive=4", "seqrec_module.loss.share_negatives=sequence"]))
    [run] = list(runs.iterdir())
    assert (run / "metrics.json").exists()
    with pytest.raises(UserError, match="share_negatives") as err:
        train(compose("gSASRec_train", [f"data_path={tiny_csv}", f"run_store={runs}", "logger=none",
                                        "seqrec_module.loss.share_negatives=batch"]))
    assert "\n" not in str(err.value) and len(list(runs.iterdir())) == 1  # one line, no new run folder

# --------------------------------------------------------------------------- SASRec initialisation options
def test_sasrec_embedding_init_and_scale_options():
    torch.manual_seed(0)
    normal = SASRec(400, embedding_dim=32, reuse_item_embeddings=False, embedding_init="normal", scale_embeddings=False)
    xavier = SASRec(400, embedding_dim=32)
    # N(0, 1): the sample sd of 400 x 32 draws is within 0.05 of 1 (its standard error is ~0.004)
    for table in (normal.embed.item.weight[1:], normal.output_items.weight, normal.embed.position.weight):
        assert abs(float(table.detach().std()) - 1.0) < 0.05
    # xavier normal: sd = sqrt(2 / (fan_in + fan_out)) = sqrt(2 / 433) = 0.068 for the 401 x 32 item table; the
    # sample sd of 12,800 draws has a standard error of 0.068 / sqrt(2 * 12,800) = 0.0004: 0.01 is ~20 of them
    assert abs(float(xavier.embed.item.weight[1:].detach().std()) - math.sqrt(2 / 433)) < 0.01
    assert torch.count_nonzero(normal.embed.item.weight[0]) == 0  # padding stays zero
    assert normal.embed.scale == 1.0 and xavier.embed.scale == pytest.approx(math.sqrt(32))
    # the attention/FFN matrices are xavier in both: fc1 is 32 x 32, sd sqrt(2 / 64) = 0.177, standard error of
    # the sample sd 0.177 / sqrt(2 * 1,024) = 0.004 (0.03 is ~8 of them; N(0, 1) would be off by 0.8)
    assert abs(float(normal.blocks[0].ffn.fc1.weight.detach().std()) - math.sqrt(2 / 64)) < 0.03
    with pytest.raises(ValueError, match="embedding_init"):
        SASRec(10, embedding_init="uniform")
