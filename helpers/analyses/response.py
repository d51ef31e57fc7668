"""Tumour response: best overall response, objective response and disease control by arm.

Study and analysis plan in, typed results out (:class:`ResponseAnalysis`); no English here: the tables,
figure and sentences are made by :mod:`helpers.report.response`.

Layout: validate (:func:`prepare_responses`) -> count (:func:`count_best_response`) -> estimate and
test (:func:`binomial_ci`, :func:`rate_difference`, :func:`conditional_odds_ratio`,
:func:`compare_counts`, :func:`compare_response_rates`) -> the section's result
(:func:`analyse_response`, :func:`analyse_response_patients`).

Conventions
-----------
* Categories (RECIST 1.1 best overall response): CR, PR, SD, PD and NE (not evaluable). A missing best
  response is counted as NE (warning :class:`MissingResponseWarning` and a ``"missing_response"``
  :class:`~helpers.stats.types.Caveat`).
* ORR = (CR + PR) / denominator; DCR = (CR + PR + SD) / denominator. Denominator ``"all"`` (default):
  every treated patient of the arm, NE counted as non-responder (intention to treat);
  ``"evaluable"``: NE patients excluded (sensitivity analysis).
* Per-arm CI: exact Clopper-Pearson, as R ``binom.test(k, n)$conf.int`` (statsmodels
  ``proportion_confint(method="beta")``); method name ``"clopper-pearson"``. An arm without (evaluable)
  patients gives :class:`~helpers.stats.types.NotEstimable` (reason ``"no_patients"``).
* Between-arm difference = experimental minus reference arm, in proportions (x 100 = percentage
  points). Default CI ``"newcombe"``: Newcombe's hybrid score interval (Newcombe 1998, Stat Med
  17:873, method 10) from the two Wilson intervals without continuity correction (R: the Wilson limits
  of ``prop.test(k, n, correct = FALSE)`` combined by hand); alternative ``"wald"``: R
  ``prop.test(c(k1, k2), c(n1, n2), correct = FALSE)$conf.int``.
* Odds ratio (experimental vs reference): conditional maximum-likelihood estimate with the exact
  conditional CI, as R ``fisher.test(x)`` (scipy ``odds_ratio(kind="conditional")``; method name
  ``"conditional-mle"``). R's fisher.test finds the estimate and limits with ``uniroot`` at tolerance
  ~1e-4; scipy solves them to full precision, so the two agree to about 1e-4 relative (the tests
  compare at 1e-6 with fisher.test's own code run at a tight tolerance). Above ``LOGSPACE_MIN_N``
  patients the same equations are solved in log space (``gammaln``/``logsumexp`` over the support,
  ``brentq`` on the log odds ratio), which scales to 100,000 patients. With no responder in one arm the
  estimate is 0 (or infinite) and the corresponding limit 0 (or infinite); with no responder (or only
  responders) in either arm the odds ratio is :class:`~helpers.stats.types.NotEstimable` (reason
  ``"no_events"`` / ``"all_events"``) whereas R prints 0.
* P value: :func:`helpers.stats.contingency.test_association` with the Table 1 rule (``"cochran"``, formerly ``"paper"``:
  2 x 2 Pearson chi-square when every expected count is >= 5, Yates-corrected chi-square when
  1 <= minimum expected < 5, Fisher's exact test when the minimum expected count is < 1 or n < 40) or
  ``"modern"`` (Fisher's exact test whenever an expected count is < 5); the
  :class:`~helpers.stats.types.TestResult` carries the test's short name (``"pearson"``, ``"yates"``,
  ``"fisher"``). A table with an empty margin (no responder, or only responders, in both arms) admits a
  single table: P = 1 by Fisher's exact test, as R's fisher.test (chi-square is undefined there). An
  arm without patients leaves nothing to compare: the difference, odds ratio and test are NotEstimable
  (``"empty_arm"``).
"""
from __future__ import annotations

import functools
import math
import warnings
from dataclasses import dataclass, field
from typing import Literal, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.stats.contingency import odds_ratio as _scipy_odds_ratio
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint

from helpers.stats.contingency import test_association
from helpers.stats.types import Caveat, Estimate, NotEstimable, TestResult

