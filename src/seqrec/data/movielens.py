"""MovieLens download, verification and conversion to the project's interaction CSV.

The prepared file has the header ``user_id,item_id,timestamp,rating`` with the
original MovieLens ids, one row per rating, rows sorted by user and then by
timestamp with a stable sort (ratings with the same timestamp keep the order of
the source file).

Sources, in the order :func:`prepare_movielens` accepts them:

* nothing: the official GroupLens zip is downloaded into a cache folder and its
  md5 checked against the value stored in :data:`DATASETS`;
* a local zip with the official layout (a re-zip is fine: its ratings member is
  read and CRC-checked instead of comparing the archive's md5);
* an extracted folder, with the ratings file in it or in a ``<name>/`` subfolder,
  optionally gzip-compressed (``u.data.gz``);
* for ML-1M, an *order-only* folder holding ``ratings_usertime_nots.tsv.gz``
  (``UserID<TAB>MovieID<TAB>Rating``, each user's rows in time order): the
  timestamp becomes the within-user rank 0, 1, 2, ...;
* the path of a ratings file itself (``u.data``, ``ratings.dat``, ``ratings.csv``,
  optionally ``.gz``).
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import io
import logging
import os
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

import numpy as np
import pandas as pd

from seqrec.core.io import file_md5, write_interaction_log
from seqrec.core.errors import UserError

LOG = logging.getLogger("seqrec.data")

GROUPLENS_BASE = "https://files.grouplens.org/datasets/movielens"
DOWNLOAD_TIMEOUT_S = 60.0
COLUMNS = ["user_id", "item_id", "timestamp", "rating"]
ORDER_ONLY_FILE = "ratings_usertime_nots.tsv"
_CHUNK = 1 << 20


# --------------------------------------------------------------------------- parsers


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if text else type(exc).__name__


def _check_int_columns(df: pd.DataFrame, columns: list[str], what: str) -> None:
    for col in columns:
        if not pd.api.types.is_integer_dtype(df[col]):
            raise ValueError(f"column {col!r} of {what} is not all integers")


class _ColumnCountError(ValueError):
    def __init__(self, found: int, expected: int, what: str):
        super().__init__(f"found {found} columns, expected {expected} ({what})")
        self.found = found


def _read_delimited(f: BinaryIO, sep: str, names: list[str], what: str) -> pd.DataFrame:
    """Read a header-less delimited table and insist on exactly ``len(names)`` integer columns."""
    try:
        df = pd.read_csv(f, sep=sep, header=None, engine="c")
    except pd.errors.EmptyDataError:
        raise ValueError("the file is empty") from None
    if df.shape[1] != len(names):
        raise _ColumnCountError(df.shape[1], len(names), what)
    df.columns = names
    _check_int_columns(df, names, what)
    return df


def parse_ml100k(f: BinaryIO) -> pd.DataFrame:
    """``u.data``: tab-separated ``user item rating timestamp``, no header."""
    return _read_delimited(f, "\t", ["user_id", "item_id", "rating", "timestamp"], "user<TAB>item<TAB>rating<TAB>timestamp")


def parse_ml1m(f: BinaryIO) -> pd.DataFrame:
    """``ratings.dat``: ``user::item::rating::timestamp``, no header.

    The two-character separator would force pandas' slow python engine, so the raw
    bytes are read once and ``::`` is replaced by a tab for the C parser.
    """
    raw = f.read().replace(b"::", b"\t")
    return _read_delimited(io.BytesIO(raw), "\t", ["user_id", "item_id", "rating", "timestamp"], "user::item::rating::timestamp")


def parse_ml20m(f: BinaryIO) -> pd.DataFrame:
    """``ratings.csv``: header ``userId,movieId,rating,timestamp``; ratings are half stars."""
    expected = ["userId", "movieId", "rating", "timestamp"]
    df = pd.read_csv(
        f,
        engine="c",
        dtype={"userId": np.int64, "movieId": np.int64, "rating": np.float64, "timestamp": np.int64},
    )
    if list(df.columns) != expected:
        raise ValueError(f"header is {','.join(map(str, df.columns))}, expected {','.join(expected)}")
    return df.rename(columns={"userId": "user_id", "movieId": "item_id"})


def parse_order_only(f: BinaryIO) -> pd.DataFrame:
    """Order-only log: ``UserID<TAB>MovieID<TAB>Rating``, each user's rows oldest first, no timestamps."""
    return _read_delimited(f, "\t", ["user_id", "item_id", "rating"], "user<TAB>item<TAB>rating")


