"""Notebooks in src/notebooks run top to bottom on small data (executed, outputs checked)."""

import json
import re
from pathlib import Path

import pytest

from conftest import ROOT

nbclient = pytest.importorskip("nbclient")
nbformat = pytest.importorskip("nbformat")

NOTEBOOKS = sorted((ROOT / "src" / "notebooks").glob("*.ipynb"))


def test_notebooks_exist():
    assert NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs(path, tmp_path):
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:  # committed notebooks carry no stale outputs or errors
        assert not cell.get("outputs"), f"{path.name} has committed outputs; clear them"
    params = next(c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", []))
    default = re.search(r'^DATA_PATH = ("[^"]*")', params.source, flags=re.M)
    assert default and not default.group(1).startswith('"..'), "DATA_PATH must not depend on the working folder"
    params.source = params.source.replace(default.group(1), repr(str(tmp_path / "absent.csv")), 1)
    # run from a folder of its own, not the notebook's: no path may be relative to the working folder
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    text = json.dumps([o for c in nb.cells for o in c.get("outputs", [])])
    assert "test_ndcg@10" in text and "synthetic log" in text and '"error"' not in text


@pytest.mark.parametrize("name", ["popularity.ipynb", "BPR_MF.ipynb", "SASRec.ipynb"])
def test_notebooks_follow_leave_one_out(name, tmp_path):
    """``PROTOCOL = "leave_one_out"``: the baselines (and SASRec) on the literature's split, scored on the test users'
    last items from inputs that hold their validation items, reporting NDCG@10 and HR@10 only."""
    nb = nbformat.read(ROOT / "src" / "notebooks" / name, as_version=4)
    params = next(c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", []))
    assert re.search(r'^PROTOCOL = "long_term"', params.source, flags=re.M), "the default protocol is the paper's"
    params.source = re.sub(r'^DATA_PATH = "[^"]*"', f"DATA_PATH = {str(tmp_path / 'absent.csv')!r}", params.source,
                           flags=re.M).replace('PROTOCOL = "long_term"', 'PROTOCOL = "leave_one_out"', 1)
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    text = json.dumps([o for c in nb.cells for o in c.get("outputs", [])])
    assert "test_ndcg@10" in text and "hr@10" in text and "map@10" not in text and '"error"' not in text, text[-2000:]
