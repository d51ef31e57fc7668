"""Tests for helpers.stats.contingency: test selection rules and agreement with R.

Golden values: tests/reference/contingency.R -> contingency.json (R 4.2.2), mirroring
``chisq.test(x, correct = FALSE)``, ``chisq.test(x, correct = TRUE)`` and ``fisher.test(x)``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from helpers.stats.contingency import (
    AssociationTest,
    ContingencyTableError,
    UntestableTableWarning,
    expected_counts,
    fisher_exact_rxc,
    freeman_halton_statistic,
    pearson_chisq,
    test_association,
)

ROOT = Path(__file__).resolve().parents[1]
REF = json.loads((ROOT / "tests" / "reference" / "contingency.json").read_text())
CASES = {**{f"published-{k}": v for k, v in REF["published"].items()},
         **{f"extra-{k}": v for k, v in REF["extra"].items()}}
RTOL = 1e-6

#: Histology arm cells that reproduce the printed statistic (see sections/02-baseline-methods).
HISTOLOGY_CORRECTED = [[74, 37], [3, 0], [10, 2]]


def _published_yaml() -> dict:
    return yaml.safe_load((ROOT / "data" / "published.yaml").read_text())


def _published_tables():
    """(variable, table, printed statistic, printed P) for each Table 1 row with numbers."""
    out = []
    for row in _published_yaml()["table1"]:
        if not row["levels"]:
            continue
        table = [[lv["CMT"], lv["CMT+ICI"]] for lv in row["levels"].values()]
        if row["variable"] == "Histology":
            table = HISTOLOGY_CORRECTED
        out.append((row["variable"], table, row["chi2"], row["p"]))
    return out


# ------------------------------------------------------------------------------------------
# agreement with R


@pytest.mark.parametrize("name", sorted(CASES))
def test_pearson_chi_square_matches_r_chisq_test_without_correction(name):
    """R: chisq.test(x, correct = FALSE)$statistic, $p.value."""
    case = CASES[name]
    stat, df, p = pearson_chisq(case["table"], correct=False)
    assert stat == pytest.approx(case["pearson"]["statistic"], rel=RTOL)
    assert df == case["pearson"]["df"]
    assert p == pytest.approx(case["pearson"]["p"], rel=RTOL)


@pytest.mark.parametrize("name", sorted(CASES))
def test_yates_chi_square_matches_r_chisq_test_with_correction(name):
    """R: chisq.test(x, correct = TRUE) (Yates only applies to 2 x 2 tables)."""
    case = CASES[name]
    stat, df, p = pearson_chisq(case["table"], correct=True)
    assert stat == pytest.approx(case["yates"]["statistic"], rel=RTOL, abs=1e-12)
    assert p == pytest.approx(case["yates"]["p"], rel=RTOL)


@pytest.mark.parametrize("name", sorted(CASES))
def test_exact_p_matches_r_fisher_test_for_any_r_by_c_table(name):
    """R: fisher.test(x)$p.value (exact network algorithm, two-sided)."""
    case = CASES[name]
    assert fisher_exact_rxc(case["table"]) == pytest.approx(case["fisher_p"], rel=RTOL)


@pytest.mark.parametrize("name", sorted(CASES))
def test_minimum_expected_count_matches_r(name):
    """R: min(chisq.test(x)$expected)."""
    case = CASES[name]
    assert expected_counts(case["table"]).min() == pytest.approx(case["min_expected"], rel=RTOL)


@pytest.mark.parametrize("name", sorted(CASES))
def test_freeman_halton_statistic_matches_its_formula_evaluated_in_r(name):
    """R: -2 * (log(gamma) + log P_obs), written out in contingency.R (no R function exists)."""
    case = CASES[name]
    assert freeman_halton_statistic(case["table"]) == pytest.approx(case["ffh_statistic"],
                                                                    rel=RTOL)


def test_two_by_two_exact_p_agrees_with_scipy_fisher_exact():
    from scipy.stats import fisher_exact

    for table in ([[3, 1], [1, 3]], [[2, 10], [15, 3]], [[87, 37], [0, 2]]):
        assert fisher_exact_rxc(table) == pytest.approx(fisher_exact(table).pvalue, rel=RTOL)


# ------------------------------------------------------------------------------------------
# the published Table 1


@pytest.mark.parametrize("variable, table, chi2, p", _published_tables(),
                         ids=[t[0] for t in _published_tables()])
def test_paper_rule_reproduces_every_published_statistic_and_p_to_three_decimals(
        variable, table, chi2, p):
    res = test_association(table, rule="paper")
    assert round(res.p, 3) == pytest.approx(p, abs=1e-9)
    if chi2 is None:
        assert res.statistic is None  # printed "-"
    else:
        assert round(res.statistic, 3) == pytest.approx(chi2, abs=1e-9)


def test_histology_as_printed_does_not_reproduce_the_published_statistic():
    printed = [[74, 37], [3, 2], [10, 0]]
    res = test_association(printed, rule="paper")
    assert round(res.statistic, 3) != 2.098
    assert round(res.p, 3) != 0.321


def test_histology_correction_keeps_the_printed_total_column():
    rows = next(r for r in _published_yaml()["table1"] if r["variable"] == "Histology")
    totals = [lv["total"] for lv in rows["levels"].values()]
    assert np.asarray(HISTOLOGY_CORRECTED).sum(axis=1).tolist() == totals


# ------------------------------------------------------------------------------------------
# rule selection


@pytest.mark.parametrize(
    "table, rule, key",
    [
        ([[87, 37], [0, 2]], "paper", "fisher"),          # min E 0.62 < 1
        ([[83, 36], [4, 3]], "paper", "yates"),           # min E 2.17
        ([[11, 4], [76, 35]], "paper", "yates"),          # min E 4.64
        ([[10, 7], [77, 32]], "paper", "pearson"),        # min E 5.26
        ([[8, 7], [6, 9]], "paper", "fisher"),            # n = 30 < 40
        ([[74, 37], [3, 0], [10, 2]], "paper", "fisher_freeman_halton"),
        ([[30, 20], [25, 25], [20, 30]], "paper", "pearson"),
        ([[83, 36], [4, 3]], "modern", "fisher"),
        ([[11, 4], [76, 35]], "modern", "fisher"),
        ([[74, 37], [3, 0], [10, 2]], "modern", "fisher"),
        ([[10, 7], [77, 32]], "modern", "pearson"),
        ([[30, 20], [25, 25], [20, 30]], "modern", "pearson"),
    ],
)
def test_rule_selects_the_expected_test(table, rule, key):
    assert test_association(table, rule=rule).key == key


def test_fisher_exact_test_has_no_statistic_and_no_df():
    res = test_association([[87, 37], [0, 2]])
    assert res.test == "Fisher's exact test"
    assert res.statistic is None and res.df is None
    assert res.exact


def test_result_is_a_frozen_dataclass_carrying_its_test_name():
    res = test_association([[39, 20], [48, 19]])
    assert isinstance(res, AssociationTest)
    assert res.test == "Pearson chi-square" and res.df == 1
    with pytest.raises(Exception):
        res.p = 0.5  # type: ignore[misc]


def test_a_dataframe_crosstab_is_accepted():
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame([[39, 20], [48, 19]], index=["> 60", "<= 60"], columns=["CMT", "CMT+ICI"])
    assert test_association(df).p == test_association(df.to_numpy()).p


def test_an_empty_level_is_dropped_before_testing():
    with_empty = [[74, 37], [0, 0], [3, 0], [10, 2]]
    assert test_association(with_empty).p == pytest.approx(
        test_association(HISTOLOGY_CORRECTED).p, rel=1e-12)
    assert test_association(with_empty).shape == (3, 2)


def test_a_table_with_one_non_empty_row_gives_no_test_and_warns():
    with pytest.warns(UntestableTableWarning):
        res = test_association([[87, 39], [0, 0]])
    assert res.p is None and res.key == "none"


@pytest.mark.parametrize(
    "bad",
    [[1, 2, 3], [[1, -1], [2, 3]], [[1.5, 2], [2, 3]], [[np.nan, 2], [2, 3]], [[1, 2]],
     [["a", "b"], ["c", "d"]]],
    ids=["1-d", "negative", "non-integer", "missing", "one-row", "text"],
)
def test_invalid_tables_fail_early_with_a_named_error(bad):
    with pytest.raises(ContingencyTableError):
        test_association(bad)


def test_unknown_rule_is_rejected():
    with pytest.raises(ValueError):
        test_association([[1, 2], [3, 4]], rule="spss")


# ------------------------------------------------------------------------------------------
# rule names, libraries and typed results


def test_cochran_is_the_default_rule_and_paper_its_former_name():
    table = [[83, 36], [4, 3]]
    assert test_association(table).rule == "cochran"
    assert test_association(table, rule="paper") == test_association(table, rule="cochran")


def test_the_result_converts_to_a_typed_test_result_with_the_tests_machine_name():
    from helpers.stats.types import TestResult

    res = test_association([[39, 20], [48, 19]]).result
    assert isinstance(res, TestResult) and res.test == "pearson" and res.df == 1


@pytest.mark.parametrize("correct", [False, True])
def test_chi_square_is_scipys_chi2_contingency(correct):
    from scipy.stats import chi2_contingency

    table = [[83, 36], [4, 3]]
    ref = chi2_contingency(table, correction=correct)
    assert pearson_chisq(table, correct=correct) == (ref.statistic, ref.dof, ref.pvalue)


def test_fisher_exact_for_a_large_two_by_two_table_is_fast():
    """100,000 patients: scipy's fisher_exact, no enumeration of tables."""
    import time

    start = time.perf_counter()
    p = fisher_exact_rxc([[49_990, 49_995], [10, 5]])
    assert 0 < p <= 1 and time.perf_counter() - start < 2


