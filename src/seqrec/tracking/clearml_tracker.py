"""ClearML experiment tracking (real ``clearml`` SDK, offline by default).

Environment / SDK behaviour this module relies on (checked against clearml 2.1.x):

* **Cache dir** – the SDK keeps its state under ``clearml.config.get_cache_dir()``:
  env ``CLEARML_CACHE_DIR`` if set (read on every call, so it can be changed at
  run time, e.g. per test), else ``sdk.storage.cache.default_base_dir`` from
  the config (packaged default ``~/.clearml/cache``).  One file ignores it:
  ``Task.init`` always rewrites ``$HOME/.clearml/.session.json`` (its last-task
  cache), so full isolation (tests) also needs ``HOME`` pointed elsewhere.
* **Offline sessions** – ``Task.set_offline(True)`` before ``Task.init``; the
  session lives in ``<cache dir>/offline/offline-<id>/`` (``task.json``,
  ``metrics.jsonl``, ``log.jsonl``, ``data/`` with images and artifacts).
  ``Task.get_offline_mode_folder()`` returns it; we expose it as
  :attr:`ClearMLTracker.offline_session_dir`.  ``Task.close()`` additionally
  writes ``<folder>.zip`` (:attr:`ClearMLTracker.offline_session_zip`), which
  ``clearml.Task.import_offline_session(<zip>)`` uploads to a server later.
  Note ``Task.set_offline`` also exports ``CLEARML_OFFLINE_MODE`` into
  ``os.environ`` (so child processes inherit it).
* **Config file** – ``~/clearml.conf`` or env ``CLEARML_CONFIG_FILE``; the SDK
  reads it once per process.  :func:`reload_clearml_config` re-reads it (every
  :class:`ClearMLTracker` does so on construction).  None is needed offline.
  Server/credentials may also come from env ``CLEARML_API_HOST``,
  ``CLEARML_API_ACCESS_KEY``, ``CLEARML_API_SECRET_KEY`` (or ``CLEARML_AUTH_TOKEN``).
* **Close time** – with the default ``sdk.development.report_use_subprocess=true``
  (Linux) ``Task.close()`` waits ~11 s for the reporting subprocess.  There is
  no env var for it, so we add a config override
  (``clearml.config.ConfigWrapper.set_overrides``) and also set the already
  lazily-evaluated class attribute ``_report_subprocess_enabled`` to ``False``;
  reports then go through in-process threads and ``close()`` takes ~0.01–0.1 s.
* **Repository detection** – ``Task.init`` starts a background thread that
  records git info and requirements; ``Task.close()`` waits up to 300 s for it.
  We wait at most ``repo_detection_timeout`` seconds ourselves first (the SDK
  then abandons the thread), so close can never hang for minutes.
* **Requirements** – that thread also lists the Python packages: by default ClearML
  scans the entry script's imports (under Hydra's joblib launcher the "script" is
  loky's worker bootstrap, so that list is of the wrong code; in a loaded worker
  the scan was still running 9 s after ``Task.init``). ``requirements=freeze``
  (our default) calls the public ``Task.force_requirements_env_freeze`` before
  ``Task.init``: ``pip freeze`` (~0.2 s here), the exact installed versions, far
  from the timeout above, whose expiry makes the SDK kill the thread with an
  asynchronous exception.
* **IPython race** – that thread imports IPython; if the main thread imports
  ``matplotlib.pyplot`` at the same moment it may see a half-initialised
  ``IPython`` module and crash.  We import IPython (when installed) in the main
  thread before ``Task.init``.
* **One task per process at a time** – ``Task.init`` returns the still-open
  ``Task.current_task()`` instead of a new task, so a tracker closes any
  leftover task first; after ``close()`` the next ``Task.init`` gives a new id
  (Hydra ``--multirun`` runs jobs sequentially in one process).
* **Dead server** – online ``Task.init`` retries a dead server for hours, so in
  online mode we first check credentials and probe ``<api host>/debug.ping``
  within ``reachability_timeout`` seconds and raise :class:`UserError` instead.
  The check must precede ``Task.set_offline(False)``: going online makes every
  session created so far (e.g. by an earlier offline run) log in right away.
* ``Task.get_task`` in offline mode silently returns an empty shell, and
  ``OutputModel.update_weights`` fails offline: checkpoints are stored with
  ``upload_artifact`` instead (works offline: copied into the session ``data/``).
* Offline, ``mark_failed`` does not change the recorded status; the local run
  store (``run.json``) records the status in that case.
* **Fallback** – with ``fallback_offline=True`` an unreachable server (the probe
  above, so still decided within ``reachability_timeout`` s) switches the run to
  offline mode with a one-line warning; the session zip is imported later with
  ``clearml-task --import-offline-session <zip>`` (= ``Task.import_offline_session``).
  Missing or rejected credentials still stop the run (a configuration error).
* **Mid-run failures** – the SDK sends reports from background threads and retries
  a server that went away (``api.http.retries`` in clearml.conf: 240 tries with
  backoff by default), so most calls do not fail, but uploads and ``close()`` may
  wait for those retries.  A call that does raise degrades the tracker (see
  :class:`~seqrec.tracking.base.Tracker`): one warning, no more reports, no error.
* **Agents** – ``execute_remotely=<queue>``: after ``Task.init`` the task is
  enqueued with ``Task.execute_remotely(queue_name, exit_process=True)`` and this
  process exits.  An agent re-runs the entry point without arguments, so the
  Hydra command line (config name + overrides) is stored in the task's
  ``seqrec_launch`` parameters and :func:`restore_remote_launch_args` (called
  when :mod:`seqrec.tracking` is imported under an agent, i.e. with
  ``CLEARML_TASK_ID`` set, before Hydra parses ``sys.argv``) puts it back.
"""

