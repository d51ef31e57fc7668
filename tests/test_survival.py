"""helpers.stats.survival against R's survival package (values from tests/reference/survival.R).

Each test names the R call it mirrors. Relative tolerance 1e-6. R's NA (JSON null) must be None/NaN
here. Deliberate difference from R: km_table reports NE (None) past the last follow-up time, where
``summary(fit, times, extend = TRUE)`` carries the last value forward.
"""
from __future__ import annotations

import functools
import hashlib
import json
import warnings
from pathlib import Path

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import yaml

from helpers.analyses.survival import REQUIRED_CHOICES, analyse_endpoint
from helpers.report.survival import (make_followup_table, make_rmst_table, make_survival_table, results_payload,
                                     survival_footnote)
from helpers.stats import survival as sv
from helpers.stats.types import Caveat, NotEstimable

REF = Path(__file__).parent / "reference"
_JSON = json.loads((REF / "survival.json").read_text())
GOLDEN, META = _JSON["datasets"], _JSON["meta"]
COHORT_CSV = REF.parents[1] / "data" / "cohort.csv"
RTOL = 1e-6


def _md5(path: Path) -> str | None:
    return hashlib.md5(path.read_bytes()).hexdigest() if path.exists() else None


def test_reference_values_were_computed_on_the_current_default_cohort():
    """R: tests/reference/survival.R records tools::md5sum("data/cohort.csv"); re-run it after a new cohort."""
    if "cohort_md5" not in META:
        pytest.skip("survival.json was written before data/cohort.csv existed")
    assert _md5(COHORT_CSV) == META["cohort_md5"], "re-run: Rscript tests/reference/survival.R"


def _arr(values) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in np.atleast_1d(values)], dtype=float)


def _close(actual, expected) -> None:
    a, b = _arr(actual), _arr(expected)
    assert a.shape == b.shape
    np.testing.assert_allclose(a, b, rtol=RTOL, atol=0, equal_nan=True)


def _example(name: str):
    """time, status, group of a reference dataset (group '' when there is none)."""
    if name == "lung":
        d = pd.read_csv(REF / "lung.csv")
        return d["time"].to_numpy(float), d["status"].to_numpy(int), d["sex"].to_numpy(str)
    d = pd.read_csv(REF / "survival_examples.csv", keep_default_na=False)
    d = d[d["dataset"] == name]
    return d["time"].to_numpy(float), d["status"].to_numpy(int), d["group"].to_numpy(str)


@functools.lru_cache(maxsize=1)
def _cohort_patients() -> pd.DataFrame:
    from helpers.data.load import load_study

    if _md5(COHORT_CSV) != META.get("cohort_md5"):
        pytest.skip("data/cohort.csv changed since survival.json was written (see the md5 test)")
    return load_study(COHORT_CSV.parent).patients


def _cohort(name: str):
    endpoint = name.split("_")[1]
    p = _cohort_patients()
    return (p[f"{endpoint}_months"].to_numpy(float), p[f"{endpoint}_event"].to_numpy(int),
            p["arm"].astype(str).to_numpy())


def _data(name: str):
    return _cohort(name) if name.startswith("cohort") else _example(name)


def _curves():
    """(dataset, group) pairs: every group of every reference dataset, and the pooled curve."""
    out = []
    for name, ref in GOLDEN.items():
        out.append((name, "overall"))
        out += [(name, g) for g in ref["groups"]]
    return out


def _subset(name: str, group: str):
    t, e, g = _data(name)
    return (t, e) if group == "overall" else (t[g == group], e[g == group])


def _ref(name: str, group: str) -> dict:
    return GOLDEN[name]["overall"] if group == "overall" else GOLDEN[name]["groups"][group]


CURVES = _curves()
IDS = [f"{n}-{g}" for n, g in CURVES]
SUFFIX = {"log": "log", "log-log": "loglog"}


@pytest.fixture(autouse=True)
def _quiet_caveats():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sv.SurvivalCaveatWarning)
        yield


@pytest.mark.parametrize("conf_type", ["log", "log-log"])
@pytest.mark.parametrize(("name", "group"), CURVES, ids=IDS)
def test_kaplan_meier_curve_and_pointwise_band_match_R_survfit(name, group, conf_type):
    """R: survfit(Surv(time, status) ~ 1, conf.type = conf_type) -> time, n.risk, n.event, surv, std.err, lower, upper."""
    curve = sv.fit_km(*_subset(name, group), conf_type=conf_type)
    ref = _ref(name, group)["curve"]
    for col, key in [("time", "time"), ("n_risk", "n_risk"), ("n_event", "n_event"), ("surv", "surv"),
                     ("lower", f"lower_{SUFFIX[conf_type]}"), ("upper", f"upper_{SUFFIX[conf_type]}")]:
        _close(curve[col], ref[key])
    se = curve["std_err"].to_numpy(float)
    _close(np.where(np.isinf(se), np.nan, se), ref["std_err"])