# ------------------------------------------------------------------------------------------
# the size guard (issue 15): exact tests of any size in bounded memory
LARGE = json.loads((ROOT / "tests" / "reference" / "exact_large.json").read_text())


def _peak_mb_of(fn) -> tuple[object, float]:
    """Run ``fn`` and return its result and the growth of the process's peak memory (MB, Linux)."""
    import resource

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = fn()
    return result, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024


def test_a_five_by_two_table_of_2511_patients_gets_a_seeded_monte_carlo_p_equal_to_r_simulate_p_value():
    """R: fisher.test(x, simulate.p.value = TRUE, B = 1e5) = 1 / (B + 1): no simulated table is as
    extreme (R's exact P with workspace = 2e8 is 1.6e-19; the default workspace stops with an error)."""
    case = LARGE["five_by_two"]
    res, grown = _peak_mb_of(lambda: test_association(case["table"]))
    assert res.key == "fisher_freeman_halton" and res.monte_carlo and res.replicates == 100_000
    assert res.min_expected == pytest.approx(case["min_expected"], rel=RTOL)
    assert res.p == pytest.approx(case["simulated_p"], rel=RTOL)
    assert res.p >= case["exact_p"]
    assert res.result.test == "fisher_freeman_halton_mc" and "Monte Carlo" in res.test
    assert grown < 500


