"""Baseline characteristics by arm (Table 1 of Dai et al. 2026) and its comparison with the paper.

Split by responsibility, as R/Python ``tableone``: validate -> compute (:func:`summarise_baseline`)
-> build (:func:`make_baseline_table`) -> compare (:func:`compare_with_published`,
:func:`compare_tests_with_published`) -> export (:func:`baseline_results`).

What comes from ``tableone`` and what does not
-----------------------------------------------
``tableone`` (0.9.6) supplies the standardized mean differences: Yang and Dalton's
multinomial SMD for categorical variables (first level dropped, as R tableone's ``ExtractSmd``)
and |mean difference| / sqrt((s1^2 + s2^2) / 2) for continuous ones. Its SMD formulas
(``tableone.statistics.Statistics``) are fed here with the proportions, means and SDs that
``TableOne(smd=True)`` would compute (same numbers to the last bit, checked against ``TableOne``
in the tests), because ``TableOne`` itself converts every cell to text in Python and takes
~20 s at 100,000 patients. Counts, percentages, the
missing column and the tests are computed here, because ``TableOne`` (i) sorts levels and drops
levels that are empty (Table 1 needs the paper's order, e.g. KPS "< 70" with 0 patients in CMT),
(ii) treats a missing categorical value as a level, and (iii) offers only chi-square (Yates for
2 x 2) / 2 x 2 Fisher / Kruskal-Wallis, so it can neither reproduce the paper's SPSS rule
(Fisher-Freeman-Halton for sparse r x c tables) nor give an exact r x c Fisher test. The counts
are cross-checked against ``TableOne``'s in the tests.

Conventions
-----------
* Categorical rows: n (%) with percentages of the non-missing values of the column (arm or
  overall), one decimal. Tests from :func:`helpers.stats.contingency.test_association` under the
  chosen rule ("paper" reproduces the published statistics; "modern" = Fisher whenever an
  expected count is below 5).
* Continuous rows: median [IQR], quartiles by linear interpolation (R ``quantile(type = 7)``),
  Wilcoxon rank-sum test as R's ``wilcox.test(x, y)`` default (exact if both groups < 50 and
  no ties, otherwise normal approximation with continuity and tie correction); statistic W
  = Mann-Whitney U of the first arm, as R.
* P values rounded (not truncated) to 3 decimals, "<0.001" below (helpers.report.formatting.format_p).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from helpers.stats.contingency import TEST_NAMES, test_association
from helpers.analyses.reproduction import load_published  # noqa: F401  (re-exported for the notebook)

__all__ = [
    "BaselineVariable",
    "BaselineSummary",
    "BaselineDataError",
    "BASELINE_VARIABLES",
    "PUBLISHED_CORRECTIONS",
    "RULE_DESCRIPTIONS",
    "summarise_baseline",
    "make_baseline_table",
    "baseline_footnote",
    "compare_with_published",
    "compare_tests_with_published",
    "baseline_results",
    "rank_sum_test",
    "load_published",
    "INDENT",
    "CORRECTION_NOTE",
]

ARM_COLUMN = "arm"
OVERALL = "Overall"
WILCOXON = "Wilcoxon rank-sum test"
SMD_THRESHOLD = 0.1  # Austin 2009: |SMD| < 0.1 read as negligible imbalance
#: Indent of level rows: non-breaking spaces survive Markdown pipe tables in every output format.
INDENT = "\u00a0" * 4


class BaselineDataError(ValueError):
    """The patients table cannot produce Table 1 (missing columns, missing arm, bad values)."""


@dataclass(frozen=True)
class BaselineVariable:
    """One characteristic of Table 1.

    column : column of ``study.patients``; label : printed name (the paper's wording for the
    published rows); kind : "categorical" or "continuous"; levels : display order used when the
    column is not a pandas Categorical (a Categorical's own order wins); published : True for
    the rows of the paper's Table 1; unit : for continuous rows.
    """

    column: str
    label: str
    kind: str = "categorical"
    levels: tuple = ()
    published: bool = True
    unit: Optional[str] = None


YES_NO = ("Yes", "No")

#: Rows in the paper's order and grouping, then the rows only our data carry.
BASELINE_VARIABLES: tuple[BaselineVariable, ...] = (
    BaselineVariable("age_group", "Age (years)", levels=("> 60", "<= 60")),
    BaselineVariable("sex", "Sex", levels=("Male", "Female")),
    BaselineVariable("underlying_disease", "Underlying diseases", levels=YES_NO),
    BaselineVariable("symptoms", "Dysphagia or cancer-related symptoms", levels=YES_NO),
    BaselineVariable("kps_group", "KPS score", levels=(">= 70", "< 70")),
    BaselineVariable("histology", "Histology", levels=("ESCC", "EAC", "Other")),
    BaselineVariable("tumor_location", "Primary tumor location", levels=("Upper", "Middle", "Lower")),
    BaselineVariable("grade_group", "Tumor differentiation grade", levels=("G1", "G2", "G3-G4")),
    BaselineVariable("t_stage_group", "Tumor stage", levels=("T1-2", "T3-4")),
    BaselineVariable("n_stage_group", "Nodal stage", levels=("N0", "N+")),
    BaselineVariable("synchronous_liver_met", "Synchronous liver metastasis at initial diagnosis",
                     levels=YES_NO),
    BaselineVariable("distant_ln_met", "Distant lymph node metastasis", levels=YES_NO),
    BaselineVariable("primary_surgery", "Primary lesion surgery", levels=YES_NO),
    BaselineVariable("primary_radiotherapy", "Primary lesion radiotherapy", levels=YES_NO),
    BaselineVariable("liver_met_number", "Number of liver metastases",
                     levels=("Solitary", "Multiple"), published=False),
    BaselineVariable("liver_met_max_diameter_cm", "Largest liver metastasis diameter (cm)",
                     kind="continuous", published=False, unit="cm"),
    BaselineVariable("local_therapy_liver", "Local therapy of liver metastases", levels=YES_NO,
                     published=False),
    BaselineVariable("chemo_regimen", "First-line chemotherapy regimen",
                     levels=("TP", "FP", "Other"), published=False),
)

#: Printed Table 1 cells that cannot be right, with the value used instead and why.
#: Key: (variable label, level, column) -> (printed, corrected).
PUBLISHED_CORRECTIONS: dict[tuple[str, str, str], tuple[int, int]] = {
    ("Histology", "EAC", "CMT+ICI"): (2, 0),
    ("Histology", "Other", "CMT+ICI"): (0, 2),
}
CORRECTION_NOTE = (
    "Histology, CMT+ICI: printed EAC 2 / Other 0 do not add up to the total column (EAC 3, "
    "Other 12); EAC 0 / Other 2 add up and reproduce the printed statistic 2.098 and P 0.321, "
    "so the two cells are taken to have been swapped in print."
)

RULE_DESCRIPTIONS = {
    "paper": (
        "rule of the paper's software (SPSS-style): 2 x 2 tables by Pearson chi-square when every "
        "expected count is >= 5, Yates-corrected chi-square when the smallest expected count is "
        "1 to < 5, Fisher's exact test when it is < 1 (or n < 40); larger tables by the "
        "Fisher-Freeman-Halton exact test when any expected count is < 5, else Pearson chi-square"
    ),
    "modern": (
        "Fisher's exact test (exact for any r x c table) whenever any expected count is < 5, "
        "otherwise Pearson chi-square without continuity correction"
    ),
}

#: What the "Statistic" column holds, per test key.
STATISTIC_MEANING = {
    "pearson": "chi-square",
    "yates": "chi-square",
    "fisher_freeman_halton": "Fisher-Freeman-Halton statistic as printed by SPSS",
    "fisher": "none (-)",
    "wilcoxon": "W (Mann-Whitney U of the first arm, as R)",
}


# ------------------------------------------------------------------------------------------
# data preparation


def _derive_groups(patients: pd.DataFrame) -> pd.DataFrame:
    """Add the grouped Table 1 columns if absent (helpers.data.load normally derives them).

    Rules as data/dictionary.yaml ``derived``: age > 60 / <= 60, KPS >= 70 / < 70, G3-G4,
    T1-2 / T3-4, N0 / N+.
    """
    df = patients.copy()

    def cat(values, levels):
        return pd.Categorical(values, categories=list(levels))

    if "age_group" not in df and "age" in df:
        age = pd.to_numeric(df["age"], errors="coerce")
        df["age_group"] = cat(np.where(age.isna(), None, np.where(age > 60, "> 60", "<= 60")),
                              ("> 60", "<= 60"))
    if "kps_group" not in df and "kps" in df:
        kps = pd.to_numeric(df["kps"], errors="coerce")
        df["kps_group"] = cat(np.where(kps.isna(), None, np.where(kps >= 70, ">= 70", "< 70")),
                              (">= 70", "< 70"))
    maps = {
        "grade_group": ("differentiation", {"G1": "G1", "G2": "G2", "G3": "G3-G4", "G4": "G3-G4"},
                        ("G1", "G2", "G3-G4")),
        "t_stage_group": ("t_stage", {"T1": "T1-2", "T2": "T1-2", "T3": "T3-4", "T4": "T3-4"},
                          ("T1-2", "T3-4")),
        "n_stage_group": ("n_stage", {"N0": "N0", "N1": "N+", "N2": "N+", "N3": "N+"},
                          ("N0", "N+")),
    }
    for new, (src, mapping, levels) in maps.items():
        if new not in df and src in df:
            df[new] = cat(df[src].astype("object").map(mapping), levels)
    return df


def _validate(patients: pd.DataFrame, variables: Sequence[BaselineVariable],
              arm_order: Sequence[str]) -> None:
    problems = []
    if ARM_COLUMN not in patients:
        problems.append(f"column '{ARM_COLUMN}' is missing")
    else:
        arm = patients[ARM_COLUMN]
        if arm.isna().any():
            rows = list(patients.index[arm.isna()][:10])
            problems.append(f"'{ARM_COLUMN}' is missing in rows {rows}")
        unknown = sorted(set(arm.dropna().astype(str)) - set(arm_order))
        if unknown:
            problems.append(f"'{ARM_COLUMN}' has values {unknown} not in arm_order {list(arm_order)}")
    absent = [v.column for v in variables if v.column not in patients]
    if absent:
        problems.append(f"columns missing: {absent}")
    for v in variables:
        if v.kind == "continuous" and v.column in patients:
            bad = pd.to_numeric(patients[v.column], errors="coerce").isna() & patients[v.column].notna()
            if bad.any():
                problems.append(f"'{v.column}' has non-numeric values in rows "
                                f"{list(patients.index[bad][:10])}")
    if problems:
        raise BaselineDataError("patients table cannot make Table 1: " + "; ".join(problems))


def _levels_of(series: pd.Series, var: BaselineVariable) -> list[str]:
    if isinstance(series.dtype, pd.CategoricalDtype):
        return [str(c) for c in series.cat.categories]
    present = [str(v) for v in pd.unique(series.dropna())]
    order = [lv for lv in var.levels]
    return order + sorted(set(present) - set(order))


def _level_by_arm_counts(col: pd.Series, levels: Sequence[str], arm_code: np.ndarray,
                         n_arms: int) -> np.ndarray:
    """Counts (levels x arms, int64) of the non-missing values whose text ``str(value)`` is each level.

    Same numbers as ``pd.crosstab(text, arm).reindex(index=levels, columns=arms, fill_value=0)``
    (values of equal text are counted together; a level not observed counts 0), from the codes
    of a Categorical with text categories, or from the distinct texts of any other column.
    """
    if isinstance(col.dtype, pd.CategoricalDtype) and col.cat.categories.dtype == object:
        codes = col.cat.codes.to_numpy()
        texts = [str(c) for c in col.cat.categories]
    else:
        text = col.astype("object").where(col.notna(), None)
        codes, uniques = pd.factorize(text.map(lambda v: None if v is None else str(v)))
        texts = list(uniques)
    text_id: dict[str, int] = {}
    id_of_code = np.array([text_id.setdefault(t, len(text_id)) for t in texts], dtype=np.int64)
    ids = np.full(len(codes), -1, dtype=np.int64)
    observed = codes >= 0
    ids[observed] = id_of_code[codes[observed]]
    by_text = _count_table(ids, len(text_id), arm_code, n_arms)
    table = np.zeros((len(levels), n_arms), dtype=np.int64)
    for i, lv in enumerate(levels):
        if lv in text_id:
            table[i] = by_text[text_id[lv]]
    return table


def _arm_order(patients: pd.DataFrame, arm_order: Optional[Sequence[str]]) -> list[str]:
    if arm_order is not None:
        return [str(a) for a in arm_order]
    arm = patients[ARM_COLUMN] if ARM_COLUMN in patients else pd.Series(dtype=object)
    if isinstance(arm.dtype, pd.CategoricalDtype):
        return [str(c) for c in arm.cat.categories]
    return sorted(str(a) for a in arm.dropna().unique())


# ------------------------------------------------------------------------------------------
# statistics


def rank_sum_test(x: Iterable[float], y: Iterable[float]) -> tuple[float, float, str]:
    """Two-sided Wilcoxon rank-sum test as R's ``wilcox.test(x, y)`` default.

    Exact P when both samples have fewer than 50 values and there are no ties, otherwise the
    normal approximation with continuity correction and tie-corrected variance (R
    ``correct = TRUE``). Missing values are dropped.

    Returns
    -------
    (W, p, method) with W = sum of ranks of x minus n_x (n_x + 1) / 2, as R.
    """
    x = np.asarray(pd.to_numeric(pd.Series(list(x)), errors="coerce").dropna(), float)
    y = np.asarray(pd.to_numeric(pd.Series(list(y)), errors="coerce").dropna(), float)
    if x.size == 0 or y.size == 0:
        return math.nan, math.nan, "not computable (an empty group)"
    ties = np.unique(np.concatenate([x, y])).size < x.size + y.size
    exact = x.size < 50 and y.size < 50 and not ties
    method = "exact" if exact else "asymptotic"
    res = stats.mannwhitneyu(x, y, alternative="two-sided", use_continuity=True, method=method)
    return float(res.statistic), float(min(1.0, res.pvalue)), method


#: Group names ``TableOne`` refuses (it raises InputError); such arms go through ``TableOne``.
_TABLEONE_RESERVED = frozenset({"Missing", "P-Value", "Test", "P-Value (adjusted)", "SMD", "Overall"})


def _group_codes(values: pd.Series) -> tuple[np.ndarray, list]:
    """Codes of ``values`` into their sorted distinct values (as ``groupby(sort=True)``); -1 = missing."""
    codes, uniques = pd.factorize(values, sort=True)
    return codes, list(uniques)


def _count_table(codes: np.ndarray, n_codes: int, group: np.ndarray, n_groups: int) -> np.ndarray:
    """Counts (n_codes x n_groups) of the rows with ``codes`` >= 0 and ``group`` >= 0."""
    keep = (codes >= 0) & (group >= 0)
    cells = codes[keep].astype(np.int64) * n_groups + group[keep]
    return np.bincount(cells, minlength=n_codes * n_groups).reshape(n_codes, n_groups)


def _smd(frame: pd.DataFrame, arm: pd.Series, kinds: Mapping[str, str]) -> dict[str, float]:
    """Standardized mean differences as :func:`_smd_tableone`, without running ``TableOne``.

    The inputs ``TableOne(smd=True)`` gives its SMD formulas are computed as it computes them:
    categorical, the proportions of the levels (text of the value, sorted as text; percent =
    100 * n / N, then / 100) per arm among the column's non-missing rows; continuous, the count,
    mean and SD (``Statistics._std``, n - 1) per arm from one ``pd.pivot_table`` of all
    continuous columns. The formulas are ``tableone.statistics.Statistics._cat_smd`` /
    ``_cont_smd``, applied to every pair of arms (sorted as text); the result is the largest
    |SMD|. A frame whose index has duplicates or an arm with a name ``TableOne`` reserves goes
    through ``TableOne`` (which raises, as before).
    """
    from tableone.statistics import Statistics

    arm = arm.astype(str)
    if arm.nunique() < 2:
        return {c: math.nan for c in kinds}
    if not frame.index.is_unique or _TABLEONE_RESERVED & set(arm.unique()):
        return _smd_tableone(frame, arm, kinds)
    formulas = Statistics()
    smds: dict[str, list] = {}
    out: dict[str, float] = {}

    def pairs(groups: list) -> set[tuple]:
        """Pairs of groups, each in the order of ``groups``, iterated as TableOne iterates them."""
        return {tuple(sorted((x, y), key=groups.index)) for x in groups for y in groups if x != y}

    continuous = [c for c, kind in kinds.items() if kind != "categorical"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if continuous:
            data = pd.DataFrame({"arm": arm})
            for c in continuous:
                data[c] = pd.to_numeric(frame[c], errors="coerce")

            def std(x):
                return formulas._std(x, 1)

            describe = pd.pivot_table(data, columns=["arm"], aggfunc=["count", "mean", std])
            for g1, g2 in pairs(_group_codes(arm)[1]):
                for c in describe.index:
                    smd, _ = formulas._cont_smd(
                        mean1=describe["mean"][g1].loc[c], mean2=describe["mean"][g2].loc[c],
                        sd1=describe["std"][g1].loc[c], sd2=describe["std"][g2].loc[c],
                        n1=describe["count"][g1].loc[c], n2=describe["count"][g2].loc[c],
                        unbiased=False)
                    smds.setdefault(c, []).append(smd)
        for col, kind in kinds.items():
            values = frame[col]
            if kind != "categorical":
                continue
            if values.dropna().astype(str).nunique() < 2:
                out[col] = 0.0
                continue
            present = values.notna().to_numpy()
            group, groups = _group_codes(arm[present])
            level, levels = _group_codes(values[present].astype(str))
            freq = _count_table(level, len(levels), group, len(groups))
            percent = freq / freq.sum(axis=0) * 100
            for a, b in pairs(list(range(len(groups)))):   # (only the largest |SMD| is kept)
                smd, _ = formulas._cat_smd(prop1=percent[:, a] / 100, prop2=percent[:, b] / 100,
                                           n1=freq[:, a].sum(), n2=freq[:, b].sum(), unbiased=False)
                smds.setdefault(col, []).append(smd)
    for col in kinds:
        if col in out:
            continue
        values = pd.to_numeric(pd.Series(smds.get(col, []), dtype=object), errors="coerce").abs()
        out[col] = float(values.max()) if values.notna().any() else math.nan
    return out


def _smd_tableone(frame: pd.DataFrame, arm: pd.Series,
                  kinds: Mapping[str, str]) -> dict[str, float]:
    """Standardized mean differences from ``tableone.TableOne(smd=True)``, non-missing values.

    Categorical: Yang & Dalton (2012) multinomial SMD (first level dropped, as R tableone);
    continuous: |m2 - m1| / sqrt((s1^2 + s2^2) / 2) with SD on n - 1. With more than two
    arms, the largest pairwise SMD. A categorical variable with one observed level has SMD 0.
    TableOne counts a missing categorical value as a level, so such a column gets its own
    call on its non-missing rows; all other columns go in one call (TableOne is slow).
    """
    from tableone import TableOne

    arm = arm.astype(str)
    out: dict[str, float] = {}
    if arm.nunique() < 2:
        return {c: math.nan for c in kinds}
    batch, alone = [], []
    for col, kind in kinds.items():
        values = frame[col]
        if kind == "categorical" and values.dropna().astype(str).nunique() < 2:
            out[col] = 0.0
        elif kind == "categorical" and values.isna().any():
            alone.append(col)
        else:
            batch.append(col)

    def run(cols: list[str], rows) -> None:
        df = pd.DataFrame({"arm": arm[rows]})
        for c in cols:
            v = frame.loc[rows, c]
            df[c] = v.astype(str) if kinds[c] == "categorical" else pd.to_numeric(v, errors="coerce")
        cat = [c for c in cols if kinds[c] == "categorical"]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t1 = TableOne(df, columns=cols, categorical=cat,
                          continuous=[c for c in cols if c not in cat], groupby="arm", smd=True,
                          pval=False, overall=False, missing=False)
        smd = t1.smd_table.apply(pd.to_numeric, errors="coerce").abs()
        for c in cols:
            out[c] = float(smd.loc[c].max()) if smd.loc[c].notna().any() else math.nan

    if batch:
        run(batch, frame.index)
    for col in alone:
        run([col], frame.index[frame[col].notna()])
    return out


@dataclass(eq=False)  # identity equality: pandas compares ``attrs`` when propagating them
class BaselineSummary:
    """Computed Table 1 before formatting.

    levels : long DataFrame, one row per variable x level x group (``Overall`` and each arm):
        variable, label, level, group, n, denominator, percent.
    variables : one row per variable: variable, label, kind, published, test, test_key,
        statistic, df, p, min_expected, missing (overall), smd, plus for continuous rows
        median/q1/q3/n per group in ``continuous``.
    """

    arms: list
    arm_n: dict
    rule: str
    levels: pd.DataFrame
    variables: pd.DataFrame
    continuous: dict = field(default_factory=dict)


def summarise_baseline(patients: pd.DataFrame, rule: str = "paper",
                       arm_order: Optional[Sequence[str]] = None,
                       variables: Sequence[BaselineVariable] = BASELINE_VARIABLES
                       ) -> BaselineSummary:
    """Counts, tests, missing values and SMDs for every Table 1 row.

    Parameters
    ----------
    patients : DataFrame
        ``study.patients`` (one row per patient, column ``arm``). Grouped columns
        (age_group, ...) are derived from the raw ones if absent.
    rule : {"paper", "modern"}
        Test-selection rule for categorical rows (helpers.stats.contingency).
    arm_order : sequence of str, optional
        Column order of the arms; default the categories of ``arm`` (study.config.arm_order).
    variables : sequence of BaselineVariable
        Rows, default :data:`BASELINE_VARIABLES`.

    Raises
    ------
    BaselineDataError
        Listing missing columns, missing/unknown arms, non-numeric continuous values.
    """
    if rule not in RULE_DESCRIPTIONS:
        raise ValueError(f"rule must be one of {list(RULE_DESCRIPTIONS)}, got {rule!r}")
    df = _derive_groups(patients)
    arms = _arm_order(df, arm_order)
    _validate(df, variables, arms)
    arm = df[ARM_COLUMN].astype(str)
    arm_code = pd.Categorical(arm, categories=arms).codes  # position in ``arms``; -1: another value
    in_arm = {a: arm_code == j for j, a in enumerate(arms)}
    arm_n = {OVERALL: int(len(df)), **{a: int(in_arm[a].sum()) for a in arms}}
    groups = [OVERALL, *arms]

    level_rows, var_rows, cont = [], [], {}
    for var in variables:
        col = df[var.column]
        isna = col.isna().to_numpy()
        missing = int(isna.sum())
        missing_by_arm = _count_table(np.where(isna, 0, -1), 1, arm_code, len(arms))[0]
        row: dict[str, Any] = {"variable": var.column, "label": var.label, "kind": var.kind,
                               "published": var.published, "missing": missing,
                               **{f"missing_{a}": int(missing_by_arm[j]) for j, a in enumerate(arms)}}
        if var.kind == "categorical":
            levels = _levels_of(col, var)
            table = _level_by_arm_counts(col, levels, arm_code, len(arms))
            for i, lv in enumerate(levels):
                for j, g in enumerate(groups):
                    n = int(table[i].sum()) if g == OVERALL else int(table[i, j - 1])
                    denom = int(table.sum()) if g == OVERALL else int(table[:, j - 1].sum())
                    level_rows.append({"variable": var.column, "label": var.label, "level": lv,
                                       "group": g, "n": n, "denominator": denom,
                                       "percent": 100.0 * n / denom if denom else math.nan})
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # an untestable table is reported as "no test"
                res = test_association(table, rule=rule)
            row.update(test=res.test, test_key=res.key, statistic=res.statistic, df=res.df,
                       p=res.p, min_expected=res.min_expected)
        else:
            x = pd.to_numeric(col, errors="coerce")
            summ = {}
            for g in groups:
                v = x if g == OVERALL else x[in_arm[g]]
                v = v.dropna()
                summ[g] = {"n": int(v.size),
                           "median": float(v.median()) if v.size else math.nan,
                           "q1": float(np.percentile(v, 25)) if v.size else math.nan,
                           "q3": float(np.percentile(v, 75)) if v.size else math.nan}
            cont[var.column] = summ
            if len(arms) == 2:
                w, p, method = rank_sum_test(x[in_arm[arms[0]]], x[in_arm[arms[1]]])
                test, key = f"{WILCOXON}", "wilcoxon"
            else:
                h = stats.kruskal(*[x[in_arm[a]].dropna() for a in arms])
                w, p, test, key = float(h.statistic), float(h.pvalue), "Kruskal-Wallis test", "kruskal"
            row.update(test=test, test_key=key, statistic=w, df=None, p=p, min_expected=None)
        var_rows.append(row)
    smd = _smd(df, df[ARM_COLUMN], {v.column: v.kind for v in variables})
    for row in var_rows:
        row["smd"] = smd[row["variable"]]
    return BaselineSummary(arms=arms, arm_n=arm_n, rule=rule, levels=pd.DataFrame(level_rows),
                           variables=pd.DataFrame(var_rows), continuous=cont)


# ------------------------------------------------------------------------------------------
# display table


def _fmt(value: Optional[float], digits: int = 3, missing: str = "-") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return missing
    return f"{value:.{digits}f}"


def _format_p(p: Optional[float]) -> str:
    from helpers.report.formatting import format_p

    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "-"
    return format_p(p, 3)


def _test_letters(summary: BaselineSummary) -> dict[str, str]:
    """Footnote letter per test name, in order of first appearance in the table."""
    letters: dict[str, str] = {}
    for name, key in zip(summary.variables["test"], summary.variables["test_key"]):
        if key != "none" and name not in letters:
            letters[name] = "abcdefghij"[len(letters)]
    return letters


def baseline_footnote(summary: BaselineSummary) -> str:
    """Footnote text: test letters, what the statistic column holds, percentages, SMD."""
    letters = _test_letters(summary)
    keys = dict(zip(summary.variables["test"], summary.variables["test_key"]))
    tests = "; ".join(f"^{letter}^ {name}" for name, letter in letters.items())
    meaning = "; ".join(f"{STATISTIC_MEANING[keys[name]]} for ^{letter}^"
                        for name, letter in letters.items() if keys[name] in STATISTIC_MEANING)
    return (
        f"Values are n (%), percentages of the non-missing values, or median [IQR]. "
        f"Tests: {tests}. Test selection: {RULE_DESCRIPTIONS[summary.rule]}; continuous "
        f"variables by the Wilcoxon rank-sum test. Statistic: {meaning}. P two-sided, rounded "
        f"to three decimals. Missing: patients with the value missing. SMD: standardized mean "
        f"difference between arms (categorical: Yang and Dalton multinomial SMD; continuous: "
        f"difference in means over the pooled SD); |SMD| < {SMD_THRESHOLD} is conventionally "
        f"read as negligible imbalance."
    )


def _table_from_summary(summary: BaselineSummary, digits: int = 1) -> pd.DataFrame:
    arms = summary.arms
    groups = [OVERALL, *arms]
    headers = {g: f"{g} (n = {summary.arm_n[g]})" for g in groups}
    letters = _test_letters(summary)
    lv = summary.levels
    out = []
    for _, v in summary.variables.iterrows():
        stat_digits = 1 if v["test_key"] in ("wilcoxon", "kruskal") else 3
        common = {"Statistic": _fmt(v["statistic"], stat_digits), "P": _format_p(v["p"]),
                  "Test": letters.get(v["test"], "-"), "Missing": str(int(v["missing"])),
                  "SMD": _fmt(v["smd"], 3)}
        if v["kind"] == "categorical":
            out.append({"Characteristic": v["label"], **{headers[g]: "" for g in groups}, **common})
            sub = lv[lv["variable"] == v["variable"]]
            for level in dict.fromkeys(sub["level"]):
                cells = {}
                for g in groups:
                    r = sub[(sub["level"] == level) & (sub["group"] == g)].iloc[0]
                    pct = 0.0 if not r["denominator"] else r["percent"]
                    cells[headers[g]] = f"{int(r['n'])} ({pct:.{digits}f})"
                out.append({"Characteristic": f"{INDENT}{level}", **cells,
                            **{k: "" for k in common}})
        else:
            summ = summary.continuous[v["variable"]]
            cells = {headers[g]: (f"{summ[g]['median']:.{digits}f} [{summ[g]['q1']:.{digits}f}, "
                                  f"{summ[g]['q3']:.{digits}f}]" if summ[g]["n"] else "-")
                     for g in groups}
            out.append({"Characteristic": f"{v['label']}, median [IQR]", **cells, **common})
    return pd.DataFrame(out, columns=["Characteristic", *headers.values(), "Statistic", "P",
                                      "Test", "Missing", "SMD"])


def make_baseline_table(patients: pd.DataFrame, rule: str = "paper",
                        arm_order: Optional[Sequence[str]] = None,
                        variables: Sequence[BaselineVariable] = BASELINE_VARIABLES,
                        digits: int = 1) -> pd.DataFrame:
    """Table 1: baseline characteristics by arm, with tests, missing values and SMDs.

    Columns: Characteristic, Overall, one per arm (each "name (n = N)", cells n (%) or
    median [IQR]), Statistic (3 decimals; "-" for Fisher's exact test), P (rounded to 3
    decimals, "<0.001"), Test (footnote letter), Missing, SMD. Variable rows carry the test;
    level rows (indented) carry the counts. Rows follow :data:`BASELINE_VARIABLES` (the paper's
    order, then the rows only our data carry).

    The footnote naming each test is in ``table.attrs["footnote"]`` and the computed
    :class:`BaselineSummary` in ``table.attrs["summary"]``.
    """
    summary = summarise_baseline(patients, rule=rule, arm_order=arm_order, variables=variables)
    table = _table_from_summary(summary, digits=digits)
    table.attrs["footnote"] = baseline_footnote(summary)
    table.attrs["summary"] = summary
    return table


# ------------------------------------------------------------------------------------------
# comparison with the published table


def _published_table1(published: Any) -> list[dict]:
    if isinstance(published, (str, Path)):
        import yaml

        published = yaml.safe_load(Path(published).read_text(encoding="utf-8"))
    if isinstance(published, Mapping):
        published = published["table1"]
    return list(published)


def _summary_of(table_or_counts: Any) -> BaselineSummary:
    if isinstance(table_or_counts, BaselineSummary):
        return table_or_counts
    if isinstance(table_or_counts, pd.DataFrame) and "summary" in table_or_counts.attrs:
        return table_or_counts.attrs["summary"]
    raise TypeError("expected a BaselineSummary or a table made by make_baseline_table")


def _reproduced_counts(table_or_counts: Any) -> pd.DataFrame:
    """Long counts: label, level, group, n."""
    if isinstance(table_or_counts, pd.DataFrame) and {"level", "group", "n"} <= set(
            table_or_counts.columns):
        return table_or_counts
    return _summary_of(table_or_counts).levels


def compare_with_published(table_or_counts: Any, published: Any,
                           correct_published: bool = True) -> pd.DataFrame:
    """Reproduced and published Table 1 counts side by side, every mismatch flagged.

    Parameters
    ----------
    table_or_counts : BaselineSummary, a table from :func:`make_baseline_table`, or a long
        DataFrame with columns label, level, group (``Overall`` or an arm), n.
    published : the parsed ``published.yaml`` (dict), its ``table1`` list, or its path.
    correct_published : bool
        Apply :data:`PUBLISHED_CORRECTIONS` (histology cells swapped in print) before
        comparing; the printed value is kept in the Note column.

    Returns
    -------
    DataFrame: Characteristic, Level, then "<group> reproduced" / "<group> published" for
    Overall and each published arm, "Mismatch" ("Yes"/"No"; "n/a" where the paper gives no
    numbers), "Differs in" (the columns that disagree) and "Note".
    """
    counts = _reproduced_counts(table_or_counts)
    rows = []
    for item in _published_table1(published):
        label, levels = item["variable"], item.get("levels")
        rep = counts[counts["label"] == label]
        if levels is None:
            for lv in dict.fromkeys(rep["level"]) if len(rep) else [""]:
                cells = {g: (int(r["n"]), None)
                         for g, r in rep[rep["level"] == lv].set_index("group").iterrows()}
                rows.append({"Characteristic": label, "Level": lv, "Mismatch": "n/a",
                             "Note": "numbers not published", "_cells": cells})
            continue
        for lv, cells in levels.items():
            row = {"Characteristic": label, "Level": lv, "_cells": {}, "Note": ""}
            notes, differs = [], []
            for pub_col, value in cells.items():
                group = OVERALL if pub_col == "total" else pub_col
                pub = value
                fix = PUBLISHED_CORRECTIONS.get((label, lv, pub_col)) if correct_published else None
                if fix is not None and fix[0] == value:
                    pub = fix[1]
                    notes.append(f"{group}: printed {fix[0]}, corrected to {fix[1]}")
                hit = rep[(rep["level"] == lv) & (rep["group"] == group)]
                got = int(hit["n"].iloc[0]) if len(hit) else None
                row["_cells"][group] = (got, pub)
                if got != pub:
                    differs.append(group)
            row["Mismatch"] = "Yes" if differs else "No"
            row["Differs in"] = ", ".join(differs)
            row["Note"] = "; ".join(notes)
            rows.append(row)
    published_groups = {OVERALL if k == "total" else k for item in _published_table1(published)
                        for cells in (item.get("levels") or {}).values() for k in cells}
    groups = [g for g in dict.fromkeys(g for r in rows for g in r["_cells"])
              if g in published_groups]
    out = []
    for r in rows:
        rec = {"Characteristic": r["Characteristic"], "Level": r["Level"]}
        for g in groups:
            got, pub = r["_cells"].get(g, (None, None))
            rec[f"{g} reproduced"] = got
            rec[f"{g} published"] = pub
        rec["Mismatch"] = r["Mismatch"]
        rec["Differs in"] = r.get("Differs in", "")
        rec["Note"] = r["Note"]
        out.append(rec)
    # object dtype keeps counts as int and "not published" as None (shown blank)
    return pd.DataFrame(out, dtype=object)


def compare_tests_with_published(summary_or_table: Any, published: Any) -> pd.DataFrame:
    """Reproduced and published test statistic and P per Table 1 variable, at 3 decimals.

    Mismatch is "Yes" when either the statistic or P differs after rounding both to three
    decimals (a printed "-" statistic matches a test without statistic); "n/a" where the paper
    gives no numbers.
    """
    summary = _summary_of(summary_or_table)
    v = summary.variables.set_index("label")
    out = []
    for item in _published_table1(published):
        label = item["variable"]
        rep = v.loc[label] if label in v.index else None
        stat = None if rep is None else rep["statistic"]
        p = None if rep is None else rep["p"]
        stat = None if stat is None or (isinstance(stat, float) and math.isnan(stat)) else stat
        rec = {"Characteristic": label,
               "Test": "" if rep is None else rep["test"],
               "Statistic reproduced": _fmt(stat, 3),
               "Statistic published": _fmt(item.get("chi2"), 3),
               "P reproduced": _format_p(p),
               "P published": _format_p(item.get("p"))}
        if item.get("p") is None:
            rec["Mismatch"] = "n/a"
        else:
            same_stat = rec["Statistic reproduced"] == rec["Statistic published"]
            same_p = p is not None and round(float(p), 3) == round(float(item["p"]), 3)
            rec["Mismatch"] = "No" if same_stat and same_p else "Yes"
        out.append(rec)
    return pd.DataFrame(out)


# ------------------------------------------------------------------------------------------
# results.json


def _num(x: Any) -> Any:
    if x is None:
        return None
    if isinstance(x, (float, np.floating)) and math.isnan(float(x)):
        return None
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating,)):
        return float(x)
    return x


def _key(name: str) -> str:
    """A results.json key usable in a ``{{< res >}}`` path: "CMT+ICI" -> "CMT_ICI"."""
    import re

    return re.sub(r"[^0-9A-Za-z]+", "_", name).strip("_")


def baseline_results(patients_or_summary: Any, rule: str = "paper",
                     arm_order: Optional[Sequence[str]] = None,
                     published: Any = None,
                     variables: Sequence[BaselineVariable] = BASELINE_VARIABLES) -> dict:
    """The ``baseline`` section of results.json.

    Keys: ``rule`` and ``rule_description``; ``arms``; ``n`` per group; ``order`` (variables in
    table order; JSON objects are saved with sorted keys); ``rows`` {variable: {label, kind,
    test, test_key, statistic, df, p, p_text, min_expected, missing, smd, levels {level:
    {group: {n, percent}}} or summary {group: {n, median, q1, q3}}}}; ``tests_used``;
    ``comparison`` (if ``published`` is given: counts and tests compared, mismatches); ``text``
    (ready-formatted strings for the prose).
    """
    if isinstance(patients_or_summary, BaselineSummary):
        summary = patients_or_summary
    elif isinstance(patients_or_summary, pd.DataFrame) and "summary" in patients_or_summary.attrs:
        summary = patients_or_summary.attrs["summary"]
    else:
        summary = summarise_baseline(patients_or_summary, rule=rule, arm_order=arm_order,
                                     variables=variables)
    groups = [OVERALL, *summary.arms]
    rows = {}
    for _, v in summary.variables.iterrows():
        rec = {k: _num(v[k]) for k in ("label", "kind", "test", "test_key", "statistic", "df",
                                        "p", "min_expected", "missing", "smd")}
        rec["published_row"] = bool(v["published"])
        rec["p_text"] = _format_p(_num(v["p"]))
        if v["kind"] == "categorical":
            sub = summary.levels[summary.levels["variable"] == v["variable"]]
            rec["levels"] = {
                lv: {g: {"n": int(r["n"]), "percent": _num(r["percent"])}
                     for g, r in sub[sub["level"] == lv].set_index("group").iterrows()}
                for lv in dict.fromkeys(sub["level"])}
        else:
            rec["summary"] = summary.continuous[v["variable"]]
        rows[v["variable"]] = rec

    var = summary.variables
    smd = var["smd"].astype(float)
    pvals = pd.to_numeric(var["p"], errors="coerce")
    imax = smd.idxmax() if smd.notna().any() else None
    imin = pvals.idxmin() if pvals.notna().any() else None
    text = {
        "rule": RULE_DESCRIPTIONS[summary.rule],
        "n_rows": str(len(var)),
        "n_published_rows": str(int(var["published"].sum())),
        "n_overall": str(summary.arm_n[OVERALL]),
        **{f"n_{_key(g)}": str(summary.arm_n[g]) for g in summary.arms},
        "n_p_below_005": str(int((pvals < 0.05).sum())),
        "min_p": _format_p(_num(pvals.min())) if imin is not None else "-",
        "min_p_variable": var.loc[imin, "label"] if imin is not None else "-",
        "max_smd": _fmt(_num(smd.max()), 3) if imax is not None else "-",
        "max_smd_variable": var.loc[imax, "label"] if imax is not None else "-",
        "n_smd_above_01": str(int((smd >= SMD_THRESHOLD).sum())),
        "smd_above_01_variables": ", ".join(var.loc[smd >= SMD_THRESHOLD, "label"]) or "none",
        "histology_correction": CORRECTION_NOTE,
        "histology_printed": " and ".join(
            f"{lv} {fix[0]}" for (lab, lv, _), fix in PUBLISHED_CORRECTIONS.items()
            if lab == "Histology"),
        "histology_corrected": " and ".join(
            f"{lv} {fix[1]}" for (lab, lv, _), fix in PUBLISHED_CORRECTIONS.items()
            if lab == "Histology"),
    }
    out = {
        "rule": summary.rule,
        "rule_description": RULE_DESCRIPTIONS[summary.rule],
        "arms": list(summary.arms),
        "n": dict(summary.arm_n),
        "order": list(var["variable"]),
        "rows": rows,
        "tests_used": list(dict.fromkeys(var.loc[var["test_key"] != "none", "test"])),
        "text": text,
    }
    if published is not None:
        counts = compare_with_published(summary, published)
        tests = compare_tests_with_published(summary, published)
        n_count_mm = int((counts["Mismatch"] == "Yes").sum())
        n_test_mm = int((tests["Mismatch"] == "Yes").sum())
        out["comparison"] = {
            "levels_compared": int((counts["Mismatch"] != "n/a").sum()),
            "level_mismatches": n_count_mm,
            "mismatched_rows": [f"{r['Characteristic']}: {r['Level']}"
                                for _, r in counts[counts["Mismatch"] == "Yes"].iterrows()],
            "tests_compared": int((tests["Mismatch"] != "n/a").sum()),
            "test_mismatches": n_test_mm,
            "corrections": CORRECTION_NOTE,
        }
        hist = next((it for it in _published_table1(published) if it["variable"] == "Histology"),
                    None)
        if hist is not None:
            text["histology_published_statistic"] = _fmt(hist.get("chi2"), 3)
            text["histology_published_p"] = _format_p(hist.get("p"))
        text["n_level_mismatches"] = str(n_count_mm)
        text["n_levels_compared"] = str(out["comparison"]["levels_compared"])
        text["n_test_mismatches"] = str(n_test_mm)
        text["n_tests_compared"] = str(out["comparison"]["tests_compared"])
    return out
