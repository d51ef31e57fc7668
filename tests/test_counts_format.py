"""Counts print with a comma thousands separator from 1,000 on (en-GB / AMA style), everywhere they
reach the document: prose strings of results.json, table cells and headers, footnotes.

The results are faked at registry size (arms of 69,048 and 30,952 patients, as a 100,000-patient cohort
of ``python -m helpers.data.synthetic --n 100000``): real analyses of small data whose counts are then
replaced, or typed results built by hand. Years, P values, percentages and the numbers of results.json
stay as they were.
"""
from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import yaml

from helpers.analyses.baseline import summarise_baseline
from helpers.analyses.cohort import CohortSummary, FlowCounts, GroupSummary, PatientFlow
from helpers.analyses.survival import analyse_endpoint
from helpers.config import PROJECT_ROOT
from helpers.report.baseline import baseline_frame, baseline_results
from helpers.report.cohort import (arms_results, cohort_overview_table, composition_sentence, excluded_sentence,
                                   flow_results, flow_table)
from helpers.report.formatting import format_count, format_n_pct, number_words
from helpers.report.study import study_text
from helpers.report.survival import make_survival_table, make_tte_table, results_payload

N_REF, N_EXP = 69048, 30952
EVENTS_REF, EVENTS_EXP = 67271, 24327
LABELS = {"CMT": "CMT", "CMT+ICI": "CMT + ICI"}


# ----------------------------------------------------------------------------- format_count
@pytest.mark.parametrize(("n", "shown"), [
    (0, "0"), (7, "7"), (999, "999"), (1000, "1,000"), (69048, "69,048"), (100000, "100,000"),
    (1234567, "1,234,567"), (-1234, "-1,234"),
    (np.int64(30952), "30,952"),          # a count straight from numpy / pandas
    (69048.0, "69,048"),                  # an integral float (a count read back from a float column)
    (1234.5, "1,234.5"),                  # a weighted count keeps its decimals
    (None, "–"), (float("nan"), "–"), (pd.NA, "–"),     # missing: the dash of format_p
    ("<5", "<5"),                         # an already formatted cell is left alone
])
def test_a_count_has_a_comma_thousands_separator_from_one_thousand_on(n, shown):
    assert format_count(n) == shown


def test_a_missing_count_can_read_another_marker():
    assert format_count(None, missing="NR") == "NR"


def test_n_percent_cells_and_counts_in_words_are_separated_too():
    assert format_n_pct(EVENTS_REF, N_REF) == "67,271 (97.4)"
    assert format_n_pct(12, 126) == "12 (9.5)"               # below 1,000: unchanged
    assert number_words(3) == "three" and number_words(12345) == "12,345"


# ----------------------------------------------------------------------------- cohort
def _group(code: str, n: int, os_events: int, years=(2014, 2023)) -> GroupSummary:
    return GroupSummary(code=code, label=LABELS.get(code, code), description="", n=n, os_events=os_events,
                        alive=n - os_events, pfs_events=None, with_adverse_event=None, start_years=years)


@pytest.fixture
def summary() -> CohortSummary:
    ref, exp = _group("CMT", N_REF, EVENTS_REF), _group("CMT+ICI", N_EXP, EVENTS_EXP, (2019, 2024))
    overall = _group("Overall", N_REF + N_EXP, EVENTS_REF + EVENTS_EXP, (2014, 2024))
    return CohortSummary(arms=(ref, exp), overall=overall, parts={})


def test_the_composition_sentence_separates_every_count(summary):
    assert composition_sentence(summary) == ("The analysed cohort comprises 100,000 patients: 69,048 in the CMT arm "
                                             "and 30,952 in the CMT + ICI arm.")


def test_the_cohort_table_separates_counts_but_not_years(summary):
    table = cohort_overview_table(summary).set_index("Characteristic")
    assert table.loc["Patients"].tolist() == ["69,048", "30,952", "100,000"]
    assert table.loc["Deaths (OS events)", "CMT"] == "67,271 (97.4)"
    assert table.loc["Years of treatment start"].tolist() == ["2014–2023", "2019–2024", "2014–2024"]


def test_the_arms_section_quotes_separated_counts_and_keeps_the_numbers(summary):
    out = arms_results(None, summary)
    assert out["CMT"]["n"] == N_REF and out["CMT"]["os_events"] == EVENTS_REF     # numbers unchanged
    assert out["CMT"]["text"]["n"] == "69,048"
    assert out["text"]["n_total"] == "100,000" and out["text"]["n_experimental"] == "30,952"
    assert out["text"]["os_events_reference"] == "67,271 (97.4)"


def test_flow_headers_cells_and_sentences_are_separated():
    study = SimpleNamespace(config=SimpleNamespace(arm_label=LABELS.get))
    arms = (FlowCounts("CMT", N_REF, EVENTS_REF, N_REF - EVENTS_REF, 1500),
            FlowCounts("CMT+ICI", N_EXP, EVENTS_EXP, N_EXP - EVENTS_EXP, 12))
    flow = PatientFlow(arms=arms, overall=FlowCounts("Overall", 100000, EVENTS_REF + EVENTS_EXP,
                                                     100000 - EVENTS_REF - EVENTS_EXP, 1512),
                       lost_months=6, excluded=(("Missing start date", 1234),), n_excluded=1234)
    table = flow_table(study, flow)
    assert list(table.columns[1:]) == ["CMT (N = 69,048)", "CMT + ICI (N = 30,952)", "Overall (N = 100,000)"]
    assert table.iloc[0, 1:].tolist() == ["69,048", "30,952", "100,000"]
    assert excluded_sentence(flow) == "1,234 patients were excluded before analysis (Missing start date: 1,234)."
    assert flow_results(flow)["text"]["lost_reference"] == "1,500 of 1,777"
    assert flow_results(flow)["CMT"]["lost"] == 1500


