"""Every config in src/configs composes and passes the up-front checks."""

import pytest

from conftest import CONFIG_DIR, compose
from seqrec.config.checks import check_predict_config, check_train_config
from seqrec.core.errors import UserError

TOP_LEVEL = sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


def test_configs_found():
    assert {"GPT_train", "GPT_predict"} <= set(TOP_LEVEL)


#: what each predict config generates (its name without a GPT_ prefix -> generation_params.strategy): the documented,
#: model-neutral names, and temperature (the paper's name of sampling, kept with the GPT_ ones as its contract)
STRATEGY_OF = {"predict": "topk", "greedy": "greedy", "beam": "beam", "sampling": "sampling",
               "multisequence": "multisequence", "two_stage": "two_stage", "temperature": "sampling"}
#: the paper's config names (GPT_<name>), kept working as they are
PAPER_NAMES = ("predict", "greedy", "beam", "temperature", "two_stage")


@pytest.mark.parametrize("name", TOP_LEVEL)
def test_every_config_passes_its_checks(name):
    cfg = compose(name, [])
    if "train_task" in cfg.keys():  # every predict config builds on base/predict, which asks for train_task
        cfg = compose(name, ["train_task=abc"])
        check_predict_config(cfg, check_run=False)  # no run store here: schema and strategy only
        assert cfg.generation_params.strategy == STRATEGY_OF[name.removeprefix("GPT_")]
    elif name.endswith("_prompt_tune"):  # a training stage that needs its pre-trained run (tests/test_prompt_tuning.py)
        with pytest.raises(UserError, match=r"^pretrained_task is required; pass pretrained_task=<value>"):
            check_train_config(cfg)
    else:
        assert name.endswith("_train"), f"{name} is neither a training config nor a predict config"
        check_train_config(cfg)


def test_every_config_is_checked_as_what_it_is():
    predict = [n for n in TOP_LEVEL if "train_task" in compose(n, []).keys()]
    train = [n for n in TOP_LEVEL if n not in predict]
    assert sorted(train) == ["BERT4Rec_loo_train", "BERT4Rec_train", "GPT_loo_train", "GPT_prompt_tune", "GPT_train",
                             "SASRecPlus_loo_train", "SASRec_loo_train", "SASRec_prompt_tune", "SASRec_train",
                             "gSASRec_loo_train", "gSASRec_prompt_tune", "gSASRec_train"]
    assert sorted(predict) == sorted([*STRATEGY_OF, *(f"GPT_{n}" for n in PAPER_NAMES)])


@pytest.mark.parametrize("logger", ["clearml_offline", "clearml", "none"])
def test_logger_group(logger):
    from hydra.utils import get_class

    from seqrec.tracking.base import Tracker

    cfg = compose("GPT_train", [f"logger={logger}"])
    assert issubclass(get_class(cfg.logger._target_), Tracker)  # an importable tracker, not just a string


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


# --------------------------------------------------------------------------- the declared schema
def test_declared_settings_exist_in_the_configs():
    """Every required Setting of the schema is a key of the configs it checks (no stale entries)."""
    from omegaconf import OmegaConf

    from seqrec.config.checks import PREDICT, TRAIN

    for name, settings in (("GPT_train", TRAIN), ("GPT_predict", PREDICT)):
        cfg = compose(name, [] if "train" in name else ["train_task=abc"])
        missing = [s.key for s in settings if s.required and OmegaConf.select(cfg, s.key, default="<none>") == "<none>"]
        assert not missing, (name, missing)


@pytest.mark.parametrize(
    "override, match",
    [
        ("+lr=1e-3", r"unknown key lr in the training config; did you mean seqrec_module\.lr\?"),
        ("+dataloder=3", r"did you mean dataloader\?"),
        ("+dataset.max_lenght=8", r"unknown key dataset\.max_lenght; did you mean dataset\.max_length\?"),
        ("+seqrec_module.learning_rate=1", r"seqrec_module takes only"),
        ("+trainer_params.max_epoch=3", r"trainer_params\.max_epoch is not an argument .* trainer_params\.max_epochs"),
        ("+trainer_params.callbacks=[]", r"set by run_train\.py itself"),
        ("trainer_params.precision=nonsense", r"trainer_params\.precision must be auto or a lightning\.Trainer precision"),
        ("trainer_params.limit_train_batches=1.5", r"limit_train_batches must be an integer >= 1 \(batches\) or a fraction"),
        ("dataloader.batch_size=abc", r"dataloader\.batch_size must be an integer >= 1 \(got 'abc'\)"),
        ("last_n_items=0", r"last_n_items must be an integer >= 1"),
        ("random_state=1.5", r"random_state must be an integer"),
        ("task_name=''", r"task_name must be a non-empty string"),
        ("logger.reachability_timeout=0", r"logger\.reachability_timeout must be a number > 0"),
        ("+train_dataset.foo=1", r"train_dataset\.foo is not a setting of CausalLMDataset; its settings: none"),
        ("+train_dataset.seed=1", r"train_dataset\.seed is set by run_train\.py itself"),
        ("+seqrec_module.loss.chunks=8", r"not a setting of CrossEntropy; its settings: chunk, matmul_dtype; did you mean seqrec_module\.loss\.chunk\?"),
        ("+model_params.n_layers=2", r"model_params\.n_layers is not a setting of GPT; its settings: .*did you mean model_params\.n_layer\?"),
    ],
)
def test_schema_rejects_before_any_data(override, match):
    with pytest.raises(UserError, match=match):
        check_train_config(compose("GPT_train", [override, "data_path=/nonexistent.csv"]))


