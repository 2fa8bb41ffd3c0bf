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
