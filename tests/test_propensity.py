"""Tests of helpers/stats/propensity.py, helpers/stats/evalue.py, helpers/analyses/sensitivity.py and
helpers/report/sensitivity.py.

Golden values: tests/reference/propensity.R (R 4.2.2, survival 3.5-3) on survival::veteran, copied into
tests/reference/propensity.json. Each test names the R call it mirrors. Deliberate difference: lifelines'
robust SE with Efron ties differs from R by about 0.2% (its score residuals treat tied events differently),
so the reported robust SE comes from this module's own sandwich, which matches R to rounding error.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers.stats import evalue as E
from helpers.stats import propensity as P

REF = json.loads((Path(__file__).parent / "reference" / "propensity.json").read_text(encoding="utf-8"))
VET = pd.DataFrame(REF["data"])
PS_COLS = ["karno", "age", "diagtime", "prior10", "small", "adeno", "large"]
RTOL = 1e-6


def approx(value):
    return pytest.approx(value, rel=RTOL, abs=1e-9)


def _weights(name):
    return np.ones(len(VET)) if name == "unweighted" else np.asarray(REF["weights"][name])


# ----------------------------------------------------------------------------- simulated cohort
def simulate_patients(n: int = 160, seed: int = 1, kps_only_treated: bool = True) -> pd.DataFrame:
    """A small cohort with the study's column names; treatment depends on grade and era."""
    rng = np.random.default_rng(seed)
    grade = rng.choice(["G1", "G2", "G3-G4"], n, p=[0.1, 0.4, 0.5])
    sex = rng.choice(["Male", "Female"], n, p=[0.8, 0.2])
    age = rng.normal(60, 8, n).round()
    year = rng.integers(2014, 2025, n)
    lin = -1.0 + 0.8 * (grade == "G3-G4") + 0.5 * (year >= 2019) * 3 - 3 * (year < 2019)
    treated = rng.random(n) < 1 / (1 + np.exp(-lin))
    kps = np.where(treated & (rng.random(n) < 0.05) & kps_only_treated, "< 70", ">= 70")
    hazard = 0.08 * np.exp(-0.6 * treated + 0.4 * (grade == "G3-G4"))
    os_t = rng.exponential(1 / hazard)
    cens = rng.uniform(6, 60, n)
    pfs_t = os_t * rng.uniform(0.3, 1.0, n)
    return pd.DataFrame({
        "arm": pd.Categorical(np.where(treated, "CMT+ICI", "CMT"), categories=["CMT", "CMT+ICI"]),
        "age": age, "sex": pd.Categorical(sex, categories=["Male", "Female"]),
        "grade_group": pd.Categorical(grade, categories=["G1", "G2", "G3-G4"]),
        "kps_group": pd.Categorical(kps, categories=[">= 70", "< 70"]),
        "start_date": pd.to_datetime([f"{y}-06-01" for y in year]),
        "os_months": np.minimum(os_t, cens), "os_event": (os_t <= cens).astype(int),
        "pfs_months": np.minimum(pfs_t, cens), "pfs_event": (pfs_t <= cens).astype(int),
        "ici_cycles": rng.integers(0, 10, n)})


SIM_TERMS = ["age", "sex:Female", "grade_group:G3-G4", "kps_group:< 70"]
TREATED = "CMT+ICI"


# ----------------------------------------------------------------------------- R goldens
def test_propensity_score_matches_r_glm_logistic_fitted_values_and_c_statistic():
    """R: glm(treated ~ karno + age + diagtime + prior10 + small + adeno + large, family = binomial())."""
    res = P._fit_logit(VET[PS_COLS].to_numpy(float), VET["treated"].to_numpy(float))
    assert res.params == approx(list(REF["glm"]["coef"].values()))
    assert res.predict() == approx(REF["glm"]["ps"])
    assert P.c_statistic(VET["treated"], res.predict()) == approx(REF["glm"]["c_statistic"])