__all__ = [
    "RESPONSE_CATEGORIES", "ENDPOINTS", "DENOMINATORS", "DIFFERENCE_METHODS", "RATE_CI_METHOD",
    "ODDS_RATIO_METHOD", "DEFAULT_CHOICES", "ResponseDataError", "MissingResponseWarning",
    "RateComparison", "ResponseAnalysis", "prepare_responses", "count_best_response", "binomial_ci",
    "rate_difference", "conditional_odds_ratio", "compare_counts", "compare_response_rates",
    "analyse_response_patients", "analyse_response", "study_arms",
]

#: RECIST 1.1 best overall response categories, in table order.
RESPONSE_CATEGORIES: tuple[str, ...] = ("CR", "PR", "SD", "PD", "NE")
#: Endpoint -> categories counted as events.
ENDPOINTS: dict[str, tuple[str, ...]] = {"orr": ("CR", "PR"), "dcr": ("CR", "PR", "SD")}
#: Denominators: every treated patient ("all", NE = non-responder) or the evaluable ones (NE excluded).
DENOMINATORS: tuple[str, ...] = ("all", "evaluable")
#: CI methods of the between-arm difference.
DIFFERENCE_METHODS: tuple[str, ...] = ("newcombe", "wald")
RATE_CI_METHOD = "clopper-pearson"
ODDS_RATIO_METHOD = "conditional-mle"
#: The choices of the analysis plan's ``response`` block and their defaults (analysis.yaml).
DEFAULT_CHOICES: dict = {"denominator": "all", "test_rule": "cochran", "difference_ci": "newcombe",
                         "sensitivity_rows": True, "level": 0.95}

Denominator = Literal["all", "evaluable"]
Rule = Literal["cochran", "modern", "paper"]
RateResult = Estimate | NotEstimable


class ResponseDataError(ValueError):
    """The patient table lacks a needed column or holds a response code outside CR/PR/SD/PD/NE."""


class MissingResponseWarning(UserWarning):
    """Some patients have no best overall response recorded; they are counted as NE."""



# ----------------------------------------------------------------------------- validation
def prepare_responses(patients: pd.DataFrame, arm_col: str = "arm",
                      response_col: str = "best_response",
                      arm_order: Sequence[str] | None = None) -> pd.DataFrame:
    """Validated copy of ``patients[[arm, best_response]]`` with both columns Categorical.

    Missing responses become "NE" (with a :class:`MissingResponseWarning`; ``attrs["n_missing"]``
    holds their number). The arm order is ``arm_order`` if given, else the Categorical order of
    ``arm_col``, else sorted; the first arm is the reference. An arm of the order without any patient
    is kept (its counts are 0).

    Raises
    ------
    ResponseDataError
        Missing columns, a missing arm, arms outside the order, not two arms, or response codes
        outside :data:`RESPONSE_CATEGORIES` (the message lists the offending rows).
    """
    missing = [c for c in (arm_col, response_col) if c not in patients.columns]
    if missing:
        raise ResponseDataError(f"patient table lacks column(s) {missing}")
    frame = patients[[arm_col, response_col]].copy()
    frame.columns = ["arm", "best_response"]
    if frame["arm"].isna().any():
        rows = list(frame.index[frame["arm"].isna()][:10])
        raise ResponseDataError(f"column {arm_col!r}: missing arm in rows {rows}")
    values = frame["best_response"].astype("object")
    na = values.isna()
    n_missing = int(na.sum())
    if n_missing:
        warnings.warn(f"{n_missing} patient{'' if n_missing == 1 else 's'} without a best overall response "
                      f"{'is' if n_missing == 1 else 'are'} counted as NE",
                      MissingResponseWarning, stacklevel=2)
        values = values.where(~na, "NE")
    values = values.astype(str).str.strip().str.upper()
    bad = ~values.isin(RESPONSE_CATEGORIES)
    if bad.any():
        offending = {idx: patients.loc[idx, response_col] for idx in frame.index[bad][:10]}
        raise ResponseDataError(
            f"column {response_col!r}: codes must be one of {list(RESPONSE_CATEGORIES)}; "
            f"offending rows (index: value) {offending}")
    frame["best_response"] = pd.Categorical(values, categories=list(RESPONSE_CATEGORIES))
    if arm_order is not None:
        order = [str(a) for a in arm_order]
    elif isinstance(patients[arm_col].dtype, pd.CategoricalDtype):
        order = [str(a) for a in patients[arm_col].cat.categories]
    else:
        order = sorted(frame["arm"].astype(str).unique())
    unknown = sorted(set(frame["arm"].astype(str)) - set(order))
    if unknown:
        raise ResponseDataError(f"column {arm_col!r}: arms {unknown} not in the arm order {order}")
    if len(order) != 2:
        raise ResponseDataError(f"two arms are needed for the comparison, got {order}")
    frame["arm"] = pd.Categorical(frame["arm"].astype(str), categories=order)
    frame.attrs["n_missing"] = n_missing
    return frame


