"""Issue 29 items 2 and 3: a run's data fingerprint (seqrec.data.fingerprint), compared by every command that builds
on a run (seqrec.config.data_check), and the declared duplicate policy (identical events dropped with a count, or
refused); a held-out item counts as relevant once however often it occurs."""

import json
import logging
import shutil

import numpy as np
import pandas as pd
import pytest

from conftest import ROOT, TINY_GPT, compose
from seqrec.core.errors import UserError
from seqrec.data.fingerprint import describe_change, item_table_digest, with_item_table
from seqrec.data.split import split_interactions
from seqrec.evaluation.metrics import compute_metrics, per_user_metrics


def _log(rows):
    return pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "rating"])


#: two users of 6 events each; user 20 rates item 7 at time 6 twice (identical rows 7 and 13 of the data)
BASE = [(10, 1, 1, 5), (10, 2, 2, 4), (10, 3, 3, 3), (10, 4, 4, 2), (10, 5, 5, 1), (10, 6, 6, 5),
        (20, 2, 1, 1), (20, 3, 2, 2), (20, 4, 3, 3), (20, 5, 4, 4), (20, 6, 5, 5), (20, 7, 6, 3)]
DUPLICATED = BASE + [(20, 7, 6, 3)]


def _split(df, **kw):
    return split_interactions(df, last_n_items=2, validation_size=None, random_state=0, **kw)


# ------------------------------------------------------------------ the duplicate policy
def test_identical_events_are_dropped_with_a_printed_count(caplog):
    with caplog.at_level(logging.WARNING, logger="seqrec.data"):
        split = _split(_log(DUPLICATED), source="data_path d.csv")
    lines = [r.getMessage() for r in caplog.records if "identical" in r.getMessage()]
    assert lines == ["data_path d.csv: dropped 1 identical (user_id, item_id, timestamp) row(s), keeping the first of "
                     "each (first: user 20, item 7, timestamp 6, on lines 13 and 14 of the file); pass "
                     "duplicates=refuse to refuse such a file"]
    assert split.duplicates_dropped == 1 and split.fingerprint["duplicates_dropped"] == 1
    # the split of the log without the copy: user 20 holds out items 6 and 7 (indices 6, 7), not 7 twice
    clean = _split(_log(BASE))
    assert split.targets(np.array([0, 1]), 2).tolist() == clean.targets(np.array([0, 1]), 2).tolist() == [[5, 6], [6, 7]]
    assert split.train.items.tolist() == clean.train.items.tolist() == [1, 2, 3, 4, 2, 3, 4, 5]
    assert split.fingerprint["interactions"] == clean.fingerprint["interactions"]
    assert describe_change(clean.fingerprint, split.fingerprint) is None  # identical copies: the same data


def test_without_the_policy_the_copy_would_be_held_out_twice():
    """What the split did before (kept every row): user 20's held-out items were [7, 7]; now they are [6, 7]."""
    df = _log(DUPLICATED)
    order = np.lexsort((np.arange(len(df)), df.item_id, df.timestamp, df.user_id))
    kept = df.iloc[order]
    assert kept[kept.user_id == 20].item_id.tolist()[-2:] == [7, 7]


def test_refuse_names_the_count_and_the_first_duplicate():
    with pytest.raises(UserError) as err:
        _split(_log(DUPLICATED + [(10, 1, 1, 5)]), duplicates="refuse", source="data_path d.csv")
    assert str(err.value) == (
        "data_path d.csv has 2 identical (user_id, item_id, timestamp) row(s) (first: user 10, item 1, timestamp 1, "
        "on lines 2 and 15 of the file); remove them, or pass duplicates=drop to keep the first row of each (the "
        "count is printed)")
    assert _split(_log(BASE), duplicates="refuse").duplicates_dropped == 0  # nothing to refuse


def test_the_same_item_at_another_time_stays_an_event(caplog):
    again = BASE + [(20, 7, 9, 4)]  # user 20 consumes item 7 again, later
    with caplog.at_level(logging.WARNING, logger="seqrec.data"):
        split = _split(_log(again), duplicates="refuse")
    assert not [r for r in caplog.records if "identical" in r.getMessage()]
    assert split.duplicates_dropped == 0 and split.fingerprint["n_rows"] == 13
    assert split.targets(np.array([1]), 2).tolist() == [[7, 7]]  # a real re-consumption is held out as it happened


