"""Patient flow, disposition, exposure and deaths on a tiny hand-made cohort, against R.

Data: tests/reference/cohort_tables_{cohort,cycles,ae}.csv (6 patients, arms A and B, cut-off
2020-12-31); reference values: tests/reference/cohort_tables.json written by
``Rscript tests/reference/cohort_tables.R`` (``median``, ``range``, ``mean``, ``sd`` of the cycle counts
and of the duration of treatment; counts by the same rules). The hand check of each rule is in the
comments below.
"""
from __future__ import annotations

import json
import shutil
import warnings

import pytest

from helpers.analyses.cohort import (lost_to_followup, patient_flow, summarise_deaths, summarise_disposition,
                                     summarise_exposure)
from helpers.config import PROJECT_ROOT
from helpers.data.load import load_study
from helpers.report.cohort import (deaths_results, deaths_table, disposition_results, disposition_table,
                                   exposure_results, exposure_table, flow_footnote, flow_results, flow_table)

REF = PROJECT_ROOT / "tests" / "reference"
R = json.loads((REF / "cohort_tables.json").read_text())
RTOL = 1e-6

STUDY = """title: Tiny cohort
synthetic: false
cutoff_date: 2020-12-31
design: observational
setting: test
arms:
  - {code: A, label: Arm A}
  - {code: B, label: Arm B}
"""
DICTIONARY = """covariates:
  age: {label: Age, type: continuous, unit: years, timing: baseline}
exposures:
  chemo_cycles: {label: Chemo cycles, agent_class: chemo}
  drugx_cycles: {label: Drug X cycles, agent_class: drugx, arms: [B]}
"""


def _folder(tmp_path, excluded: str | None = None, ae: bool = True, cycles: bool = True):
    folder = tmp_path / "tiny"
    folder.mkdir()
    shutil.copy(REF / "cohort_tables_cohort.csv", folder / "cohort.csv")
    if cycles:
        shutil.copy(REF / "cohort_tables_cycles.csv", folder / "treatment_cycles.csv")
    if ae:
        shutil.copy(REF / "cohort_tables_ae.csv", folder / "adverse_events.csv")
    (folder / "study.yaml").write_text(STUDY)
    (folder / "dictionary.yaml").write_text(DICTIONARY)
    if excluded is not None:
        (folder / "excluded.csv").write_text(excluded)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")     # adverse_events.action: ignored by loaders that predate it
        return load_study(folder)


@pytest.fixture
def tiny(tmp_path):
    return _folder(tmp_path, excluded="patient_id,reason\nX1,withdrew consent\nX2,withdrew consent\nX3,\n")


def test_lost_to_followup_is_alive_and_last_seen_more_than_three_months_before_the_cutoff(tiny):
    # P3: alive, last seen 2020-08-31 = 122 days = 4.0 months before 2020-12-31 -> lost; P2, P4 seen at it
    lost = lost_to_followup(tiny.patients, "2020-12-31", 3)
    assert tiny.patients.loc[lost, "patient_id"].tolist() == ["P3"]
    assert lost_to_followup(tiny.patients, "2020-12-31", 4.1).sum() == 0


def test_patient_flow_counts_equal_r_and_list_the_exclusions(tiny):
    flow = patient_flow(tiny)
    for g in flow.arms:
        r = R[g.code]
        assert (g.n, g.dead, g.alive, g.lost) == (r["n"], r["dead"], r["n"] - r["dead"], r["lost"])
        assert g.response_evaluable == r["evaluable"]        # NE is not evaluable: A 2 of 3
        assert g.with_adverse_event == r["with_ae"]
    assert flow.overall.n == 6 and flow.overall.dead == 3
    assert flow.n_excluded == 3
    assert flow.excluded == (("withdrew consent", 2), ("reason not recorded", 1))
    table = flow_table(tiny, flow)
    assert list(table.columns) == ["", "Arm A (N = 3)", "Arm B (N = 3)", "Overall (N = 6)"]
    assert "3 patients were excluded before analysis (withdrew consent: 2; reason not recorded: 1)." \
        in flow_footnote(flow)
    payload = flow_results(flow)
    assert payload["A"]["lost"] == 1 and payload["excluded"]["n"] == 3
    assert payload["text"]["lost_reference"] == "1 of 2"


def test_flow_without_excluded_file_says_none_are_listed(tmp_path):
    study = _folder(tmp_path)
    flow = patient_flow(study)
    assert flow.excluded is None and "list no patients excluded" in flow_footnote(flow)


def test_disposition_ongoing_discontinued_by_reason_and_vital_status(tiny):
    d = summarise_disposition(tiny)
    a, b = d.arms
    # ongoing: P4 alive, last cycle 2020-12-01 (30 days <= 42 before the cut-off), no reason recorded
    assert (a.ongoing, b.ongoing) == (R["A"]["ongoing"], R["B"]["ongoing"]) == (0, 1)
    assert (a.discontinued, b.discontinued) == (3, 2)
    assert dict(a.reasons) == {"progression": 1, "toxicity": 1, "": 1}      # P3: no cycle, no reason
    assert dict(b.reasons) == {"death": 1, "progression": 1}
    for arm in (a, b):
        r = R[arm.code]
        assert (arm.dead, arm.in_followup, arm.lost) == (r["dead"], r["in_followup"], r["lost"])
        assert arm.dead + arm.in_followup + arm.lost == arm.n
    table = disposition_table(tiny, d)
    assert "Discontinued: reason not recorded" in table[""].tolist()
    assert table.iloc[0, 1:].tolist() == ["0 (0.0)", "1 (33.3)"]
    assert disposition_results(d)["A"]["reasons"][0] == {"reason": "progression", "n": 1}


