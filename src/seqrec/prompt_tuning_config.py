"""Declaration of RecGPT's prompt-tuning stage (:mod:`seqrec.prompt_tuning`), the ``prompt_tuning`` section of the
``*_prompt_tune`` configs, and the rules a pre-trained run must meet (torch-free: checked before anything loads)."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict

from seqrec.errors import UserError
from seqrec.registry import Component, register
from seqrec.settings import Bool, Choice, Int


class Stage(Component):
    kind = "stage"


PROMPT_TUNING = register(Stage("prompt_tuning", "seqrec.prompt_tuning.PromptAugmenter", settings=(
    Choice("mode", ("replace_last", "insert", "none"), default="replace_last",
           want="replace_last (RecGPT's default), insert, or none (the control: fine-tuning without prompts)"),
    Int("prompt_length", "1", ge=1, le=16, default=1, doc="generated items per window (replace_last) or per item"),
    Int("max_rows", "4096", ge=1, default=4096, doc="rows per chunk of the prompt generation"),
    Bool("freeze_item_embeddings", "false", default=False, doc="keep the pre-trained item embeddings fixed"),
), doc="sequences augmented with the model's own arg-max predictions"))

#: what a prompt-tuning run takes from its pre-trained run: the network (its declared settings; the seed code
#: bases' names of training settings stay the prompt-tuning config's) and the data split
INHERITED = ("model", "model_params", "dataset.max_length", "last_n_items", "random_state", "train_dataset")


def inherit_pretrained(cfg: DictConfig) -> DictConfig | None:
    """For ``pretrained_task=<ID>``: check the run (a completed, causal training run on the same data) and copy its
    network and split settings into ``cfg`` (``model_params.segment_embedding`` turned on); returns the
    pre-trained run's config, or None without ``pretrained_task``. One-line errors otherwise."""
    from seqrec import registry
    from seqrec.config import check_train_run, model_declaration

    run_id = cfg.get("pretrained_task")
    if run_id is None:
        return None
    if cfg.get("prompt_tuning") is None:
        raise UserError("pretrained_task is for prompt-tuning; use --config-name=GPT_prompt_tune (or SASRec_/gSASRec_)")
    pre = check_train_run(cfg.run_store, str(run_id), key="pretrained_task")
    model = model_declaration(pre)
    if not model.kv_cache:
        causal = ", ".join(m.label for m in registry.components("model") if m.kv_cache and m.label)
        raise UserError(f"pretrained_task={run_id} is a {model.label or model.name} run; prompt-tuning generates "
                        f"left to right and needs a causal model ({causal})")
    same = Path(str(pre.data_path)).resolve() == Path(str(cfg.data_path)).resolve()
    if not same:
        raise UserError(f"pretrained_task={run_id} was trained on data_path={pre.data_path}; prompt-tuning continues "
                        f"on its split: pass data_path={pre.data_path}")
    network = {k: v for k, v in (OmegaConf.select(pre, "model_params") or {}).items() if model.setting(k) is not None}
    with open_dict(cfg):
        for key in INHERITED:
            value = network if key == "model_params" else OmegaConf.select(pre, key)
            if value is not None:
                OmegaConf.update(cfg, key, value, merge=False, force_add=True)
        cfg.model_params.segment_embedding = True
    return pre
