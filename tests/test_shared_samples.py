"""One sampling pass, several multi-sequence settings: ``prefix_sequences`` keeps the lists, ``samples_from`` takes
one, and it is scored exactly like a run that generated it."""

import json

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from conftest import compose
from seqrec.data.split import load_interactions, split_interactions
from seqrec.core.errors import UserError
from seqrec import predict, train
from seqrec.tracking.run_folder import NESTED_FILE

SMALL = ["dataset.max_length=24", "model_params.n_positions=24", "model_params.n_embd=16", "model_params.n_layer=1",
         "dataloader.batch_size=32", "dataloader.validation_size=60", "trainer_params.max_epochs=2",
         "trainer_params.enable_progress_bar=false", "trainer_params.enable_model_summary=false", "logger=none"]
SAMPLING = ["generation_params.temperature=0.5", "generation_params.top_k=20", "progress=false", "logger=none"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_csv):
    runs = tmp_path_factory.mktemp("runs")
    train(compose("GPT_train", [f"data_path={tiny_csv}", f"run_store={runs}", *SMALL]))
    train_id = next(p.name for p in runs.iterdir() if (p / "model.pt").exists())
    return runs, train_id


def _predict(runs, train_id, *extra):
    before = {p.name for p in runs.iterdir()}
    predict(compose("temperature", [f"train_task={train_id}", f"run_store={runs}", *SAMPLING, *extra]))
    (new,) = {p.name for p in runs.iterdir()} - before
    return runs / new


def _metrics(run_dir):
    return json.loads((run_dir / "metrics.json").read_text())


@pytest.fixture(scope="module")
def source(trained):
    runs, train_id = trained
    return _predict(runs, train_id, "generation_params.num_return_sequences=6", "generation_params.prefix_sequences=[2,6]")


def test_the_source_keeps_every_prefix_list_for_its_users(trained, source):
    with np.load(source / NESTED_FILE) as data:
        files = set(data.files)
        assert {f"{part}/{how}_N{n}/{what}" for part in ("val", "test") for how in ("rra", "ra") for n in (2, 6)
                for what in ("items", "scores")} | {"val/users", "test/users"} == files
        main = data["test/rra_N6/items"]
    predictions = pd.read_parquet(source / "predictions.parquet")
    assert len(main) * main.shape[1] == len(predictions)


@pytest.mark.parametrize("n, how", [(2, "rra"), (2, "ra"), (6, "ra"), (6, "rra")])
def test_a_run_taking_the_samples_equals_one_that_sampled_them(trained, source, n, how):
    """``samples_from`` gives the lists the source kept, scored like any run. At N = 6 the source's draws are those
    of an independent run with the same seed (the aggregation does not change them), so its metrics must equal that
    run's exactly; at N = 2 the lists are the source's kept ones."""
    runs, train_id = trained
    taken = _predict(runs, train_id, f"generation_params.num_return_sequences={n}",
                     f"generation_params.aggregation={how}", f"samples_from={source.name}")
    with np.load(source / NESTED_FILE) as data:
        kept = data[f"test/{how}_N{n}/items"]
    predictions = pd.read_parquet(taken / "predictions.parquet")
    k = kept.shape[1]
    ranks = predictions["rank"].to_numpy().reshape(-1, k)
    assert (ranks == np.arange(1, k + 1)).all()
    split = split_interactions(load_interactions(OmegaConf.load(runs / train_id / "config.yaml").data_path))
    np.testing.assert_array_equal(predictions["item_id"].to_numpy().reshape(-1, k), split.item_ids[kept - 1])
    if n == 6:
        sampled = _predict(runs, train_id, "generation_params.num_return_sequences=6",
                           f"generation_params.aggregation={how}")
        assert _metrics(taken) | {"val_ms_per_user": 0, "test_ms_per_user": 0} == \
            _metrics(sampled) | {"val_ms_per_user": 0, "test_ms_per_user": 0}
    assert json.loads((taken / "run.json").read_text())["samples_from"] == source.name