@pytest.mark.parametrize("estimand,name", [("ATE", "iptw"), ("ATO", "ato")])
def test_weights_match_the_r_formulas(estimand, name):
    """R: p1 / ps and (1 - p1) / (1 - ps) (stabilised IPTW); 1 - ps and ps (overlap)."""
    w = P.compute_weights(REF["glm"]["ps"], VET["treated"], estimand)
    assert w == approx(REF["weights"][name])


@pytest.mark.parametrize("weights", ["iptw", "ato", "unweighted"])
@pytest.mark.parametrize("ties", ["efron", "breslow"])
def test_weighted_cox_coefficient_and_robust_se_match_r_coxph(weights, ties):
    """R: coxph(Surv(time, status) ~ treated, weights = w, robust = TRUE, ties = ties)."""
    ref = REF["coxph"][f"{weights}_{ties}"]
    fit = P.fit_weighted_cox(VET["time"], VET["status"], VET["treated"], _weights(weights), ties)
    assert fit["coef"] == approx(ref["coef"])
    assert fit["se_robust"] == approx(ref["robust_se"])
    assert fit["se_naive"] == approx(ref["naive_se"])
    assert P.cox_arm_coefficient(VET["time"], VET["status"], VET["treated"], _weights(weights), ties) \
        == approx(ref["coef"])


@pytest.mark.parametrize("weights", ["iptw", "ato"])
def test_lifelines_robust_cox_agrees_with_the_own_fit_on_the_coefficient_and_within_half_a_percent_on_the_se(weights):
    """lifelines CoxPHFitter(weights_col, robust=True) vs R coxph(robust = TRUE): coefficient to 1e-6;
    the robust SE differs slightly (Efron tie handling in lifelines' score residuals), hence the own sandwich."""
    ref = REF["coxph"][f"{weights}_efron"]
    fit = P.fit_weighted_cox_lifelines(VET["time"], VET["status"], VET["treated"], _weights(weights))
    assert fit["coef"] == pytest.approx(ref["coef"], abs=1e-6)
    assert fit["se_robust"] == pytest.approx(ref["robust_se"], rel=5e-3)


@pytest.mark.parametrize("weights", ["iptw", "ato"])
@pytest.mark.parametrize("arm,value", [("control", 0), ("treated", 1)])
def test_weighted_kaplan_meier_matches_r_survfit_with_weights(weights, arm, value):
    """R: summary(survfit(Surv(time, status) ~ treated, weights = w), times = c(30, 90, 180, 365), extend = TRUE)."""
    s = VET["treated"] == value
    w = _weights(weights)[s.to_numpy()]
    got = P.weighted_km_at(VET.loc[s, "time"], VET.loc[s, "status"], w, REF["survfit"][weights]["times"])
    assert got == approx(REF["survfit"][weights][arm])


@pytest.mark.parametrize("weights", ["none", "iptw", "ato"])
@pytest.mark.parametrize("column", ["karno", "age", "prior10", "small"])
def test_weighted_standardised_difference_matches_the_formula_written_out_in_r(weights, column):
    """R: (m1 - m0) / sqrt((v1 + v0) / 2), weighted means, p(1 - p) or the weighted variance (propensity.R)."""
    w = None if weights == "none" else np.asarray(REF["weights"][weights])
    got = P.standardized_difference(VET[column], VET["treated"], w)
    assert got == approx(REF["smd"][weights][column])


# ----------------------------------------------------------------------------- E-value
def test_evalue_reproduces_the_published_worked_example_of_vanderweele_and_ding():
    """Ann Intern Med 2017;167:268: breastfeeding RR 3.9 (95% CI 1.8-8.7) -> E-values 7.2 and 3.0."""
    assert E.evalue_rr(3.9) == pytest.approx(7.2, abs=0.07)
    assert E.evalue_ci(1.8, 8.7) == pytest.approx(3.0, abs=1e-12)


