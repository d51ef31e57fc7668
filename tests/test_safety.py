"""Tests of helpers/analyses/safety.py against R golden values (tests/reference/response_safety.R),
and of its presentation (helpers/report/safety.py)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers.analyses import safety as sf
from helpers.build.results import to_jsonable
from helpers.report import safety as rsf
from helpers.stats.types import NotEstimable, TestResult

REFERENCE = json.loads((Path(__file__).parent / "reference" / "response_safety.json").read_text())["safety"]
RTOL = 1e-6
ARMS = ["CMT", "CMT+ICI"]
#: the immune-related list of the shipped data folder's analysis plan (data/analysis.yaml)
IMMUNE = sf.SpecialInterest(
    label="immune-related",
    terms=("Hypothyroidism", "Hyperthyroidism", "Pneumonitis", "Rash", "Adrenal insufficiency", "Myocarditis",
           "Reactive cutaneous capillary endothelial proliferation"),
    prefixes=("Rash",), contains=("immune",))


@pytest.fixture
def patients() -> pd.DataFrame:
    """16 patients of the R script: 10 CMT, 6 CMT+ICI (S02 and S14 without any adverse event)."""
    frame = pd.DataFrame(REFERENCE["patients"])
    frame["arm"] = pd.Categorical(frame["arm"], categories=ARMS)
    return frame


@pytest.fixture
def adverse_events() -> pd.DataFrame:
    return pd.DataFrame(REFERENCE["adverse_events"])


@pytest.fixture
def counts(patients, adverse_events) -> pd.DataFrame:
    return sf.count_adverse_events(patients, adverse_events, special_interest=IMMUNE)


@pytest.fixture
def result(patients, adverse_events) -> sf.SafetyAnalysis:
    return sf.analyse_safety_tables(patients, adverse_events, special_interest=IMMUNE, min_term_percent=20)


def _term(counts: pd.DataFrame, term: str) -> pd.Series:
    return counts[counts["term"] == term].iloc[0]


def _summary(counts: pd.DataFrame, kind: str = "any") -> pd.Series:
    return counts[counts["kind"] == kind].iloc[0]


# ----------------------------------------------------------------------------- against R
@pytest.mark.parametrize("term", [t["term"] for t in REFERENCE["terms"]])
def test_term_counts_and_fisher_p_match_r(counts, term):
    """R: aggregate(grade ~ patient_id + term, FUN = max), then fisher.test(x)$p.value per term."""
    golden = next(t for t in REFERENCE["terms"] if t["term"] == term)
    row = _term(counts, term)
    for level in ("any_grade", "grade3plus"):
        for arm in ARMS:
            assert row[f"{level}:{arm}"] == golden[level]["k"][arm]
        assert row[f"p:{level}"] == pytest.approx(golden[level]["fisher_p"], rel=RTOL)
        assert row[f"test:{level}"] == "fisher"


@pytest.mark.parametrize("key,row_level", [("any_trae", "any_grade"), ("any_grade3plus", "grade3plus")])
def test_any_event_rows_match_r_with_patients_without_events_in_the_denominator(counts, key, row_level):
    """R: fisher.test(x)$p.value on patients with >= 1 TRAE (or >= 1 grade >= 3 TRAE) of all patients
    (n = 16 < 40, so the Table 1 rule chooses Fisher's exact test)."""
    golden = REFERENCE["overall"][key]
    row = _summary(counts)
    assert counts.attrs["n"] == golden["n"]
    for arm in ARMS:
        assert row[f"{row_level}:{arm}"] == golden["k"][arm]
    assert row[f"p:{row_level}"] == pytest.approx(golden["fisher_p"], rel=RTOL)
    assert row[f"test:{row_level}"] == "fisher"


def test_worst_grade_per_patient_and_term_matches_r_aggregate(patients, adverse_events):
    """R: aggregate(grade ~ patient_id + term, data = ae, FUN = max)."""
    worst = sf.worst_grades(adverse_events, patients)
    for golden in REFERENCE["terms"]:
        got = worst[worst["term"] == golden["term"]].set_index("patient_id")["worst_grade"].to_dict()
        assert got == golden["worst_grades"]


# ----------------------------------------------------------------------------- edge cases
def test_several_events_of_one_term_count_once_at_the_worst_grade(counts):
    # S01 has Anaemia grades 1, 3 and 2: one CMT patient, counted among grade >= 3
    anaemia = _term(counts, "Anaemia")
    assert anaemia["any_grade:CMT"] == 4 and anaemia["grade3plus:CMT"] == 1


def test_a_term_present_in_one_arm_only_is_tabulated_with_zero_in_the_other(counts):
    assert _term(counts, "Hypothyroidism")["any_grade:CMT"] == 0
    assert _term(counts, "Alopecia")["any_grade:CMT+ICI"] == 0


def test_no_grade_3_event_in_either_arm_gives_p_one_as_r_fisher_test(patients, adverse_events):
    # R: fisher.test(matrix(c(0, 0, 6, 10), 2))$p.value == 1 (a single table has these margins)
    result = sf.analyse_safety_tables(patients, adverse_events, min_term_percent=0)
    assert _term(result.counts, "Nausea")["p:grade3plus"] == 1.0
    table = rsf.make_adverse_event_table(result).set_index("Adverse event")
    assert table.loc["Nausea", "P, grade ≥ 3"] == "1.000"


def test_every_patient_with_an_event_gives_p_one_instead_of_an_undefined_chi_square():
    patients = pd.DataFrame({"patient_id": [f"P{i}" for i in range(80)],
                             "arm": pd.Categorical(["CMT"] * 50 + ["CMT+ICI"] * 30, categories=ARMS)})
    ae = pd.DataFrame({"patient_id": patients["patient_id"], "term": "Anaemia", "grade": 1})
    row = _summary(sf.count_adverse_events(patients, ae))
    assert row["p:any_grade"] == 1.0 and row["test:any_grade"] == "fisher"


def test_worst_grade_table_as_input_gives_the_same_counts(patients, adverse_events, counts):
    worst = sf.worst_grades(adverse_events, patients)[["patient_id", "arm", "term", "worst_grade"]]
    again = sf.count_adverse_events(patients, worst, special_interest=IMMUNE)
    pd.testing.assert_frame_equal(again, counts)


def test_terms_are_sorted_by_decreasing_overall_frequency_after_the_summary_rows(counts):
    assert counts["kind"].iloc[:2].tolist() == ["any", "special"]
    freq = counts.loc[counts["kind"] == "term", "any_grade_total_percent"].tolist()
    assert freq == sorted(freq, reverse=True)


def test_terms_with_extra_spaces_are_merged(patients):
    ae = pd.DataFrame({"patient_id": ["S01", "S01", "S11"], "term": ["Nausea", " Nausea ", "Nausea"],
                       "grade": [1, 2, 1]})
    assert _term(sf.count_adverse_events(patients, ae), "Nausea")["any_grade:CMT"] == 1


@pytest.mark.parametrize("bad,message", [
    ({"patient_id": "X99", "term": "Nausea", "grade": 1}, "patient_id not in the patient table"),
    ({"patient_id": "S01", "term": "Nausea", "grade": 6}, "grade not an integer 1-5"),
    ({"patient_id": "S01", "term": None, "grade": 2}, "missing term"),
])
def test_unanalysable_adverse_event_rows_are_rejected_with_a_named_error(patients, adverse_events, bad, message):
    ae = pd.concat([adverse_events, pd.DataFrame([bad])], ignore_index=True)
    with pytest.raises(sf.SafetyDataError, match=message):
        sf.count_adverse_events(patients, ae)


def test_no_adverse_event_at_all_gives_zero_counts_and_no_terms(patients):
    empty = pd.DataFrame({"patient_id": [], "term": [], "grade": []})
    result = sf.analyse_safety_tables(patients, empty)
    assert len(result.term_rows()) == 0
    row = result.summary_row("any")
    assert row["any_grade:CMT"] == 0 and row["p:any_grade"] == 1.0
    payload = to_jsonable(rsf.safety_results(result, published={}))
    assert payload["text"]["terms_sentence"] == "No adverse event was recorded."
    json.dumps(payload, allow_nan=False)


# ----------------------------------------------------------------------------- events of special interest
@pytest.mark.parametrize("term,flag", [
    ("Hypothyroidism", True), ("hyperthyroidism", True), ("Pneumonitis", True), ("Rash", True),
    ("Rash maculo-papular", True), ("Reactive cutaneous capillary endothelial proliferation", True),
    ("Immune-mediated hepatitis", True), ("Adrenal insufficiency", True), ("Myocarditis", True),
    ("Anaemia", False), ("Nausea", False), ("Alanine aminotransferase increased", False),
    ("Rashes of unknown kind", False),
])
def test_special_interest_terms_are_matched_by_term_prefix_and_word_part(term, flag):
    assert IMMUNE.matches(term) is flag


def test_the_shipped_plan_defines_immune_related_events_in_the_experimental_arm_only():
    from helpers.config import PROJECT_ROOT, load_plan

    plan = load_plan(PROJECT_ROOT / "data")["safety"]
    special = sf.SpecialInterest.from_plan(plan["special_interest"])
    assert special.label == "immune-related" and special.arms == ("CMT+ICI",)
    assert all(special.matches(t) for t in ("Hypothyroidism", "Rash maculo-papular", "Immune-mediated hepatitis"))


def test_the_project_default_plan_defines_no_events_of_special_interest(tmp_path):
    from helpers.config import load_plan

    assert sf.SpecialInterest.from_plan(load_plan(tmp_path)["safety"].get("special_interest")) is None


def test_without_special_interest_there_is_no_special_row_table_or_mark(patients, adverse_events):
    result = sf.analyse_safety_tables(patients, adverse_events, min_term_percent=0)
    assert "special" not in set(result.counts["kind"]) and not result.counts["special"].any()
    assert rsf.make_special_interest_table(result) is None
    assert rsf.display_special_interest_table(result) is None
    assert not any(rsf.SPECIAL_MARK in t for t in rsf.make_adverse_event_table(result)["Adverse event"])
    text = rsf.safety_results(result, published={})["text"]
    assert text["special_interest_sentence"] == ""
    assert text["special_interest_method"] == "The analysis plan defines no adverse events of special interest."
    assert "irae_any_grade_CMT" not in text


def test_special_interest_counted_in_listed_arms_only_is_not_applicable_elsewhere(patients, adverse_events):
    only = sf.SpecialInterest(label="immune-related", terms=IMMUNE.terms, prefixes=("Rash",), arms=("CMT+ICI",))
    result = sf.analyse_safety_tables(patients, adverse_events, special_interest=only)
    row = result.summary_row("special")
    assert pd.isna(row["any_grade:CMT"]) and row["any_grade:CMT+ICI"] == 4
    assert result.test(row, "any_grade") == NotEstimable("test", "not_applicable")
    table = rsf.make_special_interest_table(result)
    assert table.loc[0, "CMT (N = 10): any grade"] == "not applicable"
    assert table.loc[0, "CMT+ICI (N = 6): any grade"] == "4 (66.7)"
    assert table.loc[0, "P, any grade"] == "not applicable"
    payload = to_jsonable(rsf.safety_results(result, published={}))
    assert payload["special_interest"]["any_grade"]["CMT"]["k"] is None
    assert payload["text"]["irae_any_grade_CMT"] == "not applicable"
    assert payload["text"]["special_any_grade_experimental"] == "4 (66.7)"
    assert "counted only in CMT+ICI" in payload["text"]["special_interest_method"]
    json.dumps(payload, allow_nan=False)


def test_special_interest_arms_must_be_arms_of_the_study(patients, adverse_events):
    with pytest.raises(sf.SafetyDataError, match="special_interest.arms"):
        sf.analyse_safety_tables(patients, adverse_events,
                                 special_interest=sf.SpecialInterest(label="x", terms=("Rash",), arms=("ICI",)))


# ----------------------------------------------------------------------------- tables, figure, payload
def test_main_table_starts_with_any_event_and_lists_terms_above_the_threshold(result):
    table = rsf.make_adverse_event_table(result)
    assert table["Adverse event"].iloc[0] == rsf.ANY_EVENT
    # Rash maculo-papular: 1/6 = 16.7% < 20% in every arm; Hypothyroidism 3/6 = 50% with CMT+ICI
    assert "Rash maculo-papular †" not in table["Adverse event"].tolist()
    assert "Hypothyroidism †" in table["Adverse event"].tolist()
    assert table.loc[0, "CMT (N = 10): any grade"] == "9 (90.0)"
    assert table.loc[0, "CMT+ICI: grade ≥ 3"] == "3 (50.0)"
    assert "† immune-related term." in rsf.adverse_event_table_footnote(result)


def test_special_interest_table_lists_every_such_term_regardless_of_frequency(result):
    table = rsf.make_special_interest_table(result)
    assert table["Adverse event"].tolist() == ["Any immune-related AE", "Hypothyroidism", "Rash maculo-papular"]
    assert table.loc[0, "CMT+ICI (N = 6): any grade"] == "4 (66.7)"


def test_the_figure_is_a_seaborn_bar_chart_with_any_grade_and_grade_3_bars_for_both_arms(patients, adverse_events):
    import matplotlib.pyplot as plt

    result = sf.analyse_safety_tables(patients, adverse_events, min_term_percent=0)
    fig = rsf.plot_adverse_events(result)
    ax = fig.axes[0]
    n_rows = 1 + len(result.term_rows())
    assert len(ax.patches) == 2 * len(ARMS) * n_rows
    assert len(ax.get_yticklabels()) == n_rows
    plt.close(fig)


def test_safety_payload_has_the_documented_keys_and_role_keys_and_is_valid_json(result):
    payload = to_jsonable(rsf.safety_results(result, published={"trae": "no difference"}))
    for level in ("any_grade", "grade3plus"):
        assert {"p", "test"} <= set(payload[level])
        for arm in ARMS:
            assert {"k", "n"} <= set(payload[level][arm])
    assert payload["any_grade"]["CMT"] == {"k": 9, "n": 10, "rate": 0.9, "percent": 90.0}
    assert payload["any_grade"]["test"] == "Fisher's exact test"
    assert [t["term"] for t in payload["terms"]][0] == "Anaemia"
    assert payload["terms"][3]["grade3plus"]["p"] == 1.0
    text = payload["text"]
    assert text["any_grade_CMT_ICI"] == "5 (83.3)" == text["any_grade_experimental"]
    assert text["grade3plus_reference"] == text["grade3plus_CMT"]
    assert text["irae_terms"] == "hypothyroidism, rash maculo-papular"
    json.dumps(payload, allow_nan=False)


def test_every_declared_safety_key_is_produced_with_special_interest_and_a_publication(result):
    from helpers.report.keys import SAFETY

    text = rsf.safety_results(result, published={"trae": "x"})["text"]
    for key in SAFETY:
        name = key.split(".", 2)[2]
        if "{arm}" in name:
            assert all(name.replace("{arm}", a.replace("+", "_")) in text for a in ARMS), key
        else:
            assert name in text, key


@pytest.mark.parametrize("extra_ici_events,agrees", [(0, "yes"), (1, "no: incidence differs significantly")])
def test_agreement_with_the_published_statement_needs_a_non_significant_any_grade_p(extra_ici_events, agrees):
    n_cmt, n_ici = 40, 40
    patients = pd.DataFrame({"patient_id": [f"P{i}" for i in range(n_cmt + n_ici)],
                             "arm": pd.Categorical(["CMT"] * n_cmt + ["CMT+ICI"] * n_ici, categories=ARMS)})
    with_event = list(range(20)) + list(range(40, 60 + 15 * extra_ici_events))
    ae = pd.DataFrame({"patient_id": [f"P{i}" for i in with_event], "term": "Nausea", "grade": 1})
    result = sf.analyse_safety_tables(patients, ae)
    summary = rsf.safety_results(result, published={"trae": "no difference"})
    assert summary["published"]["agrees"] == agrees
    table = rsf.make_published_safety_table(result, published={"trae": "no difference"})
    assert table.loc[0, "Agrees"] == agrees and table.loc[0, "Published (abstract)"] == "no difference"


def test_no_published_comparison_without_a_publication(result):
    class Study:
        published = None

    assert "published" not in rsf.safety_results(result, Study())
    assert rsf.make_published_safety_table(result, Study()) is None


def test_summary_row_tests_are_typed_with_their_short_name(result):
    test = result.test(result.summary_row("any"), "any_grade")
    assert isinstance(test, TestResult) and test.test == "fisher"


@pytest.mark.parametrize("table", [[[3, 84], [9, 30]], [[0, 87], [5, 34]], [[40, 47], [20, 19]],
                                   [[1, 1], [1, 1]], [[12, 0], [0, 7]], [[25, 25], [25, 25]]])
def test_linear_time_two_by_two_fisher_p_equals_the_full_enumeration(table):
    # R: fisher.test(matrix(...))$p.value; the enumeration of helpers.stats.contingency is the reference
    from helpers.stats.contingency import _exact_two_column, _log_hypergeom, fisher_exact_rxc

    x = np.array(table)
    enumerated = _exact_two_column(x.sum(axis=1), int(x[:, 0].sum()), _log_hypergeom(x))
    assert fisher_exact_rxc(x) == pytest.approx(enumerated, rel=1e-10)


# ----------------------------------------------------------------------------- prose
@pytest.mark.parametrize("name", ["06-safety-methods.qmd", "06-safety-results.qmd"])
def test_the_safety_prose_is_generic_outside_its_replication_parts(name):
    import re

    from helpers.config import PROJECT_ROOT

    words = re.compile(r"\b(CMT|ICI|chemotherapy|immunotherapy|immune\S*|oesophag\w*|esophag\w*|Dai|"
                       r"camrelizumab|checkpoint)\b", re.IGNORECASE)
    part = re.compile(r"^<!-- part: replication -->$.*?^<!-- /part -->$", re.MULTILINE | re.DOTALL)
    text = part.sub("", (PROJECT_ROOT / "sections" / name).read_text(encoding="utf-8"))
    assert not words.findall(text)
    assert "tbl-trae-published" not in text


def test_an_arm_without_patients_makes_the_comparison_not_estimable_in_words():
    patients = pd.DataFrame({"patient_id": ["a", "b", "c"],
                             "arm": pd.Categorical(["CMT"] * 3, categories=ARMS)})
    ae = pd.DataFrame({"patient_id": ["a"], "term": ["Nausea"], "grade": [3]})
    result = sf.analyse_safety_tables(patients, ae, min_term_percent=0)
    assert result.test(result.summary_row("any"), "any_grade") == NotEstimable("test", "empty_arm")
    table = rsf.make_adverse_event_table(result)
    assert table.loc[0, "P, any grade"] == "not estimable: no patients in one arm"
    assert table.loc[0, "CMT+ICI (N = 0): any grade"] == "0 (0.0)"
    json.dumps(to_jsonable(rsf.safety_results(result, published={})), allow_nan=False)


# ----------------------------------------------------------------------------- by highest grade, actions
GRADES = json.loads((Path(__file__).parent / "reference" / "safety_grades.json").read_text())


@pytest.mark.parametrize("kind", list(GRADES["response_safety"]))
def test_patients_by_highest_grade_match_r(patients, adverse_events, kind):
    """R: aggregate(grade ~ patient_id, ae, max); counts of worst grade == 3, 4, 5; fisher.test(x)$p.value."""
    grades = sf.summarise_grades(patients, adverse_events, arm_order=ARMS).set_index("kind")
    golden = GRADES["response_safety"][kind]
    for arm in ARMS:
        assert grades.loc[kind, f"k:{arm}"] == golden["k"][arm]
    assert grades.loc[kind, "p"] == pytest.approx(golden["fisher_p"], rel=RTOL)
    assert grades.loc[kind, "test"] == "fisher"


def _tiny_with_actions():
    ref = Path(__file__).parent / "reference"
    pts = pd.read_csv(ref / "cohort_tables_cohort.csv", dtype=str)[["patient_id", "arm"]]
    ae = pd.read_csv(ref / "cohort_tables_ae.csv", dtype=str, keep_default_na=False)
    ae["grade"] = ae["grade"].astype(int)
    return pts, ae


@pytest.mark.parametrize("kind", list(GRADES["cohort_tables"]))
def test_actions_and_grades_on_a_tiny_cohort_match_r(kind):
    pts, ae = _tiny_with_actions()
    grades = sf.summarise_grades(pts, ae, arm_order=["A", "B"]).set_index("kind")
    golden = GRADES["cohort_tables"][kind]
    assert [grades.loc[kind, f"k:{a}"] for a in "AB"] == [golden["k"][a] for a in "AB"]
    assert grades.loc[kind, "p"] == pytest.approx(golden["fisher_p"], rel=RTOL)


def test_without_the_action_column_there_are_no_action_rows_and_the_prose_says_so(result):
    assert not result.grades.attrs["has_actions"]
    assert not result.grades["kind"].str.startswith("action_").any()
    text = rsf.safety_results(result)["text"]["actions_sentence"]
    assert "do not record the action" in text


def test_summary_table_shows_grades_3_4_5_and_actions_with_n_in_headers():
    pts, ae = _tiny_with_actions()
    result = sf.analyse_safety_tables(pts, ae, arm_order=["A", "B"])
    table = rsf.make_safety_summary_table(result)
    assert list(table.columns) == ["", "A (N = 3)", "B (N = 3)", "P"]
    assert table[""].tolist() == [rsf.GRADE_ROW_LABELS[k] for k in sf.GRADE_ROWS] + [
        rsf.GRADE_ROW_LABELS[f"action_{a}"] for a in sf.ACTIONS]
    payload = rsf.safety_results(result)
    assert payload["grades"]["5"]["B"]["k"] == 1 and payload["grades"]["treatment_related_deaths"] == {"A": 0, "B": 1}
    assert payload["actions"]["discontinued"]["B"]["k"] == 2
    assert "discontinuation in 0 (0.0) with A and 2 (66.7) with B" in payload["text"]["actions_sentence"]
    assert "Treatment-related deaths (grade 5 events): 0 (0.0) with A and 1 (33.3) with B." \
        in payload["text"]["grades_sentence"]


@pytest.mark.parametrize("rule", ["fisher", "cochran"])
def test_summary_rows_and_term_rows_use_the_same_test(rule):
    """The reviewer's point: one test for every row. With 130 patients and no sparse cell the Table 1
    rule picks Pearson for the summary and for a common term alike."""
    rng = np.random.default_rng(1)
    pts = pd.DataFrame({"patient_id": [f"P{i}" for i in range(130)], "arm": ["A"] * 65 + ["B"] * 65})
    ae = pd.DataFrame({"patient_id": pts["patient_id"][rng.random(130) < 0.5], "term": "Nausea", "grade": 1})
    counts = sf.count_adverse_events(pts, ae, rule=rule, arm_order=["A", "B"])
    tests = set(counts["test:any_grade"])
    assert len(tests) == 1
    assert tests == ({"fisher"} if rule == "fisher" else {"pearson"})


def test_the_special_interest_mark_says_where_the_class_is_counted(patients, adverse_events):
    si = sf.SpecialInterest(label="immune-related", terms=("Hypothyroidism",), prefixes=("Rash",),
                            arms=("CMT+ICI",))
    result = sf.analyse_safety_tables(patients, adverse_events, special_interest=si, min_term_percent=0)
    note = rsf.adverse_event_table_footnote(result)
    assert "counted as immune-related only in CMT+ICI" in note
    table = rsf.make_special_interest_table(result)
    assert set(table[[c for c in table.columns if c.startswith("CMT (")][0]]) == {"not applicable"}
