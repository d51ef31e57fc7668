"""Real-data hygiene: outputs cannot be committed by accident; real data are never labelled synthetic."""
from __future__ import annotations

import json
import subprocess
import sys

import nbformat
import pytest
import yaml

from helpers.config import PROJECT_ROOT
from helpers.build.execute import NOTEBOOK_DIR, execute_notebooks
from helpers.build.render import synthetic_notice

SCRIPT = PROJECT_ROOT / "scripts" / "check_no_outputs.py"


@pytest.mark.parametrize("path", ["_output/results.json", "_output/notebooks/03-survival.ipynb",
                                  "._output.staging/results.json", "._output.old/report.html",
                                  "_output.real/report.pdf", "notebooks/.ipynb_checkpoints/x.ipynb"])
def test_git_ignores_output_staging_and_checkpoint_folders(path):
    result = subprocess.run(["git", "check-ignore", "-q", "--no-index", path], cwd=PROJECT_ROOT)
    assert result.returncode == 0, f"{path} is not git-ignored"


def _check(*paths):
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, paths)], capture_output=True, text=True,
                          cwd=PROJECT_ROOT)


def test_the_output_check_passes_on_the_committed_notebooks():
    result = _check()
    assert result.returncode == 0, result.stderr


def _notebook_with_output(path):
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("1 + 1")
    cell.outputs = [nbformat.v4.new_output("execute_result", data={"text/plain": "2"}, execution_count=1)]
    cell.execution_count = 1
    nb.cells = [cell]
    nbformat.write(nb, path)
    return path


def test_the_output_check_refuses_a_notebook_with_outputs_and_names_it(tmp_path):
    bad = _notebook_with_output(tmp_path / "02-baseline.ipynb")
    result = _check(bad)
    assert result.returncode == 1
    assert f"{bad}: cell 1 has outputs" in result.stderr


def test_the_output_check_refuses_files_inside_an_output_folder(tmp_path):
    folder = tmp_path / "_output"
    folder.mkdir()
    (folder / "results.json").write_text("{}")
    result = _check(folder / "results.json")
    assert result.returncode == 1 and "output folder" in result.stderr


def test_the_pre_commit_hook_runs_the_output_check():
    hook = (PROJECT_ROOT / ".githooks" / "pre-commit").read_text()
    assert "scripts/check_no_outputs.py" in hook


@pytest.mark.slow
def test_data_marked_non_synthetic_give_results_and_a_report_without_the_synthetic_notice(data_copy, tmp_path):
    config = yaml.safe_load((data_copy / "study.yaml").read_text())
    config.update(synthetic=False, title="Hospital cohort")
    (data_copy / "study.yaml").write_text(yaml.safe_dump(config))
    out = tmp_path / "_output"
    execute_notebooks([NOTEBOOK_DIR / "01-cohort.ipynb"], data_copy, out, use_cache=False,
                      progress=lambda message: None)
    results = json.loads((out / "results.json").read_text())
    assert results["data"]["synthetic"] is False
    assert synthetic_notice(results, PROJECT_ROOT) == ""
    executed = nbformat.read(out / "notebooks" / "01-cohort.ipynb", as_version=4)
    shown = "\n".join(o.get("data", {}).get("text/markdown", "") for c in executed.cells for o in c.get("outputs", []))
    assert "Synthetic data" not in shown
