"""The evaluation protocols a training run can be made under (``protocol=``), declared once (torch-free).

A protocol decides how a user's interactions become training data, validation targets and test targets
(:mod:`seqrec.data.split` implements each), and what a prediction under it may do and report. Its rules are
declared here and checked in one place, :mod:`seqrec.config.checks`, before any data is read:

* ``long_term`` (the paper's, the default): the last ``last_n_items`` items of each user are held out; the users
  that have more are split 50/50 (seeded by ``random_state``) into validation and test users, at most
  ``dataloader.validation_size`` validation users are kept; every strategy, every metric.
* ``leave_one_out`` (the sequential-recommendation literature's: SASRec, BERT4Rec, gSASRec and the papers that
  re-examined them): on every user, the last item is the test item and the one before it the validation item;
  training uses the rest; the test input holds the validation item; validation on all users or a seeded sample
  of ``dataloader.validation_size``; test on every user. Users with fewer than 3 interactions are dropped (a
  printed count). One held-out item leaves no later position to generate for: Top-K only, NDCG@k and HR@k only.

A predict run always uses the protocol of its training run (``protocol=`` at prediction may only repeat it).
"""

from __future__ import annotations

from dataclasses import dataclass

from seqrec.core.errors import UserError

#: the protocol of runs made before ``protocol`` existed, and of a config that does not name one
DEFAULT = "long_term"


@dataclass(frozen=True)
class Protocol:
    """One evaluation protocol and the rules a run under it follows."""

    name: str
    summary: str  # what it holds out, in a few words (messages, docs)
    last_n_items: int | None = None  # the only held-out count it allows (None: any >= 1)
    min_interactions: int = 1  # users with fewer are dropped (neither trained on nor evaluated)
    strategies: tuple[str, ...] | None = None  # generation_params.strategy values a predict run may use (None: all)
    metrics: tuple[str, ...] | None = None  # accuracy metrics a predict run reports, @k (None: all); hr = hit rate
    event_attributes: bool = True  # features with event attributes can be used
    why: str = ""  # why the restrictions hold (the end of a refusal)

    def reports(self, name: str) -> bool:
        """Whether a predict run under this protocol reports metric ``name`` (``ndcg@10``, ``recall@10_pos3``)."""
        return self.metrics is None or name.split("@", 1)[0] in self.metrics and "_" not in name.split("@", 1)[-1]


LONG_TERM = Protocol(
    "long_term", "the last last_n_items items of each user held out; users split 50/50 into validation and test",
)
LEAVE_ONE_OUT = Protocol(
    "leave_one_out", "on every user the last item is the test item and the one before it the validation item",
    last_n_items=1, min_interactions=3, strategies=("topk",), metrics=("ndcg", "hr"), event_attributes=False,
    why="one held-out item per user leaves no later position to generate for",
)

PROTOCOLS = {p.name: p for p in (LONG_TERM, LEAVE_ONE_OUT)}


def protocol(name: str | None) -> Protocol:
    """The protocol called ``name`` (None: :data:`DEFAULT`); a one-line :class:`UserError` for an unknown one."""
    if name is None:
        return PROTOCOLS[DEFAULT]
    if name not in PROTOCOLS:
        raise UserError(f"protocol={name} is not a protocol; choose protocol={' or protocol='.join(PROTOCOLS)}")
    return PROTOCOLS[name]
