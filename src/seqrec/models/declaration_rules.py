"""Declaration helpers shared by the model declarations (torch-free): cross-key rules and the handlers of the
seed code bases' hyper-parameter names that need more than a copy (RecBole's ``loss_type``, gSASRec's
``device``, ...)."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf

from seqrec.core.errors import UserError

#: names the seed code bases give to training-loop settings -> the setting they mean here
TRAINING_LOOP = {
    "batch_size": "dataloader.batch_size",
    "eval_batch_size": "dataloader.test_batch_size",
    "n_epochs": "trainer_params.max_epochs",
    "learning_rate": "seqrec_module.lr",
}


def divisible(size: str, heads: str):
    """Rule: ``model_params.<size>`` is a multiple of ``model_params.<heads>`` (attention heads split it)."""

    def rule(values, cfg) -> str | None:
        a, b = values.get(size), values.get(heads)
        if isinstance(a, int) and isinstance(b, int) and b and a % b:
            return f"model_params.{size} ({a}) must be divisible by model_params.{heads} ({b})"
        return None

    return rule


def window_fits(positions: str):
    """Rule: the history window ``dataset.max_length`` fits the ``model_params.<positions>`` learned positions."""

    def rule(values, cfg) -> str | None:
        n = values.get(positions)
        length = OmegaConf.select(cfg, "dataset.max_length") if isinstance(cfg, DictConfig) else None
        if isinstance(n, int) and isinstance(length, int) and length > n:
            return (f"dataset.max_length ({length}) exceeds model_params.{positions} ({n}); "
                    f"lower dataset.max_length or raise model_params.{positions}")
        return None

    return rule


# ------------------------------------------------------------------ seed names with logic
LOSS_TYPES = {"CE": "seqrec.training.losses.CrossEntropy", "BCE": "seqrec.training.losses.BCE", "BPR": "seqrec.training.losses.BPR"}
SAMPLED_SOFTMAX = "seqrec.training.losses.SampledSoftmax"


def loss_settings(cfg: DictConfig, params: dict) -> None:
    """RecBole's ``loss_type`` (CE | BCE | BPR) replaces the loss; ``negative_samples_count`` sets its negatives
    (CE with a count > 0 is a sampled softmax over that many negatives; 0 or null with CE: the full softmax)."""
    loss_type, count = params.get("loss_type"), params.get("negative_samples_count")
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 0):
        raise UserError(f"model_params.negative_samples_count must be an integer >= 0 (got {count!r})")
    if loss_type is not None:
        if loss_type not in LOSS_TYPES:
            raise UserError(f"model_params.loss_type must be one of {', '.join(LOSS_TYPES)} (got {loss_type!r})")
        node: dict[str, Any] = {"_target_": LOSS_TYPES[loss_type]}
        if loss_type != "CE":
            node["num_negatives"] = 1
        cfg.seqrec_module.loss = node
    if not count:
        return
    loss = cfg.seqrec_module.loss
    if "num_negatives" in loss:
        loss.num_negatives = count
    elif loss._target_ == LOSS_TYPES["CE"]:
        cfg.seqrec_module.loss = {"_target_": SAMPLED_SOFTMAX, "num_negatives": count}
    else:
        raise UserError(
            f"model_params.negative_samples_count={count} but the loss {loss._target_} samples no negatives; "
            f"use loss_type CE, BCE or BPR"
        )


def device(cfg: DictConfig, params: dict) -> None:
    """``device`` (auto | cpu | cuda | gpu | cuda:<N>) picks the trainer's accelerator (and device)."""
    value = params.get("device")
    if value is None or value == "auto":
        cfg.trainer_params.accelerator = "auto"
        return
    if value == "cpu":
        cfg.trainer_params.accelerator = "cpu"
        return
    name, _, index = str(value).partition(":")
    if name not in ("cuda", "gpu") or (index and not index.isdigit()):
        raise UserError(f"model_params.device must be auto, cpu, cuda, gpu or cuda:<N> (got {value!r})")
    import torch

    if not torch.cuda.is_available():
        raise UserError(f"model_params.device={value} but no CUDA GPU is available here; use device=cpu or auto")
    if index and int(index) >= torch.cuda.device_count():
        raise UserError(f"model_params.device={value} but only {torch.cuda.device_count()} GPU(s) are visible")
    cfg.trainer_params.accelerator = "gpu"
    if index:
        cfg.trainer_params.devices = [int(index)]


def split_ratio(cfg: DictConfig, params: dict) -> None:
    value = params.get("split_ratio")
    if value is not None and value != 0.5:
        raise UserError(
            f"model_params.split_ratio={value}: the long-term protocol splits evaluable users 50/50 into "
            "validation and test users; only 0.5 is supported"
        )


def sampled_evaluation(cfg: DictConfig, params: dict) -> None:
    strategy = params.get("sample_strategy")
    if strategy not in (None, "none", "full"):
        raise UserError(
            f"model_params.sample_strategy={strategy!r}: evaluation always ranks the whole catalogue "
            "(PROTOCOL.md); use null or full"
        )
    for key in ("sample_seed", "sample_ratio"):
        if params.get(key) is not None:
            raise UserError(
                f"model_params.{key} only applies to sampled evaluation (sample_strategy), which the protocol "
                "does not use; set it to null"
            )
