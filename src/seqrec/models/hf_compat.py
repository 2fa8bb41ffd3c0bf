"""Conversion between our GPT-2 and Hugging Face's ``GPT2LMHeadModel`` (same weights)."""

from __future__ import annotations

import re

import torch

from seqrec.models.gpt2 import GPT2

_HF_BUFFER = re.compile(r"\.attn\.(masked_)?bias$")  # causal-mask buffers of older HF versions


def hf_config(model: GPT2):
    from transformers import GPT2Config

    block = model.h[0]
    return GPT2Config(
        vocab_size=model.n_items + 1,
        n_positions=model.n_positions,
        n_embd=model.n_embd,
        n_layer=model.n_layer,
        n_head=model.n_head,
        n_inner=block.mlp.c_fc.out_features,
        resid_pdrop=block.mlp.dropout.p,
        embd_pdrop=model.drop.p,
        attn_pdrop=block.attn.attn_dropout,
        layer_norm_epsilon=model.ln_f.eps,
        activation_function="gelu_new",
        tie_word_embeddings=True,
        bos_token_id=0,
        eos_token_id=0,
        pad_token_id=0,
    )


def to_hf_gpt2(model: GPT2):
    """A ``transformers.GPT2LMHeadModel`` holding exactly ``model``'s weights."""
    from transformers import GPT2LMHeadModel

    hf = GPT2LMHeadModel(hf_config(model))
    state = {}
    for name, tensor in model.state_dict().items():
        # HF's Conv1D stores linear weights as [in, out]
        linear = name.endswith("weight") and tensor.ndim == 2 and name.split(".")[0] == "h"
        state[f"transformer.{name}"] = tensor.T.contiguous() if linear else tensor
    state["lm_head.weight"] = model.wte.weight.detach().clone()
    missing, unexpected = hf.load_state_dict(state, strict=False)
    missing = [m for m in missing if not _HF_BUFFER.search(m)]
    if missing or unexpected:
        raise RuntimeError(f"GPT-2 conversion mismatch: missing {missing}, unexpected {unexpected}")
    hf.tie_weights()
    return hf.eval()


@torch.no_grad()
def from_hf_gpt2(hf) -> GPT2:
    """Our :class:`GPT2` holding the weights of a ``GPT2LMHeadModel``."""
    c = hf.config
    model = GPT2(
        n_items=c.vocab_size - 1, n_positions=c.n_positions, n_embd=c.n_embd, n_layer=c.n_layer,
        n_head=c.n_head, n_inner=c.n_inner, dropout=c.resid_pdrop, attn_dropout=c.attn_pdrop,
        layer_norm_epsilon=c.layer_norm_epsilon,
    )
    state = {}
    for name, tensor in hf.transformer.state_dict().items():
        if _HF_BUFFER.search(name):
            continue
        linear = name.endswith("weight") and tensor.ndim == 2 and name.split(".")[0] == "h"
        state[name] = tensor.T.contiguous() if linear else tensor
    model.load_state_dict(state)
    return model.eval()
