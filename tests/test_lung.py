"""R's survival::lung as a study folder: missing covariate values, a categorical one among them.

The fixture (tests/fixtures/lung: cohort.csv written by ``Rscript tests/reference/lung_fixture.R``,
study.yaml and dictionary.yaml by hand) compares the sexes (an observational design) with the covariates
age, ECOG performance status (categorical, one value missing), the physician's Karnofsky score and the
weight loss (numeric, missing values). Only the required core columns are present: no progression,
response, adverse events or cycles.

- Multiple imputation imputes the numeric covariates; a categorical one with missing values is not imputed
  (complete cases for it) and a caveat says so under the table, instead of the build stopping.
- Absent optional parts are not "not estimated": the cells that need them have no output.
"""
from __future__ import annotations

import json

import pytest

from helpers.config import PROJECT_ROOT, load_plan
from helpers.data.load import load_study

FOLDER = PROJECT_ROOT / "tests" / "fixtures" / "lung"


@pytest.fixture(scope="module")
def prepared():
    from helpers.analyses import prognostic
    study = load_study(FOLDER)
    plan = load_plan(FOLDER)
    choices = {**plan["prognostic"], "seed": plan["seed"], "mi_imputations": 3}
    data = prognostic.prepare(study, choices)
    univariable = prognostic.fit_univariables(data)
    return study, data, prognostic.fit_selected_model(data, univariable, "os")


def test_the_lung_folder_loads_with_missing_values_and_only_the_required_parts(prepared):
    study, data, _ = prepared
    assert len(study.patients) == 228
    assert not any(study.parts.values())
    assert study.patients["ecog"].isna().sum() == 1
    assert study.patients["ph.karno"].isna().sum() == 1 and study.patients["wt.loss"].isna().sum() == 14


def test_a_categorical_covariate_with_missing_values_is_not_imputed_and_a_caveat_says_so(prepared):
    from helpers.analyses import prognostic
    from helpers.report import prognostic as report
    _, data, mv = prepared
    assert "ecog" in mv.selected   # the categorical covariate with a missing value is in the model
    mi = prognostic.multiple_imputation(data, mv, "os", seed=1)
    assert set(mi.attrs["imputed"]) == {"ph.karno", "wt.loss"}
    assert [c.kind for c in mi.attrs["caveats"]] == ["categorical_not_imputed"]
    assert mi.attrs["caveats"][0].data["variables"] == ["ecog"]
    assert mi.attrs["n_mi"] == 227   # every patient with ECOG recorded; the numeric ones imputed
    assert any(t.startswith("ecog") for t in mi["term"])
    note = report.mi_note(mi)
    assert note.count("are not imputed") == 1 and "Categorical covariates with missing values" in note
    assert "1 patient excluded" in note


def test_without_cycles_or_post_baseline_covariates_there_is_no_immortal_time_comparison(prepared):
    from helpers.analyses import prognostic
    from helpers.report import prognostic as report
    _, data, mv = prepared
    immortal = prognostic.compare_immortal_time(data, "os", prognostic.selected_of(mv))
    assert immortal is None and report.immortal_time_display(immortal) is None


@pytest.mark.slow
def test_the_lung_cohort_builds_end_to_end_and_its_absent_parts_are_not_listed_as_not_estimated(tmp_path):
    import shutil

    from helpers.build.pipeline import BUILD_NAME, build_report, not_estimated
    data = tmp_path / "data"
    shutil.copytree(FOLDER, data)
    out = tmp_path / "_output"
    build_report(data, out, use_cache=False, formats=("html",), progress=lambda m: None)
    listed = not_estimated(out)
    assert json.loads((out / BUILD_NAME).read_text()).get("not_estimated", []) == listed
    # the absent optional parts (cycles, progression, response, adverse events, publication) list nothing
    assert not [i for i in listed if "treatment-cycle" in i or "immortal" in i or "progression" in i
                or i.startswith(("03-survival", "05-prognostic", "04-", "06-", "08-"))], listed
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "NCCTG" in html and "are not imputed" in html
    assert "treatment-cycle dates" not in html