from __future__ import annotations

import http.client
import importlib.util
import json
import logging
import os
import ssl
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Optional

from seqrec.core.errors import UserError
from seqrec.tracking.base import Tracker
from seqrec.tracking.clearml_tracker_config import CLEARML, check_queue

log = logging.getLogger(__name__)

#: Frameworks ClearML would otherwise patch (monkey-patching torch.save, hydra …).
_FRAMEWORKS = (
    "hydra",
    "scikit",
    "joblib",
    "matplotlib",
    "tensorflow",
    "tensorboard",
    "tfdefines",
    "pytorch",
    "megengine",
    "xgboost",
    "catboost",
    "fastai",
    "lightgbm",
    "gradio",
    "jsonargparse",
)


_OFFLINE_HINT = "or run with logger=clearml_offline"
_FALLBACK_HINT = f"set logger.fallback_offline=true to continue offline, {_OFFLINE_HINT}"
#: Task parameter section holding the Hydra command line of a run sent to an agent.
LAUNCH_SECTION = "seqrec_launch"


class ServerUnreachableError(UserError):
    """The ClearML API server did not answer the reachability probe."""

    def __init__(self, message: str, host: str, reason: str) -> None:
        super().__init__(message)
        self.host = host
        self.reason = reason


#: the SDK's private attributes this module relies on (module, object, attribute); tests/test_tracking.py fails
#: loudly when an SDK update removes one. Nothing else private is used.
PRIVATE_SDK_ATTRIBUTES = (
    ("clearml.config", "ConfigWrapper", "_config"),  # its _overrides_configs: keep other overrides when adding ours
    ("clearml.backend_interface.task.task", "Task", "_report_subprocess_enabled"),  # close() without an 11 s wait
    ("clearml.task", "Task", "_wait_for_repo_detection"),  # bounded wait for the repository-detection thread
)

_sdk_override_tree: Any = None
_sdk_lock = threading.Lock()


def _one_line(text: Any) -> str:
    return " ".join(str(text).split())


