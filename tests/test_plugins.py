"""A new strategy and a new model, written outside ``src/`` without touching any file of the repo, run end to end.

This is the proof of the README's "add a strategy / add a model" recipe: a temporary package ``tinyplug`` holds
(a) a strategy ``skip`` with a new parameter ``offset`` (the items at ranks ``offset + 1 .. offset + k``), labelled
``off`` in the report, and (b) a model ``MeanPool`` (a causal running mean of item embeddings, with RecGPT's segment
embedding), each as an implementation module plus a torch-free declaration module, and its own config folder
(``MeanPool_train.yaml``, ``MeanPool_prompt_tune.yaml``, ``model/meanpool.yaml``, ``skip.yaml``). Three environment
variables make them visible: ``PYTHONPATH`` (importable), ``SEQREC_PLUGINS`` (the declarations) and
``SEQREC_CONFIG_PATH`` (the configs).
"""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

from conftest import ROOT

STRATEGY = '''
import torch

from seqrec.generation.base import Strategy


class Skip(Strategy):
    """The items at ranks offset + 1 .. offset + k of one forward pass."""

    name = "skip"

    def __init__(self, offset: int):
        self.offset = offset

    @classmethod
    def from_params(cls, params):
        return cls(params["offset"])

    def generate(self, state):
        top = torch.topk(state.logits(), state.ctx.k + self.offset, dim=1)
        return top.indices[:, self.offset:], top.values[:, self.offset:]
'''

STRATEGY_DECLARATION = '''
from seqrec.core.registry import Strategy, StrategySpec, register
from seqrec.core.settings import Int

register(Strategy(
    "skip", "tinyplug.skip.Skip", order=50,
    settings=(Int("offset", "2", ge=0, default=0, doc="ranks skipped before the k items"),),
    label_params=(("offset", "off"),),  # "off=2" in the report's params column
    grid=lambda options: [StrategySpec("skip", "skip", (("offset", 2),))],
))
'''

MODEL = '''
import torch
from torch import nn

from seqrec.models.base import SequentialModel


class MeanPool(SequentialModel):
    """Causal running mean of the item embeddings (plus RecGPT's segment embedding), through one linear layer."""

    def __init__(self, n_items: int, dim: int = 16, segment_embedding: bool = False):
        super().__init__()
        self.n_items = n_items
        self.item = nn.Embedding(n_items + 1, dim, padding_idx=0)
        self.proj = nn.Linear(dim, dim)
        if segment_embedding:  # set by prompt-tuning
            self.add_segment_embedding(dim)

    def encode(self, input_ids, attention_mask=None, cache=None, segments=None):
        mask = (input_ids != 0 if attention_mask is None else attention_mask).float().unsqueeze(-1)
        inputs = self.item(input_ids) + self.segment_embeddings(input_ids, segments)
        mean = (inputs * mask).cumsum(1) / mask.cumsum(1).clamp_min(1.0)
        return torch.tanh(self.proj(mean))

    def output_embeddings(self):
        return self.item.weight

    def item_logits(self, hidden):
        return hidden @ self.item.weight.T
'''

MODEL_DECLARATION = '''
from seqrec.core.registry import Model, register
from seqrec.core.settings import Bool, Int

register(Model(
    name="meanpool", label="MeanPool", target="tinyplug.meanpool.MeanPool", train_config="MeanPool_train",
    kv_cache=True,  # causal (no cache of its own: the engine re-runs the window), so it may be prompt-tuned
    prompt_tune_config="MeanPool_prompt_tune",  # RecGPT's stage of the experiment takes it
    order=10, settings=(Int("dim", "16", ge=1), Bool("segment_embedding", "false")),
    search_space={"seqrec_module.lr": "tag(log, interval(1e-3, 1e-2))", "model_params.dim": "choice(8, 16)"},
))
'''

CONFIGS = {
    "model/meanpool.yaml": """
        # @package _global_
        model:
          name: meanpool
          _target_: tinyplug.meanpool.MeanPool
        model_params:
          dim: 16
        predict_config_name: predict
    """,
    "MeanPool_train.yaml": """
        defaults:
          - base/train
          - model: meanpool
          - loss: CE
          - logger: none
          - _self_
        task_name: MeanPool_train
    """,
    "MeanPool_prompt_tune.yaml": """
        defaults:
          - MeanPool_train
          - _self_
        task_name: MeanPool_prompt_tune
        pretrained_task: ???
        prompt_tuning:
          _target_: seqrec.training.prompt_tuning.PromptAugmenter
          mode: replace_last
          prompt_length: 1
    """,
    "skip.yaml": """
        defaults:
          - base/predict
          - logger: none
          - _self_
        task_name: skip
        generation_params:
          strategy: skip
          offset: 2
    """,
}