# --------------------------------------------------------------------------- item tables (genres, year)
#: ML-100k's 19 genre flags in u.item, in the order of its u.genre
ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama", "Fantasy",
    "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
)
ITEM_COLUMNS = ["item_id", "genres", "year"]


def _year_from_title(titles: pd.Series) -> pd.Series:
    """``Toy Story (1995)`` -> 1995 (nullable ints; a title without a year gives <NA>)."""
    return pd.to_numeric(titles.str.extract(r"\((\d{4})\)\s*$")[0], errors="coerce").astype("Int64")


def parse_ml1m_movies(f: BinaryIO) -> pd.DataFrame:
    """``movies.dat``: ``MovieID::Title (Year)::Genre|Genre``, Latin-1, no header."""
    rows = [line.split("::") for line in f.read().decode("latin-1").splitlines() if line.strip()]
    bad = next((r for r in rows if len(r) != 3), None)
    if bad is not None:
        raise _ColumnCountError(len(bad), 3, "MovieID::Title::Genres")
    table = pd.DataFrame(rows, columns=["item_id", "title", "genres"])
    table["item_id"] = pd.to_numeric(table["item_id"], errors="raise").astype(np.int64)
    table["year"] = _year_from_title(table["title"])
    return table[ITEM_COLUMNS]


def parse_ml100k_items(f: BinaryIO) -> pd.DataFrame:
    """``u.item``: ``id|title|release date|video release date|IMDb URL|`` + 19 genre flags, Latin-1, no header."""
    names = ["item_id", "title", "release", "video", "url", *ML100K_GENRES]
    raw = io.BytesIO(f.read().decode("latin-1").encode("utf-8"))
    table = pd.read_csv(raw, sep="|", header=None, names=names, dtype=str, keep_default_na=False)
    if not table[list(ML100K_GENRES)].isin(["0", "1"]).all().all():
        raise ValueError("genre flags are not 0/1")
    flags = table[list(ML100K_GENRES)].to_numpy() == "1"
    table["genres"] = ["|".join(g for g, on in zip(ML100K_GENRES, row) if on) for row in flags]
    table["item_id"] = pd.to_numeric(table["item_id"], errors="raise").astype(np.int64)
    table["year"] = pd.to_numeric(table["release"].str[-4:], errors="coerce").astype("Int64")
    return table[ITEM_COLUMNS]


def parse_ml20m_movies(f: BinaryIO) -> pd.DataFrame:
    """``movies.csv``: header ``movieId,title,genres``; ``(no genres listed)`` is no genre."""
    table = pd.read_csv(f, dtype=str, keep_default_na=False).rename(columns={"movieId": "item_id"})
    table["item_id"] = pd.to_numeric(table["item_id"], errors="raise").astype(np.int64)
    table["genres"] = table["genres"].replace("(no genres listed)", "")
    table["year"] = _year_from_title(table["title"].str.strip())
    return table[ITEM_COLUMNS]


# --------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class MovieLensSpec:
    """One MovieLens release: where it comes from, how to check it and how to read it."""

    name: str
    url: str
    md5: str  # md5 of the official zip, as published by GroupLens
    ratings_member: str  # the ratings file's path inside the official zip
    parser: Callable[[BinaryIO], pd.DataFrame]
    format_hint: str
    n_users: int
    n_items: int
    n_interactions: int
    order_only_file: str | None = None  # a derived, timestamp-less log this release may come as
    items_file: str | None = None  # the item table (genres, title with year) beside the ratings
    items_parser: Callable[[BinaryIO], pd.DataFrame] | None = None

    @property
    def ratings_file(self) -> str:
        return self.ratings_member.rsplit("/", 1)[-1]


