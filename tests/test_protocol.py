"""The protocol choice (issue 31): leave-one-out on every user beside the paper's long-term protocol.

The leave-one-out split by hand on a small log; the long-term split bit for bit as before the choice existed; a
model trained under each protocol on the same tiny log predicts under its own protocol only; every model trains and
predicts under leave-one-out (through its literature config); the refusals, each one line with nothing written."""

import hashlib
import json
import logging
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from conftest import ROOT, TINY_GPT, compose
from seqrec.core.errors import UserError
from seqrec.data.split import split_interactions

#: a GPT-2 of seconds; validation_size is each test's own (leave-one-out refuses more than its users)
TINY = [o for o in TINY_GPT if not o.startswith("dataloader.validation_size")] + [
    "trainer_params.max_epochs=1", "logger=none"]
PREDICT = ["logger=none", "progress=false", "bootstrap.n_resamples=200"]


def _log(sequences: dict) -> pd.DataFrame:
    """user -> items in time order (timestamps 0, 10, 20, ...), rows shuffled."""
    rows = [(user, item, 10 * t) for user, items in sequences.items() for t, item in enumerate(items)]
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    return frame.sample(frac=1, random_state=0).reset_index(drop=True)


# --------------------------------------------------------------------------- the split by hand
def test_leave_one_out_split_by_hand(caplog):
    log = _log({"ann": [11, 12, 13, 14, 15], "bob": [21, 22, 23], "cid": [31, 32], "dan": [41], "eve": [51, 52, 53, 54]})
    with caplog.at_level(logging.WARNING, logger="seqrec.data"):
        split = split_interactions(log, validation_size=None, protocol="leave_one_out")
    assert split.protocol == "leave_one_out"

    def items(seqs, user):
        return [int(split.item_ids[i - 1]) for i in seqs[list(split.user_ids).index(user)]]

    # the last item is the test item, the one before it the validation item, training uses the rest
    assert [items(split.train, u) for u in ("ann", "bob", "eve")] == [[11, 12, 13], [21], [51, 52]]
    assert [items(split.val_holdout, u) for u in ("ann", "bob", "eve")] == [[14], [22], [53]]
    assert [items(split.holdout, u) for u in ("ann", "bob", "eve")] == [[15], [23], [54]]
    # the test input holds the validation item; validation reads the train part
    assert [items(split.inputs("test"), u) for u in ("ann", "bob", "eve")] == [[11, 12, 13, 14], [21, 22], [51, 52, 53]]
    assert split.inputs("val") is split.train
    # users with fewer than 3 interactions are dropped, counted, neither trained on nor evaluated
    assert split.dropped_users == 2
    assert any("dropped 2 user(s) with fewer than 3 interactions" in r.getMessage() for r in caplog.records)
    short = [list(split.user_ids).index(u) for u in ("cid", "dan")]
    assert all(len(split.train[u]) == 0 and len(split.inputs("test")[u]) == 0 for u in short)
    evaluated = [list(split.user_ids).index(u) for u in ("ann", "bob", "eve")]
    assert split.test_users.tolist() == split.val_users.tolist() == sorted(evaluated)  # every user, both parts
    assert split.item_counts.sum() == 6 and split.n_items == 15  # train parts only; a dropped user's items stay
    # each part's targets
    ids = lambda matrix: [[int(split.item_ids[i - 1]) for i in row] for row in matrix]  # noqa: E731
    assert ids(split.targets(split.test_users, 1, "test")) == [[15], [23], [54]]
    assert ids(split.targets(split.val_users, 1, "val")) == [[14], [22], [53]]
    assert split.target_groups(split.test_users, 1, "test").tolist() == [[0], [0], [0]]
    # a seeded sample of validation users; test stays every user
    many = _log({f"u{u}": list(range(100 * u, 100 * u + 4 + u % 3)) for u in range(40)})
    a, b = (split_interactions(many, validation_size=10, random_state=1, protocol="leave_one_out") for _ in range(2))
    c = split_interactions(many, validation_size=10, random_state=2, protocol="leave_one_out")
    assert len(a.val_users) == 10 and len(a.test_users) == 40 and set(a.val_users) <= set(a.test_users)
    assert a.val_users.tolist() == b.val_users.tolist() != c.val_users.tolist()