@pytest.mark.parametrize("conf_type", ["log", "log-log"])
@pytest.mark.parametrize(("name", "group"), CURVES, ids=IDS)
def test_survival_at_given_times_matches_R_summary_survfit(name, group, conf_type):
    """R: summary(survfit(..., conf.type = conf_type), times = times[times <= max(time)])."""
    ref = _ref(name, group)["at"]
    table = sv.km_table(*_subset(name, group), times=_arr(ref["times"]), conf_type=conf_type)
    _close(table["surv"], ref["surv"])
    _close(table["n_risk"], ref["n_risk"])
    _close(table["lower"], ref[f"lower_{SUFFIX[conf_type]}"])
    _close(table["upper"], ref[f"upper_{SUFFIX[conf_type]}"])


@pytest.mark.parametrize("conf_type", ["log", "log-log"])
@pytest.mark.parametrize(("name", "group"), CURVES, ids=IDS)
def test_median_and_its_ci_match_R_print_survfit(name, group, conf_type):
    """R: summary(survfit(..., conf.type = conf_type))$table[c("median", "0.95LCL", "0.95UCL")]."""
    m = sv.median_survival(*_subset(name, group), conf_type=conf_type)
    _close([m["estimate"], m["lower"], m["upper"]], _ref(name, group)[f"median_{SUFFIX[conf_type]}"])


@pytest.mark.parametrize(("name", "group"), CURVES, ids=IDS)
def test_rmst_and_its_standard_error_match_R_print_survfit_rmean(name, group):
    """R: summary(survfit(...), rmean = tau)$table[c("rmean", "se(rmean)")]."""
    ref = _ref(name, group)["rmst"]
    r = sv.rmst(*_subset(name, group), tau=ref["tau"])
    _close([r["estimate"], r["se"]], [ref["estimate"], ref["se"]])


@pytest.mark.parametrize(("name", "group"), CURVES, ids=IDS)
def test_reverse_kaplan_meier_follow_up_matches_R(name, group):
    """R: summary(survfit(Surv(time, 1 - status) ~ 1))$table[c("median", "0.95LCL", "0.95UCL")]."""
    f = sv.median_followup(*_subset(name, group))
    _close([f["estimate"], f["lower"], f["upper"]], _ref(name, group)["followup_median"])


LOGRANK = [n for n, ref in GOLDEN.items() if "logrank" in ref]
COX = [n for n, ref in GOLDEN.items() if "cox" in ref]


@pytest.mark.parametrize("name", LOGRANK)
def test_log_rank_chi_square_and_p_match_R_survdiff(name):
    """R: survdiff(Surv(time, status) ~ group); P = pchisq(chisq, df, lower.tail = FALSE)."""
    res = sv.logrank_test(*_data(name))
    ref = GOLDEN[name]["logrank"]
    _close([res["chisq"], res["p"]], [ref["chisq"], ref["p"]])
    assert res["df"] == ref["df"]


@pytest.mark.parametrize("name", COX)
def test_cox_hazard_ratio_ci_wald_and_likelihood_ratio_p_match_R_coxph_efron(name):
    """R: summary(coxph(Surv(time, status) ~ group, ties = "efron")): conf.int, coefficients, logtest."""
    ref = GOLDEN[name]["cox"]
    hr = sv.fit_cox_arm(*_data(name), reference=ref["reference"])
    _close([hr["coef"], hr["se"], hr["estimate"], hr["lower"], hr["upper"], hr["p"], hr["lr_chisq"], hr["lr_p"]],
           [ref["coef"], ref["se"], ref["hr"], ref["lower"], ref["upper"], ref["wald_p"], ref["lr_chisq"],
            ref["lr_p"]])
    _close(hr["loglik"], ref["loglik"])


# ------------------------------------------------------------------------------ published examples
def test_lung_medians_by_sex_are_the_textbook_values():
    """R: survfit(Surv(time, status) ~ sex, data = lung): medians 270 (male) and 426 (female) days."""
    t, e, g = _example("lung")
    assert sv.median_survival(t[g == "Male"], e[g == "Male"]) == {"estimate": 270, "lower": 212, "upper": 310}
    assert sv.median_survival(t[g == "Female"], e[g == "Female"]) == {"estimate": 426, "lower": 348, "upper": 550}


def test_camis_median_on_a_plateau_and_its_log_and_log_log_lower_limits():
    """CAMIS R-vs-SAS example: median 87; lower limit 77 (log) and 54 (log-log); upper not reached."""
    t, e, _ = _example("camis")
    assert sv.median_survival(t, e, "log") == {"estimate": 87, "lower": 77, "upper": None}
    assert sv.median_survival(t, e, "log-log") == {"estimate": 87, "lower": 54, "upper": None}


