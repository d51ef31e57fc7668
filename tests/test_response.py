"""Tests of helpers/analyses/response.py against R golden values (tests/reference/response_safety.R),
and of its presentation (helpers/report/response.py)."""
from __future__ import annotations

import json
import re
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers.analyses import response as rs
from helpers.build.results import to_jsonable
from helpers.report.formatting import results_key
from helpers.report import response as rr
from helpers.stats.types import Estimate, NotEstimable

REFERENCE = json.loads((Path(__file__).parent / "reference" / "response_safety.json").read_text())
CASES = REFERENCE["comparisons"]
RTOL = 1e-6
ARMS = ("CMT", "CMT+ICI")


def _triple(est) -> tuple[float, float, float]:
    """(value, lower, upper) of an Estimate."""
    assert isinstance(est, Estimate), est
    return (est.value, est.lower, est.upper)


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
        est = rs.binomial_ci(k, n)
        rate, lower, upper = _triple(est)
        assert est.method == "clopper-pearson" and est.level == 0.95
        assert rate == pytest.approx(k / n)
        np.testing.assert_allclose([lower, upper], golden, rtol=RTOL, atol=1e-12)


@pytest.mark.parametrize("case", sorted(CASES))
def test_newcombe_difference_matches_wilson_limits_from_r_prop_test(case):
    """R: Newcombe method 10 from prop.test(k, n, correct = FALSE)$conf.int of each arm."""
    c = CASES[case]
    got = rs.rate_difference(c["k1"], c["n1"], c["k2"], c["n2"], method="newcombe")
    assert got.method == "newcombe"
    np.testing.assert_allclose(_triple(got), c["newcombe_diff"], rtol=RTOL, atol=1e-12)


@pytest.mark.parametrize("case", sorted(c for c in CASES if c != "none_in_any_arm"))
def test_wald_difference_matches_r_two_sample_prop_test(case):
    """R: prop.test(c(k1, k2), c(n1, n2), correct = FALSE)$conf.int."""
    c = CASES[case]
    got = rs.rate_difference(c["k1"], c["n1"], c["k2"], c["n2"], method="wald")
    np.testing.assert_allclose(_triple(got), c["wald_diff"], rtol=RTOL, atol=1e-12)


@pytest.mark.parametrize("case", sorted(c for c in CASES if c != "none_in_any_arm"))
def test_conditional_odds_ratio_matches_fisher_test_code_at_tight_tolerance(case):
    """R: fisher.test(x) estimate and conf.int, its own code rerun with uniroot(tol = 1e-14)."""
    c = CASES[case]
    got = rs.conditional_odds_ratio(c["k1"], c["n1"], c["k2"], c["n2"])
    np.testing.assert_allclose(_triple(got), [_r_number(v) for v in c["fisher_or_tight"]], rtol=RTOL)


@pytest.mark.parametrize("case", sorted(c for c in CASES if c != "none_in_any_arm"))
def test_conditional_odds_ratio_matches_default_fisher_test_to_its_root_finding_tolerance(case):
    """R: fisher.test(x)$estimate and $conf.int (uniroot default tolerance, so rtol 1e-3)."""
    c = CASES[case]
    got = rs.conditional_odds_ratio(c["k1"], c["n1"], c["k2"], c["n2"])
    np.testing.assert_allclose(_triple(got), [_r_number(v) for v in c["fisher_or_default"]], rtol=1e-3)


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
    if n1 + n2 > rs.LOGSPACE_MIN_N and 0 < k1 + k2 < n1 + n2:
        assert _triple(rs.conditional_odds_ratio(*counts)) == got


