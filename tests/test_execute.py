"""The notebook executor: parameters through the environment, cache, failing cells (helpers.build.execute)."""
from __future__ import annotations

import json

import nbformat
import pytest

from helpers.build.execute import CACHE_KEY, NotebookExecutionError, execute_notebooks


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


@pytest.mark.slow
def test_notebooks_see_the_data_and_output_folders_and_write_their_results(folder):
    nb = _notebook(folder / "nb" / "01-a.ipynb",
                   "from helpers.config import data_dir\nfrom helpers.build.results import save_results\n"
                   "save_results('a', {'data': data_dir().name})")
    out = folder / "out"
    [done] = execute_notebooks([nb], folder / "data", out, progress=lambda m: None)
    assert not done.cached
    assert json.loads((out / "results.json").read_text()) == {"a": {"data": "data"}}
    assert nbformat.read(out / "notebooks" / "01-a.ipynb", as_version=4).metadata[CACHE_KEY]


@pytest.mark.slow
def test_an_unchanged_notebook_is_not_executed_again_and_a_changed_one_is(folder):
    nb = _notebook(folder / "nb" / "01-a.ipynb", "1 + 1")
    out = folder / "out"
    execute_notebooks([nb], folder / "data", out, progress=lambda m: None)
    [again] = execute_notebooks([nb], folder / "data", out, progress=lambda m: None)
    assert again.cached
    (folder / "data" / "cohort.csv").write_text("x\n2\n")
    [after_data_change] = execute_notebooks([nb], folder / "data", out, progress=lambda m: None)
    assert not after_data_change.cached


@pytest.mark.slow
def test_notebooks_run_in_parallel_keep_every_results_section(folder):
    notebooks = [_notebook(folder / "nb" / f"0{i}-n.ipynb",
                           f"from helpers.build.results import save_results\nsave_results('s{i}', {i})") for i in range(1, 5)]
    execute_notebooks(notebooks, folder / "data", folder / "out", jobs=2, progress=lambda m: None)
    assert json.loads((folder / "out" / "results.json").read_text()) == {"s1": 1, "s2": 2, "s3": 3, "s4": 4}


def test_a_failing_cell_is_named_with_its_notebook_and_error(folder):
    nb = _notebook(folder / "nb" / "02-bad.ipynb", "x = 1", "raise ValueError('no such column: kps')")
    with pytest.raises(NotebookExecutionError) as info:
        execute_notebooks([nb], folder / "data", folder / "out", progress=lambda m: None)
    message = str(info.value)
    assert "02-bad.ipynb, cell 2 failed" in message and "ValueError: no such column: kps" in message
    assert not (folder / "out" / "notebooks" / "02-bad.ipynb").exists()


def test_a_failing_labelled_cell_is_named_with_its_label_so_the_build_names_the_table(folder):
    """An unexpected exception is a bug: the build stops naming notebook, cell, label and error (issue 15)."""
    nb = _notebook(folder / "nb" / "05-x.ipynb", "x = 1", "#| label: tbl-ph-remedy\n1 / 0")
    with pytest.raises(NotebookExecutionError) as info:
        execute_notebooks([nb], folder / "data", folder / "out", progress=lambda m: None)
    assert "05-x.ipynb, cell 2 (tbl-ph-remedy) failed" in str(info.value)
    assert "ZeroDivisionError: division by zero" in str(info.value)


def _summary_notebook(path):
    """A runs-last notebook: reads section 'a' of the results file, writes section 'summary'."""
    _notebook(path, "from helpers.build.results import load_results, save_results\n"
                    "save_results('summary', {'a': load_results()['a']})")
    nb = nbformat.read(path, as_version=4)
    nb.metadata["supplement_runs_last"] = True
    nbformat.write(nb, path)
    return path


@pytest.mark.slow
def test_the_runs_last_notebook_is_re_executed_only_when_the_results_it_reads_changed(folder):
    first = _notebook(folder / "nb" / "01-a.ipynb", "from helpers.build.results import save_results\nsave_results('a', 1)")
    last = _summary_notebook(folder / "nb" / "08-summary.ipynb")
    out = folder / "out"

    def build():
        done = execute_notebooks([first, last], folder / "data", out, progress=lambda m: None)
        return [not nb.cached for nb in done], json.loads((out / "results.json").read_text())

    assert build() == ([True, True], {"a": 1, "summary": {"a": 1}})
    # nothing changed (e.g. only the prose of the report): neither is executed again, although
    # the runs-last notebook wrote its own section into the results file after reading it
    assert build()[0] == [False, False]
    # the first notebook changed but gives the same results: the runs-last one is not re-executed
    _notebook(first, "# same result\nfrom helpers.build.results import save_results\nsave_results('a', 1)")
    assert build()[0] == [True, False]
    # a changed result: the runs-last notebook runs again and reads it
    _notebook(first, "from helpers.build.results import save_results\nsave_results('a', 2)")
    assert build() == ([True, True], {"a": 2, "summary": {"a": 2}})


