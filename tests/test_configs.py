"""Every config in src/configs composes and passes the up-front checks."""

import pytest

from conftest import CONFIG_DIR, compose
from seqrec.config import check_predict_config, check_train_config
from seqrec.errors import UserError

TOP_LEVEL = sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


def test_configs_found():
    assert {"GPT_train", "GPT_predict"} <= set(TOP_LEVEL)


@pytest.mark.parametrize("name", TOP_LEVEL)
def test_compose(name):
    cfg = compose(name, ["train_task=abc"] if "predict" in name.lower() else [])
    if "train" in name:
        check_train_config(cfg)
    elif "predict" in name.lower():
        check_predict_config(cfg)


@pytest.mark.parametrize("logger", ["clearml_offline", "clearml", "none"])
def test_logger_group(logger):
    cfg = compose("GPT_train", [f"logger={logger}"])
    assert cfg.logger._target_.startswith("seqrec.tracking")


def test_seed_keys_override():
    keys = [
        "project_name=p", "task_name=t", "data_path=x.csv", "last_n_items=5", "dataset.max_length=64",
        "dataloader.batch_size=32", "dataloader.test_batch_size=128", "dataloader.num_workers=0",
        "dataloader.validation_size=100", "model_params.n_positions=64", "model_params.n_embd=32",
        "model_params.n_layer=1", "model_params.n_head=2", "seqrec_module.lr=1e-3",
        "seqrec_module.predict_top_k=5", "seqrec_module.filter_seen=false", "trainer_params.max_epochs=3",
        "patience=2", "random_state=7",
    ]
    cfg = compose("GPT_train", keys)
    check_train_config(cfg)
    assert cfg.seqrec_module.lr == pytest.approx(1e-3) and cfg.model_params.n_head == 2 and cfg.random_state == 7


@pytest.mark.parametrize(
    "override, match",
    [
        ("seqrec_module.lr=0", "seqrec_module.lr must be a number > 0"),
        ("seqrec_module.lr=-1e-3", "seqrec_module.lr"),
        ("dataset.max_length=1", "dataset.max_length must be an integer >= 2"),
        ("dataset.max_length=256", "exceeds model_params.n_positions"),
        ("dataloader.batch_size=0", "dataloader.batch_size"),
        ("trainer_params.max_epochs=0", "trainer_params.max_epochs"),
        ("model_params.n_head=3", "divisible"),
        ("dataset.train_window=middle", "train_window"),
        ("seqrec_module.filter_seen=maybe", "filter_seen"),
        ("patience=-1", "patience"),
    ],
)
def test_bad_values(override, match):
    with pytest.raises(UserError, match=match):
        check_train_config(compose("GPT_train", [override]))


def test_predict_requires_train_task():
    with pytest.raises(UserError, match="train_task is required"):
        check_predict_config(compose("GPT_predict"))
