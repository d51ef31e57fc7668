"""``make report``: outputs on good data, nothing touched on bad data."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from helpers.config import PROJECT_ROOT
from tests.conftest import edit_csv


def test_the_report_exists_in_html_and_pdf_and_says_it_is_synthetic(built_output):
    html = (built_output / "report.html").read_text(encoding="utf-8")
    assert "synthetic" in html.lower()
    assert (built_output / "report.pdf").read_bytes()[:4] == b"%PDF"


def _run_report(data, out):
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-m", "helpers.build.pipeline", "--data", str(data), "--output", str(out)],
                          cwd=PROJECT_ROOT, capture_output=True, text=True, env=env, timeout=600)


@pytest.mark.slow
def test_bad_data_exit_non_zero_with_a_clear_message_and_leave_output_untouched(data_copy, tmp_path):
    out = tmp_path / "_output"
    out.mkdir()
    (out / "results.json").write_text('{"previous": "good run"}')
    edit_csv(data_copy / "cohort.csv", lambda f: f.assign(kps=f["kps"].where(f.index != 2, "75")))
    result = _run_report(data_copy, out)
    assert result.returncode == 2
    assert "cohort.csv, column 'kps': not a multiple of 10" in result.stderr
    assert "(row 3 [SYN-" in result.stderr
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["results.json"]
    assert (out / "results.json").read_text() == '{"previous": "good run"}'
    assert not list(tmp_path.glob(".*staging*"))


def test_every_pdf_page_and_the_html_banner_say_the_data_are_synthetic(built_output):
    from pypdf import PdfReader

    from helpers.build.render import SYNTHETIC_PAGE_MARK

    pages = PdfReader(built_output / "report.pdf").pages
    assert len(pages) > 10
    for number, page in enumerate(pages, 1):
        assert "SYNTHETIC DATA" in page.extract_text(), f"page {number} has no synthetic-data mark"
    html = (built_output / "report.html").read_text(encoding="utf-8")
    assert 'class="synthetic-banner"' in html and SYNTHETIC_PAGE_MARK.split(":")[0] in html


# --------------------------------------------------------------------------- rebuilds after a prose edit

def test_validated_data_are_recorded_and_not_validated_again_until_they_change(data_copy, tmp_path, monkeypatch):
    import helpers.data.load
    from helpers.build.pipeline import VALIDATION_NAME, validate_data

    out = tmp_path / "_output"
    out.mkdir()
    first, record, _ = validate_data(data_copy, out)
    assert (first.patients, first.synthetic) == (126, True)
    assert first.rules_checked == helpers.data.load.load_study(data_copy).rules_checked > 80
    (out / VALIDATION_NAME).write_text(json.dumps(record))

    def must_not_run(*args, **kwargs):
        raise AssertionError("load_study called although the data were validated before")

    with monkeypatch.context() as patch:
        patch.setattr(helpers.data.load, "load_study", must_not_run)
        again, _, _ = validate_data(data_copy, out)
    assert again == first
    calls = []
    real = helpers.data.load.load_study
    monkeypatch.setattr(helpers.data.load, "load_study", lambda *a, **k: calls.append(1) or real(*a, **k))
    validate_data(data_copy, out, use_record=False)  # --no-cache validates
    assert calls == [1]
    edit_csv(data_copy / "cohort.csv", lambda f: f.assign(kps=f["kps"].where(f.index != 2, "75")))
    with pytest.raises(helpers.data.load.CohortValidationError, match="not a multiple of 10"):
        validate_data(data_copy, out)


def test_the_default_settings_are_read_without_helpers_formatting_and_agree_with_it(monkeypatch):
    from helpers.report import formatting
    from helpers.build import pipeline

    monkeypatch.delenv(formatting.SUPPRESS_ENV, raising=False)
    assert pipeline.run_settings() == {"suppress_below": formatting.suppression_threshold()}
    monkeypatch.setenv(formatting.SUPPRESS_ENV, "  ")
    assert pipeline.run_settings() == {"suppress_below": formatting.suppression_threshold()}


def test_data_that_give_a_warning_are_validated_again_so_that_the_warning_is_shown_every_time(data_copy, tmp_path):
    from helpers.data.load import UnknownColumnsWarning
    from helpers.build.pipeline import validate_data

    edit_csv(data_copy / "cohort.csv", lambda f: f.assign(hospital_number="H1"))
    with pytest.warns(UnknownColumnsWarning, match="hospital_number"):
        _, record, _ = validate_data(data_copy, tmp_path)
    assert record is None


def test_a_rebuild_executes_no_notebook_and_a_changed_result_reaches_the_reproduction_and_the_report(
        built_output, tmp_path):
    """After a prose-only edit nothing is executed (08-reproduction included); when a result changes,
    08-reproduction, which reads results.json, runs again and the report shows the new value."""
    from helpers.build.pipeline import build_report

    out = tmp_path / "_output"
    shutil.copytree(built_output, out)
    summary = build_report(PROJECT_ROOT / "data", out, formats=("html",), progress=lambda m: None)
    assert [nb.path.name for nb in summary["executed"] if not nb.cached] == []
    results = json.loads((out / "results.json").read_text())
    changed = "f" * 64
    results["data"]["sha256"]["cohort.csv"] = changed
    (out / "results.json").write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    summary = build_report(PROJECT_ROOT / "data", out, formats=("html",), progress=lambda m: None)
    assert [nb.path.name for nb in summary["executed"] if not nb.cached] == ["08-reproduction.ipynb", "09-provenance.ipynb"]
    assert changed in (out / "report.html").read_text(encoding="utf-8")


# --------------------------------------------------------------------------- sections follow the data

def _nb_requiring(path, requires):
    import nbformat

    nb = nbformat.v4.new_notebook()
    if requires is not None:
        nb.metadata["supplement_requires"] = requires
    nbformat.write(nb, path)
    return path


def test_a_notebook_runs_only_when_the_study_has_the_parts_it_requires(tmp_path):
    from helpers.build.pipeline import select_notebooks

    always = _nb_requiring(tmp_path / "01-a.ipynb", None)
    response = _nb_requiring(tmp_path / "04-r.ipynb", "response")
    both = _nb_requiring(tmp_path / "08-x.ipynb", ["response", "replication"])
    run, skipped = select_notebooks([always, response, both], {"response", "observational"})
    assert run == [always, response] and skipped == {both: ("replication",)}
    run, skipped = select_notebooks([always, response, both], set())
    assert run == [always] and skipped == {response: ("response",), both: ("response", "replication")}


def test_the_parts_of_a_study_come_from_its_data_and_configuration():
    from types import SimpleNamespace

    from helpers.build.pipeline import study_parts

    study = SimpleNamespace(has=lambda part: part in {"pfs", "safety"},
                            config=SimpleNamespace(randomised=True, synthetic=False))
    assert study_parts(study) == ("pfs", "randomised", "safety")
    study.config = SimpleNamespace(design="observational", synthetic=True)
    assert study_parts(study) == ("observational", "pfs", "safety", "synthetic")


def test_the_study_section_words_the_design_and_names_the_arms_by_their_labels():
    from helpers.build.pipeline import study_section

    facts = {"title": "A trial", "setting": None, "design": "randomised", "synthetic": False, "n_total": 137,
             "arms": [{"code": "standard", "label": "Standard", "n": 69}, {"code": "test", "label": "Test", "n": 68}]}
    text = study_section(facts)["text"]
    assert text["design"] == "a randomised trial" and "at random" in text["allocation"]
    assert (text["reference_label"], text["n_reference"], text["n_experimental"]) == ("Standard", "69", "68")
    assert text["title"] == "A trial" and "not state" in text["setting"]
    assert study_section({**facts, "design": "observational"})["text"]["design"] == "an observational cohort study"


def test_a_small_study_without_optional_parts_builds_end_to_end(tmp_path):
    """One whole build kept in the fast tests: R's veteran trial (no PFS, response, adverse events,
    cycles or published values), HTML only."""
    from helpers.build.pipeline import BUILD_NAME, build_report

    data = tmp_path / "data"
    shutil.copytree(PROJECT_ROOT / "tests" / "fixtures" / "veteran", data)
    out = tmp_path / "_output"
    summary = build_report(data, out, use_cache=False, formats=("html",), progress=lambda m: None)
    build = json.loads((out / BUILD_NAME).read_text())
    assert "04-response.ipynb" not in build["notebooks"] and "08-reproduction.ipynb" not in build["notebooks"]
    assert {nb.path.name for nb in summary["executed"]} == set(build["notebooks"])
    results = json.loads((out / "results.json").read_text())
    assert "response" not in results and "reproduction" not in results
    assert results["study"]["text"]["design"] == "a randomised trial"
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "Veterans" in html and "Tumour response" not in html and "Published versus reproduced" not in html


def _executed(path, cells):
    """An executed notebook whose code cells (source, markdown output) are ``cells``."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    for source, text in cells:
        cell = nbformat.v4.new_code_cell(source)
        cell.outputs = [nbformat.v4.new_output("display_data", data={"text/markdown": text, "text/plain": "<md>"})]
        nb.cells.append(cell)
    nbformat.write(nb, path)