TINY = ["trainer_params.max_epochs=2", "trainer_params.limit_train_batches=5", "dataloader.validation_size=50",
        "trainer_params.enable_progress_bar=false", "trainer_params.enable_model_summary=false"]


@pytest.fixture(scope="module")
def plugin(tmp_path_factory):
    """The plug-in folder and the environment that makes it visible."""
    root = tmp_path_factory.mktemp("plugin")
    package = root / "tinyplug"
    package.mkdir()
    files = {"__init__.py": "", "skip.py": STRATEGY, "skip_config.py": STRATEGY_DECLARATION,
             "meanpool.py": MODEL, "meanpool_config.py": MODEL_DECLARATION}
    for name, text in files.items():
        (package / name).write_text(text)
    for name, text in CONFIGS.items():
        path = root / "configs" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
    env = {**os.environ, "PYTHONPATH": str(root), "SEQREC_PLUGINS": "tinyplug.skip_config,tinyplug.meanpool_config",
           "SEQREC_CONFIG_PATH": str(root / "configs"), "OMP_NUM_THREADS": "1"}
    return root, env


def cli(env, script, *args, timeout=300):
    return subprocess.run([sys.executable, script, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_plugin_untouched_repo(plugin):
    """The plug-in lives outside the repository and no tracked file changed to make it work."""
    root, _ = plugin
    assert not root.resolve().is_relative_to(ROOT)
    changed = subprocess.run(["git", "status", "--porcelain", "--", "src/seqrec", "src/configs"], cwd=ROOT,
                             capture_output=True, text=True).stdout
    assert "tinyplug" not in changed and "meanpool" not in changed.lower() and "skip" not in changed


@pytest.fixture(scope="module")
def trained(plugin, tiny_csv, tmp_path_factory):
    """A MeanPool training run (the plug-in model) and its ID."""
    _, env = plugin
    runs = tmp_path_factory.mktemp("plugin_runs")
    res = cli(env, "src/run_train.py", "--config-name=MeanPool_train", f"data_path={tiny_csv}", f"run_store={runs}",
              *TINY)
    assert res.returncode == 0, res.stderr[-3000:]
    last = res.stdout.strip().splitlines()[-1]
    assert last.startswith("python src/run_predict.py --config-name=predict ")  # the model's predict config
    return runs, last.split("train_task=")[1].split()[0]


def _predictions(runs, stdout) -> pd.DataFrame:
    run_id = [line for line in stdout.splitlines() if line.startswith("run ")][-1].split()[1].rstrip(":")
    return pd.read_parquet(runs / run_id / "predictions.parquet")


def test_plugin_model_and_strategy_train_and_predict(plugin, trained):
    """run_train -> run_predict with both plug-ins; skip(offset=2) gives exactly ranks 3..k+2 of Top-K."""
    _, env = plugin
    runs, train_id = trained
    common = [f"train_task={train_id}", f"run_store={runs}", "progress=false"]
    skip = cli(env, "src/run_predict.py", "--config-name=skip", *common)
    assert skip.returncode == 0, skip.stderr[-3000:]
    top = cli(env, "src/run_predict.py", "--config-name=predict", *common, "top_k=12")
    assert top.returncode == 0, top.stderr[-3000:]
    ours, reference = _predictions(runs, skip.stdout), _predictions(runs, top.stdout)
    assert len(ours) == 10 * ours["user_id"].nunique() > 0
    expected = reference[reference["rank"] > 2].assign(rank=lambda f: f["rank"] - 2)
    merged = ours.merge(expected, on=["user_id", "rank"], suffixes=("", "_ref"))
    assert len(merged) == len(ours)
    assert (merged["item_id"] == merged["item_id_ref"]).all()
    assert np.allclose(merged["score"], merged["score_ref"])


@pytest.mark.parametrize("args, line", [
    # the new parameter's bad value: the same one-line form as a built-in one (num_beams=0 below)
    (["--config-name=skip", "generation_params.offset=-1"],
     "error: generation_params.offset must be an integer >= 0 (got -1); pass e.g. generation_params.offset=2"),
    (["--config-name=GPT_beam", "generation_params.num_beams=0"],
     "error: generation_params.num_beams must be an integer >= 1 (got 0); pass e.g. generation_params.num_beams=2"),
    # a built-in strategy refuses the plug-in's parameter and names the strategy that reads it
    (["--config-name=GPT_greedy", "+generation_params.offset=1"],
     "error: generation_params.offset does not apply to strategy greedy (it reads none of the strategy parameters); "
     "drop it, or use a config whose strategy reads it (skip)"),
    (["--config-name=skip", "generation_params.ofset=1"], None),
])
def test_plugin_bad_values_are_one_line(plugin, args, line):
    _, env = plugin
    res = cli(env, "src/run_predict.py", *args, "train_task=whatever", timeout=60)
    assert res.returncode == 1
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    if line is None:  # a Hydra-level typo: the closest key is suggested
        assert "generation_params.offset" in lines[0]
    else:
        assert lines[0] == line


def test_plugin_model_settings_are_checked(plugin, tiny_csv, tmp_path):
    _, env = plugin
    res = cli(env, "src/run_train.py", "--config-name=MeanPool_train", f"data_path={tiny_csv}",
              f"run_store={tmp_path}", "model_params.dim=0", timeout=60)
    assert res.returncode == 1
    assert res.stderr.strip().splitlines() == [
        "error: model_params.dim must be an integer >= 1 (got 0); pass e.g. model_params.dim=16"]
    res = cli(env, "src/run_train.py", "--config-name=MeanPool_train", f"data_path={tiny_csv}",
              f"run_store={tmp_path}", "+model_params.dims=8", timeout=60)
    assert res.returncode == 1 and "did you mean model_params.dim?" in res.stderr
    assert not any(tmp_path.iterdir())  # nothing was written


def test_plugin_paper_grid(plugin, tmp_path):
    """``reproduce_paper.py --quick --recgpt`` finds the plug-in model and strategy in the registry and reports both:
    the strategy's own parameter is in the report's label, and the causal model joins RecGPT's stage (prompt-tuned
    with the config its declaration names) without being named."""
    from seqrec.data.synthetic import make_synthetic

    _, env = plugin
    data = tmp_path / "syn.csv"
    make_synthetic(n_users=120, n_items=50, min_len=20, max_len=30, seed=5).to_csv(data, index=False)
    res = cli(env, "scripts/reproduce_paper.py", "--dataset", str(data), "--quick", "--models", "MeanPool",
              "--seeds", "3", "--run-store", str(tmp_path / "runs"), "--results", str(tmp_path / "results"),
              "--logger", "none", "--train-override", "dataloader.validation_size=30", "--recgpt", timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    out = tmp_path / "results" / "syn-quick"
    summary = pd.read_csv(out / "summary.csv", keep_default_na=False)
    tuned = ["MeanPool-PT-replace_last-P1", "MeanPool-PT-none-P1"]  # RecGPT's main variant and its control
    assert set(summary["model"]) == {"MeanPool", *tuned}
    assert "skip" in set(summary["strategy"]) and "topk" in set(summary["strategy"])
    assert summary["test_ndcg@10"].between(0, 1).all()
    # the plug-in strategy's parameter, under the short name its declaration gives, is the setting's label
    assert summary.loc[summary["strategy"] == "skip", "params"].tolist() == ["off=2"]
    # each prompt-tuned run generated with RecGPT's strategies (Top-K, two-stage N=8, 9, RRA)
    for model in tuned:
        rows = summary[summary["model"] == model]
        assert sorted(rows["strategy"] + " " + rows["params"]) == [
            "rra T=0.5 top_k=50 N=4", "topk ", "two_stage first=8", "two_stage first=9"]
    recgpt = pd.read_csv(out / "recgpt.csv", keep_default_na=False)
    assert set(recgpt["model"]) == {"MeanPool"} and len(recgpt) > 0
    # the prompt-tuning runs are MeanPool_prompt_tune's: tinyplug's network with the segment embedding, started from
    # the MeanPool training run
    import yaml

    configs = {}
    for run in (tmp_path / "runs").iterdir():
        if (run / "config.yaml").is_file():
            configs[run.name] = yaml.safe_load((run / "config.yaml").read_text())
    trained = [i for i, c in configs.items() if c.get("task_name") == "syn-quick_MeanPool_s3_train"]
    prompt = [c for c in configs.values() if str(c.get("task_name", "")).startswith("syn-quick_MeanPool-PT-")
              and str(c.get("task_name", "")).endswith("_train")]
    assert len(trained) == 1 and len(prompt) == 2
    for c in prompt:
        assert c["model"]["_target_"] == "tinyplug.meanpool.MeanPool" and c["model_params"]["segment_embedding"]
        assert c["pretrained_task"] == trained[0] and c["prompt_tuning"]["mode"] in ("replace_last", "none")
