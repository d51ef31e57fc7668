"""No patient data leave the pipeline: identifiers, dates and patient-level rows are absent from every output.

The rendered HTML (embedded images removed), the PDF (text extracted with pypdf), the DOCX (its XML
parts, tags removed), results.json and the Markdown tables of the executed notebooks are scanned for
every patient identifier and every date of the input files, written in ISO and in the common other
forms. The data cut-off date is a study setting (study.yaml), not a patient's date, and is not searched.

Also here: the documented small-cell suppression (``SUPPLEMENT_SUPPRESS_BELOW``).
"""
from __future__ import annotations

import io
import json
import re
import zipfile
from datetime import date
from pathlib import Path

import nbformat
import pandas as pd
import pytest
import yaml

from helpers.report.formatting import SUPPRESS_ENV, format_n_pct, suppression_threshold
from tests.conftest import DATA_DIR

DATE_COLUMNS = {"cohort.csv": ["start_date", "progression_date", "death_date", "last_followup_date"],
                "treatment_cycles.csv": ["cycle_date"], "adverse_events.csv": []}
RAW_COLUMNS = {"patient_id", "start_date", "progression_date", "death_date", "last_followup_date", "cycle_date"}


def _read(name: str) -> pd.DataFrame:
    return pd.read_csv(DATA_DIR / name, comment="#", dtype=str, keep_default_na=False)


def date_spellings(day: date) -> set[str]:
    """A date as ISO and as people write it: 27/02/2014, 02/27/2014, 27.02.2014, 20140227, 27 Feb 2014, ..."""
    d, m, y = f"{day.day:02d}", f"{day.month:02d}", f"{day.year}"
    month, mon = day.strftime("%B"), day.strftime("%b")
    return {f"{y}-{m}-{d}", f"{d}/{m}/{y}", f"{m}/{d}/{y}", f"{d}.{m}.{y}", f"{y}/{m}/{d}", f"{y}{m}{d}",
            f"{day.day} {mon} {y}", f"{day.day} {month} {y}", f"{mon} {day.day}, {y}", f"{month} {day.day}, {y}"}


@pytest.fixture(scope="module")
def sensitive() -> dict[str, set[str]]:
    """Every patient identifier and every date spelling found in the input files (cut-off date excluded)."""
    cutoff = str(yaml.safe_load((DATA_DIR / "study.yaml").read_text())["cutoff_date"])
    ids, days = set(), set()
    for name, columns in DATE_COLUMNS.items():
        frame = _read(name)
        ids |= set(frame["patient_id"])
        for column in columns:
            days |= {v for v in frame[column] if v and v != cutoff}
    spellings = set().union(*(date_spellings(date.fromisoformat(v)) for v in days))
    return {"ids": ids, "dates": spellings}


def find_leaks(text: str, sensitive: dict[str, set[str]]) -> list[str]:
    """The identifiers and date spellings that occur in ``text`` (as whole tokens)."""
    tokens = set(re.findall(r"[A-Za-z0-9][A-Za-z0-9_\-./]*[A-Za-z0-9]", text))
    found = sorted(tokens & sensitive["ids"]) + sorted(tokens & sensitive["dates"])
    found += sorted(s for s in sensitive["dates"] if " " in s and s in text)   # "27 Feb 2014", "Feb 27, 2014"
    return found