def _config_file_hint() -> str:
    from clearml.backend_config.defs import get_active_config_file, get_config_file

    return str(get_active_config_file() or get_config_file())


def reload_clearml_config() -> None:
    """(Re-)read clearml.conf / ``CLEARML_CONFIG_FILE`` and apply our SDK settings.

    Also turns off ``sdk.development.report_use_subprocess`` (see module doc).
    Raises :class:`UserError` when the config file cannot be parsed.
    """
    global _sdk_override_tree
    from clearml.backend_config.errors import ConfigurationError
    from clearml.backend_interface.task.task import Task as BackendTask
    from clearml.config import ConfigSDKWrapper, ConfigWrapper
    from clearml.utilities.pyhocon import ConfigFactory  # vendored by clearml

    with _sdk_lock:
        if _sdk_override_tree is None:
            _sdk_override_tree = ConfigFactory.from_dict(
                {"sdk": {"development": {"report_use_subprocess": False}}}
            )
        try:
            ConfigWrapper.get("sdk", None)  # first use loads the files
            existing = getattr(ConfigWrapper._config, "_overrides_configs", None) or []
            others = [tree for tree in existing if tree is not _sdk_override_tree]
            ConfigWrapper.set_overrides(*others, _sdk_override_tree)  # re-reads the files
        except ConfigurationError as exc:
            raise UserError(
                f"cannot read ClearML config {_config_file_hint()}: {_one_line(exc)}; "
                f"fix the file (or set CLEARML_CONFIG_FILE), {_OFFLINE_HINT}"
            ) from exc
        ConfigSDKWrapper.clear_config_impl()  # drop the cached 'sdk' subtree
        # The class attribute is a lazy config lookup that may already have been
        # evaluated (cached) before our override; pin it.
        BackendTask._report_subprocess_enabled = False


def api_server_host() -> str:
    """The ClearML API server the SDK would use (env ``CLEARML_API_HOST`` or clearml.conf)."""
    from clearml.backend_api.session import Session

    return Session.get_api_server_host()


def _has_credentials() -> bool:
    from clearml.backend_api.session.defs import ENV_ACCESS_KEY, ENV_AUTH_TOKEN, ENV_SECRET_KEY
    from clearml.config import config_obj

    if ENV_AUTH_TOKEN.get():
        return True
    access = ENV_ACCESS_KEY.get(default=config_obj.get("api.credentials.access_key", None))
    secret = ENV_SECRET_KEY.get(default=config_obj.get("api.credentials.secret_key", None))
    return bool(access) and bool(secret)


def _probe_server(host: str, timeout: float) -> Optional[str]:
    """``None`` when ``host`` answers HTTP within ``timeout`` s, else the reason it did not."""
    url = host.rstrip("/") + "/debug.ping"
    outcome: dict[str, Optional[str]] = {}

    def probe() -> None:
        try:
            with urllib.request.urlopen(urllib.request.Request(url, method="GET"), timeout=timeout):
                outcome["error"] = None
        except urllib.error.HTTPError:
            outcome["error"] = None  # any HTTP answer means a server is listening
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, ssl.SSLError):
                outcome["error"] = None  # TLS answered; certificate policy is the SDK's business
            else:
                outcome["error"] = _one_line(exc.reason)
        except (OSError, ValueError, http.client.HTTPException) as exc:
            outcome["error"] = _one_line(exc) or type(exc).__name__

    # run in a thread: urllib's timeout does not bound DNS resolution
    thread = threading.Thread(target=probe, name="clearml-reachability", daemon=True)
    thread.start()
    thread.join(timeout + 0.5)
    if "error" not in outcome:
        return f"no answer within {timeout:g} s"
    return outcome["error"]