def test_the_log_space_odds_ratio_stays_finite_at_one_hundred_thousand_patients():
    est, lower, upper = _triple(rs.conditional_odds_ratio(12_000, 30_000, 21_000, 70_000))
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
    assert comp.test.test == kind
    assert rr.test_label(comp.test) == {"pearson": "Pearson chi-square", "yates": "Yates-corrected chi-square",
                                        "fisher": "Fisher's exact test"}[kind]
    if kind in ("pearson", "yates"):
        assert comp.test.statistic == pytest.approx(c[kind][0], rel=RTOL)
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
    np.testing.assert_allclose(_triple(comp.rate["CMT+ICI"])[1:], golden["binom1"], rtol=RTOL)
    np.testing.assert_allclose(_triple(comp.rate["CMT"])[1:], golden["binom2"], rtol=RTOL)
    np.testing.assert_allclose(_triple(comp.odds_ratio), [_r_number(v) for v in golden["fisher_or_tight"]],
                               rtol=RTOL)
    np.testing.assert_allclose(_triple(comp.difference), golden["newcombe_diff"], rtol=RTOL)
    assert comp.test.test == "fisher"   # n < 40 under the paper rule
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
    assert _triple(comp.rate["CMT"])[:2] == (0.0, 0.0)
    assert comp.odds_ratio.value == math.inf and comp.odds_ratio.upper == math.inf
    table = rr.make_response_table(rs.analyse_response_patients(patients))
    assert table.loc[5, "Odds ratio (95% CI)"].startswith("∞")


def test_no_responder_in_either_arm_gives_a_not_estimable_odds_ratio_and_p_one_without_crashing():
    patients = _patients_from_counts({"CMT": {"SD": 10, "PD": 5}, "CMT+ICI": {"PD": 4, "SD": 8}})
    comp = rs.compare_response_rates(patients, "orr")
    assert comp.odds_ratio == NotEstimable("odds_ratio", "no_events")
    assert comp.p == 1.0 and comp.test.test == "fisher"   # R: fisher.test(x)$p.value = 1
    result = rs.analyse_response_patients(patients)
    payload = to_jsonable(rr.response_results(result, published={}))
    assert payload["orr"]["odds_ratio"]["estimate"] is None
    assert payload["text"]["orr_odds_ratio"] == "not estimable: no events were observed"
    json.dumps(payload, allow_nan=False)


def test_an_arm_without_evaluable_patients_is_not_estimable_and_rendered_in_words():
    patients = _patients_from_counts({"CMT": {"PR": 3, "PD": 5}, "CMT+ICI": {"NE": 4}})
    result = rs.analyse_response_patients(patients, denominator="evaluable")
    comp = result.main["orr"]
    assert comp.rate["CMT+ICI"] == NotEstimable("orr", "no_patients")
    assert isinstance(comp.difference, NotEstimable) and isinstance(comp.test, NotEstimable)
    payload = to_jsonable(rr.response_results(result))
    assert payload["text"]["orr_experimental"] == "not estimable: no patients in the arm"
    assert payload["text"]["orr_p"] == "not estimable: no patients in one arm"
    table = rr.make_response_table(result)
    assert "not estimable: no patients in the arm" in table.iloc[5, 2]
    json.dumps(payload, allow_nan=False)


def test_an_arm_without_any_patient_gives_not_estimable_rates_instead_of_crashing():
    patients = _patients_from_counts({"CMT": {"PR": 3, "PD": 5}, "CMT+ICI": {}})
    result = rs.analyse_response_patients(patients)
    assert result.n == {"CMT": 8, "CMT+ICI": 0}
    assert all(isinstance(result.main[ep].rate["CMT+ICI"], NotEstimable) for ep in ("orr", "dcr"))
    assert any(c.kind == "not_estimable" for c in result.caveats)
    rr.make_response_table(result)
    json.dumps(to_jsonable(rr.response_results(result)), allow_nan=False)


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


def test_a_missing_response_is_a_caveat_and_a_generated_sentence(reference_patients):
    with pytest.warns(rs.MissingResponseWarning):
        result = rs.analyse_response_patients(reference_patients)
    assert [c.kind for c in result.caveats] == ["missing_response"]
    text = rr.response_results(result, published={})["text"]
    assert text["missing_sentence"] == "1 patient without a recorded best response was counted as not evaluable."


def test_arms_follow_the_given_order_with_the_reference_first():
    patients = _patients_from_counts({"CMT": {"PR": 2, "PD": 6}, "CMT+ICI": {"PR": 4, "PD": 1}})
    result = rs.analyse_response_patients(patients, arm_order=["CMT+ICI", "CMT"])
    assert result.arms == ("CMT+ICI", "CMT")
    assert result.main["orr"].difference.value == pytest.approx(2 / 8 - 4 / 5)


