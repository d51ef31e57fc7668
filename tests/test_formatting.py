"""P values, CIs and numbers as the document shows them (helpers.report.formatting)."""
from __future__ import annotations

import pytest

from helpers.report.formatting import (format_ci, format_number, format_p, format_p_statement, is_significant,
                                       significance_phrase)


@pytest.mark.parametrize(("p", "shown"), [
    (0.04953, "0.0495"),      # Pearson P of a DCR comparison: never "0.050" next to "significant"
    (0.0502, "0.0502"),       # would round onto 0.050
    (0.04996, "0.04996"),     # 0.0500 at four decimals is still onto the threshold
    (0.0494999, "0.049"),     # rounds away from the threshold: three decimals suffice
    (0.05, "0.050"),          # exactly at the threshold
    (0.123456, "0.123"),
    (0.0004, "<0.001"),
    (0.001, "0.001"),
    (0.9999, "1.000"),
])
def test_a_displayed_p_never_rounds_onto_or_across_five_percent(p, shown):
    assert format_p(p) == shown


@pytest.mark.parametrize("p", [0.04953, 0.0502, 0.04996, 0.0499999, 0.0500001, 0.0495, 0.0505])
def test_the_displayed_p_is_on_the_same_side_of_five_percent_as_the_unrounded_p(p):
    shown = float(format_p(p))
    assert (shown < 0.05) == (p < 0.05) and shown != 0.05


def test_significance_is_decided_on_the_unrounded_p():
    assert is_significant(0.04953) and significance_phrase(0.04953) == "significant"
    assert not is_significant(0.0502) and significance_phrase(0.0502) == "not significant"
    assert not is_significant(0.05)
    assert is_significant(None) is None and significance_phrase(None) == "not tested"


@pytest.mark.parametrize(("p", "statement"), [
    (0.0001, "P < 0.001"), (0.004, "P = 0.004"), (0.04953, "P = 0.0495"), (None, "P not estimable"),
])
def test_p_statements_never_read_p_equals_less_than(p, statement):
    assert format_p_statement(p) == statement
    assert "= <" not in format_p_statement(p)


def test_the_threshold_rule_can_be_switched_off():
    assert format_p(0.04953, alpha=None) == "0.050"


def test_a_negative_limit_is_joined_by_to_and_minus_zero_is_not_shown():
    assert format_ci(-4.04, 28.2) == "-4.0 to 28.2"
    assert format_ci(1, 2) == "1.0–2.0"
    assert format_number(-0.04) == "0.0"