def html_text(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    return re.sub(r"data:[\w/+.-]+;base64,[A-Za-z0-9+/=\s]+", "", text)   # embedded images


def pdf_text(path: Path) -> str:
    from pypdf import PdfReader

    return "\n".join(page.extract_text() or "" for page in PdfReader(str(path)).pages)


def docx_text(path: Path) -> str:
    with zipfile.ZipFile(path) as archive:
        parts = [archive.read(n).decode("utf-8", "replace") for n in archive.namelist() if n.endswith(".xml")]
    return re.sub(r"<[^>]+>", " ", "\n".join(parts))


def test_the_scanner_finds_an_identifier_and_a_date_in_any_common_spelling(sensitive):
    some_id = sorted(sensitive["ids"])[0]
    some_date = sorted(s for s in sensitive["dates"] if re.fullmatch(r"\d{4}-\d{2}-\d{2}", s))[0]
    day = date.fromisoformat(some_date)
    for spelling in date_spellings(day):
        assert find_leaks(f"Patient died on {spelling}.", sensitive) == [spelling]
    assert find_leaks(f"| {some_id} | 61 |", sensitive) == [some_id]
    assert find_leaks("OS 10.8 months (95% CI 8.9-12.9); 2014-2023; P = 0.004", sensitive) == []


@pytest.mark.parametrize("name,extract", [("report.html", html_text), ("report.pdf", pdf_text),
                                          ("report.docx", docx_text)])
def test_the_rendered_report_holds_no_patient_identifier_or_date(built_output, sensitive, name, extract):
    text = extract(built_output / name)
    assert len(text) > 1000, f"{name}: no text extracted"
    assert find_leaks(text, sensitive) == []


def test_the_results_file_holds_no_identifier_date_or_patient_level_row(built_output, sensitive):
    text = (built_output / "results.json").read_text(encoding="utf-8")
    assert find_leaks(text, sensitive) == []
    n_patients = len(_read("cohort.csv"))

    def walk(node, path="results"):
        if isinstance(node, dict):
            assert not RAW_COLUMNS & set(node), f"{path} has a patient-level key {RAW_COLUMNS & set(node)}"
            for key, value in node.items():
                walk(value, f"{path}.{key}")
        elif isinstance(node, list):
            records = [v for v in node if isinstance(v, dict)]
            assert len(records) < n_patients, f"{path} has {len(records)} records: one per patient?"
            for i, value in enumerate(node):
                walk(value, f"{path}.{i}")
    walk(json.loads(text))


def test_no_table_of_the_executed_notebooks_has_a_row_per_patient_or_a_patient_datum(built_output, sensitive):
    n_patients = len(_read("cohort.csv"))
    for path in sorted((built_output / "notebooks").glob("*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            for output in cell.get("outputs", []):
                table = output.get("data", {}).get("text/markdown", "") + output.get("text", "")
                assert find_leaks(table, sensitive) == [], f"{path.name}: {find_leaks(table, sensitive)}"
                rows = [line for line in table.splitlines() if line.startswith("|")]
                assert len(rows) < n_patients, f"{path.name}: a table with {len(rows)} rows"


# ----------------------------------------------------------------------------- small-cell suppression
def test_small_cells_are_shown_by_default(monkeypatch):
    monkeypatch.delenv(SUPPRESS_ENV, raising=False)
    assert suppression_threshold() == 0
    assert format_n_pct(2, 39) == "2 (5.1)"


@pytest.mark.parametrize("k,n,shown", [(1, 39, "<5"), (4, 87, "<5"), (0, 39, "0 (0.0)"), (5, 39, "5 (12.8)"),
                                       (32, 39, "32 (82.1)")])
def test_counts_below_the_threshold_are_suppressed_without_their_percentage(monkeypatch, k, n, shown):
    monkeypatch.setenv(SUPPRESS_ENV, "5")
    assert format_n_pct(k, n) == shown


@pytest.mark.parametrize("value", ["five", "-1", "2.5"])
def test_an_invalid_suppression_threshold_is_an_error_naming_the_variable(monkeypatch, value):
    monkeypatch.setenv(SUPPRESS_ENV, value)
    with pytest.raises(ValueError, match=SUPPRESS_ENV):
        format_n_pct(1, 10)


def test_suppression_reaches_the_tables_built_with_format_n_pct(monkeypatch, study):
    from helpers.report.cohort import cohort_overview_table

    monkeypatch.setenv(SUPPRESS_ENV, "1000")
    table = cohort_overview_table(study)
    cells = table.drop(columns="Characteristic").to_numpy().ravel()
    assert "<1000" in cells
    assert not any(re.fullmatch(r"[1-9]\d* \(\d+\.\d\)", str(c)) for c in cells)


def test_a_change_of_the_suppression_setting_is_recorded_for_the_cache(monkeypatch, tmp_path):
    from helpers.build.pipeline import SETTINGS_NAME, _previous_settings, run_settings

    monkeypatch.setenv(SUPPRESS_ENV, "5")
    assert run_settings() == {"suppress_below": 5}
    (tmp_path / SETTINGS_NAME).write_text(json.dumps({"suppress_below": 0}))
    assert _previous_settings(tmp_path) != run_settings()   # build_report then re-executes every notebook