def test_a_curve_sitting_at_one_half_gives_the_midpoint_median_unlike_lifelines():
    """Six events at 1..6: S = 0.5 on [3, 4); R's median is 3.5 (lifelines says 3)."""
    t, e, _ = _example("six_events")
    assert sv.median_survival(t, e)["estimate"] == 3.5


def test_survival_past_last_follow_up_is_not_estimable_rather_than_carried_forward():
    """R summary(fit, times = 120, extend = TRUE) gives 0.5 for the CAMIS data; we report NE."""
    t, e, _ = _example("camis")
    table = sv.km_table(t, e, [118, 120])
    assert table["surv"].tolist() == [0.5, None]
    assert table["lower"].iloc[1] is None and table["upper"].iloc[1] is None


def test_a_curve_that_reached_zero_stays_zero_past_the_last_time():
    t, e, _ = _example("six_events")
    table = sv.km_table(t, e, [7])
    assert table["surv"].iloc[0] == 0.0 and table["lower"].iloc[0] is None


# ------------------------------------------------------------------------------ edge cases
def test_all_censored_data_give_no_median_and_an_rmst_equal_to_the_horizon():
    t, e, _ = _example("all_censored")
    assert sv.median_survival(t, e) == {"estimate": None, "lower": None, "upper": None}
    assert sv.rmst(t, e, 4) == {"tau": 4.0, "estimate": 4.0, "se": 0.0}
    with pytest.warns(sv.SurvivalCaveatWarning, match="no events"):
        res = sv.logrank_test(t, e, ["A", "A", "B", "B", "B"])
    assert res["p"] is None


def test_tied_event_and_censoring_times_follow_R_counting():
    """R: censored observations at an event time are at risk at that time (survfit n.risk)."""
    curve = sv.fit_km([1, 1, 2, 2, 3], [1, 0, 1, 0, 1])
    assert curve["n_risk"].tolist() == [5, 3, 1]
    assert curve["surv"].tolist() == pytest.approx([0.8, 0.8 * 2 / 3, 0.0])


def _efron_by_event_time(t, e, x, beta):
    """Efron log-likelihood, score and information by a direct loop over event times (R coxph's formula)."""
    w = np.exp(beta * (x - x.mean()))
    ll = score = info = 0.0
    for u in np.unique(t[e == 1]):
        at_risk, tied = t >= u, (t == u) & (e == 1)
        d = int(tied.sum())
        s = [np.sum((w * x ** p)[at_risk]) for p in range(3)]
        dd = [np.sum((w * x ** p)[tied]) for p in range(3)]
        ll += beta * (x[tied] - x.mean()).sum()
        score += x[tied].sum()
        for k in range(d):
            a0, a1, a2 = (s[p] - k / d * dd[p] for p in range(3))
            ll, score, info = ll - np.log(a0), score - a1 / a0, info + a2 / a0 - (a1 / a0) ** 2
    return ll, score, info


@pytest.mark.parametrize("beta", [0.0, 0.7, -1.5])
def test_the_cox_engines_efron_likelihood_equals_the_loop_over_event_times_on_heavily_tied_data(beta):
    rng = np.random.default_rng(20260101)
    t = np.round(rng.exponential(6, 300))            # whole months: many ties, censoring at event times
    e = (rng.random(300) < 0.7).astype(int)
    x = (rng.random(300) < 0.4).astype(float)
    from helpers.stats.cox import partial_likelihood

    pl = partial_likelihood(np.array([beta]), x[:, None], t, e, ties="efron")
    got = (float(pl.loglik), float(np.ravel(pl.score)[0]), float(np.ravel(pl.information)[0]))
    np.testing.assert_allclose(got, _efron_by_event_time(t, e, x, beta), rtol=1e-10)


def test_cox_newton_iterations_reach_the_score_root_on_a_few_thousand_patients():
    """R: coxph(..., control = coxph.control(eps = 1e-14)) reaches the root; rounding noise in the
    log-likelihood must not trigger step halving that stops short of it."""
    rng = np.random.default_rng(7)
    x = (rng.random(3000) < 0.3).astype(int)
    t = np.round(rng.exponential(np.where(x == 1, 14, 8)), 1)
    e = (rng.random(3000) < 0.75).astype(int)
    res = sv.fit_cox_arm(t, e, np.where(x == 1, "B", "A"), reference="A")
    from helpers.stats.cox import partial_likelihood

    pl = partial_likelihood(np.array([res["coef"]]), x.astype(float)[:, None], t, e, ties="efron")
    assert abs(float(np.ravel(pl.score)[0]) / float(np.ravel(pl.information)[0])) < 1e-12


@pytest.mark.parametrize(("time", "event", "message"), [
    ([1, -2], [1, 0], "negative"),
    ([1, 2], [1, 2], "0/1"),
    ([1, np.nan], [1, 0], "missing"),
])
def test_invalid_survival_input_is_rejected_with_the_offending_rows(time, event, message):
    with pytest.raises(sv.SurvivalInputError, match=message):
        sv.fit_km(time, event)