def test_duplicates_is_a_declared_setting():
    from seqrec.config.checks import check_train_config

    assert compose("GPT_train").duplicates == "drop"
    check_train_config(compose("GPT_train", ["duplicates=refuse"]))
    with pytest.raises(UserError, match=r"^duplicates must be drop \(.*\) or refuse \(got 'keep'\); pass e\.g\."):
        check_train_config(compose("GPT_train", ["duplicates=keep"]))


# ------------------------------------------------------------------ relevance is a set
def test_a_re_consumed_held_out_item_is_relevant_once():
    """Targets [3, 5, 3] (item 3 again, later); list [3, 7] at k=2. Relevant set {3, 5}: recall 1/2 (not 2/3),
    NDCG 1 / (1 + 1/log2 3) = 0.6131, MAP (1/1) / 2 = 0.5; per time position: found at 0 and 2, not at 1."""
    recs, targets = np.array([[3, 7]]), np.array([[3, 5, 3]])
    counts = np.ones(11, dtype=np.int64)
    m = compute_metrics(recs, targets, counts, 10, k=2)
    assert m["recall@2"] == pytest.approx(0.5)
    assert m["ndcg@2"] == pytest.approx(1 / (1 + 1 / np.log2(3)))
    assert m["map@2"] == pytest.approx(0.5) and m["precision@2"] == pytest.approx(0.5)
    assert [m[f"recall@2_pos{p}"] for p in range(3)] == [1.0, 0.0, 1.0]
    # the same as with the repeat absent: the set {3, 5}
    once = per_user_metrics(recs, np.array([[3, 5, 0]]), 10, k=2)
    assert once["recall@2"][0] == pytest.approx(m["recall@2"]) and once["ndcg@2"][0] == pytest.approx(m["ndcg@2"])


# ------------------------------------------------------------------ the fingerprint
def test_a_re_sorted_file_is_the_same_data():
    df = _log(BASE)
    a = _split(df).fingerprint
    b = _split(df.sample(frac=1, random_state=3).reset_index(drop=True)).fingerprint
    assert a == b
    assert (a["n_rows"], a["n_users"], a["n_items"], a["version"]) == (12, 2, 7, 1)
    assert len(a["interactions"]) == 32 and a["events"] == {} and a["item_table"] is None


def test_permuted_item_ids_with_the_same_counts_are_other_data():
    df = _log(BASE)
    permuted = df.assign(item_id=df.item_id.map({1: 2, 2: 1, 3: 3, 4: 4, 5: 5, 6: 6, 7: 7}))
    a, b = _split(df).fingerprint, _split(permuted).fingerprint
    assert a["interactions"] != b["interactions"]
    assert describe_change(a, b) == ("its interactions differ (same 2 users, 7 items and 12 events: ids, times or which "
                                     "user has which item changed)")
    fewer = _split(df.iloc[:-1]).fingerprint
    assert describe_change(a, fewer) == ("its interactions differ (2 users, 6 items, 11 events; the run's had 2, 7, "
                                         "12)")


def test_an_event_column_counts_only_when_the_run_uses_it():
    df = _log(BASE)
    rerated = df.assign(rating=df.rating.where(df.index != 4, 4))
    assert _split(df).fingerprint == _split(rerated).fingerprint  # rating unused
    a = _split(df, extra_columns=["rating"]).fingerprint
    b = _split(rerated, extra_columns=["rating"]).fingerprint
    assert a["interactions"] == b["interactions"] and a["events"]["rating"] != b["events"]["rating"]
    assert describe_change(a, b) == "its event column 'rating' differs"
    # text IDs and text event values hash too (by value, in the split's order)
    text = df.assign(user_id="u" + df.user_id.astype(str), rating=df.rating.astype(str) + "*")
    t = _split(text, extra_columns=["rating"]).fingerprint
    assert t["interactions"] != a["interactions"]
    assert t == _split(text.iloc[::-1].reset_index(drop=True), extra_columns=["rating"]).fingerprint


def test_the_item_table_is_compared_where_both_read_it():
    from seqrec.data.features import Codes

    genres = Codes("genres", "multi", np.array([[0, 0], [1, 2], [2, 0]]), 3, ["Action", "Comedy"])
    other = Codes("genres", "multi", np.array([[0, 0], [1, 0], [2, 0]]), 3, ["Action", "Comedy"])
    base = _split(_log(BASE)).fingerprint
    a, b = with_item_table(base, [genres]), with_item_table(base, [other])
    assert item_table_digest([]) is None and a["item_table"] != b["item_table"]
    assert describe_change(a, b) == "its item attribute table differs"
    assert describe_change(a, base) is None  # a predict run reads no item table: nothing to compare


