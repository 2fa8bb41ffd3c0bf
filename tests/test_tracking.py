"""Experiment tracking: ClearML (real SDK, offline, no network), NoneTracker, Lightning logger.

ClearML state is isolated per test: ``CLEARML_CACHE_DIR`` points into tmp_path
(offline sessions land in ``<cache>/offline/``), ``CLEARML_CONFIG_FILE`` points at
a file that does not exist (so a developer's ~/clearml.conf is ignored), the
server/credential env vars are cleared, and ``HOME`` points into tmp_path because
the SDK always writes ``~/.clearml/.session.json`` (its last-task cache) there.
"""

from __future__ import annotations

import json
import os
import re
import socket
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from seqrec.core.errors import UserError
from seqrec.tracking.base import NoneTracker, Tracker, instantiate_tracker, to_plain_config

ROOT = Path(__file__).resolve().parents[1]
LOGGER_CONFIGS = ROOT / "src" / "configs" / "logger"

_CLEARML_ENV = [
    f"{prefix}_{name}"
    for prefix in ("CLEARML", "TRAINS")
    for name in (
        "API_HOST",
        "WEB_HOST",
        "FILES_HOST",
        "API_ACCESS_KEY",
        "API_SECRET_KEY",
        "OFFLINE_MODE",
        "CONFIG_PATH",
        "TASK_ID",
    )
] + ["CLEARML_AUTH_TOKEN"]


def _close_open_task() -> None:
    from clearml import Task

    current = Task.current_task()
    if current is not None:
        current.close()


@pytest.fixture
def clearml_sandbox(tmp_path):
    """Isolated ClearML cache/config/home; yields the cache dir."""
    from seqrec.tracking.clearml_tracker import reload_clearml_config

    cache = tmp_path / "clearml_cache"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CLEARML_CACHE_DIR", str(cache))
        mp.setenv("CLEARML_CONFIG_FILE", str(tmp_path / "no-such-clearml.conf"))
        mp.setenv("HOME", str(tmp_path / "home"))
        for var in _CLEARML_ENV:
            mp.delenv(var, raising=False)
        reload_clearml_config()
        try:
            yield cache
        finally:
            _close_open_task()
    reload_clearml_config()


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _read_events(session_dir: Path) -> list[dict]:
    """Events of metrics.jsonl: one JSON list of events per line."""
    events = []
    for line in (session_dir / "metrics.jsonl").read_text().splitlines():
        if line.strip():
            batch = json.loads(line)
            events.extend(batch if isinstance(batch, list) else [batch])
    return events