def test_unknown_confidence_transform_is_rejected():
    with pytest.raises(ValueError, match="conf_type"):
        sv.fit_km([1, 2], [1, 1], conf_type="plain")


def test_rmst_beyond_the_last_follow_up_warns_about_extrapolation():
    with pytest.warns(sv.SurvivalCaveatWarning, match="beyond the last follow-up"):
        sv.rmst([1, 2, 3], [1, 0, 0], tau=10)


def test_rmst_difference_combines_independent_standard_errors():
    d = sv.rmst_difference({"estimate": 10.0, "se": 3.0}, {"estimate": 14.0, "se": 4.0})
    assert d["estimate"] == 4.0 and d["se"] == 5.0
    assert d["lower"] == pytest.approx(4 - 1.959963984540054 * 5)



# ------------------------------------------------------------------------------ weighted Kaplan-Meier
_PROP = json.loads((REF / "propensity.json").read_text(encoding="utf-8"))
VET = pd.DataFrame(_PROP["data"])


@pytest.mark.parametrize("weights", ["iptw", "ato"])
@pytest.mark.parametrize(("arm", "value"), [("control", 0), ("treated", 1)])
def test_weighted_kaplan_meier_matches_R_survfit_with_weights(weights, arm, value):
    """R: summary(survfit(Surv(time, status) ~ treated, weights = w), times, extend = TRUE) (propensity.R)."""
    s = (VET["treated"] == value).to_numpy()
    w = np.asarray(_PROP["weights"][weights])[s]
    got = sv.km_at(VET.loc[s, "time"], VET.loc[s, "status"], _PROP["survfit"][weights]["times"], weights=w)
    _close(got, _PROP["survfit"][weights][arm])


def test_unit_weights_give_the_unweighted_curve_and_band():
    t, e = VET["time"].to_numpy(float), VET["status"].to_numpy(int)
    plain, weighted = sv.fit_km(t, e), sv.fit_km(t, e, weights=np.ones(len(t)))
    for col in ("surv", "std_err", "lower", "upper", "n_risk", "n_event"):
        np.testing.assert_allclose(weighted[col].to_numpy(float), plain[col].to_numpy(float), rtol=1e-12)


def test_weighted_greenwood_band_uses_the_weighted_counts():
    """R: survfit(..., weights = w, robust = FALSE)$std.err = sqrt(cumsum(d / (n (n - d)))) on weighted counts."""
    t, e = np.array([1, 2, 2, 3, 4, 5.0]), np.array([1, 1, 0, 1, 0, 1])
    w = np.array([0.5, 1.2, 2.0, 0.7, 1.0, 1.5])
    c = sv.fit_km(t, e, weights=w)
    n, d = c["n_risk"].to_numpy(), c["n_event"].to_numpy()
    assert n[0] == pytest.approx(w.sum()) and d[0] == pytest.approx(0.5)
    with np.errstate(divide="ignore", invalid="ignore"):
        expected = np.sqrt(np.cumsum(np.where(d > 0, d / (n * (n - d)), 0.0)))
    np.testing.assert_allclose(c["std_err"].to_numpy()[:-1], expected[:-1], rtol=1e-12)


def test_negative_weights_are_rejected():
    with pytest.raises(sv.SurvivalInputError, match="weights"):
        sv.fit_km([1, 2], [1, 0], weights=[1, -1])


def test_km_steps_start_at_time_zero_with_survival_one():
    steps = sv.km_steps([2, 3, 5], [1, 0, 1])
    assert steps["time"].tolist()[:2] == [0.0, 2.0] and steps["surv"].iloc[0] == 1.0


# ------------------------------------------------------------------------------ typed results and report
PLAN = yaml.safe_load((REF.parents[1] / "analysis.yaml").read_text(encoding="utf-8"))["survival"]


def _study(patients: pd.DataFrame, arms=("CMT", "CMT+ICI"), labels=None, design="observational"):
    """A minimal Study: patients, a config with arm order, labels and design, and has()."""
    labels = labels or {a: a for a in arms}
    config = SimpleNamespace(arm_order=tuple(arms), reference_arm=arms[0], design=design,
                             arm_label=lambda code: labels[code])
    return SimpleNamespace(patients=patients, config=config,
                           has=lambda part: part != "pfs" or "pfs_months" in patients.columns)


def _patients(name: str) -> pd.DataFrame:
    t, e, g = _example(name)
    arm = pd.Categorical(np.where(g == "A", "CMT", "CMT+ICI"), categories=["CMT", "CMT+ICI"])
    return pd.DataFrame({"arm": arm, "os_months": t, "os_event": e, "pfs_months": t, "pfs_event": e})


def _choices(**override):
    return {**PLAN, **override}


def test_the_analysis_plan_holds_every_choice_the_survival_analysis_reads():
    assert set(REQUIRED_CHOICES) <= set(PLAN)


