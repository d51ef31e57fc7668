"""Tests of helpers/analyses/subgroups.py and helpers/report/subgroups.py.

Golden values: tests/reference/stratified.R (R 4.2.2, survival 3.5-3) on survival::veteran
(tests/reference/stratified.json), compared at rtol 1e-6: the interaction likelihood-ratio test
``anova(coxph(Surv ~ treated + v), coxph(Surv ~ treated * v))`` and the HR within each level
(``coxph(Surv ~ treated, subset = v == level)``). Case "sparse": the test arm of cell type "large" removed,
so the interaction term of that level is aliased (R drops it: df 2 instead of 3).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers.analyses.subgroups import (SubgroupChoices, SubgroupLevel, interaction_lr, run_stratified,
                                        run_subgroups, _level_result)
from helpers.stats.types import NotEstimable

REF = json.loads((Path(__file__).parent / "reference" / "stratified.json").read_text(encoding="utf-8"))
VET = pd.DataFrame(REF["data"])
SPARSE = VET[~((VET["celltype"] == "large") & (VET["treated"] == 1))].reset_index(drop=True)
DATA = {"full": VET, "sparse": SPARSE}
LEVELS = {"celltype": ["adeno", "large", "smallcell", "squamous"], "prior": ["no", "yes"],
          "agegrp": ["old", "young"]}


def approx(value):
    return pytest.approx(value, rel=1e-6, abs=1e-10)


@pytest.mark.parametrize("case", ["full", "sparse"])
@pytest.mark.parametrize("variable", list(LEVELS))
def test_interaction_lr_p_equals_anova_of_coxph_with_and_without_the_interaction(case, variable):
    d, r = DATA[case], REF[case][f"interaction_{variable}"]
    res = interaction_lr(d["time"], d["status"], d["treated"], d[variable], LEVELS[variable])
    assert res.test.statistic == approx(r["chisq"])
    assert res.test.df == r["df"]
    assert res.test.p == approx(r["p"])


@pytest.mark.parametrize("case", ["full", "sparse"])
@pytest.mark.parametrize("variable", ["celltype", "prior"])
def test_hazard_ratio_within_each_level_equals_coxph_in_the_subset(case, variable):
    d = DATA[case]
    for level, r in REF[case][f"within_{variable}"].items():
        m = (d[variable] == level).to_numpy()
        res = _level_result(variable, level, d["time"].to_numpy(float)[m], d["status"].to_numpy()[m],
                            d["treated"].to_numpy()[m], ("0", "1"), SubgroupChoices(min_events=1))
        if r is None:
            assert isinstance(res.hr, NotEstimable) and res.hr.reason == "empty_arm"
            continue
        assert res.hr.hr.value == approx(r["hr"])
        assert res.hr.hr.lower == approx(r["lower"])
        assert res.hr.hr.upper == approx(r["upper"])


def test_a_level_with_fewer_than_five_events_in_an_arm_gets_no_hazard_ratio():
    t = np.arange(1, 21, dtype=float)
    e = np.array([1] * 10 + [1, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    z = np.array([0] * 10 + [1] * 10)
    res = _level_result("v", "a", t, e, z, ("ref", "exp"), SubgroupChoices())
    assert isinstance(res.hr, NotEstimable) and res.hr.reason == "few_events"
    assert res.events == {"ref": 10, "exp": 4}


class _Study:
    """A minimal study object: patients, config and a dictionary with subgroup flags."""

    def __init__(self, patients, subgroups=(), response=False):
        self.patients = patients
        self.config = type("C", (), {"reference_arm": "0", "experimental_arm": "1", "arm_order": ("0", "1")})()
        self.dictionary = type("D", (), {"subgroups": lambda self: list(subgroups),
                                         "post_baseline": lambda self: []})()
        self._response = response

    def has(self, part):
        return part == "response" and self._response


def _patients():
    d = VET.rename(columns={"time": "os_months", "status": "os_event"})
    return d.assign(arm=d["treated"].astype(str), start_year=np.where(d.index % 2, 2019, 2022))


def test_run_subgroups_reads_the_dictionary_and_is_inactive_without_subgroup_variables():
    assert not run_subgroups(_Study(_patients())).active
    res = run_subgroups(_Study(_patients(), ["celltype", "prior"]))
    assert res.active and res.endpoints == ("os",)
    cell = res.by_endpoint["os"][0]
    assert [lv.level for lv in cell.levels] == LEVELS["celltype"]
    assert cell.interaction.test.p == approx(REF["full"]["interaction_celltype"]["p"])


def test_run_stratified_with_no_factor_computes_nothing_and_with_a_cut_stratifies_by_era():
    study = _Study(_patients())
    assert not run_stratified(study, {"factors": []}).active
    res = run_stratified(study, {"factors": [{"variable": "start_year", "cuts": [2020]}]})
    assert res.active and len(res.strata) == 2
    assert res.endpoints["os"].cox.n_strata == 2
    assert res.response == {}


def test_subgroup_payload_lists_variable_level_hr_and_interaction_p():
    from helpers.report.subgroups import subgroups_payload
    res = run_subgroups(_Study(_patients(), ["prior"]))
    rows = subgroups_payload(res)["os"]
    assert {"variable", "level", "hr", "lower", "upper", "p_interaction"} <= set(rows[0])
    assert rows[0]["p_interaction"] == approx(REF["full"]["interaction_prior"]["p"])


def test_veteran_has_no_subgroup_variables_so_no_forest_plot_and_no_stratified_table():
    from helpers.config import PROJECT_ROOT, load_plan
    from helpers.data.load import load_study
    from helpers.report import subgroups as R

    folder = PROJECT_ROOT / "tests" / "fixtures" / "veteran"
    study = load_study(folder)
    plan = load_plan(folder)
    sub = run_subgroups(study, plan["subgroups"])
    strat = run_stratified(study, plan["stratified"])
    assert not sub.active and R.plot_subgroup_forest(sub, study, "os") is None
    assert not strat.active and R.make_stratified_table(strat, study) is None
    assert R.subgroups_payload(sub, study)["text"]["sentence"].startswith("No baseline variable")
    assert R.stratified_payload(strat, study)["text"]["factors"] == "none declared"


def test_default_study_stratified_by_era_names_the_strata_in_words_and_fills_the_results_keys(study):
    from helpers.config import load_plan
    from helpers.report import subgroups as R

    plan = load_plan(study.folder)
    strat = run_stratified(study, plan["stratified"])
    payload = R.stratified_payload(strat, study)
    assert payload["text"]["factors"] == "calendar era of treatment start (≤ 2020, > 2020)"
    assert {"logrank_p", "hr", "lower", "upper"} <= set(payload["os"])
    assert {"cmh_or", "cmh_p", "risk_difference"} <= set(payload["orr"])
    table = R.make_stratified_table(strat, study)
    assert "start_year" not in table.to_string()
    sub = run_subgroups(study, plan["subgroups"])
    rows = R.subgroups_payload(sub, study)["os"]
    few = [r for r in rows if r["not_estimable"] == "few_events"]
    assert few and all(r["hr"] is None for r in few)
    import matplotlib.pyplot as plt
    fig = R.plot_subgroup_forest(sub, study, "os")
    assert fig is not None
    plt.close(fig)


# ----------------------------------------------------------------------------- the shipped cohort, against R
COHORT = json.loads((Path(__file__).parent / "reference" / "stratified_cohort.json").read_text(encoding="utf-8"))


def _cohort_study():
    d = pd.DataFrame(COHORT["data"])
    d = d.assign(arm=np.where(d["treated"] == 1, "1", "0"))
    return _Study(d, ["sex", "histology", "age_group", "kps_group"], response=True)


def test_era_stratified_os_and_cmh_response_on_the_shipped_cohort_equal_r():
    # R: survdiff/coxph(Surv(os_months, os_event) ~ treated + strata(era)); mantelhaen.test(table(arm, orr, era))
    res = run_stratified(_cohort_study(), {"factors": [{"variable": "start_year", "cuts": [2020]}],
                                           "endpoints": ["os"]})
    os_ = res.endpoints["os"]
    assert os_.logrank.test.statistic == approx(COHORT["logrank_era"]["chisq"])
    assert os_.logrank.test.p == approx(COHORT["logrank_era"]["p"])
    assert os_.cox.hr.value == approx(COHORT["cox_era"]["hr"])
    assert os_.cox.hr.lower == approx(COHORT["cox_era"]["lower"])
    assert os_.cox.hr.upper == approx(COHORT["cox_era"]["upper"])
    for name in ("orr", "dcr"):
        r, c = COHORT[f"cmh_{name}"], res.response[name].cmh
        assert c.odds_ratio.value == approx(r["or"])
        assert (c.odds_ratio.lower, c.odds_ratio.upper) == (approx(r["lower"]), approx(r["upper"]))
        assert c.test.statistic == approx(r["chisq"]) and c.test.p == approx(r["p"])


def test_interaction_p_on_the_shipped_cohort_equals_r_and_an_aliased_interaction_is_not_estimable():
    # R: anova(coxph(Surv(os_months, os_event) ~ treated + v), coxph(... ~ treated * v)); kps_group: Df 0
    res = run_subgroups(_cohort_study(), {"endpoints": ["os"]})
    tests = {v.variable: v.interaction for v in res.by_endpoint["os"]}
    for v in ("sex", "histology", "age_group"):
        assert tests[v].test.statistic == approx(COHORT[f"interaction_{v}"]["chisq"])
        assert tests[v].test.df == COHORT[f"interaction_{v}"]["df"]
        assert tests[v].test.p == approx(COHORT[f"interaction_{v}"]["p"])
    assert COHORT["interaction_kps_group"]["df"] == 0
    assert isinstance(tests["kps_group"], NotEstimable) and tests["kps_group"].reason == "one_arm_per_level"
