"""Determinism: two builds of the same data give identical results and tables; seeds are recorded.

The first build is the session fixture ``built_output`` (rendered); the second is built here without the
cache and without rendering (rendering does not write results or tables). Running every notebook takes
a few minutes on two cores.
"""
from __future__ import annotations

import json
import re

import nbformat
import pytest
import yaml

from helpers.config import SEED
from helpers.build.execute import list_notebooks
from helpers.build.pipeline import build_report
from helpers.build.render import parse_cell_options
from tests.conftest import DATA_DIR


@pytest.fixture(scope="module")
def second_build(built_output, tmp_path_factory):
    out = tmp_path_factory.mktemp("second") / "_output"
    build_report(DATA_DIR, out, use_cache=False, render=False, progress=lambda message: None)
    return out


def _differences(a, b, path="") -> list[str]:
    """Dotted paths at which two JSON values differ (for a readable failure message)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b)) for d in _differences(a.get(k), b.get(k), f"{path}.{k}")]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in _differences(x, y, f"{path}.{i}")]
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]


def test_two_builds_write_byte_identical_results_files(built_output, second_build):
    first = (built_output / "results.json").read_bytes()
    second = (second_build / "results.json").read_bytes()
    if first != second:
        diff = _differences(json.loads(first), json.loads(second))
        pytest.fail("results.json differs between two builds:\n" + "\n".join(diff[:20]))


def _tables(notebook) -> dict[str, str]:
    """Markdown output of every labelled table cell of an executed notebook."""
    tables = {}
    for cell in notebook.cells:
        label = parse_cell_options(cell.source).get("label", "") if cell.cell_type == "code" else ""
        if label.startswith("tbl-"):
            outputs = cell.get("outputs", [])
            # the kernel may split stderr into one or several stream messages (timing): compare the text
            tables[label] = ("\n".join(o["data"]["text/markdown"] for o in outputs
                                       if "text/markdown" in o.get("data", {}))
                             + "\n--- stderr ---\n"
                             + re.sub(r"ipykernel_\d+", "ipykernel_N",  # the kernel's process id
                                      "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")))
    return tables


@pytest.mark.parametrize("path", list_notebooks(), ids=lambda p: p.name)
def test_two_builds_show_identical_tables(built_output, second_build, path):
    first = _tables(nbformat.read(built_output / "notebooks" / path.name, as_version=4))
    second = _tables(nbformat.read(second_build / "notebooks" / path.name, as_version=4))
    assert first.keys() == second.keys()
    for label in first:
        assert first[label] == second[label], f"{path.name}#{label} differs between two builds"


def test_the_seeds_of_the_cohort_and_of_every_sampling_analysis_are_recorded(built_output):
    results = json.loads((built_output / "results.json").read_text())
    generator = yaml.safe_load((DATA_DIR / "study.yaml").read_text())["generator"]
    assert results["data"]["generator"] == generator        # the synthetic cohort's seed and attempt
    assert results["sensitivity"]["config"]["seed"] == SEED  # bootstrap of the weighted analysis
    assert results["sensitivity"]["bootstrap"]["seed"] == SEED
    assert results["cox"]["choices"]["seed"] == SEED         # multiple imputation