def test_an_arm_without_events_has_median_not_reached_and_no_hazard_ratio():
    study = _study(_patients("no_events_arm"))
    res = analyse_endpoint(study, "os", _choices(rate_times_months=[2, 5], rmst_horizon_months=8))
    assert not res.arm("experimental").median.reached
    assert isinstance(res.hazard_ratio, NotEstimable) and res.hazard_ratio.reason == "no_events_in_arm"
    assert any(c.kind == "no_events_in_arm" for c in res.caveats)
    assert res.logrank.p == pytest.approx(GOLDEN["no_events_arm"]["logrank"]["p"], rel=RTOL)
    payload = results_payload(res, study)
    assert payload["median"]["CMT+ICI"] == {"estimate": None, "lower": None, "upper": None}
    assert payload["text"]["median_CMT_ICI"] == "NR" == payload["text"]["median_experimental"]
    assert payload["text"]["hr"] == "not estimable: no events in one arm"
    assert "not estimable" in payload["text"]["caveats"]


def test_one_patient_in_an_arm_is_analysed_with_a_caveat():
    res = analyse_endpoint(_study(_patients("single_patient_arm")), "pfs",
                           _choices(rate_times_months=[2], rmst_horizon_months=6))
    assert res.arm("CMT+ICI").median.value == 4.0
    assert res.hazard_ratio.estimate.value == pytest.approx(GOLDEN["single_patient_arm"]["cox"]["hr"], rel=RTOL)
    assert Caveat("small_arm", {"arm": "CMT+ICI", "n": 1}) in res.caveats


def test_results_payload_has_the_keys_the_results_file_promises():
    study = _study(_patients("ties"))
    res = results_payload(analyse_endpoint(study, "os", _choices(rate_times_months=[2, 4, 20],
                                                                 rmst_horizon_months=8)), study)
    assert {"median", "logrank_p", "logrank_chisq", "hr", "rates", "followup", "rmst", "events",
            "text"} <= set(res)
    assert set(res["median"]) == {"CMT", "CMT+ICI"}
    assert set(res["hr"]) >= {"estimate", "lower", "upper", "p", "lr_p"}
    assert res["hr"]["comparison"] == "CMT+ICI vs CMT"
    assert res["rates"]["CMT"]["20"]["estimate"] is None       # past the last follow-up: not estimable
    assert res["text"]["rate_20m_CMT"] == "not estimable: beyond the last follow-up of the arm"
    assert res["text"]["logrank_p"].startswith("P = ")
    for name in ("median", "events", "followup", "rate_2m", "rmst", "median_estimate", "label", "n"):
        assert {f"{name}_reference", f"{name}_experimental"} <= set(res["text"])
    assert res["text"]["median_reference"] == res["text"]["median_CMT"]
    json.dumps(res)                                             # plain JSON values only


def test_results_payload_matches_R_on_the_ties_example():
    """R: survfit by group (medians), survdiff, coxph on the same data."""
    study = _study(_patients("ties"))
    res = results_payload(analyse_endpoint(study, "os", _choices(rate_times_months=[2], rmst_horizon_months=8)),
                          study)
    ref = GOLDEN["ties"]
    _close([res["median"]["CMT"][k] for k in ("estimate", "lower", "upper")], ref["groups"]["A"]["median_log"])
    _close(res["logrank_chisq"], ref["logrank"]["chisq"])
    _close([res["hr"]["estimate"], res["hr"]["p"]], [ref["cox"]["hr"], ref["cox"]["wald_p"]])
    _close([res["rmst"]["CMT+ICI"]["estimate"], res["rmst"]["CMT+ICI"]["se"]],
           [ref["groups"]["B"]["rmst"]["estimate"], ref["groups"]["B"]["rmst"]["se"]])


@pytest.mark.parametrize("maker", [make_survival_table, make_rmst_table, make_followup_table])
def test_notebook_tables_are_all_text_without_nan(maker):
    study = _study(_patients("ties"))
    res = [analyse_endpoint(study, ep, _choices(rate_times_months=[2, 4], rmst_horizon_months=8))
           for ep in ("os", "pfs")]
    table = maker(res, study)
    assert len(table) > 0
    assert not table.isna().any().any()
    assert all(isinstance(v, str) for v in table.to_numpy().ravel())


# ------------------------------------------------------------------------------ another study, no PFS
def _veteran_study() -> SimpleNamespace:
    """R's veteran data (trt 1 = standard, 2 = test) in months, overall survival only, randomised."""
    arm = pd.Categorical(np.where(VET["treated"] == 1, "test", "standard"), categories=["standard", "test"])
    patients = pd.DataFrame({"arm": arm, "os_months": VET["time"] / 30.4375, "os_event": VET["status"]})
    return _study(patients, arms=("standard", "test"),
                  labels={"standard": "Standard chemotherapy", "test": "Test chemotherapy"}, design="randomised")