def test_the_runs_last_key_covers_the_results_file_and_the_other_files_the_notebook_reads(tmp_path):
    from helpers.build.execute import RUNS_LAST_INPUTS, runs_last_inputs_digest, runs_last_key

    assert "data/published.yaml" in RUNS_LAST_INPUTS
    (tmp_path / "data").mkdir()
    published = tmp_path / "data" / "published.yaml"
    published.write_text("os: 10.8\n")
    before = runs_last_inputs_digest(tmp_path)
    published.write_text("os: 11.0\n")
    assert runs_last_inputs_digest(tmp_path) != before
    out = tmp_path / "out"
    out.mkdir()
    absent = runs_last_key("k", out, before)
    (out / "results.json").write_text('{"a": 1}\n')
    one = runs_last_key("k", out, before)
    (out / "results.json").write_text('{"a": 2}\n')
    assert len({absent, one, runs_last_key("k", out, before)}) == 3
    assert runs_last_key("k", out, before) != runs_last_key("k", out, runs_last_inputs_digest(tmp_path))


@pytest.mark.slow
def test_kernels_run_with_one_blas_thread_unless_the_environment_says_otherwise(folder, monkeypatch):
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    nb = _notebook(folder / "nb" / "01-a.ipynb",
                   "import os\nfrom helpers.build.results import save_results\n"
                   "save_results('a', {k: os.environ.get(k) for k in ('OPENBLAS_NUM_THREADS', 'OMP_NUM_THREADS')})")
    out = folder / "out"
    execute_notebooks([nb], folder / "data", out, progress=lambda m: None)
    assert json.loads((out / "results.json").read_text())["a"] == {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "3"}
    import os
    assert "OPENBLAS_NUM_THREADS" not in os.environ     # the caller's environment is restored


def test_the_folders_are_injected_after_the_parameters_cell_in_a_tagged_cell(folder):
    nb = nbformat.v4.new_notebook()
    parameters = nbformat.v4.new_code_cell("data_dir = None\noutput_dir = None")
    parameters.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_code_cell("import json"), parameters,
                nbformat.v4.new_code_cell("from helpers.build.results import save_results\n"
                                          "save_results('a', {'data': data_dir, 'output': output_dir})")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = folder / "nb" / "01-p.ipynb"
    nbformat.write(nb, path)
    out = folder / "out"
    execute_notebooks([path], folder / "data", out, progress=lambda m: None)
    assert json.loads((out / "results.json").read_text())["a"] == {
        "data": str((folder / "data").resolve()), "output": str(out.resolve())}
    executed = nbformat.read(out / "notebooks" / "01-p.ipynb", as_version=4)
    assert [c.metadata.get("tags", []) for c in executed.cells] == [[], ["parameters"], ["injected-parameters"], []]


def test_a_notebook_without_a_parameters_cell_gets_the_injected_cell_at_the_top():
    from helpers.build.execute import inject_parameters

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 1")]
    inject_parameters(nb, {"data_dir": "/d"})
    inject_parameters(nb, {"data_dir": "/e"})          # replaces the earlier injection
    assert [c.source.splitlines()[-1] for c in nb.cells] == ["data_dir = '/e'", "x = 1"]


def test_dataclasses_and_enums_enter_the_results_file_as_plain_values():
    import dataclasses
    import enum

    import pandas as pd

    from helpers.build.results import to_jsonable

    class Kind(enum.Enum):
        WALD = "wald"

    @dataclasses.dataclass(frozen=True)
    class Estimate:
        value: float
        lower: float | None = None
        method: Kind = Kind.WALD
        table: object = None

    value = to_jsonable({"hr": Estimate(float("nan"), 0.5, table=pd.DataFrame({"n": [1]})), "all": [Estimate(2.0)]})
    assert value == {"hr": {"value": None, "lower": 0.5, "method": "wald", "table": [{"n": 1}]},
                     "all": [{"value": 2.0, "lower": None, "method": "wald", "table": None}]}
