import dataclasses
import gzip
import hashlib
import http.server
import logging
import os
import socket
import subprocess
import sys
import threading
import zipfile
from functools import partial
from pathlib import Path

import pandas as pd
import pytest

from seqrec.data import movielens
from seqrec.data.movielens import DATASETS, load_movielens, prepare_movielens
from seqrec.core.errors import UserError

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SEQREC_SHARED_DATA", ROOT.parent / "shared" / "data"))

# A tiny ML-100k-style log: (user, item, rating, timestamp) in file order. Users are
# interleaved, timestamps are out of order and user 1 has a three-way tie at 200
# whose file order (15, 12, 13) is not the item order.
ROWS = [
    (2, 20, 3, 300),
    (1, 15, 5, 200),
    (1, 11, 4, 100),
    (2, 21, 1, 300),
    (1, 12, 3, 200),
    (3, 10, 2, 50),
    (1, 13, 2, 200),
    (2, 22, 4, 250),
]
# Sorted by user then timestamp, ties in file order: (user, item, timestamp, rating).
EXPECTED = [
    (1, 11, 100, 4),
    (1, 15, 200, 5),
    (1, 12, 200, 3),
    (1, 13, 200, 2),
    (2, 22, 250, 4),
    (2, 20, 300, 3),
    (2, 21, 300, 1),
    (3, 10, 50, 2),
]


def u_data_bytes(rows=ROWS) -> bytes:
    return "".join(f"{u}\t{i}\t{r}\t{t}\n" for u, i, r, t in rows).encode()


def ratings_dat_bytes(rows=ROWS) -> bytes:
    return "".join(f"{u}::{i}::{r}::{t}\n" for u, i, r, t in rows).encode()


def make_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def fake_100k_zip(path: Path) -> Path:
    decoy = u_data_bytes([(9, 99, 1, 1)])  # ua.base must never be read
    return make_zip(path, {"ml-100k/u.data": u_data_bytes(), "ml-100k/ua.base": decoy, "ml-100k/u.info": b"3 users\n"})


def read_rows(path: Path) -> list[tuple]:
    df = pd.read_csv(path)
    assert list(df.columns) == ["user_id", "item_id", "timestamp", "rating"]
    return list(df.itertuples(index=False, name=None))


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# --------------------------------------------------------------------------- HTTP mirror


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep test output clean
        pass

    def do_GET(self):
        if self.path.startswith("/short/"):  # announce more bytes than are sent, then hang up
            body = (Path(self.directory) / self.path.rsplit("/", 1)[-1]).read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "application/zip")
            self.send_header("Content-Length", str(len(body) + 1000))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        super().do_GET()


@pytest.fixture
def mirror(tmp_path, monkeypatch):
    """A real HTTP server on 127.0.0.1 serving a fake ml-100k.zip; yields (base_url, zip_path)."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    served = tmp_path / "served"
    served.mkdir()
    archive = fake_100k_zip(served / "ml-100k.zip")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(_Handler, directory=str(served)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", archive
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def patched_md5(monkeypatch, mirror):
    """Make the registry expect the fake zip's md5; returns that md5."""
    md5 = hashlib.md5(mirror[1].read_bytes()).hexdigest()
    monkeypatch.setitem(DATASETS, "ml-100k", dataclasses.replace(DATASETS["ml-100k"], md5=md5))
    return md5


def test_download_from_mirror_then_cache(tmp_path, mirror, patched_md5, caplog):
    caplog.set_level(logging.INFO, logger="seqrec.data")
    url, _ = mirror
    cache = tmp_path / "cache"
    out = prepare_movielens("ml-100k", out=tmp_path / "out" / "ml-100k.csv", cache_dir=cache, mirror=url)
    assert out == tmp_path / "out" / "ml-100k.csv"
    assert read_rows(out) == EXPECTED
    assert files_in(cache) == ["ml-100k.zip"]
    assert hashlib.md5((cache / "ml-100k.zip").read_bytes()).hexdigest() == patched_md5
    assert f"{url}/ml-100k.zip" in caplog.text
    assert "3 users, 8 items, 8 interactions" in caplog.text
    assert str(out) in caplog.text

    # second run: the verified cache is used, the (now broken) mirror is never asked
    caplog.clear()
    again = prepare_movielens("ml-100k", out=tmp_path / "again.csv", cache_dir=cache, mirror=url + "/missing")
    assert read_rows(again) == EXPECTED
    assert "using cached" in caplog.text