# ------------------------------------------------------------------ the commands that build on a run
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 1-epoch tiny GPT-2 run on its own copy of a synthetic log (restored after each test that changes it)."""
    from seqrec import train
    from seqrec.data.synthetic import write_synthetic

    root = tmp_path_factory.mktemp("fingerprint")
    data = write_synthetic(root / "log.csv", n_users=200, n_items=60, min_len=15, max_len=30, seed=1)
    runs = root / "runs"
    train(compose("GPT_train", [f"data_path={data}", f"run_store={runs}", *TINY_GPT, "trainer_params.max_epochs=1",
                                "logger=none", "task_name=fp_train"]))
    [run_dir] = list(runs.iterdir())
    return data, runs, run_dir.name


@pytest.fixture
def changed(trained):
    """The run's data file with its item IDs permuted (same users, items and events); restored afterwards."""
    data, runs, run_id = trained
    original = data.read_bytes()
    df = pd.read_csv(data)
    ids = np.sort(df.item_id.unique())
    df["item_id"] = df.item_id.map(dict(zip(ids, np.roll(ids, 1))))
    df.to_csv(data, index=False)
    yield data, runs, run_id
    data.write_bytes(original)


def _record(runs, run_id):
    return json.loads((runs / run_id / "run.json").read_text())


def _predict(runs, train_id, *extra):
    from seqrec import predict

    before = {p.name for p in runs.iterdir()}
    predict(compose("GPT_predict", [f"train_task={train_id}", f"run_store={runs}", "logger=none", "progress=false",
                                    "bootstrap.n_resamples=100", *extra]))
    (new,) = {p.name for p in runs.iterdir()} - before
    return new


def _refused(runs, call) -> str:
    """``call``'s one-line refusal; no run folder made and no record changed."""
    before = {p.name: (p / "run.json").read_text() for p in runs.iterdir()}
    with pytest.raises(UserError) as err:
        call()
    assert {p.name: (p / "run.json").read_text() for p in runs.iterdir()} == before
    assert "\n" not in str(err.value)
    return str(err.value)


CHANGED = ("its interactions differ (same 200 users, 60 items and {rows} events: ids, times or which user has which "
           "item changed)")


def test_a_training_run_records_its_fingerprint_and_predict_checks_it(trained):
    from seqrec.data.prepare import DataSpec, data_fingerprint, prepare_split

    data, runs, run_id = trained
    record = _record(runs, run_id)
    expected = data_fingerprint(prepare_split(DataSpec.of(compose("GPT_train", [f"data_path={data}"]))))
    assert record["data_fingerprint"] == expected and record["data_check"] == []
    new = _predict(runs, run_id)
    predicted = _record(runs, new)
    assert predicted["data_fingerprint"] == expected
    assert predicted["data_check"] == [{"setting": "train_task", "run": run_id, "result": "same"}]
    assert "data_change_allowed" not in predicted


def test_predict_refuses_a_changed_file_and_proceeds_with_the_override(changed):
    data, runs, run_id = changed
    rows = _record(runs, run_id)["data_fingerprint"]["n_rows"]
    message = _refused(runs, lambda: _predict(runs, run_id))
    assert message == (f"data_path {data} changed since run {run_id} (train_task) was trained: "
                       f"{CHANGED.format(rows=rows)}; re-prepare the file the run used, or pass allow_data_change=true "
                       "to use it anyway (recorded in the run)")
    new = _predict(runs, run_id, "allow_data_change=true")
    record = _record(runs, new)
    assert record["data_change_allowed"] == [{"setting": "train_task", "run": run_id,
                                              "change": CHANGED.format(rows=rows)}]
    assert record["data_check"] == [{"setting": "train_task", "run": run_id, "result": "changed"}]
    assert record["data_fingerprint"] != _record(runs, run_id)["data_fingerprint"]


def test_load_run_refuses_a_changed_file_and_proceeds_with_the_override(changed):
    from seqrec import load_run

    data, runs, run_id = changed
    message = _refused(runs, lambda: load_run(run_id, runs))
    assert message.startswith(f"data_path {data} changed since run {run_id} (run_id) was trained: its interactions")
    assert message.endswith("re-prepare the file the run used, or pass allow_data_change=True to use it anyway")
    rec = load_run(run_id, runs, allow_data_change=True)
    assert [c["setting"] for c in rec.data_check["data_change_allowed"]] == ["run_id"]
    with pytest.raises(UserError, match=r"^allow_data_change='yes' is not true or false; pass allow_data_change=True"):
        load_run(run_id, runs, allow_data_change="yes")