def test_a_study_without_progression_is_analysed_and_reported_for_overall_survival_only():
    study = _veteran_study()
    assert not study.has("pfs")
    res = analyse_endpoint(study, "os", PLAN)
    assert (res.reference, res.experimental) == ("standard", "test")
    assert res.n == len(VET) and res.events == int(VET["status"].sum())
    payload = results_payload(res, study)
    text = payload["text"]
    assert text["label_reference"] == "Standard chemotherapy"
    assert text["hr_comparison"] == "Test chemotherapy vs Standard chemotherapy"
    assert "randomised" in text["design_caveat"]
    assert "Test chemotherapy arm" in text["rates_sentence"]
    tables = [make_survival_table([res], study), make_rmst_table([res], study), make_followup_table([res], study)]
    assert "Standard chemotherapy" in tables[0].columns
    assert all(set(t["Endpoint"]) <= {"Overall survival", ""} for t in tables)
    for t in tables:
        assert not t.isna().any().any()
    prose = {k: v for k, v in text.items() if k != "technical_note"}   # the appendix sentence names R calls
    words = " ".join([survival_footnote([res], study), *prose.values(), *map(str, tables[0].columns)])
    for code_name in ("CMT", "ICI", "os_months", "conf_type", "survfit", "nan", "None"):
        assert code_name not in words
    json.dumps(payload)


def test_observational_design_gives_an_associational_caveat():
    study = _study(_patients("ties"))
    text = results_payload(analyse_endpoint(study, "os", _choices(rmst_horizon_months=8)), study)["text"]
    assert "not assigned at random" in text["design_caveat"]


def test_veteran_log_rank_and_hazard_ratio_are_R_survdiff_and_coxph_on_the_same_data():
    """The typed results carry exactly the estimators' numbers (checked against R above)."""
    study = _veteran_study()
    res = analyse_endpoint(study, "os", PLAN)
    t, e = VET["time"].to_numpy(float) / 30.4375, VET["status"].to_numpy(int)
    g = np.where(VET["treated"] == 1, "test", "standard")
    lr = sv.logrank_test(t, e, g)
    hr = sv.fit_cox_arm(t, e, g, reference="standard")
    assert (res.logrank.statistic, res.logrank.p, res.logrank.test) == (lr["chisq"], lr["p"], "log-rank")
    assert (res.hazard_ratio.estimate.value, res.hazard_ratio.wald.p, res.hazard_ratio.lr.p) == \
        (hr["estimate"], hr["p"], hr["lr_p"])


def test_number_at_risk_counts_patients_still_followed_and_events_so_far():
    table = sv.number_at_risk([1, 2, 3, 6, 7], [1, 0, 1, 1, 0], [0, 3, 6])
    assert table["n_risk"].tolist() == [5, 3, 2]
    assert table["cum_events"].tolist() == [0, 2, 3]



@pytest.mark.parametrize(("endpoint", "arm"), [("os", "CMT"), ("os", "CMT+ICI"), ("pfs", "CMT+ICI")])
def test_default_cohort_medians_are_within_half_a_month_of_the_published_ones(endpoint, arm):
    """Published (abstract): median OS 10.8 and 20.8 months, median PFS 11.7 months with CMT + ICI."""
    published = yaml.safe_load((REF.parents[1] / "data" / "published.yaml").read_text())["abstract"]
    if not COHORT_CSV.exists():
        pytest.skip("no default cohort")
    from helpers.data.load import load_study

    res = analyse_endpoint(load_study(COHORT_CSV.parent), endpoint, PLAN)
    assert abs(res.arm(arm).median.value - published[f"{endpoint}_median_months"][arm]) <= 0.5


# ------------------------------------------------------------------------------ TTET01 summary, PH, follow-up
# Reference values: tests/reference/survival_summary.R (quantile(survfit), survdiff, coxph, cox.zph(transform
# = "km"), coxph on survSplit data, summary(survfit, times)$std.err, reverse Kaplan-Meier, cut-off arithmetic).
_SUMMARY = json.loads((REF / "survival_summary.json").read_text())
SUMMARY, SUMMARY_META = _SUMMARY["datasets"], _SUMMARY["meta"]
SUMMARY_SETS = [name for name in SUMMARY if name in ("lung", "cohort_os", "cohort_pfs")]


def test_summary_reference_values_were_computed_on_the_current_default_cohort():
    """R: tests/reference/survival_summary.R records tools::md5sum("data/cohort.csv")."""
    assert _md5(COHORT_CSV) == SUMMARY_META["cohort_md5"], "re-run: Rscript tests/reference/survival_summary.R"


def _two_groups(name):
    t, e, g = _data(name)
    levels = SUMMARY[name]["levels"]
    return t, e, g, levels


@pytest.mark.parametrize("name", SUMMARY_SETS)
def test_quartiles_and_their_ci_match_R_quantile_survfit(name):
    t, e, g, levels = _two_groups(name)
    for lv in levels:
        q = sv.survival_quantiles(t[g == lv], e[g == lv], (0.25, 0.5, 0.75))
        ref = SUMMARY[name]["groups"][lv]["quantiles"]
        _close(q["estimate"].tolist(), ref["estimate"])
        _close(q["lower"].tolist(), ref["lower"])
        _close(q["upper"].tolist(), ref["upper"])


