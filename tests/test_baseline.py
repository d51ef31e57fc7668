"""Tests for helpers.analyses.baseline (Table 1).

The fixture ``table1_patients`` is a hand-made cohort of 126 patients whose Table 1 counts are
the published ones (published.yaml, histology corrected as in the methods); the rows the paper
does not give (radiotherapy, liver metastases, regimen) are invented for the test.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from helpers.analyses.baseline import (
    BASELINE_VARIABLES,
    BaselineDataError,
    INDENT,
    BaselineSummary,
    baseline_results,
    compare_tests_with_published,
    compare_with_published,
    make_baseline_table,
    rank_sum_test,
    summarise_baseline,
)

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


def _published_path() -> Path:
    for path in (ROOT / "data" / "published.yaml",
                 ROOT.parent / "shared" / "paper" / "published.yaml"):
        if path.exists():
            return path
    pytest.skip("published.yaml not found")


@pytest.fixture(scope="module")
def published() -> dict:
    return yaml.safe_load(_published_path().read_text())


def _column_from_counts(counts: dict, levels: list, rng) -> dict[str, list]:
    out = {}
    for j, arm in enumerate(ARMS):
        values = [lv for lv in levels for _ in range(counts[lv][j])]
        out[arm] = list(rng.permutation(np.array(values, dtype=object)))
    return out


@pytest.fixture(scope="module")
def table1_patients(published) -> pd.DataFrame:
    """126 patients (87 CMT, 39 CMT+ICI) with the published Table 1 counts."""
    rng = np.random.default_rng(20260115)
    by_label = {row["variable"]: row for row in published["table1"]}
    cols: dict[str, dict] = {}
    for var in BASELINE_VARIABLES:
        if var.kind != "categorical":
            continue
        row = by_label.get(var.label)
        if var.column == "histology":
            counts = HISTOLOGY_CORRECTED
        elif row is not None and row["levels"]:
            counts = {lv: (c["CMT"], c["CMT+ICI"]) for lv, c in row["levels"].items()}
        else:
            counts = EXTRA_COUNTS[var.column]
        cols[var.column] = _column_from_counts(counts, list(counts), rng)
    frame = {"arm": ["CMT"] * 87 + ["CMT+ICI"] * 39}
    for col, per_arm in cols.items():
        frame[col] = per_arm["CMT"] + per_arm["CMT+ICI"]
    df = pd.DataFrame(frame)
    for var in BASELINE_VARIABLES:
        if var.kind == "categorical":
            df[var.column] = pd.Categorical(df[var.column], categories=list(var.levels))
    df["arm"] = pd.Categorical(df["arm"], categories=ARMS)
    diam = np.round(np.exp(rng.normal(np.log(3.0), 0.5, len(df))), 1)
    diam[rng.random(len(df)) < 0.08] = np.nan
    df["liver_met_max_diameter_cm"] = diam
    return df


@pytest.fixture(scope="module")
def summary(table1_patients) -> BaselineSummary:
    return summarise_baseline(table1_patients, rule="paper")


@pytest.fixture(scope="module")
def table(table1_patients) -> pd.DataFrame:
    return make_baseline_table(table1_patients, rule="paper")


# ------------------------------------------------------------------------------------------
# counts and layout


def test_rows_follow_the_papers_order_then_the_extra_rows(table):
    labels = [c for c in table["Characteristic"] if not c.startswith(INDENT)]
    assert labels[:14] == [
        "Age (years)", "Sex", "Underlying diseases", "Dysphagia or cancer-related symptoms",
        "KPS score", "Histology", "Primary tumor location", "Tumor differentiation grade",
        "Tumor stage", "Nodal stage", "Synchronous liver metastasis at initial diagnosis",
        "Distant lymph node metastasis", "Primary lesion surgery", "Primary lesion radiotherapy"]
    assert labels[14:] == ["Number of liver metastases",
                           "Largest liver metastasis diameter (cm), median [IQR]",
                           "Local therapy of liver metastases", "First-line chemotherapy regimen"]


def test_levels_keep_the_table_1_order_including_an_empty_cell(table):
    chars = list(table["Characteristic"])
    i = chars.index("KPS score")
    assert chars[i + 1:i + 3] == [INDENT + ">= 70", INDENT + "< 70"]
    assert table.iloc[i + 2]["CMT (n = 87)"] == "0 (0.0)"
    assert table.iloc[i + 2]["CMT+ICI (n = 39)"] == "2 (5.1)"


def test_the_table_prints_and_survives_pandas_operations(table):
    assert "Histology" in repr(table)
    assert len(pd.concat([table, table])) == 2 * len(table)


def test_columns_are_overall_arms_statistic_p_test_missing_smd(table):
    assert list(table.columns) == ["Characteristic", "Overall (n = 126)", "CMT (n = 87)",
                                   "CMT+ICI (n = 39)", "Statistic", "P", "Test", "Missing",
                                   "SMD"]


def test_symptoms_row_shows_the_correct_percentage_not_the_printed_typo(table):
    chars = list(table["Characteristic"])
    i = chars.index("Dysphagia or cancer-related symptoms")
    assert table.iloc[i + 1]["CMT+ICI (n = 39)"] == "32 (82.1)"


def test_counts_agree_with_tableone(table1_patients, summary):
    from tableone import TableOne

    cols = [v.column for v in BASELINE_VARIABLES if v.kind == "categorical"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t1 = TableOne(table1_patients, columns=cols, categorical=cols, groupby="arm",
                      pval=False, overall=False)
    freq = t1.cat_describe["freq"]
    lv = summary.levels
    for (variable, level), row in freq.iterrows():
        for arm in ARMS:
            ours = lv[(lv.variable == variable) & (lv.level == str(level)) & (lv.group == arm)]
            assert int(ours["n"].iloc[0]) == int(row[arm])


def test_percentages_use_non_missing_values_and_missing_is_counted(table1_patients):
    df = table1_patients.copy()
    df["sex"] = df["sex"].astype(object)
    df.loc[df.index[:3], "sex"] = None  # three CMT patients
    s = summarise_baseline(df)
    v = s.variables.set_index("variable").loc["sex"]
    assert v["missing"] == 3 and v["missing_CMT"] == 3 and v["missing_CMT+ICI"] == 0
    lv = s.levels[(s.levels.variable == "sex") & (s.levels.group == "CMT")]
    assert lv["denominator"].iloc[0] == 84
    assert lv["percent"].sum() == pytest.approx(100.0)


# ------------------------------------------------------------------------------------------
# tests and P values


def test_paper_rule_reproduces_every_published_statistic_and_p(summary, published):
    cmp = compare_tests_with_published(summary, published)
    compared = cmp[cmp["Mismatch"] != "n/a"]
    assert len(compared) == 13
    assert (compared["Mismatch"] == "No").all(), compared[compared["Mismatch"] == "Yes"]


@pytest.mark.parametrize(
    "column, key",
    [("age_group", "pearson"), ("sex", "yates"), ("kps_group", "fisher"),
     ("histology", "fisher_freeman_halton"), ("n_stage_group", "yates"),
     ("liver_met_max_diameter_cm", "wilcoxon")],
)
def test_each_row_carries_the_test_the_paper_rule_selects(summary, column, key):
    assert summary.variables.set_index("variable").loc[column, "test_key"] == key


def test_modern_rule_uses_fisher_for_every_sparse_table(table1_patients):
    s = summarise_baseline(table1_patients, rule="modern")
    keys = s.variables.set_index("variable")["test_key"]
    assert keys["sex"] == keys["histology"] == keys["n_stage_group"] == "fisher"
    assert keys["age_group"] == "pearson"


def test_fisher_rows_print_a_dash_for_the_statistic(table):
    row = table[table["Characteristic"] == "KPS score"].iloc[0]
    assert row["Statistic"] == "-" and row["P"] == "0.094"


def test_p_values_are_rounded_not_truncated(table):
    row = table[table["Characteristic"] == "Underlying diseases"].iloc[0]
    assert row["P"] == "0.900"  # 0.8998... rounds to 0.900


def test_footnote_names_every_test_with_its_letter(table):
    foot = table.attrs["footnote"]
    letters = {t for t in table["Test"] if t not in ("", "-")}
    for name in ("Pearson chi-square", "Yates-corrected chi-square", "Fisher's exact test",
                 "Fisher-Freeman-Halton exact test", "Wilcoxon rank-sum test"):
        assert name in foot
    for letter in letters:
        assert f"^{letter}^" in foot


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


# ------------------------------------------------------------------------------------------
# SMD


def test_binary_smd_equals_the_two_proportion_formula(summary, table1_patients):
    p1, p2 = 39 / 87, 20 / 39  # age > 60
    expected = abs(p1 - p2) / math.sqrt((p1 * (1 - p1) + p2 * (1 - p2)) / 2)
    got = summary.variables.set_index("variable").loc["age_group", "smd"]
    assert got == pytest.approx(expected, rel=1e-9)


def test_continuous_smd_is_mean_difference_over_pooled_sd(summary, table1_patients):
    x = table1_patients["liver_met_max_diameter_cm"]
    a, b = x[table1_patients.arm == "CMT"].dropna(), x[table1_patients.arm == "CMT+ICI"].dropna()
    expected = abs(b.mean() - a.mean()) / math.sqrt((a.var() + b.var()) / 2)
    got = summary.variables.set_index("variable").loc["liver_met_max_diameter_cm", "smd"]
    assert got == pytest.approx(expected, rel=1e-9)


# ------------------------------------------------------------------------------------------
# comparison with the published table


def test_published_comparison_has_no_mismatch_on_a_cohort_with_the_published_counts(
        table, published):
    cmp = compare_with_published(table, published)
    assert (cmp["Mismatch"] != "Yes").all(), cmp[cmp["Mismatch"] == "Yes"]
    assert (cmp["Mismatch"] == "No").sum() == 29  # 13 variables with numbers, 29 levels


def test_histology_correction_is_noted_in_the_comparison(table, published):
    cmp = compare_with_published(table, published)
    eac = cmp[(cmp["Characteristic"] == "Histology") & (cmp["Level"] == "EAC")].iloc[0]
    assert "printed 2, corrected to 0" in eac["Note"]
    assert eac["CMT+ICI published"] == 0


def test_histology_against_the_printed_cells_is_flagged_as_a_mismatch(table, published):
    cmp = compare_with_published(table, published, correct_published=False)
    flagged = cmp[cmp["Mismatch"] == "Yes"]
    assert set(flagged["Level"]) == {"EAC", "Other"}
    assert set(flagged["Differs in"]) == {"CMT+ICI"}


def test_a_changed_count_is_flagged(table1_patients, published):
    df = table1_patients.copy()
    i = df.index[(df.arm == "CMT") & (df.sex == "Male")][0]
    df.loc[i, "sex"] = "Female"
    cmp = compare_with_published(summarise_baseline(df), published)
    flagged = cmp[cmp["Mismatch"] == "Yes"]
    assert list(flagged["Level"]) == ["Male", "Female"]
    assert set(flagged["Differs in"]) == {"Overall, CMT"}


def test_radiotherapy_row_is_marked_not_published(table, published):
    cmp = compare_with_published(table, published)
    rt = cmp[cmp["Characteristic"] == "Primary lesion radiotherapy"]
    assert (rt["Mismatch"] == "n/a").all() and len(rt) == 2
    assert rt["CMT reproduced"].tolist() == [21, 66] and rt["CMT published"].isna().all()


# ------------------------------------------------------------------------------------------
# results.json and validation


def test_baseline_results_carry_counts_tests_and_prose_strings(table1_patients, published):
    res = baseline_results(table1_patients, published=published)
    json.dumps(res, allow_nan=False)  # plain JSON
    assert res["order"][0] == "age_group" and len(res["order"]) == len(BASELINE_VARIABLES)
    hist = res["rows"]["histology"]
    assert hist["test"] == "Fisher-Freeman-Halton exact test"
    assert round(hist["statistic"], 3) == 2.098 and hist["p_text"] == "0.321"
    assert hist["levels"]["EAC"]["CMT+ICI"]["n"] == 0
    assert res["comparison"]["level_mismatches"] == 0
    assert res["comparison"]["test_mismatches"] == 0
    assert all(isinstance(v, str) for v in res["text"].values())
    assert res["text"]["n_CMT_ICI"] == "39" and res["text"]["n_overall"] == "126"


def test_grouped_columns_are_derived_from_raw_columns_when_absent(table1_patients):
    df = table1_patients.drop(columns=["age_group", "kps_group", "grade_group"])
    df["age"] = np.where(table1_patients["age_group"] == "> 60", 65, 55)
    df["kps"] = np.where(table1_patients["kps_group"] == ">= 70", 80, 60)
    df["differentiation"] = table1_patients["grade_group"].astype(str).replace("G3-G4", "G4")
    s = summarise_baseline(df)
    ref = summarise_baseline(table1_patients)
    pd.testing.assert_frame_equal(s.levels, ref.levels)


def test_missing_columns_and_arms_fail_early_with_a_named_error(table1_patients):
    with pytest.raises(BaselineDataError, match="histology"):
        summarise_baseline(table1_patients.drop(columns=["histology"]))
    df = table1_patients.copy()
    df["arm"] = df["arm"].astype(object)
    df.loc[0, "arm"] = None
    with pytest.raises(BaselineDataError, match="arm"):
        summarise_baseline(df)


def test_unknown_rule_is_rejected(table1_patients):
    with pytest.raises(ValueError):
        summarise_baseline(table1_patients, rule="spss")


def test_smd_ignores_missing_values_rather_than_counting_them_as_a_level(table1_patients):
    df = table1_patients.copy()
    df["sex"] = df["sex"].astype(object)
    df.loc[df.index[:3], "sex"] = None
    got = summarise_baseline(df).variables.set_index("variable").loc["sex", "smd"]
    keep = df["sex"].notna()
    a = (df.loc[keep & (df.arm == "CMT"), "sex"] == "Male").mean()
    b = (df.loc[keep & (df.arm == "CMT+ICI"), "sex"] == "Male").mean()
    expected = abs(a - b) / math.sqrt((a * (1 - a) + b * (1 - b)) / 2)
    assert got == pytest.approx(expected, rel=1e-9)