# ----------------------------------------------------------------------------- the study and its plan
class _Config:
    arm_order = ("standard", "test")
    reference_arm = "standard"
    design = "randomised"

    @staticmethod
    def arm_label(code):
        return {"standard": "Standard therapy", "test": "Test therapy"}[code]


class _Study:
    config = _Config()
    published = None

    def __init__(self, patients):
        self.patients = patients


def _other_study() -> _Study:
    rows = [("standard", "PR")] * 5 + [("standard", "PD")] * 15 + [("test", "CR")] * 2 + [("test", "PR")] * 8 \
        + [("test", "SD")] * 10
    frame = pd.DataFrame(rows, columns=["arm", "best_response"])
    frame["arm"] = pd.Categorical(frame["arm"], categories=["standard", "test"])
    return _Study(frame)


def test_another_study_uses_its_arms_labels_and_the_plan_choices():
    study = _other_study()
    result = rs.analyse_response(study, {"denominator": "evaluable", "test_rule": "modern", "difference_ci": "wald"})
    assert result.arms == ("standard", "test") and result.denominator == "evaluable"
    assert result.main["orr"].difference.method == "wald" and result.rule == "modern"
    payload = rr.response_results(result, study)
    assert "published" not in payload and "orr_agrees" not in payload["text"]
    assert payload["text"]["orr_reference"] == payload["text"]["orr_standard"]
    assert payload["text"]["orr_direction"] == "higher with Test therapy"
    table = rr.make_response_table(result, study)
    assert list(table.columns[1:3]) == ["Standard therapy (n = 20)", "Test therapy (n = 20)"]
    assert "Test therapy minus Standard therapy" in rr.response_table_footnote(result, study)
    assert rr.make_published_response_table(result, study) is None
    assert rr.display_published_response_table(result, study) is None


def test_the_plan_defaults_apply_to_missing_choices():
    result = rs.analyse_response(_other_study(), {})
    assert (result.denominator, result.rule, result.difference_method, result.level) == ("all", "cochran", "newcombe", 0.95)


# ----------------------------------------------------------------------------- table, figure, payload
COUNTS = {"CMT": {"CR": 1, "PR": 9, "SD": 20, "PD": 10, "NE": 2},
          "CMT+ICI": {"CR": 2, "PR": 20, "SD": 10, "PD": 2, "NE": 1}}


def test_response_table_lists_categories_then_orr_dcr_and_the_sensitivity_rows():
    result = rs.analyse_response_patients(_patients_from_counts(COUNTS))
    table = rr.make_response_table(result)
    assert table["Response"].tolist()[:5] == [rr.CATEGORY_LABELS[c] for c in rs.RESPONSE_CATEGORIES]
    assert table["Response"].str.startswith("ORR").sum() == 2
    assert "sensitivity" in table["Response"].iloc[-1]
    assert table.loc[0, "CMT (n = 42)"] == "1 (2.4)"
    assert table.loc[5, "CMT (n = 42)"].startswith("10/42, 23.8 (")
    assert table.loc[5, "Test"] == "Pearson chi-square"
    without = rs.analyse_response_patients(_patients_from_counts(COUNTS), sensitivity_rows=False)
    assert len(rr.make_response_table(without)) == 7


def test_response_figure_is_a_seaborn_bar_chart_with_one_bar_per_arm_and_category_in_arm_colours():
    import matplotlib.pyplot as plt

    result = rs.analyse_response_patients(_patients_from_counts(COUNTS))
    fig = rr.plot_response(result)
    ax = fig.axes[0]
    bars = [p for p in ax.patches if p.get_height() > 0]
    assert len(bars) == 2 * len(rs.RESPONSE_CATEGORIES)
    heights = sorted(round(p.get_height(), 6) for p in bars)
    expected = sorted(round(100 * k / 42, 6) for k in COUNTS["CMT"].values()) + \
        sorted(round(100 * k / 35, 6) for k in COUNTS["CMT+ICI"].values())
    assert heights == sorted(expected)
    colours = {tuple(np.round(p.get_facecolor()[:3], 3)) for p in bars}
    palette = rr.arm_palette(ARMS)
    from matplotlib.colors import to_rgb
    assert colours == {tuple(np.round(to_rgb(palette[a]), 3)) for a in ARMS}
    plt.close(fig)