def test_quantile_limits_follow_R_where_the_upper_band_is_not_monotone():
    """R's quantile() and print.survfit() disagree there; the median shown is print's (first crossing)."""
    t, e, g, _ = _two_groups("cohort_os")
    arm = "CMT+ICI"
    q = sv.survival_quantiles(t[g == arm], e[g == arm], (0.5,))
    med = sv.median_survival(t[g == arm], e[g == arm])
    _close(q["upper"].tolist(), SUMMARY["cohort_os"]["groups"][arm]["quantiles"]["upper"][1])
    _close(med["upper"], GOLDEN["cohort_os"]["groups"][arm]["median_log"][2])


@pytest.mark.parametrize("name", SUMMARY_SETS)
def test_observed_range_flags_censored_extremes_as_R(name):
    t, e, g, levels = _two_groups(name)
    for lv in levels:
        assert sv.observed_range(t[g == lv], e[g == lv]) == pytest.approx(SUMMARY[name]["groups"][lv]["range"])


@pytest.mark.parametrize("name", SUMMARY_SETS)
def test_rate_differences_match_R_summary_survfit_std_err(name):
    t, e, g, (ref, other) = _two_groups(name)
    times = SUMMARY[name]["times"]
    d = sv.rate_difference(t[g == ref], e[g == ref], t[g == other], e[g == other], times)
    golden = SUMMARY[name]["rate_difference"]
    for column in ("estimate", "se", "lower", "upper", "p"):
        _close(d[column].tolist(), golden[column])


@pytest.mark.parametrize("name", SUMMARY_SETS)
def test_ph_test_of_the_arm_matches_R_cox_zph_km(name):
    t, e, g, (ref, _) = _two_groups(name)
    ph = sv.ph_test_arm(t, e, g, reference=ref)
    _close([ph["chisq"], ph["p"]], [SUMMARY[name]["ph"]["chisq"], SUMMARY[name]["ph"]["p"]])


@pytest.mark.parametrize("name", SUMMARY_SETS)
def test_piecewise_hazard_ratios_match_R_coxph_on_survsplit_data(name):
    t, e, g, (ref, _) = _two_groups(name)
    pieces = sv.piecewise_hazard_ratios(t, e, g, ref, SUMMARY[name]["cuts"])
    golden = SUMMARY[name]["piecewise"]
    _close([p["coef"] for p in pieces], golden["coef"])
    _close([p["se"] for p in pieces], golden["se"])
    _close([p["p"] for p in pieces], golden["p"])


def test_a_period_without_events_in_an_arm_has_no_piecewise_hazard_ratio():
    t = np.array([1, 2, 3, 8, 9, 10, 2, 3, 9, 11.0])
    e = np.array([1, 1, 1, 1, 1, 1, 1, 1, 0, 0])
    g = np.array(["a"] * 6 + ["b"] * 4)
    pieces = sv.piecewise_hazard_ratios(t, e, g, "a", [5])
    assert pieces[0]["estimate"] is not None
    assert pieces[1]["estimate"] is None and pieces[1]["reason"] == "no_events_in_arm"


def _default_study():
    from helpers.data.load import load_study

    return load_study(COHORT_CSV.parent)


@functools.lru_cache(maxsize=1)
def _default_results():
    study = _default_study()
    return study, {ep: analyse_endpoint(study, ep, PLAN) for ep in ("os", "pfs")}


def test_typed_results_carry_the_R_quartiles_events_and_ph_test_of_the_default_cohort():
    _, results = _default_results()
    for ep, res in results.items():
        golden = SUMMARY[f"cohort_{ep}"]
        for arm in res.arms:
            g = golden["groups"][arm.arm]
            _close([q.value for q in arm.quartiles], g["quantiles"]["estimate"])
            assert arm.events == g["events"] and arm.n == g["n"]
        _close(res.ph_test.p, golden["ph"]["p"])
        _close(res.logrank.p, golden["logrank"]["p"])
        _close([res.hazard_ratio.estimate.value, res.hazard_ratio.estimate.lower, res.hazard_ratio.estimate.upper],
               [golden["cox"]["hr"], golden["cox"]["lower"], golden["cox"]["upper"]])
    by_cause = SUMMARY["cohort_pfs"]["events_by_cause"]
    for arm in results["pfs"].arms:
        assert dict(arm.events_by_cause) == by_cause[arm.arm]
        assert sum(arm.events_by_cause.values()) == arm.events