def test_corrupt_cache_is_downloaded_again(tmp_path, mirror, patched_md5, caplog):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "ml-100k.zip").write_bytes(b"not a zip")
    out = prepare_movielens("ml-100k", out=tmp_path / "o.csv", cache_dir=cache, mirror=mirror[0])
    assert read_rows(out) == EXPECTED
    assert "is corrupt" in caplog.text
    assert files_in(cache) == ["ml-100k.zip"]
    assert hashlib.md5((cache / "ml-100k.zip").read_bytes()).hexdigest() == patched_md5


def test_checksum_mismatch_leaves_nothing(tmp_path, mirror, monkeypatch):
    monkeypatch.setitem(DATASETS, "ml-100k", dataclasses.replace(DATASETS["ml-100k"], md5="0" * 32))
    real = hashlib.md5(mirror[1].read_bytes()).hexdigest()
    cache, out = tmp_path / "cache", tmp_path / "o.csv"
    with pytest.raises(UserError) as err:
        prepare_movielens("ml-100k", out=out, cache_dir=cache, mirror=mirror[0])
    msg = str(err.value)
    assert "\n" not in msg
    assert f"expected md5 {'0' * 32}, got {real}" in msg
    assert "--source" in msg
    assert files_in(cache) == []  # no .part, no archive
    assert not out.exists()


def test_incomplete_download_leaves_nothing(tmp_path, mirror, patched_md5):
    cache = tmp_path / "cache"
    with pytest.raises(UserError, match="incomplete|failed") as err:
        prepare_movielens("ml-100k", out=tmp_path / "o.csv", cache_dir=cache, mirror=mirror[0] + "/short")
    assert "--source" in str(err.value)
    assert files_in(cache) == []


def test_http_404(tmp_path, mirror, patched_md5):
    cache = tmp_path / "cache"
    with pytest.raises(UserError) as err:
        prepare_movielens("ml-100k", out=tmp_path / "o.csv", cache_dir=cache, mirror=mirror[0] + "/nothere")
    assert "HTTP 404" in str(err.value)
    assert "--source" in str(err.value)
    assert files_in(cache) == []


def test_connection_refused_suggests_source(tmp_path, monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cache = tmp_path / "cache"
    with pytest.raises(UserError) as err:
        prepare_movielens("ml-100k", out=tmp_path / "o.csv", cache_dir=cache, mirror=f"http://127.0.0.1:{port}")
    assert "failed" in str(err.value) and "--source PATH" in str(err.value)
    assert files_in(cache) == []


def test_cache_dir_from_env(tmp_path, monkeypatch):
    monkeypatch.setenv("SEQREC_CACHE", str(tmp_path / "c"))
    assert movielens.default_cache_dir() == tmp_path / "c" / "movielens"
    monkeypatch.delenv("SEQREC_CACHE")
    assert movielens.default_cache_dir() == Path.home() / ".cache" / "seqrec" / "movielens"


def test_local_folder_as_mirror(tmp_path, mirror, patched_md5):
    served = mirror[1].parent  # a plain folder path works as --mirror too
    out = prepare_movielens("ml-100k", out=tmp_path / "o.csv", cache_dir=tmp_path / "cache", mirror=str(served))
    assert read_rows(out) == EXPECTED


# --------------------------------------------------------------------------- local sources


def test_local_zip_source(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="seqrec.data")
    archive = fake_100k_zip(tmp_path / "whatever.zip")  # a re-zip: md5 differs from the official one
    out = prepare_movielens("ml-100k", source=archive, out=tmp_path / "o.csv")
    assert read_rows(out) == EXPECTED
    assert "is not the official" in caplog.text


def test_zip_without_prefix_folder(tmp_path):
    archive = make_zip(tmp_path / "flat.zip", {"u.data": u_data_bytes()})
    assert read_rows(prepare_movielens("ml-100k", source=archive, out=tmp_path / "o.csv")) == EXPECTED


def test_corrupt_zip_member_is_user_error(tmp_path):
    data = u_data_bytes() * 50
    archive = make_zip(tmp_path / "bad.zip", {"ml-100k/u.data": data})
    raw = bytearray(archive.read_bytes())
    start = raw.index(b"ml-100k/u.data") + len("ml-100k/u.data") + 20  # inside the compressed data
    raw[start] ^= 0xFF
    archive.write_bytes(bytes(raw))
    with pytest.raises(UserError) as err:
        prepare_movielens("ml-100k", source=archive, out=tmp_path / "o.csv")
    assert "cannot read" in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "o.csv").exists()


