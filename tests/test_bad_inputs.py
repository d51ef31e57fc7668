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