def test_an_endpoint_whose_ph_test_rejects_leads_with_rmst_and_rates_and_adds_piecewise_hazard_ratios():
    study, results = _default_results()
    for ep, res in results.items():
        text = results_payload(res, study)["text"]
        if res.ph_rejected:
            assert res.piecewise and len(res.piecewise) == len(PLAN["piecewise_cuts_months"]) + 1
            assert text["summary_sentence"].startswith("The hazards of")
            assert text["summary_sentence"].index("restricted mean") < text["summary_sentence"].index("hazard ratio over")
            assert "Hazard ratios by period" in text["summary_sentence"]
        else:
            assert not res.piecewise
            assert "proportional hazards were not rejected" in text["summary_sentence"]
    assert any(r.ph_rejected for r in results.values()) and not all(r.ph_rejected for r in results.values())


def test_pfs_censoring_rule_used_is_the_one_the_methods_state():
    study, results = _default_results()
    assert study.pfs_censoring == "last_assessment" == results["pfs"].censoring
    text = results_payload(results["pfs"], study)["text"]
    assert "last adequate tumour assessment" in text["censoring_sentence"]
    from helpers.report.survival import censoring_sentence

    assert "last follow-up" in censoring_sentence("last_followup")
    assert "no date of the last tumour assessment" in censoring_sentence("last_followup")


def test_results_file_has_the_issue_keys_for_each_endpoint():
    study, results = _default_results()
    for ep, res in results.items():
        payload = results_payload(res, study, xmax=60)
        assert isinstance(payload["ph_test"]["p"], float)
        for arm in ("CMT", "CMT+ICI"):
            assert set(payload["quartiles"][arm]) == {"25", "50", "75"}
            assert set(payload["range"][arm]) == {"min", "max", "min_censored", "max_censored"}
            assert payload["events_by_cause"][arm]
        json.dumps(payload, allow_nan=False)
    assert "106.3" in results_payload(results["os"], study, xmax=60)["text"]["axis_note"]
    assert results_payload(results["os"], study)["text"]["axis_note"] == ""


def test_follow_up_summary_matches_R_potential_follow_up_and_loss_to_follow_up():
    from helpers.analyses.survival import analyse_followup
    from helpers.report.survival import followup_payload, make_followup_summary_table

    study = _default_study()
    summary = analyse_followup(study, PLAN)
    golden = SUMMARY["followup"]
    for arm in summary.arms:
        g = golden[arm.arm]
        _close([arm.potential_median, arm.potential_min, arm.potential_max],
               [g["potential_median"], g["potential_min"], g["potential_max"]])
        assert (arm.lost_to_followup, arm.alive) == (g["lost_to_followup"], g["alive"])
        _close([arm.reverse_km.min_censored, arm.reverse_km.max_censored], [g["censored_min"], g["censored_max"]])
        _close(arm.reverse_km.median.value, SUMMARY["cohort_os"]["groups"][arm.arm]["followup_median"][0])
    payload = followup_payload(summary, study)
    assert payload["CMT_ICI"]["lost_to_followup"] == golden["CMT+ICI"]["lost_to_followup"]
    assert payload["reference"]["lost_to_followup"] == golden["CMT"]["lost_to_followup"]
    table = make_followup_summary_table(summary, study)
    assert not table.isna().any().any() and "Lost to follow-up, n (%)" in set(table["Quantity"])


def test_tte_table_follows_the_ttet01_layout_and_is_all_text():
    from helpers.report.survival import make_piecewise_table, make_tte_table, tte_footnote

    study, results = _default_results()
    table = make_tte_table(results["pfs"], study)
    quantities = [q.strip() for q in table["Quantity"]]
    for row in ("Patients with event, n (%)", "Progression", "Death without progression",
                "Patients without event, n (%)", "Median (95% CI)", "25th percentile (95% CI)",
                "75th percentile (95% CI)", "Range", "Log-rank P", "Hazard ratio (95% CI)",
                "Difference in event-free rate, % (95% CI)"):
        assert row in quantities
    assert table.columns[1].endswith("(N = 87)")
    assert all(isinstance(v, str) for v in table.to_numpy().ravel())
    assert "+" in " ".join(table.iloc[:, 2])              # a censored maximum is flagged
    assert "last adequate tumour assessment" in tte_footnote(results["pfs"], study)
    assert "Death without progression" not in " ".join(make_tte_table(results["os"], study)["Quantity"])
    pw = make_piecewise_table(list(results.values()), study)
    assert set(pw["Endpoint"]) - {""} == {"Progression-free survival"}


def test_veteran_fixture_without_pfs_or_cut_off_gives_the_summary_and_follow_up_tables():
    from helpers.analyses.survival import analyse_followup
    from helpers.report.survival import make_followup_summary_table, make_tte_table

    study = _veteran_study()
    res = analyse_endpoint(study, "os", PLAN)
    assert isinstance(res.ph_test.p, float)
    assert not make_tte_table(res, study).isna().any().any()
    summary = analyse_followup(study, PLAN)
    assert not summary.cutoff_known
    assert not make_followup_summary_table(summary, study).isna().any().any()