@pytest.mark.parametrize("extra, message", [
    (["generation_params.num_return_sequences=3"], "kept ra_N2, ra_N6, rra_N2, rra_N6, not rra_N3 (aggregation rra, N=3)"),
    (["generation_params.num_return_sequences=2", "generation_params.temperature=0.9"],
     "sampled with other settings than this run asks for: generation_params.temperature=0.9 (the run has 0.5)"),
    (["generation_params.num_return_sequences=2", "random_state=7"], "random_state=7 (the run has"),
    (["generation_params.num_return_sequences=1"], "samples_from takes multi-sequence lists"),
])
def test_a_mismatched_source_is_refused_in_one_line(trained, source, extra, message):
    runs, train_id = trained
    before = sorted(p.name for p in runs.iterdir())
    with pytest.raises(UserError) as err:
        predict(compose("temperature", [f"train_task={train_id}", f"run_store={runs}", *SAMPLING, *extra,
                                        f"samples_from={source.name}"]))
    assert message in str(err.value) and "\n" not in str(err.value)
    assert sorted(p.name for p in runs.iterdir()) == before  # refused before any run folder is made


def test_a_source_that_kept_nothing_or_is_no_predict_run_is_refused(trained):
    runs, train_id = trained
    plain = _predict(runs, train_id, "generation_params.num_return_sequences=2")
    with pytest.raises(UserError, match=f"samples_from={plain.name} kept no prefix lists"):
        predict(compose("temperature", [f"train_task={train_id}", f"run_store={runs}", *SAMPLING,
                                        "generation_params.num_return_sequences=2", f"samples_from={plain.name}"]))
    with pytest.raises(UserError, match="is a completed train run; pass a completed predict run"):
        predict(compose("temperature", [f"train_task={train_id}", f"run_store={runs}", *SAMPLING,
                                        "generation_params.num_return_sequences=2", f"samples_from={train_id}"]))
    with pytest.raises(UserError, match="unknown run ID 'nope'"):
        predict(compose("temperature", [f"train_task={train_id}", f"run_store={runs}", *SAMPLING,
                                        "generation_params.num_return_sequences=2", "samples_from=nope"]))


def test_a_source_made_for_other_users_is_refused_before_any_folder(trained, source, tmp_path):
    """The users a source sampled for must be this split's, in its order (a changed data file gives others)."""
    import shutil

    runs, train_id = trained
    other = runs / "other-users"
    shutil.copytree(source, other)
    record = json.loads((other / "run.json").read_text())
    (other / "run.json").write_text(json.dumps({**record, "task_id": other.name}))
    with np.load(source / NESTED_FILE) as data:
        arrays = {key: data[key] for key in data.files}
    arrays["test/users"] = arrays["test/users"][::-1].copy()
    np.savez(other / NESTED_FILE, **arrays)
    before = sorted(p.name for p in runs.iterdir())
    with pytest.raises(UserError, match="^samples_from=other-users sampled for other test users than this split has"):
        predict(compose("temperature", [f"train_task={train_id}", f"run_store={runs}", *SAMPLING,
                                        "generation_params.num_return_sequences=2", "samples_from=other-users"]))
    assert sorted(p.name for p in runs.iterdir()) == before
    shutil.rmtree(other)


def test_an_option_added_later_is_null_in_an_upgraded_source():
    """A source run made before an option existed (format 1) is compared in the current format: the option is
    there at null (its old behaviour), so a run that leaves it at null matches, and only then: a value set for it,
    or any other difference, still counts."""
    from seqrec.config.upgrade import upgrade_config
    from seqrec.core.config_diff import config_differences

    stored = upgrade_config({"generation_params": {"temperature": 0.3}}, "predict", 1)
    assert stored["generation_params"]["generated_events"] is None
    same = {**stored, "generation_params": {**stored["generation_params"]}}
    assert config_differences(stored, same, ()) == []
    assert config_differences({"generation_params": {"temperature": 0.3}}, same, ())  # without the upgrade it differs
    set_now = {**stored, "generation_params": {**stored["generation_params"], "generated_events": "unknown"}}
    assert config_differences(stored, set_now, ()) == [
        "generation_params.generated_events='unknown' (the run has None)"]
    other = {**stored, "generation_params": {**stored["generation_params"], "temperature": 0.6}}
    assert config_differences(stored, other, ()) == ["generation_params.temperature=0.6 (the run has 0.3)"]