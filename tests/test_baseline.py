"""Tests for Table 1: helpers.analyses.baseline (typed results) and helpers.report.baseline (table, prose).

The fixture ``table1_patients`` is a hand-made cohort of 126 patients whose Table 1 counts are the
published ones (published.yaml, histology corrected as in data/analysis.yaml); the rows the paper
does not give (radiotherapy, liver metastases, regimen) are invented for the test. Its dictionary
(new shape, ``covariates``/``groupings``) is written here, so the tests do not depend on the shipped
one. A second, veteran-like cohort (cell type, Karnofsky score, ...) checks that any dictionary works.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import yaml

from helpers.analyses.baseline import (
    OVERALL,
    BaselineDataError,
    BaselineTable,
    baseline_rows,
    compare_study_with_published,
    compare_with_published,
    published_corrections,
    rank_sum_test,
    standardized_difference,
    summarise_baseline,
)
from helpers.report.baseline import (
    INDENT,
    baseline_frame,
    baseline_note,
    baseline_results,
    published_counts_frame,
    published_tests_frame,
)
from helpers.stats.types import NotEstimable, TestResult

ROOT = Path(__file__).resolve().parents[1]
REF = json.loads((ROOT / "tests" / "reference" / "contingency.json").read_text())
ARMS = ["CMT", "CMT+ICI"]
HISTOLOGY_CORRECTED = {"ESCC": (74, 37), "EAC": (3, 0), "Other": (10, 2)}
#: Rows not in the published table (invented for the fixture).
EXTRA_COUNTS = {
    "primary_radiotherapy": {"Yes": (21, 10), "No": (66, 29)},
    "liver_met_number": {"Solitary": (30, 14), "Multiple": (57, 25)},
    "local_therapy_liver": {"Yes": (24, 12), "No": (63, 27)},
    "chemo_regimen": {"TP": (55, 31), "FP": (26, 6), "Other": (6, 2)},
}
YES_NO = {"Yes": "Yes", "No": "No"}
#: (name, label, levels) of the categorical rows in table order; levels = codes (labels equal codes).
CATEGORICAL = [
    ("age_group", "Age (years)", ["> 60", "<= 60"]),
    ("sex", "Sex", ["Male", "Female"]),
    ("underlying_disease", "Underlying diseases", ["Yes", "No"]),
    ("symptoms", "Dysphagia or cancer-related symptoms", ["Yes", "No"]),
    ("kps_group", "KPS score", [">= 70", "< 70"]),
    ("histology", "Histology", ["ESCC", "EAC", "Other"]),
    ("tumor_location", "Primary tumour location", ["Upper", "Middle", "Lower"]),
    ("grade_group", "Tumour differentiation grade", ["G1", "G2", "G3-G4"]),
    ("t_stage_group", "Tumour stage", ["T1-2", "T3-4"]),
    ("n_stage_group", "Nodal stage", ["N0", "N+"]),
    ("synchronous_liver_met", "Synchronous liver metastasis at initial diagnosis", ["Yes", "No"]),
    ("distant_ln_met", "Distant lymph node metastasis", ["Yes", "No"]),
    ("primary_surgery", "Primary lesion surgery", ["Yes", "No"]),
    ("primary_radiotherapy", "Primary lesion radiotherapy", ["Yes", "No"]),
    ("liver_met_number", "Number of liver metastases", ["Solitary", "Multiple"]),
    ("local_therapy_liver", "Local therapy of liver metastases", ["Yes", "No"]),
    ("chemo_regimen", "First-line chemotherapy regimen", ["TP", "FP", "Other"]),
]
ROWS = [n for n, _, _ in CATEGORICAL[:15]] + ["liver_met_max_diameter_cm"] + [n for n, _, _ in CATEGORICAL[15:]]
#: The groupings' sources (grouped rows are tabulated; their sources are not columns of the fixture).
SOURCES = {"age_group": ("age", "continuous"), "kps_group": ("kps", "continuous"),
           "grade_group": ("differentiation", "categorical"), "t_stage_group": ("t_stage", "categorical"),
           "n_stage_group": ("n_stage", "categorical")}


def _dictionary() -> dict:
    """A new-shape dictionary for the fixture: covariates in table order, groupings for the grouped rows."""
    covariates, groupings = {}, {}
    for name, label, levels in CATEGORICAL:
        if name in SOURCES:
            source, kind = SOURCES[name]
            covariates[source] = ({"label": label, "type": "continuous"} if kind == "continuous" else
                                  {"label": label, "type": "categorical", "levels": {"X": "X"}})
            groupings[name] = {"label": label, "source": source,
                               "levels": ({lv: f"{source} > 0" for lv in levels} if kind == "continuous"
                                          else {lv: ["X"] for lv in levels})}
        else:
            covariates[name] = {"label": label, "type": "categorical", "levels": {lv: lv for lv in levels}}
        if name == "liver_met_number":
            covariates["liver_met_max_diameter_cm"] = {"label": "Largest liver metastasis diameter",
                                                       "type": "continuous", "unit": "cm", "missing": True}
    return {"covariates": covariates, "groupings": groupings}


def _published_path() -> Path:
    return ROOT / "data" / "published.yaml"


@pytest.fixture(scope="module")
def published() -> dict:
    return yaml.safe_load(_published_path().read_text())


@pytest.fixture(scope="module")
def plan() -> dict:
    """The baseline block of the shipped plan (project default, data folder's merged over it)."""
    out = dict(yaml.safe_load((ROOT / "analysis.yaml").read_text())["baseline"] or {})
    out.update(yaml.safe_load((ROOT / "data" / "analysis.yaml").read_text()).get("baseline") or {})
    return out


@pytest.fixture(scope="module")
def corrections(plan, published):
    return published_corrections(plan, published)


def _column_from_counts(counts: dict, rng) -> dict[str, list]:
    out = {}
    for j, arm in enumerate(ARMS):
        values = [lv for lv in counts for _ in range(counts[lv][j])]
        out[arm] = list(rng.permutation(np.array(values, dtype=object)))
    return out


@pytest.fixture(scope="module")
def table1_patients(published) -> pd.DataFrame:
    """126 patients (87 CMT, 39 CMT+ICI) with the published Table 1 counts."""
    rng = np.random.default_rng(20260115)
    by_label = {row["variable"]: row for row in published["table1"]}
    frame = {"arm": ["CMT"] * 87 + ["CMT+ICI"] * 39}
    for name, label, levels in CATEGORICAL:
        row = by_label.get(label)
        if name == "histology":
            counts = HISTOLOGY_CORRECTED
        elif row is not None and row["levels"]:
            counts = {lv: (c["CMT"], c["CMT+ICI"]) for lv, c in row["levels"].items()}
        else:
            counts = EXTRA_COUNTS[name]
        per_arm = _column_from_counts(counts, rng)
        frame[name] = per_arm["CMT"] + per_arm["CMT+ICI"]
    df = pd.DataFrame(frame)
    for name, _, levels in CATEGORICAL:
        df[name] = pd.Categorical(df[name], categories=levels)
    df["arm"] = pd.Categorical(df["arm"], categories=ARMS)
    diam = np.round(np.exp(rng.normal(np.log(3.0), 0.5, len(df))), 1)
    diam[rng.random(len(df)) < 0.08] = np.nan
    df["liver_met_max_diameter_cm"] = diam
    return df


def _summarise(df, **kw) -> BaselineTable:
    kw.setdefault("rows", ROWS)
    return summarise_baseline(df, dictionary=_dictionary(), arms=ARMS, **kw)


@pytest.fixture(scope="module")
def summary(table1_patients) -> BaselineTable:
    return _summarise(table1_patients, rule="cochran")


@pytest.fixture(scope="module")
def table(summary) -> pd.DataFrame:
    return baseline_frame(summary)


@pytest.fixture(scope="module")
def comparison(summary, published, corrections):
    return compare_with_published(summary, published, corrections)


def _row(frame: pd.DataFrame, label: str) -> pd.Series:
    return frame[frame["Characteristic"] == label].iloc[0]


# ------------------------------------------------------------------------------------------
# rows from configuration


def test_rows_follow_the_plan_then_the_dictionary_labels(table):
    labels = [c for c in table["Characteristic"] if not c.startswith(INDENT)]
    assert labels[:14] == [
        "Age (years)", "Sex", "Underlying diseases", "Dysphagia or cancer-related symptoms",
        "KPS score", "Histology", "Primary tumour location", "Tumour differentiation grade",
        "Tumour stage", "Nodal stage", "Synchronous liver metastasis at initial diagnosis",
        "Distant lymph node metastasis", "Primary lesion surgery", "Primary lesion radiotherapy"]
    assert labels[14:] == ["Number of liver metastases",
                           "Largest liver metastasis diameter (cm), median [IQR]",
                           "Local therapy of liver metastases", "First-line chemotherapy regimen"]


def test_default_rows_are_the_baseline_covariates_with_groupings_in_place_of_their_sources():
    d = _dictionary()
    d["covariates"]["later"] = {"label": "Later", "type": "count", "timing": "post-baseline"}
    names = [s.name for s in baseline_rows(d)]
    assert names[:5] == ["age_group", "sex", "underlying_disease", "symptoms", "kps_group"]
    assert "age" not in names and "later" not in names and "liver_met_max_diameter_cm" in names


def test_the_shipped_dictionary_gives_rows_in_either_shape():
    from helpers.data.load import load_dictionary

    names = [s.name for s in baseline_rows(load_dictionary())]
    assert {"age_group", "kps_group", "histology"} <= set(names) and "age" not in names


def test_levels_keep_the_table_order_including_an_empty_cell(table):
    chars = list(table["Characteristic"])
    i = chars.index("KPS score")
    assert chars[i + 1:i + 3] == [INDENT + ">= 70", INDENT + "< 70"]
    assert table.iloc[i + 2]["CMT (n = 87)"] == "0 (0.0)"
    assert table.iloc[i + 2]["CMT+ICI (n = 39)"] == "2 (5.1)"


def test_columns_are_overall_arms_statistic_p_test_missing_smd(table):
    assert list(table.columns) == ["Characteristic", "Overall (n = 126)", "CMT (n = 87)",
                                   "CMT+ICI (n = 39)", "Statistic", "P", "Test", "Missing", "SMD"]


def test_symptoms_row_shows_the_correct_percentage_not_the_printed_typo(table):
    chars = list(table["Characteristic"])
    i = chars.index("Dysphagia or cancer-related symptoms")
    assert table.iloc[i + 1]["CMT+ICI (n = 39)"] == "32 (82.1)"


def test_counts_equal_the_crosstab(table1_patients, summary):
    lv = summary.levels
    for name, _, levels in CATEGORICAL:
        expected = pd.crosstab(table1_patients[name].astype(str), table1_patients["arm"]).reindex(
            index=levels, columns=ARMS, fill_value=0)
        for level in levels:
            for arm in ARMS:
                got = lv[(lv.variable == name) & (lv.level == level) & (lv.group == arm)]["n"].iloc[0]
                assert got == expected.loc[level, arm], (name, level, arm)


def test_percentages_use_known_values_and_missing_values_get_an_unknown_row(table1_patients):
    df = table1_patients.copy()
    df["sex"] = df["sex"].astype(object)
    df.loc[df.index[:3], "sex"] = None  # three CMT patients
    s = _summarise(df)
    row = s.row("sex")
    assert row.missing == {OVERALL: 3, "CMT": 3, "CMT+ICI": 0}
    assert row.levels[0].denominator["CMT"] == 84
    assert sum(lv.percent("CMT") for lv in row.levels) == pytest.approx(100.0)
    frame = baseline_frame(s)
    i = list(frame["Characteristic"]).index("Sex")
    assert frame.iloc[i + 3]["Characteristic"] == INDENT + "Unknown"
    assert frame.iloc[i + 3]["CMT (n = 87)"] == "3 (3.4)"


# ------------------------------------------------------------------------------------------
# tests and P values


def test_cochran_rule_reproduces_every_published_statistic_and_p(comparison):
    assert comparison.tests_compared == 13
    assert comparison.test_mismatches == 0, published_tests_frame(comparison)


def test_paper_is_accepted_as_the_former_name_of_cochrans_rule(table1_patients, summary):
    s = _summarise(table1_patients, rule="paper")
    assert s.rule == "cochran"
    assert [r.test for r in s.rows] == [r.test for r in summary.rows]


@pytest.mark.parametrize(
    "column, key",
    [("age_group", "pearson"), ("sex", "yates"), ("kps_group", "fisher"),
     ("histology", "fisher_freeman_halton"), ("n_stage_group", "yates"),
     ("liver_met_max_diameter_cm", "wilcoxon")],
)
def test_each_row_carries_the_test_cochrans_criteria_select(summary, column, key):
    test = summary.row(column).test
    assert isinstance(test, TestResult) and test.test == key


def test_modern_rule_uses_fisher_for_every_sparse_table(table1_patients):
    s = _summarise(table1_patients, rule="modern")
    assert {s.row(c).test.test for c in ("sex", "histology", "n_stage_group")} == {"fisher"}
    assert s.row("age_group").test.test == "pearson"


def test_the_rule_comes_from_the_plan_choices(table1_patients):
    s = summarise_baseline(table1_patients, {"test_rule": "modern", "rows": ["sex"]},
                           dictionary=_dictionary(), arms=ARMS)
    assert s.rule == "modern" and [r.variable for r in s.rows] == ["sex"]


def test_fisher_rows_print_a_dash_for_the_statistic(table):
    row = _row(table, "KPS score")
    assert row["Statistic"] == "-" and row["P"] == "0.094"


def test_p_values_are_rounded_not_truncated(table):
    assert _row(table, "Underlying diseases")["P"] == "0.900"  # 0.8998... rounds to 0.900


def test_note_names_every_test_with_its_letter_and_cochrans_criteria(summary, table):
    note = baseline_note(summary)
    for name in ("Pearson chi-square", "Yates-corrected chi-square", "Fisher's exact test",
                 "Fisher-Freeman-Halton exact test", "Wilcoxon rank-sum test", "Cochran's criteria"):
        assert name in note
    assert "SPSS" not in note and "_" not in note
    for letter in {t for t in table["Test"] if t not in ("", "-")}:
        assert f"^{letter}^" in note


@pytest.mark.parametrize("case", sorted(REF["rank_sum"]))
def test_rank_sum_test_matches_r_wilcox_test(case):
    """R: wilcox.test(x, y) (default exact/normal choice, continuity correction)."""
    ref = REF["rank_sum"][case]
    w, p, _ = rank_sum_test(ref["x"], ref["y"])
    assert w == pytest.approx(ref["W"], rel=1e-6)
    assert p == pytest.approx(ref["p"], rel=1e-6)


def test_continuous_row_is_median_iqr_with_missing_count(table1_patients, table):
    row = table[table["Characteristic"].str.startswith("Largest liver")].iloc[0]
    x = table1_patients["liver_met_max_diameter_cm"]
    assert row["Missing"] == str(int(x.isna().sum()))
    med, q1, q3 = x.median(), x.quantile(0.25), x.quantile(0.75)  # R quantile type 7
    assert row["Overall (n = 126)"] == f"{med:.1f} [{q1:.1f}, {q3:.1f}]"


def test_continuous_rows_may_show_mean_sd_and_median_iqr(table1_patients):
    frame = baseline_frame(_summarise(table1_patients, continuous_summary="both"))
    chars = list(frame["Characteristic"])
    i = chars.index("Largest liver metastasis diameter (cm)")
    assert chars[i + 1:i + 3] == [INDENT + "Mean (SD)", INDENT + "Median [IQR]"]
    x = table1_patients.loc[table1_patients.arm == "CMT", "liver_met_max_diameter_cm"].dropna()
    assert frame.iloc[i + 1]["CMT (n = 87)"] == f"{x.mean():.1f} ({x.std():.1f})"


# ------------------------------------------------------------------------------------------
# SMD


def test_binary_smd_equals_the_two_proportion_formula(summary):
    p1, p2 = 39 / 87, 20 / 39  # age > 60
    expected = abs(p1 - p2) / math.sqrt((p1 * (1 - p1) + p2 * (1 - p2)) / 2)
    assert summary.row("age_group").smd == pytest.approx(expected, rel=1e-9)


def test_continuous_smd_is_mean_difference_over_pooled_sd(summary, table1_patients):
    x = table1_patients["liver_met_max_diameter_cm"]
    a, b = x[table1_patients.arm == "CMT"].dropna(), x[table1_patients.arm == "CMT+ICI"].dropna()
    expected = abs(b.mean() - a.mean()) / math.sqrt((a.var() + b.var()) / 2)
    assert summary.row("liver_met_max_diameter_cm").smd == pytest.approx(expected, rel=1e-9)


def test_smd_ignores_missing_values_rather_than_counting_them_as_a_level(table1_patients):
    df = table1_patients.copy()
    df["sex"] = df["sex"].astype(object)
    df.loc[df.index[:3], "sex"] = None
    got = _summarise(df).row("sex").smd
    keep = df["sex"].notna()
    a = (df.loc[keep & (df.arm == "CMT"), "sex"] == "Male").mean()
    b = (df.loc[keep & (df.arm == "CMT+ICI"), "sex"] == "Male").mean()
    assert got == pytest.approx(abs(a - b) / math.sqrt((a * (1 - a) + b * (1 - b)) / 2), rel=1e-9)


@pytest.mark.parametrize("seed", [0, 1])
def test_smd_equals_tableones_public_smd_table(seed):
    """tableone (public API: TableOne(smd=True).smd_table), R tableone's ExtractSmd."""
    tableone = pytest.importorskip("tableone")
    rng = np.random.default_rng(seed)
    n = 300
    df = pd.DataFrame({"arm": rng.choice(ARMS, n), "grade": rng.choice(["G1", "G2", "G3"], n),
                       "size": np.round(rng.lognormal(1, 0.5, n), 1)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t1 = tableone.TableOne(df, columns=["grade", "size"], categorical=["grade"], groupby="arm", smd=True,
                               pval=False, overall=False)
    ref = t1.smd_table.apply(pd.to_numeric, errors="coerce").abs()
    for column, kind in (("grade", "categorical"), ("size", "continuous")):
        got = standardized_difference(df[column], df["arm"], kind)
        assert got == pytest.approx(float(ref.loc[column].max()), rel=1e-12)


def test_a_categorical_variable_with_one_observed_level_has_smd_zero_and_no_test(table1_patients):
    df = table1_patients.assign(sex=pd.Categorical(["Male"] * len(table1_patients), categories=["Male", "Female"]))
    row = _summarise(df).row("sex")
    assert row.smd == 0.0 and isinstance(row.test, NotEstimable)


# ------------------------------------------------------------------------------------------
# bugs: sparse and empty arms


def test_an_optional_continuous_covariate_with_one_value_in_an_arm_shows_it_without_test_or_smd(table1_patients):
    df = table1_patients.copy()
    cmt_ici = df.index[df.arm == "CMT+ICI"]
    df.loc[cmt_ici, "liver_met_max_diameter_cm"] = np.nan
    df.loc[cmt_ici[0], "liver_met_max_diameter_cm"] = 4.2
    s = _summarise(df)
    row = s.row("liver_met_max_diameter_cm")
    assert isinstance(row.test, NotEstimable) and row.test.reason == "fewer_than_two_values"
    assert isinstance(row.smd, NotEstimable)
    assert row.summaries["CMT+ICI"].n == 1 and row.summaries["CMT+ICI"].median == 4.2
    frame = baseline_frame(s)
    cells = frame[frame["Characteristic"].str.startswith("Largest liver")].iloc[0]
    assert cells["CMT+ICI (n = 39)"] == "4.2 [4.2, 4.2]"
    assert cells["Statistic"] == cells["P"] == cells["SMD"] == "-"
    assert "fewer than two values in one arm (CMT+ICI)" in baseline_note(s)
    json.dumps(baseline_results(s), allow_nan=False)


@pytest.mark.parametrize("column", ["liver_met_max_diameter_cm", "chemo_regimen"])
def test_a_covariate_empty_for_every_patient_of_one_arm_reads_no_data_without_test_or_smd(
        table1_patients, column):
    df = table1_patients.copy()
    if column == "chemo_regimen":
        df[column] = df[column].astype(object)
    df.loc[df.arm == "CMT+ICI", column] = None
    s = _summarise(df)
    row = s.row(column)
    assert isinstance(row.test, NotEstimable) and row.test.reason == "no_data_in_arm"
    assert isinstance(row.smd, NotEstimable) and row.smd.reason == "no_data_in_arm"
    frame = baseline_frame(s)
    start = next(i for i, c in enumerate(frame["Characteristic"])
                 if c.startswith(dict((n, lab) for n, lab, _ in CATEGORICAL).get(column, "Largest liver")))
    assert frame.iloc[start + (0 if column != "chemo_regimen" else 1)]["CMT+ICI (n = 39)"] == "no data"
    assert "no data in one arm (CMT+ICI)" in baseline_note(s)
    res = baseline_results(s)
    assert res["rows"][column]["p"] is None and res["rows"][column]["smd"] is None


# ------------------------------------------------------------------------------------------
# replication part: comparison with the published table


def test_published_comparison_has_no_mismatch_on_a_cohort_with_the_published_counts(comparison):
    frame = published_counts_frame(comparison)
    assert (frame["Mismatch"] != "Yes").all(), frame[frame["Mismatch"] == "Yes"]
    assert (frame["Mismatch"] == "No").sum() == 29  # 13 variables with numbers, 29 levels
    assert comparison.levels_compared == 29


def test_the_correction_comes_from_data_and_is_noted(comparison, corrections):
    assert corrections and corrections[0].variable == "Histology"
    frame = published_counts_frame(comparison)
    eac = frame[(frame["Characteristic"] == "Histology") & (frame["Level"] == "EAC")].iloc[0]
    assert "printed 2, corrected to 0" in eac["Note"]
    assert eac["CMT+ICI published"] == 0


def test_histology_against_the_printed_cells_is_flagged_as_a_mismatch(summary, published, corrections):
    frame = published_counts_frame(compare_with_published(summary, published, corrections, correct=False))
    flagged = frame[frame["Mismatch"] == "Yes"]
    assert set(flagged["Level"]) == {"EAC", "Other"}
    assert set(flagged["Differs in"]) == {"CMT+ICI"}


def test_a_changed_count_is_flagged(table1_patients, published, corrections):
    df = table1_patients.copy()
    i = df.index[(df.arm == "CMT") & (df.sex == "Male")][0]
    df.loc[i, "sex"] = "Female"
    frame = published_counts_frame(compare_with_published(_summarise(df), published, corrections))
    flagged = frame[frame["Mismatch"] == "Yes"]
    assert list(flagged["Level"]) == ["Male", "Female"]
    assert set(flagged["Differs in"]) == {"Overall, CMT"}


def test_radiotherapy_row_is_marked_not_published(comparison):
    frame = published_counts_frame(comparison)
    rt = frame[frame["Characteristic"] == "Primary lesion radiotherapy"]
    assert (rt["Mismatch"] == "n/a").all() and len(rt) == 2
    assert rt["CMT reproduced"].tolist() == [21, 66] and rt["CMT published"].isna().all()


def test_a_study_without_published_values_has_no_comparison(summary, tmp_path):
    study = SimpleNamespace(has=lambda part: False, published=None, folder=tmp_path)
    assert compare_study_with_published(study, summary, {}) is None


# ------------------------------------------------------------------------------------------
# results file and validation


def test_baseline_results_carry_counts_tests_and_prose_strings(summary, comparison):
    res = baseline_results(summary, comparison, randomised=False)
    json.dumps(res, allow_nan=False)
    assert res["order"][0] == "age_group" and len(res["order"]) == len(ROWS)
    hist = res["rows"]["histology"]
    assert hist["test"] == "Fisher-Freeman-Halton exact test"
    assert round(hist["statistic"], 3) == 2.098 and hist["p_text"] == "0.321"
    assert hist["levels"]["EAC"]["CMT+ICI"]["n"] == 0
    assert res["comparison"]["level_mismatches"] == 0 and res["comparison"]["test_mismatches"] == 0
    text = res["text"]
    assert all(isinstance(v, str) for v in text.values())
    assert text["n_CMT_ICI"] == "39" and text["n_overall"] == "126" and text["n_reference"] == "87"
    # keys kept from earlier versions, now written from the correction's data
    assert text["histology_printed"] == "EAC 2 and Other 0" and text["histology_corrected"] == "EAC 0 and Other 2"
    assert text["histology_published_statistic"] == "2.098" and text["histology_published_p"] == "0.321"
    assert text["n_levels_compared"] == "29" and text["n_tests_compared"] == "13"


def test_prose_strings_follow_the_design(summary):
    assert "not formed at random" in baseline_results(summary, randomised=False)["text"]["design_caveat"]
    assert "not formed at random" not in baseline_results(summary, randomised=True)["text"]["design_caveat"]


def test_missing_columns_and_arms_fail_early_with_a_named_error(table1_patients):
    with pytest.raises(BaselineDataError, match="histology"):
        _summarise(table1_patients.drop(columns=["histology"]))
    df = table1_patients.copy()
    df["arm"] = df["arm"].astype(object)
    df.loc[0, "arm"] = None
    with pytest.raises(BaselineDataError, match="arm"):
        _summarise(df)


def test_unknown_rule_is_rejected(table1_patients):
    with pytest.raises(ValueError):
        _summarise(table1_patients, rule="spss")


# ------------------------------------------------------------------------------------------
# another study: a veteran-like cohort from its dictionary alone


VETERAN_DICTIONARY = {
    "covariates": {
        "celltype": {"label": "Cell type", "type": "categorical", "reference": "squamous",
                     "levels": {"squamous": "Squamous", "smallcell": "Small cell", "adeno": "Adenocarcinoma",
                                "large": "Large cell"}},
        "karno": {"label": "Karnofsky performance score", "type": "continuous", "unit": "points"},
        "diagtime": {"label": "Months from diagnosis", "type": "continuous", "unit": "months"},
        "age": {"label": "Age", "type": "continuous", "unit": "years"},
        "prior": {"label": "Prior therapy", "type": "categorical", "levels": {"no": "No", "yes": "Yes"}},
    },
    "groupings": {"age_group": {"label": "Age (years)", "source": "age",
                                "levels": {"> 60": "age > 60", "<= 60": "age <= 60"}}},
}


@pytest.fixture(scope="module")
def veteran_study():
    rng = np.random.default_rng(1)
    n = 137
    arm = np.array(["standard"] * 69 + ["test"] * 68)
    age = rng.integers(34, 82, n)
    patients = pd.DataFrame({
        "patient_id": [f"p{i}" for i in range(n)],
        "arm": pd.Categorical(arm, categories=["standard", "test"]),
        "celltype": pd.Categorical(rng.choice(["squamous", "smallcell", "adeno", "large"], n),
                                   categories=["squamous", "smallcell", "adeno", "large"]),
        "karno": rng.choice(np.arange(10, 100, 10), n).astype(float),
        "diagtime": rng.integers(1, 60, n).astype(float),
        "age": age.astype(float),
        "age_group": pd.Categorical(np.where(age > 60, "> 60", "<= 60"), categories=["> 60", "<= 60"]),
        "prior": pd.Categorical(rng.choice(["no", "yes"], n), categories=["no", "yes"]),
    })
    config = SimpleNamespace(arm_order=("standard", "test"),
                             arm_label=lambda code: {"standard": "Standard", "test": "Test"}[code])
    return SimpleNamespace(patients=patients, dictionary=VETERAN_DICTIONARY, config=config,
                           has=lambda part: False, published=None)


def test_table_1_builds_for_a_veteran_like_cohort_from_its_dictionary(veteran_study):
    s = summarise_baseline(veteran_study, {"continuous_summary": "both"})
    assert [r.variable for r in s.rows] == ["celltype", "karno", "diagtime", "age_group", "prior"]
    frame = baseline_frame(s)
    assert list(frame.columns[1:4]) == ["Overall (n = 137)", "Standard (n = 69)", "Test (n = 68)"]
    chars = list(frame["Characteristic"])
    assert "Cell type" in chars and INDENT + "Small cell" in chars
    assert "Karnofsky performance score (points)" in chars
    assert s.row("celltype").test.test in ("pearson", "fisher_freeman_halton")
    assert s.row("karno").test.test == "wilcoxon"
    res = baseline_results(s, randomised=True)
    json.dumps(res, allow_nan=False)
    assert res["text"]["n_test"] == "68" and "comparison" not in res
    assert compare_study_with_published(veteran_study, s, {}) is None
    assert "Cell type (Squamous / Small cell / Adenocarcinoma / Large cell)" in res["text"]["rows_sentence"]


# ------------------------------------------------------------------------------------------
# the shipped data: Table 1 numbers unchanged


def test_the_shipped_data_reproduce_every_published_statistic(plan, published):
    from helpers.data.load import load_study

    study = load_study(ROOT / "data")
    s = summarise_baseline(study, plan)
    cmp = compare_with_published(s, published, published_corrections(plan, published))
    assert cmp.tests_compared == 13 and cmp.test_mismatches == 0
    assert [r.variable for r in s.rows] == plan["rows"]


# ------------------------------------------------------------------------------------------
# the cohort section (helpers.analyses.cohort, helpers.report.cohort)


@pytest.fixture(scope="module")
def shipped_study():
    from helpers.data.load import load_study

    return load_study(ROOT / "data")


def test_the_cohort_section_writes_the_arm_role_keys_and_keeps_the_arm_code_keys(shipped_study):
    from helpers.report.cohort import arms_results

    res = arms_results(shipped_study)
    json.dumps(res, allow_nan=False)
    ref, exp = shipped_study.config.arm_order
    assert res["text"]["n_reference"] == str(res[ref]["n"]) and res["text"]["n_experimental"] == str(res[exp]["n"])
    assert res["text"]["reference_label"] == shipped_study.config.arm_label(ref)
    assert res["text"]["experimental_description"]
    assert {"n", "os_events", "pfs_events", "text"} <= set(res[ref])


def test_the_parts_sentence_names_present_and_absent_parts():
    from helpers.report.cohort import parts_sentence

    all_parts = parts_sentence({p: True for p in ("pfs", "response", "safety", "exposure", "replication")})
    assert "progression dates" in all_parts and "left out" not in all_parts
    some = parts_sentence({"pfs": True})
    assert "no best overall responses, adverse events, treatment cycles or published values" in some
    assert "left out" in some and "_" not in some


def test_absent_parts_leave_their_rows_out_of_the_cohort_table(shipped_study):
    import dataclasses

    from helpers.report.cohort import assumptions_table, cohort_overview_table, data_results

    bare = dataclasses.replace(shipped_study, adverse_events=None, ae_worst=None, cycles=None, published=None)
    chars = list(cohort_overview_table(bare)["Characteristic"])
    assert "Patients with any adverse event" not in chars and not any("cycles" in c for c in chars)
    assert data_results(bare)["parts"]["safety"] is False
    real = dataclasses.replace(bare, config=dataclasses.replace(bare.config, synthetic=False))
    assert assumptions_table(real) is None


def test_the_missing_values_table_names_arms_by_label_and_rules_in_words(shipped_study):
    from helpers.report.cohort import missingness_table

    table = missingness_table(shipped_study)
    labels = [shipped_study.config.arm_label(a) for a in shipped_study.config.arm_order]
    assert list(table.columns) == ["Variable", "Rule", "Missing, n (%)", *labels]
    assert not any("==" in r or "_" in r for r in table["Rule"])


# ------------------------------------------------------------------------------------------
# the veteran fixture (R's survival::veteran): Table 1 from its dictionary alone, against R

VETERAN_R = json.loads((ROOT / "tests" / "reference" / "baseline_veteran.json").read_text())


@pytest.fixture(scope="module")
def veteran_table():
    from helpers.data.load import load_study

    study = load_study(ROOT / "tests" / "fixtures" / "veteran")
    return study, summarise_baseline(study)


@pytest.mark.parametrize("name", ["celltype", "prior"])
def test_veteran_categorical_rows_match_r_chisq_test(veteran_table, name):
    """R: chisq.test(table(x, arm), correct = FALSE) (every expected count >= 5: Pearson)."""
    _, table = veteran_table
    row, ref = table.row(name), VETERAN_R[name]
    assert row.test.test == "pearson"
    assert row.test.statistic == pytest.approx(ref["statistic"], rel=1e-6)
    assert row.test.p == pytest.approx(ref["p"], rel=1e-6)
    assert row.min_expected == pytest.approx(ref["min_expected"], rel=1e-6)


@pytest.mark.parametrize("name", ["karno", "age", "diagtime"])
def test_veteran_continuous_rows_match_r_wilcox_test_and_summaries(veteran_table, name):
    """R: wilcox.test(x[standard], x[test]); median, quantile(type = 7), mean, sd."""
    _, table = veteran_table
    row, ref = table.row(name), VETERAN_R[name]
    assert row.test.statistic == pytest.approx(ref["W"], rel=1e-6)
    assert row.test.p == pytest.approx(ref["p"], rel=1e-6)
    for arm in ("standard", "test"):
        s = row.summaries[arm]
        for key in ("n", "median", "q1", "q3", "mean", "sd"):
            assert getattr(s, key) == pytest.approx(ref[arm][key], rel=1e-9), (arm, key)


def test_veteran_table_1_has_the_dictionarys_rows_labels_and_no_replication(veteran_table):
    study, table = veteran_table
    assert [r.variable for r in table.rows] == ["celltype", "karno", "age", "prior", "diagtime"]
    frame = baseline_frame(table)
    assert "Standard chemotherapy (n = 69)" in frame.columns
    assert INDENT + "Adenocarcinoma" in list(frame["Characteristic"])
    assert compare_study_with_published(study, table, {}) is None
    text = baseline_results(table, randomised=study.config.randomised)["text"]
    assert "formed at random, so any imbalance is due to chance" in text["design_caveat"]