# ----------------------------------------------------------------------------- counting
def count_best_response(patients: pd.DataFrame, **kwargs) -> pd.DataFrame:
    """Best overall response counts per arm, long format.

    Parameters
    ----------
    patients : DataFrame
        One row per patient with ``arm`` and ``best_response``; ``kwargs`` go to
        :func:`prepare_responses`. R: ``table(factor(best_response, levels = c("CR", "PR", "SD", "PD",
        "NE")), arm)``.

    Returns
    -------
    DataFrame
        Columns ``arm``, ``category``, ``n`` (patients), ``total`` (patients of the arm) and
        ``percent`` (of all patients of the arm; NaN for an arm without patients), one row per
        arm x category (zeros included), arms in order (reference first).
    """
    return _count_prepared(prepare_responses(patients, **kwargs))


def _count_prepared(frame: pd.DataFrame) -> pd.DataFrame:
    arms = list(frame["arm"].cat.categories)
    table = pd.crosstab(frame["best_response"], frame["arm"], dropna=False)
    table = table.reindex(index=list(RESPONSE_CATEGORIES), columns=arms, fill_value=0)
    long = table.stack().rename("n").reset_index()
    long.columns = ["category", "arm", "n"]
    totals = frame["arm"].value_counts().reindex(arms, fill_value=0)
    long["total"] = long["arm"].map(totals).astype(int)
    long["percent"] = np.where(long["total"] > 0, 100.0 * long["n"] / long["total"].clip(lower=1), np.nan)
    long["arm"] = pd.Categorical(long["arm"], categories=arms)
    long["category"] = pd.Categorical(long["category"], categories=list(RESPONSE_CATEGORIES))
    return long.sort_values(["arm", "category"], ignore_index=True)[["arm", "category", "n", "total", "percent"]]


# ----------------------------------------------------------------------------- estimates
def binomial_ci(k: int, n: int, level: float = 0.95, what: str = "rate") -> RateResult:
    """Rate k/n with its exact Clopper-Pearson CI.

    R: ``binom.test(k, n)$conf.int`` (statsmodels ``proportion_confint(method="beta")``).

    Returns
    -------
    Estimate or NotEstimable
        ``Estimate(value=k/n, lower, upper, level, method="clopper-pearson")`` as proportions; lower is
        0 when k = 0 and upper is 1 when k = n. ``NotEstimable(what, "no_patients")`` when n = 0.
    """
    if n == 0:
        return NotEstimable(what, "no_patients")
    lower, upper = proportion_confint(int(k), int(n), alpha=1 - level, method="beta")
    lower = 0.0 if k == 0 else float(lower)
    upper = 1.0 if k == n else float(upper)
    return Estimate(k / n, lower, upper, level, RATE_CI_METHOD)


def rate_difference(k1: int, n1: int, k2: int, n2: int, method: str = "newcombe",
                    level: float = 0.95) -> RateResult:
    """Difference of rates k1/n1 - k2/n2 with its CI, as proportions.

    ``method="newcombe"``: Newcombe (1998) hybrid score interval from Wilson limits without
    continuity correction (statsmodels ``confint_proportions_2indep(method="newcomb")``; R: computed
    from ``prop.test(k, n, correct = FALSE)$conf.int`` of each arm). ``method="wald"``: R
    ``prop.test(c(k1, k2), c(n1, n2), correct = FALSE)$conf.int``.

    Returns
    -------
    Estimate or NotEstimable
        ``Estimate(difference, lower, upper, level, method)``; ``NotEstimable("difference",
        "empty_arm")`` when a group has no patient.
    """
    if method not in DIFFERENCE_METHODS:
        raise ValueError(f"method must be one of {list(DIFFERENCE_METHODS)}, got {method!r}")
    if n1 == 0 or n2 == 0:
        return NotEstimable("difference", "empty_arm")
    sm_method = {"newcombe": "newcomb", "wald": "wald"}[method]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        lower, upper = confint_proportions_2indep(int(k1), int(n1), int(k2), int(n2), method=sm_method,
                                                  compare="diff", alpha=1 - level, correction=False)
    return Estimate(k1 / n1 - k2 / n2, float(lower), float(upper), level, method)


