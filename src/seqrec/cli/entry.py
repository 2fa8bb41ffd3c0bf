"""Entry-point plumbing: friendly one-line errors, full tracebacks only in the run log.

Every failure of ``run_train.py`` / ``run_predict.py`` ends with one line on stderr,
``error: <what was wrong>; <what to do>``, and exit status 1:

* a :class:`~seqrec.core.errors.UserError` (bad value, file or run ID) as is;
* a Hydra composition error (unknown key or config, bad override syntax), turned into one line by
  :func:`hydra_error_message` with the closest known name;
* any other exception as ``unexpected <type>: ...``, naming the run log that holds the traceback.

Tracebacks never reach the screen (log handlers writing to the terminal drop them); a run's
``run.log`` keeps them. ``HYDRA_FULL_ERROR=1`` shows every traceback, as in plain Hydra.
"""

from __future__ import annotations

import importlib
import logging
import os
import re
import sys
import warnings
from pathlib import Path
from typing import Callable, Union

from omegaconf import DictConfig

from seqrec.core.errors import INTERRUPTED_EXIT, ResumableRunError, RunInterrupted, UserError
from seqrec.core.signals import signal_name, stop_on_signals

log = logging.getLogger("seqrec")

MAX_MESSAGE = 300  # characters of the error line ("error: " included); longer ones are cut with "..."
_SHOW_TRACEBACKS = False  # HYDRA_FULL_ERROR=1 was set by the user
_ENTRY_POINT = False  # this process is run_train.py / run_predict.py (hydra_entry), not a caller of run_main


def quiet_third_party() -> None:
    """Silence library chatter that says nothing about the user's run."""
    warnings.filterwarnings("ignore", message=r".*LeafSpec.*")  # lightning vs torch pytree deprecation
    warnings.filterwarnings("ignore", message=r"The number of training batches .* logging interval")
    warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=r".*is not supported by the model summary.*")
    logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(
        lambda record: "litlogger" not in record.getMessage()
    )



def one_line(text: object, limit: int = MAX_MESSAGE) -> str:
    """``text`` on one line (whitespace collapsed), cut to ``limit`` characters."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def fail(message: str, status: int = 1, limit: int | None = MAX_MESSAGE) -> None:
    """Print ``error: <message>`` as the last line on stderr and exit with ``status`` (``limit=None``: never
    cut, for lines that end with a command to copy)."""
    _close_progress_bars()
    sys.stdout.flush()
    text = " ".join(message.split()) if limit is None else one_line(message, limit - len("error: "))
    print(f"error: {text}", file=sys.stderr, flush=True)
    if status == INTERRUPTED_EXIT and _ENTRY_POINT:
        # a signal asks the process to end now: the run is marked and its tracker closed; threads a library left
        # behind (ClearML's abandoned repository scan) would hold the interpreter's exit for seconds
        logging.shutdown()
        os._exit(status)
    sys.exit(status)


def _close_progress_bars() -> None:
    """End open tqdm bars so the error starts on a line of its own."""
    tqdm_module = sys.modules.get("tqdm")
    if tqdm_module is None:
        return
    try:
        for bar in list(getattr(tqdm_module.tqdm, "_instances", ())):
            bar.close()
    except Exception:  # a progress bar must never hide the error
        pass


class _ScreenFormatter(logging.Formatter):
    """Wraps a terminal handler's formatter: the message without the traceback."""

    def __init__(self, inner: logging.Formatter | None):
        super().__init__()
        self.inner = inner or logging.Formatter("%(message)s")

    def format(self, record: logging.LogRecord) -> str:
        saved = record.exc_info, record.exc_text, record.stack_info
        record.exc_info = record.exc_text = record.stack_info = None
        try:
            text = self.inner.format(record)
        finally:
            record.exc_info, record.exc_text, record.stack_info = saved
        if saved[0] or saved[1]:
            text += " (traceback in the run's run.log)"
        return text


def hide_tracebacks_on_screen() -> None:
    """Terminal log handlers of the root logger print messages without tracebacks.

    File handlers (the run's ``run.log``) are left alone, so they keep the full traceback.
    """
    if _SHOW_TRACEBACKS:
        return
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler):
            if not isinstance(handler.formatter, _ScreenFormatter):
                handler.setFormatter(_ScreenFormatter(handler.formatter))


