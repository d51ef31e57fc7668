"""Loader, validation and derivation (helpers.data.load)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers.data.load import CohortValidationError, DAYS_PER_MONTH, derive_endpoints, load_study, worst_grade_per_term
from tests.conftest import edit_csv


def _problems(folder):
    with pytest.raises(CohortValidationError) as info:
        load_study(folder)
    return info.value


def _set(column, row, value):
    def edit(frame):
        frame.loc[row, column] = value
        return frame
    return edit


# ----------------------------------------------------------------------------- the default data
def test_the_default_synthetic_data_load_and_say_they_are_synthetic(study):
    assert len(study.patients) == 126
    assert study.config.synthetic is True
    assert study.patients["arm"].value_counts().to_dict() == {"CMT": 87, "CMT+ICI": 39}
    assert set(study.sources) == {"cohort.csv", "adverse_events.csv", "treatment_cycles.csv", "study.yaml"}


def test_arm_categories_follow_the_study_configuration(study):
    assert list(study.patients["arm"].cat.categories) == ["CMT", "CMT+ICI"]


def test_cycle_counts_derive_from_the_cycles_table(study):
    counts = study.cycles.groupby(["patient_id", "agent_class"], observed=True).size().unstack(fill_value=0)
    merged = study.patients.set_index("patient_id")[["chemo_cycles", "ici_cycles"]]
    assert (merged["chemo_cycles"] == counts["chemotherapy"].reindex(merged.index, fill_value=0)).all()
    assert (merged["ici_cycles"] == counts["ICI"].reindex(merged.index, fill_value=0)).all()
    assert (study.patients.loc[study.patients["arm"] == "CMT", "ici_cycles"] == 0).all()


def test_every_file_is_also_accepted_as_excel(data_copy):
    for name in ("cohort", "adverse_events", "treatment_cycles"):
        lines = [ln for ln in (data_copy / f"{name}.csv").read_text().splitlines(keepends=True) if not ln.startswith("#")]
        import io
        frame = pd.read_csv(io.StringIO("".join(lines)), dtype=str, keep_default_na=False)
        frame.to_excel(data_copy / f"{name}.xlsx", index=False)
        (data_copy / f"{name}.csv").unlink()
    excel = load_study(data_copy)
    assert len(excel.patients) == 126
    assert excel.patients["os_months"].sum() == pytest.approx(load_study().patients["os_months"].sum())


# ----------------------------------------------------------------------------- derivation
def _tiny() -> pd.DataFrame:
    """Three hand-checkable patients: a death after progression, a censored one, a death without progression."""
    base = {"age": 65, "kps": 80, "differentiation": "G2", "t_stage": "T3", "n_stage": "N1"}
    rows = [
        {"patient_id": "A", "arm": "CMT", "start_date": "2020-01-01", "progression_date": "2020-04-01",
         "death_date": "2020-07-01", "last_followup_date": "2020-07-01"},
        {"patient_id": "B", "arm": "CMT+ICI", "start_date": "2020-01-01", "progression_date": None,
         "death_date": None, "last_followup_date": "2021-01-01"},
        {"patient_id": "C", "arm": "CMT+ICI", "start_date": "2020-01-01", "progression_date": None,
         "death_date": "2020-03-01", "last_followup_date": "2020-03-01"},
    ]
    frame = pd.DataFrame([{**base, **r} for r in rows])
    for column in ("start_date", "progression_date", "death_date", "last_followup_date"):
        frame[column] = pd.to_datetime(frame[column])
    return frame


def test_os_is_start_to_death_and_censored_at_last_follow_up():
    out = derive_endpoints(_tiny())
    assert out["os_event"].tolist() == [1, 0, 1]
    assert out["os_months"].tolist() == pytest.approx([182 / DAYS_PER_MONTH, 366 / DAYS_PER_MONTH, 60 / DAYS_PER_MONTH])


def test_pfs_ends_at_the_earlier_of_progression_and_death():
    out = derive_endpoints(_tiny())
    assert out["pfs_event"].tolist() == [1, 0, 1]
    assert out["pfs_months"].tolist() == pytest.approx([91 / DAYS_PER_MONTH, 366 / DAYS_PER_MONTH, 60 / DAYS_PER_MONTH])


def test_a_month_is_365_25_over_12_days():
    assert DAYS_PER_MONTH == pytest.approx(30.4375)


@pytest.mark.parametrize("age,group", [(60, "<= 60"), (61, "> 60"), (45, "<= 60")])
def test_age_is_grouped_as_in_table_1(age, group):
    frame = _tiny().assign(age=age)
    assert set(derive_endpoints(frame)["age_group"].astype(str)) == {group}


def test_worst_grade_counts_each_patient_and_term_once():
    patients = pd.DataFrame({"patient_id": ["A", "B"], "arm": pd.Categorical(["CMT", "CMT+ICI"])})
    events = pd.DataFrame({"patient_id": ["A", "A", "A", "B"], "term": ["Nausea", "Nausea", "Rash", "Nausea"],
                           "grade": [1, 3, 2, 2]})
    worst = worst_grade_per_term(events, patients)
    assert worst.set_index(["patient_id", "term"])["worst_grade"].to_dict() == {
        ("A", "Nausea"): 3, ("A", "Rash"): 2, ("B", "Nausea"): 2}


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("column,value,rule", [
    ("arm", "ICI", "allowed codes"),
    ("best_response", "nCR", "allowed codes"),
    ("age", "sixty", "not a whole number"),
    ("kps", "75", "multiple of 10"),
    ("kps", "110", "outside the allowed range"),
    ("start_date", "03/02/2020", "ISO format"),
    ("start_date", "2020-02-30", "ISO format"),
    ("sex", "", "required"),
    ("liver_met_max_diameter_cm", "3,5", "decimal mark"),
])
def test_a_bad_cell_is_reported_with_file_column_row_and_rule(data_copy, column, value, rule):
    edit_csv(data_copy / "cohort.csv", _set(column, 4, value))
    error = _problems(data_copy)
    message = str(error)
    assert "cohort.csv" in message and f"'{column}'" in message and rule in message
    assert "row 5 [" in message  # 1-based data row with its patient id


def test_duplicate_patient_ids_are_reported(data_copy):
    def dup(frame):
        frame.loc[3, "patient_id"] = frame.loc[2, "patient_id"]
        return frame
    edit_csv(data_copy / "cohort.csv", dup)
    assert "duplicate values" in str(_problems(data_copy))


def test_a_missing_column_is_named(data_copy):
    edit_csv(data_copy / "cohort.csv", lambda f: f.drop(columns=["kps"]))
    assert "column 'kps': required column is missing" in str(_problems(data_copy))


def test_an_empty_file_is_reported(data_copy):
    (data_copy / "adverse_events.csv").write_text("")
    assert "adverse_events.csv: file is empty" in str(_problems(data_copy))


def test_a_header_without_rows_is_reported(data_copy):
    (data_copy / "treatment_cycles.csv").write_text("patient_id,agent_class,cycle_date\n")
    assert "treatment_cycles.csv: file has a header but no data rows" in str(_problems(data_copy))


def _first_dead(frame):
    return frame.index[frame["death_date"] != ""][0]


@pytest.mark.parametrize("make_bad,rule", [
    (lambda f: f.assign(death_date=np.where(f.index == _first_dead(f), "2013-01-01", f["death_date"])),
     "death_date is before start_date"),
    (lambda f: f.assign(last_followup_date=np.where(f.index == 0, "2013-01-01", f["last_followup_date"])),
     "last_followup_date is before start_date"),
    (lambda f: f.assign(last_followup_date=np.where(f.index == 0, "2026-01-01", f["last_followup_date"])),
     "after the data cut-off"),
])
def test_dates_out_of_order_are_reported(data_copy, make_bad, rule):
    edit_csv(data_copy / "cohort.csv", make_bad)
    assert rule in str(_problems(data_copy))


def test_progression_after_death_is_reported(data_copy):
    def bad(frame):
        row = frame.index[(frame["death_date"] != "") & (frame["progression_date"] != "")][0]
        frame.loc[row, "progression_date"] = frame.loc[row, "death_date"]
        frame.loc[row, "death_date"] = frame.loc[row, "start_date"]
        frame.loc[row, "last_followup_date"] = frame.loc[row, "start_date"]
        return frame
    edit_csv(data_copy / "cohort.csv", bad)
    assert "progression_date is after death_date" in str(_problems(data_copy))


def test_adverse_events_of_unknown_patients_and_impossible_grades_are_reported(data_copy):
    def bad(frame):
        frame.loc[0, "patient_id"] = "NOBODY"
        frame.loc[1, "grade"] = "6"
        return frame
    edit_csv(data_copy / "adverse_events.csv", bad)
    message = str(_problems(data_copy))
    assert "adverse_events.csv, column 'patient_id': patient_id not found in the cohort file (row 1 [NOBODY])" in message
    assert "column 'grade': outside the allowed range 1 to 5" in message


def test_an_ici_cycle_for_a_chemotherapy_patient_is_reported(data_copy):
    ids = pd.read_csv(data_copy / "cohort.csv", comment="#", dtype=str)
    cmt_id = ids.loc[ids["arm"] == "CMT", "patient_id"].iloc[0]

    def bad(frame):
        row = frame.index[frame["patient_id"] == cmt_id][0]
        frame.loc[row, "agent_class"] = "ICI"
        return frame
    edit_csv(data_copy / "treatment_cycles.csv", bad)
    assert "ICI cycle given to a patient of the CMT arm" in str(_problems(data_copy))


def test_all_problems_of_all_files_come_in_one_message(data_copy):
    edit_csv(data_copy / "cohort.csv", _set("arm", 0, "X"))
    edit_csv(data_copy / "adverse_events.csv", _set("grade", 0, "0"))
    error = _problems(data_copy)
    files = {p.file for p in error.problems}
    assert files == {"cohort.csv", "adverse_events.csv"}


def test_an_ici_agent_is_required_in_the_ici_arm_and_empty_otherwise(data_copy):
    def bad(frame):
        ici = frame.index[frame["arm"] == "CMT+ICI"][0]
        cmt = frame.index[frame["arm"] == "CMT"][0]
        frame.loc[ici, "ici_agent"] = ""
        frame.loc[cmt, "ici_agent"] = "Camrelizumab"
        return frame
    edit_csv(data_copy / "cohort.csv", bad)
    message = str(_problems(data_copy))
    assert "required when arm is CMT+ICI" in message and "must be empty when arm is CMT" in message


def test_whitespace_around_codes_is_trimmed(data_copy):
    edit_csv(data_copy / "cohort.csv", lambda f: f.assign(sex=" " + f["sex"] + " "))
    assert len(load_study(data_copy).patients) == 126


def test_a_missing_study_config_is_reported(data_copy):
    (data_copy / "study.yaml").unlink()
    assert "study.yaml: file not found" in str(_problems(data_copy))
