"""The synthetic default cohort reproduces the published numbers (helpers.data.synthetic)."""
from __future__ import annotations

import warnings

import pytest
import yaml
from lifelines import KaplanMeierFitter
from lifelines.statistics import logrank_test
from scipy.stats import fisher_exact

from helpers.config import PROJECT_ROOT
from helpers.data.synthetic import TABLE1_COUNTS, generate_cohort, write_cohort

PUBLISHED = yaml.safe_load((PROJECT_ROOT / "data" / "published.yaml").read_text())
GROUPED = {"Age (years)": "age_group", "Sex": "sex", "Underlying diseases": "underlying_disease",
           "Dysphagia or cancer-related symptoms": "symptoms", "KPS score": "kps_group", "Histology": "histology",
           "Primary tumour location": "tumor_location", "Tumour differentiation grade": "grade_group",
           "Tumour stage": "t_stage_group", "Nodal stage": "n_stage_group",
           "Synchronous liver metastasis at initial diagnosis": "synchronous_liver_met",
           "Distant lymph node metastasis": "distant_ln_met", "Primary lesion surgery": "primary_surgery"}
# The printed CMT+ICI histology cells EAC 2 / Other 0 contradict the total column and the printed test;
# EAC 0 / Other 2 reproduce both (see helpers/data/synthetic.py and the baseline methods).
HISTOLOGY_CORRECTED = {("Histology", "EAC", "CMT+ICI"): 0, ("Histology", "Other", "CMT+ICI"): 2}


def _published_cells():
    for row in PUBLISHED["table1"]:
        if not row["levels"]:
            continue
        for level, counts in row["levels"].items():
            for arm in ("CMT", "CMT+ICI"):
                expected = HISTOLOGY_CORRECTED.get((row["variable"], level, arm), counts[arm])
                yield row["variable"], level, arm, expected


@pytest.mark.parametrize("variable,level,arm,expected", list(_published_cells()))
def test_every_published_table_1_count_is_reproduced_exactly(patients, variable, level, arm, expected):
    column = GROUPED[variable]
    observed = ((patients["arm"] == arm) & (patients[column].astype(str) == level)).sum()
    assert observed == expected


def test_published_total_column_is_reproduced_including_histology(patients):
    for row in PUBLISHED["table1"]:
        for level, counts in (row["levels"] or {}).items():
            assert (patients[GROUPED[row["variable"]]].astype(str) == level).sum() == counts["total"], row["variable"]


def _median(patients, endpoint, arm):
    rows = patients[patients["arm"] == arm]
    return KaplanMeierFitter().fit(rows[f"{endpoint}_months"], rows[f"{endpoint}_event"]).median_survival_time_


@pytest.mark.parametrize("endpoint,arm,target", [
    ("os", "CMT", 10.8), ("os", "CMT+ICI", 20.8), ("pfs", "CMT+ICI", 11.7),
    ("pfs", "CMT", 5.6),  # assumption: chemotherapy arms of ESCORT-1st and RATIONALE-306
])
def test_median_survival_is_within_half_a_month_of_the_target(patients, endpoint, arm, target):
    assert abs(_median(patients, endpoint, arm) - target) <= 0.5


def _logrank_p(patients, endpoint):
    cmt, ici = patients[patients["arm"] == "CMT"], patients[patients["arm"] == "CMT+ICI"]
    return logrank_test(cmt[f"{endpoint}_months"], ici[f"{endpoint}_months"],
                        cmt[f"{endpoint}_event"], ici[f"{endpoint}_event"]).p_value


def test_os_log_rank_p_is_within_a_factor_of_two_of_the_published_0_004(patients):
    assert 0.002 <= _logrank_p(patients, "os") <= 0.008


def test_pfs_log_rank_p_is_below_0_001_as_published(patients):
    assert _logrank_p(patients, "pfs") < 0.001


def test_orr_and_dcr_are_significantly_higher_with_ici(patients):
    for responders in ({"CR", "PR"}, {"CR", "PR", "SD"}):
        hit = patients["best_response"].astype(str).isin(responders)
        table = [[(hit & (patients["arm"] == a)).sum(), (~hit & (patients["arm"] == a)).sum()] for a in ("CMT+ICI", "CMT")]
        assert table[0][0] / sum(table[0]) > table[1][0] / sum(table[1])
        assert fisher_exact(table)[1] < 0.05


def test_trae_incidence_does_not_differ_between_arms(study):
    worst = study.ae_worst.groupby("patient_id")["worst_grade"].max()
    graded = study.patients["patient_id"].map(worst).fillna(0)
    for threshold in (1, 3):
        table = [[((graded >= threshold) & (study.patients["arm"] == a)).sum(),
                  ((graded < threshold) & (study.patients["arm"] == a)).sum()] for a in ("CMT", "CMT+ICI")]
        assert fisher_exact(table)[1] > 0.05


def test_regenerating_with_the_recorded_seed_gives_identical_files(tmp_path):
    recorded = yaml.safe_load((PROJECT_ROOT / "data" / "study.yaml").read_text())["generator"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cohort = generate_cohort(recorded["base_seed"], first_attempt=recorded["attempt"])
    assert cohort.attempt == recorded["attempt"]
    write_cohort(cohort, tmp_path)
    for name in ("cohort.csv", "adverse_events.csv", "treatment_cycles.csv", "study.yaml"):
        assert (tmp_path / name).read_bytes() == (PROJECT_ROOT / "data" / name).read_bytes(), name


def test_every_data_file_says_it_is_synthetic():
    for name in ("cohort.csv", "adverse_events.csv", "treatment_cycles.csv", "study.yaml"):
        assert "SYNTHETIC" in (PROJECT_ROOT / "data" / name).read_text().splitlines()[0]


def test_a_cohort_of_another_size_scales_the_counts():
    cohort = generate_cohort(n_total=252)
    counts = cohort.patients["arm"].value_counts().to_dict()
    assert counts == {"CMT": 174, "CMT+ICI": 78}
    assert set(TABLE1_COUNTS["sex"]) == set(cohort.patients["sex"])


def test_last_assessment_is_on_or_before_last_follow_up_and_before_progression(study):
    import pandas as pd

    p = study.patients
    assessed = pd.to_datetime(p["last_assessment_date"])
    assert assessed.notna().all()
    assert (assessed >= pd.to_datetime(p["start_date"])).all()
    assert (assessed <= pd.to_datetime(p["last_followup_date"])).all()
    progressed = p["progression_date"].notna()
    assert (assessed[progressed] < pd.to_datetime(p.loc[progressed, "progression_date"])).all()


def test_assessments_are_six_to_nine_weeks_apart():
    import numpy as np

    from helpers.data.synthetic import _assessment_days

    days = _assessment_days(1, 50, 2000)
    gaps = np.diff(days, axis=1)
    assert days[:, 0].tolist() == [0] * 50 and gaps.min() >= 42 and gaps.max() <= 63
    assert (days[:, -1] >= 2000).all()


def test_pfs_without_event_is_censored_at_the_last_assessment(study):
    import pandas as pd

    p = study.patients
    assert study.pfs_censoring == "last_assessment"
    censored = p["pfs_event"] == 0
    months = (pd.to_datetime(p.loc[censored, "last_assessment_date"])
              - pd.to_datetime(p.loc[censored, "start_date"])).dt.days / 30.4375
    assert (abs(p.loc[censored, "pfs_months"] - months) < 1e-9).all()
