"""The public API of a trained run (seqrec.load_run / Recommender) and its command-line twin seqrec-recommend:
the lists equal the predict run's, raw histories (the user's own item IDs, with event attributes) give the lists of
the same users, and every bad input is one line."""

import io
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import TINY_GPT, compose
from seqrec import load_run, predict, train
from seqrec.api.cli import main as cli_main
from seqrec.api.recommender import EventEncoder
from seqrec.core.errors import UserError

TINY = [*TINY_GPT, "trainer_params.max_epochs=1", "logger=none"]
PREDICT = ["logger=none", "progress=false", "bootstrap.n_resamples=100"]
#: the predict config of each strategy, and the same strategy as Recommender arguments
STRATEGIES = {
    "topk": ("predict", [], {}),
    "beam": ("beam", ["generation_params.num_beams=3"], {"strategy": "beam", "num_beams": 3}),
    "sampling": ("temperature", [], {"strategy": "sampling", "do_sample": True, "temperature": 0.3, "top_k": 50}),
}


def _new_run(runs: Path, before: set) -> str:
    made = [p.name for p in runs.iterdir() if (p / "run.json").is_file() and p.name not in before]
    assert len(made) == 1, made
    return made[0]


def _runs(runs: Path) -> set:
    return {p.name for p in runs.iterdir()} if runs.is_dir() else set()


@pytest.fixture(scope="module")
def trained(tiny_csv, tmp_path_factory):
    """Two tiny GPT-2 runs on the same log (items only; with the rating as an event attribute) and their predict
    runs: Top-K, beam and sampling for the first, Top-K for the second."""
    root = tmp_path_factory.mktemp("api")
    out = {"csv": tiny_csv}
    for name, extra in (("plain", []), ("events", ["+features.event_attributes.rating.kind=categorical"])):
        runs = root / name
        before = _runs(runs)
        train(compose("GPT_train", [f"data_path={tiny_csv}", f"run_store={runs}", *TINY, *extra]))
        run_id = _new_run(runs, before)
        out[name] = (runs, run_id)
        for strategy, (config, overrides, _) in STRATEGIES.items():
            if name == "events" and strategy != "topk":
                continue
            before = _runs(runs)
            predict(compose(config, [f"train_task={run_id}", f"run_store={runs}", *PREDICT, *overrides]))
            out[(name, strategy)] = pd.read_parquet(runs / _new_run(runs, before) / "predictions.parquet")
    return out


@pytest.fixture(scope="module")
def plain(trained):
    runs, run_id = trained["plain"]
    return load_run(run_id, runs)


@pytest.fixture(scope="module")
def with_events(trained):
    runs, run_id = trained["events"]
    return load_run(run_id, runs)


def _lists(frame: pd.DataFrame, key: str) -> dict:
    return {user: rows.sort_values("rank")["item_id"].tolist() for user, rows in frame.groupby(key, sort=False)}


