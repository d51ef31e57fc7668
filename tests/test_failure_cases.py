"""Issue 15: the inputs of public bug reports, each as a small change of the default cohort.

Each case either gives its right value (R's where one exists: tests/reference/exact_large.R) or the
behaviour the issue states: "no data" / "not estimable: <reason>" where nothing can be estimated, and
never an exception. Fast tests call the analyses directly; the tests marked slow execute the section's
notebook (as the build does) or build the supplement.
"""
from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import pandas as pd
import pytest

from helpers.config import PROJECT_ROOT, load_plan
from helpers.data.load import load_study
from tests.bad_inputs import copy_default, read_table, write_table

REF = json.loads((PROJECT_ROOT / "tests" / "reference" / "exact_large.json").read_text())
COHORT, AE, CYCLES = "cohort.csv", "adverse_events.csv", "treatment_cycles.csv"


def _cohort(tmp_path: Path, edit) -> Path:
    """A copy of the default data whose cohort is changed by ``edit(frame)`` (adverse events and cycles
    of patients it removes are removed too)."""
    folder = copy_default(tmp_path / "data")
    frame = read_table(folder, COHORT)
    frame = edit(frame) if edit else frame
    frame = frame if frame is not None else read_table(folder, COHORT)
    write_table(folder, COHORT, frame)
    kept = set(frame["patient_id"])
    for name in (AE, CYCLES):
        other = read_table(folder, name)
        write_table(folder, name, other[other["patient_id"].isin(kept)])
    return folder