def test_the_study_section_quotes_separated_sizes():
    text = study_text({"design": "observational", "n_total": 100000,
                       "arms": [{"code": "CMT", "label": "CMT", "n": N_REF},
                                {"code": "CMT+ICI", "label": "CMT + ICI", "n": N_EXP}]})
    assert (text["n_total"], text["n_reference"], text["n_experimental"]) == ("100,000", "69,048", "30,952")


# ----------------------------------------------------------------------------- survival
PLAN = yaml.safe_load((PROJECT_ROOT / "analysis.yaml").read_text(encoding="utf-8"))["survival"]


@pytest.fixture
def registry_os():
    """An OS result of 80 generated patients whose arm sizes and event counts are set to registry size."""
    rng = np.random.default_rng(16)
    arm = pd.Categorical(np.repeat(["CMT", "CMT+ICI"], 40), categories=["CMT", "CMT+ICI"])
    patients = pd.DataFrame({"arm": arm, "os_months": rng.exponential(12.0, 80).round(2) + 0.1,
                             "os_event": (rng.random(80) < 0.8).astype(int)})
    config = SimpleNamespace(arm_order=("CMT", "CMT+ICI"), reference_arm="CMT", design="observational",
                             arm_label=LABELS.get)
    study = SimpleNamespace(patients=patients, config=config, has=lambda part: part != "pfs")
    res = analyse_endpoint(study, "os", {**PLAN, "rate_times_months": [6, 12], "rmst_horizon_months": 12})
    ref, exp = res.arms
    arms = (dataclasses.replace(ref, n=N_REF, events=EVENTS_REF, events_by_cause={"death": EVENTS_REF}),
            dataclasses.replace(exp, n=N_EXP, events=EVENTS_EXP, events_by_cause={"death": EVENTS_EXP}))
    return dataclasses.replace(res, arms=arms, n=N_REF + N_EXP, events=EVENTS_REF + EVENTS_EXP), study


def test_survival_sentences_quote_separated_events_of_patients(registry_os):
    res, study = registry_os
    payload = results_payload(res, study)
    text = payload["text"]
    assert text["events_reference"] == "67,271 of 69,048" and text["events_CMT_ICI"] == "24,327 of 30,952"
    assert text["events_total"] == "91,598 of 100,000"
    assert text["n_reference"] == "69,048"
    assert text["events_by_cause_reference"] == "67,271 deaths"
    assert payload["events"]["CMT"] == {"events": EVENTS_REF, "n": N_REF}       # numbers unchanged
    assert payload["n"]["CMT+ICI"] == N_EXP


def test_survival_tables_separate_counts_in_cells_and_headers(registry_os):
    res, study = registry_os
    table = make_survival_table([res], study)
    patients = table[table["Quantity"] == "Patients, n"].iloc[0]
    events = table[table["Quantity"] == "Events, n (%)"].iloc[0]
    assert (patients["CMT"], patients["CMT + ICI"]) == ("69,048", "30,952")
    assert events["CMT"] == "67,271 (97.4)"
    tte = make_tte_table(res, study)
    assert list(tte.columns) == ["Quantity", "CMT (N = 69,048)", "CMT + ICI (N = 30,952)"]
    assert tte.iloc[0, 1:].tolist() == ["67,271 (97.4)", "24,327 (78.6)"]


# ----------------------------------------------------------------------------- Table 1
def test_table_1_separates_headers_level_counts_and_missing_values():
    n = N_REF + N_EXP
    sex = np.where(np.arange(n) % 2 == 0, "Female", "Male").astype(object)
    sex[:1000] = None                                         # 1,000 missing values
    patients = pd.DataFrame({"arm": pd.Categorical(np.repeat(["CMT", "CMT+ICI"], [N_REF, N_EXP]),
                                                   categories=["CMT", "CMT+ICI"]),
                             "sex": sex})
    table = summarise_baseline(patients, arms=["CMT", "CMT+ICI"])
    frame = baseline_frame(table)
    heads = [c for c in frame.columns if "(n = " in c]
    assert heads == ["Overall (n = 100,000)", "CMT (n = 69,048)", "CMT+ICI (n = 30,952)"]
    sex_row = frame[frame["Characteristic"] == "sex"].iloc[0]
    assert sex_row["Missing"] == "1,000"
    female = frame[frame["Characteristic"].str.strip() == "Female"].iloc[0]
    assert female["Overall (n = 100,000)"] == "49,500 (50.0)"
    text = baseline_results(table)["text"]
    assert (text["n_overall"], text["n_reference"], text["n_experimental"]) == ("100,000", "69,048", "30,952")
    assert baseline_results(table)["n"]["CMT"] == N_REF                     # numbers unchanged
    assert "," not in sex_row["P"] and "," not in sex_row["SMD"]             # P and SMD untouched
