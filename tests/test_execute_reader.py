"""The notebook reader of warm builds (helpers.build.execute.read_notebook) against nbformat's."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from helpers.build.execute import read_notebook
from helpers.config import PROJECT_ROOT

NOTEBOOKS = sorted((PROJECT_ROOT / "notebooks").glob("*.ipynb"))


def _reference(path: Path):
    with open(path, encoding="utf-8") as handle:
        return nbformat.convert(nbformat.reader.reads(handle.read()), 4)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_project_notebooks_read_as_nbformat_reads_them(path):
    got = read_notebook(path)
    assert got == _reference(path)
    assert got.cells[0].cell_type == got["cells"][0]["cell_type"]      # attribute access, as NotebookNode


def test_executed_outputs_transient_keys_and_attachments(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.metadata["signature"] = "sha256:0"
    cell = nbformat.v4.new_code_cell("print(1)\nshow()")
    cell.metadata["trusted"] = True
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="one\ntwo\n"),
                    nbformat.v4.new_output("display_data", data={"text/markdown": "| a |\n|---|\n| 1 |\n",
                                                                 "image/svg+xml": "<svg>\n</svg>\n",
                                                                 "application/json": {"a": [1, 2]}}),
                    nbformat.v4.new_output("error", ename="E", evalue="v", traceback=["x", "y"])]
    markdown = nbformat.v4.new_markdown_cell("![a](attachment:a.png)\nText\n")
    markdown["attachments"] = {"a.png": {"image/png": "iVBORw0KGgo=\n", "text/plain": "a\nb\n"}}
    nb.cells = [cell, markdown]
    path = tmp_path / "x.ipynb"
    nbformat.write(nb, str(path))                      # multi-line text stored as lists of lines
    assert isinstance(json.loads(path.read_text())["cells"][0]["source"], list)
    got = read_notebook(path)
    assert got == _reference(path)
    assert got.cells[0].source == "print(1)\nshow()" and "trusted" not in got.cells[0].metadata
    assert "signature" not in got.metadata


def test_other_versions_are_converted_by_nbformat(tmp_path):
    v3 = {"nbformat": 3, "nbformat_minor": 0, "metadata": {"name": ""},
          "worksheets": [{"cells": [{"cell_type": "code", "input": "1 + 1", "language": "python",
                                     "outputs": [], "metadata": {}}], "metadata": {}}]}
    path = tmp_path / "v3.ipynb"
    path.write_text(json.dumps(v3), encoding="utf-8")
    got = read_notebook(path)
    assert got.nbformat == 4 and got.cells[0].source == "1 + 1"


def test_a_warm_build_does_not_import_nbformat():
    """Reading and rendering a notebook's cells needs no nbformat (its import is 0.1-0.2 s)."""
    code = ("import sys\nfrom helpers.build import render\nfrom helpers.build.execute import read_notebook\n"
            f"nb = read_notebook({str(NOTEBOOKS[0])!r})\nassert nb.cells\n"
            "print('nbformat' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