def _load(folder: Path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_study(folder)


def _arms(frame):
    return frame["arm"] == "CMT", frame["arm"] == "CMT+ICI"


# ----------------------------------------------------------------------------- edits
def empty_diameter_in_experimental_arm(frame):
    frame.loc[frame["arm"] == "CMT+ICI", "liver_met_max_diameter_cm"] = ""
    return frame


def separated_binary_covariate(frame):
    reference, experimental = _arms(frame)
    frame.loc[reference, "underlying_disease"] = "Yes"
    frame.loc[experimental, "underlying_disease"] = "No"
    return frame


def pearson_p_04953(frame):
    """Sex as the 2 x 2 table (Female 28 / 6, Male 59 / 33) whose Pearson P is 0.04953."""
    reference, experimental = _arms(frame)
    frame["sex"] = "Male"
    frame.loc[frame.index[reference][:28], "sex"] = "Female"
    frame.loc[frame.index[experimental][:6], "sex"] = "Female"
    return frame


def no_death_in_experimental_arm(frame):
    frame.loc[frame["arm"] == "CMT+ICI", "death_date"] = ""
    return frame


def one_patient_in_experimental_arm(frame):
    experimental = frame.index[frame["arm"] == "CMT+ICI"]
    return frame.drop(index=experimental[1:]).reset_index(drop=True)


# ----------------------------------------------------------------------------- Table 1
def test_a_continuous_covariate_empty_in_one_arm_shows_no_data_and_has_no_test_and_no_smd(tmp_path):
    from helpers.analyses.baseline import summarise_baseline
    from helpers.report.baseline import NO_DATA, baseline_frame, baseline_note
    from helpers.stats.types import NotEstimable

    study = _load(_cohort(tmp_path, empty_diameter_in_experimental_arm))
    table = summarise_baseline(study, load_plan(study.folder)["baseline"])
    row = table.row("liver_met_max_diameter_cm")
    assert isinstance(row.test, NotEstimable) and row.test.reason == "no_data_in_arm"
    assert isinstance(row.smd, NotEstimable) and row.smd.reason == "no_data_in_arm"
    frame = baseline_frame(table)
    line = frame[frame.iloc[:, 0].astype(str).str.contains(row.label, regex=False)].iloc[0]
    assert NO_DATA in set(line.astype(str)) and line["P"] == "-" and line["SMD"] == "-"
    assert "no data in one arm" in baseline_note(table)


def test_a_binary_covariate_separated_by_arm_has_an_infinite_smd_named_as_the_largest_imbalance(tmp_path):
    from helpers.analyses.baseline import summarise_baseline
    from helpers.report.baseline import INFINITE, baseline_frame, baseline_results

    study = _load(_cohort(tmp_path, separated_binary_covariate))
    table = summarise_baseline(study, load_plan(study.folder)["baseline"])
    row = table.row("underlying_disease")
    assert math.isinf(row.smd_value)
    frame = baseline_frame(table)
    assert INFINITE in set(frame["SMD"])
    text = baseline_results(table)["text"]
    assert text["max_smd"] == INFINITE
    assert text["max_smd_variable"] == row.label[:1].lower() + row.label[1:]      # inside a sentence
    assert row.label in text["smd_above_01_variables"]


def test_a_pearson_p_of_0_04953_is_not_printed_as_0_050(tmp_path):
    """R: chisq.test(rbind(c(28, 6), c(59, 33)), correct = FALSE)$p.value = 0.0495336."""
    from helpers.analyses.baseline import summarise_baseline
    from helpers.report.baseline import baseline_frame, baseline_results

    study = _load(_cohort(tmp_path, pearson_p_04953))
    table = summarise_baseline(study, load_plan(study.folder)["baseline"])
    row = table.row("sex")
    assert row.test.test == "pearson"
    assert row.test.p == pytest.approx(REF["pearson_04953"]["p"], rel=1e-6)
    assert row.test.statistic == pytest.approx(REF["pearson_04953"]["statistic"], rel=1e-6)
    frame = baseline_frame(table)
    shown = frame.loc[frame.iloc[:, 0].astype(str).str.startswith(row.label), "P"].iloc[0]
    assert shown != "0.050" and float(shown) < 0.05
    assert baseline_results(table)["rows"]["sex"]["p_text"] != "0.050"


def test_table_1_rows_of_any_size_get_a_p_value_in_bounded_memory():
    """The two tables of the issue through the Table 1 rule (R values: tests/reference/exact_large.R)."""
    from helpers.stats.contingency import test_association

    five = test_association(REF["five_by_two"]["table"])
    assert five.p == pytest.approx(REF["five_by_two"]["simulated_p"], rel=1e-6) and five.monte_carlo
    rare = test_association(REF["three_level_100k"]["table"])
    assert rare.p == pytest.approx(REF["three_level_100k"]["exact_p"], rel=1e-6) and not rare.monte_carlo


def test_the_table_note_names_the_monte_carlo_p_when_a_row_used_it():
    from helpers.analyses.baseline import summarise_baseline
    from helpers.report.baseline import baseline_note

    rows = REF["five_by_two"]["table"]
    patients = pd.DataFrame({
        "arm": [arm for level in rows for arm, n in zip(("A", "B"), level) for _ in range(n)],
        "stage": [f"S{i}" for i, level in enumerate(rows) for n in level for _ in range(n)],
    })
    table = summarise_baseline(patients, arms=["A", "B"])
    assert table.row("stage").test.test == "fisher_freeman_halton_mc"
    assert "Monte Carlo from 100,000" in baseline_note(table)


# ----------------------------------------------------------------------------- other sections
def test_the_sensitivity_analysis_copes_with_a_covariate_empty_in_one_arm(tmp_path):
    from helpers.analyses.sensitivity import run_sensitivity

    study = _load(_cohort(tmp_path, empty_diameter_in_experimental_arm))
    choices = {**load_plan(study.folder)["sensitivity"], "ci_method": "robust"}
    run_sensitivity(study, choices, seed=1, workers=1)


def test_the_sensitivity_analysis_copes_with_an_arm_of_one_patient(tmp_path):
    from helpers.analyses.sensitivity import run_sensitivity

    study = _load(_cohort(tmp_path, one_patient_in_experimental_arm))
    assert (study.patients["arm"] == "CMT+ICI").sum() == 1
    choices = {**load_plan(study.folder)["sensitivity"], "ci_method": "robust"}
    run_sensitivity(study, choices, seed=1, workers=1)


def test_the_ph_remedy_copes_with_no_death_in_one_arm(tmp_path):
    from helpers.analyses import prognostic

    study = _load(_cohort(tmp_path, no_death_in_experimental_arm))
    choices = load_plan(study.folder)["prognostic"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = prognostic.prepare(study, choices)
        univariable = prognostic.fit_univariables(data)
        mv = prognostic.fit_selected_model(data, univariable, "os")
        prognostic.fit_ph_remedy(mv, data.patients)


# ----------------------------------------------------------------------------- end to end
CASES = {
    "continuous_covariate_empty_in_one_arm": (empty_diameter_in_experimental_arm, "02-baseline.ipynb"),
    "binary_covariate_separated_by_arm": (separated_binary_covariate, "02-baseline.ipynb"),
    "continuous_covariate_empty_in_one_arm_sensitivity": (empty_diameter_in_experimental_arm,
                                                          "07-sensitivity.ipynb"),
    "no_death_in_one_arm": (no_death_in_experimental_arm, "05-prognostic.ipynb"),
    "one_patient_in_one_arm": (one_patient_in_experimental_arm, "07-sensitivity.ipynb"),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CASES))
def test_the_section_notebook_executes_on_the_case_without_an_error(name, tmp_path):
    """What a build does with the notebook of the section concerned: no cell may raise (a statistical
    limit renders "not estimable: <reason>"; an exception would stop the build, naming the cell)."""
    from helpers.build.execute import execute_notebooks

    edit, notebook = CASES[name]
    folder = _cohort(tmp_path, edit)
    out = tmp_path / "out"
    execute_notebooks([PROJECT_ROOT / "notebooks" / notebook], folder, out, use_cache=False,
                      progress=lambda message: None, jobs=1)
    assert (out / "notebooks" / notebook).exists()


@pytest.mark.slow
def test_a_build_lists_what_was_not_estimated_and_strict_refuses_it(tmp_path):
    """Every veteran patient starts on one day, so the calendar-era analysis is not estimable: the build
    succeeds and lists it (with its reason); --strict exits with status 3 and leaves the output as it was."""
    import shutil
    import subprocess
    import sys

    data = tmp_path / "veteran"
    shutil.copytree(PROJECT_ROOT / "tests" / "fixtures" / "veteran", data)
    out = tmp_path / "out"
    run = [sys.executable, "-m", "helpers.build.pipeline", "--data", str(data), "--output", str(out), "--no-render"]
    built = subprocess.run(run, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=1800)
    assert built.returncode == 0, built.stderr
    assert "Not estimated for these data" in built.stdout
    listed = json.loads((out / "build.json").read_text())["not_estimated"]
    assert listed and all("not estimable: " in item for item in listed)
    before = (out / "build.json").read_bytes()
    strict = subprocess.run(run + ["--strict"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=1800)
    assert strict.returncode == 3 and "not estimated (strict build)" in strict.stderr
    assert "Traceback" not in strict.stderr
    assert (out / "build.json").read_bytes() == before