#: Tables with more patients than this use the log-space solver :func:`_conditional_odds_ratio_logspace`
#: (scipy's noncentral hypergeometric pmf is O(support) Python-level work per call and dominates at
#: 10,000+ patients); smaller tables keep scipy's ``odds_ratio(kind="conditional")``. Both solve the
#: same equations (R fisher.test's) to full precision; the tests check that they agree.
LOGSPACE_MIN_N = 1000


def _log_support_weights(k1: int, n1: int, k2: int, n2: int) -> tuple[np.ndarray, np.ndarray]:
    """Support x of the (1, 1) cell given the margins and log C(n1, x) + log C(n2, m - x)."""
    from scipy.special import gammaln

    m = k1 + k2
    x = np.arange(max(0, m - n2), min(n1, m) + 1, dtype=float)
    logw = (gammaln(n1 + 1) - gammaln(x + 1) - gammaln(n1 - x + 1)
            + gammaln(n2 + 1) - gammaln(m - x + 1) - gammaln(n2 - m + x + 1))
    return x, logw


@functools.lru_cache(maxsize=256)   # the summary and the table solve the same 2 x 2 tables
def _conditional_odds_ratio_logspace(k1: int, n1: int, k2: int, n2: int,
                                     level: float = 0.95) -> tuple[float, float, float]:
    """Conditional MLE and exact CI of the odds ratio, solved on the log odds ratio in log space.

    Same equations as R ``fisher.test`` and scipy ``odds_ratio(kind="conditional")``: with X the (1, 1)
    cell under Fisher's noncentral hypergeometric distribution (log pmf from ``gammaln`` and
    ``logsumexp`` over the whole support, so no overflow at any n), the estimate solves
    E[X; psi] = k1, the lower limit P(X >= k1; psi) = alpha/2 and the upper limit
    P(X <= k1; psi) = alpha/2, each by ``brentq`` on log psi to 1e-13. O(support) per evaluation.
    Edge cases as scipy: estimate (and the lower limit) 0 at the bottom of the support, estimate (and
    the upper limit) inf at the top, NaN with CI (0, inf) when a margin is empty.
    """
    from scipy.optimize import brentq
    from scipy.special import logsumexp

    if min(n1, n2, k1 + k2, n1 + n2 - k1 - k2) == 0:
        return (math.nan, 0.0, math.inf)
    x, logw = _log_support_weights(k1, n1, k2, n2)
    lo_x, hi_x = x[0], x[-1]
    upper_tail, lower_tail = x >= k1, x <= k1
    alpha = (1 - level) / 2

    def logp(theta: float) -> np.ndarray:
        z = logw + x * theta
        return z - logsumexp(z)

    def solve(func) -> float:
        """Root in theta of an increasing ``func``; brackets doubling psi as scipy's ``_solve``."""
        theta, step = 0.0, math.log(2.0)
        value = func(theta)
        if value == 0:
            return 1.0
        if value > 0:
            while func(theta - step) > 0:
                theta -= step
            lo, hi = theta - step, theta
        else:
            while func(theta + step) < 0:
                theta += step
            lo, hi = theta, theta + step
        return math.exp(brentq(func, lo, hi, xtol=1e-13, rtol=4 * np.finfo(float).eps, maxiter=200))

    log_alpha = math.log(alpha)
    if k1 == lo_x:
        estimate, lower = 0.0, 0.0
    else:
        lower = solve(lambda th: logsumexp(logp(th)[upper_tail]) - log_alpha)
    if k1 == hi_x:
        estimate, upper = math.inf, math.inf
    else:
        upper = solve(lambda th: log_alpha - logsumexp(logp(th)[lower_tail]))
    if lo_x < k1 < hi_x:
        estimate = solve(lambda th: float(np.exp(logp(th)) @ x) - k1)
    return (float(estimate), float(lower), float(upper))