@pytest.mark.parametrize("layout", ["flat", "subfolder", "gz", "gz-subfolder"])
def test_folder_sources(tmp_path, layout):
    folder = tmp_path / "src"
    target = folder / "ml-100k" if "subfolder" in layout else folder
    target.mkdir(parents=True)
    if layout.startswith("gz"):
        (target / "u.data.gz").write_bytes(gzip.compress(u_data_bytes()))
    else:
        (target / "u.data").write_bytes(u_data_bytes())
    (target / "ua.base").write_bytes(u_data_bytes([(9, 99, 1, 1)]))
    assert read_rows(prepare_movielens("ml-100k", source=folder, out=tmp_path / "o.csv")) == EXPECTED


@pytest.mark.parametrize("name", ["u.data", "u.data.gz", "renamed.tsv"])
def test_direct_file_source(tmp_path, name):
    path = tmp_path / name
    data = u_data_bytes()
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    assert read_rows(prepare_movielens("ml-100k", source=path, out=tmp_path / "o.csv")) == EXPECTED


def test_ml1m_double_colon_zip(tmp_path):
    archive = make_zip(tmp_path / "ml-1m.zip", {"ml-1m/ratings.dat": ratings_dat_bytes(), "ml-1m/movies.dat": b"1::x::y\n"})
    df = load_movielens("ml-1m", source=archive)
    assert list(df.itertuples(index=False, name=None)) == EXPECTED
    assert all(str(t) == "int64" for t in df.dtypes)


def test_ml20m_csv_with_header(tmp_path):
    text = "userId,movieId,rating,timestamp\n" + "".join(f"{u},{i},{r - 0.5},{t}\n" for u, i, r, t in ROWS)
    folder = tmp_path / "x" / "ml-20m"
    folder.mkdir(parents=True)
    (folder / "ratings.csv").write_text(text)
    out = prepare_movielens("ml-20m", source=tmp_path / "x", out=tmp_path / "o.csv")
    assert read_rows(out) == [(u, i, t, r - 0.5) for u, i, t, r in EXPECTED]
    assert (tmp_path / "o.csv").read_text().splitlines()[1] == "1,11,100,3.5"


def test_ml20m_wrong_header(tmp_path):
    path = tmp_path / "ratings.csv"
    path.write_text("user,movie,rating,time\n1,2,3.0,4\n")
    with pytest.raises(UserError, match="expected userId,movieId,rating,timestamp"):
        load_movielens("ml-20m", source=path)


def test_order_only_source(tmp_path, caplog):
    folder = tmp_path / "ml-1m"
    folder.mkdir()
    # users interleaved on purpose: the rank is the order within each user
    rows = [(2, 50, 4), (1, 30, 5), (1, 10, 3), (2, 40, 1), (1, 20, 2)]
    text = "".join(f"{u}\t{i}\t{r}\n" for u, i, r in rows)
    (folder / "ratings_usertime_nots.tsv.gz").write_bytes(gzip.compress(text.encode()))
    (folder / "ratings_fileorder_nots.dat.gz").write_bytes(gzip.compress(b"1::10::3\n"))  # not time-ordered: ignored
    with caplog.at_level(logging.WARNING, logger="seqrec.data"):
        out = prepare_movielens("ml-1m", source=folder, out=tmp_path / "o.csv")
    assert read_rows(out) == [(1, 30, 0, 5), (1, 10, 1, 3), (1, 20, 2, 2), (2, 50, 0, 4), (2, 40, 1, 1)]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "within-user ranks" in r.getMessage()]
    assert len(warnings) == 1 and "order-only" in warnings[0].getMessage()


def test_real_timestamps_preferred_over_order_only(tmp_path, caplog):
    folder = tmp_path / "ml-1m"
    folder.mkdir()
    (folder / "ratings_usertime_nots.tsv.gz").write_bytes(gzip.compress(b"1\t99\t5\n"))
    (folder / "ratings.dat").write_bytes(ratings_dat_bytes())
    out = prepare_movielens("ml-1m", source=folder, out=tmp_path / "o.csv")
    assert read_rows(out) == EXPECTED
    assert "within-user ranks" not in caplog.text


def test_missing_and_unknown_sources(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        prepare_movielens("ml-100k", source=tmp_path / "nope", out=tmp_path / "o.csv")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UserError) as err:
        prepare_movielens("ml-1m", source=empty, out=tmp_path / "o.csv")
    msg = str(err.value)
    for looked in ("ratings.dat", "ratings.dat.gz", "ml-1m/ratings.dat", "ml-1m.zip", "ratings_usertime_nots.tsv.gz"):
        assert looked in msg
    archive = make_zip(tmp_path / "other.zip", {"ml-100k/u.item": b"x"})
    with pytest.raises(UserError, match="has no u.data"):
        prepare_movielens("ml-100k", source=archive, out=tmp_path / "o.csv")


