"""Another group's cohort of the same design: the whole supplement builds from it.

A 400-patient synthetic cohort (``helpers.data.synthetic.generate_cohort(n_total=400)``, its own seed) has
other sparse levels, other selected variables and other PH failures than the shipped one. The prose
quotes values that exist only for some cohorts (a sparse level, a selected term); this test guards
that every quoted value is produced for any cohort, so the report renders instead of stopping.
"""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
VETERAN = ROOT / "tests" / "fixtures" / "veteran"
#: Words of the default study (its disease, treatment, arms, publication) that no other study's
#: supplement may contain
DEFAULT_STUDY_WORDS = ("oesophag", "esophag", "immune checkpoint", "ICI", "CMT", "Dai", "liver metast")

pytestmark = pytest.mark.slow


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
    from helpers.build.render import MISSING_TEXT, BuildInfo, quoted_results
    from helpers.build.results import get_result

    out, summary = other_build
    results = json.loads((out / "results.json").read_text())
    paths = quoted_results(ROOT, BuildInfo.read(out))    # the prose of the parts this cohort has
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


@pytest.fixture(scope="module")
def veteran_build(tmp_path_factory):
    """R's survival::veteran (a randomised trial: cohort.csv, study.yaml, dictionary.yaml only) built
    with the command a user types."""
    import subprocess
    import sys

    data = tmp_path_factory.mktemp("veteran") / "data"
    shutil.copytree(VETERAN, data)
    out = data.parent / "_output"
    result = subprocess.run([sys.executable, "-m", "helpers.build.pipeline", "--data", str(data), "--output", str(out)],
                            cwd=ROOT, capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def test_veteran_builds(veteran_build):
    """The supplement of another study, with no PFS, response, adverse events, cycles or published
    values, renders in every format and says nothing of the default study."""
    out = veteran_build
    for name in ("report.html", "report.pdf", "report.docx"):
        assert (out / name).stat().st_size > 0, name
    html = (out / "report.html").read_text(encoding="utf-8")
    text = re.sub(r"<[^>]+>", " ", html.split("<body", 1)[1])
    text = re.sub(r"data:[^\s\"']+", " ", text)
    found = [word for word in DEFAULT_STUDY_WORDS
             if re.search(rf"\b{re.escape(word)}" if word.isupper() else re.escape(word), text,
                          0 if word.isupper() or word == "Dai" else re.I)]
    assert not found, found
    build = json.loads((out / "build.json").read_text())
    assert not {"pfs", "response", "safety", "exposure", "replication"} & set(build["parts"])
    assert "randomised" in build["parts"]
    assert not {"04-response.ipynb", "06-safety.ipynb", "08-reproduction.ipynb"} & set(build["notebooks"])