DATASETS: dict[str, MovieLensSpec] = {
    spec.name: spec
    for spec in (
        MovieLensSpec(
            name="ml-100k",
            url=f"{GROUPLENS_BASE}/ml-100k.zip",
            md5="0e33842e24a9c977be4e0107933c0723",
            ratings_member="ml-100k/u.data",
            parser=parse_ml100k,
            format_hint="tab-separated user item rating timestamp",
            n_users=943,
            n_items=1682,
            n_interactions=100_000,
            items_file="u.item",
            items_parser=parse_ml100k_items,
        ),
        MovieLensSpec(
            name="ml-1m",
            url=f"{GROUPLENS_BASE}/ml-1m.zip",
            md5="c4d9eecfca2ab87c1945afe126590906",
            ratings_member="ml-1m/ratings.dat",
            parser=parse_ml1m,
            format_hint="user::item::rating::timestamp",
            n_users=6040,
            n_items=3706,
            n_interactions=1_000_209,
            order_only_file=ORDER_ONLY_FILE,
            items_file="movies.dat",
            items_parser=parse_ml1m_movies,
        ),
        MovieLensSpec(
            name="ml-20m",
            url=f"{GROUPLENS_BASE}/ml-20m.zip",
            md5="cd245b17a1ae2cc31bb14903e1204af3",
            ratings_member="ml-20m/ratings.csv",
            parser=parse_ml20m,
            format_hint="CSV with header userId,movieId,rating,timestamp",
            n_users=138_493,
            n_items=26_744,
            n_interactions=20_000_263,
            items_file="movies.csv",
            items_parser=parse_ml20m_movies,
        ),
    )
}


def get_spec(name: str) -> MovieLensSpec:
    """The registry entry for ``name``; a :class:`UserError` naming the allowed names otherwise."""
    try:
        return DATASETS[name]
    except (KeyError, TypeError):
        allowed = ", ".join(DATASETS)
        raise UserError(f"unknown dataset {name!r}; choose one of: {allowed}") from None


# --------------------------------------------------------------------------- locating a source


@dataclass(frozen=True)
class _Found:
    """A located ratings file: loose (``path``) or a zip member (``zip_path`` + ``member``)."""

    label: str
    order_only: bool
    path: Path | None = None
    zip_path: Path | None = None
    member: str | None = None

    @contextmanager
    def open(self) -> Iterator[BinaryIO]:
        if self.zip_path is not None:
            with zipfile.ZipFile(self.zip_path) as zf, zf.open(self.member) as raw:
                if self.member.endswith(".gz"):
                    with gzip.GzipFile(fileobj=raw) as g:
                        yield g
                else:
                    yield raw
        elif self.path.name.endswith(".gz"):
            with gzip.open(self.path, "rb") as g:
                yield g
        else:
            with open(self.path, "rb") as f:
                yield f


def _strip_gz(name: str) -> str:
    return name[:-3] if name.endswith(".gz") else name


def _find_in_zip(spec: MovieLensSpec, zip_path: Path) -> _Found:
    try:
        with zipfile.ZipFile(zip_path) as zf:
            names = [n for n in zf.namelist() if not n.endswith("/")]
    except (zipfile.BadZipFile, OSError) as exc:
        raise UserError(f"cannot open zip {zip_path}: {_one_line(exc)}; pass a valid {spec.name}.zip or the extracted folder") from None

    def pick(filename: str) -> str | None:
        if filename == spec.ratings_file and spec.ratings_member in names:
            return spec.ratings_member
        hits = [n for n in names if _strip_gz(n.rsplit("/", 1)[-1]) == filename]
        return min(hits, key=lambda n: (n.count("/"), n.endswith(".gz"), n)) if hits else None

    member = pick(spec.ratings_file)
    order_only = False
    if member is None and spec.order_only_file:
        member, order_only = pick(spec.order_only_file), True
    if member is None:
        wanted = spec.ratings_file + (f" or {spec.order_only_file}" if spec.order_only_file else "")
        raise UserError(
            f"zip {zip_path} has no {wanted} (optionally .gz) in any folder; pass the official {spec.name}.zip or the extracted folder"
        )
    return _Found(label=f"{zip_path}:{member}", order_only=order_only, zip_path=zip_path, member=member)


def _find_in_folder(spec: MovieLensSpec, folder: Path) -> _Found:
    looked: list[Path] = []

    def first(filename: str) -> Path | None:
        for base in (folder, folder / spec.name):
            for cand in (base / filename, base / f"{filename}.gz"):
                looked.append(cand)
                if cand.is_file():
                    return cand
        return None

    ratings = first(spec.ratings_file)
    if ratings is not None:
        return _Found(label=str(ratings), order_only=False, path=ratings)
    archive = folder / f"{spec.name}.zip"
    looked.append(archive)
    if archive.is_file():
        return _find_in_zip(spec, archive)
    if spec.order_only_file:
        ordered = first(spec.order_only_file)
        if ordered is not None:
            return _Found(label=str(ordered), order_only=True, path=ordered)
    names = ", ".join(str(p.relative_to(folder)) for p in looked)
    raise UserError(
        f"no {spec.name} ratings file in folder {folder}; pass the folder that holds it, the zip, or the file itself "
        f"(looked for {names})"
    )