@pytest.mark.parametrize("key,fun", [
    ("rr_3.9", lambda: E.evalue_rr(3.9)),
    ("rr_1.8", lambda: E.evalue_rr(1.8)),
    ("hr_common_0.55", lambda: E.evalue_hr(0.55, 0.4, 0.7)["evalue_point"]),
    ("hr_common_0.80", lambda: E.evalue_hr(0.80, 0.6, 0.9)["evalue_point"]),
    ("hr_rare_0.55", lambda: E.evalue_hr(0.55, 0.4, 0.7, rare=True)["evalue_point"]),
])
def test_evalue_formulas_match_r(key, fun):
    """R: rr + sqrt(rr (rr - 1)) after inversion; (1 - 0.5^sqrt(HR)) / (1 - 0.5^sqrt(1/HR)) for a common outcome."""
    assert fun() == approx(REF["evalue"][key])


def test_evalue_of_a_confidence_interval_that_includes_one_is_one():
    assert E.evalue_hr(0.8, 0.6, 1.1)["evalue_ci"] == 1.0


def test_evalue_of_a_protective_hazard_ratio_uses_the_upper_limit():
    out = E.evalue_hr(0.5, 0.3, 0.8, rare=True)
    assert out["evalue_ci"] == pytest.approx(E.evalue_rr(1 / 0.8))


# ----------------------------------------------------------------------------- design and support
def test_indicator_terms_join_levels_with_a_bar_and_keep_plus_signs_in_level_names():
    p = pd.DataFrame({"n_stage_group": pd.Categorical(["N0", "N+", "N+"], categories=["N0", "N+"]),
                      "h": pd.Categorical(["A", "B", "C"], categories=["A", "B", "C"])})
    X = P.make_design(p, ["n_stage_group:N+", "h:B|C", "h"])
    assert X["n_stage_group:N+"].tolist() == [0, 1, 1]
    assert X["h:B|C"].tolist() == [0, 1, 1]
    assert list(X.columns) == ["n_stage_group:N+", "h:B|C", "h:B", "h:C"]


@pytest.mark.parametrize("term", ["ici_cycles", "os_months"])
def test_post_baseline_variables_are_refused_in_the_propensity_model(term):
    """Post-baseline columns come from the dictionary's timing (passed in); outcome columns always."""
    with pytest.raises(P.PropensityInputError, match="after time zero"):
        P.make_design(simulate_patients(), ["age", term], post_baseline=["ici_cycles"])


def test_a_missing_value_in_a_model_term_is_an_error_listing_the_term():
    p = simulate_patients()
    p.loc[3, "age"] = np.nan
    with pytest.raises(P.PropensityInputError, match="'age' has 1 missing"):
        P.make_design(p, ["age"])


def test_a_level_seen_in_one_arm_only_excludes_its_patients_from_the_common_support():
    p = simulate_patients()
    n_low = int((p["kps_group"] == "< 70").sum())
    assert n_low > 0
    support = P.restrict_to_common_support(p, SIM_TERMS, TREATED)
    assert int((~support.keep).sum()) == n_low
    assert "kps_group:< 70" in support.dropped_terms and "kps_group:< 70" not in support.terms


def test_overlap_weights_balance_every_model_term_exactly_and_give_the_arms_equal_total_weight():
    p = simulate_patients()
    fit = P.fit_propensity(p, SIM_TERMS, TREATED)
    kept = p.loc[fit.ps.index]
    w = P.compute_weights(fit.ps, fit.treated, "ATO")
    t = fit.treated.to_numpy()
    assert w[t == 1].sum() == pytest.approx(w[t == 0].sum(), rel=1e-8)
    for term in fit.terms:
        x = P.make_design(kept, [term])[term]
        assert P.standardized_difference(x, t, w) == pytest.approx(0, abs=1e-8)


