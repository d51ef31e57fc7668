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
    assert set(study.sources) == {"cohort.csv", "adverse_events.csv", "treatment_cycles.csv", "study.yaml",
                                  "dictionary.yaml", "analysis.yaml", "published.yaml"}


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


# ----------------------------------------------------------------------------- study.yaml
def test_the_study_configuration_names_the_arms_the_reference_first(study):
    config = study.config
    assert config.arm_order == ("CMT", "CMT+ICI") and study.arms == ["CMT", "CMT+ICI"]
    assert config.reference_arm == "CMT" and config.experimental_arm == "CMT+ICI"
    assert config.arm_label("CMT+ICI") == "CMT + ICI"
    assert config.arm_description("CMT") == "chemotherapy alone"
    assert config.design == "observational" and config.randomised is False
    assert config.missing_values == ("",) and config.setting and config.title


def _edit_study(folder, edit):
    path = folder / "study.yaml"
    path.write_text(edit(path.read_text(encoding="utf-8")), encoding="utf-8")


def test_the_old_arm_keys_are_refused_with_the_new_key_named(data_copy):
    _edit_study(data_copy, lambda t: t + "reference_arm: CMT\n")
    message = str(_problems(data_copy))
    assert "study.yaml, column 'reference_arm'" in message and "under 'arms'" in message


def test_a_randomised_design_is_read(data_copy):
    _edit_study(data_copy, lambda t: t.replace("design: observational", "design: randomised"))
    assert load_study(data_copy).config.randomised is True


def test_the_arm_order_of_study_yaml_orders_the_arm_categories(data_copy):
    def swap(text):
        first, second = text.index("- code: CMT\n"), text.index("- code: CMT+ICI")
        end = text.index("missing_values")
        return text[:first] + text[second:end] + text[first:second] + text[end:]
    _edit_study(data_copy, swap)
    loaded = load_study(data_copy)
    assert loaded.config.reference_arm == "CMT+ICI"
    assert list(loaded.patients["arm"].cat.categories) == ["CMT+ICI", "CMT"]


def test_cells_listed_as_missing_values_are_empty(data_copy):
    edit_csv(data_copy / "cohort.csv", lambda f: f.assign(death_date=f["death_date"].replace("", "NA")))
    assert "not a valid date" in str(_problems(data_copy))
    _edit_study(data_copy, lambda t: t.replace("missing_values:\n- ''\n", "missing_values: ['', NA]\n"))
    loaded = load_study(data_copy)
    assert loaded.patients["os_event"].sum() == load_study().patients["os_event"].sum()


# ----------------------------------------------------------------------------- optional parts
def test_every_part_of_the_default_study_is_present(study):
    assert study.parts == {"pfs": True, "response": True, "safety": True, "exposure": True, "replication": True}
    # the synthetic cohort records the last tumour assessment: PFS is censored there (the loader's rule)
    assert study.published is not None and study.pfs_censoring == "last_assessment"


def test_without_optional_files_and_columns_the_parts_are_absent(data_copy):
    (data_copy / "adverse_events.csv").unlink()
    (data_copy / "treatment_cycles.csv").unlink()
    edit_csv(data_copy / "cohort.csv", lambda f: f.drop(columns=["progression_date", "best_response"]))
    loaded = load_study(data_copy)
    assert loaded.adverse_events is None and loaded.ae_worst is None and loaded.cycles is None
    assert loaded.parts == {"pfs": False, "response": False, "safety": False, "exposure": False,
                            "replication": False}
    assert loaded.pfs_censoring is None
    assert not {"pfs_months", "pfs_event", "chemo_cycles", "ici_cycles"} & set(loaded.patients.columns)
    assert loaded.patients["os_months"].tolist() == load_study().patients["os_months"].tolist()


def test_published_yaml_in_the_data_folder_switches_replication_on(data_copy, study):
    import shutil
    shutil.copy(study.folder / "published.yaml", data_copy / "published.yaml")
    loaded = load_study(data_copy)
    assert loaded.has("replication") and loaded.published == study.published


def test_an_unknown_part_is_an_error(study):
    with pytest.raises(ValueError, match="part must be one of"):
        study.has("imaging")


def test_pfs_is_censored_at_the_last_assessment_when_that_column_is_present(data_copy, study):
    def add(frame):
        censored = (frame["progression_date"] == "") & (frame["death_date"] == "")
        frame["last_assessment_date"] = np.where(censored, frame["start_date"], "")
        return frame
    edit_csv(data_copy / "cohort.csv", add)
    loaded = load_study(data_copy)
    assert loaded.pfs_censoring == "last_assessment"
    censored = loaded.patients["pfs_event"] == 0
    assert censored.any() and (loaded.patients.loc[censored, "pfs_months"] == 0).all()
    assert (loaded.patients.loc[~censored, "pfs_months"] == study.patients.loc[~censored, "pfs_months"]).all()


def test_a_last_assessment_after_the_last_follow_up_is_reported(data_copy):
    edit_csv(data_copy / "cohort.csv", lambda f: f.assign(last_assessment_date=np.where(
        f.index == 2, "2025-06-30", "")))
    message = str(_problems(data_copy))
    assert "column 'last_assessment_date': last_assessment_date is after last_followup_date (row 3 [" in message


