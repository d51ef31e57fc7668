"""The bad-input corpus (tests/bad_inputs): every malformed cohort fails clearly or is normalised as documented."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import warnings
from datetime import date, datetime
from pathlib import Path

import pandas as pd
import pytest

from helpers.config import PROJECT_ROOT
from helpers.data.load import CohortValidationError, UnknownColumnsWarning, _excel_text, load_study
from tests.bad_inputs import CASES, copy_default

BY_NAME = {case.name: case for case in CASES}
COMPARED = ["patient_id", "arm", "age", "kps", "sex", "os_months", "os_event", "pfs_months", "pfs_event",
            "chemo_cycles", "ici_cycles", "liver_met_max_diameter_cm"]


def _make(case, tmp_path) -> tuple[Path, int | None]:
    folder = copy_default(tmp_path / case.name)
    return folder, case.corrupt(folder)


def test_the_corpus_holds_at_least_30_malformed_cohorts_with_unique_names():
    assert len([c for c in CASES if c.expect == "error"]) >= 30
    assert len(BY_NAME) == len(CASES)
    assert {c.expect for c in CASES} == {"error", "accepted"}


@pytest.mark.slow
@pytest.mark.parametrize("case", [c for c in CASES if c.expect == "error"], ids=str)
def test_a_malformed_cohort_fails_with_a_problem_naming_file_column_rows_and_rule(case, tmp_path):
    folder, row = _make(case, tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnknownColumnsWarning)
        with pytest.raises(CohortValidationError) as info:
            load_study(folder)
    matching = [p for p in info.value.problems
                if p.file == case.file and p.column == case.column and case.rule in p.rule]
    assert matching, f"expected {case.file} / {case.column!r} / {case.rule!r}, got:\n{info.value}"
    if row is not None:
        rows = [label.split(" ")[0] for p in matching for label in p.rows]
        assert str(row) in rows, f"row {row} not named in {matching}"
    assert "Traceback" not in str(info.value)


@pytest.mark.slow
@pytest.mark.parametrize("case", [c for c in CASES if c.expect == "accepted"], ids=str)
def test_a_documented_normalisation_gives_the_same_study_as_the_clean_data(case, tmp_path, study):
    folder, _ = _make(case, tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnknownColumnsWarning)
        loaded = load_study(folder)
    compared = [c for c in COMPARED if c in loaded.patients.columns]
    assert len(compared) >= len(COMPARED) - 2
    pd.testing.assert_frame_equal(loaded.patients[compared], study.patients[compared])
    assert len(loaded.adverse_events) == len(study.adverse_events)
    if loaded.cycles is None:           # treatment_cycles is optional: no exposure counts then
        assert not loaded.has("exposure") and "chemo_cycles" not in loaded.patients.columns
    else:
        assert len(loaded.cycles) == len(study.cycles)


def test_an_unknown_column_is_ignored_with_a_named_warning_and_never_reaches_the_analysis(tmp_path):
    folder, _ = _make(BY_NAME["extra_unknown_column"], tmp_path)
    with pytest.warns(UnknownColumnsWarning, match="hospital_number"):
        loaded = load_study(folder)
    assert "hospital_number" not in loaded.patients.columns


@pytest.mark.parametrize("value,text", [
    (datetime(2014, 2, 27), "2014-02-27"),
    (date(2014, 2, 27), "2014-02-27"),
    (datetime(2014, 2, 27, 14, 30), "2014-02-27 14:30:00"),
    (65, "65"), (65.0, "65"), (4.7, "4.7"), (0.1, "0.1"), ("03/04/2020", "03/04/2020"), (None, ""),
])
def test_excel_cells_become_their_canonical_text(value, text):
    assert _excel_text(value) == text


# ----------------------------------------------------------------------------- the command line
def _snapshot(folder: Path) -> dict[str, tuple[str, int]]:
    """Every file under ``folder``: SHA-256 and modification time (ns)."""
    return {str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def previous_output(tmp_path) -> Path:
    """An output folder standing for the last good run."""
    out = tmp_path / "runs" / "_output"
    (out / "notebooks").mkdir(parents=True)
    (out / "results.json").write_text('{"previous": "good run"}\n')
    (out / "report.html").write_text("<html>previous report</html>\n")
    (out / "notebooks" / "01-cohort.ipynb").write_text("{}\n")
    return out


@pytest.mark.slow
@pytest.mark.parametrize("name,message", [
    ("wrong_arm_code", "cohort.csv, column 'arm': value not among the allowed codes"),
    ("latin1_encoding", "adverse_events.csv: is not UTF-8 text"),
    ("excel_merged_header_rows", "cohort.xlsx: the first worksheet has merged cells"),
    ("cycles_after_death", "treatment_cycles.csv, column 'cycle_date': cycle_date is after the patient's death"),
    ("study_yaml_missing", "study.yaml: file not found"),
    ("excel_formula_without_stored_value", "cohort.xlsx, column 'death_date': worksheet 'Sheet': cell E"),
])
def test_the_command_line_exits_non_zero_without_a_traceback_and_leaves_the_output_untouched(
        name, message, tmp_path, previous_output):
    folder, _ = _make(BY_NAME[name], tmp_path)
    before = _snapshot(previous_output)
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    result = subprocess.run([sys.executable, "-m", "helpers.build.pipeline", "--data", str(folder),
                             "--output", str(previous_output), "--no-render"],
                            cwd=PROJECT_ROOT, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 2
    assert result.stderr.startswith("ERROR: Invalid study data")
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert _snapshot(previous_output) == before
    assert sorted(p.name for p in previous_output.parent.iterdir()) == ["_output"]  # no staging folder left


# ----------------------------------------------------------------------------- issue 15: Excel and invisible characters
def test_a_formula_without_a_stored_value_is_refused_naming_file_sheet_column_cell_row_and_patient(tmp_path):
    folder, row = _make(BY_NAME["excel_formula_without_stored_value"], tmp_path)
    with pytest.raises(CohortValidationError) as info:
        load_study(folder)
    text = str(info.value)
    patient = pd.read_csv(PROJECT_ROOT / "data" / "cohort.csv", comment="#", dtype=str)["patient_id"][row - 1]
    assert "cohort.xlsx, column 'death_date': worksheet 'Sheet'" in text
    assert f"E{row + 1} holds a formula (=DATE(" in text and "without a stored value" in text
    assert f"(row {row} [{patient}])" in text


def test_a_formula_with_a_stored_value_is_read_with_a_warning_naming_its_rows(tmp_path):
    """openpyxl cannot store a formula's value, so the workbook's XML is edited as Excel saves it."""
    import re
    import zipfile

    folder, _ = _make(BY_NAME["excel_typed_dates_and_numbers"], tmp_path)
    path = folder / "cohort.xlsx"
    with zipfile.ZipFile(path) as archive:
        members = {info.filename: archive.read(info) for info in archive.infolist()}
    sheet = members["xl/worksheets/sheet1.xml"].decode()
    # the age of data row 1 (cell C2 or wherever 'age' is) becomes a formula whose stored value is the age
    header = pd.read_csv(PROJECT_ROOT / "data" / "cohort.csv", comment="#", dtype=str)
    from openpyxl.utils import get_column_letter

    ref = f"{get_column_letter(list(header.columns).index('age') + 1)}2"
    age = header["age"][0]
    sheet, count = re.subn(rf'<c r="{ref}"([^>]*)><v>{age}</v></c>',
                           rf'<c r="{ref}"\1><f>50+{int(age) - 50}</f><v>{age}</v></c>', sheet)
    assert count == 1
    members["xl/worksheets/sheet1.xml"] = sheet.encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    from helpers.data.load import ExcelContentWarning

    with pytest.warns(ExcelContentWarning, match=r"column 'age': formulas; the values Excel last computed .*rows 1 \["):
        loaded = load_study(folder)
    assert str(loaded.patients["age"].iloc[0]) == age


@pytest.mark.parametrize("char", ["\u200b", "\u00a0", "\ufeff", "\u00ad", "\u200f", "\u202e", "\u2060"])
@pytest.mark.parametrize("others_need_trimming", [False, True])
def test_a_code_with_an_invisible_character_is_read_as_the_code_with_a_warning_whatever_the_other_cells_hold(
        char, others_need_trimming, tmp_path):
    from helpers.data.load import InvisibleCharactersWarning
    from tests.bad_inputs import invisible_in, read_table, write_table

    folder = copy_default(tmp_path / "data")
    # a no-break space shows as a space: inside a code it is one ("C MT", refused), at its end it is trimmed
    invisible_in("cohort.csv", "arm", (5, 40), char, "end" if char == "\u00a0" else "inside")(folder)
    if others_need_trimming:       # another cell with spaces: the slow path of the reader
        frame = read_table(folder, "cohort.csv")
        frame.loc[2, "sex"] = f" {frame.loc[2, 'sex']} "
        write_table(folder, "cohort.csv", frame)
    with pytest.warns(InvisibleCharactersWarning, match=r"cohort.csv, column 'arm': .*rows 5 \[SYN-0005\], 40 \["):
        loaded = load_study(folder)
    clean = pd.read_csv(PROJECT_ROOT / "data" / "cohort.csv", comment="#", dtype=str)
    assert list(loaded.patients["arm"].astype(str)) == list(clean["arm"])


def test_an_invisible_character_in_an_excel_cell_follows_the_same_rule(tmp_path):
    from helpers.data.load import InvisibleCharactersWarning
    from tests.bad_inputs import invisible_in

    folder = copy_default(tmp_path / "data")
    invisible_in("cohort.csv", "arm", (7,), "\u200b")(folder)
    from tests.bad_inputs import read_table, write_excel

    write_excel(folder, "cohort", read_table(folder, "cohort.csv"), typed=True)
    with pytest.warns(InvisibleCharactersWarning, match=r"cohort.xlsx, column 'arm': .*rows 7 \[SYN-0007\]"):
        loaded = load_study(folder)
    assert loaded.patients["arm"].astype(str).iloc[6] in ("CMT", "CMT+ICI")


def test_the_readme_states_the_size_of_the_corpus_and_the_kinds_it_covers():
    import re

    text = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(r"makes (\d+) corrupted cohorts \((\d+) must fail, (\d+) are accepted", text)
    errors = sum(c.expect == "error" for c in CASES)
    assert found and tuple(int(g) for g in found.groups()) == (len(CASES), errors, len(CASES) - errors)
    for kind in ("Excel as the user sees it", "Characters a person cannot see"):
        assert kind in text