def test_iptw_truncation_clips_the_weights_at_the_pooled_quantiles():
    ps = np.linspace(0.02, 0.98, 50)
    t = (np.arange(50) % 2).astype(float)
    raw = P.compute_weights(ps, t, "ATE")
    trimmed = P.compute_weights(ps, t, "ATE", (0.05, 0.95))
    lo, hi = np.quantile(raw, [0.05, 0.95])
    assert trimmed.min() == pytest.approx(lo) and trimmed.max() == pytest.approx(hi)


def test_c_statistic_of_a_constant_score_is_one_half():
    assert P.c_statistic([0, 1, 0, 1], [0.3] * 4) == 0.5


# ----------------------------------------------------------------------------- bootstrap
def test_bootstrap_is_identical_for_one_and_two_workers_with_the_same_seed():
    p = simulate_patients()
    one = P.bootstrap_weighted_hr(p, SIM_TERMS, 24, 7, (0.01, 0.99), TREATED, workers=1)
    two = P.bootstrap_weighted_hr(p, SIM_TERMS, 24, 7, (0.01, 0.99), TREATED, workers=2)
    np.testing.assert_array_equal(one["coefs"], two["coefs"])


def test_bootstrap_with_another_seed_draws_other_resamples():
    a = P.draw_bootstrap_indices(50, 10, seed=1)
    b = P.draw_bootstrap_indices(50, 10, seed=2)
    assert a.shape == (10, 50) and not np.array_equal(a, b)
    np.testing.assert_array_equal(a, np.random.default_rng(1).integers(0, 50, size=(10, 50)))


def test_a_bootstrap_replicate_repeats_the_whole_pipeline():
    """Replicate 0 equals the point estimate pipeline run on the resampled patients by hand."""
    p = simulate_patients()
    idx = P.draw_bootstrap_indices(len(p), 1, seed=3)[0]
    boot = P.bootstrap_weighted_hr(p, SIM_TERMS, 1, 3, None, TREATED, workers=1)
    resampled = p.iloc[idx].reset_index(drop=True)
    fit = P.fit_propensity(resampled, SIM_TERMS, TREATED)
    kept = resampled.loc[fit.ps.index]
    w = P.compute_weights(fit.ps, fit.treated, "ATO")
    expected = P.cox_arm_coefficient(kept["os_months"], kept["os_event"], fit.treated, w)
    assert boot["coefs"][0, 1] == pytest.approx(expected, rel=1e-10)


def test_bootstrap_logistic_engine_gives_the_statsmodels_and_r_glm_fit():
    """R: fitted(glm(..., family = binomial())); the bootstrap's own Newton-Raphson equals statsmodels Logit."""
    X, t = VET[PS_COLS].to_numpy(float), VET["treated"].to_numpy(float)
    assert P._logit_newton(X, t) == approx(REF["glm"]["ps"])
    assert P._logit_newton(X, t) == approx(P._fit_logit(X, t).predict())


def test_support_rule_is_applied_until_no_one_arm_level_remains():
    X = np.array([[1, 0], [0, 1], [0, 0], [0, 0], [0, 1], [0, 0]], float)
    t = np.array([1, 1, 1, 0, 0, 0], float)
    keep, cols = P._support_mask(X, t, np.array([True, True]))
    assert keep.tolist() == [False, True, True, True, True, True]
    assert cols.tolist() == [False, True]


@pytest.mark.parametrize("n_boot", [1, 3, 9, 17])
def test_bootstrap_returns_one_row_per_replicate_for_any_number_of_replicates(n_boot):
    out = P.bootstrap_weighted_hr(simulate_patients(), SIM_TERMS, n_boot, 2, None, TREATED, workers=2)
    assert out["coefs"].shape == (n_boot, 4)


