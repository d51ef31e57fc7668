"""Tests of helpers/analyses/safety.py against R golden values (tests/reference/response_safety.R)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers.analyses import safety as sf
from helpers.build.results import to_jsonable

REFERENCE = json.loads((Path(__file__).parent / "reference" / "response_safety.json").read_text())["safety"]
RTOL = 1e-6
ARMS = ["CMT", "CMT+ICI"]


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
    return sf.tabulate_trae(patients, adverse_events)


# ----------------------------------------------------------------------------- against R
@pytest.mark.parametrize("term", [t["term"] for t in REFERENCE["terms"]])
def test_term_counts_and_fisher_p_match_r(counts, term):
    """R: aggregate(grade ~ patient_id + term, FUN = max), then fisher.test(x)$p.value per term."""
    golden = next(t for t in REFERENCE["terms"] if t["term"] == term)
    row = counts.set_index("term").loc[term]
    for level in ("any_grade", "grade3plus"):
        for arm in ARMS:
            assert row[f"{level}:{arm}"] == golden[level]["k"][arm]
        assert row[f"p:{level}"] == pytest.approx(golden[level]["fisher_p"], rel=RTOL)
        assert row[f"test:{level}"] == "Fisher's exact test"


@pytest.mark.parametrize("key,row_level", [("any_trae", "any_grade"), ("any_grade3plus", "grade3plus")])
def test_any_trae_rows_match_r_with_patients_without_events_in_the_denominator(counts, key, row_level):
    """R: fisher.test(x)$p.value on patients with >= 1 TRAE (or >= 1 grade >= 3 TRAE) of all patients
    (n = 16 < 40, so the Table 1 rule chooses Fisher's exact test)."""
    golden = REFERENCE["overall"][key]
    row = counts.set_index("term").loc[sf.ANY_TRAE]
    assert counts.attrs["n"] == golden["n"]
    for arm in ARMS:
        assert row[f"{row_level}:{arm}"] == golden["k"][arm]
    assert row[f"p:{row_level}"] == pytest.approx(golden["fisher_p"], rel=RTOL)
    assert row[f"test:{row_level}"] == "Fisher's exact test"


def test_worst_grade_per_patient_and_term_matches_r_aggregate(patients, adverse_events):
    """R: aggregate(grade ~ patient_id + term, data = ae, FUN = max)."""
    worst = sf.worst_grades(adverse_events, patients)
    for golden in REFERENCE["terms"]:
        got = worst[worst["term"] == golden["term"]].set_index("patient_id")["worst_grade"].to_dict()
        assert got == golden["worst_grades"]


# ----------------------------------------------------------------------------- edge cases
def test_several_events_of_one_term_count_once_at_the_worst_grade(counts):
    # S01 has Anaemia grades 1, 3 and 2: one CMT patient, counted among grade >= 3
    anaemia = counts.set_index("term").loc["Anaemia"]
    assert anaemia["any_grade:CMT"] == 4 and anaemia["grade3plus:CMT"] == 1


def test_a_term_present_in_one_arm_only_is_tabulated_with_zero_in_the_other(counts):
    table = counts.set_index("term")
    assert table.loc["Hypothyroidism", "any_grade:CMT"] == 0
    assert table.loc["Alopecia", "any_grade:CMT+ICI"] == 0


def test_no_grade_3_event_in_either_arm_gives_p_one_as_r_fisher_test(counts):
    # R: fisher.test(matrix(c(0, 0, 6, 10), 2))$p.value == 1 (a single table has these margins)
    nausea = counts.set_index("term").loc["Nausea"]
    assert nausea["p:grade3plus"] == 1.0
    table = sf.make_trae_table(counts, min_term_percent=0).set_index("Adverse event")
    assert table.loc["Nausea", "P, grade ≥ 3"] == "1.000"


def test_every_patient_with_an_event_gives_p_one_instead_of_an_undefined_chi_square():
    patients = pd.DataFrame({"patient_id": [f"P{i}" for i in range(80)],
                             "arm": pd.Categorical(["CMT"] * 50 + ["CMT+ICI"] * 30, categories=ARMS)})
    ae = pd.DataFrame({"patient_id": patients["patient_id"], "term": "Anaemia", "grade": 1})
    row = sf.tabulate_trae(patients, ae).set_index("term").loc[sf.ANY_TRAE]
    assert row["p:any_grade"] == 1.0 and row["test:any_grade"] == "Fisher's exact test"


def test_worst_grade_table_as_input_gives_the_same_counts(patients, adverse_events, counts):
    worst = sf.worst_grades(adverse_events, patients)[["patient_id", "arm", "term", "worst_grade"]]
    again = sf.tabulate_trae(patients, worst)
    pd.testing.assert_frame_equal(again, counts)


def test_terms_are_sorted_by_decreasing_overall_frequency_after_the_summary_rows(counts):
    assert counts["term"].iloc[:2].tolist() == [sf.ANY_TRAE, sf.ANY_IRAE]
    freq = counts.loc[counts["kind"] == "term", "any_grade_total_percent"].tolist()
    assert freq == sorted(freq, reverse=True)


def test_terms_with_extra_spaces_are_merged(patients):
    ae = pd.DataFrame({"patient_id": ["S01", "S01", "S11"], "term": ["Nausea", " Nausea ", "Nausea"],
                       "grade": [1, 2, 1]})
    table = sf.tabulate_trae(patients, ae).set_index("term")
    assert table.loc["Nausea", "any_grade:CMT"] == 1


@pytest.mark.parametrize("bad,message", [
    ({"patient_id": "X99", "term": "Nausea", "grade": 1}, "patient_id not in the patient table"),
    ({"patient_id": "S01", "term": "Nausea", "grade": 6}, "grade not an integer 1-5"),
    ({"patient_id": "S01", "term": None, "grade": 2}, "missing term"),
])
def test_unanalysable_adverse_event_rows_are_rejected_with_a_named_error(patients, adverse_events, bad, message):
    ae = pd.concat([adverse_events, pd.DataFrame([bad])], ignore_index=True)
    with pytest.raises(sf.SafetyDataError, match=message):
        sf.tabulate_trae(patients, ae)


@pytest.mark.parametrize("term,flag", [
    ("Hypothyroidism", True), ("hyperthyroidism", True), ("Pneumonitis", True), ("Rash", True),
    ("Rash maculo-papular", True), ("Reactive cutaneous capillary endothelial proliferation", True),
    ("Immune-mediated hepatitis", True), ("Adrenal insufficiency", True), ("Myocarditis", True),
    ("Anaemia", False), ("Nausea", False), ("Alanine aminotransferase increased", False),
    ("Rashes of unknown kind", False),
])
def test_immune_related_terms_are_flagged_from_the_documented_list(term, flag):
    assert sf.is_immune_related(term) is flag


# ----------------------------------------------------------------------------- tables, figure, payload
def test_trae_table_starts_with_any_trae_and_lists_terms_above_the_threshold(counts):
    table = sf.make_trae_table(counts, min_term_percent=20)
    assert table["Adverse event"].iloc[0] == sf.ANY_TRAE
    # Rash maculo-papular: 1/6 = 16.7% < 20% in every arm; Hypothyroidism 3/6 = 50% with CMT+ICI
    assert "Rash maculo-papular †" not in table["Adverse event"].tolist()
    assert "Hypothyroidism †" in table["Adverse event"].tolist()
    assert table.loc[0, "CMT (n = 10): any grade"] == "9 (90.0)"
    assert table.loc[0, "CMT+ICI: grade ≥ 3"] == "3 (50.0)"


def test_irae_table_lists_every_immune_related_term_regardless_of_frequency(counts):
    table = sf.make_irae_table(counts)
    assert table["Adverse event"].tolist() == [sf.ANY_IRAE, "Hypothyroidism", "Rash maculo-papular"]
    assert table.loc[0, "CMT+ICI (n = 6): any grade"] == "4 (66.7)"


def test_butterfly_chart_draws_any_grade_and_grade_3_bars_for_both_arms(counts):
    import matplotlib.pyplot as plt

    fig = sf.plot_trae_butterfly(counts, min_term_percent=0)
    ax = fig.axes[0]
    n_rows = 1 + (counts["kind"] == "term").sum()
    assert len(ax.patches) == 4 * n_rows
    left = [p for p in ax.patches if p.get_width() < 0]
    assert left, "the reference arm is drawn to the left"
    plt.close(fig)


def test_safety_payload_has_the_documented_keys_and_is_valid_json(counts):
    payload = to_jsonable(sf.summarise_safety(counts, published={"trae": "no difference"}))
    for level in ("any_grade", "grade3plus"):
        assert {"p", "test"} <= set(payload[level])
        for arm in ARMS:
            assert {"k", "n"} <= set(payload[level][arm])
    assert payload["any_grade"]["CMT"] == {"k": 9, "n": 10, "rate": 0.9, "percent": 90.0}
    assert [t["term"] for t in payload["terms"]][0] == "Anaemia"
    assert payload["terms"][3]["grade3plus"]["p"] == 1.0
    assert payload["text"]["any_grade_CMT_ICI"] == "5 (83.3)"
    json.dumps(payload, allow_nan=False)


@pytest.mark.parametrize("extra_ici_events,agrees", [(0, "yes"), (1, "no: incidence differs significantly")])
def test_agreement_with_the_published_statement_needs_a_non_significant_any_grade_p(extra_ici_events, agrees):
    n_cmt, n_ici = 40, 40
    patients = pd.DataFrame({"patient_id": [f"P{i}" for i in range(n_cmt + n_ici)],
                             "arm": pd.Categorical(["CMT"] * n_cmt + ["CMT+ICI"] * n_ici, categories=ARMS)})
    with_event = list(range(20)) + list(range(40, 60 + 15 * extra_ici_events))
    ae = pd.DataFrame({"patient_id": [f"P{i}" for i in with_event], "term": "Nausea", "grade": 1})
    summary = sf.summarise_safety(sf.tabulate_trae(patients, ae), published={"trae": "no difference"})
    assert summary["published"]["agrees"] == agrees
    table = sf.make_published_safety_table(summary)
    assert table.loc[0, "Agrees"] == agrees and table.loc[0, "Published (abstract)"] == "no difference"


@pytest.mark.parametrize("table", [[[3, 84], [9, 30]], [[0, 87], [5, 34]], [[40, 47], [20, 19]],
                                   [[1, 1], [1, 1]], [[12, 0], [0, 7]], [[25, 25], [25, 25]]])
def test_linear_time_two_by_two_fisher_p_equals_the_full_enumeration(table):
    # R: fisher.test(matrix(...))$p.value; the enumeration of helpers.stats.contingency is the reference
    from helpers.stats.contingency import _exact_two_column, _log_hypergeom, fisher_exact_rxc

    x = np.array(table)
    enumerated = _exact_two_column(x.sum(axis=1), int(x[:, 0].sum()), _log_hypergeom(x))
    assert fisher_exact_rxc(x) == pytest.approx(enumerated, rel=1e-10)
