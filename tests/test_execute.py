"""The notebook executor: parameters through the environment, cache, failing cells (helpers.execute)."""
from __future__ import annotations

import json

import nbformat
import pytest

from helpers.execute import CACHE_KEY, NotebookExecutionError, execute_notebooks


def _notebook(path, *sources):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "nb").mkdir()
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "cohort.csv").write_text("x\n1\n")
    return tmp_path


def test_notebooks_see_the_data_and_output_folders_and_write_their_results(folder):
    nb = _notebook(folder / "nb" / "01-a.ipynb",
                   "from helpers.config import data_dir\nfrom helpers.results import save_results\n"
                   "save_results('a', {'data': data_dir().name})")
    out = folder / "out"
    [done] = execute_notebooks([nb], folder / "data", out, progress=lambda m: None)
    assert not done.cached
    assert json.loads((out / "results.json").read_text()) == {"a": {"data": "data"}}
    assert nbformat.read(out / "notebooks" / "01-a.ipynb", as_version=4).metadata[CACHE_KEY]


def test_an_unchanged_notebook_is_not_executed_again_and_a_changed_one_is(folder):
    nb = _notebook(folder / "nb" / "01-a.ipynb", "1 + 1")
    out = folder / "out"
    execute_notebooks([nb], folder / "data", out, progress=lambda m: None)
    [again] = execute_notebooks([nb], folder / "data", out, progress=lambda m: None)
    assert again.cached
    (folder / "data" / "cohort.csv").write_text("x\n2\n")
    [after_data_change] = execute_notebooks([nb], folder / "data", out, progress=lambda m: None)
    assert not after_data_change.cached


def test_notebooks_run_in_parallel_keep_every_results_section(folder):
    notebooks = [_notebook(folder / "nb" / f"0{i}-n.ipynb",
                           f"from helpers.results import save_results\nsave_results('s{i}', {i})") for i in range(1, 5)]
    execute_notebooks(notebooks, folder / "data", folder / "out", jobs=2, progress=lambda m: None)
    assert json.loads((folder / "out" / "results.json").read_text()) == {"s1": 1, "s2": 2, "s3": 3, "s4": 4}


def test_a_failing_cell_is_named_with_its_notebook_and_error(folder):
    nb = _notebook(folder / "nb" / "02-bad.ipynb", "x = 1", "raise ValueError('no such column: kps')")
    with pytest.raises(NotebookExecutionError) as info:
        execute_notebooks([nb], folder / "data", folder / "out", progress=lambda m: None)
    message = str(info.value)
    assert "02-bad.ipynb, cell 2 failed" in message and "ValueError: no such column: kps" in message
    assert not (folder / "out" / "notebooks" / "02-bad.ipynb").exists()
