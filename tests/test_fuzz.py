"""Property-based input tests: random interaction files and random override values.

The property: loading + splitting any file, and checking any config value, ends in success or in one
:class:`UserError` line -- never another exception (a traceback for the user), never a hang. The fast profile
here runs a few hundred cases; ``python scripts/fuzz.py --examples N`` runs the same properties longer and
reports how many cases it tried.
"""

from __future__ import annotations

import contextlib
import signal
import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seqrec.core.errors import UserError

FAST = settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)

COLUMNS = ["user_id", "item_id", "timestamp", "rating"]
cell = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(alphabet=string.printable + "éü中🙂\u200b", max_size=12),
    st.sampled_from(["", "NaN", "null", "1e400", "-0", "0x1F", "2001-01-01", "2001-13-45T99:99", '"a,b"', "1,5"]),
)
header = st.lists(st.one_of(st.sampled_from(COLUMNS), st.text(max_size=8)), min_size=0, max_size=6)


@st.composite
def csv_text(draw) -> bytes:
    """A CSV-like file. One in ten: plain random bytes. Three in ten: a wild file (random header, delimiter,
    encoding, widths and cells). Otherwise a plausible log (the right header, integer ids of a few users with up
    to 40 events each, so the split and its checks are reached) with some cells replaced by random ones, and
    sometimes duplicated rows."""
    kind = draw(st.integers(0, 9))
    if kind == 0:
        return draw(st.binary(max_size=300))
    if kind <= 3:
        cols = draw(header)
        sep = draw(st.sampled_from([",", ";", "\t", "|"]))
        width = draw(st.integers(0, 6))
        rows = [sep.join(draw(cell) for _ in range(width)) for _ in range(draw(st.integers(0, 20)))]
        text = "\n".join([sep.join(cols), *rows])
        return text.encode(draw(st.sampled_from(["utf-8", "utf-16", "latin-1"])), errors="replace")
    cols = COLUMNS[: draw(st.sampled_from([3, 4]))]
    n_rows = draw(st.integers(0, 80))
    users = draw(st.lists(st.integers(1, 5), min_size=n_rows, max_size=n_rows))
    items = draw(st.lists(st.integers(1, 30), min_size=n_rows, max_size=n_rows))
    stamps = draw(st.lists(st.integers(0, 2**31), min_size=n_rows, max_size=n_rows))
    broken = draw(st.sets(st.integers(0, max(n_rows * len(cols) - 1, 0)), max_size=3))  # random cells here
    rows = []
    for r, (u, i, ts) in enumerate(zip(users, items, stamps)):
        row = [str(u), str(i), str(ts), str(draw(st.integers(1, 5)))][: len(cols)]
        row = [draw(cell) if r * len(cols) + c in broken else v for c, v in enumerate(row)]
        rows.append(",".join(row))
    if rows and draw(st.booleans()):
        rows += rows[: draw(st.integers(1, len(rows)))]  # duplicated rows
    return ("\n".join([",".join(cols), *rows]) + draw(st.sampled_from(["", "\n", "\r\n"]))).encode()


@contextlib.contextmanager
def time_box(seconds: float):
    """Fail (TimeoutError) instead of hanging when one case takes longer than ``seconds`` (a real timer signal:
    it interrupts a stuck loop, where hypothesis's own deadline only judges a case after it returned)."""
    def expired(signum, frame):
        raise TimeoutError(f"one fuzz case ran longer than {seconds} s: a hang")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def load_and_split(path) -> None:
    """The data path of every run: read, check, split; success or one UserError line, within 20 s (the largest
    generated file has a few hundred rows; anything near that is a hang)."""
    from seqrec.data.split import load_interactions, split_interactions

    with time_box(20):
        try:
            split_interactions(load_interactions(path), validation_size=10, random_state=0)
        except UserError as exc:
            assert "\n" not in str(exc) and str(exc), repr(str(exc))


@FAST
@given(data=csv_text())
def test_any_interaction_file_loads_or_fails_with_one_line(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("fuzz") / "log.csv"
    path.write_bytes(data)
    load_and_split(path)


TRAIN_KEYS = [
    "seqrec_module.lr", "seqrec_module.weight_decay", "seqrec_module.predict_top_k", "dataset.max_length",
    "dataloader.batch_size", "dataloader.validation_size", "patience", "last_n_items", "seed", "random_state",
    "trainer_params.max_epochs", "trainer_params.precision", "trainer_params.accelerator", "model_params.n_embd",
    "model_params.n_head", "model_params.n_layer", "model_params.dropout", "train_dataset.window",
]
value = st.one_of(
    st.integers(min_value=-(2**40), max_value=2**40), st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(), st.none(), st.text(alphabet=string.ascii_letters + string.digits + "._-", max_size=10),
    st.lists(st.integers(0, 3), max_size=3),
)


def check_override(config: str, key: str, val) -> None:
    """Compose ``config`` with ``key`` set to ``val`` and check it: success or one UserError line."""
    from omegaconf import OmegaConf

    from seqrec.config.checks import check_train_config
    from seqrec.experiments.plan import compose

    cfg = compose(config, ["data_path=data/ml-100k.csv"])
    OmegaConf.update(cfg, key, val, force_add=True)
    with time_box(20):
        try:
            check_train_config(cfg)
        except UserError as exc:
            assert "\n" not in str(exc) and str(exc), repr(str(exc))


@FAST
@given(key=st.sampled_from(TRAIN_KEYS), val=value, config=st.sampled_from(["GPT_train", "SASRec_train"]))
def test_any_override_value_is_accepted_or_refused_in_one_line(key, val, config):
    check_override(config, key, val)
