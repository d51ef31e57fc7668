"""R's survival::veteran as a study folder: loaded from configuration alone, its numbers equal R's.

The fixture (tests/fixtures/veteran: cohort.csv, study.yaml, dictionary.yaml) and the golden values
(tests/reference/veteran.json) are written by ``Rscript tests/reference/veteran.R``; times are in months
= days / 30.4375 in both. Only the required core columns are present: no progression, response,
adverse events or cycles.
"""
from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from helpers.config import PROJECT_ROOT
from helpers.data.load import DAYS_PER_MONTH, UnknownColumnsWarning, load_study
from helpers.stats import cox, survival

FOLDER = PROJECT_ROOT / "tests" / "fixtures" / "veteran"
R = json.loads((PROJECT_ROOT / "tests" / "reference" / "veteran.json").read_text())
RTOL = 1e-6


@pytest.fixture(scope="module")
def veteran():
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnknownColumnsWarning)   # every column is core or in the dictionary
        return load_study(FOLDER)


@pytest.fixture(scope="module")
def raw():
    return pd.read_csv(FOLDER / "cohort.csv", dtype=str, keep_default_na=False)


def test_the_veteran_folder_loads_with_only_the_required_parts(veteran):
    assert len(veteran.patients) == R["n"] == 137
    assert veteran.parts == {"pfs": False, "response": False, "safety": False, "exposure": False,
                             "replication": False}
    assert veteran.adverse_events is None and veteran.ae_worst is None and veteran.cycles is None
    assert veteran.published is None and veteran.pfs_censoring is None
    assert not {"pfs_months", "best_response", "chemo_cycles"} & set(veteran.patients.columns)


def test_the_study_configuration_is_a_randomised_trial_with_its_own_arms(veteran):
    config = veteran.config
    assert config.title == "Veterans' Administration lung cancer trial"
    assert config.randomised and config.synthetic is False
    assert config.arm_order == ("standard", "test") and config.reference_arm == "standard"
    assert config.arm_label("test") == "Test chemotherapy"
    assert list(veteran.patients["arm"].cat.categories) == ["standard", "test"]


def test_the_dictionary_gives_labels_levels_and_the_reference(veteran):
    d = veteran.dictionary
    assert d.levels("celltype") == ["squamous", "smallcell", "adeno", "large"]
    assert d.reference("celltype") == "squamous" and d.level_label("celltype", "adeno") == "Adenocarcinoma"
    assert d.label("karno") == "Karnofsky performance score"
    assert d.baseline() == ["celltype", "karno", "age", "prior", "diagtime"]
    assert list(veteran.patients["prior"].cat.categories) == ["no", "yes"]


def test_overall_survival_is_the_days_from_start_over_30_4375(veteran, raw):
    days = (pd.to_datetime(raw["last_followup_date"]) - pd.to_datetime(raw["start_date"])).dt.days
    np.testing.assert_allclose(veteran.patients["os_months"], days / DAYS_PER_MONTH, rtol=1e-12)
    assert (veteran.patients["os_event"] == (raw["death_date"] != "").astype(int)).all()
    assert veteran.patients["os_event"].sum() == R["km"]["standard"]["events"] + R["km"]["test"]["events"]


@pytest.mark.parametrize("arm", ["standard", "test"])
def test_kaplan_meier_by_arm_against_R(veteran, arm):
    """R: survfit(Surv(months, status) ~ 1, conf.type = "log"); summary(fit, times = c(3, 6, 12), extend = TRUE)."""
    rows = veteran.patients[veteran.patients["arm"] == arm]
    ref = R["km"][arm]
    assert len(rows) == ref["n"] and rows["os_event"].sum() == ref["events"]
    median = survival.median_survival(rows["os_months"], rows["os_event"])
    np.testing.assert_allclose([median["estimate"], median["lower"], median["upper"]],
                               [ref["median"], ref["median_lower"], ref["median_upper"]], rtol=RTOL)
    np.testing.assert_allclose(survival.km_at(rows["os_months"], rows["os_event"], ref["times"]), ref["surv"],
                               rtol=RTOL)
    table = survival.km_table(rows["os_months"], rows["os_event"], ref["times"])
    np.testing.assert_allclose(table["lower"].astype(float), ref["lower"], rtol=RTOL)
    np.testing.assert_allclose(table["upper"].astype(float), ref["upper"], rtol=RTOL)


def test_log_rank_against_R(veteran):
    """R: survdiff(Surv(months, status) ~ arm)."""
    p = veteran.patients
    result = survival.logrank_test(p["os_months"], p["os_event"], p["arm"])
    np.testing.assert_allclose([result["chisq"], result["p"]], [R["logrank"]["chisq"], R["logrank"]["p"]], rtol=RTOL)


def _design(patients: pd.DataFrame, terms: list[str]) -> pd.DataFrame:
    """Treatment-coded model matrix (R's default contrasts: the first level is the reference)."""
    columns = {}
    for term in terms:
        values = patients[term]
        if isinstance(values.dtype, pd.CategoricalDtype):
            for level in values.cat.categories[1:]:
                columns[f"{term}{level}"] = (values == level).astype(float).to_numpy()
        else:
            columns[term] = values.astype(float).to_numpy()
    return pd.DataFrame(columns)


def test_cox_model_of_the_arm_against_R(veteran):
    """R: coxph(Surv(months, status) ~ arm) (Efron ties); summary(fit); cox.zph(fit, transform = "km")."""
    p = veteran.patients
    fit = cox.fit_coxph(p["os_months"].to_numpy(), p["os_event"].to_numpy(), _design(p, ["arm"]))
    ref = R["cox_arm"]
    wald = fit.wald().iloc[0]
    np.testing.assert_allclose([wald["coef"], wald["se"], wald["hr"], wald["lower"], wald["upper"], wald["p"]],
                               [ref["coef"], ref["se"], ref["hr"], ref["lower"], ref["upper"], ref["wald_p"]],
                               rtol=RTOL)
    np.testing.assert_allclose([fit.lr_chisq, fit.lr.p], [ref["lr_chisq"], ref["lr_p"]], rtol=RTOL)
    zph = cox.proportional_hazards_test(fit).set_index("term").loc["armtest"]
    np.testing.assert_allclose([zph["chisq"], zph["p"]], [ref["zph_chisq"], ref["zph_p"]], rtol=RTOL)
    arm = survival.fit_cox_arm(p["os_months"], p["os_event"], p["arm"], "standard")
    np.testing.assert_allclose([arm["coef"], arm["se"], arm["lr_p"]], [ref["coef"], ref["se"], ref["lr_p"]], rtol=RTOL)


def test_multivariable_cox_model_against_R(veteran):
    """R: coxph(Surv(months, status) ~ arm + celltype + karno + age + prior)."""
    p = veteran.patients
    X = _design(p, ["arm", "celltype", "karno", "age", "prior"])
    ref = R["cox_multivariable"]
    assert list(X.columns) == ref["terms"]
    fit = cox.fit_coxph(p["os_months"].to_numpy(), p["os_event"].to_numpy(), X)
    np.testing.assert_allclose(fit.coef, ref["coef"], rtol=RTOL)
    np.testing.assert_allclose(fit.se, ref["se"], rtol=RTOL)
    np.testing.assert_allclose([fit.loglik_null, fit.loglik], ref["loglik"], rtol=RTOL)