# ----------------------------------------------------------------------------- dictionary
def test_the_dictionary_is_typed_with_labels_levels_references_and_timing(study):
    d = study.dictionary
    assert d.label("sex") == "Sex" and d.label("os_months") == "Overall survival"
    assert d.levels("histology") == ["ESCC", "EAC", "Other"] and d.reference("histology") == "ESCC"
    assert d.reference("age_group") == "<= 60" and d.reference("kps_group") == ">= 70"
    assert d.level_label("sex", "Female") == "Female"
    assert d.covariates["local_therapy_liver"].timing == "post-baseline"
    assert {"ici_agent", "local_therapy_type", "chemo_cycles", "ici_cycles"} <= set(d.post_baseline())
    assert "age_group" in d.baseline() and "age" not in d.baseline() and "age" in d.baseline(grouped=False)
    assert set(d.subgroups()) == {"age_group", "sex", "kps_group", "histology", "tumor_location",
                                  "synchronous_liver_met"}


def test_categorical_columns_keep_the_dictionary_order_of_their_codes(study):
    for name in ("sex", "histology", "tumor_location", "grade_group", "kps_group"):
        assert list(study.patients[name].cat.categories) == study.dictionary.levels(name)


def test_a_dictionary_in_the_data_folder_replaces_the_default(data_copy):
    from helpers.data.load import DICTIONARY_PATH
    text = DICTIONARY_PATH.read_text(encoding="utf-8").replace("label: Sex,", "label: Gender,")
    (data_copy / "dictionary.yaml").write_text(text, encoding="utf-8")
    assert load_study(data_copy).dictionary.label("sex") == "Gender"


def test_a_grouping_by_condition_takes_the_first_level_that_applies():
    from helpers.data.contract import grouping_values, parse_dictionary
    d = parse_dictionary({"covariates": {"x": {"label": "X", "type": "continuous"}},
                          "groupings": {"g": {"source": "x", "levels": {"high": "x >= 10", "low": "x < 10"}}}})
    values = grouping_values(d.groupings["g"], pd.Series([5, 10, np.nan, 12.5]))
    assert list(pd.Series(values).astype(object).where(pd.notna(values), None)) == ["low", "high", None, "high"]
    assert list(values.categories) == ["high", "low"]


@pytest.mark.parametrize("raw,message", [
    ({"files": {}}, "old format"),
    ({"covariates": {"x": {"type": "ordinal"}}}, "type must be one of"),
    ({"covariates": {"x": {"type": "categorical", "levels": {"a": "A"}, "reference": "b"}}}, "not one of its levels"),
    ({"covariates": {"x": {"type": "categorical", "levels": {True: "Yes"}}}}, "quote it"),
    ({"covariates": {"x": {"type": "continuous", "timing": "later"}}}, "timing must be one of"),
    ({"covariates": {"arm": {"type": "continuous"}}}, "core or derived column"),
    ({"covariates": {"x": {"type": "continuous"}}, "groupings": {"g": {"source": "y", "levels": {"a": "y > 1"}}}},
     "is not a covariate"),
    ({"covariates": {"x": {"type": "continuous"}}, "groupings": {"g": {"source": "x", "levels": {"a": "x >> 1"}}}},
     "condition"),
])
def test_a_broken_dictionary_is_refused_with_its_problem_named(raw, message):
    from helpers.data.contract import DictionaryError, parse_dictionary
    with pytest.raises(DictionaryError, match=message):
        parse_dictionary(raw)


def test_a_cohort_without_the_covariates_of_a_minimal_dictionary_loads(data_copy):
    (data_copy / "dictionary.yaml").write_text("covariates:\n  age: {label: Age, type: continuous, unit: years}\n",
                                               encoding="utf-8")
    from helpers.data.load import UnknownColumnsWarning
    with pytest.warns(UnknownColumnsWarning, match="kps"):
        loaded = load_study(data_copy)
    assert "kps" not in loaded.patients.columns and not loaded.has("exposure")
    assert loaded.cycles is not None      # the file is read and checked, but no exposure is defined


# ----------------------------------------------------------------------------- plan and load once
def test_the_plan_of_a_data_folder_is_merged_over_the_project_plan(tmp_path):
    from helpers.config import load_plan
    (tmp_path / "analysis.yaml").write_text("survival:\n  rmst_horizon_months: 18\nseed: 7\n", encoding="utf-8")
    plan, project = load_plan(tmp_path), load_plan(tmp_path / "none")
    assert plan["seed"] == 7 and plan["survival"]["rmst_horizon_months"] == 18
    assert set(plan) == set(project) and plan["workers"] == project["workers"]
    plan["survival"]["x"] = 1
    assert "x" not in load_plan(tmp_path)["survival"]


def test_open_study_returns_the_cached_study_until_a_data_file_changes(data_copy, tmp_path):
    from helpers.data.load import cache_study, open_study
    out = tmp_path / "out"
    first = open_study(data_copy, out)               # no cache: validated
    path = cache_study(first, out)
    assert path.parent == out / ".cache" and path.exists()
    first.rules_checked = -1                           # marks the pickled object
    import pickle
    path.write_bytes(pickle.dumps(first))
    assert open_study(data_copy, out).rules_checked == -1
    edit_csv(data_copy / "cohort.csv", _set("age", 0, "70"))
    assert open_study(data_copy, out).rules_checked > 0  # the key changed: validated again


def test_agent_codes_read_a_missing_class_as_astype_str_does():
    from helpers.data.load import agent_codes

    for agent in (pd.Series(["ICI", None, "CMT", "ICI"], dtype="category"), pd.Series(["ICI", np.nan, "CMT", "ICI"])):
        codes, names = agent_codes(agent)
        assert [names[c] for c in codes] == list(agent.astype(str)), agent.dtype
