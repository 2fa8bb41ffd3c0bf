from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

import os

import pytest

CONFIG_DIR = ROOT / "src" / "configs"


def shared_data_dir() -> Path:
    """``../shared/data`` beside the repo (override with SEQREC_SHARED_DATA)."""
    return Path(os.environ.get("SEQREC_SHARED_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture(autouse=True)
def _isolated_clearml(tmp_path_factory, monkeypatch):
    """Keep ClearML's offline sessions and cache out of the user's home."""
    home = tmp_path_factory.mktemp("clearml_home")
    monkeypatch.setenv("HOME", str(home))  # ClearML always writes ~/.clearml/.session.json
    monkeypatch.setenv("CLEARML_CACHE_DIR", str(home / "cache"))
    monkeypatch.setenv("CLEARML_CONFIG_FILE", str(home / "clearml.conf"))
    # a command without run_store= writes here, not into the repository's runs/
    monkeypatch.setenv("SEQREC_RUN_STORE", str(home / "default_runs"))
    yield


#: a GPT-2 small enough for seconds-long training runs in tests
TINY_GPT = [
    "dataset.max_length=16", "model_params.n_positions=16", "model_params.n_embd=16", "model_params.n_layer=1",
    "dataloader.batch_size=32", "dataloader.validation_size=100", "trainer_params.enable_progress_bar=false",
    "trainer_params.enable_model_summary=false",
]


def compose(config_name: str, overrides: list[str] | None = None):
    """The config the entry points compose (seqrec.experiments.plan.compose)."""
    from seqrec.experiments.plan import compose as compose_config

    return compose_config(config_name, list(overrides or []))


@pytest.fixture(scope="module")
def tiny_csv(tmp_path_factory):
    """A small seeded synthetic log (300 users, 80 items) shared by a test module."""
    from seqrec.data.synthetic import write_synthetic

    path = tmp_path_factory.mktemp("data") / "tiny.csv"
    write_synthetic(path, n_users=300, n_items=80, min_len=20, max_len=50, seed=0)
    return path
