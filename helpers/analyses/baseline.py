"""Baseline characteristics by arm (Table 1): typed results for any study's data dictionary.

Split by responsibility, as R/Python ``tableone``: rows from configuration (:func:`baseline_rows`)
-> validate -> compute (:func:`summarise_baseline`, a :class:`BaselineTable`) -> (replication part
only) compare with a published table (:func:`compare_with_published`). Turning the result into a
Markdown table, its note and the prose strings is :mod:`helpers.report.baseline`'s job.

Which rows
----------
The rows are the study's dictionary (``study.dictionary``): by default every baseline covariate
in dictionary order, a covariate that is the source of a grouping shown as its grouping (``age`` ->
``age_group``); the analysis plan's ``baseline.rows`` may list the variables (covariates or
groupings) to show instead, in its order. Nothing about a particular study is written here.

Conventions
-----------
* Categorical rows: n (%) per level, percentages of the known values of the column (arm or
  overall); patients with the value missing are counted in an "Unknown" row (percent of all the
  patients of the column) and in the Missing count. Test: :func:`helpers.stats.contingency.
  test_association` under the plan's rule (``"cochran"``: Cochran's criteria; ``"modern"``:
  Fisher whenever an expected count is below 5).
* Continuous and count rows: n, mean, SD (n - 1), median, quartiles by linear interpolation (R
  ``quantile(type = 7)``), minimum and maximum per arm and overall; test: Wilcoxon rank-sum, as
  R's ``wilcox.test(x, y)`` default (exact if both groups < 50 values and no ties, otherwise the
  normal approximation with continuity and tie correction; W = Mann-Whitney U of the first arm);
  Kruskal-Wallis (R ``kruskal.test``) with more than two arms.
* Standardized mean difference (SMD), largest over pairs of arms, on known values: categorical,
  Yang and Dalton's (2012) multinomial SMD (first level dropped, as R tableone's ``ExtractSmd``);
  continuous, |m2 - m1| / sqrt((s1^2 + s2^2) / 2) (R tableone ``ExtractSmd``).
* Not computable: an arm with no known value of a variable gets "no data", and a continuous
  variable with fewer than two values in an arm gets its summaries but no test and no SMD; both
  are :class:`helpers.stats.types.NotEstimable` with a reason kind.

Why not ``tableone``
--------------------
``tableone.TableOne`` sorts levels and drops empty ones (Table 1 needs the dictionary's order and
a level with 0 patients), counts a missing categorical value as a level, offers no exact r x c
test and converts every cell to text (about 20 s at 100,000 patients); the SMD formulas are short
and written out here (checked against ``TableOne(smd=True)``'s public ``smd_table`` in the tests).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Optional, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from helpers.data.contract import CORE_COLUMNS
from helpers.stats.contingency import canonical_rule, test_association
from helpers.stats.types import Caveat, NotEstimable, TestResult

__all__ = [
    "BaselineDataError",
    "RowSpec",
    "LevelCount",
    "ContinuousSummary",
    "BaselineRow",
    "BaselineTable",
    "Correction",
    "PublishedComparison",
    "baseline_rows",
    "summarise_baseline",
    "rank_sum_test",
    "standardized_difference",
    "published_corrections",
    "published_table1",
    "compare_with_published",
    "compare_study_with_published",
    "study_published",
    "OVERALL",
    "UNKNOWN",
]

ARM_COLUMN = "arm"
#: Group name of the all-patients column (a results-file key, kept from earlier versions).
OVERALL = "Overall"
#: Level code of the row counting missing values.
UNKNOWN = "Unknown"
#: Core columns of the data contract: never Table 1 rows.
_CORE = set(CORE_COLUMNS)


class BaselineDataError(ValueError):
    """The patients table cannot produce Table 1 (missing columns, missing arm, bad values)."""


# ------------------------------------------------------------------------------------------
# typed results


@dataclass(frozen=True)
class RowSpec:
    """What one Table 1 row shows: a dictionary variable (covariate or grouping).

    kind : "categorical" or "continuous" (a dictionary ``count`` is summarised as continuous);
    levels : ((code, label), ...) in table order (categorical); unit : e.g. "cm" or None.
    """

    name: str
    label: str
    kind: str
    levels: tuple = ()
    unit: Optional[str] = None


@dataclass(frozen=True)
class LevelCount:
    """Counts of one level: ``n[group]`` and ``denominator[group]`` for ``Overall`` and each arm."""

    code: str
    label: str
    n: dict
    denominator: dict

    def percent(self, group: str) -> float:
        """Percent of the denominator (NaN when it is 0)."""
        d = self.denominator[group]
        return 100.0 * self.n[group] / d if d else math.nan


@dataclass(frozen=True)
class ContinuousSummary:
    """Summary of the known values of a continuous variable in one group (NaN when undefined)."""

    n: int
    mean: float
    sd: float
    median: float
    q1: float
    q3: float
    min: float
    max: float


@dataclass(frozen=True)
class BaselineRow:
    """One Table 1 variable, computed.

    levels : categorical rows, the level counts (known values) in table order; unknown : a
    LevelCount of the missing values (code ``Unknown``, denominator = all patients of the group)
    when any value is missing, else None; summaries : continuous rows, {group: ContinuousSummary};
    missing : {group: number missing}; test : TestResult (``test`` = "pearson", "yates",
    "fisher", "fisher_freeman_halton", "fisher_freeman_halton_mc" (its Monte Carlo exact P, for a
    table too large to enumerate), "wilcoxon", "kruskal") or NotEstimable; test_variant :
    "exact"/"asymptotic" for the Wilcoxon test; min_expected : smallest expected count of the
    tested table; smd : float (``inf`` for a binary covariate perfectly separated by arm) or
    NotEstimable.
    """

    spec: RowSpec
    missing: dict
    test: Any
    smd: Any
    levels: tuple = ()
    unknown: Optional[LevelCount] = None
    summaries: dict = field(default_factory=dict)
    min_expected: Optional[float] = None
    test_variant: str = ""
    caveats: tuple = ()

    @property
    def variable(self) -> str:
        return self.spec.name

    @property
    def label(self) -> str:
        return self.spec.label

    @property
    def kind(self) -> str:
        return self.spec.kind

    @property
    def p(self) -> Optional[float]:
        return self.test.p if isinstance(self.test, TestResult) else None

    @property
    def smd_value(self) -> Optional[float]:
        return None if isinstance(self.smd, NotEstimable) or self.smd is None else float(self.smd)


@dataclass(frozen=True)
class BaselineTable:
    """Table 1 computed: arms (codes, reference first), arm labels, n per group, rows in order."""

    arms: tuple
    arm_labels: dict
    n: dict
    rule: str
    rows: tuple
    continuous_summary: str = "median"

    @property
    def groups(self) -> list:
        return [OVERALL, *self.arms]

    def row(self, name: str) -> BaselineRow:
        for r in self.rows:
            if r.variable == name:
                return r
        raise KeyError(name)

    def by_label(self, label: str) -> Optional[BaselineRow]:
        return next((r for r in self.rows if r.label == label), None)

    @property
    def levels(self) -> pd.DataFrame:
        """Long counts: variable, label, level, level_label, group, n, denominator, percent."""
        out = []
        for r in self.rows:
            for lv in r.levels:
                for g in self.groups:
                    out.append({"variable": r.variable, "label": r.label, "level": lv.code,
                                "level_label": lv.label, "group": g, "n": lv.n[g],
                                "denominator": lv.denominator[g], "percent": lv.percent(g)})
        return pd.DataFrame(out, columns=["variable", "label", "level", "level_label", "group", "n",
                                          "denominator", "percent"])


# ------------------------------------------------------------------------------------------
# rows from the dictionary


def _get(obj: Any, key: str, default: Any = None) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(key, default)
    return getattr(obj, key, default)


def _typed_dictionary(dictionary: Any):
    """The dictionary as an object with ``covariates`` and ``groupings`` (any accepted shape).

    Accepts :class:`helpers.data.contract.Dictionary`, a parsed new-shape ``dictionary.yaml``
    (``covariates:``) or the earlier shape (``files: cohort: columns:`` and ``derived:``).
    """
    if dictionary is None:
        return None
    if hasattr(dictionary, "covariates"):
        return dictionary
    if isinstance(dictionary, Mapping) and "covariates" in dictionary:
        from helpers.data.contract import parse_dictionary

        return parse_dictionary(dict(dictionary))
    if isinstance(dictionary, Mapping) and "files" in dictionary:
        return _from_earlier_shape(dictionary)
    raise TypeError("dictionary must be a Dictionary or a parsed dictionary.yaml")


@dataclass(frozen=True)
class _Var:
    label: str
    type: str
    levels: dict = field(default_factory=dict)
    unit: Optional[str] = None
    timing: str = "baseline"
    source: Optional[str] = None


@dataclass(frozen=True)
class _EarlierDictionary:
    covariates: dict
    groupings: dict


def _from_earlier_shape(raw: Mapping) -> _EarlierDictionary:
    """Covariates and groupings of the earlier ``files``/``derived`` dictionary shape."""
    covariates = {}
    for name, spec in raw["files"]["cohort"]["columns"].items():
        if name in _CORE:
            continue
        kind = spec.get("type")
        if kind == "code":
            covariates[name] = _Var(spec.get("label", name), "categorical",
                                    {str(c): str(c) for c in spec.get("codes", [])})
        elif kind in ("integer", "number"):
            covariates[name] = _Var(spec.get("label", name), "continuous", unit=spec.get("unit"))
    groupings = {name: _Var(spec.get("label", name), "categorical",
                            {str(k): str(k) for k in spec["levels"]}, source=spec["source"])
                 for name, spec in (raw.get("derived") or {}).items()
                 if "source" in spec and "levels" in spec and spec["source"] in covariates}
    return _EarlierDictionary(covariates, groupings)


def _level_labels(dictionary, name: str, var) -> dict:
    levels = _get(var, "levels", {}) or {}
    if name in (_get(dictionary, "groupings", {}) or {}):   # grouping levels map to their rules
        labels = _get(var, "level_labels", {}) or {}
        return {str(k): str(labels.get(str(k), k)) for k in levels}
    return {str(k): str(v) for k, v in levels.items()}


def _spec_of(dictionary, name: str) -> RowSpec:
    var = (_get(dictionary, "covariates", {}) or {}).get(name)
    if var is None:
        var = (_get(dictionary, "groupings", {}) or {}).get(name)
    if var is None:
        var = (_get(dictionary, "exposures", {}) or {}).get(name)
    if var is None:
        raise BaselineDataError(f"'{name}' is not a variable of the data dictionary")
    kind = "categorical" if _get(var, "type", "categorical") == "categorical" else "continuous"
    levels = tuple(_level_labels(dictionary, name, var).items()) if kind == "categorical" else ()
    return RowSpec(name=name, label=str(_get(var, "label", name)), kind=kind, levels=levels,
                   unit=_get(var, "unit"))


def baseline_rows(dictionary: Any, rows: Optional[Sequence[str]] = None) -> list[RowSpec]:
    """The Table 1 rows of a data dictionary.

    Parameters
    ----------
    dictionary : Dictionary, or a parsed ``dictionary.yaml`` (either shape)
    rows : list of variable names, optional
        The plan's ``baseline.rows``: covariates or groupings, in table order. Default: every
        baseline covariate in dictionary order, each replaced by the groupings made from it.
    """
    d = _typed_dictionary(dictionary)
    if rows:
        return [_spec_of(d, str(name)) for name in rows]
    by_source: dict[str, list[str]] = {}
    for name, g in (_get(d, "groupings", {}) or {}).items():
        by_source.setdefault(str(_get(g, "source")), []).append(name)
    names = []
    for name, cov in d.covariates.items():
        if _get(cov, "timing", "baseline") != "baseline":
            continue
        names += by_source.get(name, [name])
    return [_spec_of(d, n) for n in names]


def _specs_from_frame(patients: pd.DataFrame) -> list[RowSpec]:
    """Rows inferred from a bare patients table: every non-core column (numeric = continuous)."""
    out = []
    for name in patients.columns:
        if name in _CORE or name.endswith(("_months", "_event")):
            continue
        col = patients[name]
        if pd.api.types.is_numeric_dtype(col) and not isinstance(col.dtype, pd.CategoricalDtype):
            out.append(RowSpec(name, name, "continuous"))
        else:
            out.append(RowSpec(name, name, "categorical"))
    return out


# ------------------------------------------------------------------------------------------
# statistics


def rank_sum_test(x: Iterable[float], y: Iterable[float]) -> tuple[float, float, str]:
    """Two-sided Wilcoxon rank-sum test as R's ``wilcox.test(x, y)`` default.

    Exact P when both samples have fewer than 50 values and there are no ties, otherwise the
    normal approximation with continuity correction and tie-corrected variance (R
    ``correct = TRUE``). Missing values are dropped.

    Returns
    -------
    (W, p, method) with W = sum of ranks of x minus n_x (n_x + 1) / 2, as R; method "exact" or
    "asymptotic".
    """
    x = np.asarray(pd.to_numeric(pd.Series(list(x), dtype=object), errors="coerce").dropna(), float)
    y = np.asarray(pd.to_numeric(pd.Series(list(y), dtype=object), errors="coerce").dropna(), float)
    if x.size == 0 or y.size == 0:
        return math.nan, math.nan, "none"
    ties = np.unique(np.concatenate([x, y])).size < x.size + y.size
    exact = x.size < 50 and y.size < 50 and not ties
    method = "exact" if exact else "asymptotic"
    res = stats.mannwhitneyu(x, y, alternative="two-sided", use_continuity=True, method=method)
    return float(res.statistic), float(min(1.0, res.pvalue)), method


def _categorical_smd(freq: np.ndarray) -> float:
    """Largest pairwise Yang-Dalton SMD of a (levels x arms) count table (levels all observed).

    Proportions per arm p_k; first level dropped; SMD = sqrt(d' S^-1 d), d = p2 - p1,
    S = (S1 + S2) / 2, S_k = diag(p_k) - p_k p_k'. R: ``tableone::ExtractSmd``.
    """
    props = freq / freq.sum(axis=0)
    best = math.nan
    for a in range(freq.shape[1]):
        for b in range(a + 1, freq.shape[1]):
            p1, p2 = props[1:, a], props[1:, b]
            covs = []
            for p in (p1, p2):
                c = -np.outer(p, p)
                c[np.diag_indices_from(c)] = p * (1 - p)
                covs.append(c)
            d = (p2 - p1).reshape(1, -1)
            pooled = (covs[0] + covs[1]) / 2
            try:
                value = float(np.sqrt((d @ np.linalg.inv(pooled) @ d.T)[0, 0]))
            except np.linalg.LinAlgError:
                value = _singular_smd(d.ravel(), pooled)
            best = value if math.isnan(best) else max(best, value)
    return best


def _singular_smd(d: np.ndarray, pooled: np.ndarray) -> float:
    """The SMD when the pooled covariance is singular: infinite when the difference ``d`` has a
    component the pooled covariance cannot explain (a level present in every patient of one arm and
    in none of the other: perfect separation), else sqrt(d' S^+ d) with the pseudo-inverse S^+.

    R's ``tableone`` uses ``MASS::ginv`` here and so reports 0 for a perfectly separated binary
    covariate; the binary SMD |p2 - p1| / sqrt((p1 (1 - p1) + p2 (1 - p2)) / 2) is 1 / 0 = infinity,
    which is what is reported (issue 15: the largest possible imbalance, never left out).
    """
    inverse = np.linalg.pinv(pooled)
    explained = pooled @ inverse @ d
    if np.abs(explained - d).max() > 1e-9:
        return math.inf
    return float(np.sqrt(max(0.0, float(d @ inverse @ d))))


def standardized_difference(values: pd.Series, arm: pd.Series, kind: str) -> Any:
    """Largest pairwise absolute SMD of ``values`` between the arms, on known values.

    Returns a float, or a :class:`NotEstimable` with reason ``"no_data_in_arm"`` (an arm without
    any known value), ``"fewer_than_two_values"`` (continuous, an arm with one value),
    ``"zero_variance"`` (continuous, constant within both arms but different means) or
    ``"singular"``. A categorical variable with one observed level has SMD 0. R:
    ``tableone::ExtractSmd(CreateTableOne(...))``.
    """
    known = values.notna().to_numpy()
    arm_codes, arms = pd.factorize(arm.astype(str), sort=True)
    per_arm = np.bincount(arm_codes[known & (arm_codes >= 0)], minlength=len(arms))
    if len(arms) < 2:
        return NotEstimable("smd", "single_arm")
    if (per_arm == 0).any():
        return NotEstimable("smd", "no_data_in_arm")
    if kind == "categorical":
        text_code, texts = _text_codes(values)
        keep = (text_code >= 0) & (arm_codes >= 0)
        freq = np.zeros((len(texts), len(arms)), dtype=float)
        np.add.at(freq, (text_code[keep], arm_codes[keep]), 1)
        freq = freq[freq.sum(axis=1) > 0]
        if freq.shape[0] < 2:
            return 0.0
        value = _categorical_smd(freq)
        return NotEstimable("smd", "singular") if math.isnan(value) else value
    if (per_arm < 2).any():
        return NotEstimable("smd", "fewer_than_two_values")
    x = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    groups = [x[known & (arm_codes == j)] for j in range(len(arms))]
    best = math.nan
    for a in range(len(groups)):
        for b in range(a + 1, len(groups)):
            m1, m2 = np.mean(groups[a]), np.mean(groups[b])
            s1, s2 = np.std(groups[a], ddof=1), np.std(groups[b], ddof=1)
            pooled = math.sqrt((s1 ** 2 + s2 ** 2) / 2)
            if pooled == 0:
                if m1 == m2:
                    value = 0.0
                else:
                    return NotEstimable("smd", "zero_variance")
            else:
                value = abs(m2 - m1) / pooled
            best = value if math.isnan(best) else max(best, value)
    return best


def _summary(v: np.ndarray) -> ContinuousSummary:
    if v.size == 0:
        return ContinuousSummary(0, *([math.nan] * 7))
    return ContinuousSummary(
        n=int(v.size), mean=float(np.mean(v)), sd=float(np.std(v, ddof=1)) if v.size > 1 else math.nan,
        median=float(np.median(v)), q1=float(np.percentile(v, 25)), q3=float(np.percentile(v, 75)),
        min=float(v.min()), max=float(v.max()))


# ------------------------------------------------------------------------------------------
# computation


def _validate(patients: pd.DataFrame, specs: Sequence[RowSpec], arms: Sequence[str]) -> None:
    problems = []
    if ARM_COLUMN not in patients:
        problems.append(f"column '{ARM_COLUMN}' is missing")
    else:
        arm = patients[ARM_COLUMN]
        if arm.isna().any():
            problems.append(f"'{ARM_COLUMN}' is missing in rows {list(patients.index[arm.isna()][:10])}")
        unknown = sorted(set(arm.dropna().astype(str)) - set(arms))
        if unknown:
            problems.append(f"'{ARM_COLUMN}' has values {unknown} not among the arms {list(arms)}")
    absent = [s.name for s in specs if s.name not in patients]
    if absent:
        problems.append(f"columns missing: {absent}")
    for s in specs:
        if s.kind == "continuous" and s.name in patients:
            bad = pd.to_numeric(patients[s.name], errors="coerce").isna() & patients[s.name].notna()
            if bad.any():
                problems.append(f"'{s.name}' has non-numeric values in rows {list(patients.index[bad][:10])}")
    if problems:
        raise BaselineDataError("patients table cannot make Table 1: " + "; ".join(problems))


def _level_order(col: pd.Series, spec: RowSpec) -> list[tuple[str, str]]:
    """(code, label) of the levels: the Categorical's order (or the dictionary's), then extra values."""
    labels = dict(spec.levels)
    if isinstance(col.dtype, pd.CategoricalDtype):
        codes = [str(c) for c in col.cat.categories]
    else:
        codes = list(labels)
    present = {str(v) for v in pd.unique(col.dropna())}
    codes += sorted(present - set(codes))
    return [(c, labels.get(c, c)) for c in codes]


def _text_codes(col: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Codes of the text ``str(value)`` of each value (-1 = missing) and the distinct texts.

    Values with equal text share a code (as ``col.astype(str)`` would group them); one conversion
    per distinct value, not per row.
    """
    codes, uniques = pd.factorize(col, use_na_sentinel=True)
    texts: dict[str, int] = {}
    to_text = np.array([texts.setdefault(str(u), len(texts)) for u in uniques] + [-1], dtype=np.int64)
    return to_text[codes], list(texts)


def _counts(col: pd.Series, codes: Sequence[str], arm_code: np.ndarray, n_arms: int) -> np.ndarray:
    """Counts (levels x arms) of the known values whose text is each level code."""
    text_code, texts = _text_codes(col)
    index = {c: i for i, c in enumerate(codes)}
    level_of_text = np.array([index.get(t, -1) for t in texts] + [-1], dtype=np.int64)
    level = level_of_text[text_code]
    keep = (level >= 0) & (arm_code >= 0)
    table = np.zeros((len(codes), n_arms), dtype=np.int64)
    np.add.at(table, (level[keep], arm_code[keep]), 1)
    return table


def _categorical_row(spec, col, arm_code, arms, arm_n, missing, rule, arm_series) -> BaselineRow:
    order = _level_order(col, spec)
    table = _counts(col, [c for c, _ in order], arm_code, len(arms))
    known = {OVERALL: int(table.sum()), **{a: int(table[:, j].sum()) for j, a in enumerate(arms)}}
    levels = tuple(
        LevelCount(code, label, {OVERALL: int(table[i].sum()), **{a: int(table[i, j]) for j, a in enumerate(arms)}},
                   dict(known))
        for i, (code, label) in enumerate(order))
    unknown = (LevelCount(UNKNOWN, UNKNOWN, dict(missing), dict(arm_n)) if missing[OVERALL] else None)
    caveats = []
    empty = [a for a in arms if known[a] == 0]
    min_e, variant = None, ""
    if empty:
        test = NotEstimable("test", "no_data_in_arm")
        caveats.append(Caveat("no_data_in_arm", {"variable": spec.name, "arms": empty}))
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")   # an untestable table is reported as "no test"
            res = test_association(table, rule=rule)
        if res.key == "none":
            test = NotEstimable("test", "single_level")
        else:
            test, min_e = res.result, res.min_expected
    smd = (NotEstimable("smd", "no_data_in_arm") if empty
           else standardized_difference(col, arm_series, "categorical"))
    return BaselineRow(spec=spec, missing=dict(missing), test=test, smd=smd, levels=levels, unknown=unknown,
                       min_expected=min_e, test_variant=variant, caveats=tuple(caveats))


def _continuous_row(spec, col, in_arm, arms, missing, arm_series) -> BaselineRow:
    x = pd.to_numeric(col, errors="coerce").to_numpy(dtype=float)
    known = ~np.isnan(x)
    summaries = {OVERALL: _summary(x[known]), **{a: _summary(x[known & in_arm[a]]) for a in arms}}
    counts = {a: summaries[a].n for a in arms}
    caveats, variant = [], ""
    if any(n == 0 for n in counts.values()):
        reason = "no_data_in_arm"
    elif any(n < 2 for n in counts.values()):
        reason = "fewer_than_two_values"
    else:
        reason = ""
    if reason:
        test: Any = NotEstimable("test", reason)
        smd: Any = NotEstimable("smd", reason)
        caveats.append(Caveat(reason, {"variable": spec.name, "arms": [a for a in arms if counts[a] < 2]}))
    else:
        if len(arms) == 2:
            w, p, variant = rank_sum_test(x[known & in_arm[arms[0]]], x[known & in_arm[arms[1]]])
            test = TestResult(w, None, p, "wilcoxon")
        else:
            h = stats.kruskal(*[x[known & in_arm[a]] for a in arms])
            test = TestResult(float(h.statistic), len(arms) - 1, float(h.pvalue), "kruskal")
        smd = standardized_difference(pd.Series(x, index=col.index), arm_series, "continuous")
    unknown = None
    if missing[OVERALL]:
        n_all = {OVERALL: len(x), **{a: int(in_arm[a].sum()) for a in arms}}
        unknown = LevelCount(UNKNOWN, UNKNOWN, dict(missing), n_all)
    return BaselineRow(spec=spec, missing=dict(missing), test=test, smd=smd, summaries=summaries,
                       unknown=unknown, test_variant=variant, caveats=tuple(caveats))


def _arms_of(study: Any, patients: pd.DataFrame, arms: Optional[Sequence[str]]) -> tuple[list[str], dict]:
    config = _get(study, "config")
    if arms is None and config is not None:
        arms = list(_get(config, "arm_order", []) or [])
    if not arms:
        arm = patients[ARM_COLUMN] if ARM_COLUMN in patients else pd.Series(dtype=object)
        arms = ([str(c) for c in arm.cat.categories] if isinstance(arm.dtype, pd.CategoricalDtype)
                else sorted(str(a) for a in arm.dropna().unique()))
    arms = [str(a) for a in arms]
    labels = {}
    for a in arms:
        label = None
        if config is not None and callable(getattr(config, "arm_label", None)):
            try:
                label = config.arm_label(a)
            except Exception:   # an arm unknown to the configuration keeps its code
                label = None
        labels[a] = str(label or a)
    return arms, labels


def summarise_baseline(data: Any, choices: Optional[Mapping] = None, *, dictionary: Any = None,
                       rule: Optional[str] = None, rows: Optional[Sequence[str]] = None,
                       arms: Optional[Sequence[str]] = None,
                       continuous_summary: Optional[str] = None) -> BaselineTable:
    """Counts, summaries, tests, missing values and SMDs of every Table 1 row.

    Parameters
    ----------
    data : Study or DataFrame
        A :class:`helpers.data.load.Study` (patients, dictionary and arms from it) or a patients
        table (one row per patient, column ``arm``).
    choices : mapping, optional
        The plan's ``baseline`` block (``helpers.config.load_plan(folder)["baseline"]``): keys
        ``test_rule`` ("cochran" default, or "modern"), ``rows`` (variables to show),
        ``continuous_summary`` ("median", "mean" or "both"). Keyword arguments override it.
    dictionary : the data dictionary when ``data`` is a DataFrame (default: rows inferred from
        the columns, numeric = continuous).
    arms : arm codes in column order, reference first (default: the study's, or the categories
        of ``arm``).

    Raises
    ------
    BaselineDataError
        Listing missing columns, missing/unknown arms, non-numeric continuous values.
    """
    choices = dict(choices or {})
    rule = canonical_rule(rule or choices.get("test_rule") or "cochran")
    rows = rows if rows is not None else choices.get("rows")
    continuous_summary = continuous_summary or choices.get("continuous_summary") or "median"
    if continuous_summary not in ("median", "mean", "both"):
        raise ValueError(f"continuous_summary must be 'median', 'mean' or 'both', got {continuous_summary!r}")
    if isinstance(data, pd.DataFrame):
        patients, study = data, None
    else:
        patients, study = data.patients, data
        dictionary = dictionary if dictionary is not None else data.dictionary
    if dictionary is not None:
        specs = baseline_rows(dictionary, rows)
    else:
        specs = _specs_from_frame(patients)
        if rows:
            by_name = {s.name: s for s in specs}
            specs = [by_name.get(r, RowSpec(r, r, "categorical")) for r in rows]
    arm_codes, arm_labels = _arms_of(study, patients, arms)
    _validate(patients, specs, arm_codes)
    arm_code = pd.Categorical(patients[ARM_COLUMN].astype(str), categories=arm_codes).codes.astype(np.int64)
    in_arm = {a: arm_code == j for j, a in enumerate(arm_codes)}
    arm_n = {OVERALL: int(len(patients)), **{a: int(in_arm[a].sum()) for a in arm_codes}}
    arm_series = patients[ARM_COLUMN].astype(str)
    out = []
    for spec in specs:
        col = patients[spec.name]
        isna = col.isna().to_numpy()
        missing = {OVERALL: int(isna.sum()), **{a: int((isna & in_arm[a]).sum()) for a in arm_codes}}
        if spec.kind == "categorical":
            out.append(_categorical_row(spec, col, arm_code, arm_codes, arm_n, missing, rule, arm_series))
        else:
            out.append(_continuous_row(spec, col, in_arm, arm_codes, missing, arm_series))
    return BaselineTable(arms=tuple(arm_codes), arm_labels=arm_labels, n=arm_n, rule=rule, rows=tuple(out),
                         continuous_summary=continuous_summary)


# ------------------------------------------------------------------------------------------
# replication part: comparison with a published table (only with published.yaml)


@dataclass(frozen=True)
class Correction:
    """A printed cell of the published table replaced by another value, with the reason (data).

    From the plan's ``baseline.published_corrections`` (or ``published.yaml`` ``table1_corrections``):
    ``{key, variable, column, printed: {level: n}, corrected: {level: n}, reason}``.
    """

    key: str
    variable: str
    column: str
    printed: dict
    corrected: dict
    reason: str = ""


@dataclass(frozen=True)
class PublishedComparison:
    """Reproduced vs published Table 1.

    counts : one row per published level x group: label, level, group, reproduced, published
        (after correction), printed, corrected (bool), compared (bool: numbers published).
    tests : one row per published variable: label, variable, test (TestResult or NotEstimable or
        None), published_statistic, published_p, compared (bool), statistic_matches, p_matches.
    corrections : the corrections applied.
    """

    counts: pd.DataFrame
    tests: pd.DataFrame
    corrections: tuple
    groups: tuple

    @property
    def level_mismatches(self) -> pd.DataFrame:
        c = self.counts[self.counts["compared"]]
        bad = c[c["reproduced"].astype(object) != c["published"].astype(object)]
        return bad.drop_duplicates(["label", "level"])

    @property
    def levels_compared(self) -> int:
        return int(self.counts.loc[self.counts["compared"], ["label", "level"]].drop_duplicates().shape[0])

    @property
    def tests_compared(self) -> int:
        return int(self.tests["compared"].sum())

    @property
    def test_mismatches(self) -> int:
        t = self.tests[self.tests["compared"]]
        return int((~(t["statistic_matches"] & t["p_matches"])).sum())


def published_table1(published: Any) -> Optional[list]:
    """The ``table1`` list of a parsed published.yaml (or a path to it); None when absent."""
    if published is None:
        return None
    if isinstance(published, (str, bytes)) or hasattr(published, "read_text"):
        import yaml
        from pathlib import Path

        published = yaml.safe_load(Path(published).read_text(encoding="utf-8"))
    if isinstance(published, Mapping):
        published = published.get("table1")
    return None if published is None else list(published)


def published_corrections(choices: Optional[Mapping] = None, published: Any = None) -> tuple:
    """Corrections of printed cells: ``published.yaml`` ``table1_corrections``, else the plan's
    ``baseline.published_corrections`` (data, never code)."""
    raw = None
    if isinstance(published, Mapping):
        raw = published.get("table1_corrections")
    if raw is None and choices:
        raw = choices.get("published_corrections")
    out = []
    for i, item in enumerate(raw or []):
        out.append(Correction(key=str(item.get("key", f"correction{i + 1}")), variable=str(item["variable"]),
                              column=str(item["column"]),
                              printed={str(k): int(v) for k, v in item["printed"].items()},
                              corrected={str(k): int(v) for k, v in item["corrected"].items()},
                              reason=str(item.get("reason", "")).strip()))
    return tuple(out)


def _same(a: Optional[float], b: Optional[float]) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return round(float(a), 3) == round(float(b), 3)


def compare_with_published(table: BaselineTable, published: Any,
                           corrections: Sequence[Correction] = (), correct: bool = True) -> PublishedComparison:
    """Reproduced and published Table 1: counts per level and group, and the test per variable.

    Published variables are matched by ``column`` (a variable name) when the published entry has
    one, else by label; published group ``total`` is ``Overall``. Counts match when equal; a test
    matches when statistic and P agree after rounding both to three decimals (a printed "-"
    statistic matches a test without statistic).
    """
    items = published_table1(published) or []
    fixes = {(c.variable, lv, c.column): (c.printed[lv], c.corrected[lv])
             for c in corrections for lv in c.corrected} if correct else {}
    count_rows, test_rows, groups = [], [], []
    for item in items:
        label = str(item["variable"])
        row = table.row(item["column"]) if item.get("column") in {r.variable for r in table.rows} \
            else table.by_label(label)
        ours = {} if row is None else {lv.code: lv for lv in row.levels}
        levels = item.get("levels")
        if levels is None:
            for code, lv in ours.items():
                for g in table.groups:
                    count_rows.append({"label": label, "level": code, "group": g, "reproduced": lv.n[g],
                                       "published": None, "printed": None, "corrected": False,
                                       "compared": False})
        else:
            for code, cells in levels.items():
                for col, value in cells.items():
                    g = OVERALL if col == "total" else str(col)
                    if g not in groups:
                        groups.append(g)
                    fix = fixes.get((label, str(code), str(col)))
                    pub, corrected = value, False
                    if fix is not None and fix[0] == value:
                        pub, corrected = fix[1], True
                    lv = ours.get(str(code))
                    count_rows.append({"label": label, "level": str(code), "group": g,
                                       "reproduced": None if lv is None or g not in lv.n else lv.n[g],
                                       "published": pub, "printed": value, "corrected": corrected,
                                       "compared": True})
        test = None if row is None else row.test
        stat = test.statistic if isinstance(test, TestResult) else None
        p = test.p if isinstance(test, TestResult) else None
        compared = item.get("p") is not None
        test_rows.append({"label": label, "variable": None if row is None else row.variable, "test": test,
                          "published_statistic": item.get("chi2"), "published_p": item.get("p"),
                          "compared": compared,
                          "statistic_matches": compared and _same(stat, item.get("chi2")),
                          "p_matches": compared and p is not None and _same(p, item.get("p"))})
    counts = pd.DataFrame(count_rows, columns=["label", "level", "group", "reproduced", "published", "printed",
                                               "corrected", "compared"], dtype=object)
    counts = counts.astype({"corrected": bool, "compared": bool})
    tests = pd.DataFrame(test_rows, columns=["label", "variable", "test", "published_statistic", "published_p",
                                             "compared", "statistic_matches", "p_matches"])
    return PublishedComparison(counts=counts, tests=tests, corrections=tuple(corrections), groups=tuple(groups))


def study_published(study: Any) -> Optional[Mapping]:
    """The study's published values (``study.published``) when the replication part is present, else None.

    Uses ``study.has("replication")``; a Study without that method falls back to the data folder's
    ``published.yaml``.
    """
    if callable(getattr(study, "has", None)):
        return study.published if study.has("replication") else None
    folder = getattr(study, "folder", None)
    if folder is not None:
        from pathlib import Path

        path = Path(folder) / "published.yaml"
        if path.exists():
            import yaml

            return yaml.safe_load(path.read_text(encoding="utf-8"))
    return None


def compare_study_with_published(study: Any, table: BaselineTable,
                                 choices: Optional[Mapping] = None) -> Optional[PublishedComparison]:
    """Replication part: Table 1 against the published one, or None when the study has no published values.

    Corrections of printed cells come from data (``published.yaml`` ``table1_corrections`` or the
    plan's ``baseline.published_corrections``) and are applied unless ``correct_published`` is false.
    """
    published = study_published(study)
    if published is None or published_table1(published) is None:
        return None
    choices = dict(choices or {})
    return compare_with_published(table, published, published_corrections(choices, published),
                                  correct=bool(choices.get("correct_published", True)))

