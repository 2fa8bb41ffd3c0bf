"""Atomic file writes and streaming checksums.

Every writer here writes to a temporary file in the destination's own directory
and renames it over the destination only when writing succeeded, so a crash or an
exception never leaves a half-written file behind (the old file, if any, stays
intact and the temporary file is removed).
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

_CHUNK = 1 << 20


@contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it over ``path`` on success.

    The caller writes the temporary file (by name). If the ``with`` block raises,
    the temporary file is deleted and ``path`` is left untouched. Missing parent
    folders are created.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"atomic_write: the writer removed its temporary file {tmp}")
        # mkstemp creates files with mode 0600; give the result the usual umask-based mode.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` is "no space left on device" or "disk quota exceeded"."""
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


def disk_full_message(exc: OSError, path: str | os.PathLike | None = None) -> str:
    """``no space left on device writing <path> (<free> free on <folder>)``: what a full disk gets."""
    import shutil

    target = Path(path or exc.filename or ".")
    folder = target if target.is_dir() else target.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        free = shutil.disk_usage(folder).free
        room = f"{free / 2**20:.1f} MiB free" if free >= 2**20 else f"{free / 2**10:.0f} KiB free"
    except OSError:
        room = "free space unknown"
    what = "disk quota exceeded" if getattr(exc, "errno", None) == errno.EDQUOT else "no space left on device"
    return f"{what} writing {target} ({room} on {folder})"


def folder_write_problem(folder: str | os.PathLike) -> str | None:
    """Why files cannot be written into ``folder`` (made when missing), or None when they can: ``is a file, not a
    folder``, ``cannot be made: <parent> is a file``, or ``is not writable (<reason>)`` -- found by writing (and
    removing) an empty file in it, or in the nearest folder above it that exists, which tells read-only mounts
    and permissions apart from what the mode bits say (root ignores those)."""
    target = Path(folder)
    if target.exists() and not target.is_dir():
        return "is a file, not a folder"
    probe = target
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        return f"cannot be made: {probe} is a file"
    try:
        handle, name = tempfile.mkstemp(prefix=".seqrec-write-check-", dir=probe)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        return f"is not writable ({reason})" if probe == target else f"cannot be made in {probe} ({reason})"
    os.close(handle)
    os.unlink(name)
    return None


def atomic_write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically and return ``path``."""
    with atomic_write(path) as tmp:
        tmp.write_text(text, encoding=encoding)
    return Path(path)


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as JSON (indent 2, keys in insertion order, trailing newline) atomically."""
    text = json.dumps(obj, indent=2, sort_keys=False, ensure_ascii=False) + "\n"
    return atomic_write_text(path, text)


def atomic_to_csv(df, path: str | os.PathLike, **kwargs) -> Path:
    """``df.to_csv(path, index=False, **kwargs)`` written atomically; returns ``path``."""
    kwargs.setdefault("index", False)
    with atomic_write(path) as tmp:
        df.to_csv(tmp, **kwargs)
    return Path(path)


def atomic_to_csv_numeric(df, path: str | os.PathLike) -> Path:
    """Like :func:`atomic_to_csv` (no index) but several times faster for large all-numeric frames.

    Uses pyarrow's CSV writer behind a plain (unquoted) header line. Floats are written
    in shortest round-trip form (``4.0`` appears as ``4``), so ``pd.read_csv`` gives back
    the same values. Frames with any non-numeric column fall back to pandas.
    """
    import pandas as pd

    numeric = all(pd.api.types.is_numeric_dtype(t) and not pd.api.types.is_bool_dtype(t) for t in df.dtypes)
    names = [str(c) for c in df.columns]
    plain = all(n and not any(ch in n for ch in ',"\r\n') for n in names)
    if not (numeric and plain and len(names)):
        return atomic_to_csv(df, path)
    import pyarrow as pa
    import pyarrow.csv as pacsv

    table = pa.Table.from_pandas(df, preserve_index=False)
    with atomic_write(path) as tmp, open(tmp, "wb") as f:
        f.write((",".join(names) + "\n").encode())
        pacsv.write_csv(table, f, write_options=pacsv.WriteOptions(include_header=False))
    return Path(path)


def atomic_to_parquet(df, path: str | os.PathLike, **kwargs) -> Path:
    """``df.to_parquet(path, index=False, **kwargs)`` written atomically; returns ``path``."""
    kwargs.setdefault("index", False)
    with atomic_write(path) as tmp:
        df.to_parquet(tmp, **kwargs)
    return Path(path)


def _file_digest(path: str | os.PathLike, algorithm: str) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def file_md5(path: str | os.PathLike) -> str:
    """Hex md5 of a file, read in 1 MiB chunks."""
    return _file_digest(path, "md5")


def file_sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    return _file_digest(path, "sha256")


def write_interaction_log(df, path: str | os.PathLike, name: str) -> Path:
    """Write a prepared interaction log (``user_id,item_id,timestamp,rating``) atomically and log its size.

    The one writer of ``prepare_data.py`` and ``make_synthetic.py`` outputs; a folder or an
    unwritable path is a one-line :class:`~seqrec.core.errors.UserError`.
    """
    from seqrec.core.errors import UserError

    out = Path(path)
    if out.is_dir():
        raise UserError(f"--out {out} is a folder; pass a file name such as {out / (name + '.csv')}")
    existed = out.exists()
    try:
        atomic_to_csv_numeric(df, out)
    except OSError as exc:
        raise UserError(f"cannot write {out}: {' '.join(str(exc).split())}; pass a writable --out FILE") from None
    logging.getLogger("seqrec.data").info(
        "%s: %d users, %d items, %d interactions -> %s%s", name, df["user_id"].nunique(),
        df["item_id"].nunique(), len(df), out, " (replaced)" if existed else "",
    )
    return out
