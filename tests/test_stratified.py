"""Tests of helpers/stats/stratified.py (stratified log-rank, stratified Cox, Cochran-Mantel-Haenszel).

Golden values: tests/reference/stratified.R (R 4.2.2, survival 3.5-3) on survival::veteran, copied into
tests/reference/stratified.json; compared at rtol 1e-6. Case "sparse": the test arm of cell type "large"
removed, so one stratum holds one arm only. The Mantel-Haenszel risk difference has no base R function:
the R script computes the Greenland-Robins formula of the module docstring by hand.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers.stats.stratified import cmh_binary, stratified_cox, stratified_logrank, stratum_labels
from helpers.stats.types import NotEstimable

REF = json.loads((Path(__file__).parent / "reference" / "stratified.json").read_text(encoding="utf-8"))
VET = pd.DataFrame(REF["data"])
SPARSE = VET[~((VET["celltype"] == "large") & (VET["treated"] == 1))].reset_index(drop=True)
DATA = {"full": VET, "sparse": SPARSE}
STRATA = {"unstratified": None, "celltype": ["celltype"], "celltype_prior": ["celltype", "prior"]}


def approx(value):
    return pytest.approx(value, rel=1e-6, abs=1e-10)


def _strata(d, names):
    if names is None:
        return np.zeros(len(d))
    return stratum_labels(d, [{"variable": n} for n in names]).to_numpy()


@pytest.mark.parametrize("case", ["full", "sparse"])
@pytest.mark.parametrize("strata", list(STRATA))
def test_stratified_logrank_equals_survdiff_with_strata(case, strata):
    # R: survdiff(Surv(time, status) ~ treated + strata(celltype, prior))
    d, r = DATA[case], REF[case][f"logrank_{strata}"]
    res = stratified_logrank(d["time"], d["status"], d["treated"], _strata(d, STRATA[strata]))
    assert res.test.statistic == approx(r["chisq"])
    assert res.test.p == approx(r["p"])
    assert res.observed == approx(r["observed_treated"])
    assert res.expected == approx(r["expected_treated"])
    assert res.test.test == "stratified log-rank"


@pytest.mark.parametrize("case", ["full", "sparse"])
@pytest.mark.parametrize("strata", list(STRATA))
def test_stratified_cox_equals_coxph_with_strata(case, strata):
    # R: coxph(Surv(time, status) ~ treated + strata(celltype, prior), ties = "efron")
    d, r = DATA[case], REF[case][f"cox_{strata}"]
    s = None if STRATA[strata] is None else _strata(d, STRATA[strata])
    res = stratified_cox(d["time"], d["status"], d["treated"], s)
    assert res.hr.value == approx(r["hr"])
    assert res.hr.lower == approx(r["lower"])
    assert res.hr.upper == approx(r["upper"])
    assert res.se == approx(r["se"])
    assert res.wald.p == approx(r["p_wald"])
    assert res.lr.statistic == approx(r["lr_chisq"])
    assert res.lr.p == approx(r["lr_p"])


@pytest.mark.parametrize("case", ["full", "sparse"])
@pytest.mark.parametrize("key,strata,correct", [("cmh_celltype", ["celltype"], True),
                                                ("cmh_celltype_uncorrected", ["celltype"], False),
                                                ("cmh_celltype_prior", ["celltype", "prior"], True)])
def test_cmh_odds_ratio_and_test_equal_mantelhaen_test(case, key, strata, correct):
    # R: mantelhaen.test(table(treated, long, stratum), correct = correct); RD by the Greenland-Robins formula
    d, r = DATA[case], REF[case][key]
    res = cmh_binary(d["long"], d["treated"], _strata(d, strata), correct=correct)
    assert res.odds_ratio.value == approx(r["or"])
    assert res.odds_ratio.lower == approx(r["or_lower"])
    assert res.odds_ratio.upper == approx(r["or_upper"])
    assert res.test.statistic == approx(r["chisq"])
    assert res.test.p == approx(r["p"])
    assert res.risk_difference.value == approx(r["rd"])
    assert res.risk_difference.lower == approx(r["rd_lower"])
    assert res.risk_difference.upper == approx(r["rd_upper"])
    assert res.rd_test.p == approx(r["rd_p"])
    assert res.n_strata == r["n_strata"]


def test_a_stratum_with_one_arm_is_dropped_from_the_cmh_analysis():
    res = cmh_binary(SPARSE["long"], SPARSE["treated"], SPARSE["celltype"])
    assert res.n_dropped == 1 and res.n_strata == 3


def test_no_events_in_an_arm_makes_the_stratified_hazard_ratio_not_estimable():
    t = np.arange(1, 11, dtype=float)
    e = np.array([1, 1, 1, 1, 1, 0, 0, 0, 0, 0])
    z = np.array([0, 0, 0, 0, 0, 1, 1, 1, 1, 1])
    res = stratified_cox(t, e, z, np.array(["a", "b"] * 5))
    assert isinstance(res, NotEstimable) and res.reason == "no_events_in_arm"


def test_a_constant_outcome_makes_the_cmh_analysis_not_estimable():
    res = cmh_binary(np.zeros(8), [0, 1] * 4, ["a"] * 4 + ["b"] * 4)
    assert isinstance(res, NotEstimable) and res.reason == "constant_outcome"


def test_numeric_factor_with_cuts_gives_right_closed_strata():
    frame = pd.DataFrame({"start_year": [2018, 2020, 2021, 2024, None]})
    s = stratum_labels(frame, [{"variable": "start_year", "cuts": [2020]}])
    assert list(s[:4]) == ["start_year=0", "start_year=0", "start_year=1", "start_year=1"]
    assert s.iloc[4] is None