def test_multivariable_cox_arm_hazard_ratio_matches_r_coxph():
    """R: coxph(Surv(time, status) ~ treated + karno + age + prior10 + small) (Efron ties, Wald CI and P)."""
    ref = REF["multivariable"]
    p = VET.assign(arm=pd.Categorical(np.where(VET["treated"] == 1, "CMT+ICI", "CMT"), categories=["CMT", "CMT+ICI"]),
                   os_months=VET["time"], os_event=VET["status"])
    fit = P.fit_adjusted_cox(p, ["karno", "age", "prior10", "small"], "os", TREATED)
    assert np.log(fit["hr"]) == approx(ref["coef"])
    assert fit["lower"] == approx(ref["lower"]) and fit["upper"] == approx(ref["upper"])
    assert fit["p"] == approx(ref["p"])




# ----------------------------------------------------------------------------- whole analysis (analyses + report)
def make_study(patients: pd.DataFrame, design: str = "observational", reference: str = "CMT",
               experimental: str = "CMT+ICI"):
    """A minimal study object: patients, configuration and a typed dictionary (labels and timing)."""
    from types import SimpleNamespace
    labels = {"age": "Age", "sex": "Sex", "grade_group": "Grade", "kps_group": "KPS score",
              "ici_cycles": "Cycles received", "start_year": "Year of treatment start", "marker": "Marker",
              "score": "Score"}
    covs = {n: SimpleNamespace(timing="post-baseline" if n == "ici_cycles" else "baseline", levels={})
            for n in labels if n in patients.columns and n != "start_year"}
    dictionary = SimpleNamespace(covariates=covs, groupings={}, exposures={}, label=lambda n: labels.get(n, n),
                                 level_label=lambda n, c: str(c),
                                 baseline=lambda: [n for n, c in covs.items() if c.timing == "baseline"],
                                 post_baseline=lambda: [n for n, c in covs.items() if c.timing != "baseline"])
    config = SimpleNamespace(reference_arm=reference, experimental_arm=experimental,
                             arm_order=(reference, experimental), design=design,
                             arm_label=lambda c: {reference: "Reference", experimental: "Experimental"}[c])
    return SimpleNamespace(patients=patients, config=config, dictionary=dictionary, folder=None)


def _run(patients, design="observational", **choices):
    from helpers.analyses.sensitivity import run_sensitivity
    plan = {"ps_covariates": SIM_TERMS, "n_bootstrap": 40, **choices}
    return run_sensitivity(make_study(patients, design), plan, seed=5, workers=1)


@pytest.fixture(scope="module")
def sim_results():
    return _run(simulate_patients(n=200, seed=11), balance_covariates=["start_year"])


def test_results_payload_has_the_sections_the_report_quotes(sim_results):
    from helpers.build.results import to_jsonable
    from helpers.report import sensitivity as R
    payload = to_jsonable(R.sensitivity_payload(sim_results))
    assert {"iptw", "overlap", "adjusted", "evalue", "balance", "era", "text"} <= set(payload)
    json.dumps(payload, allow_nan=False)
    for key in ("conclusion", "statement_os", "evalue_os", "hr_os_ATO", "c_statistic", "balance_ATE",
                "start_year_sentence", "design_sentence"):
        assert isinstance(payload["text"][key], str) and payload["text"][key]


def test_the_treated_arm_is_the_experimental_arm_of_the_configuration():
    p = simulate_patients(n=200, seed=11)
    p["arm"] = p["arm"].cat.rename_categories({"CMT": "standard", "CMT+ICI": "test"})
    from helpers.analyses.sensitivity import run_sensitivity
    res = run_sensitivity(make_study(p, reference="standard", experimental="test"),
                          {"ps_covariates": SIM_TERMS, "n_bootstrap": 10}, seed=5, workers=1)
    assert res.arms.experimental == "test"
    assert res.ps_fit.treated.sum() == (res.patients["arm"] == "test").sum()
    assert {"mean_standard", "mean_test"} <= set(res.balance.columns)


def test_era_analysis_keeps_only_the_years_in_which_both_arms_were_treated(sim_results):
    lo, hi = sim_results.era.years
    p = sim_results.all_patients
    assert lo == p.loc[p["arm"] == "CMT+ICI", "start_year"].min()
    assert hi == p.loc[p["arm"] == "CMT", "start_year"].max()