def test_the_build_lists_every_labelled_output_and_result_that_was_not_estimated(tmp_path):
    """Issue 15: containment. Notes that mention a count of failed replicates are not results."""
    import json

    from helpers.build.pipeline import not_estimated

    (tmp_path / "notebooks").mkdir()
    _executed(tmp_path / "notebooks" / "05-prognostic.ipynb", [
        ("#| label: tbl-ph-remedy\nshow()", "| Term | HR |\n|---|---|\n| not estimable: no events in one arm | |"),
        ("#| label: tbl-cox-univariable\nshow()", "| a | 1.2 |"),
        ("x = 1", "upper limit not estimable (beyond the last follow-up); replicates not estimable: 0, 6"),
    ])
    (tmp_path / "results.json").write_text(json.dumps({
        "cox": {"remedy": {"text": "not estimable: no events in one arm"}},
        "sensitivity": {"evalue": {"os": "not estimable: the hazard ratio was not estimable"}},
        "os": {"median": 10.8}}))
    assert not_estimated(tmp_path) == [
        "05-prognostic.ipynb, tbl-ph-remedy: not estimable: no events in one arm",
        "results.json sensitivity.evalue.os: not estimable: the hazard ratio was not estimable",
    ]


def test_strict_is_a_command_line_option_and_make_report_passes_it_with_strict_1():
    import subprocess

    from helpers.build.pipeline import NotEstimatedError, PipelineError

    assert issubclass(NotEstimatedError, PipelineError)
    assert "not estimated" in str(NotEstimatedError(["a: not estimable: x"]))
    dry = subprocess.run(["make", "-n", "report", "STRICT=1"], cwd=PROJECT_ROOT, capture_output=True, text=True)
    assert "--strict" in dry.stdout
    dry = subprocess.run(["make", "-n", "report"], cwd=PROJECT_ROOT, capture_output=True, text=True)
    assert "--strict" not in dry.stdout