#: sha256 of the long-term split's arrays, computed by the code before the protocol choice existed (commit 5f380de)
LONG_TERM_DIGESTS = {
    (): "2b07e8d04f1ef219fcf17649be31b7419bf9233c701d9177bc372ace3c051240",
    (("last_n_items", 10), ("validation_size", 50), ("random_state", 7)):
        "351e2b77ed7aea612c286ca35a7b48adea63b1165cdada88727485725ac21867",
    (("last_n_items", 1), ("validation_size", None)): "920f6d03983b4afc5846ceaa0ffbfdd9d88ae8e560103eef94c9eb4a18c37a31",
}


@pytest.mark.parametrize("settings", list(LONG_TERM_DIGESTS), ids=["defaults", "sampled", "one-item"])
def test_long_term_split_is_unchanged(settings):
    from seqrec.data.synthetic import make_synthetic

    log = make_synthetic(n_users=300, n_items=80, min_len=5, max_len=40, seed=3)
    for split in (split_interactions(log, **dict(settings)),
                  split_interactions(log, protocol="long_term", **dict(settings))):
        digest = hashlib.sha256()
        for array in (split.train.items, split.train.offsets, split.holdout.items, split.holdout.offsets,
                      split.holdout_groups.items, split.val_users, split.test_users, split.item_counts,
                      split.user_ids, split.item_ids):
            digest.update(np.ascontiguousarray(array).astype(np.int64).tobytes())
        assert digest.hexdigest() == LONG_TERM_DIGESTS[settings]
        assert split.inputs("test") is split.inputs("val") is split.train and split.test_inputs is None
        assert split.targets(split.val_users, 3, "val").tolist() == split.targets(split.val_users, 3).tolist()


def test_the_default_config_is_long_term():
    from seqrec.data.prepare import DataSpec

    data = DataSpec.of(compose("GPT_train"))
    assert (data.protocol, data.last_n_items, data.validation_size) == ("long_term", 10, 2000)
    loo = DataSpec.of(compose("GPT_train", ["protocol=leave_one_out"]))
    assert (loo.protocol, loo.last_n_items, loo.validation_size) == ("leave_one_out", 1, None)


