"""Another group's cohort of the same design: the whole supplement builds from it.

A 400-patient synthetic cohort (``helpers.data.synthetic.generate_cohort(n_total=400)``, its own seed) has
other sparse levels, other selected variables and other PH failures than the shipped one. The prose
quotes values that exist only for some cohorts (a sparse level, a selected term); this test guards
that every quoted value is produced for any cohort, so the report renders instead of stopping.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def other_build(tmp_path_factory):
    from helpers.build.pipeline import build_report
    from helpers.data.synthetic import generate_cohort, write_cohort

    data = tmp_path_factory.mktemp("other") / "data"
    data.mkdir()
    write_cohort(generate_cohort(n_total=400, seed=7), data)
    out = data.parent / "_output"
    summary = build_report(data, out, use_cache=False, render=True, progress=lambda message: None)
    return out, summary


def test_the_supplement_builds_from_another_cohort_of_the_same_design(other_build):
    out, _ = other_build
    for name in ("report.html", "report.pdf", "report.docx", "results.json"):
        assert (out / name).stat().st_size > 0, name
    results = json.loads((out / "results.json").read_text())
    assert results["data"]["n"] == 400 and results["data"]["synthetic"] is True
    assert "{{<" not in (out / "report.html").read_text(encoding="utf-8")


def test_the_prose_of_another_cohort_quotes_its_own_values(other_build):
    """Values the shipped cohort's prose quotes are produced for this cohort too, except terms this
    cohort's models did not select, which read "not estimated for this cohort" and are listed."""
    from helpers.build.render import MISSING_TEXT
    from helpers.build.results import get_result

    out, summary = other_build
    results = json.loads((out / "results.json").read_text())
    prose = [ROOT / "report.qmd", *sorted((ROOT / "sections").glob("*.qmd"))]
    paths = {m for f in prose for m in re.findall(r"\{\{< res (\S+) >\}\}", f.read_text(encoding="utf-8"))}
    missing = []
    for path in sorted(paths):
        try:
            get_result(results, path)
        except KeyError:
            missing.append(path)
    assert missing == sorted(summary["missing_values"])
    assert all(".text." in path for path in missing)
    html = (out / "report.html").read_text(encoding="utf-8")
    assert (MISSING_TEXT in html) == bool(missing)
    assert len(missing) <= 3, missing     # the generated sentences cover the cohort-specific findings
