"""Names that say what they are: a prediction's list length is ``k`` (the top-level ``top_k`` still works until 2.0,
with one warning line saying how to migrate), ``generation_params.top_k`` stays the sampling cutoff, stored runs
with the old name read in the current format, and every documented predict config predicts on a trained run."""

import logging
import os
import subprocess
import sys

import pandas as pd
import pytest

from conftest import CONFIG_DIR, ROOT, TINY_GPT, compose
from seqrec.core.errors import UserError

#: the documented, model-neutral predict configs
DOCUMENTED = ("predict", "greedy", "beam", "sampling", "multisequence", "two_stage")
#: the paper's names, kept working as they are
PAPER = ("temperature", "GPT_predict", "GPT_greedy", "GPT_beam", "GPT_temperature", "GPT_two_stage")
DEPRECATION = "top_k is deprecated, use k=5 (top_k is removed in 2.0)"


@pytest.fixture(scope="module")
def trained(tiny_csv, tmp_path_factory):
    from seqrec import train

    runs = tmp_path_factory.mktemp("names") / "runs"
    train(compose("GPT_train", [f"data_path={tiny_csv}", f"run_store={runs}", "task_name=names_train", *TINY_GPT,
                                "trainer_params.max_epochs=1", "seqrec_module.predict_top_k=10"]))
    (train_id,) = [p.name for p in runs.iterdir()]
    return runs, train_id


def _predict(trained, name, *extra):
    """Run ``name`` on the trained run; ``(its run folder, the test lists, validation NDCG@k)``."""
    from seqrec import predict

    runs, train_id = trained
    before = {p.name for p in runs.iterdir()}
    cfg = compose(name, [f"train_task={train_id}", f"run_store={runs}", "logger=none", "progress=false", *extra])
    ndcg = predict(cfg)
    (new,) = [p for p in runs.iterdir() if p.name not in before]
    return new, pd.read_parquet(new / "predictions.parquet"), ndcg


def _deprecations(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "deprecated" in r.getMessage()]


def test_k_sets_the_list_length_and_top_k_is_its_old_name(trained, caplog):
    """k=5: lists of 5 and metrics @5; +top_k=5 (the old name): the same lists, with exactly one warning naming
    k=5; the stored config holds k=5 and no top_k, so the run's own config.yaml reads as the current format."""
    import yaml

    with caplog.at_level(logging.WARNING, logger="seqrec"):
        run_k, lists_k, ndcg_k = _predict(trained, "predict", "k=5")
    assert _deprecations(caplog) == []
    assert lists_k.groupby("user_id")["rank"].max().eq(5).all() and lists_k["rank"].min() == 1
    metrics = (run_k / "metrics.json").read_text()
    assert '"val_ndcg@5"' in metrics and "@10" not in metrics
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="seqrec"):
        run_old, lists_old, ndcg_old = _predict(trained, "predict", "+top_k=5")
    assert _deprecations(caplog) == [DEPRECATION]
    pd.testing.assert_frame_equal(lists_old, lists_k)
    assert ndcg_old == ndcg_k
    stored = yaml.safe_load((run_old / "config.yaml").read_text())
    assert stored["k"] == 5 and "top_k" not in stored and stored["generation_params"]["top_k"] is None
    _, lists_default, _ = _predict(trained, "predict")  # k=null: the training run's predict_top_k
    assert lists_default.groupby("user_id")["rank"].max().eq(10).all()


def test_generation_params_top_k_is_still_the_sampling_cutoff(trained):
    """generation_params.top_k=1 leaves sampling one item to pick at each step: the greedy lists, whatever T; the
    lists keep the run's length k."""
    _, greedy, _ = _predict(trained, "greedy")
    _, cut, _ = _predict(trained, "sampling", "generation_params.top_k=1", "generation_params.temperature=2.0")
    assert cut.groupby("user_id")["rank"].max().eq(10).all()
    assert (cut["item_id"].to_numpy() == greedy["item_id"].to_numpy()).all()
    _, free, _ = _predict(trained, "sampling", "generation_params.top_k=null", "generation_params.temperature=2.0")
    assert (free["item_id"].to_numpy() != greedy["item_id"].to_numpy()).any()  # without the cutoff it samples


@pytest.mark.parametrize("name", DOCUMENTED + PAPER)
def test_every_predict_config_predicts(trained, name):
    """Each documented config and each of the paper's names predicts lists of k items on a trained run."""
    run, lists, ndcg = _predict(trained, name)
    assert 0 < ndcg <= 1
    assert lists.groupby("user_id").size().eq(10).all()
    assert lists.groupby("user_id")["item_id"].nunique().eq(10).all()  # no item twice in a list
    strategy = {"predict": "topk", "temperature": "sampling"}.get(name.removeprefix("GPT_"), name.removeprefix("GPT_"))
    assert compose(name, ["train_task=x"]).generation_params.strategy == strategy