def _run_folders(cfg: DictConfig) -> tuple[Path | None, set[str]]:
    try:
        root = Path(str(cfg.get("run_store") or "runs"))
        return root, set(os.listdir(root)) if root.is_dir() else set()
    except Exception:
        return None, set()


def _new_run_log(root: Path | None, before: set[str]) -> Path | None:
    if root is None or not root.is_dir():
        return None
    from seqrec.tracking.run_folder import RunFolder

    logs = [RunFolder(root / name).log for name in set(os.listdir(root)) - before]
    logs = [p for p in logs if p.is_file()]
    return max(logs, key=lambda p: p.stat().st_mtime) if logs else None


def _resolve(fn: Union[str, Callable]) -> Callable:
    if callable(fn):
        return fn
    module, _, name = fn.partition(":")
    return getattr(importlib.import_module(module), name)


def run_main(
    fn: Union[str, Callable[[object], float]],
    cfg: DictConfig,
    check: Callable[[DictConfig], None] | None = None,
    resolve: Union[str, Callable[[DictConfig], object], None] = None,
) -> float:
    """Run ``fn`` on the composed ``cfg`` (or on ``resolve(cfg)``, the run's resolved spec); any failure becomes
    ``error: <message>`` and exit status 1.

    ``fn`` may be ``"module:function"``, imported only after ``check(cfg)`` / ``resolve(cfg)`` passed: a wrong
    value then fails within a second or two, before torch/Lightning and any data are loaded.
    """
    quiet_third_party()
    hide_tracebacks_on_screen()
    root, before = _run_folders(cfg)
    try:
        with stop_on_signals():  # SIGTERM and SIGINT end the command the same way, before, in and after its run
            if resolve is not None:
                return _resolve(fn)(_resolve(resolve)(cfg))
            _full_run_ids(cfg)
            if check is not None:
                check(cfg)
            return _resolve(fn)(cfg)
    except UserError as exc:
        log.debug("user error", exc_info=True)
        fail(str(exc), limit=None if isinstance(exc, ResumableRunError) else MAX_MESSAGE)
    except (RunInterrupted, KeyboardInterrupt) as exc:
        fail(interrupted_line(exc), status=INTERRUPTED_EXIT, limit=None)
    except Exception as exc:
        if _SHOW_TRACEBACKS:
            raise
        from seqrec.core.io import disk_full_message, is_disk_full

        if is_disk_full(exc):  # any write (predictions, metrics, a prepared CSV): what, where, how much room
            fail(f"{disk_full_message(exc)}; earlier files are intact (every write is atomic): free space or pass "
                 "run_store=<a folder with room>, and run the command again")
        run_log = _new_run_log(root, before)
        log.debug("unexpected error", exc_info=True)
        where = f"full traceback in {run_log}" if run_log else "rerun with HYDRA_FULL_ERROR=1 for the traceback"
        fail(f"unexpected {type(exc).__name__}: {one_line(exc, 150)} ({where}; please report it if the input looks right)")
    raise AssertionError("unreachable")


def _full_run_ids(cfg: DictConfig) -> None:
    """``train_task=`` / ``resume=`` may name a run by a unique prefix of its ID: replaced by the full ID."""
    from omegaconf import OmegaConf

    from seqrec.tracking.run_store import RunStore

    store = None
    for key in ("train_task", "resume"):
        value = cfg.get(key) if isinstance(cfg, DictConfig) and key in cfg else None
        if isinstance(value, str) and value:
            store = store or RunStore(str(cfg.get("run_store") or "runs"))
            full = store.resolve_id(value)
            if full != value:
                OmegaConf.update(cfg, key, full)


def interrupted_line(exc: BaseException) -> str:
    """The line a signal ends a command with: the run's own line when a run was open, else what was (not) done."""
    if isinstance(exc, RunInterrupted) and exc.run_id is not None:
        return str(exc)
    name = signal_name(exc) or "a signal"
    return f"interrupted by {name} with no run open: nothing was written; run the command again"


def interruptible(main: Callable[[], int]) -> int:
    """``main()`` of a script that reports its own errors, with signals ending it as :func:`run_script` does."""
    try:
        with stop_on_signals():
            return main()
    except (RunInterrupted, KeyboardInterrupt) as exc:
        _close_progress_bars()
        print(f"error: {interrupted_line(exc)}", file=sys.stderr, flush=True)
        return INTERRUPTED_EXIT


