"""Beam search: keep the ``num_beams`` best partial sequences by summed log-probability."""

from __future__ import annotations

import torch

from seqrec.generation.base import Strategy


class Beam(Strategy):
    name = "beam"
    width_parameter = "num_beams"

    def __init__(self, beams: int):
        self.width = beams

    @classmethod
    def from_params(cls, params):
        return cls(params["num_beams"])

    def describe(self) -> str:
        return f"beam (num_beams={self.width})"

    def generate(self, state):
        U, B, k = state.users, self.width, state.ctx.k
        logp = torch.log_softmax(state.logits(), dim=1)  # [U, V]
        V = logp.shape[1]
        top = torch.topk(logp, B, dim=1)
        totals = top.values  # [U, B] summed log-probabilities
        steps = top.values.reshape(U * B, 1)  # per-item log-probabilities of each beam
        state.expand(B)
        state.push(top.indices.reshape(-1))
        base = torch.arange(U, device=logp.device)[:, None] * B
        for _ in range(1, k):
            logp = torch.log_softmax(state.logits(), dim=1).view(U, B, V)
            cand = (totals[:, :, None] + logp).view(U, B * V)
            best = torch.topk(cand, B, dim=1)
            beam, item = best.indices // V, best.indices % V
            rows = (base + beam).reshape(-1)
            item_logp = logp.view(U * B, V)[rows, item.reshape(-1)]
            steps = torch.cat([steps[rows], item_logp[:, None]], 1)
            totals = best.values
            state.push(item.reshape(-1), rows=rows)
        winner = (torch.arange(U, device=logp.device) * B + totals.argmax(1))
        return state.generated[winner], steps[winner]