def test_a_three_level_row_of_100000_patients_with_a_rare_level_is_exact_and_equals_r():
    case = LARGE["three_level_100k"]
    res, grown = _peak_mb_of(lambda: test_association(case["table"]))
    assert res.key == "fisher_freeman_halton" and not res.monte_carlo
    assert res.p == pytest.approx(case["exact_p"], rel=RTOL)
    assert grown < 500


def test_the_monte_carlo_p_is_reproducible_with_its_seed_and_within_monte_carlo_error_of_the_exact_p():
    from helpers.stats.contingency import monte_carlo_exact_p

    table = REF["extra"]["six_by_two"]["table"]
    exact = REF["extra"]["six_by_two"]["fisher_p"]
    p1 = monte_carlo_exact_p(table, seed=7)
    assert p1 == monte_carlo_exact_p(table, seed=7)
    assert abs(p1 - exact) < 4 * np.sqrt(exact * (1 - exact) / 100_000) + 1e-5


def test_the_guard_counts_the_partial_tables_before_enumerating_and_never_raises_memory_error():
    from helpers.stats.contingency import EXACT_LIMIT, ExactTestTooLargeError, exact_p_value, two_column_work

    table = LARGE["five_by_two"]["table"]
    assert two_column_work([sum(r) for r in table], 1253) > EXACT_LIMIT
    with pytest.raises(ExactTestTooLargeError):
        fisher_exact_rxc(table)
    p, replicates = exact_p_value(table, seed=1)
    assert replicates == 100_000 and 0 < p <= 1
