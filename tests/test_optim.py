"""Optimizer and learning-rate schedule as config groups (optimizer/, scheduler/)."""

import json
import math
import shutil

import pandas as pd
import pytest
import torch

from conftest import ROOT, compose
from seqrec.training.optim import WarmupSchedule
from seqrec import predict, train

FIXTURE = ROOT / "tests" / "fixtures" / "default_optimizer"


class _FixtureCrossEntropy(torch.autograd.Function):
    """The fused cross-entropy as the fixture's code computed it (logsumexp in forward; logits, softmax and both
    gradients recomputed in backward). Today's makes the gradients in its forward pass with one exp per chunk, the
    same values to float rounding (tests/test_ops.py checks it against F.cross_entropy), not the same last bits;
    the fixture test swaps this one in, so that it still checks the optimizer and dropout draw for draw."""

    @staticmethod
    def forward(ctx, hidden, weight, targets, chunk, dtype):
        h, w = hidden.to(dtype), weight.to(dtype)
        lse = torch.empty(h.shape[0], dtype=torch.float32)
        losses = torch.empty_like(lse)
        for s in range(0, h.shape[0], chunk):
            logits = (h[s : s + chunk] @ w.T).float()
            logits[:, 0] = float("-inf")
            lse[s : s + chunk] = torch.logsumexp(logits, dim=1)
            losses[s : s + chunk] = lse[s : s + chunk] - logits.gather(1, targets[s : s + chunk, None]).squeeze(1)
        ctx.save_for_backward(h, w, targets, lse)
        ctx.chunk, ctx.in_dtypes = chunk, (hidden.dtype, weight.dtype)
        return losses.mean()

    @staticmethod
    def backward(ctx, grad_out):
        h, w, targets, lse = ctx.saved_tensors
        n, scale = h.shape[0], grad_out.float() / h.shape[0]
        grad_h = torch.empty(h.shape, dtype=torch.float32)
        grad_w = torch.zeros(w.shape, dtype=torch.float32)
        rows = torch.arange(min(ctx.chunk, n))
        for s in range(0, n, ctx.chunk):
            hc = h[s : s + ctx.chunk]
            logits = (hc @ w.T).float()
            logits[:, 0] = float("-inf")
            probs = torch.exp_(logits.sub_(lse[s : s + ctx.chunk, None]))
            probs[rows[: hc.shape[0]], targets[s : s + ctx.chunk]] -= 1.0
            g = probs.mul_(scale).to(w.dtype)
            grad_h[s : s + ctx.chunk] = (g @ w).float()
            grad_w += (g.T @ hc).float()
        return grad_h.to(ctx.in_dtypes[0]), grad_w.to(ctx.in_dtypes[1]), None, None, None


def test_default_optimizer_gives_the_results_of_the_code_before_the_groups(tmp_path, monkeypatch):
    """optimizer=adam, scheduler=none (the defaults) train exactly as the hard-coded Adam did: history.csv and
    the Top-K predictions equal those stored by the code before the optimizer/scheduler groups existed (same
    settings, one thread, fp32; bit-exact on the fixture's hardware, to float tolerance elsewhere). With
    ``dropout_masks=torch``: the fixture predates the cheap masks, and this also checks that the switch restores
    torch's dropout exactly. The cross-entropy is the fixture's own (see _FixtureCrossEntropy)."""
    from seqrec.data.synthetic import write_synthetic
    from seqrec.training import losses

    monkeypatch.setattr(losses, "linear_cross_entropy", lambda h, w, t, chunk, dtype: _FixtureCrossEntropy.apply(
        h, w, t, chunk, dtype or h.dtype) if len(h) else h.sum() * 0.0)
    from seqrec.core.hardware import hardware

    meta = json.loads((FIXTURE / "hardware.json").read_text())
    csv = write_synthetic(tmp_path / "syn.csv", n_users=300, n_items=80, min_len=20, max_len=50, seed=0)
    runs = tmp_path / "runs"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        # the fixture's dropout drew torch's own masks: dropout_masks=torch gives them back, draw for draw
        train(compose("GPT_train", [f"data_path={csv}", f"run_store={runs}", *meta["overrides"], "dropout_masks=torch"]))
        [tid] = [p.name for p in runs.iterdir()]
        predict(compose("GPT_predict", [f"train_task={tid}", f"run_store={runs}", "logger=none", "progress=false"]))
    finally:
        torch.set_num_threads(threads)
    [pdir] = [p for p in runs.iterdir() if p.name != tid]
    got_hist, want_hist = pd.read_csv(runs / tid / "history.csv"), pd.read_csv(FIXTURE / "history.csv")
    got_pred, want_pred = pd.read_parquet(pdir / "predictions.parquet"), pd.read_parquet(FIXTURE / "predictions.parquet")
    same_machine = json.loads((runs / tid / "run.json").read_text())["hardware"] == meta["hardware"]
    if same_machine:
        pd.testing.assert_frame_equal(got_hist, want_hist, check_exact=True)
        pd.testing.assert_frame_equal(got_pred, want_pred, check_exact=True)
    else:  # other CPU kernels round differently in the last bits
        pd.testing.assert_frame_equal(got_hist, want_hist, rtol=1e-4)
        assert (got_pred["item_id"].to_numpy() == want_pred["item_id"].to_numpy()).mean() > 0.99