def _assert_one_line_user_error(excinfo, *fragments: str) -> str:
    message = str(excinfo.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    return message


# ------------------------------------------------------------------ ClearML offline
def test_offline_tracker_records_reports_in_session(clearml_sandbox, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    from seqrec.tracking.clearml_tracker import ClearMLTracker

    tracker = ClearMLTracker(project_name="seqrec-tests", task_name="offline-run", task_type="training")
    assert tracker.task_id.startswith("offline-")
    session = tracker.offline_session_dir
    assert session == clearml_sandbox / "offline" / tracker.task_id
    assert session.is_dir()
    assert tracker.offline_session_zip is None  # written at close

    tracker.connect_config(OmegaConf.create({"model": {"d_model": 64, "metric": "ndcg@10"}, "lr": 1e-3}))
    tracker.report_scalar("loss", "train", 0.75, iteration=1)
    tracker.report_scalar("loss", "train", 0.5, iteration=2)
    tracker.report_single_value("test_ndcg@10", 0.4321)
    tracker.report_table("results", pd.DataFrame({"k": [5, 10], "ndcg": [0.3, 0.4]}))
    fig, ax = plt.subplots()
    ax.plot([0, 1, 2], [0.2, 0.3, 0.35])
    tracker.report_figure("curve", fig)
    png = tmp_path / "curve.png"
    fig.savefig(png)
    plt.close(fig)
    tracker.report_figure("curve_png", png)
    metrics_file = tmp_path / "metrics.json"
    metrics_file.write_text(json.dumps({"ndcg@10": 0.4321}))
    tracker.upload_artifact("metrics", metrics_file)

    started = time.perf_counter()
    tracker.close()
    close_seconds = time.perf_counter() - started
    assert close_seconds < 5, f"close took {close_seconds:.1f} s (report_use_subprocess not disabled?)"
    tracker.close()  # idempotent
    with pytest.raises(RuntimeError):
        tracker.report_scalar("loss", "train", 0.1, iteration=3)

    events = _read_events(session)
    scalars = {
        (e["metric"], e["variant"], e["iter"]): e["value"]
        for e in events
        if e["type"] == "training_stats_scalar"
    }
    assert scalars[("loss", "train", 1)] == pytest.approx(0.75)
    assert scalars[("loss", "train", 2)] == pytest.approx(0.5)
    # single values are stored as metric "Summary", variant <name>
    assert scalars[("Summary", "test_ndcg@10", -(2**31))] == pytest.approx(0.4321)
    plots = {e["metric"]: json.loads(e["plot_str"]) for e in events if e["type"] == "plot"}
    assert plots["results"]["data"][0]["type"] == "table"
    assert plots["results"]["data"][0]["cells"]["values"][1] == [0.3, 0.4]
    assert "curve" in plots
    images = [e for e in events if e["type"] == "training_debug_image"]
    assert [e["metric"] for e in images] == ["curve_png"]
    assert Path(images[0]["url"]).is_file()

    task_json = json.loads((session / "task.json").read_text())
    assert task_json["id"] == tracker.task_id
    assert task_json["name"] == "offline-run"
    assert task_json["project_name"] == "seqrec-tests"
    assert task_json["type"] == "training"
    assert "d_model = 64" in task_json["configuration"]["config"]["value"]
    assert task_json["hyperparams"]["config"]["model/d_model"]["value"] == "64"
    (artifact,) = task_json["execution"]["artifacts"]
    assert artifact["key"] == "metrics"
    assert json.loads(Path(artifact["uri"]).read_text()) == {"ndcg@10": 0.4321}

    archive = tracker.offline_session_zip
    assert archive is not None and archive.name == f"{tracker.task_id}.zip"
    with zipfile.ZipFile(archive) as zf:
        names = set(zf.namelist())
    assert {"task.json", "metrics.jsonl"} <= names


def test_offline_session_references_large_files_instead_of_copying(clearml_sandbox, tmp_path):
    """A checkpoint is stored once: an offline session records its path, size and sha256 (a 3 MB file leaves the
    session and its zip far smaller than the file); a small file (config, metrics) is still copied."""
    import hashlib

    from seqrec.tracking.clearml_tracker import REFERENCE_BYTES, ClearMLTracker

    tracker = ClearMLTracker(project_name="seqrec-tests", task_name="reference-run", detect_repository=False)
    session = tracker.offline_session_dir
    big = tmp_path / "model.pt"
    big.write_bytes(os.urandom(3 * REFERENCE_BYTES))
    small = tmp_path / "metrics.json"
    small.write_text('{"ndcg@10": 0.5}')
    tracker.upload_artifact("checkpoint", big)
    tracker.upload_artifact("metrics", small)
    tracker.close()
    artifacts = {a["key"]: a for a in json.loads((session / "task.json").read_text())["execution"]["artifacts"]}
    reference = json.loads(Path(artifacts["checkpoint"]["uri"]).read_text())
    assert reference["path"] == str(big.resolve()) and reference["bytes"] == big.stat().st_size
    assert reference["sha256"] == hashlib.sha256(big.read_bytes()).hexdigest()
    assert json.loads(Path(artifacts["metrics"]["uri"]).read_text()) == {"ndcg@10": 0.5}
    stored = sum(p.stat().st_size for p in session.rglob("*") if p.is_file())
    assert stored < REFERENCE_BYTES and tracker.offline_session_zip.stat().st_size < REFERENCE_BYTES


def test_private_sdk_attributes_still_exist():
    """The ClearML SDK internals the tracker relies on are all listed in one place and still exist in the pinned
    SDK; an upgrade that removes one fails here, not silently at run time (close() hanging, overrides lost)."""
    import importlib

    from seqrec.tracking.clearml_tracker import PRIVATE_SDK_ATTRIBUTES

    for module, owner, attribute in PRIVATE_SDK_ATTRIBUTES:
        assert hasattr(getattr(importlib.import_module(module), owner), attribute), (module, owner, attribute)
    source = (ROOT / "src" / "seqrec" / "tracking" / "clearml_tracker.py").read_text()
    used = {a for a in ("_overrides_configs", "_report_subprocess_enabled", "_wait_for_repo_detection", "_config")
            if a in source}
    assert {a for _, _, a in PRIVATE_SDK_ATTRIBUTES} <= used


def test_sequential_trackers_get_new_tasks(clearml_sandbox):
    from clearml import Task

    from seqrec.tracking.clearml_tracker import ClearMLTracker

    first = ClearMLTracker("seqrec-tests", "job-0", detect_repository=False)
    first.report_scalar("loss", "train", 1.0, 0)
    first.close()
    assert Task.current_task() is None

    second = ClearMLTracker("seqrec-tests", "job-1", task_type="inference", detect_repository=False)
    assert second.task_id != first.task_id
    second.report_scalar("loss", "train", 2.0, 0)
    # left open on purpose (a crashed multirun job): the next tracker must still get a new task
    third = ClearMLTracker("seqrec-tests", "job-2", detect_repository=False)
    assert third.task_id not in {first.task_id, second.task_id}
    assert Task.current_task().id == third.task_id
    third.close()
    assert second.offline_session_zip is not None
    assert json.loads((second.offline_session_dir / "task.json").read_text())["type"] == "inference"
    assert _read_events(second.offline_session_dir)[0]["value"] == 2.0


def test_context_manager_closes_on_error(clearml_sandbox):
    from clearml import Task

    from seqrec.tracking.clearml_tracker import ClearMLTracker

    with pytest.raises(ValueError, match="boom"):
        with ClearMLTracker("seqrec-tests", "crash", detect_repository=False) as tracker:
            tracker.report_scalar("loss", "train", 1.0, 0)
            raise ValueError("boom")
    assert tracker.closed
    assert Task.current_task() is None
    assert tracker.offline_session_zip is not None


def test_invalid_arguments_are_user_errors(clearml_sandbox):
    from seqrec.tracking.clearml_tracker import ClearMLTracker

    with pytest.raises(UserError, match="task_type"):
        ClearMLTracker("seqrec-tests", "x", task_type="trainng")
    with pytest.raises(UserError, match="task_name"):
        ClearMLTracker("seqrec-tests", "")
    with pytest.raises(UserError, match="reachability_timeout"):
        ClearMLTracker("seqrec-tests", "x", offline=False, reachability_timeout=0)


# ------------------------------------------------------------------- ClearML online
def test_online_unreachable_server_fails_fast(clearml_sandbox, monkeypatch):
    from seqrec.tracking.clearml_tracker import ClearMLTracker

    port = _closed_port()
    monkeypatch.setenv("CLEARML_API_HOST", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("CLEARML_API_ACCESS_KEY", "dummy-key")
    monkeypatch.setenv("CLEARML_API_SECRET_KEY", "dummy-secret")
    started = time.perf_counter()
    with pytest.raises(UserError) as excinfo:
        ClearMLTracker("seqrec-tests", "online", offline=False, reachability_timeout=2.0)
    elapsed = time.perf_counter() - started
    assert elapsed < 10, f"took {elapsed:.1f} s"
    _assert_one_line_user_error(
        excinfo, f"http://127.0.0.1:{port}", "unreachable", "logger=clearml_offline"
    )


def test_online_without_credentials(clearml_sandbox, monkeypatch):
    from seqrec.tracking.clearml_tracker import ClearMLTracker

    monkeypatch.setenv("CLEARML_API_HOST", f"http://127.0.0.1:{_closed_port()}")
    started = time.perf_counter()
    with pytest.raises(UserError) as excinfo:
        ClearMLTracker("seqrec-tests", "online", offline=False)
    assert time.perf_counter() - started < 10
    _assert_one_line_user_error(excinfo, "no credentials", "clearml-init", "logger=clearml_offline")


# ------------------------------------------------------- ClearML server trouble
def _dead_server(monkeypatch) -> str:
    """API, web and files server on a closed port of 127.0.0.1, with (dummy) credentials."""
    host = f"http://127.0.0.1:{_closed_port()}"
    for var in ("CLEARML_API_HOST", "CLEARML_WEB_HOST", "CLEARML_FILES_HOST"):
        monkeypatch.setenv(var, host)
    monkeypatch.setenv("CLEARML_API_ACCESS_KEY", "dummy-key")
    monkeypatch.setenv("CLEARML_API_SECRET_KEY", "dummy-secret")
    return host


def test_dead_server_default_is_a_user_error(clearml_sandbox, monkeypatch):
    host = _dead_server(monkeypatch)
    cfg = _logger_cfg("clearml")
    assert cfg.logger.fallback_offline is False and cfg.logger.execute_remotely is None
    started = time.perf_counter()
    with pytest.raises(UserError) as excinfo:
        instantiate_tracker(cfg.logger, task_type="training", detect_repository=False)
    elapsed = time.perf_counter() - started
    print(f"dead server detected in {elapsed:.2f} s")
    assert elapsed < 10, f"took {elapsed:.1f} s"
    _assert_one_line_user_error(
        excinfo, host, "unreachable", "logger.fallback_offline=true", "logger=clearml_offline"
    )


def test_dead_server_fallback_offline(clearml_sandbox, monkeypatch, capsys, caplog, tmp_path):
    import logging

    host = _dead_server(monkeypatch)
    cfg = _logger_cfg("clearml")
    cfg.logger.fallback_offline = True
    started = time.perf_counter()
    with caplog.at_level(logging.WARNING):
        tracker = instantiate_tracker(cfg.logger, task_type="training", detect_repository=False)
    elapsed = time.perf_counter() - started
    print(f"dead server -> offline fallback in {elapsed:.2f} s")
    assert elapsed < 10, f"took {elapsed:.1f} s"
    assert tracker.offline and tracker.fell_back_offline and tracker.server is None
    assert tracker.task_id.startswith("offline-")
    assert tracker.offline_session_dir == clearml_sandbox / "offline" / tracker.task_id

    zip_path = f"{tracker.offline_session_dir}.zip"
    stderr_lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert len(stderr_lines) == 1
    warning = stderr_lines[0]
    import_hint = "clearml-task --import-offline-session"
    for fragment in (host, "unreachable", "offline", tracker.task_id, import_hint, zip_path):
        assert fragment in warning, (fragment, warning)
    logged = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    logged = [message for message in logged if "fallback_offline" in message]
    assert len(logged) == 1 and host in logged[0] and zip_path in logged[0]

    # the run's log file is attached after the tracker exists (seqrec.tracking.lifecycle.run_context): it gets the warning too
    run_log = tmp_path / "run.log"
    handler = logging.FileHandler(run_log)
    logging.getLogger().addHandler(handler)
    try:
        tracker.connect_config({"lr": 0.001})
        tracker.report_scalar("loss", "train", 0.5, iteration=1)
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()
    assert "fallback_offline" in run_log.read_text() and zip_path in run_log.read_text()

    tracker.close()
    assert not tracker.degraded
    assert tracker.offline_session_zip == Path(zip_path) and Path(zip_path).is_file()
    assert _read_events(tracker.offline_session_dir)[0]["value"] == 0.5


def test_backend_failures_mid_run_degrade_without_raising(clearml_sandbox, caplog, tmp_path):
    import logging

    from clearml import Logger

    from seqrec.tracking.clearml_tracker import ClearMLTracker

    def server_gone(*args, **kwargs):
        raise ConnectionError("Connection refused: the server went away")

    artifact = tmp_path / "metrics.json"
    artifact.write_text("{}")

    # 1. a report fails: one warning, later calls skipped, close still finishes the session
    tracker = ClearMLTracker("seqrec-tests", "mid-run", detect_repository=False)
    tracker.report_scalar("loss", "train", 1.0, iteration=0)
    upload_calls = []
    with pytest.MonkeyPatch.context() as mp, caplog.at_level(logging.WARNING):
        mp.setattr(Logger, "report_scalar", server_gone)
        mp.setattr(Logger, "report_single_value", server_gone)
        mp.setattr(tracker.task, "upload_artifact", lambda *a, **k: upload_calls.append(a) or server_gone())
        tracker.report_scalar("loss", "train", 0.5, iteration=1)
        tracker.report_scalar("loss", "train", 0.4, iteration=2)
        tracker.report_single_value("ndcg", 0.3)
        tracker.upload_artifact("metrics", artifact)
        tracker.flush()
        tracker.close(status="completed")
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    message = warnings[0].getMessage()
    assert "\n" not in message and tracker.task_id in message and "ConnectionError" in message
    assert "report_scalar" in message and "run folder" in message
    assert tracker.degraded and tracker.degraded_reason.startswith("report_scalar: ConnectionError")
    assert upload_calls == []  # skipped once degraded
    assert tracker.closed and tracker.offline_session_zip is not None  # close still ran
    assert [e["value"] for e in _read_events(tracker.offline_session_dir)] == [1.0]
    with pytest.raises(RuntimeError, match="already closed"):  # caller errors are still errors
        tracker.report_scalar("loss", "train", 0.1, iteration=3)
    caplog.clear()

    # 2. upload and close fail (server gone at the end of the run)
    tracker = ClearMLTracker("seqrec-tests", "end-of-run", detect_repository=False)
    with pytest.MonkeyPatch.context() as mp, caplog.at_level(logging.WARNING):
        mp.setattr(tracker.task, "upload_artifact", server_gone)
        mp.setattr(tracker.task, "close", server_gone)
        tracker.upload_artifact("metrics", artifact)
        tracker.close(status="failed", reason="boom")
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "upload_artifact" in warnings[0].getMessage()
    assert tracker.closed and tracker.degraded
    with pytest.raises(TypeError):  # validation happens before the backend is involved
        NoneTracker("seqrec", "x").report_scalar("loss", "train", "high", 0)


def test_run_context_survives_tracker_failures(clearml_sandbox, tmp_path):
    """Pipeline level: every backend call raises, the run folder is still complete."""
    from clearml import Logger, Task

    from conftest import compose
    from seqrec.config.spec import run_spec
    from seqrec.tracking.lifecycle import run_context

    def server_gone(*args, **kwargs):
        raise ConnectionError("server went away")

    runs = tmp_path / "runs"
    cfg = compose("GPT_predict", [f"run_store={runs}", "train_task=dummy", "logger=clearml_offline"])
    (tmp_path / "a.txt").write_text("x")
    with pytest.MonkeyPatch.context() as mp:
        for name in ("connect_configuration", "upload_artifact"):
            mp.setattr(Task, name, server_gone)
        for name in ("report_scalar", "report_single_value", "report_table"):
            mp.setattr(Logger, name, server_gone)
        with run_context(run_spec(cfg, "predict")) as run:
            run.tracker.report_single_value("test_ndcg@10", 0.5)
            run.tracker.upload_artifact("a", tmp_path / "a.txt")
            (run.dir / "metrics.json").write_text("{}")
    info = json.loads((runs / run.id / "run.json").read_text())
    assert info["status"] == "completed" and info["clearml_offline_zip"]
    assert run.tracker.degraded and run.tracker.degraded_reason.startswith("connect_config")
    assert "stopped working" in (runs / run.id / "run.log").read_text()
    assert Task.current_task() is None  # closed: the next run of a --multirun gets a task of its own


def test_run_context_with_fallback_records_offline_session(clearml_sandbox, monkeypatch, tmp_path, capsys):
    """Pipeline level: logger=clearml with a dead server and fallback_offline=true."""
    from conftest import compose
    from seqrec.config.spec import run_spec
    from seqrec.tracking.lifecycle import run_context

    host = _dead_server(monkeypatch)
    runs = tmp_path / "runs"
    cfg = compose("GPT_predict", [f"run_store={runs}", "train_task=dummy", "logger=clearml",
                                  "logger.fallback_offline=true", "logger.detect_repository=false"])
    with run_context(run_spec(cfg, "predict")) as run:
        run.tracker.report_single_value("test_ndcg@10", 0.5)
    info = json.loads((runs / run.id / "run.json").read_text())
    assert run.id.startswith("offline-") and info["status"] == "completed"
    assert Path(info["clearml_offline_zip"]).is_file()
    run_log = (runs / run.id / "run.log").read_text()
    assert host in run_log and f"--import-offline-session {info['clearml_offline_zip']}" in run_log
    assert f"warning: ClearML server {host} is unreachable" in capsys.readouterr().err


# ------------------------------------------------------------ ClearML agents
def test_execute_remotely_needs_a_server(clearml_sandbox, monkeypatch):
    from seqrec.tracking.clearml_tracker import ClearMLTracker

    cfg = _logger_cfg("clearml_offline")
    assert cfg.logger.execute_remotely is None
    cfg.logger.execute_remotely = "gpu-queue"
    with pytest.raises(UserError) as excinfo:
        instantiate_tracker(cfg.logger, task_type="training")
    _assert_one_line_user_error(excinfo, "execute_remotely=gpu-queue", "needs a ClearML server", "logger=clearml")
    with pytest.raises(UserError, match="needs a ClearML server"):
        ClearMLTracker("seqrec-tests", "x", offline=True, execute_remotely="gpu-queue")
    with pytest.raises(UserError, match="queue name"):
        ClearMLTracker("seqrec-tests", "x", offline=False, execute_remotely=3)
    from clearml import Task

    assert Task.current_task() is None  # failed up front: no task was created

    # no offline fallback for a run meant for an agent
    host = _dead_server(monkeypatch)
    online = _logger_cfg("clearml")
    online.logger.fallback_offline = True
    online.logger.execute_remotely = "gpu-queue"
    started = time.perf_counter()
    with pytest.raises(UserError) as excinfo:
        instantiate_tracker(online.logger, task_type="training")
    assert time.perf_counter() - started < 10
    _assert_one_line_user_error(excinfo, host, "unreachable", "logger.execute_remotely=null")
    assert Task.current_task() is None


def test_execute_remotely_enqueues_and_agent_restores_arguments(clearml_sandbox, monkeypatch, capsys):
    """Local side (store the Hydra command line, enqueue, exit) and agent side (restore argv), on a real
    (offline) task object; only ``Task.execute_remotely`` and ``Task.get_task`` need the server and are faked."""
    from clearml import Task

    from seqrec.tracking.clearml_tracker import LAUNCH_SECTION, ClearMLTracker, restore_remote_launch_args

    tracker = ClearMLTracker("seqrec-tests", "remote", detect_repository=False)
    task = tracker.task
    enqueued = []

    def execute_remotely(queue_name=None, clone=False, exit_process=True):
        enqueued.append((queue_name, clone, exit_process))
        raise SystemExit(0)  # what clearml's leave_process does

    monkeypatch.setattr(task, "execute_remotely", execute_remotely)
    launch = {"config_name": "SASRec_train", "overrides": [
        "data_path=data/ml-1m.csv", "logger=clearml", "logger.execute_remotely=gpu", "+tags=[a,b]",
        "task_name='my run'"]}
    with pytest.raises(SystemExit) as excinfo:
        tracker._enqueue("gpu", launch)
    assert excinfo.value.code == 0
    assert enqueued == [("gpu", False, True)]
    assert "enqueued on ClearML queue 'gpu'" in capsys.readouterr().out
    assert set(task.get_parameters(backwards_compatibility=False)) >= {
        f"{LAUNCH_SECTION}/config_name", f"{LAUNCH_SECTION}/overrides"}

    # on the agent: CLEARML_TASK_ID is set and the entry point starts without arguments
    monkeypatch.setattr(Task, "get_task", staticmethod(lambda task_id=None, **kw: task))
    argv = ["src/run_train.py"]
    assert restore_remote_launch_args(argv, task_id=tracker.task_id)
    assert argv == ["src/run_train.py", "--config-name=SASRec_train", *launch["overrides"]]
    explicit = ["src/run_train.py", "task_name=x"]
    assert not restore_remote_launch_args(explicit, task_id=tracker.task_id)  # explicit arguments win
    assert explicit == ["src/run_train.py", "task_name=x"]
    assert not restore_remote_launch_args(["src/run_train.py"], task_id=None)  # not on an agent
    tracker.close()

    # a task that was not enqueued by us is left alone
    other = ClearMLTracker("seqrec-tests", "other", detect_repository=False)
    monkeypatch.setattr(Task, "get_task", staticmethod(lambda task_id=None, **kw: other.task))
    assert not restore_remote_launch_args(["src/run_train.py"], task_id=other.task_id)

    # an SDK error while enqueueing (unknown queue …) is a one-line UserError, and the task is closed
    def no_queue(queue_name=None, clone=False, exit_process=True):
        raise ValueError(f'Could not find queue named "{queue_name}"')

    monkeypatch.setattr(other.task, "execute_remotely", no_queue)
    with pytest.raises(UserError) as excinfo:
        other._enqueue("nope", None)
    _assert_one_line_user_error(excinfo, "'nope'", "queue name", "logger.execute_remotely=null")
    assert Task.current_task() is None


class _UnauthorizedServer(BaseHTTPRequestHandler):
    """Answers every request like a ClearML API server rejecting the credentials."""

    def _reply(self):
        body = json.dumps(
            {"meta": {"result_code": 401, "result_subcode": 0, "result_msg": "Unauthorized"}, "data": {}}
        ).encode()
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _reply

    def log_message(self, *args):
        return None


@pytest.fixture
def unauthorized_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _UnauthorizedServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_online_rejected_credentials(clearml_sandbox, monkeypatch, unauthorized_server):
    from seqrec.tracking.clearml_tracker import ClearMLTracker

    for var in ("CLEARML_API_HOST", "CLEARML_WEB_HOST", "CLEARML_FILES_HOST"):
        monkeypatch.setenv(var, unauthorized_server)
    monkeypatch.setenv("CLEARML_API_ACCESS_KEY", "wrong")
    monkeypatch.setenv("CLEARML_API_SECRET_KEY", "wrong")
    started = time.perf_counter()
    with pytest.raises(UserError) as excinfo:
        ClearMLTracker("seqrec-tests", "online", offline=False)
    assert time.perf_counter() - started < 10
    _assert_one_line_user_error(excinfo, unauthorized_server, "login", "credentials")


# ----------------------------------------------------------------------- NoneTracker
def test_none_tracker(tmp_path):
    tracker = NoneTracker("seqrec", "run", task_type="inference", offline=True, tags=["x"])
    assert re.fullmatch(r"local-[0-9a-f]{32}", tracker.task_id)
    assert tracker.offline_session_dir is None
    assert NoneTracker("seqrec", "run").task_id != tracker.task_id
    artifact = tmp_path / "a.txt"
    artifact.write_text("x")
    with tracker:
        assert tracker.connect_config({"a": {"b": [1, 2]}}) == {"a": {"b": [1, 2]}}
        tracker.report_scalar("loss", "train", 1, 0)
        tracker.report_single_value("ndcg", 0.5)
        tracker.report_table("t", [{"a": 1}])
        tracker.report_figure("f", artifact)
        tracker.upload_artifact("a", artifact)
        with pytest.raises(FileNotFoundError):
            tracker.upload_artifact("missing", tmp_path / "missing.bin")
        with pytest.raises(TypeError):
            tracker.report_scalar("loss", "train", "high", 0)
    assert tracker.closed
    with pytest.raises(RuntimeError):
        tracker.report_single_value("ndcg", 0.5)
    with pytest.raises(UserError, match="task_type"):
        NoneTracker("seqrec", "run", task_type="bogus")


def test_to_plain_config_handles_odd_leaves(tmp_path):
    cfg = OmegaConf.create({"a": "${b}", "b": 3, "l": [1, {"x": None}]})
    assert to_plain_config(cfg) == {"a": 3, "b": 3, "l": [1, {"x": None}]}
    assert to_plain_config({"p": tmp_path, 1: (1.5, True)}) == {"p": str(tmp_path), "1": [1.5, True]}


# ------------------------------------------------------------------- Hydra configs
def _logger_cfg(name: str):
    return OmegaConf.create(
        {"project_name": "seqrec-tests", "task_name": "hydra", "logger": OmegaConf.load(LOGGER_CONFIGS / f"{name}.yaml")}
    )


def test_logger_configs_instantiate(clearml_sandbox):
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    from seqrec.tracking.clearml_tracker import ClearMLTracker

    none = instantiate(_logger_cfg("none").logger, task_type="training")
    assert isinstance(none, NoneTracker) and none.task_name == "hydra"

    offline_cfg = _logger_cfg("clearml_offline")
    assert offline_cfg.logger.offline is True
    tracker = instantiate(offline_cfg.logger, task_type="inference", detect_repository=False)
    try:
        assert isinstance(tracker, ClearMLTracker) and tracker.offline
        assert tracker.project_name == "seqrec-tests" and tracker.task_type == "inference"
    finally:
        tracker.close()

    online_cfg = _logger_cfg("clearml")
    assert online_cfg.logger.offline is False
    # no clearml.conf / credentials in the sandbox -> a clear user error, no network.
    # NB: Hydra wraps constructor errors in InstantiationException; the UserError is its __cause__.
    with pytest.raises(InstantiationException) as excinfo:
        instantiate(online_cfg.logger, task_type="training")
    assert isinstance(excinfo.value.__cause__, UserError)
    assert "clearml-init" in str(excinfo.value.__cause__)
    # instantiate_tracker unwraps it
    with pytest.raises(UserError, match="clearml-init"):
        instantiate_tracker(online_cfg.logger, task_type="training")
    with pytest.raises(UserError, match="not a tracker"):
        instantiate_tracker(OmegaConf.create({"_target_": "builtins.dict"}), task_type="training")
    tracker = instantiate_tracker(_logger_cfg("none").logger, task_type="inference")
    assert isinstance(tracker, NoneTracker) and tracker.task_type == "inference"


# ------------------------------------------------------------------ Lightning logger
class RecordingTracker(Tracker):
    def __init__(self):
        super().__init__("seqrec-tests", "recording")
        self.calls = []

    @property
    def task_id(self):
        return "rec-1"

    def _connect_config(self, cfg, name):
        self.calls.append(("config", name, cfg))

    def _report_scalar(self, title, series, value, iteration):
        self.calls.append(("scalar", title, series, value, iteration))

    def _report_single_value(self, name, value):
        self.calls.append(("single", name, value))

    def _report_table(self, title, series, df):
        self.calls.append(("table", title))

    def _report_figure(self, title, series, figure):
        self.calls.append(("figure", title))

    def _upload_artifact(self, name, path):
        self.calls.append(("artifact", name))

    def _close(self, status, reason):
        self.calls.append(("close", status))


def test_split_metric_name():
    from seqrec.tracking.lightning_logger import split_metric_name

    assert split_metric_name("val_ndcg@10") == ("ndcg@10", "val")
    assert split_metric_name("train_loss_step") == ("loss_step", "train")
    assert split_metric_name("test/hr@20") == ("hr@20", "test")
    assert split_metric_name("lr-Adam") == ("lr-Adam", "lr-Adam")
    assert split_metric_name("value_x") == ("value_x", "value_x")


def test_lightning_logger_forwards_and_records_history():
    import torch

    from seqrec.tracking.lightning_logger import TrackerLogger

    tracker = RecordingTracker()
    logger = TrackerLogger(tracker)
    assert logger.version == "rec-1" and logger.name == "recording"
    logger.log_metrics({"train_loss_step": torch.tensor(0.9), "epoch": 0.0}, step=4)
    logger.log_metrics({"val_ndcg@10": 0.25, "val_loss": 1.5, "epoch": 0}, step=9)
    logger.log_metrics({"train_loss_epoch": 0.8, "epoch": 0}, step=9)
    logger.log_metrics({"val_ndcg@10": 0.3, "epoch": 1}, step=19)
    logger.log_metrics({"lr": 0.01}, step=20)
    logger.log_hyperparams({"d_model": 64, "dropout": 0.1})

    scalars = [call[1:] for call in tracker.calls if call[0] == "scalar"]
    assert scalars[0][:2] == ("loss_step", "train") and scalars[0][3] == 4  # *_step -> global step
    assert scalars[0][2] == pytest.approx(0.9)
    assert ("ndcg@10", "val", 0.25, 0) in scalars  # epoch is the iteration
    assert ("loss", "val", 1.5, 0) in scalars
    assert ("loss_epoch", "train", 0.8, 0) in scalars
    assert ("ndcg@10", "val", 0.3, 1) in scalars
    assert ("lr", "lr", 0.01, 20) in scalars
    assert ("config", "hyperparameters", {"d_model": 64, "dropout": 0.1}) in tracker.calls

    assert logger.history[1] == {"step": 9, "epoch": 0, "val_ndcg@10": 0.25, "val_loss": 1.5}
    assert logger.history[-1] == {"step": 20, "lr": 0.01}
    per_epoch = logger.epoch_history()
    assert [row["epoch"] for row in per_epoch] == [0, 1]
    assert per_epoch[0]["val_ndcg@10"] == 0.25 and per_epoch[0]["train_loss_epoch"] == 0.8
    assert per_epoch[1] == {"epoch": 1, "val_ndcg@10": 0.3, "step": 19}


def test_lightning_logger_in_trainer(tmp_path):
    import lightning.pytorch as pl
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    from seqrec.tracking.lightning_logger import TrackerLogger

    class Tiny(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.save_hyperparameters({"hidden": 2})
            self.layer = torch.nn.Linear(2, 1)

        def training_step(self, batch, _):
            x, y = batch
            loss = torch.nn.functional.mse_loss(self.layer(x), y)
            self.log("train_loss", loss, on_step=False, on_epoch=True)
            return loss

        def validation_step(self, batch, _):
            x, y = batch
            self.log("val_mse", torch.nn.functional.mse_loss(self.layer(x), y))

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    torch.manual_seed(0)
    data = TensorDataset(torch.randn(8, 2), torch.randn(8, 1))
    tracker = RecordingTracker()
    logger = TrackerLogger(tracker)
    trainer = pl.Trainer(
        max_epochs=2,
        logger=logger,
        accelerator="cpu",
        devices=1,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=1,
        default_root_dir=tmp_path,
    )
    trainer.fit(Tiny(), DataLoader(data, batch_size=4), DataLoader(data, batch_size=8))

    per_epoch = logger.epoch_history()
    assert [row["epoch"] for row in per_epoch] == [0, 1]
    assert all("val_mse" in row and "train_loss" in row for row in per_epoch)
    series = {(call[1], call[2]) for call in tracker.calls if call[0] == "scalar"}
    assert {("mse", "val"), ("loss", "train")} <= series
    assert ("config", "hyperparameters", {"hidden": 2}) in tracker.calls


def test_requirements_are_the_installed_versions_by_default(clearml_sandbox):
    """``requirements=freeze`` (default) records ``pip freeze`` in the task: the installed torch and clearml
    versions, exactly; ``analyze`` hands the choice back to ClearML's import scan; anything else is one error."""
    from importlib.metadata import version

    from clearml import Task

    from seqrec.tracking.clearml_tracker import ClearMLTracker

    tracker = ClearMLTracker("seqrec-tests", "freeze", detect_repository=True)
    session = tracker.offline_session_dir
    tracker.close()  # waits for the detection thread (bounded by repo_detection_timeout)
    pip = json.loads((session / "task.json").read_text())["script"]["requirements"]["pip"]
    lines = set(pip.splitlines())
    assert f"torch=={version('torch')}" in lines and f"clearml=={version('clearml')}" in lines, pip[:500]
    assert Task._force_use_pip_freeze is True

    ClearMLTracker("seqrec-tests", "analyze", detect_repository=False, requirements="analyze").close()
    assert Task._force_use_pip_freeze is False  # the SDK's class-wide switch follows each run's setting
    with pytest.raises(UserError, match=r"logger.requirements must be 'freeze' or 'analyze' \(got 'pip'\)"):
        ClearMLTracker("seqrec-tests", "bad", requirements="pip")