def test_unknown_dataset_name(tmp_path):
    with pytest.raises(UserError) as err:
        prepare_movielens("ml-10m", source=tmp_path)
    assert "ml-100k, ml-1m, ml-20m" in str(err.value)


@pytest.mark.parametrize("content", [b"1\t2\t3\n4\t5\t6\n", b"1\t2\tx\t4\n", b""])
def test_malformed_ratings_are_user_errors(tmp_path, content):
    path = tmp_path / "u.data"
    path.write_bytes(content)
    with pytest.raises(UserError) as err:
        prepare_movielens("ml-100k", source=path, out=tmp_path / "o.csv")
    assert "\n" not in str(err.value)
    assert not (tmp_path / "o.csv").exists()


def test_failure_keeps_existing_output(tmp_path):
    out = tmp_path / "o.csv"
    out.write_text("old\n")
    with pytest.raises(UserError):
        prepare_movielens("ml-100k", source=tmp_path / "missing", out=out)
    assert out.read_text() == "old\n"
    prepare_movielens("ml-100k", source=fake_100k_zip(tmp_path / "z.zip"), out=out)  # derived: replaced
    assert read_rows(out) == EXPECTED
    assert files_in(tmp_path) == ["o.csv", "z.zip"]


def test_cli_bad_source(tmp_path):
    res = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "prepare_data.py"), "ml-100k", "--source", str(tmp_path / "nope"),
         "--out", str(tmp_path / "o.csv")],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )
    assert res.returncode == 1
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: source ")
    assert "Traceback" not in res.stderr and res.stdout == ""


def test_cli_success_prints_path(tmp_path):
    archive = fake_100k_zip(tmp_path / "ml-100k.zip")
    res = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "prepare_data.py"), "ml-100k", "--source", str(archive)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == str(Path("data") / "ml-100k.csv")  # default out, relative to cwd
    assert read_rows(tmp_path / "data" / "ml-100k.csv") == EXPECTED
    assert "8 interactions" in res.stderr


# --------------------------------------------------------------------------- real data (shared/)


@pytest.mark.skipif(not (SHARED / "ml-100k").is_dir(), reason=f"no shared ML-100k at {SHARED / 'ml-100k'}")
def test_real_ml100k(tmp_path):
    out = prepare_movielens("ml-100k", source=SHARED / "ml-100k", out=tmp_path / "ml-100k.csv")
    df = pd.read_csv(out)
    assert len(df) == 100_000
    assert df["user_id"].nunique() == 943 and df["item_id"].nunique() == 1682
    assert df["timestamp"].min() == 874724710 and df["timestamp"].max() == 893286638
    assert df["rating"].value_counts().to_dict() == {4: 34174, 3: 27145, 5: 21201, 2: 11370, 1: 6110}
    # sorted by user then time, ties in u.data order
    with gzip.open(SHARED / "ml-100k" / "u.data.gz", "rb") as f:
        raw = pd.read_csv(f, sep="\t", header=None, names=["user_id", "item_id", "rating", "timestamp"])
    expected = raw.sort_values(["user_id", "timestamp"], kind="stable")[["user_id", "item_id", "timestamp", "rating"]]
    pd.testing.assert_frame_equal(df, expected.reset_index(drop=True))


@pytest.mark.skipif(not (SHARED / "ml-1m").is_dir(), reason=f"no shared ML-1M at {SHARED / 'ml-1m'}")
def test_real_ml1m_order_only(tmp_path, caplog):
    src = SHARED / "ml-1m" / "ratings_usertime_nots.tsv.gz"
    with gzip.open(src, "rt") as f:
        head = [tuple(int(x) for x in next(f).split("\t")) for _ in range(5)]
    out = prepare_movielens("ml-1m", source=SHARED / "ml-1m", out=tmp_path / "ml-1m.csv")
    df = pd.read_csv(out)
    assert len(df) == 1_000_209
    assert df["user_id"].nunique() == 6040 and df["item_id"].nunique() == 3706
    assert "within-user ranks" in caplog.text
    user1 = df[df["user_id"] == 1]
    assert head[0][0] == 1
    assert list(user1[["item_id", "rating"]].head(5).itertuples(index=False, name=None)) == [(i, r) for _, i, r in head]
    assert user1["timestamp"].tolist() == list(range(len(user1)))
    assert df.groupby("user_id").size().min() == 20