def conditional_odds_ratio(k1: int, n1: int, k2: int, n2: int, level: float = 0.95) -> RateResult:
    """Odds ratio of the event in group 1 vs group 2: conditional MLE with exact CI.

    As R ``fisher.test(matrix(c(k1, k2, n1 - k1, n2 - k2), 2))`` (scipy
    ``odds_ratio(kind="conditional")``; above :data:`LOGSPACE_MIN_N` patients the same estimate and
    limits by :func:`_conditional_odds_ratio_logspace`, which scales to 100,000 patients).

    Returns
    -------
    Estimate or NotEstimable
        ``Estimate(or, lower, upper, level, method="conditional-mle")``. An arm without events gives 0
        (lower limit 0), an arm with only events gives inf (upper limit inf). When neither group has an
        event, or both have only events, ``NotEstimable("odds_ratio", "no_events" | "all_events")``
        (R reports 0 there); a group without patients gives ``NotEstimable("odds_ratio",
        "empty_arm")``.
    """
    table = np.array([[k1, n1 - k1], [k2, n2 - k2]], dtype=np.int64)
    if (table < 0).any():
        raise ValueError("counts must satisfy 0 <= k <= n")
    if n1 == 0 or n2 == 0:
        return NotEstimable("odds_ratio", "empty_arm")
    if k1 + k2 == 0:
        return NotEstimable("odds_ratio", "no_events")
    if k1 + k2 == n1 + n2:
        return NotEstimable("odds_ratio", "all_events")
    if n1 + n2 > LOGSPACE_MIN_N:
        est, lo, hi = _conditional_odds_ratio_logspace(int(k1), int(n1), int(k2), int(n2), float(level))
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            res = _scipy_odds_ratio(table, kind="conditional")
            ci = res.confidence_interval(confidence_level=level)
        est, lo, hi = float(res.statistic), float(ci.low), float(ci.high)
    return Estimate(est, lo, hi, level, ODDS_RATIO_METHOD)


# ----------------------------------------------------------------------------- comparison
@dataclass(frozen=True)
class RateComparison:
    """ORR or DCR in two arms with every between-arm statistic and the methods that made them.

    Attributes
    ----------
    endpoint : {"orr", "dcr"}
    denominator : {"all", "evaluable"}
    arms : (reference, experimental) arm codes
    k, n : arm -> events, arm -> denominator (patients)
    rate : arm -> Estimate (proportion, Clopper-Pearson CI) or NotEstimable
    difference : Estimate (experimental minus reference, proportion) or NotEstimable
    odds_ratio : Estimate (experimental vs reference) or NotEstimable
    test : TestResult (``test`` = "pearson", "yates" or "fisher") or NotEstimable
    min_expected : smallest expected count of the 2 x 2 table (None if untestable)
    rule : test-selection rule ("cochran" or "modern"; "paper" is the former name of "cochran")
    """

    endpoint: str
    denominator: str
    arms: tuple[str, str]
    k: dict[str, int]
    n: dict[str, int]
    rate: dict[str, RateResult]
    difference: RateResult
    odds_ratio: RateResult
    test: TestResult | NotEstimable
    min_expected: float | None
    rule: str
    level: float = 0.95

    @property
    def reference(self) -> str:
        return self.arms[0]

    @property
    def experimental(self) -> str:
        return self.arms[1]

    @property
    def p(self) -> float | None:
        """The two-sided P value (None when no test was possible)."""
        return self.test.p if isinstance(self.test, TestResult) else None