def test_display_tables_have_one_row_per_analysis_and_endpoint(sim_results):
    from helpers.report import sensitivity as R
    hr = R.make_hr_table(sim_results)
    assert hr["Analysis"].str.contains("Overlap weights").sum() == 2
    assert len(R.make_evalue_table(sim_results)) == 2
    assert "SMD overlap (ATO)" in R.make_balance_display(sim_results).columns


@pytest.mark.parametrize("plot", ["plot_ps_overlap", "plot_love", "plot_weighted_km"])
def test_figures_are_returned_not_shown(sim_results, plot):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from helpers.report import sensitivity as R
    fig = getattr(R, plot)(sim_results)
    assert isinstance(fig, matplotlib.figure.Figure)
    plt.close(fig)


# ----------------------------------------------------------------------------- bugs of issue 12
def test_the_weighted_smd_of_a_covariate_constant_in_the_cohort_is_zero():
    """A cohort whose patients all started in one year: start-year SMD 0 (was 1.99 from rounding)."""
    p = simulate_patients(n=200, seed=11)
    p["start_date"] = pd.Timestamp("2021-03-01") + pd.to_timedelta(np.arange(len(p)) % 200, unit="D")
    t = (p["arm"] == "CMT+ICI").to_numpy(float)
    w = np.random.default_rng(0).uniform(0.1, 3, len(p))
    year = np.full(len(p), 2021.0)
    assert P.standardized_difference(year, t, w) == 0.0
    assert P.standardized_difference(year, t) == 0.0
    res = _run(p, balance_covariates=["start_year"])
    row = res.balance[res.balance["term"] == "start_year"].iloc[0]
    assert row["smd_unweighted"] == 0 and row["smd_ATE"] == 0 and row["smd_ATO"] == 0


def test_a_covariate_that_separates_the_arms_is_named_and_the_rest_builds():
    from helpers.build.results import to_jsonable
    from helpers.report import sensitivity as R
    p = simulate_patients(n=200, seed=11)
    p["score"] = np.where(p["arm"] == "CMT+ICI", 10.0, 0.0) + np.random.default_rng(1).uniform(0, 1, len(p))
    res = _run(p, ps_covariates=SIM_TERMS + ["score"])
    assert not res.estimable and res.main.reason == "separation" and res.main.terms == ("score",)
    text = R.not_estimable_text(res.main, res)
    assert text.startswith("not estimable:") and "Score" in text and "separates the arms" in text
    payload = to_jsonable(R.sensitivity_payload(res))
    json.dumps(payload, allow_nan=False)
    assert "Score" in payload["text"]["conclusion"]
    assert any("Score" in c for c in payload["caveats"])
    for make in (R.make_ps_model_table, R.make_weight_table, R.make_balance_display, R.make_hr_table,
                 R.make_evalue_table):
        assert len(make(res))
    assert "Score" in R.make_hr_table(res).iloc[3, 2]


def test_an_indicator_that_separates_the_arms_is_named_not_a_missing_arm_error():
    """A level in one arm only for every patient: the common support empties an arm -> named, not an error."""
    from helpers.report import sensitivity as R
    p = simulate_patients(n=200, seed=11)
    p["marker"] = pd.Categorical(np.where(p["arm"] == "CMT+ICI", "pos", "neg"), categories=["neg", "pos"])
    res = _run(p, ps_covariates=SIM_TERMS + ["marker:pos"])
    assert not res.estimable and "marker:pos" in res.main.terms
    assert "Marker: pos" in R.not_estimable_text(res.main, res)
    assert "not estimable" in R.sensitivity_payload(res)["text"]["hr_os_ATO"]