def check_server(reachability_timeout: float = 5.0) -> str:
    """Make sure online ClearML can work; returns the API host.

    Raises :class:`UserError` when no credentials are configured or the API
    server does not answer within ``reachability_timeout`` seconds.
    """
    host = api_server_host()
    if not _has_credentials():
        raise UserError(
            f"ClearML has no credentials for server {host} (none in {_config_file_hint()} "
            f"or CLEARML_API_ACCESS_KEY/CLEARML_API_SECRET_KEY); run clearml-init, {_OFFLINE_HINT}"
        )
    error = _probe_server(host, float(reachability_timeout))
    if error is not None:
        raise ServerUnreachableError(_unreachable_message(host, error), host=host, reason=error)
    return host


def _unreachable_message(host: str, error: str, alternatives: str = _OFFLINE_HINT) -> str:
    return (
        f"ClearML server {host} is unreachable ({error}); start it, fix api_server in "
        f"{_config_file_hint()} (or CLEARML_API_HOST), {alternatives}"
    )


def _prepare_sdk(
    offline: bool, reachability_timeout: float, fallback_offline: bool = False
) -> tuple[Any, Optional[str], Optional[ServerUnreachableError]]:
    """Import the SDK, apply our settings, check the server (online) and switch mode.

    Returns ``(clearml.Task, api host or None, unreachable error or None)``; the
    error is returned (not raised) when ``fallback_offline`` switched to offline
    mode because of it.  The server check must come before
    ``Task.set_offline(False)``: going online makes every session created so far
    log in, and against a dead server that retries for hours.
    """
    reload_clearml_config()
    check_cache_dir()
    from clearml import Task

    leftover = Task.current_task()
    if leftover is not None:
        log.warning("closing ClearML task %s that was left open before starting a new run", leftover.id)
        try:
            leftover.flush(wait_for_uploads=True)  # its reports on disk first (the reporter writes asynchronously)
            leftover.close()
        except Exception as exc:  # noqa: BLE001 - a broken leftover must not block the new run
            log.warning("could not close leftover ClearML task %s: %s", leftover.id, exc)
    server: Optional[str] = None
    unreachable: Optional[ServerUnreachableError] = None
    if not offline:
        try:
            server = check_server(reachability_timeout)
        except ServerUnreachableError as exc:
            if not fallback_offline:
                raise
            offline, unreachable = True, exc
    try:
        Task.set_offline(offline_mode=offline)
    except _login_error_types() as exc:
        raise _login_failed(exc) from exc
    return Task, server, unreachable


def check_cache_dir() -> None:
    """One-line :class:`UserError` naming ``CLEARML_CACHE_DIR`` (or the clearml.conf setting) when the SDK could
    not write its cache folder, which holds the offline sessions: checked before any task exists."""
    from clearml.config import get_cache_dir

    from seqrec.core.io import folder_write_problem

    cache = Path(str(get_cache_dir()))
    problem = folder_write_problem(cache)
    if problem is None:
        return
    if os.environ.get("CLEARML_CACHE_DIR"):
        where, fix = f"CLEARML_CACHE_DIR={os.environ['CLEARML_CACHE_DIR']}", "set CLEARML_CACHE_DIR to a writable folder"
    else:
        where = f"ClearML's cache folder {cache} (sdk.storage.cache.default_base_dir in {_config_file_hint()})"
        fix = "set CLEARML_CACHE_DIR to a writable folder"
    raise UserError(f"{where} {problem}; ClearML keeps its sessions there: {fix}, or run with logger=none")


def _login_failed(exc: BaseException) -> UserError:
    return UserError(
        f"ClearML login to {api_server_host()} failed ({_one_line(exc)}); fix the credentials in "
        f"{_config_file_hint()} (clearml-init), {_OFFLINE_HINT}"
    )


def _preimport_ipython() -> None:
    if "IPython" not in sys.modules and importlib.util.find_spec("IPython") is not None:
        try:
            import IPython  # noqa: F401
        except Exception as exc:  # noqa: BLE001 - only a race guard
            log.debug("IPython import failed (%s); continuing", exc)