def compare_counts(k: Mapping[str, int], n: Mapping[str, int], arms: Sequence[str], endpoint: str = "orr",
                   denominator: str = "all", rule: Rule = "cochran", difference_method: str = "newcombe",
                   level: float = 0.95) -> RateComparison:
    """:class:`RateComparison` from event counts ``k`` and denominators ``n`` per arm.

    ``arms`` = (reference, experimental). The 2 x 2 table tested has rows experimental, reference and
    columns event, no event (R: ``chisq.test(x, correct = FALSE)``, ``chisq.test(x)`` or
    ``fisher.test(x)`` as the rule chooses).
    """
    ref, exp = arms
    rates = {arm: binomial_ci(k[arm], n[arm], level, endpoint) for arm in arms}
    diff = rate_difference(k[exp], n[exp], k[ref], n[ref], difference_method, level)
    odds = conditional_odds_ratio(k[exp], n[exp], k[ref], n[ref], level)
    min_expected = None
    if n[ref] == 0 or n[exp] == 0:
        test: TestResult | NotEstimable = NotEstimable("test", "empty_arm")
    else:
        table = np.array([[k[exp], n[exp] - k[exp]], [k[ref], n[ref] - k[ref]]])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")   # an untestable table gets Fisher's P = 1 below
            res = test_association(table, rule=rule)
        min_expected = res.min_expected
        if res.key == "none":
            # an empty margin (no responder, or only responders) admits one table only: Fisher's P = 1,
            # as R's fisher.test; chi-square is undefined there
            test = TestResult(statistic=None, df=None, p=1.0, test="fisher")
        else:
            test = TestResult(statistic=res.statistic, df=res.df, p=res.p, test=res.key)
    return RateComparison(endpoint=endpoint, denominator=denominator, arms=(ref, exp),
                          k={a: int(k[a]) for a in arms}, n={a: int(n[a]) for a in arms},
                          rate=rates, difference=diff, odds_ratio=odds, test=test,
                          min_expected=min_expected, rule=rule, level=level)


def compare_response_rates(patients: pd.DataFrame, endpoint: str = "orr",
                           denominator: Denominator = "all", rule: Rule = "cochran",
                           difference_method: str = "newcombe", level: float = 0.95,
                           **kwargs) -> RateComparison:
    """ORR (``endpoint="orr"``) or DCR (``"dcr"``) per arm and their comparison.

    Parameters
    ----------
    patients : DataFrame
        One row per patient with ``arm`` and ``best_response`` (see :func:`prepare_responses`, which
        receives ``kwargs``).
    denominator : {"all", "evaluable"}
        All treated patients (NE = non-responder) or only those evaluable (NE excluded).
    rule : {"cochran", "modern"}  ("paper": former name of "cochran")
        Test-selection rule of :func:`helpers.stats.contingency.test_association`.
    difference_method : {"newcombe", "wald"}
    """
    return _compare_prepared(prepare_responses(patients, **kwargs), endpoint, denominator, rule,
                             difference_method, level)


def _compare_prepared(frame: pd.DataFrame, endpoint: str, denominator: str, rule: Rule,
                      difference_method: str, level: float) -> RateComparison:
    if endpoint not in ENDPOINTS:
        raise ValueError(f"endpoint must be one of {list(ENDPOINTS)}, got {endpoint!r}")
    if denominator not in DENOMINATORS:
        raise ValueError(f"denominator must be one of {list(DENOMINATORS)}, got {denominator!r}")
    if denominator == "evaluable":
        frame = frame[frame["best_response"] != "NE"]
    arms = tuple(frame["arm"].cat.categories)
    event = frame["best_response"].isin(ENDPOINTS[endpoint])
    k = {arm: int(event[frame["arm"] == arm].sum()) for arm in arms}
    n = {arm: int((frame["arm"] == arm).sum()) for arm in arms}
    return compare_counts(k, n, arms, endpoint, denominator, rule, difference_method, level)


# ----------------------------------------------------------------------------- the section's result
@dataclass(frozen=True)
class ResponseAnalysis:
    """Everything the response section reports, with the choices that made it.

    Attributes
    ----------
    arms : (reference, experimental) arm codes
    counts : DataFrame
        Best overall response per arm (see :func:`count_best_response`).
    n : arm -> patients
    main : endpoint ("orr", "dcr") -> :class:`RateComparison` with the chosen denominator
    sensitivity : endpoint -> :class:`RateComparison` with the other denominator
    denominator, sensitivity_denominator : "all" / "evaluable"
    rule, difference_method, level : the choices
    sensitivity_rows : whether the table shows the sensitivity rows
    caveats : e.g. ``Caveat("missing_response", {"n": 1})`` (counted as NE)
    """

    arms: tuple[str, str]
    counts: pd.DataFrame
    n: dict[str, int]
    main: dict[str, RateComparison]
    sensitivity: dict[str, RateComparison]
    denominator: str
    sensitivity_denominator: str
    rule: str
    difference_method: str
    level: float = 0.95
    sensitivity_rows: bool = True
    caveats: tuple[Caveat, ...] = field(default_factory=tuple)

    @property
    def reference(self) -> str:
        return self.arms[0]

    @property
    def experimental(self) -> str:
        return self.arms[1]

    def category_count(self, arm: str, category: str) -> int:
        """Patients of ``arm`` whose best overall response is ``category``."""
        row = self.counts[(self.counts["arm"] == arm) & (self.counts["category"] == category)]
        return int(row["n"].iloc[0])