def test_an_arm_emptied_by_the_common_support_is_not_estimable_not_a_division_by_zero():
    p = simulate_patients(n=120, seed=3)
    treated = p["arm"] == "CMT+ICI"
    p["kps_group"] = pd.Categorical(np.where(treated, "< 70", ">= 70"), categories=[">= 70", "< 70"])
    fit = P.fit_propensity(p, SIM_TERMS, TREATED)
    assert isinstance(fit, P.PropensityNotEstimable) and fit.reason == "empty_arm"
    assert fit.terms == ("kps_group:< 70",)
    res = _run(p)
    assert not res.estimable
    assert all(not isinstance(e, dict) for e in res.evalues.values())


# ----------------------------------------------------------------------------- generated sentences
def test_robust_is_said_only_when_every_baseline_covariate_is_balanced(sim_results):
    from helpers.report import sensitivity as R
    text = R.describe_robustness(sim_results)
    balanced = sim_results.balance_achieved_all()
    assert ("robust" in text["conclusion"]) == (balanced and any(v["consistent"] for v in sim_results.verdicts().values()))
    if not balanced:
        assert "associations" in text["conclusion"] and text["robust_os"] == "no"


def test_randomised_design_says_the_weighting_checks_chance_imbalance():
    from helpers.report import sensitivity as R
    res = _run(simulate_patients(n=200, seed=11), design="randomised", n_bootstrap=10)
    assert "randomised" in R.design_sentence(res) and "chance" in R.design_sentence(res)
    assert "chance imbalance" in R.describe_robustness(res)["conclusion"]
    assert "non-randomised" not in R.describe_robustness(res)["conclusion"]


def test_start_year_predicts_the_arm_only_when_its_c_statistic_or_overlap_says_so(sim_results):
    from helpers.analyses.sensitivity import start_year_association
    from helpers.report import sensitivity as R
    p = simulate_patients(n=200, seed=11)
    mixed = p.assign(start_date=pd.Timestamp("2020-01-01") + pd.to_timedelta(np.arange(len(p)) * 9, unit="D"))
    weak = start_year_association(mixed, TREATED, 0.9)
    assert not weak.predicts_arm and weak.c_statistic < 0.9
    strong = start_year_association(p, TREATED, 0.5)
    assert strong.predicts_arm
    res = _run(mixed, n_bootstrap=10)
    assert "almost perfectly" not in R.start_year_sentence(res)


def test_no_arm_code_or_study_word_is_hard_coded_in_the_sensitivity_helpers():
    import inspect
    from helpers.analyses import sensitivity as A
    from helpers.report import sensitivity as R
    for module in (P, A, R):
        source = inspect.getsource(module)
        for word in ("CMT", "ICI", "chemotherapy", "oesophag", "Dai", "kps", "ici_cycles"):
            assert word not in source, (module.__name__, word)


# ----------------------------------------------------------------------------- CI method
def test_auto_ci_method_is_the_bootstrap_up_to_the_limit_and_the_robust_ci_above():
    assert P.resolve_ci_method("auto", P.BOOTSTRAP_MAX_N) == "bootstrap"
    assert P.resolve_ci_method("auto", P.BOOTSTRAP_MAX_N + 1) == "robust"
    assert P.resolve_ci_method("bootstrap", 10**6) == "bootstrap"
    assert P.resolve_ci_method("robust", 10) == "robust"
    with pytest.raises(ValueError, match="ci_method"):
        P.resolve_ci_method("percentile", 10)


def test_the_shipped_sized_cohort_gets_the_bootstrap_by_default(sim_results):
    from helpers.report import sensitivity as R
    assert sim_results.choices.ci_method == "auto" and sim_results.ci_method == "bootstrap"
    assert "percentile bootstrap" in R.ci_sentence(sim_results)


@pytest.fixture(scope="module")
def robust_results():
    return _run(simulate_patients(n=200, seed=11), ci_method="robust")