@pytest.mark.parametrize("counts,agrees", [
    ({"CMT": {"PR": 20, "PD": 67}, "CMT+ICI": {"PR": 25, "PD": 14}}, "yes"),
    ({"CMT": {"PR": 30, "PD": 57}, "CMT+ICI": {"PR": 15, "PD": 24}}, "no: higher but not significant"),
    ({"CMT": {"PR": 40, "PD": 47}, "CMT+ICI": {"PR": 10, "PD": 29}}, "no: not higher"),
])
def test_agreement_with_the_published_statement_needs_a_higher_and_significant_rate(counts, agrees):
    result = rs.analyse_response_patients(_patients_from_counts(counts))
    published = {"orr": "significantly higher", "dcr": ""}
    summary = rr.response_results(result, published=published)
    assert summary["published"]["orr"]["agrees"] == agrees
    table = rr.make_published_response_table(result, published=published)
    assert table.loc[0, "Agrees"] == agrees
    assert table.loc[0, "Published (abstract)"] == "significantly higher"


def test_results_payload_has_the_documented_keys_and_role_keys_and_is_valid_json():
    result = rs.analyse_response_patients(_patients_from_counts(COUNTS))
    payload = to_jsonable(rr.response_results(result, published={"orr": "x", "dcr": "y"}))
    for ep in ("orr", "dcr"):
        for arm in ARMS:
            assert set(payload[ep][arm]) == {"k", "n", "rate", "lower", "upper"}
        assert {"p", "test", "difference", "odds_ratio"} <= set(payload[ep])
        assert set(payload[ep]["difference"]) >= {"estimate", "lower", "upper", "method"}
        assert payload[ep]["test"] == "Pearson chi-square"
    assert payload["categories"]["CMT"]["NE"] == {"n": 2, "percent": pytest.approx(100 * 2 / 42)}
    text = payload["text"]
    assert text["orr_CMT_ICI"].startswith("62.9% (95% CI ")
    for name in ("orr", "dcr", "n", "ne", "orr_sensitivity", "dcr_sensitivity"):
        assert text[f"{name}_reference"] == text[f"{name}_CMT"]
        assert text[f"{name}_experimental"] == text[f"{name}_CMT_ICI"]
    assert payload["sensitivity"]["denominator"] == "evaluable"
    json.dumps(payload, allow_nan=False)


def test_every_declared_response_key_that_the_payload_writes_is_produced():
    from helpers.report.keys import RESPONSE

    result = rs.analyse_response_patients(_patients_from_counts(COUNTS))
    text = rr.response_results(result, published={"orr": "x", "dcr": "y"})["text"]
    for key in RESPONSE:
        name = key.split(".", 2)[2]
        if "{arm}" in name:
            assert all(name.replace("{arm}", results_key(a)) in text for a in ARMS), key
        else:
            assert name in text, key


def test_published_statements_come_from_the_study_and_are_absent_without_a_publication():
    class WithPaper:
        published = {"abstract": {"orr": "significantly higher", "trae": "did not differ"}}

    assert rr.published_statements(WithPaper())["orr"] == "significantly higher"
    assert rr.published_statements(_other_study()) is None


# ----------------------------------------------------------------------------- prose
#: words of one study that the generic prose must not use outside its replication parts
STUDY_WORDS = re.compile(r"\b(CMT|ICI|chemotherapy|immunotherapy|oesophag\w*|esophag\w*|Dai|camrelizumab|"
                         r"checkpoint)\b", re.IGNORECASE)
REPLICATION_PART = re.compile(r"^<!-- part: replication -->$.*?^<!-- /part -->$", re.MULTILINE | re.DOTALL)


@pytest.mark.parametrize("name", ["04-response-methods.qmd", "04-response-results.qmd"])
def test_the_response_prose_is_generic_outside_its_replication_parts(name):
    from helpers.config import PROJECT_ROOT

    text = REPLICATION_PART.sub("", (PROJECT_ROOT / "sections" / name).read_text(encoding="utf-8"))
    assert not STUDY_WORDS.findall(text)
    assert "tbl-response-published" not in text   # the published comparison only with a publication