def test_resume_refuses_a_changed_file_and_proceeds_with_the_override(changed):
    from seqrec import train

    data, runs, run_id = changed
    stopped = "fp_stopped"
    shutil.copytree(runs / run_id, runs / stopped)
    record = _record(runs, stopped)
    record.update(task_id=stopped, status="interrupted")
    (runs / stopped / "run.json").write_text(json.dumps(record))

    def resume(*extra):
        train(compose("GPT_train", [f"data_path={data}", f"run_store={runs}", *TINY_GPT, "logger=none",
                                    "task_name=fp_train", "trainer_params.max_epochs=2", f"resume={stopped}", *extra]))

    message = _refused(runs, resume)
    assert message.startswith(f"data_path {data} changed since run {stopped} (resume) was trained: its interactions")
    resume("allow_data_change=true")
    after = _record(runs, stopped)
    assert after["status"] == "completed"
    assert [c["setting"] for c in after["data_change_allowed"]] == ["resume"]


def test_prompt_tuning_refuses_a_changed_file_and_proceeds_with_the_override(changed):
    from seqrec import train

    data, runs, run_id = changed

    def tune(*extra):
        train(compose("GPT_prompt_tune", [f"data_path={data}", f"run_store={runs}", f"pretrained_task={run_id}",
                                          "trainer_params.max_epochs=1", "trainer_params.enable_progress_bar=false",
                                          "trainer_params.enable_model_summary=false", "logger=none",
                                          "dataloader.validation_size=100", *extra]))

    message = _refused(runs, tune)
    assert message.startswith(f"data_path {data} changed since run {run_id} (pretrained_task) was trained: its "
                              "interactions differ")
    before = {p.name for p in runs.iterdir()}
    tune("allow_data_change=true")
    (new,) = {p.name for p in runs.iterdir()} - before
    assert [c["setting"] for c in _record(runs, new)["data_change_allowed"]] == ["pretrained_task"]


def test_samples_from_refuses_a_source_made_on_other_data(trained):
    data, runs, run_id = trained
    sampling = ["generation_params.strategy=multisequence", "generation_params.do_sample=true",
                "generation_params.temperature=0.5", "generation_params.top_k=20"]
    source = _predict(runs, run_id, *sampling, "generation_params.num_return_sequences=4",
                      "generation_params.prefix_sequences=[2,4]")
    record = _record(runs, source)
    record["data_fingerprint"]["interactions"] = "0" * 32  # as if it had sampled on another version of the file
    (runs / source / "run.json").write_text(json.dumps(record))
    take = [*sampling, "generation_params.num_return_sequences=2", f"samples_from={source}"]
    message = _refused(runs, lambda: _predict(runs, run_id, *take))
    assert message.startswith(f"data_path {data} changed since run {source} (samples_from) sampled: its interactions")
    new = _predict(runs, run_id, *take, "allow_data_change=true")
    assert _record(runs, new)["data_check"] == [{"setting": "train_task", "run": run_id, "result": "same"},
                                                {"setting": "samples_from", "run": source, "result": "changed"}]


def test_a_run_without_a_fingerprint_warns_once_and_proceeds(tmp_path, monkeypatch, caplog):
    """The format-1 runs of tests/fixtures/runs_v1 were made before fingerprints existed."""
    fixture = tmp_path / "v1"
    shutil.copytree(ROOT / "tests" / "fixtures" / "runs_v1", fixture)
    monkeypatch.chdir(fixture)
    train_id = "local-a1f3668927484e15a4cff730ee2ac425"
    runs = fixture / "runs"
    with caplog.at_level(logging.WARNING, logger="seqrec"):
        new = _predict(runs, train_id, "task_name=v2_predict")
    warned = [r.getMessage() for r in caplog.records if "data fingerprint" in r.getMessage()]
    assert len(warned) == 1  # once, naming the run and the file (data.csv, however the path is written)
    assert warned[0].startswith(f"run {train_id} (train_task={train_id}) records no data fingerprint (made before "
                                "seqrec recorded one); data_path ")
    assert warned[0].endswith("data.csv cannot be checked against it")
    record = _record(runs, new)
    assert record["status"] == "completed"
    assert record["data_check"] == [{"setting": "train_task", "run": train_id, "result": "unrecorded"}]