def test_warmup_schedule_factors_by_hand():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    s = WarmupSchedule(opt, total_steps=14, warmup_steps=4, decay="cosine", min_factor=0.1)
    # warm-up: (step + 1) / 4; then cosine from 1 to 0.1 over the remaining 10 steps
    assert [s.factor(i) for i in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert s.factor(4) == pytest.approx(1.0)
    assert s.factor(9) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert s.factor(14) == pytest.approx(0.1) and s.factor(100) == pytest.approx(0.1)
    lin = WarmupSchedule(opt, total_steps=10, warmup_steps=0, decay="linear")
    assert [round(lin.factor(i), 6) for i in (0, 5, 10)] == [1.0, 0.5, 0.0]
    assert WarmupSchedule(opt, total_steps=10, warmup_steps=2).factor(7) == 1.0
    with pytest.raises(ValueError, match="decay must be one of"):
        WarmupSchedule(opt, total_steps=10, decay="exp")


def test_adamw_with_warmup_cosine_trains_by_config(tmp_path, tiny_csv, monkeypatch):
    """optimizer=adamw scheduler=warmup_cosine: AdamW with the configured betas, the learning rate follows the
    schedule step by step (read back from the last checkpoint's scheduler state); callbacks=lr_monitor adds
    Lightning's LearningRateMonitor, whose logged rates rise during the warm-up and end at the checkpoint's."""
    from seqrec.tracking.lightning_logger import TrackerLogger

    logged = []
    original = TrackerLogger.log_metrics

    def spy(self, metrics, step=None):
        logged.extend((k, float(v)) for k, v in metrics.items() if str(k).startswith("lr-"))
        return original(self, metrics, step)

    monkeypatch.setattr(TrackerLogger, "log_metrics", spy)
    runs = tmp_path / "runs"
    train(compose("GPT_train", [
        f"data_path={tiny_csv}", f"run_store={runs}", "optimizer=adamw", "scheduler=warmup_cosine", "callbacks=lr_monitor",
        "seqrec_module.scheduler.warmup_steps=5", "seqrec_module.weight_decay=0.01", "trainer_params.max_epochs=2",
        "dataset.max_length=16", "model_params.n_positions=16", "model_params.n_embd=16", "model_params.n_layer=1",
        "dataloader.batch_size=32", "logger=none", "trainer_params.enable_progress_bar=false",
        "trainer_params.log_every_n_steps=1",  # LearningRateMonitor logs at this interval
    ]))
    [run] = list(runs.iterdir())
    state = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    [opt] = state["optimizer_states"]
    group = opt["param_groups"][0]
    assert group["betas"] == (0.9, 0.98) and group["weight_decay"] == 0.01 and "decoupled_weight_decay" in group
    [sched] = state["lr_schedulers"]
    steps = sched["last_epoch"]
    total = state["global_step"]
    assert steps == total > 5  # stepped once per optimizer step
    # at the end of the run: cosine decay down to 0 at the estimated last step
    assert group["lr"] == pytest.approx(1e-3 * 0.5 * (1 + math.cos(math.pi * (steps - 5) / (total - 5))), rel=1e-6)
    rates = [v for k, v in logged if k == "lr-AdamW"]
    assert len(rates) == total  # one per optimizer step
    assert rates[0] < rates[4] <= 1e-3 and rates[0] == pytest.approx(1e-3 / 5, rel=1e-6)  # warm-up: lr / warmup_steps
    assert rates[-1] >= group["lr"]  # logged before the last step's scheduler update