@pytest.mark.parametrize(
    "config, override, match",
    [
        ("GPT_predict", "+temprature=0.5", r"unknown key temprature .* did you mean generation_params\.temperature\?"),
        ("GPT_predict", "+generation_params.num_beam=2", r"did you mean generation_params\.num_beams\?"),
        ("GPT_beam", "generation_params.num_beams=0", r"generation_params\.num_beams must be an integer >= 1"),
        ("GPT_temperature", "generation_params.temperature=0", r"temperature must be a number > 0 .*GPT_greedy"),
        ("GPT_temperature", "generation_params.top_p=2", r"generation_params\.top_p must be a number in \(0, 1\]"),
        ("GPT_temperature", "generation_params.aggregation=foo", r"generation_params\.aggregation must be one of rra, ra"),
        ("GPT_predict", "generation_params.strategy=foo", r"strategy='foo' is unknown; allowed: .*two_stage"),
        ("GPT_predict", "generation_params.precision=half", r"generation_params\.precision must be one of float32, bfloat16, auto"),
        ("GPT_greedy", "generation_params.do_sample=true", r"contradicts strategy greedy"),
        ("GPT_predict", "k=0", r"^k must be an integer >= 1 \(or null\) \(got 0\); pass e\.g\. k=10"),
        ("GPT_predict", "+top_k=0", r"^k must be an integer >= 1 \(or null\) \(got 0\)"),  # the old name, applied as k
        ("GPT_predict", "+list_length=5", r"unknown key list_length .*; did you mean k\?"),
        ("GPT_predict", "device=tpu", r"device must be auto, cpu, mps, cuda or cuda:<N>"),
        ("GPT_predict", "progress=maybe", r"progress must be true or false"),
    ],
)
def test_predict_schema(config, override, match):
    with pytest.raises(UserError, match=match):
        check_predict_config(compose(config, ["train_task=abc", override]), check_run=False)


def test_predict_checks_the_training_run(tmp_path):
    cfg = compose("GPT_predict", ["train_task=abc", f"run_store={tmp_path}"])
    with pytest.raises(UserError, match=r"unknown run ID 'abc' in .*; pass train_task=<ID> printed by run_train\.py"):
        check_predict_config(cfg)


def test_suggest_key():
    from seqrec.config.checks import suggest_key

    keys = ["seqrec_module.lr", "dataloader.batch_size", "dataset.max_length", "patience"]
    assert suggest_key("lr", keys) == "seqrec_module.lr"
    assert suggest_key("dataloder.batch_size", keys) == "dataloader.batch_size"
    assert suggest_key("patiense", keys) == "patience"
    assert suggest_key("completely_different", keys) is None


def test_default_run_store_does_not_depend_on_the_folder_a_command_starts_in(tmp_path):
    """Started from src/ (or anywhere), runs go to <repo>/runs, so the printed next command works from the repo
    root; SEQREC_RUN_STORE moves the default."""
    import os
    import subprocess
    import sys

    from conftest import ROOT

    env = {k: v for k, v in os.environ.items() if k != "SEQREC_RUN_STORE"}
    for cwd in (ROOT / "src", tmp_path):
        done = subprocess.run([sys.executable, str(ROOT / "src" / "run_train.py"), "--cfg", "job", "--resolve"],
                              cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
        assert f"run_store: {ROOT / 'runs'}\n" in done.stdout, done.stdout[-500:] + done.stderr[-500:]
    done = subprocess.run([sys.executable, str(ROOT / "src" / "run_train.py"), "--cfg", "job", "--resolve"],
                          cwd=tmp_path, env={**env, "SEQREC_RUN_STORE": str(tmp_path / "elsewhere")},
                          capture_output=True, text=True, timeout=120)
    assert f"run_store: {tmp_path / 'elsewhere'}\n" in done.stdout