def _normalise_tags(tags: Any) -> Optional[list[str]]:
    if tags is None:
        return None
    if isinstance(tags, str):
        return [tags]
    if not isinstance(tags, Iterable):
        raise UserError(f"logger tags must be a list of strings, got {tags!r}; e.g. logger.tags=[baseline]")
    return [str(tag) for tag in tags] or None


def _login_error_types() -> tuple[type, ...]:
    from clearml.backend_api.session.defs import MissingConfigError
    from clearml.backend_api.session.session import LoginError

    return (LoginError, MissingConfigError)


_MASTER_ENV = ("CLEARML_PROC_MASTER_ID", "TRAINS_PROC_MASTER_ID")


def _forget_foreign_master_process() -> None:
    """Drop a ClearML "master process" marker inherited from a parent process.

    ``Task.init`` exports ``CLEARML_PROC_MASTER_ID=<pid>:<task>`` and leaves it set after
    ``close()``; a child program (a test running the CLI, a notebook calling a script)
    would inherit it and get a do-nothing stub task instead of a task of its own.
    """
    for name in _MASTER_ENV:
        value = os.environ.get(name)
        if value is not None and value.split(":", 1)[0] != str(os.getpid()):
            del os.environ[name]


def _hydra_launch() -> Optional[dict]:
    """The Hydra command line of the current job (config name, overrides, multirun), if any."""
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode
    except ImportError:
        return None
    if not HydraConfig.initialized():
        return None  # compose API (tests, notebooks): no command line to replay
    hydra_cfg = HydraConfig.get()
    return {
        "config_name": hydra_cfg.job.get("config_name"),
        "overrides": [str(item) for item in hydra_cfg.overrides.task],
        "multirun": hydra_cfg.mode == RunMode.MULTIRUN,
    }


def _running_on_agent() -> bool:
    from clearml.config import running_remotely

    return bool(running_remotely())


def restore_remote_launch_args(argv: Optional[list] = None, task_id: Optional[str] = None) -> bool:
    """On a ClearML agent: put the stored Hydra command line of the task back into ``argv``.

    An agent starts the entry point (``src/run_train.py`` …) without arguments;
    :meth:`ClearMLTracker._enqueue` stored ``--config-name`` and the overrides in
    the task's ``seqrec_launch`` parameters.  ``argv`` (default ``sys.argv``) is
    changed in place only when it has no arguments of its own and the task has
    them stored.  Returns whether it was changed.  ``task_id`` defaults to
    ``$CLEARML_TASK_ID`` (set by the agent).
    """
    argv = sys.argv if argv is None else argv
    task_id = task_id or os.environ.get("CLEARML_TASK_ID")
    if not task_id or len(argv) > 1:
        return False
    from clearml import Task

    params = Task.get_task(task_id=task_id).get_parameters(backwards_compatibility=False) or {}
    overrides = params.get(f"{LAUNCH_SECTION}/overrides")
    if overrides in (None, ""):
        return False
    restored = [str(item) for item in json.loads(overrides)]
    config_name = params.get(f"{LAUNCH_SECTION}/config_name")
    if config_name:
        restored.insert(0, f"--config-name={config_name}")
    argv[1:] = restored
    print(f"seqrec: ClearML agent task {task_id}: restored arguments {' '.join(restored)}", file=sys.stderr)
    return True


#: offline, a file larger than this is recorded as a reference to the run folder (path, size, sha256), not copied
REFERENCE_BYTES = 1 << 20


