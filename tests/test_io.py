import json

import pandas as pd
import pytest

from seqrec.core.io import (
    atomic_to_csv,
    atomic_to_csv_numeric,
    atomic_to_parquet,
    atomic_write,
    atomic_write_json,
    atomic_write_text,
    file_md5,
    file_sha256,
)


def test_atomic_write_replaces_on_success(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with atomic_write(target) as tmp:
        assert tmp.parent == tmp_path
        assert tmp != target
        tmp.write_text("new")
        assert target.read_text() == "old"  # not visible until the block ends
    assert target.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_atomic_write_keeps_old_file_when_writer_raises(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_write(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_failed_first_write_leaves_nothing(tmp_path):
    target = tmp_path / "sub" / "new.csv"
    df = pd.DataFrame({"a": [1, 2]})

    class Broken(pd.DataFrame):
        def to_csv(self, path, **kw):
            with open(path, "w") as f:
                f.write("a\n1\n")
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_to_csv(Broken(df), target)
    assert not target.exists()
    assert list((tmp_path / "sub").iterdir()) == []


def test_text_json_csv_parquet_roundtrip(tmp_path):
    assert atomic_write_text(tmp_path / "a.txt", "héllo\n").read_text(encoding="utf-8") == "héllo\n"

    obj = {"z": 1, "a": [1, 2], "m": {"k": "v"}}
    path = atomic_write_json(tmp_path / "a.json", obj)
    text = path.read_text()
    assert json.loads(text) == obj
    assert text.index('"z"') < text.index('"a"')  # keys not sorted
    assert '\n  "z": 1' in text  # indent 2

    df = pd.DataFrame({"user_id": [1, 1, 2], "item_id": [10, 11, 12], "rating": [5.0, 3.5, 1.0]})
    csv = atomic_to_csv(df, tmp_path / "a.csv")
    assert csv.read_text().splitlines()[0] == "user_id,item_id,rating"  # no index column
    pd.testing.assert_frame_equal(pd.read_csv(csv), df)

    pq = atomic_to_parquet(df, tmp_path / "a.parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(pq), df)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv", "a.json", "a.parquet", "a.txt"]


def test_checksums_stream_known_values(tmp_path):
    path = tmp_path / "x.bin"
    path.write_bytes(b"abc")
    assert file_md5(path) == "900150983cd24fb0d6963f7d28e17f72"
    assert file_sha256(path) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    big = tmp_path / "big.bin"
    big.write_bytes(b"\0" * (3 * (1 << 20) + 7))  # spans several read chunks
    import hashlib

    assert file_md5(big) == hashlib.md5(big.read_bytes()).hexdigest()
    assert file_sha256(big) == hashlib.sha256(big.read_bytes()).hexdigest()


def test_numeric_csv_fast_path_matches_pandas(tmp_path):
    df = pd.DataFrame(
        {
            "user_id": [1, 1, 2, 3],
            "item_id": [10, 11, 12, 13],
            "timestamp": [874724710, 874724710, 0, 893286638],
            "rating": [4.0, 3.5, 0.5, 1.0 / 3.0],
        }
    )
    path = atomic_to_csv_numeric(df, tmp_path / "n.csv")
    lines = path.read_text().splitlines()
    assert lines[0] == "user_id,item_id,timestamp,rating"  # header not quoted
    assert lines[1] == "1,10,874724710,4"
    back = pd.read_csv(path)
    pd.testing.assert_frame_equal(back, df)
    pd.testing.assert_frame_equal(back, pd.read_csv(atomic_to_csv(df, tmp_path / "p.csv")))
    # a text column falls back to pandas (quoting handled there)
    mixed = pd.DataFrame({"a": [1, 2], "b": ["x,y", "z"]})
    mpath = atomic_to_csv_numeric(mixed, tmp_path / "m.csv")
    assert mpath.read_text() == 'a,b\n1,"x,y"\n2,z\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.csv", "n.csv", "p.csv"]
