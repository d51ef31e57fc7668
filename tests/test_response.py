"""Tests of helpers/analyses/response.py against R golden values (tests/reference/response_safety.R)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers.analyses import response as rs
from helpers.build.results import to_jsonable

REFERENCE = json.loads((Path(__file__).parent / "reference" / "response_safety.json").read_text())
CASES = REFERENCE["comparisons"]
RTOL = 1e-6
ARMS = ("CMT", "CMT+ICI")


def _r_number(value):
    """R golden numbers: infinite limits are stored as the strings "Inf"/"-Inf"."""
    if isinstance(value, str):
        return math.inf if value == "Inf" else -math.inf
    return float(value)


def _patients_from_counts(counts: dict[str, dict[str, int]]) -> pd.DataFrame:
    rows = [(arm, cat) for arm in ARMS for cat, n in counts[arm].items() for _ in range(n)]
    frame = pd.DataFrame(rows, columns=["arm", "best_response"])
    frame["arm"] = pd.Categorical(frame["arm"], categories=list(ARMS))
    frame.insert(0, "patient_id", [f"P{i:03d}" for i in range(len(frame))])
    return frame


@pytest.fixture
def reference_patients() -> pd.DataFrame:
    """The hand-made 32-patient data set of the R script (one missing response)."""
    frame = pd.DataFrame(REFERENCE["response"]["patients"])
    frame["arm"] = pd.Categorical(frame["arm"], categories=list(ARMS))
    return frame


# ----------------------------------------------------------------------------- against R
@pytest.mark.parametrize("case", sorted(CASES))
def test_clopper_pearson_interval_matches_r_binom_test(case):
    """R: binom.test(k, n)$conf.int for both arms."""
    c = CASES[case]
    for k, n, golden in ((c["k1"], c["n1"], c["binom1"]), (c["k2"], c["n2"], c["binom2"])):
        rate, lower, upper = rs.binomial_ci(k, n)
        assert rate == pytest.approx(k / n)
        np.testing.assert_allclose([lower, upper], golden, rtol=RTOL, atol=1e-12)


@pytest.mark.parametrize("case", sorted(CASES))
def test_newcombe_difference_matches_wilson_limits_from_r_prop_test(case):
    """R: Newcombe method 10 from prop.test(k, n, correct = FALSE)$conf.int of each arm."""
    c = CASES[case]
    got = rs.rate_difference(c["k1"], c["n1"], c["k2"], c["n2"], method="newcombe")
    np.testing.assert_allclose(got, c["newcombe_diff"], rtol=RTOL, atol=1e-12)


@pytest.mark.parametrize("case", sorted(c for c in CASES if c != "none_in_any_arm"))
def test_wald_difference_matches_r_two_sample_prop_test(case):
    """R: prop.test(c(k1, k2), c(n1, n2), correct = FALSE)$conf.int."""
    c = CASES[case]
    got = rs.rate_difference(c["k1"], c["n1"], c["k2"], c["n2"], method="wald")
    np.testing.assert_allclose(got, c["wald_diff"], rtol=RTOL, atol=1e-12)


@pytest.mark.parametrize("case", sorted(c for c in CASES if c != "none_in_any_arm"))
def test_conditional_odds_ratio_matches_fisher_test_code_at_tight_tolerance(case):
    """R: fisher.test(x) estimate and conf.int, its own code rerun with uniroot(tol = 1e-14)."""
    c = CASES[case]
    got = rs.conditional_odds_ratio(c["k1"], c["n1"], c["k2"], c["n2"])
    np.testing.assert_allclose(got, [_r_number(v) for v in c["fisher_or_tight"]], rtol=RTOL)


@pytest.mark.parametrize("case", sorted(c for c in CASES if c != "none_in_any_arm"))
def test_conditional_odds_ratio_matches_default_fisher_test_to_its_root_finding_tolerance(case):
    """R: fisher.test(x)$estimate and $conf.int (uniroot default tolerance, so rtol 1e-3)."""
    c = CASES[case]
    got = rs.conditional_odds_ratio(c["k1"], c["n1"], c["k2"], c["n2"])
    np.testing.assert_allclose(got, [_r_number(v) for v in c["fisher_or_default"]], rtol=1e-3)


@pytest.mark.parametrize("case", sorted(c for c in CASES if c != "none_in_any_arm"))
def test_log_space_odds_ratio_solver_matches_fisher_test_code_at_tight_tolerance(case):
    """R: fisher.test(x) estimate and conf.int (uniroot(tol = 1e-14)), via the large-table code path."""
    c = CASES[case]
    got = rs._conditional_odds_ratio_logspace(c["k1"], c["n1"], c["k2"], c["n2"])
    np.testing.assert_allclose(got, [_r_number(v) for v in c["fisher_or_tight"]], rtol=RTOL)


@pytest.mark.parametrize("counts", [(30, 300, 20, 400), (250, 800, 100, 900), (2, 1500, 9, 1700),
                                    (0, 1200, 5, 900), (700, 700, 3, 600), (0, 900, 0, 800)])
def test_large_tables_use_the_log_space_solver_and_agree_with_scipy_conditional_odds_ratio(counts):
    """Same estimate and limits as scipy odds_ratio(kind="conditional") (R fisher.test's equations)."""
    from scipy.stats.contingency import odds_ratio

    k1, n1, k2, n2 = counts
    with np.errstate(all="ignore"):
        res = odds_ratio(np.array([[k1, n1 - k1], [k2, n2 - k2]]), kind="conditional")
        ci = res.confidence_interval()
    expected = [res.statistic, ci.low, ci.high]
    got = rs._conditional_odds_ratio_logspace(*counts)
    np.testing.assert_allclose(got, expected, rtol=1e-9)
    if n1 + n2 > rs.LOGSPACE_MIN_N:
        assert rs.conditional_odds_ratio(*counts) == got


def test_the_log_space_odds_ratio_stays_finite_at_one_hundred_thousand_patients():
    est, lower, upper = rs.conditional_odds_ratio(12_000, 30_000, 21_000, 70_000)
    assert 0 < lower < est < upper < math.inf
    assert est == pytest.approx((12_000 * 49_000) / (18_000 * 21_000), rel=1e-3)   # ~ sample odds ratio


EXPECTED_PAPER_TEST = {
    "orr_like": "pearson", "dcr_like": "pearson", "ici_lower": "pearson",
    "zero_responders": "fisher", "all_responders": "fisher", "min_expected_low": "fisher",
    "yates_range": "yates",
    "none_in_any_arm": "fisher",   # empty margin: one possible table, fisher.test P = 1
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_p_value_follows_the_table_1_rule_and_matches_r(case):
    """R: chisq.test(x, correct = FALSE), chisq.test(x, correct = TRUE) or fisher.test(x)$p.value."""
    c = CASES[case]
    comp = rs.compare_counts({"CMT": c["k2"], "CMT+ICI": c["k1"]}, {"CMT": c["n2"], "CMT+ICI": c["n1"]},
                             ARMS, rule="paper")
    kind = EXPECTED_PAPER_TEST[case]
    golden = {"pearson": lambda: c["pearson"][1], "yates": lambda: c["yates"][1],
              "fisher": lambda: c["fisher_p"]}[kind]()
    assert comp.p == pytest.approx(golden, rel=RTOL)
    assert comp.test == {"pearson": "Pearson chi-square", "yates": "Yates-corrected chi-square",
                         "fisher": "Fisher's exact test"}[kind]
    if kind in ("pearson", "yates"):
        assert comp.statistic == pytest.approx(c[kind][0], rel=RTOL)
        assert comp.min_expected == pytest.approx(c["min_expected"], rel=RTOL)


@pytest.mark.parametrize("case", ["yates_range", "orr_like"])
def test_modern_rule_uses_fisher_when_an_expected_count_is_below_five(case):
    """R: fisher.test(x)$p.value under the modern rule when min E < 5, else chisq.test(correct = FALSE)."""
    c = CASES[case]
    comp = rs.compare_counts({"CMT": c["k2"], "CMT+ICI": c["k1"]}, {"CMT": c["n2"], "CMT+ICI": c["n1"]},
                             ARMS, rule="modern")
    golden = c["fisher_p"] if c["min_expected"] < 5 else c["pearson"][1]
    assert comp.p == pytest.approx(golden, rel=RTOL)


@pytest.mark.parametrize("endpoint,denominator", [("orr", "all"), ("dcr", "all"),
                                                  ("orr", "evaluable"), ("dcr", "evaluable")])
def test_patient_level_rates_match_r_including_missing_response_as_ne(reference_patients, endpoint,
                                                                      denominator):
    """R: binom.test and fisher.test on the counts of the script's patient-level data set."""
    golden = REFERENCE["response"][f"{endpoint}_{denominator}"]
    with pytest.warns(rs.MissingResponseWarning):
        comp = rs.compare_response_rates(reference_patients, endpoint, denominator)
    assert (comp.k["CMT+ICI"], comp.n["CMT+ICI"], comp.k["CMT"], comp.n["CMT"]) == (
        golden["k1"], golden["n1"], golden["k2"], golden["n2"])
    np.testing.assert_allclose(comp.rate["CMT+ICI"][1:], golden["binom1"], rtol=RTOL)
    np.testing.assert_allclose(comp.rate["CMT"][1:], golden["binom2"], rtol=RTOL)
    np.testing.assert_allclose(comp.odds_ratio, [_r_number(v) for v in golden["fisher_or_tight"]], rtol=RTOL)
    np.testing.assert_allclose(comp.difference, golden["newcombe_diff"], rtol=RTOL)
    assert comp.test == "Fisher's exact test"   # n < 40 under the paper rule
    assert comp.p == pytest.approx(golden["fisher_p"], rel=RTOL)


def test_best_response_counts_match_r_table_with_missing_counted_as_ne(reference_patients):
    """R: table(factor(best_response, levels = c("CR", "PR", "SD", "PD", "NE")), arm)."""
    with pytest.warns(rs.MissingResponseWarning):
        counts = rs.count_best_response(reference_patients)
    for arm in ARMS:
        got = counts[counts["arm"] == arm].set_index("category")["n"].tolist()
        assert got == REFERENCE["response"]["counts"][arm]


# ----------------------------------------------------------------------------- edge cases
def test_an_arm_with_zero_responders_has_lower_limit_zero_and_odds_ratio_zero():
    patients = _patients_from_counts({"CMT": {"SD": 10, "PD": 5}, "CMT+ICI": {"PR": 4, "SD": 8}})
    comp = rs.compare_response_rates(patients, "orr")
    assert comp.rate["CMT"][:2] == (0.0, 0.0)
    assert comp.odds_ratio[0] == math.inf and comp.odds_ratio[2] == math.inf
    table = rs.make_response_table(patients)
    assert table.loc[5, "Odds ratio (95% CI)"].startswith("∞")


def test_no_responder_in_either_arm_gives_an_undefined_odds_ratio_and_p_one_without_crashing():
    patients = _patients_from_counts({"CMT": {"SD": 10, "PD": 5}, "CMT+ICI": {"PD": 4, "SD": 8}})
    comp = rs.compare_response_rates(patients, "orr")
    assert math.isnan(comp.odds_ratio[0]) and comp.odds_ratio[1:] == (0.0, math.inf)
    assert comp.p == 1.0 and comp.test == "Fisher's exact test"   # R: fisher.test(x)$p.value = 1
    payload = to_jsonable(rs.summarise_response(patients, published={}))
    assert payload["orr"]["odds_ratio"]["estimate"] is None
    json.dumps(payload, allow_nan=False)


def test_unknown_response_code_is_rejected_with_the_offending_row():
    patients = _patients_from_counts({"CMT": {"PR": 2}, "CMT+ICI": {"SD": 2}})
    patients.loc[3, "best_response"] = "iCR"
    with pytest.raises(rs.ResponseDataError, match="3: 'iCR'"):
        rs.prepare_responses(patients)


def test_evaluable_denominator_excludes_not_evaluable_patients():
    patients = _patients_from_counts({"CMT": {"PR": 2, "PD": 6, "NE": 2}, "CMT+ICI": {"PR": 4, "NE": 1}})
    assert rs.compare_response_rates(patients, "orr", "all").n == {"CMT": 10, "CMT+ICI": 5}
    assert rs.compare_response_rates(patients, "orr", "evaluable").n == {"CMT": 8, "CMT+ICI": 4}


def test_response_codes_are_accepted_in_any_case_and_with_spaces():
    patients = _patients_from_counts({"CMT": {"PR": 2, "PD": 1}, "CMT+ICI": {"SD": 2}})
    patients["best_response"] = [" pr", "PR", "pd ", "sd", "Sd"]
    assert rs.compare_response_rates(patients, "dcr").k == {"CMT": 2, "CMT+ICI": 2}


# ----------------------------------------------------------------------------- table, figure, payload
def test_response_table_lists_categories_then_orr_dcr_and_the_sensitivity_rows():
    patients = _patients_from_counts({"CMT": {"CR": 1, "PR": 9, "SD": 20, "PD": 10, "NE": 2},
                                      "CMT+ICI": {"CR": 2, "PR": 20, "SD": 10, "PD": 2, "NE": 1}})
    table = rs.make_response_table(patients)
    assert table["Response"].tolist()[:5] == [rs.CATEGORY_LABELS[c] for c in rs.RESPONSE_CATEGORIES]
    assert table["Response"].str.startswith("ORR").sum() == 2
    assert "sensitivity" in table["Response"].iloc[-1]
    assert table.loc[0, "CMT (n = 42)"] == "1 (2.4)"
    assert table.loc[5, "CMT (n = 42)"].startswith("10/42, 23.8 (")
    assert table.loc[5, "Test"] == "Pearson chi-square"
    without = rs.make_response_table(patients, sensitivity=False)
    assert len(without) == 7


def test_response_figure_has_one_stacked_bar_per_arm_with_five_segments():
    import matplotlib.pyplot as plt

    patients = _patients_from_counts({"CMT": {"CR": 1, "PR": 9, "SD": 20, "PD": 10, "NE": 2},
                                      "CMT+ICI": {"CR": 2, "PR": 20, "SD": 10, "PD": 2, "NE": 1}})
    fig = rs.plot_response_categories(patients)
    ax = fig.axes[0]
    assert len(ax.patches) == 2 * len(rs.RESPONSE_CATEGORIES)
    widths = [p.get_width() for p in ax.patches]
    assert sum(widths[:5]) == pytest.approx(100) and sum(widths[5:]) == pytest.approx(100)
    plt.close(fig)


@pytest.mark.parametrize("counts,agrees", [
    ({"CMT": {"PR": 20, "PD": 67}, "CMT+ICI": {"PR": 25, "PD": 14}}, "yes"),
    ({"CMT": {"PR": 30, "PD": 57}, "CMT+ICI": {"PR": 15, "PD": 24}}, "no: higher but not significant"),
    ({"CMT": {"PR": 40, "PD": 47}, "CMT+ICI": {"PR": 10, "PD": 29}}, "no: not higher"),
])
def test_agreement_with_the_published_statement_needs_a_higher_and_significant_rate(counts, agrees):
    patients = _patients_from_counts(counts)
    summary = rs.summarise_response(patients, published={"orr": "significantly higher", "dcr": ""})
    assert summary["published"]["orr"]["agrees"] == agrees
    table = rs.make_published_response_table(summary)
    assert table.loc[0, "Agrees"] == agrees
    assert table.loc[0, "Published (abstract)"] == "significantly higher"


def test_results_payload_has_the_documented_keys_and_is_valid_json():
    patients = _patients_from_counts({"CMT": {"CR": 1, "PR": 9, "SD": 20, "PD": 10, "NE": 2},
                                      "CMT+ICI": {"CR": 2, "PR": 20, "SD": 10, "PD": 2, "NE": 1}})
    payload = to_jsonable(rs.summarise_response(patients, published={"orr": "x", "dcr": "y"}))
    for ep in ("orr", "dcr"):
        for arm in ARMS:
            assert set(payload[ep][arm]) == {"k", "n", "rate", "lower", "upper"}
        assert {"p", "test", "difference", "odds_ratio"} <= set(payload[ep])
        assert set(payload[ep]["difference"]) >= {"estimate", "lower", "upper", "method"}
    assert payload["categories"]["CMT"]["NE"] == {"n": 2, "percent": pytest.approx(100 * 2 / 42)}
    assert payload["text"]["orr_CMT_ICI"].startswith("62.9% (95% CI ")
    assert payload["sensitivity"]["denominator"] == "evaluable"
    json.dumps(payload, allow_nan=False)


def test_published_statements_are_read_from_the_project_copy_of_published_yaml():
    statements = rs.load_published_statements()
    assert "significantly higher" in statements["orr"]
    assert "did not differ" in statements["trae"]