def _locate(spec: MovieLensSpec, source: Path) -> _Found:
    source = source.expanduser()
    if not source.exists():
        raise UserError(
            f"source {source} does not exist; pass an existing {spec.name}.zip, extracted folder or ratings file, "
            f"or omit --source to download from GroupLens"
        )
    if source.is_dir():
        return _find_in_folder(spec, source)
    if source.suffix.lower() == ".zip" and not zipfile.is_zipfile(source):
        raise UserError(
            f"{source} is not a readable zip archive (truncated or corrupt download?); download {spec.name}.zip "
            "again, or pass the extracted folder or ratings file as --source"
        )
    if zipfile.is_zipfile(source):
        found = _find_in_zip(spec, source)
        got = file_md5(source)
        if got == spec.md5:
            LOG.info("%s: md5 matches the official %s.zip", source, spec.name)
        else:
            LOG.info("%s: md5 %s is not the official %s (a re-zip?); reading its %s member instead", source, got, spec.md5, found.member)
        return found
    order_only = spec.order_only_file is not None and _strip_gz(source.name) == spec.order_only_file
    return _Found(label=str(source), order_only=order_only, path=source)


# --------------------------------------------------------------------------- download


def default_cache_dir() -> Path:
    """``$SEQREC_CACHE/movielens`` if ``SEQREC_CACHE`` is set, else ``~/.cache/seqrec/movielens``."""
    env = os.environ.get("SEQREC_CACHE")
    root = Path(env).expanduser() if env else Path.home() / ".cache" / "seqrec"
    return root / "movielens"


def _archive_url(spec: MovieLensSpec, mirror: str | None) -> str:
    if not mirror:
        return spec.url
    base = str(mirror)
    if "://" not in base:  # a plain local folder works as a mirror too
        base = Path(base).expanduser().resolve().as_uri()
    return f"{base.rstrip('/')}/{spec.name}.zip"