def file_reference(path: Path) -> dict:
    """What an offline session records instead of a copy of a large file: where it is and how to verify it."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return {"path": str(Path(path).resolve()), "bytes": Path(path).stat().st_size, "sha256": digest.hexdigest(),
            "note": "stored once, in the run folder; offline sessions reference it"}


class ClearMLTracker(Tracker):
    """A ClearML task; its id is the run ID.

    ``offline=True`` (default, ``logger=clearml_offline``) needs no server and
    no clearml.conf.  ``offline=False`` (``logger=clearml``) talks to the
    server configured in clearml.conf / ``CLEARML_API_HOST``; with
    ``fallback_offline=True`` an unreachable server makes the run continue
    offline (``offline`` is then ``True`` and ``fell_back_offline`` is set).
    ``execute_remotely=<queue>`` (online only) enqueues the run for a ClearML
    agent and ends this process.
    """

    def __init__(
        self,
        project_name: str,
        task_name: str,
        task_type: str = "training",
        offline: bool = True,
        reachability_timeout: float = 5.0,
        tags: Any = None,
        detect_repository: bool = True,
        repo_detection_timeout: float = 30.0,
        fallback_offline: bool = False,
        execute_remotely: Optional[str] = None,
        requirements: str = "freeze",
    ) -> None:
        super().__init__(project_name, task_name, task_type)
        self.offline = bool(offline)
        self.fallback_offline = bool(fallback_offline)
        self.fell_back_offline = False
        self.execute_remotely = check_queue(execute_remotely, self.offline)
        launch = _hydra_launch() if self.execute_remotely else None
        if launch is not None and launch["multirun"] and not _running_on_agent():
            raise UserError(
                f"logger.execute_remotely={self.execute_remotely} enqueues one run and ends the process, so it "
                "cannot be used with --multirun (only the first job would be sent); enqueue runs one by one, "
                "or sweep on a cluster with hydra/launcher=slurm"
            )
        CLEARML.setting("reachability_timeout").at("logger").check_value(reachability_timeout)  # the declared rule
        timeout = float(reachability_timeout)
        self.reachability_timeout = timeout
        self.repo_detection_timeout = max(0.0, float(repo_detection_timeout))
        CLEARML.setting("requirements").at("logger").check_value(requirements)
        tag_list = _normalise_tags(tags)

        _forget_foreign_master_process()
        try:
            Task, self.server, unreachable = _prepare_sdk(
                self.offline, timeout, self.fallback_offline and not self.execute_remotely
            )
        except ServerUnreachableError as exc:
            if self.execute_remotely:
                alternatives = f"or set logger.execute_remotely=null to run here, {_OFFLINE_HINT}"
            else:
                alternatives = _FALLBACK_HINT
            raise ServerUnreachableError(
                _unreachable_message(exc.host, exc.reason, alternatives), host=exc.host, reason=exc.reason
            ) from None
        if unreachable is not None:
            self.offline = self.fell_back_offline = True
        self._root_handlers = {id(handler) for handler in logging.getLogger().handlers}
        self._pending_notice: Optional[logging.LogRecord] = None
        _preimport_ipython()
        frameworks: dict[str, bool] = {name: False for name in _FRAMEWORKS}
        frameworks["detect_repository"] = bool(detect_repository)
        # a class-wide SDK switch, so set on every run: pip freeze, or ClearML's import scan
        Task.force_requirements_env_freeze(force=requirements == "freeze")
        try:
            self._task = Task.init(
                project_name=self.project_name,
                task_name=self.task_name,
                task_type=self.task_type,
                tags=tag_list,
                reuse_last_task_id=False,
                continue_last_task=False,
                auto_connect_arg_parser=False,
                auto_connect_frameworks=frameworks,
                auto_resource_monitoring=False,
                auto_connect_streams=False,
            )
        except _login_error_types() as exc:
            raise _login_failed(exc) from exc
        self._task_id = str(self._task.id)
        self._offline_dir: Optional[Path] = None
        if self.offline:
            self._offline_dir = Path(str(self._task.get_offline_mode_folder()))
        log.debug(  # the SDK prints the task ID and offline folder itself
            "ClearML task %s (%s, project %r, task %r)",
            self._task_id,
            f"offline session {self._offline_dir}" if self.offline else f"server {self.server}",
            self.project_name,
            self.task_name,
        )
        if unreachable is not None:
            self._warn_fallback(unreachable)
        if self.execute_remotely:
            self._enqueue(self.execute_remotely, launch)

    def _warn_fallback(self, unreachable: ServerUnreachableError) -> None:
        zip_path = self._offline_dir.with_name(self._offline_dir.name + ".zip") if self._offline_dir else None
        message = (
            f"ClearML server {unreachable.host} is unreachable ({unreachable.reason}); "
            f"logger.fallback_offline=true, so run {self._task_id} continues in ClearML offline mode; "
            f"when the server is back, import it with: clearml-task --import-offline-session {zip_path} "
            "(written when the run ends; also in run.json as clearml_offline_zip)"
        )
        print(f"warning: {message}", file=sys.stderr, flush=True)
        log.warning(message)
        # the run's log file is attached after the tracker exists: replay it there (see _replay_notice)
        self._pending_notice = log.makeRecord(log.name, logging.WARNING, __file__, 0, message, None, None)

    def _replay_notice(self) -> None:
        """Write the fallback warning to log files attached since construction (the run's ``run.log``)."""
        record, self._pending_notice = self._pending_notice, None
        if record is None:
            return
        for handler in logging.getLogger().handlers:
            if isinstance(handler, logging.FileHandler) and id(handler) not in self._root_handlers:
                try:
                    handler.handle(record)
                except Exception as exc:  # noqa: BLE001 - only a courtesy copy
                    log.debug("could not copy the fallback warning to %s: %s", handler, exc)

    def _enqueue(self, queue: str, launch: Optional[dict]) -> None:
        """Hand the run to a ClearML agent (``Task.execute_remotely``); ends the process locally."""
        if _running_on_agent():
            log.info("running on a ClearML agent as task %s (queue %s)", self._task_id, queue)
            return
        try:
            if launch is not None:
                self._task.set_parameter(
                    f"{LAUNCH_SECTION}/config_name", launch["config_name"] or "",
                    description="Hydra --config-name of the enqueued run (restored on the agent)",
                )
                self._task.set_parameter(
                    f"{LAUNCH_SECTION}/overrides", json.dumps(launch["overrides"]),
                    description="Hydra overrides of the enqueued run, JSON list (restored on the agent)",
                )
            print(
                f"run {self._task_id}: enqueued on ClearML queue {queue!r} of {self.server}; "
                "a ClearML agent serving that queue runs it (its run folder is on the agent's machine)",
                flush=True,
            )
            self._task.execute_remotely(queue_name=queue, clone=False, exit_process=True)
        except Exception as exc:  # noqa: BLE001 - SDK raises ValueError / APIError variants
            try:
                self._task.close()
            except Exception as close_exc:  # noqa: BLE001 - the enqueue error is the one to report
                log.debug("could not close ClearML task %s: %s", self._task_id, close_exc)
            raise UserError(
                f"could not enqueue run {self._task_id} on ClearML queue {queue!r} of {self.server} "
                f"({_one_line(exc)[:150]}); check the queue name (web UI: Workers & Queues) "
                "or set logger.execute_remotely=null to run here"
            ) from exc

    # ----------------------------------------------------------------- identity
    @property
    def task_id(self) -> str:
        return self._task_id

    @property
    def task(self) -> Any:
        """The underlying ``clearml.Task`` (for features not wrapped here)."""
        return self._task

    @property
    def offline_session_dir(self) -> Optional[Path]:
        return self._offline_dir

    @property
    def offline_session_zip(self) -> Optional[Path]:
        """The importable session zip (exists after :meth:`close`, offline mode only)."""
        if self._offline_dir is None:
            return None
        zip_path = self._offline_dir.with_name(self._offline_dir.name + ".zip")
        return zip_path if zip_path.is_file() else None

    # ---------------------------------------------------------------- reporting
    def _describe_backend(self) -> str:
        if self.offline:
            return f"ClearML offline session {self._offline_dir}"
        return f"ClearML server {self.server}"

    def _connect_config(self, cfg: dict, name: str) -> None:
        self._replay_notice()
        # full nested config as an editable configuration object …
        self._task.connect_configuration(cfg, name=name)
        # … and flattened "name/a/b" hyperparameters for comparing runs in the UI
        self._task.connect(dict(cfg), name=name)

    def _report_scalar(self, title: str, series: str, value: float, iteration: int) -> None:
        self._task.get_logger().report_scalar(title=title, series=series, value=value, iteration=iteration)

    def _report_single_value(self, name: str, value: float) -> None:
        self._task.get_logger().report_single_value(name=name, value=value)

    def _report_table(self, title: str, series: str, df: Any) -> None:
        self._task.get_logger().report_table(title=title, series=series, iteration=0, table_plot=df)

    def _report_figure(self, title: str, series: str, figure: Any) -> None:
        logger = self._task.get_logger()
        if isinstance(figure, Path):
            logger.report_image(title=title, series=series, iteration=0, local_path=str(figure))
        elif hasattr(figure, "savefig"):
            logger.report_matplotlib_figure(title=title, series=series, figure=figure, iteration=0)
        else:
            logger.report_plotly(title=title, series=series, figure=figure, iteration=0)

    def _upload_artifact(self, name: str, path: Path) -> None:
        size = path.stat().st_size
        if self.offline and size > REFERENCE_BYTES:
            # the run folder already holds it: an offline session (and its zip) records where, not a third copy
            ok = self._task.upload_artifact(name=name, artifact_object=file_reference(path), wait_on_upload=True)
            if not ok:
                raise RuntimeError(f"ClearML could not store artifact {name!r} ({path})")
            return
        ok = self._task.upload_artifact(name=name, artifact_object=path, wait_on_upload=True)
        if not ok:
            raise RuntimeError(f"ClearML could not store artifact {name!r} ({path})")

    def _flush(self) -> None:
        self._task.flush(wait_for_uploads=True)

    def _close(self, status: str, reason: Optional[str]) -> None:
        self._replay_notice()
        task = self._task
        waiter = getattr(task, "_wait_for_repo_detection", None)
        if callable(waiter):
            # bounded wait; on timeout the SDK abandons the thread and close()
            # no longer waits its own 300 s for it
            # a signal asks the process to end within seconds: the repository record is not worth a long wait then
            timeout = min(self.repo_detection_timeout, 1.0) if status == "interrupted" else self.repo_detection_timeout
            try:
                waiter(timeout=timeout)
            except Exception as exc:  # noqa: BLE001 - best effort
                log.debug("repository detection wait failed: %s", exc)
        try:  # every report on disk (offline) or sent before the task closes, also on a loaded machine
            task.flush(wait_for_uploads=True)
        except Exception as exc:  # noqa: BLE001 - best effort; close() flushes too
            log.debug("flush before close failed: %s", exc)
        task.close()  # marks the task completed (online)
        if status in ("failed", "interrupted") and not self.offline:
            try:
                if status == "failed":
                    task.mark_failed(status_reason=_one_line(reason or "failed"), force=True)
                else:  # ClearML's "aborted": stopped on purpose, not broken
                    task.mark_stopped(force=True, status_message=_one_line(reason or "interrupted by a signal"))
            except Exception as exc:  # noqa: BLE001 - status is cosmetic, do not mask the real error
                log.warning("could not mark ClearML task %s as %s: %s", self._task_id, status, exc)
        if self.offline:
            log.debug("ClearML offline session stored in %s", self.offline_session_zip or self._offline_dir)  # SDK says it too


__all__ = [
    "ClearMLTracker",
    "LAUNCH_SECTION",
    "ServerUnreachableError",
    "api_server_host",
    "check_server",
    "reload_clearml_config",
    "restore_remote_launch_args",
]