def test_robust_ci_method_reports_the_sandwich_interval_everywhere_and_runs_no_bootstrap(robust_results, sim_results):
    from helpers.build.results import to_jsonable
    from helpers.report import sensitivity as R
    res = robust_results
    assert res.ci_method == "robust" and res.main.bootstrap["n_boot"] == 0
    for est in ("ATE", "ATO"):
        for ep in ("os", "pfs"):
            f = res.weighted[est][ep]
            assert (f["boot_lower"], f["boot_upper"]) == (f["lower"], f["upper"])
            # same point estimate as with the bootstrap: only the interval changes
            assert f["hr"] == pytest.approx(sim_results.weighted[est][ep]["hr"], rel=1e-12)
    payload = to_jsonable(R.sensitivity_payload(res))
    assert payload["config"]["ci_method_used"] == "robust"
    assert payload["overlap"]["os"]["ci_method"] == "robust (sandwich) variance"
    assert "robust (sandwich) variance" in payload["text"]["ci_sentence"]
    assert "bootstrap interval" not in payload["text"]["ci_sentence"]
    hr = R.make_hr_table(res)
    assert hr["Analysis"].str.contains("Overlap weights").sum() == 1     # no duplicate comparison row
    assert not hr["CI"].str.contains("bootstrap").any()
    assert "HR (95% robust CI)" in R.make_evalue_table(res).columns
    assert "percentile bootstrap was not run" in R.hr_footnote(res)
    assert "robust 95% CI" in R.evalue_footnote(res)


def test_bootstrap_arm_only_cox_equals_the_engine_coefficient():
    """The bootstrap's vectorised one-coefficient Newton-Raphson equals helpers.stats.cox.fit_coxph."""
    for w in ("iptw", "ato", "unweighted"):
        fit = P.fit_weighted_cox(VET["time"], VET["status"], VET["treated"], _weights(w))
        fast = P.cox_arm_coefficient(VET["time"], VET["status"], VET["treated"], _weights(w))
        assert fast == pytest.approx(fit["coef"], rel=1e-9)


def test_a_covariate_constant_within_each_arm_at_different_values_has_an_infinite_smd_shown_as_such():
    t = np.array([0, 0, 0, 1, 1, 1], float)
    x = np.where(t == 1, 2022.0, 2016.0)
    w = np.array([0.3, 0.7, 1.1, 0.2, 0.9, 1.4])
    assert P.standardized_difference(x, t, w) == np.inf
    from helpers.report.sensitivity import _smd
    assert _smd(np.inf) == "∞" and _smd(0.123) == "0.12"


def test_balance_covers_every_baseline_covariate_even_when_the_plan_lists_its_balance_terms(study):
    from helpers.analyses.sensitivity import covariate_info, uncovered_baseline
    from helpers.config import load_plan

    plan = load_plan(study.folder)["sensitivity"]
    info = covariate_info(study)
    assert uncovered_baseline(study, info, study.patients, plan["ps_covariates"] + plan["balance_covariates"]) == []
    # a term on the source covers its grouping (age covers the age group); leaving out terms adds them back
    missing = uncovered_baseline(study, info, study.patients, plan["ps_covariates"])
    assert "tumor_location" in missing and "age_group" not in missing


def test_main_treatment_effect_table_adds_stratified_log_rank_and_cox_rows_side_by_side(sim_results):
    from helpers.analyses.subgroups import run_stratified
    from helpers.report import sensitivity as R
    study = make_study(simulate_patients(n=200, seed=11))
    study.has = lambda part: False
    strat = run_stratified(study, {"factors": [{"variable": "start_year", "cuts": [2019]}]})
    table = R.make_hr_table(sim_results, strat, study)
    names = table["Analysis"].tolist()
    assert names[-3:] == ["Log-rank test, unstratified",
                          "Log-rank test stratified by year of treatment start (≤ 2019, > 2019)",
                          "Cox stratified by year of treatment start (≤ 2019, > 2019)"]
    assert table.iloc[-2, 2].startswith("P ")
    assert "Stratified by year of treatment start" in R.hr_footnote(sim_results, strat, study)
    # without factors the table is unchanged
    assert R.make_hr_table(sim_results, run_stratified(study, {}), study).equals(R.make_hr_table(sim_results))