def run_script(fn: Callable, *args, **kwargs) -> int:
    """For plain ``scripts/*.py``: log INFO to stderr, print ``fn``'s result, one-line errors; a signal ends it with
    one line and :data:`~seqrec.core.errors.INTERRUPTED_EXIT`."""
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        with stop_on_signals():
            print(fn(*args, **kwargs))
    except UserError as exc:
        print(f"error: {one_line(exc, MAX_MESSAGE - len('error: '))}", file=sys.stderr)
        return 1
    except (RunInterrupted, KeyboardInterrupt) as exc:
        _close_progress_bars()
        print(f"error: {interrupted_line(exc)}", file=sys.stderr, flush=True)
        return INTERRUPTED_EXIT
    return 0


# --------------------------------------------------------------------------- Hydra
def hydra_entry(main: Callable[[], object], config_name: str) -> None:
    """Call a ``@hydra.main`` function; a Hydra error becomes one ``error:`` line and exit 1.

    ``config_name`` is the default of the decorator (``--config-name`` on the command line
    wins); it and the ``configs`` folder beside the entry point are used to suggest the
    closest known key or config name.
    """
    global _SHOW_TRACEBACKS, _ENTRY_POINT
    _ENTRY_POINT = True
    import seqrec.tracking  # noqa: F401  # under a ClearML agent: restores the command line before Hydra reads it

    from seqrec.config.upgrade import old_overrides

    _SHOW_TRACEBACKS = os.environ.get("HYDRA_FULL_ERROR") == "1"
    os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra re-raises instead of printing a multi-line report
    kind = "train" if "train" in config_name.lower() else "predict"
    sys.argv[1:] = old_overrides(sys.argv[1:], kind)  # an old key name composes; the checks say how to migrate
    task = getattr(main, "__wrapped__", main)
    entry_file = getattr(sys.modules.get(getattr(task, "__module__", "")), "__file__", None) or sys.argv[0]
    given = _config_name(sys.argv[1:], config_name)
    other = config_kind(Path(entry_file).resolve().parent / "configs", given)
    if other is not None and other != kind:  # GPT_predict given to run_train.py: the other entry point runs it
        fail(other_kind_message(given, other, Path(entry_file).resolve().parent))
    try:
        main()
    except Exception as exc:
        if _SHOW_TRACEBACKS:
            raise
        task = getattr(main, "__wrapped__", main)
        module = sys.modules.get(getattr(task, "__module__", ""))
        config_dir = Path(getattr(module, "__file__", None) or sys.argv[0]).resolve().parent / "configs"
        args = sys.argv[1:]
        fail(hydra_error_message(exc, config_dir, _config_name(args, config_name), _overrides(args), kind))


def config_kind(config_dir: Path, name: str, depth: int = 0) -> str | None:
    """``train`` or ``predict``: which entry point the config ``name`` of ``config_dir`` is for, from the base config
    its ``defaults`` list reaches (``base/train``, ``base/predict``, or another config that does); None when
    unknown (no such config: Hydra's own message follows)."""
    import yaml

    path = config_dir / f"{name}.yaml"
    if depth > 5 or not path.is_file():
        return None
    try:
        defaults = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("defaults") or []
    except (OSError, yaml.YAMLError, AttributeError):
        return None
    for entry in defaults:
        if not isinstance(entry, str):
            continue
        if entry in ("base/train", "base/predict"):
            return entry.split("/")[1]
        found = config_kind(config_dir, entry, depth + 1)
        if found is not None:
            return found
    return None


def other_kind_message(name: str, kind: str, src_dir: Path) -> str:
    """The line for a config given to the entry point of the other kind: which kind it is and the command that
    runs it (the other script, with the setting that kind needs)."""
    from seqrec.core.paths import script_command

    script, what, needs = ((src_dir / "run_predict.py", "a prediction", "train_task=<ID>") if kind == "predict"
                           else (src_dir / "run_train.py", "a training", "data_path=<csv>"))
    return f"{name} is {what} config; run it with {script_command(script)} --config-name={name} {needs} ..."


def _config_name(args: list[str], default: str) -> str:
    for i, arg in enumerate(args):
        if arg.startswith(("--config-name=", "-cn=")):
            return arg.split("=", 1)[1]
        if arg in ("--config-name", "-cn") and i + 1 < len(args):
            return args[i + 1]
    return default


