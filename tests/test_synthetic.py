import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from seqrec.data.synthetic import make_synthetic, write_synthetic
from seqrec.core.errors import UserError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def df():
    return make_synthetic()


def test_columns_and_types(df):
    assert list(df.columns) == ["user_id", "item_id", "timestamp", "rating"]
    assert all(pd.api.types.is_integer_dtype(df[c]) for c in df.columns)
    assert set(df["rating"].unique()) <= {1, 2, 3, 4, 5}
    assert (df["rating"] == 5).mean() > 0.5  # followed transitions are rated 5


def test_deterministic_per_seed(df):
    pd.testing.assert_frame_equal(df, make_synthetic(seed=0))
    other = make_synthetic(seed=1)
    assert len(other) != len(df) or not np.array_equal(other["item_id"].to_numpy(), df["item_id"].to_numpy())


def test_lengths_ids_and_order(df):
    lengths = df.groupby("user_id").size()
    assert lengths.index.tolist() == list(range(1, 1001))
    assert lengths.min() >= 30 and lengths.max() <= 80
    assert lengths.min() < 40 and lengths.max() > 70  # the whole range is used
    assert sorted(df["item_id"].unique()) == list(range(1, 301))
    # rows come user by user, timestamp = position 0..len-1
    assert (df["user_id"].diff().fillna(0) >= 0).all()
    expected_ts = np.concatenate([np.arange(n) for n in lengths])
    np.testing.assert_array_equal(df["timestamp"].to_numpy(), expected_ts)


def test_no_repeats_within_user(df):
    assert not df.duplicated(["user_id", "item_id"]).any()
    # also in a tight corner: sequences nearly as long as the catalogue
    tight = make_synthetic(n_users=50, n_items=41, min_len=38, max_len=40, n_successors=2, seed=3)
    assert not tight.duplicated(["user_id", "item_id"]).any()
    assert tight.groupby("user_id").size().between(38, 40).all()


def test_popularity_is_skewed(df):
    counts = df["item_id"].value_counts()
    top10_share = counts.iloc[:10].sum() / len(df)
    assert top10_share > 2 * 10 / 300  # well above uniform


def _hit_rates(df: pd.DataFrame, k: int = 10) -> tuple[float, float]:
    """Hit-rate@k of a most-frequent-successor model and of popularity, both fit on the
    first 80% of each user's sequence and asked for every later next item (seen items excluded)."""
    n_items = int(df["item_id"].max())
    seqs = [g.to_numpy() for _, g in df.groupby("user_id", sort=True)["item_id"]]
    trans = np.zeros((n_items + 1, n_items + 1))
    pop = np.zeros(n_items + 1)
    cuts = []
    for s in seqs:
        cut = int(len(s) * 0.8)
        np.add.at(trans, (s[: cut - 1], s[1:cut]), 1)
        np.add.at(pop, s[:cut], 1)
        cuts.append(cut)
    hits_t = hits_p = total = 0
    for s, cut in zip(seqs, cuts):
        for p in range(cut, len(s)):
            seen = s[:p]
            t_scores = trans[s[p - 1]].copy()
            p_scores = pop.copy()
            for scores in (t_scores, p_scores):
                scores[0] = -np.inf
                scores[seen] = -np.inf
            hits_t += s[p] in np.argsort(-t_scores, kind="stable")[:k]
            hits_p += s[p] in np.argsort(-p_scores, kind="stable")[:k]
            total += 1
    return hits_t / total, hits_p / total


def test_transitions_beat_popularity(df):
    hit_trans, hit_pop = _hit_rates(df)
    assert hit_pop > 0.1  # popularity is a real baseline, not a strawman
    assert hit_trans >= 2 * hit_pop
    assert hit_trans > 0.5


def test_noise_one_is_not_learnable():
    noisy = make_synthetic(n_users=300, noise=1.0, seed=5)
    hit_trans, hit_pop = _hit_rates(noisy)
    assert hit_trans < 1.5 * hit_pop


@pytest.mark.parametrize(
    "kw",
    [
        {"n_items": 50, "max_len": 80},
        {"min_len": 0},
        {"min_len": 90, "max_len": 80},
        {"n_successors": 0},
        {"noise": 1.5},
        {"n_users": 0},
    ],
)
def test_bad_arguments_raise_user_error(kw):
    with pytest.raises(UserError) as err:
        make_synthetic(**kw)
    assert "\n" not in str(err.value)


def test_write_synthetic_and_cli(tmp_path):
    out = write_synthetic(tmp_path / "s.csv", n_users=20, n_items=100, min_len=5, max_len=10, seed=7)
    pd.testing.assert_frame_equal(
        pd.read_csv(out), make_synthetic(n_users=20, n_items=100, min_len=5, max_len=10, seed=7)
    )
    cli_out = tmp_path / "cli.csv"
    res = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "make_synthetic.py"), "--out", str(cli_out),
         "--users", "20", "--items", "100", "--min-len", "5", "--max-len", "10", "--seed", "7"],
        capture_output=True, text=True, timeout=120,
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == str(cli_out)
    assert cli_out.read_bytes() == out.read_bytes()

    bad = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "make_synthetic.py"), "--out", str(tmp_path / "x.csv"), "--items", "10"],
        capture_output=True, text=True, timeout=120,
    )
    assert bad.returncode == 1
    assert bad.stderr.strip().splitlines() == [bad.stderr.strip()]
    assert bad.stderr.startswith("error: n_items (10) must exceed max_len (80)")
    assert not (tmp_path / "x.csv").exists()