# --------------------------------------------------------------------------- trained under each protocol
@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A tiny log (60 users of 3-20 items, and 2 users too short for leave-one-out) and one GPT-2 run trained on
    it under each protocol, each predicted with Top-K."""
    from seqrec import predict, train
    from seqrec.data.synthetic import make_synthetic
    from seqrec.tracking.run_store import RunStore

    base = tmp_path_factory.mktemp("protocol")
    log = make_synthetic(n_users=60, n_items=40, min_len=3, max_len=20, seed=0)
    short = pd.DataFrame({"user_id": [9001, 9002, 9002], "item_id": log["item_id"].iloc[:3].to_numpy(),
                          "timestamp": [1, 1, 2], "rating": [4, 4, 4]})
    csv = base / "tiny.csv"
    pd.concat([log, short], ignore_index=True).to_csv(csv, index=False)
    runs = base / "runs"
    store = RunStore(runs)
    out = {"csv": csv, "runs": runs, "base": base}
    for protocol, extra in (("long_term", ["dataloader.validation_size=20"]), ("leave_one_out", ["dataloader.validation_size=30"])):
        train(compose("GPT_train", [f"data_path={csv}", f"run_store={runs}", f"task_name={protocol}_train",
                                    f"protocol={protocol}", *TINY, *extra]))
        train_id = store.list_runs("train")[-1].task_id
        predict(compose("predict", [f"train_task={train_id}", f"run_store={runs}", f"task_name={protocol}_predict",
                                    *PREDICT]))
        out[protocol] = (train_id, store.list_runs("predict")[-1].task_id)
    return out


def _folder(world, run_id):
    from seqrec.tracking.run_folder import RunFolder

    return RunFolder(world["runs"] / run_id)


def test_each_run_records_and_predicts_under_its_own_protocol(world):
    from seqrec.config.upgrade import load_run_config

    for protocol in ("long_term", "leave_one_out"):
        train_id, predict_id = world[protocol]
        assert load_run_config(_folder(world, train_id))["protocol"] == protocol
        assert _folder(world, predict_id).read_record()["protocol"] == protocol
    # long-term: every metric; leave-one-out: Top-K NDCG@10 and HR@10 only, over every user kept
    long_metrics = _folder(world, world["long_term"][1]).read_metrics()
    assert {"test_map@10", "test_recall@10_pos9", "test_coverage@10"} <= set(long_metrics)
    loo = _folder(world, world["leave_one_out"][1])
    assert set(loo.read_metrics()) == {f"{part}_{name}" for part in ("val", "test")
                                       for name in ("ndcg@10", "hr@10", "ms_per_user")}
    assert set(json.loads(loo.intervals.read_text())["intervals"]) == {
        f"{part}_{name}" for part in ("val", "test") for name in ("ndcg@10", "hr@10")}
    per_user = pd.read_parquet(loo.per_user)
    assert set(per_user.columns) == {"part", "user_id", "ndcg@10", "hr@10"}
    assert (per_user["part"] == "test").sum() == 60 and (per_user["part"] == "val").sum() == 30  # 2 users dropped
    assert not loo.per_position_table.exists()


def test_leave_one_out_test_lists_rank_after_the_validation_item(world):
    """The test input holds the validation item: it is seen (never recommended), and the lists are what the
    trained model ranks from that input (the Python API's users get the same input)."""
    import seqrec
    from seqrec.data.prepare import DataSpec, prepare_split
    from seqrec.config.upgrade import load_run_config

    train_id, predict_id = world["leave_one_out"]
    split = prepare_split(DataSpec.of(load_run_config(_folder(world, train_id))))
    lists = pd.read_parquet(_folder(world, predict_id).predictions("test"))
    val_item = dict(zip(split.user_ids[split.test_users], split.item_ids[split.targets(split.test_users, 1, "val")[:, 0] - 1]))
    assert not any(val_item[u] in set(g["item_id"]) for u, g in lists.groupby("user_id"))
    users = split.user_ids[split.test_users[:5]].tolist()
    again = seqrec.load_run(train_id, world["runs"]).recommend_users(users, k=10)
    expected = lists[lists["user_id"].isin(users)]
    assert again["item_id"].tolist() == expected.sort_values(["user_id", "rank"])["item_id"].tolist()


def _refused(world, capsys, kind: str, cfg) -> str:
    """Run ``cfg`` as the entry point does; the one error line it ends with (nothing new in the run store)."""
    from seqrec.cli.entry import run_main

    before = sorted(p.name for p in world["runs"].iterdir())
    fn, resolve = {"train": ("seqrec.training.train:fit", "seqrec.config.spec:resolve_train"),
                   "predict": ("seqrec.evaluation.predict:recommend_and_score", "seqrec.config.spec:resolve_predict")}[kind]
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        run_main(fn, cfg, resolve=resolve)
    err = capsys.readouterr().err
    assert stop.value.code == 1
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("error: ") and "Traceback" not in err, err
    assert sorted(p.name for p in world["runs"].iterdir()) == before, "a refused command wrote a run"
    return lines[-1]


@pytest.mark.parametrize("trained, given", [("long_term", "leave_one_out"), ("leave_one_out", "long_term")])
def test_a_run_refuses_prediction_under_the_other_protocol(world, capsys, trained, given):
    train_id = world[trained][0]
    line = _refused(world, capsys, "predict", compose("predict", [f"train_task={train_id}", f"run_store={world['runs']}",
                                                                  f"protocol={given}", *PREDICT]))
    assert f"run {train_id} was trained under protocol={trained}" in line and f"drop protocol={given}" in line
    same = compose("predict", [f"train_task={train_id}", f"run_store={world['runs']}", f"protocol={trained}", *PREDICT])
    from seqrec.config.checks import check_predict_config

    check_predict_config(same)  # repeating the run's own protocol is fine


def test_cli_refuses_another_protocol_at_prediction(world):
    train_id = world["leave_one_out"][0]
    done = subprocess.run([sys.executable, str(ROOT / "src" / "run_predict.py"), "--config-name=predict",
                           f"train_task={train_id}", f"run_store={world['runs']}", "protocol=long_term", "logger=none"],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 1 and lines[-1].startswith("error: run ") and "protocol=leave_one_out" in lines[-1], done.stderr
    assert "Traceback" not in done.stderr + done.stdout


@pytest.mark.parametrize("config", ["greedy", "beam", "sampling", "multisequence", "two_stage", "GPT_temperature"])
def test_generation_strategies_refuse_under_leave_one_out(world, capsys, config):
    train_id = world["leave_one_out"][0]
    line = _refused(world, capsys, "predict", compose(config, [f"train_task={train_id}", f"run_store={world['runs']}",
                                                              *PREDICT]))
    assert "protocol=leave_one_out, where one held-out item per user leaves no later position to generate for" in line
    assert "--config-name=predict" in line


def test_compare_runs_under_each_protocol(world, tmp_path):
    from seqrec.evaluation.compare import compare_runs
    from seqrec.evaluation.report import leave_one_out_markdown, leave_one_out_table
    from seqrec.tracking.run_store import RunStore

    store = RunStore(world["runs"])
    loo, long = world["leave_one_out"][1], world["long_term"][1]
    assert compare_runs(store, [loo], [loo], n_resamples=200)["metric"].tolist() == ["ndcg@10", "hr@10"]
    assert compare_runs(store, [long], [long], n_resamples=200)["metric"].tolist() == ["ndcg@10", "recall@10"]
    with pytest.raises(UserError, match=r"were made under different protocols \(protocol=leave_one_out against "
                                        r"protocol=long_term\)"):
        compare_runs(store, [loo], [long], n_resamples=200)
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "compare_runs.py"), loo, loo, "--run-store",
                           str(world["runs"]), "--n-resamples", "200"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "hr@10" in done.stdout, done.stderr
    table = leave_one_out_table([{"model": "GPT", "seed": 42, "run_dir": store.path(loo, kind="predict")}])
    assert table.loc[0, "test_users"] == 60 and table.loc[0, "test_hr@10_low"] <= table.loc[0, "test_hr@10"]
    assert "| GPT | 1 |" in leave_one_out_markdown(table)
    with pytest.raises(UserError, match="not a predict run under protocol=leave_one_out"):
        leave_one_out_table([{"model": "GPT", "run_dir": store.path(long, kind="predict")}])


# --------------------------------------------------------------------------- every model
MODELS = {  # each model's literature config under leave-one-out, made tiny
    "SASRec_loo_train": ["model_params.embedding_dim=16"],
    "SASRecPlus_loo_train": ["model_params.embedding_dim=16"],
    "gSASRec_loo_train": ["model_params.embedding_dim=16", "seqrec_module.loss.neg_per_positive=8",
                          "trainer_params.max_steps=4", "dataloader.validation_size=null"],
    "BERT4Rec_loo_train": ["model_params.hidden_size=16", "model_params.inner_size=32"],
    "GPT_loo_train": ["model_params.n_positions=16", "model_params.n_embd=16", "model_params.n_layer=1"],
}


@pytest.mark.parametrize("config", list(MODELS))
def test_every_model_trains_and_predicts_under_leave_one_out(world, config, tmp_path):
    from seqrec import predict, train
    from seqrec.tracking.run_folder import RunFolder
    from seqrec.tracking.run_store import RunStore

    runs = tmp_path / "runs"
    epochs = [] if config.startswith("gSASRec") else ["trainer_params.max_epochs=1"]
    train(compose(config, [f"data_path={world['csv']}", f"run_store={runs}", "logger=none", "dataset.max_length=16",
                           "dataloader.batch_size=32", "trainer_params.enable_progress_bar=false",
                           "trainer_params.enable_model_summary=false", *epochs, *MODELS[config]]))
    train_id = RunStore(runs).list_runs("train")[-1].task_id
    predict(compose("predict", [f"train_task={train_id}", f"run_store={runs}", *PREDICT]))
    metrics = RunFolder(RunStore(runs).list_runs("predict")[-1].path).read_metrics()
    assert 0 <= metrics["test_ndcg@10"] <= metrics["test_hr@10"] <= 1 and "test_recall@10" not in metrics


# --------------------------------------------------------------------------- refusals
def test_leave_one_out_refuses_another_held_out_count(world, capsys):
    cfg = compose("GPT_train", [f"data_path={world['csv']}", f"run_store={world['runs']}", "protocol=leave_one_out",
                                "last_n_items=10", *TINY])
    line = _refused(world, capsys, "train", cfg)
    assert "protocol=leave_one_out holds out 1 item per user (last_n_items=1), got last_n_items=10" in line
    assert "drop last_n_items=10, or use protocol=long_term" in line


def test_leave_one_out_refuses_event_attributes(world, capsys):
    cfg = compose("GPT_train", [f"data_path={world['csv']}", f"run_store={world['runs']}", "protocol=leave_one_out",
                                "features=items_events", *TINY])
    assert "protocol=leave_one_out does not take event attributes" in _refused(world, capsys, "train", cfg)


@pytest.mark.parametrize("protocol, sequences, expect", [
    ("leave_one_out", {"a": [1, 2], "b": [3], "c": [4, 5]},
     "no user has 3 or more interactions, so protocol=leave_one_out leaves no validation or test user"),
    ("long_term", {"a": list(range(1, 12)), "b": [3, 4]},
     "only 1 user(s) have more than last_n_items=10 interactions"),
])
def test_a_protocol_that_leaves_no_users_is_one_line(world, capsys, protocol, sequences, expect):
    csv = world["base"] / f"too_short_{protocol}.csv"
    _log(sequences).to_csv(csv, index=False)
    cfg = compose("GPT_train", [f"data_path={csv}", f"run_store={world['runs']}", f"protocol={protocol}", *TINY])
    assert expect in _refused(world, capsys, "train", cfg)


def test_validation_size_beyond_the_users_is_one_line(world, capsys):
    cfg = compose("GPT_train", [f"data_path={world['csv']}", f"run_store={world['runs']}", "protocol=leave_one_out",
                                "dataloader.validation_size=500", *TINY])
    line = _refused(world, capsys, "train", cfg)
    assert "dataloader.validation_size=500 exceeds the 60 users protocol=leave_one_out validates on" in line
    assert "pass dataloader.validation_size=null (all users) or at most 60" in line


def test_unknown_protocol_is_one_line(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "src" / "run_train.py"), "protocol=leave_two_out",
                           f"run_store={tmp_path / 'runs'}", "logger=none"], capture_output=True, text=True, timeout=300)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 1 and len(lines) == 1, done.stderr
    assert "protocol=leave_two_out: no such option in config group 'protocol'" in lines[0]
    assert "did you mean protocol=leave_one_out?" in lines[0] and not (tmp_path / "runs").exists()