def _overrides(args: list[str]) -> list[str]:
    out, skip = [], False
    for arg in args:
        if skip:
            skip = False
        elif arg in ("--config-name", "-cn", "--config-path", "-cp", "--config-dir", "-cd", "--info", "-i"):
            skip = True
        elif not arg.startswith("-"):
            out.append(arg)
    return out


def _compose_keys(config_dir: Path, config_name: str, overrides: list[str]) -> list[str]:
    """Every key of the composed config (for suggestions); [] when it does not compose."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from seqrec.config.checks import flat_keys

    for attempt in (overrides, []):
        try:
            GlobalHydra.instance().clear()
            with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
                return flat_keys(compose(config_name=config_name, overrides=attempt))
        except Exception:
            continue
        finally:
            GlobalHydra.instance().clear()
    return []


def _configs(config_dir: Path, group: str = "") -> list[str]:
    folder = config_dir / group if group else config_dir
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


def _entry_command() -> str:
    """``python src/run_train.py`` (from the repo root; the script's full path elsewhere): this entry point."""
    from seqrec.core.paths import script_command

    return script_command(Path(sys.argv[0]).resolve())


def hydra_error_message(
    exc: BaseException, config_dir: Path, config_name: str, overrides: list[str], kind: str = "train"
) -> str:
    """One line for an exception Hydra raised while reading the command line or composing.

    ``kind`` (train or predict, the entry point) selects the configs suggested for a wrong
    ``--config-name``.
    """
    import difflib

    from seqrec.config.checks import suggest_key

    text = str(exc)
    m = re.search(r"Cannot find primary config '([^']*)'", text)
    if m:
        training = ("train", "prompt_tune")  # prompt-tuning configs train too
        names = ([n for n in _configs(config_dir) if (kind == "train") == any(w in n.lower() for w in training)]
                 or _configs(config_dir))
        near = difflib.get_close_matches(m.group(1), names, n=1, cutoff=0.5)
        return (
            f"--config-name={m.group(1)}: no such config in {config_dir}"
            + (f"; did you mean --config-name={near[0]}?" if near else "")
            + f" available: {', '.join(names)}"
        )
    m = re.search(r"Could not find '([^']+)/([^'/]+)'", text)
    if m:
        group, name = m.group(1), m.group(2)
        options = _configs(config_dir, group) or re.findall(r"^\t(\S+)$", text, flags=re.M)
        near = difflib.get_close_matches(name, options, n=1, cutoff=0.5)
        return (
            f"{group}={name}: no such option in config group '{group}'"
            + (f"; did you mean {group}={near[0]}?" if near else ";")
            + f" choose one of {', '.join(options)}"
        )
    m = re.search(r"Could not override '([^']+)'", text)
    if m:
        key = m.group(1)
        given = next((o for o in overrides if o.split("=", 1)[0].lstrip("~+") == key), f"{key}=...")
        rest = [o for o in overrides if o != given]
        near = suggest_key(key, _compose_keys(config_dir, config_name, rest))
        return (
            f"unknown config key '{key}' in {given}"
            + (f"; did you mean {near}?" if near else ";")
            + f" fix the spelling ({_entry_command()} --cfg job lists every key)"
        )
    m = re.search(r"An item is already at '([^']+)'", text)
    if m:
        key = m.group(1)
        return f"+{key}: {key} already exists in the config; drop the + to change it ({key}=<value>)"
    if type(exc).__name__ == "OverrideParseException":
        bad = next((o for o in overrides if any(c in o for c in "[]{}()'\",")), None)
        return (
            f"cannot parse the command line override{f' {bad}' if bad else ''} ({one_line(text.splitlines()[0], 100)}); "
            "quote special characters, e.g. 'key=[1,2]' or key='\"a,b\"' (Hydra override grammar)"
        )
    first = text.split("Config search path:")[0]
    hydra_error = type(exc).__module__.startswith(("hydra", "omegaconf"))
    cause = exc.__cause__
    if hydra_error and cause is not None:
        first += f" ({cause})"
    if hydra_error:
        return f"{one_line(first, 220)}; check the command line ({_entry_command()} --help)"
    return f"unexpected {type(exc).__name__}: {one_line(first, 150)} (rerun with HYDRA_FULL_ERROR=1 for the traceback)"