def test_multisequence_defaults_are_the_papers_main_setting():
    """multisequence.yaml = the paper's main job (scripts/main.sh: GPT_temperature with T=0.3, N=20; RRA, top_k 50)."""
    neutral = compose("multisequence", ["train_task=x"]).generation_params
    paper = compose("GPT_temperature", ["train_task=x", "generation_params.temperature=0.3",
                                        "generation_params.num_return_sequences=20"]).generation_params
    assert (neutral.temperature, neutral.num_return_sequences, neutral.top_k, neutral.aggregation) == (0.3, 20, 50, "rra")
    for key in paper:
        if key != "strategy":  # sampling with N > 1 is multisequence: the same strategy built either way
            assert neutral[key] == paper[key], key
    from seqrec.generation import build_strategy
    from omegaconf import OmegaConf

    a = build_strategy(OmegaConf.to_container(neutral)).describe()
    assert a == build_strategy(OmegaConf.to_container(paper)).describe() == \
        "multisequence RRA (N=20, T=0.3, top_k=50, top_p=1.0)"


def test_top_k_on_the_command_line_without_plus(trained):
    """``run_predict.py ... top_k=5`` (no +, as before the rename) runs with k=5 and prints the warning once."""
    runs, train_id = trained
    env = {k: v for k, v in os.environ.items() if not k.startswith("HYDRA_")}
    done = subprocess.run([sys.executable, str(ROOT / "src" / "run_predict.py"), "--config-name=predict",
                           f"train_task={train_id}", f"run_store={runs}", "logger=none", "progress=false", "top_k=5"],
                          cwd=runs.parent, env=env, capture_output=True, text=True, timeout=300)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-3000:]
    assert out.count("top_k is deprecated") == 1 and DEPRECATION in out
    assert "test_ndcg@5" in out


# --------------------------------------------------------------------------- the rules, without a run
def test_old_and_new_names_both_set(trained):
    from seqrec.config.checks import check_predict_config, settle_predict_config

    same = compose("predict", ["train_task=x", "+top_k=5", "k=5"])
    settle_predict_config(same, check_run=False)  # what the resolver does to its own copy
    assert same.k == 5 and "top_k" not in same
    with pytest.raises(UserError, match=r"^top_k=5 and k=7 both set the same thing; drop top_k \(its old name, "
                                        r"removed in 2\.0\)$"):
        check_predict_config(compose("predict", ["train_task=x", "+top_k=5", "k=7"]), check_run=False)


def test_the_rename_is_settled_once_and_the_callers_config_is_left_alone(caplog):
    """Settling is idempotent (a second pass finds nothing to rename, so the warning is printed once), and a check
    works on a copy: the caller's config keeps what it was given."""
    from seqrec.config.checks import check_predict_config, settle_predict_config

    cfg = compose("GPT_temperature", ["train_task=x", "+top_k=5", "generation_params.top_k=7"])
    check_predict_config(cfg, check_run=False)
    assert cfg.top_k == 5 and "k" in cfg and cfg.k is None  # untouched
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="seqrec"):
        settle_predict_config(cfg, check_run=False)
        settle_predict_config(cfg, check_run=False)
    assert _deprecations(caplog) == [DEPRECATION]
    assert cfg.k == 5 and cfg.generation_params.top_k == 7


def test_old_overrides_adds_the_plus_to_old_keys_only():
    from seqrec.config.upgrade import old_overrides

    args = ["--config-name=predict", "top_k=5", "+top_k=6", "generation_params.top_k=50", "k=3", "task_name=top_k=1"]
    assert old_overrides(args, "predict") == ["--config-name=predict", "+top_k=5", "+top_k=6",
                                              "generation_params.top_k=50", "k=3", "task_name=top_k=1"]
    assert old_overrides(["top_k=5", "seqrec_module.predict_top_k=5"], "train") == ["top_k=5",
                                                                                   "seqrec_module.predict_top_k=5"]


def test_stored_predict_config_upgrades_to_k():
    """A predict run stored before the rename (format 1: top-level top_k) reads with k; the sampling cutoff stays."""
    from seqrec.config.upgrade import upgrade_config

    old = {"train_task": "x", "top_k": 5, "generation_params": {"strategy": "sampling", "top_k": 50,
                                                                 "num_return_sequences": 20}}
    new = upgrade_config(old, "predict", 1)
    assert new["k"] == 5 and "top_k" not in new and new["generation_params"]["top_k"] == 50
    assert new["generation_params"]["strategy"] == "sampling"  # stored as made; sampling with N > 1 aggregates
    assert old["top_k"] == 5  # a copy
    assert upgrade_config({"train_task": "x", "top_k": None}, "predict", 1)["k"] is None
    assert upgrade_config(new, "predict", 2) == new  # the current format is left as it is


def test_a_wrong_config_name_suggests_the_documented_names():
    from seqrec.cli.entry import hydra_error_message

    with pytest.raises(Exception) as info:
        compose("multisequense", [])
    line = hydra_error_message(info.value, CONFIG_DIR, "multisequense", [], "predict")
    assert line.startswith("--config-name=multisequense: no such config in ")
    assert "did you mean --config-name=multisequence?" in line
    offered = line.split(" available: ")[1].split(", ")
    assert set(DOCUMENTED + PAPER) <= set(offered)
    assert not [n for n in offered if "train" in n or "prompt_tune" in n]  # training configs are not offered