def _fetch(url: str, dest: Path, expected_md5: str, name: str) -> None:
    """Stream ``url`` into ``dest`` (a temporary file) and check its size and md5."""
    from tqdm.auto import tqdm

    retry = f"retry, or download {name}.zip yourself and pass --source PATH"
    request = urllib.request.Request(url, headers={"User-Agent": "seqrec-prepare-data"})
    try:
        with urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT_S) as resp, open(dest, "wb") as out:
            length = resp.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            digest = hashlib.md5()
            size = 0
            with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=f"{name}.zip", leave=False) as bar:
                while chunk := resp.read(_CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
                    bar.update(len(chunk))
    except urllib.error.HTTPError as exc:
        raise UserError(f"download of {url} failed: HTTP {exc.code} {exc.reason}; check --mirror, or pass --source PATH to a local copy") from None
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        raise UserError(f"download of {url} failed ({_one_line(reason)}); check the network and {retry}") from None
    except ValueError as exc:  # malformed URL, e.g. a bad --mirror
        raise UserError(f"cannot download {url!r}: {_one_line(exc)}; pass a valid --mirror URL or --source PATH") from None
    if total is not None and size != total:
        raise UserError(f"download of {url} is incomplete: got {size} of {total} bytes; {retry}")
    got = digest.hexdigest()
    if got != expected_md5:
        raise UserError(f"checksum mismatch for {url}: expected md5 {expected_md5}, got {got}; {retry}")


def download_movielens(name: str, cache_dir: str | os.PathLike | None = None, mirror: str | None = None) -> Path:
    """Return the path of a verified ``<name>.zip`` in the cache, downloading it if needed.

    A cached archive is re-verified first; a corrupt one is deleted and downloaded
    again. A download goes to a ``.part`` file that is renamed into place only
    after its md5 matched, and is deleted on any failure.
    """
    spec = get_spec(name)
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    archive = cache / f"{spec.name}.zip"
    if archive.is_file():
        got = file_md5(archive)
        if got == spec.md5:
            LOG.info("using cached %s (md5 verified)", archive)
            return archive
        LOG.warning("cached %s is corrupt (md5 %s, expected %s); deleting it and downloading again", archive, got, spec.md5)
        archive.unlink()
    try:
        cache.mkdir(parents=True, exist_ok=True)
        fd, part_name = tempfile.mkstemp(dir=cache, prefix=f"{archive.name}.", suffix=".part")
    except OSError as exc:
        raise UserError(f"cannot write to cache folder {cache}: {_one_line(exc)}; pass --cache-dir DIR or set SEQREC_CACHE") from None
    os.close(fd)
    part = Path(part_name)
    url = _archive_url(spec, mirror)
    LOG.info("downloading %s -> %s", url, archive)
    try:
        _fetch(url, part, spec.md5, spec.name)
        os.replace(part, archive)
    finally:
        part.unlink(missing_ok=True)
    LOG.info("downloaded %s (md5 %s verified)", archive, spec.md5)
    return archive


# --------------------------------------------------------------------------- load + prepare


def _read(spec: MovieLensSpec, found: _Found) -> pd.DataFrame:
    parser = parse_order_only if found.order_only else spec.parser
    what = "order-only user<TAB>item<TAB>rating" if found.order_only else spec.format_hint
    try:
        with found.open() as f:
            df = parser(f)
    except (ValueError, OSError, EOFError, zlib.error, zipfile.BadZipFile, pd.errors.ParserError) as exc:
        hint = ""
        if spec.order_only_file and not found.order_only and getattr(exc, "found", None) == 3:
            hint = (
                f" (a log without timestamps is usable only if each user's rows are in time order "
                f"and the file is named {spec.order_only_file}[.gz])"
            )
        raise UserError(f"cannot read {found.label} as {spec.name} ratings ({what}): {_one_line(exc)}{hint}; check --source") from None
    if len(df) == 0:
        raise UserError(f"{found.label} holds no ratings; check --source")
    return df


def _finish(df: pd.DataFrame, order_only: bool) -> pd.DataFrame:
    """Add rank timestamps for order-only logs, fix column order, stable-sort by user then time."""
    if order_only:
        df["timestamp"] = df.groupby("user_id", sort=False).cumcount().astype(np.int64)
    df = df[COLUMNS]
    order = np.lexsort((df["timestamp"].to_numpy(), df["user_id"].to_numpy()))  # lexsort is stable
    return df.iloc[order].reset_index(drop=True)


def load_movielens(
    name: str,
    source: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    mirror: str | None = None,
) -> pd.DataFrame:
    """The ratings of ``name`` as a frame with columns ``user_id,item_id,timestamp,rating``.

    Rows are sorted by user, then timestamp, ties in source order. Without
    ``source`` the official zip is downloaded (see :func:`download_movielens`).
    """
    spec = get_spec(name)
    return _load_found(spec, _find_source(spec, source, cache_dir, mirror))


def _find_source(spec: MovieLensSpec, source, cache_dir, mirror) -> _Found:
    """The ratings file of ``source``, or of the downloaded official zip without one."""
    if source is None:
        return _find_in_zip(spec, download_movielens(spec.name, cache_dir=cache_dir, mirror=mirror))
    return _locate(spec, Path(source))


def _load_found(spec: MovieLensSpec, found: _Found) -> pd.DataFrame:
    """The ratings of a located file (see :func:`load_movielens`)."""
    LOG.info("reading %s as %s (%s)", found.label, spec.name, "order-only user<TAB>item<TAB>rating" if found.order_only else spec.format_hint)
    df = _finish(_read(spec, found), found.order_only)
    if found.order_only:
        LOG.warning(
            "%s: timestamps are within-user ranks (0, 1, 2, ...), not times, because the source %s is order-only; "
            "per-user order is kept but same-second ties follow that file",
            spec.name,
            found.label,
        )
    users, items = df["user_id"].nunique(), df["item_id"].nunique()
    if (users, items, len(df)) != (spec.n_users, spec.n_items, spec.n_interactions):
        LOG.warning(
            "%s: %d users, %d items, %d interactions differ from the official release (%d, %d, %d); check the source",
            spec.name, users, items, len(df), spec.n_users, spec.n_items, spec.n_interactions,
        )
    return df


def prepare_hint(path: str | os.PathLike, missing: bool = False) -> str:
    """What to do about the interaction file ``path`` that is missing (``missing``) or unreadable, in the words of
    an error line: a MovieLens release's file (``ml-100k.csv``) gets the exact ``prepare_data.py`` command that
    writes it there; a file of one's own, the format it needs."""
    import shlex

    from seqrec.core.paths import REPO_ROOT, script_command

    path = Path(path)
    name = path.name[: -len(".csv")] if path.name.endswith(".csv") else path.stem
    if name in DATASETS:
        default = path.is_absolute() and path == REPO_ROOT / "data" / f"{name}.csv"
        out = "" if default else f" --out {shlex.quote(str(path))}"
        return f"prepare it with: {script_command('scripts/prepare_data.py')} {name}{out}"
    layout = "a CSV with the header user_id,item_id,timestamp[,rating], one row per event"
    if missing:
        return f"check the path, or pass data_path=<{layout}>"
    return f"write {path.name} as {layout}"


def prepare_movielens(
    name: str,
    source: str | os.PathLike | None = None,
    out: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    mirror: str | None = None,
) -> Path:
    """Write ``name``'s ratings to ``out`` (default ``data/<name>.csv``) atomically; return ``out``.

    ``source`` may be a zip, an extracted folder, a folder of ``.gz`` members, an
    order-only ML-1M folder or a ratings file; ``None`` downloads the official zip
    into ``cache_dir`` (default :func:`default_cache_dir`) from ``mirror`` (default
    GroupLens) and checks its md5. The output is derived data and is replaced if it
    exists.
    """
    spec = get_spec(name)
    out_path = Path(out).expanduser() if out is not None else Path("data") / f"{spec.name}.csv"
    if out_path.is_dir():
        raise UserError(f"--out {out_path} is a folder; pass a file name such as {out_path / (spec.name + '.csv')}")
    found = _find_source(spec, source, cache_dir, mirror)  # once: the ratings and the item table come from it
    df = _load_found(spec, found)
    write_interaction_log(df, out_path, spec.name)
    write_item_table(spec, found, df, out_path.with_name(out_path.stem + ".items.csv"))
    return out_path


def _sibling(found: _Found, filename: str) -> _Found | None:
    """``filename`` (or ``filename.gz``) beside the located ratings file: in the same zip, or the same folder."""
    if found.zip_path is not None:
        with zipfile.ZipFile(found.zip_path) as zf:
            hits = [n for n in zf.namelist() if _strip_gz(n.rsplit("/", 1)[-1]) == filename]
        if not hits:
            return None
        member = min(hits, key=lambda n: (n.count("/"), n.endswith(".gz"), n))
        return _Found(label=f"{found.zip_path}:{member}", order_only=False, zip_path=found.zip_path, member=member)
    for cand in (found.path.parent / filename, found.path.parent / f"{filename}.gz"):
        if cand.is_file():
            return _Found(label=str(cand), order_only=False, path=cand)
    return None


def write_item_table(spec: MovieLensSpec, found: _Found, ratings: pd.DataFrame, out: Path) -> Path | None:
    """Write ``item_id,genres,year`` for the items the ratings use (features=items reads it); None when the
    source has no item file (a warning says so)."""
    where = _sibling(found, spec.items_file) if spec.items_file else None
    if where is None:
        LOG.warning("%s: no %s beside %s; no item attributes written (features=items will need an item file)",
                    spec.name, spec.items_file, found.label)
        return None
    try:
        with where.open() as f:
            table = spec.items_parser(f)
    except (ValueError, OSError, EOFError, zlib.error, zipfile.BadZipFile, pd.errors.ParserError) as exc:
        raise UserError(f"cannot read {where.label} as the {spec.name} item table: {_one_line(exc)}; check --source") from None
    used = table[table["item_id"].isin(ratings["item_id"].unique())].sort_values("item_id")
    missing = int(ratings["item_id"].nunique() - len(used))
    if missing:
        raise UserError(f"{where.label} lacks {missing} item(s) that the ratings use; check --source")
    from seqrec.core.io import atomic_to_csv

    try:
        atomic_to_csv(used, out, index=False)
    except OSError as exc:
        raise UserError(f"cannot write {out}: {' '.join(str(exc).split())}; pass a writable --out FILE") from None
    LOG.info("%s: item attributes (genres, year) of %d items -> %s", spec.name, len(used), out)
    return out