@pytest.mark.parametrize("arm", ["A", "B"])
def test_exposure_summaries_equal_r(tiny, arm):
    e = summarise_exposure(tiny)
    got = next(a for a in e.arms if a.code == arm)
    classes = {c.agent_class: c for c in got.classes}
    for cls in ("chemo", "drugx") if arm == "B" else ("chemo",):
        s, r = classes[cls].cycles, R[arm][cls]
        assert s.median == pytest.approx(r["median"], rel=RTOL)
        assert (s.minimum, s.maximum) == (r["min"], r["max"])
        assert s.mean == pytest.approx(r["mean"], rel=RTOL)
        assert s.sd == pytest.approx(r["sd"], rel=RTOL)
    if arm == "A":
        assert not classes["drugx"].applicable               # drug X is given only in arm B
    s, r = got.duration_months, R[arm]["duration"]
    for name in ("median", "mean", "sd"):
        assert getattr(s, name) == pytest.approx(r[name], rel=RTOL)
    assert (s.minimum, s.maximum) == (pytest.approx(r["min"], rel=RTOL), pytest.approx(r["max"], rel=RTOL))


def test_exposure_bins_count_patients_by_number_of_cycles(tiny):
    e = summarise_exposure(tiny)
    a, b = e.arms
    chemo_a = a.classes[0]
    # A: P1 3 cycles, P2 1, P3 none
    assert chemo_a.none == 1 and [k for _, k in chemo_a.bins] == [1, 1, 0, 0]
    drugx_b = next(c for c in b.classes if c.agent_class == "drugx")
    # B: P4 12 cycles (> 6), P5 1, P6 none
    assert drugx_b.none == 1 and [k for _, k in drugx_b.bins] == [1, 0, 0, 1]
    table = exposure_table(tiny, e)
    assert "not applicable" in table["Arm A (N = 3)"].tolist()
    assert "Chemo cycles: none" in table[""].tolist()
    assert exposure_results(e)["B"]["classes"]["drugx"]["bins"][-1] == {"low": 7, "high": None, "n": 1}


def test_deaths_within_30_days_of_the_last_cycle_and_treatment_related(tiny):
    d = summarise_deaths(tiny)
    for arm in d.arms:
        r = R[arm.code]
        assert (arm.deaths, arm.within_window, arm.treatment_related) == (r["dead"], r["within30"],
                                                                          r["treatment_related"])
    a, b = d.arms
    # P1 died 27 days after its last cycle, P5 21 days, P6 213 days; P5 had a grade 5 event
    assert (a.within_window, a.after_window, b.within_window, b.after_window) == (1, 0, 1, 1)
    table = deaths_table(tiny, d)
    assert table[""].tolist() == ["All deaths", "Deaths within 30 days of the last cycle",
                                  "Treatment-related deaths (grade 5 adverse event)"]
    assert deaths_results(d)["B"]["treatment_related"] == 1


def test_without_cycles_or_adverse_events_the_tables_keep_only_what_the_data_support(tmp_path):
    study = _folder(tmp_path, ae=False, cycles=False)
    assert summarise_exposure(study) is None and exposure_table(study, None) is None
    d = summarise_disposition(study)
    assert d.arms[0].ongoing is None
    rows = disposition_table(study, d)[""].tolist()
    assert "Treatment ongoing at the cut-off" not in rows
    assert "Treatment ended: toxicity" in rows
    deaths = deaths_table(study, summarise_deaths(study))
    assert deaths[""].tolist() == ["All deaths"]
    flow = flow_table(study, patient_flow(study))
    assert not any("adverse event" in r for r in flow[""].tolist())


def test_the_optional_action_column_reaches_the_safety_summary_through_the_loader(tmp_path):
    """adverse_events.action is an optional column of the contract (helpers.data.contract.OPTIONAL_CHILD_COLUMNS);
    the loader adds it with ``add_optional_columns`` when the file has it."""
    from helpers.analyses.safety import analyse_safety

    study = _folder(tmp_path)
    assert "action" in study.adverse_events.columns
    grades = analyse_safety(study, {}).grades.set_index("kind")
    assert grades.attrs["has_actions"]
    assert (grades.loc["action_discontinued", "k:B"], grades.loc["action_dose_reduced", "k:A"]) == (2, 1)


def test_a_file_without_optional_columns_gets_none_added():
    from helpers.data.contract import add_optional_columns

    columns = {"patient_id": {}, "term": {}, "grade": {}}
    assert list(add_optional_columns("adverse_events", dict(columns), ["patient_id", "term", "grade"])) == \
        ["patient_id", "term", "grade"]
    added = add_optional_columns("adverse_events", dict(columns), ["patient_id", "term", "grade", "action"])
    assert added["action"]["codes"] == ["none", "dose_reduced", "interrupted", "discontinued"]
