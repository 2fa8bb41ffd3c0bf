"""Bad input, systematically: every case fails with one actionable line and changes nothing.

Each case is a bad data file, config, override, generation parameter, run ID or ClearML
set-up. Most run as real subprocesses of ``src/run_train.py``, ``src/run_predict.py`` or
``scripts/prepare_data.py`` (in a scratch working directory, with HOME and the ClearML
cache/config in a temporary folder); the data-file cases, which need the pipeline imported,
and a few schema cases run in-process through :func:`seqrec.cli.entry.run_main`, the function the
entry points call. For every case:

* the exit status is 1;
* the last non-empty line on stderr is ``error: ...``, one line of at most ``MAX_LINE``
  characters, naming the offending key, value or file (``expect``);
* no Python traceback (and no Hydra "HYDRA_FULL_ERROR" hint) is printed;
* every file that existed before (a trained run, a predict run, damaged run copies, the data
  files, an existing prepare_data output) is byte-identical afterwards, no temporary or
  half-written file is left, and no run folder is created -- except for the one case that
  fails inside a run, whose new folder is marked ``failed`` and whose ``run.log`` holds the
  full traceback.

One tiny GPT-2 run (1 epoch on a small synthetic log) and one predict run are made once per
module, in-process.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conftest import ROOT, compose

MAX_LINE = 300  # characters of the error line, "error: " included
TRAIN_SCRIPT = ROOT / "src" / "run_train.py"
PREDICT_SCRIPT = ROOT / "src" / "run_predict.py"
PREPARE_SCRIPT = ROOT / "scripts" / "prepare_data.py"

TINY = [
    "dataset.max_length=16", "model_params.n_positions=16", "model_params.n_embd=16", "model_params.n_layer=1",
    "dataloader.validation_size=50", "trainer_params.max_epochs=1", "trainer_params.enable_progress_bar=false",
    "trainer_params.enable_model_summary=false", "logger=none",
]


# --------------------------------------------------------------------------- the world every case runs in
@dataclass
class World:
    base: Path  # working directory of every case; everything under it but home/ is watched
    home: Path
    data: Path
    runs: Path
    csv: Path
    train_id: str
    predict_id: str
    closed_port: int
    env: dict = field(default_factory=dict)

    def fill(self, text: str) -> str:
        return text.format(
            data=self.data, runs=self.runs, csv=self.csv, train=self.train_id, pred=self.predict_id,
            port=self.closed_port, home=self.home,
        )


def _closed_port() -> int:
    with socket.socket() as s:  # a port nothing listens on once this socket is closed
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_bad_files(data: Path, csv: Path) -> None:
    (data / "empty.csv").write_bytes(b"")
    (data / "header_only.csv").write_text("user_id,item_id,timestamp\n")
    (data / "wrong_columns.csv").write_text("user,movie,time\n1,2,3\n1,3,4\n")
    rows = csv.read_text().splitlines()
    (data / "float_ids.csv").write_text(
        "\n".join([rows[0]] + [r.replace(",", ".5,", 1) if i % 7 == 0 else r for i, r in enumerate(rows[1:])]) + "\n"
    )
    (data / "one_user.csv").write_text(
        "user_id,item_id,timestamp\n" + "".join(f"1,{i},{i}\n" for i in range(1, 40))
    )
    (data / "bad_timestamps.csv").write_text(
        "user_id,item_id,timestamp\n" + "".join(f"{u},{i},sometime\n" for u in (1, 2, 3) for i in range(1, 15))
    )
    (data / "garbage.csv").write_bytes(bytes(range(256)) * 8 + b"\x00\xff\xfe" * 100)
    (data / "a_folder.csv").mkdir()
    # MovieLens sources for prepare_data: a truncated zip, a truncated gzip, a folder without ratings
    ratings = b"".join(b"%d::%d::4::%d\n" % (u, i, 1000 + i) for u in range(1, 30) for i in range(1, 40))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("ml-1m/ratings.dat", ratings)
    (data / "ml-1m.zip").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    gz = gzip.compress(ratings)
    (data / "ratings.dat.gz").write_bytes(gz[: len(gz) // 2])
    (data / "no_ratings").mkdir()
    (data / "no_ratings" / "README").write_text("movies only\n")
    (data / "prepared.csv").write_text("user_id,item_id,timestamp,rating\n1,1,0,5\n")  # an existing --out


def _damaged_copies(runs: Path, train_id: str) -> None:
    src = runs / train_id
    for name in ("broken-json", "no-model", "half-model", "no-config"):
        shutil.copytree(src, runs / name)
        record = json.loads((runs / name / "run.json").read_text())
        (runs / name / "run.json").write_text(json.dumps({**record, "task_id": name}))
    (runs / "broken-json" / "run.json").write_text('{"task_id": "broken-json", "kind": "tr')
    (runs / "no-model" / "model.pt").unlink()
    model = (runs / "half-model" / "model.pt").read_bytes()
    (runs / "half-model" / "model.pt").write_bytes(model[: len(model) // 2])
    (runs / "no-config" / "config.yaml").unlink()


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    from seqrec.data.synthetic import write_synthetic
    from seqrec import predict, train

    base = tmp_path_factory.mktemp("bad_inputs")
    home, data, runs = base / "home", base / "data", base / "runs"
    for folder in (home, data):
        folder.mkdir()
    csv = data / "synthetic.csv"
    write_synthetic(csv, n_users=80, n_items=40, min_len=15, max_len=30, seed=0)
    train(compose("GPT_train", [f"data_path={csv}", f"run_store={runs}", "task_name=tiny_train", *TINY]))
    (train_id,) = [p.name for p in runs.iterdir()]
    predict(compose("GPT_predict", [f"train_task={train_id}", f"run_store={runs}", "logger=none", "progress=false"]))
    (predict_id,) = [p.name for p in runs.iterdir() if p.name != train_id]
    _write_bad_files(data, csv)
    _damaged_copies(runs, train_id)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLEARML_", "TRAINS_", "HYDRA_"))}
    env.update(
        HOME=str(home), CLEARML_CACHE_DIR=str(home / "cache"), CLEARML_CONFIG_FILE=str(home / "clearml.conf"),
        OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1",
    )
    return World(base, home, data, runs, csv, train_id, predict_id, _closed_port(), env)


def snapshot(world: World) -> dict[str, str]:
    """sha256 of every file under the working directory (ClearML's home excluded)."""
    out = {}
    for path in sorted(world.base.rglob("*")):
        if path.is_file() and world.home not in path.parents:
            out[str(path.relative_to(world.base))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


# --------------------------------------------------------------------------- cases
@dataclass(frozen=True)
class Case:
    id: str
    script: str  # train | predict | prepare, or inproc-train | inproc-predict (run_main in this process)
    args: tuple[str, ...]
    expect: tuple[str, ...]  # substrings of the error line (after {placeholders} are filled)
    env: tuple[tuple[str, str], ...] = ()
    creates_run: bool = False  # fails inside a run: one new run folder, marked failed, traceback in run.log


def C(id, script, args, *expect, env=(), creates_run=False) -> Case:  # noqa: N802
    return Case(id, script, tuple(args), tuple(expect), tuple(env), creates_run)


TRAIN = ["data_path={csv}", "run_store={runs}", *TINY]
PREDICT = ["train_task={train}", "run_store={runs}", "logger=none", "progress=false"]
UNREACHABLE = tuple(
    (f"CLEARML_{part}_HOST", "http://127.0.0.1:{port}") for part in ("API", "WEB", "FILES")
) + (("CLEARML_API_ACCESS_KEY", "key"), ("CLEARML_API_SECRET_KEY", "secret"))

CASES = [
    # ---- data files: run_train.py (in-process: each needs the pipeline imported)
    C("data-missing", "inproc-train", ["data_path={data}/missing.csv"], "missing.csv", "does not exist"),
    C("data-empty", "inproc-train", ["data_path={data}/empty.csv"], "empty.csv", "cannot read"),
    C("data-header-only", "inproc-train", ["data_path={data}/header_only.csv"], "header_only.csv", "no rows"),
    C("data-wrong-columns", "inproc-train", ["data_path={data}/wrong_columns.csv"], "lacks column", "user_id"),
    C("data-float-ids", "inproc-train", ["data_path={data}/float_ids.csv"], "user_id", "non-integer"),
    C("data-folder", "inproc-train", ["data_path={data}/a_folder.csv"], "a_folder.csv", "is a folder"),
    C("data-one-user", "inproc-train", ["data_path={data}/one_user.csv"], "only 1 user", "last_n_items"),
    C("data-bad-timestamps", "inproc-train", ["data_path={data}/bad_timestamps.csv"], "timestamp", "sometime"),
    C("data-binary-garbage", "inproc-train", ["data_path={data}/garbage.csv"], "garbage.csv", "cannot read"),
    # ---- data files: prepare_data.py (an existing --out must survive)
    C("prepare-truncated-zip", "prepare", ["ml-1m", "--source", "{data}/ml-1m.zip", "--out", "{data}/prepared.csv"],
      "ml-1m.zip", "not a readable zip"),
    C("prepare-truncated-gzip", "prepare",
      ["ml-1m", "--source", "{data}/ratings.dat.gz", "--out", "{data}/prepared.csv"], "ratings.dat.gz", "ended"),
    C("prepare-missing-source", "prepare", ["ml-1m", "--source", "{data}/nowhere", "--out", "{data}/prepared.csv"],
      "nowhere", "does not exist"),
    C("prepare-no-ratings", "prepare", ["ml-1m", "--source", "{data}/no_ratings", "--out", "{data}/prepared.csv"],
      "no_ratings", "ratings.dat"),
    C("prepare-out-is-folder", "prepare", ["ml-1m", "--source", "{data}/ratings.dat.gz", "--out", "{data}/a_folder.csv"],
      "a_folder.csv", "is a folder"),
    # ---- configs and overrides: run_train.py
    C("override-unknown-key", "train", [*TRAIN, "foo=1"], "'foo'", "--cfg job"),
    C("override-typo-section", "train", [*TRAIN, "dataloder.batch_size=32"], "did you mean dataloader.batch_size"),
    C("override-plus-typo", "train", [*TRAIN, "+lr=1e-3"], "unknown key lr", "seqrec_module.lr"),
    C("override-other-library-name", "train", [*TRAIN, "seqrec_module.learning_rate=1e-3"],
      "did you mean seqrec_module.lr?"),
    C("override-plus-existing", "train", [*TRAIN, "+seqrec_module.lr=3"], "seqrec_module.lr", "drop the +"),
    C("override-syntax", "train", [*TRAIN, "dataloader.batch_size=[1"], "dataloader.batch_size=[1", "parse"),
    C("config-name-unknown", "train", ["--config-name=GPT_trian", *TRAIN], "GPT_trian", "--config-name=GPT_train"),
    C("loss-group-unknown", "train", [*TRAIN, "loss=CEE"], "loss=CEE", "loss=CE?"),
    C("model-params-unknown", "train", [*TRAIN, "+model_params.n_layers=2"], "model_params.n_layers",
      "model_params.n_layer?"),
    C("trainer-arg-typo", "inproc-train", [*TRAIN, "+trainer_params.max_epoch=3"], "trainer_params.max_epochs"),
    C("trainer-precision", "train", [*TRAIN, "trainer_params.precision=nonsense"], "trainer_params.precision",
      "nonsense"),
    C("trainer-gpu-without-gpu", "train", [*TRAIN, "trainer=gpu"], "trainer=gpu", "no CUDA GPU"),
    C("batch-size-text", "train", [*TRAIN, "dataloader.batch_size=abc"], "dataloader.batch_size", "'abc'"),
    C("lr-negative", "inproc-train", [*TRAIN, "seqrec_module.lr=-1e-3"], "seqrec_module.lr", "> 0"),
    C("max-length-zero", "inproc-train", [*TRAIN, "dataset.max_length=0"], "dataset.max_length", ">= 2"),
    C("last-n-items-zero", "inproc-train", [*TRAIN, "last_n_items=0"], "last_n_items", ">= 1"),
    C("patience-negative", "inproc-train", [*TRAIN, "patience=-1"], "patience", ">= 0"),
    C("dataset-unknown-key", "inproc-train", [*TRAIN, "+dataset.max_lenght=8"], "dataset.max_length?"),
    C("train-dataset-bad-arg", "train", [*TRAIN, "+train_dataset.foo=1"], "train_dataset.foo", "CausalLMDataset"),
    C("loss-arg-typo", "inproc-train", [*TRAIN, "+seqrec_module.loss.chunks=8"], "seqrec_module.loss.chunk?"),
    # known only once the data is loaded: k above the 40 items of the data, checked before a run folder exists
    C("top-k-above-items", "train", [*TRAIN, "seqrec_module.predict_top_k=100"], "seqrec_module.predict_top_k=100",
      "smaller"),
    # ---- generation parameters: run_predict.py
    C("beams-zero", "predict", ["--config-name=GPT_beam", *PREDICT, "generation_params.num_beams=0"],
      "generation_params.num_beams", ">= 1"),
    C("temperature-zero", "predict", ["--config-name=GPT_temperature", *PREDICT, "generation_params.temperature=0"],
      "generation_params.temperature", "GPT_greedy"),
    C("top-p-two", "predict", ["--config-name=GPT_temperature", *PREDICT, "generation_params.top_p=2"],
      "generation_params.top_p", "(got 2)"),
    C("strategy-unknown", "predict", [*PREDICT, "generation_params.strategy=foo"], "'foo'", "two_stage"),
    C("sequences-zero", "predict",
      ["--config-name=GPT_temperature", *PREDICT, "generation_params.num_return_sequences=0"],
      "generation_params.num_return_sequences"),
    C("aggregation-unknown", "predict",
      ["--config-name=GPT_temperature", *PREDICT, "generation_params.num_return_sequences=3",
       "generation_params.aggregation=foo"], "generation_params.aggregation", "rra"),
    C("first-stage-too-big", "predict", ["--config-name=GPT_two_stage", *PREDICT, "generation_params.first_stage=10"],
      "generation_params.first_stage=10", "first_stage=9"),
    C("k-zero", "predict", [*PREDICT, "k=0"], "k must be an integer >= 1", "(got 0)", "pass e.g. k=10"),
    C("top-k-old-name-zero", "predict", [*PREDICT, "top_k=0"], "k must be an integer >= 1", "(got 0)"),
    C("top-k-and-k-differ", "predict", [*PREDICT, "top_k=5", "k=7"], "top_k=5 and k=7 both set the same thing",
      "drop top_k"),
    C("predict-config-name-typo", "predict", ["--config-name=multisequense", *PREDICT],
      "did you mean --config-name=multisequence?", "sampling", "two_stage"),
    C("generation-key-typo", "predict", [*PREDICT, "+generation_params.num_beam=3"], "generation_params.num_beams?"),
    C("key-not-for-strategy", "predict", ["--config-name=GPT_greedy", *PREDICT, "generation_params.num_beams=3"],
      "generation_params.num_beams does not apply to strategy greedy", "(beam)"),
    C("do-sample-contradicts", "predict", ["--config-name=GPT_greedy", *PREDICT, "generation_params.do_sample=true"],
      "do_sample", "greedy"),
    C("device-unknown", "inproc-predict", [*PREDICT, "device=tpu"], "device", "'tpu'"),
    # ---- run IDs: run_predict.py
    C("train-task-missing", "predict", ["run_store={runs}", "logger=none"], "train_task is required"),
    C("train-task-unknown", "predict", [*PREDICT, "train_task=nonexistent"], "'nonexistent'", "unknown run ID"),
    C("train-task-is-predict-run", "predict", [*PREDICT, "train_task={pred}"], "predict run", "not a train run"),
    C("train-task-path-traversal", "predict", [*PREDICT, "train_task=../x"], "'../x'", "invalid run ID"),
    C("run-json-corrupt", "predict", [*PREDICT, "train_task=broken-json"], "broken-json", "run.json is damaged"),
    C("model-missing", "predict", [*PREDICT, "train_task=no-model"], "no-model", "no model.pt"),
    C("model-truncated", "predict", [*PREDICT, "train_task=half-model"], "half-model", "model.pt is damaged"),
    C("config-missing", "inproc-predict", [*PREDICT, "train_task=no-config"], "no-config", "no config.yaml"),
    # ---- ClearML set-up
    C("clearml-unreachable", "predict", [*PREDICT, "logger=clearml", "logger.reachability_timeout=1"],
      "127.0.0.1:{port}", "unreachable", env=UNREACHABLE),
    C("clearml-no-credentials", "predict", [*PREDICT, "logger=clearml", "logger.reachability_timeout=1"],
      "credentials", "logger=clearml_offline"),
    C("clearml-timeout-zero", "predict", [*PREDICT, "logger=clearml", "logger.reachability_timeout=0"],
      "logger.reachability_timeout"),
    C("logger-group-unknown", "train", [*TRAIN, "logger=wandb"], "logger=wandb", "clearml_offline"),
]


def _case_ids():
    return [c.id for c in CASES]


def _run_subprocess(world: World, case: Case) -> tuple[int, str, str]:
    script = {"train": TRAIN_SCRIPT, "predict": PREDICT_SCRIPT, "prepare": PREPARE_SCRIPT}[case.script]
    env = dict(world.env)
    env.update({k: world.fill(v) for k, v in case.env})
    proc = subprocess.run(
        [sys.executable, str(script), *(world.fill(a) for a in case.args)],
        cwd=world.base, env=env, capture_output=True, text=True, timeout=180,
    )
    return proc.returncode, proc.stdout, proc.stderr


def _run_in_process(world: World, case: Case, capsys) -> tuple[int, str, str]:
    from seqrec.cli.entry import run_main
    from seqrec.config.checks import check_predict_config, check_train_config

    kind = case.script.split("-")[1]
    args = [world.fill(a) for a in case.args]
    name = next((a.split("=", 1)[1] for a in args if a.startswith("--config-name=")), f"GPT_{kind}")
    cfg = compose(name, [a for a in args if not a.startswith("--")])
    check = check_train_config if kind == "train" else check_predict_config
    capsys.readouterr()
    cwd = os.getcwd()
    os.chdir(world.base)
    try:
        with pytest.raises(SystemExit) as exit_info:
            run_main({"train": "seqrec.training.train:train", "predict": "seqrec.evaluation.predict:predict"}[kind], cfg, check=check)
    finally:
        os.chdir(cwd)
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


@pytest.mark.parametrize("case", CASES, ids=_case_ids())
def test_bad_input(world, case, capsys, pytestconfig):
    if case.id == "trainer-gpu-without-gpu":
        import torch

        if torch.cuda.is_available():
            pytest.skip("this machine has a GPU: trainer=gpu is valid here")
    before = snapshot(world)
    if case.script.startswith("inproc"):
        code, out, err = _run_in_process(world, case, capsys)
    else:
        code, out, err = _run_subprocess(world, case)
    lines = [line for line in err.splitlines() if line.strip()]
    shown = f"exit {code}\n--- stdout\n{out[-2000:]}\n--- stderr\n{err[-3000:]}"
    assert code == 1, shown
    assert lines and lines[-1].startswith("error: "), shown
    last = lines[-1]
    if pytestconfig.getoption("capture") == "no":  # pytest -s lists every message
        with capsys.disabled():
            print(f"\n[{case.id}] {last}", end="")
    assert len(last) <= MAX_LINE, (len(last), last)
    for text in case.expect:
        assert world.fill(text) in last, (world.fill(text), last)
    assert "Traceback" not in out + err, shown
    assert "HYDRA_FULL_ERROR" not in err, shown

    after = snapshot(world)
    changed = [p for p in before if after.get(p) != before[p]]
    assert not changed, f"existing files changed or removed: {changed}"
    new = sorted(set(after) - set(before))
    assert not [p for p in new if ".tmp" in p or p.endswith(".part")], new
    if not case.creates_run:
        assert not new, f"bad input left new files: {new}"
        return
    folders = {Path(p).parts[:2] for p in new}
    assert len(folders) == 1 and next(iter(folders))[0] == "runs", new
    run_dir = world.base.joinpath(*next(iter(folders)))
    assert json.loads((run_dir / "run.json").read_text())["status"] == "failed"
    assert "Traceback" in (run_dir / "run.log").read_text(), "the full traceback belongs in the run's run.log"


def test_enough_cases():
    """The issue asks for at least 30 bad inputs; at least a dozen run as real subprocesses."""
    assert len(CASES) >= 30 and len({c.id for c in CASES}) == len(CASES)
    assert sum(not c.script.startswith("inproc") for c in CASES) >= 12


def test_unexpected_error_is_one_line_naming_the_run_log(tmp_path, capsys):
    """A bug (not a UserError) still ends in one error line, pointing at the run's run.log."""
    from omegaconf import OmegaConf

    from seqrec.cli.entry import run_main

    def crash(cfg):
        run_dir = tmp_path / "runs" / "r1"
        run_dir.mkdir(parents=True)
        (run_dir / "run.log").write_text("Traceback (most recent call last): ...\n")
        raise RuntimeError("boom\nsecond line")

    with pytest.raises(SystemExit) as exit_info:
        run_main(crash, OmegaConf.create({"run_store": str(tmp_path / "runs")}))
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert exit_info.value.code == 1 and "Traceback" not in err
    assert last.startswith("error: unexpected RuntimeError: boom second line") and "r1/run.log" in last, last


def test_tracebacks_stay_in_the_log_file(tmp_path):
    """Terminal log handlers drop tracebacks; the run log (a file handler) keeps them."""
    import logging

    from seqrec.cli.entry import hide_tracebacks_on_screen

    screen = io.StringIO()
    handlers = [logging.StreamHandler(screen), logging.FileHandler(tmp_path / "run.log")]
    root = logging.getLogger()
    for handler in handlers:
        root.addHandler(handler)
    try:
        hide_tracebacks_on_screen()
        try:
            raise ValueError("deep inside")
        except ValueError:
            logging.getLogger("seqrec").exception("train run X failed")
    finally:
        for handler in handlers:
            root.removeHandler(handler)
            handler.close()
    assert "train run X failed" in screen.getvalue() and "Traceback" not in screen.getvalue()
    assert "Traceback" in (tmp_path / "run.log").read_text()