def analyse_response_patients(patients: pd.DataFrame, *, arm_order: Sequence[str] | None = None,
                              denominator: Denominator = "all", rule: Rule = "cochran",
                              difference_method: str = "newcombe", level: float = 0.95,
                              sensitivity_rows: bool = True, arm_col: str = "arm",
                              response_col: str = "best_response") -> ResponseAnalysis:
    """The response analysis of a patient table: counts, ORR and DCR with both denominators.

    Parameters
    ----------
    patients : DataFrame
        One row per patient with ``arm`` and ``best_response``.
    arm_order : sequence of two arm codes, optional
        Reference first (default: the Categorical order of the arm column).
    denominator : {"all", "evaluable"}
        Denominator of the main analysis; the other one is the sensitivity analysis.
    rule : {"cochran", "modern"}  ("paper": former name of "cochran")
        Test-selection rule (:func:`helpers.stats.contingency.test_association`).
    difference_method : {"newcombe", "wald"}
        CI of the difference of rates.
    level : float
        Confidence level of every interval.
    """
    if denominator not in DENOMINATORS:
        raise ValueError(f"denominator must be one of {list(DENOMINATORS)}, got {denominator!r}")
    frame = prepare_responses(patients, arm_col=arm_col, response_col=response_col, arm_order=arm_order)
    counts = _count_prepared(frame)
    arms = tuple(frame["arm"].cat.categories)
    other = next(d for d in DENOMINATORS if d != denominator)
    main = {ep: _compare_prepared(frame, ep, denominator, rule, difference_method, level) for ep in ENDPOINTS}
    sens = {ep: _compare_prepared(frame, ep, other, rule, difference_method, level) for ep in ENDPOINTS}
    n = {arm: int((frame["arm"] == arm).sum()) for arm in arms}
    caveats = []
    if frame.attrs.get("n_missing"):
        caveats.append(Caveat("missing_response", {"n": int(frame.attrs["n_missing"])}))
    for arm in arms:
        if n[arm] == 0:
            caveats.append(Caveat("not_estimable", {"arm": arm, "reason": "no_patients"}))
    return ResponseAnalysis(arms=arms, counts=counts, n=n, main=main, sensitivity=sens,
                            denominator=denominator, sensitivity_denominator=other, rule=rule,
                            difference_method=difference_method, level=level,
                            sensitivity_rows=bool(sensitivity_rows), caveats=tuple(caveats))


def study_arms(config) -> tuple[str, ...]:
    """Arm codes of a study configuration, reference first (``reference_arm``, then ``arm_order``)."""
    order = [str(a) for a in config.arm_order]
    reference = str(getattr(config, "reference_arm", None) or order[0])
    return (reference, *[a for a in order if a != reference])


def analyse_response(study, choices: Mapping | None = None) -> ResponseAnalysis:
    """The response section's result for a validated study and the plan's ``response`` choices.

    Parameters
    ----------
    study : helpers.data.load.Study
        Needs ``patients`` with ``arm`` and ``best_response``; arms from ``study.config`` (reference
        first).
    choices : mapping, optional
        The ``response`` block of analysis.yaml: ``denominator`` ("all" | "evaluable"), ``test_rule``
        ("cochran" | "modern"), ``difference_ci`` ("newcombe" | "wald"), ``sensitivity_rows`` (bool),
        ``level`` (confidence level). Missing keys take :data:`DEFAULT_CHOICES`.
    """
    c = {**DEFAULT_CHOICES, **dict(choices or {})}
    return analyse_response_patients(study.patients, arm_order=study_arms(study.config),
                                     denominator=c["denominator"], rule=c["test_rule"],
                                     difference_method=c["difference_ci"], level=float(c["level"]),
                                     sensitivity_rows=bool(c["sensitivity_rows"]))
