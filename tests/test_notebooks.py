"""Every notebook executes on the default data and produces its labelled outputs and results."""
from __future__ import annotations

import json

import nbformat
import pytest

from helpers.build.execute import list_notebooks
from helpers.build.render import parse_cell_options

NOTEBOOKS = list_notebooks()


def _labels(nb) -> list[tuple[str, object]]:
    found = []
    for cell in nb.cells:
        if cell.cell_type == "code":
            label = parse_cell_options(cell.source).get("label")
            if label:
                found.append((label, cell))
    return found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_notebooks_carry_no_outputs(path):
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, f"{path.name} holds outputs: clear them"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_labelled_cell_has_an_output_and_no_cell_errors(built_output, path):
    nb = nbformat.read(built_output / "notebooks" / path.name, as_version=4)
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            assert output.get("output_type") != "error", f"{path.name}: {output.get('ename')}: {output.get('evalue')}"
    for label, cell in _labels(nb):
        if "output-if-needed" in cell.metadata.get("tags", []):
            continue        # a table these data may not call for (the report then leaves it out)
        kinds = {o.get("output_type") for o in cell.outputs}
        assert kinds & {"display_data", "execute_result"}, f"{path.name}#{label} produced no output"


def test_labels_are_unique_across_the_project():
    seen = {}
    for path in NOTEBOOKS:
        for label, _ in _labels(nbformat.read(path, as_version=4)):
            assert label not in seen, f"{label} in {path.name} and {seen.get(label)}"
            seen[label] = path.name


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_labels_carry_a_quarto_prefix_and_a_caption(path):
    for label, cell in _labels(nbformat.read(path, as_version=4)):
        options = parse_cell_options(cell.source)
        prefix = label.split("-")[0]
        assert prefix in {"tbl", "fig"}, label
        assert options.get(f"{prefix}-cap"), f"{path.name}#{label} has no {prefix}-cap"


def test_results_file_has_the_required_keys(built_output):
    results = json.loads((built_output / "results.json").read_text())
    assert results["data"]["synthetic"] is True
    assert results["data"]["n"] == 126
    assert set(results["data"]["sha256"]) >= {"cohort.csv", "adverse_events.csv", "treatment_cycles.csv"}
    for arm, n in (("CMT", 87), ("CMT+ICI", 39)):
        assert results["arms"][arm]["n"] == n
        assert {"os_events", "pfs_events"} <= set(results["arms"][arm])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_notebook_takes_its_folders_from_a_cell_tagged_parameters(path):
    """The executor inserts data_dir and output_dir after this cell (papermill's convention)."""
    nb = nbformat.read(path, as_version=4)
    tagged = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"{path.name} has {len(tagged)} cells tagged 'parameters'"
    assert "data_dir" in tagged[0].source and "output_dir" in tagged[0].source