def _assert_same(mine: pd.DataFrame, theirs: pd.DataFrame):
    assert list(mine.columns) == ["user_id", "item_id", "rank", "score"]
    assert _lists(mine, "user_id") == _lists(theirs, "user_id")
    merged = mine.merge(theirs, on=["user_id", "rank"], suffixes=("", "_predict"))
    assert len(merged) == len(theirs) == len(mine)
    np.testing.assert_allclose(merged["score"], merged["score_predict"], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("strategy", list(STRATEGIES))
def test_recommend_users_is_the_predict_run(trained, plain, strategy):
    """For the test users, in the predict run's order (sampling: one seeded generator over the same chunks), the
    API's lists and scores are the predict run's."""
    expected = trained[("plain", strategy)]
    users = list(dict.fromkeys(expected["user_id"]))
    assert len(users) > 50 and (expected.groupby("user_id").size() == plain.k).all()
    mine = plain.recommend_users(users, **STRATEGIES[strategy][2])
    _assert_same(mine, expected)
    if strategy == "topk":  # a deterministic strategy: any subset, any order gives each user the same list
        few = users[::-7][:5]
        assert _lists(plain.recommend_users(few), "user_id") == {u: _lists(expected, "user_id")[u] for u in few}


def test_recommend_users_with_event_attributes_is_the_predict_run(trained, with_events):
    expected = trained[("events", "topk")]
    assert with_events.event_attributes == ("rating",)
    _assert_same(with_events.recommend_users(list(dict.fromkeys(expected["user_id"]))), expected)


def _own_history(rec, user):
    """A user's training history as the user's own item IDs, and its raw ratings."""
    index = rec.user_ids.get_loc(user)
    start, end = rec.split.train.offsets[index], rec.split.train.offsets[index + 1]
    items = rec.item_ids[rec.split.train.items[start:end] - 1].tolist()
    ratings = rec.split.train_extra.get("rating", np.zeros(0))[start:end].tolist()
    return items, ratings


def test_a_raw_history_is_the_users_list(plain, with_events):
    user = plain.user_ids[plain.split.test_users[3]]
    items, _ = _own_history(plain, user)
    by_user = plain.recommend_users([user], k=7)
    by_items = plain.recommend([items], k=7)
    assert list(by_items.columns) == ["history", "item_id", "rank", "score"]
    assert by_items["history"].tolist() == [0] * 7 and by_items["rank"].tolist() == list(range(1, 8))
    assert by_items["item_id"].tolist() == by_user["item_id"].tolist()
    np.testing.assert_allclose(by_items["score"], by_user["score"], rtol=1e-5)
    # a flat list is one history; IDs given as text (a command line, a CSV) are the same items
    assert plain.recommend(items, k=7)["item_id"].tolist() == by_user["item_id"].tolist()
    assert plain.recommend([[str(i) for i in items]], k=7)["item_id"].tolist() == by_user["item_id"].tolist()
    # a dict of name -> history: the names key the table
    named = plain.recommend({"alice": items, "bob": items[:5]}, k=3)
    assert named["history"].tolist() == ["alice"] * 3 + ["bob"] * 3
    # (k=3, not 7: the window is what fits the model's positions beside the k generated items)
    assert named["item_id"].tolist()[:3] == plain.recommend_users([user], k=3)["item_id"].tolist()
    # with event attributes: the raw ratings are encoded as the run's features encode them
    user = with_events.user_ids[with_events.split.test_users[3]]
    items, ratings = _own_history(with_events, user)
    expected = with_events.recommend_users([user])["item_id"].tolist()
    assert with_events.recommend([items], events=[{"rating": ratings}])["item_id"].tolist() == expected
    assert with_events.recommend({"u": items}, events={"u": {"rating": ratings}})["item_id"].tolist() == expected


def test_another_strategy_through_the_same_engine(plain):
    user = plain.user_ids[plain.split.test_users[0]]
    items, _ = _own_history(plain, user)
    greedy = plain.recommend([items], k=5, strategy="greedy")
    assert greedy["item_id"].tolist() == plain.recommend_users([user], k=5, strategy="greedy")["item_id"].tolist()
    assert len(set(greedy["item_id"])) == 5 and not set(greedy["item_id"]) & set(items)  # seen items filtered
    unfiltered = plain.recommend([items], k=5, filter_seen=False)
    assert len(unfiltered) == 5 and set(unfiltered["item_id"]) <= set(plain.item_ids)
    sampled = [plain.recommend([items], k=5, strategy="sampling", temperature=2.0, seed=s)["item_id"].tolist()
               for s in (1, 1, 2)]
    assert sampled[0] == sampled[1] and len(set(sampled[0])) == 5


def test_the_event_encoder_gives_the_runs_codes(with_events):
    """Encoding the run's own training ratings gives the codes its features gave them; a numeric attribute is
    bucketed by the bins of its training values (encode_column)."""
    from seqrec.data.features import encode_column
    from seqrec.data.features_config import AttributeSpec

    encoder = with_events._encoders[0]
    raw = with_events.split.train_extra["rating"]
    assert (encoder.encode(list(raw), "h") == with_events._events[0].items).all()
    assert encoder.encode([None, "", 5, "5"], "h").tolist() == [0, 0, 5, 5]  # ratings 1..5 are codes 1..5
    values = np.arange(100, dtype=np.float64)
    spec = AttributeSpec("age", "numeric", bins=4)
    numeric = EventEncoder.of(spec, encode_column(pd.Series(values), spec, "t"), values)
    assert (numeric.encode(list(values), "h") == encode_column(pd.Series(values), spec, "t").values[:, 0]).all()
    assert numeric.encode([-5, 1e9, None], "h").tolist() == [1, 4, 0]
    with pytest.raises(UserError, match=r"'age' is numeric but holds 'old'"):
        numeric.encode(["old"], "h")


def _one_line(excinfo) -> str:
    text = str(excinfo.value)
    assert "\n" not in text and ";" in text, text
    return text


def test_unknown_item_ids_are_one_line_or_skipped(plain):
    items = plain.item_ids[:6].tolist()
    with pytest.raises(UserError) as err:
        plain.recommend([items, [*items, 99999, 88888]], k=4)
    text = _one_line(err)
    assert "2 item ID(s) unknown to run" in text and "99999 (history 1)" in text and 'unknown="skip"' in text
    skipped = plain.recommend([items, [*items, 99999, 88888]], k=4, unknown="skip")
    assert skipped.attrs["skipped_items"] == 2
    assert skipped["item_id"].tolist()[4:] == plain.recommend([items], k=4)["item_id"].tolist()
    with pytest.raises(UserError, match=r"history 0 has no item known to run .*drop that history") as err:
        plain.recommend([[99999]], unknown="skip")
    _one_line(err)
    with pytest.raises(UserError, match="user ID"):
        plain.recommend_users([10 ** 9])


@pytest.mark.parametrize("histories, needle", [
    ([[]], "history 0 is empty"),
    ({"a": [1, 2], "b": []}, "history 'b' is empty"),
    ([], "no histories given"),
    ("1193,661", "histories is a str"),
    ([[1, 2], 3], "history 1 is 3, not a list"),
])
def test_empty_and_malformed_histories_are_one_line(plain, histories, needle):
    with pytest.raises(UserError, match=needle) as err:
        plain.recommend(histories)
    _one_line(err)


def test_bad_arguments_are_the_predict_runs_lines(plain, with_events):
    """Strategy parameters are checked by the declarations run_predict.py uses: the same line."""
    from seqrec.generation import build_strategy

    items = plain.item_ids[:4].tolist()
    for params in ({"strategy": "beam", "num_beams": 0}, {"strategy": "topk", "num_beams": 3},
                   {"strategy": "bean"}, {"strategy": "sampling", "temprature": 0.3}):
        with pytest.raises(UserError) as expected:
            build_strategy(params, tuple(k for k in params if k != "strategy"), {"k": 10})
        with pytest.raises(UserError) as err:
            plain.recommend([items], k=10, **params)
        assert str(err.value) == str(expected.value)
        _one_line(err)
    for kwargs, needle in (({"k": 0}, "k=0 is not a list length"), ({"unknown": "drop"}, "unknown='drop'"),
                           ({"events": [{"rating": [5, 5, 5, 5]}]}, "trained without event attributes"),
                           ({"k": 80}, "unseen items")):
        with pytest.raises(UserError, match=needle) as err:
            plain.recommend([items], **kwargs)
        _one_line(err)
    for events, needle in (([{"stars": [1, 2, 3, 4]}], "'stars' is not an event attribute"),
                           ([{"rating": [1, 2]}], "'rating' has 2 values for 4 items"),
                           ([{"rating": [1, 2, 3, 9]}], "value '9', which the run never saw")):
        with pytest.raises(UserError, match=needle) as err:
            with_events.recommend([items], events=events)
        _one_line(err)


def test_load_run_by_prefix_and_bad_ids(trained):
    runs, run_id = trained["plain"]
    assert load_run(run_id[:14], runs).run_id == run_id
    for bad, needle in (("no-such-run", "unknown run ID 'no-such-run'"), ("", "is not a run ID")):
        with pytest.raises(UserError, match=needle) as err:
            load_run(bad, runs)
        _one_line(err)
    with pytest.raises(UserError, match="is not a folder") as err:
        load_run(run_id, runs / "absent")
    _one_line(err)
    predict_run = next(p.name for p in runs.iterdir() if p.name != run_id and (p / "run.json").is_file())
    with pytest.raises(UserError, match="not a train run") as err:
        load_run(predict_run, runs)
    _one_line(err)


def _cli(*args) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        status = cli_main([str(a) for a in args])
    return status, out.getvalue(), err.getvalue()


def test_cli_recommends_for_items_and_a_csv(trained, plain, tmp_path):
    runs, run_id = trained["plain"]
    user = plain.user_ids[plain.split.test_users[3]]
    items, _ = _own_history(plain, user)
    status, out, _ = _cli(run_id[:14], "--items", ",".join(map(str, items)), "--k", 6, "--run-store", runs)
    assert status == 0
    table = pd.read_csv(io.StringIO(out))
    assert list(table.columns) == ["history", "item_id", "rank", "score"] and len(table) == 6
    assert table["item_id"].tolist() == plain.recommend_users([user], k=6)["item_id"].tolist()
    status, out, _ = _cli(run_id, "--items", ",".join(map(str, items[:8])), "--k", 4, "--strategy", "beam",
                          "--param", "num_beams=3", "--run-store", runs)
    assert status == 0 and pd.read_csv(io.StringIO(out))["item_id"].tolist() == \
        plain.recommend([items[:8]], k=4, strategy="beam", num_beams=3)["item_id"].tolist()
    histories = pd.DataFrame({"user_id": ["a"] * 5 + ["b"] * 3, "item_id": items[:5] + items[5:8],
                              "timestamp": [5, 4, 3, 2, 1, 1, 2, 3]})  # a's rows in reverse time order
    histories.to_csv(tmp_path / "h.csv", index=False)
    status, _, err = _cli(run_id, "--csv", tmp_path / "h.csv", "--k", 3, "--run-store", runs, "--out",
                          tmp_path / "r.csv")
    assert status == 0 and "6 recommendations for 2 histories" in err
    table = pd.read_csv(tmp_path / "r.csv")
    assert list(table.columns) == ["user_id", "item_id", "rank", "score"] and table["user_id"].tolist() == list("aaabbb")
    expected = plain.recommend({"a": items[:5][::-1], "b": items[5:8]}, k=3)
    assert table["item_id"].tolist() == expected["item_id"].tolist()


def test_cli_events_from_items_and_csv(trained, with_events, tmp_path):
    runs, run_id = trained["events"]
    user = with_events.user_ids[with_events.split.test_users[3]]
    items, ratings = _own_history(with_events, user)
    expected = with_events.recommend_users([user])["item_id"].tolist()
    status, out, _ = _cli(run_id, "--items", ",".join(map(str, items)), "--event",
                          "rating=" + ",".join(map(str, ratings)), "--run-store", runs)
    assert status == 0 and pd.read_csv(io.StringIO(out))["item_id"].tolist() == expected
    pd.DataFrame({"history": "x", "item_id": items, "rating": ratings, "note": "n"}).to_csv(tmp_path / "e.csv",
                                                                                           index=False)
    status, out, _ = _cli(run_id, "--csv", tmp_path / "e.csv", "--run-store", runs)
    assert status == 0 and pd.read_csv(io.StringIO(out))["item_id"].tolist() == expected


@pytest.mark.parametrize("args, needle", [
    (["no-such-run", "--items", "1,2"], "unknown run ID 'no-such-run'"),
    (["RUN", "--items", "1,99999"], "unknown to run"),
    (["RUN", "--items", "1,,2"], "has an empty item ID"),
    (["RUN", "--items", "1,2", "--param", "num_beams"], "is not KEY=VALUE"),
    (["RUN", "--items", "1,2", "--param", "num_beams=3"], "does not apply to strategy topk"),
    (["RUN", "--items", "1,2", "--k", "ten"], "invalid int value"),
    (["RUN"], "one of the arguments --items --csv is required"),
    (["RUN", "--csv", "absent.csv"], "is not a file"),
])
def test_cli_errors_are_one_line(trained, args, needle):
    runs, run_id = trained["plain"]
    status, out, err = _cli(*[run_id if a == "RUN" else a for a in args], "--run-store", runs)
    lines = err.strip().splitlines()
    assert status == 1 and out == "" and len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], err
    if "unknown to run" in needle:
        assert "--unknown skip" in lines[0]


def test_the_console_script(trained):
    """``seqrec-recommend`` is installed with the package (pyproject.toml): a bad run ID is one line, exit 1."""
    runs, _ = trained["plain"]
    script = Path(sys.executable).parent / "seqrec-recommend"
    if not script.exists():
        pytest.skip("the console script is not installed; pip install --no-build-isolation --no-deps -e .")
    res = subprocess.run([str(script), "nope", "--items", "1", "--run-store", str(runs)], capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 1 and res.stdout == ""
    assert res.stderr.strip().splitlines() == [res.stderr.strip()] and res.stderr.startswith("error: unknown run ID")
