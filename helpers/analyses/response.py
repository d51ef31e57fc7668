"""Tumour response (RECIST 1.1): best overall response, objective response and disease control.

Layout: validate (:func:`prepare_responses`) -> compute (:func:`count_best_response`,
:func:`binomial_ci`, :func:`rate_difference`, :func:`conditional_odds_ratio`,
:func:`compare_response_rates`) -> build tables (:func:`make_response_table`,
:func:`make_published_response_table`) and the figure (:func:`plot_response_categories`) ->
results payload (:func:`summarise_response`).

Conventions
-----------
* Categories: CR, PR, SD, PD and NE (not evaluable). A missing best response is counted as NE
  (warning :class:`MissingResponseWarning`).
* ORR = (CR + PR) / denominator; DCR = (CR + PR + SD) / denominator. Denominator ``"all"``
  (default): every treated patient of the arm, NE counted as non-responder (intention to treat);
  ``"evaluable"``: NE patients excluded (sensitivity analysis).
* Per-arm 95% CI: exact Clopper-Pearson, as R ``binom.test(k, n)$conf.int``
  (statsmodels ``proportion_confint(method="beta")``).
* Between-arm difference = experimental minus reference arm (CMT+ICI - CMT), in proportions
  (x 100 = percentage points). Default CI: Newcombe's hybrid score interval (Newcombe 1998,
  Stat Med 17:873, method 10) from the two Wilson intervals without continuity correction
  (R: the Wilson limits of ``prop.test(k, n, correct = FALSE)`` combined by hand); alternative
  ``"wald"``: R ``prop.test(c(k1, k2), c(n1, n2), correct = FALSE)$conf.int``.
* Odds ratio (experimental vs reference): conditional maximum-likelihood estimate with the exact
  conditional CI, as R ``fisher.test(x)`` (scipy ``odds_ratio(kind="conditional")``). R's
  fisher.test finds the estimate and limits with ``uniroot`` at tolerance ~1e-4; scipy solves
  them to full precision, so the two agree to about 1e-4 relative (the tests compare at 1e-6 with
  fisher.test's own code run at a tight tolerance). Above ``LOGSPACE_MIN_N`` patients the same
  equations are solved in log space (``gammaln``/``logsumexp`` over the support, ``brentq`` on the
  log odds ratio), which scales to 100,000 patients. With no responder in one arm the estimate is 0
  (or infinite) and the corresponding limit 0 (or infinite); with no responder (or only responders)
  in either arm the estimate is undefined (NaN, stored as null) whereas R prints 0.
* P value: :func:`helpers.stats.contingency.test_association` with the Table 1 rule (``"paper"``:
  2 x 2 Pearson chi-square when every expected count is >= 5, Yates-corrected chi-square when
  1 <= minimum expected < 5, Fisher's exact test when the minimum expected count is < 1 or
  n < 40) or ``"modern"`` (Fisher's exact test whenever an expected count is < 5). A table with
  an empty margin (no responder, or only responders, in both arms) admits a single table: P = 1
  by Fisher's exact test, as R's fisher.test (chi-square is undefined there).
"""
from __future__ import annotations

import functools
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Sequence

import numpy as np
import pandas as pd
from scipy.stats.contingency import odds_ratio as _scipy_odds_ratio
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint

from helpers.stats.contingency import test_association
from helpers.report.formatting import format_ci, format_n_pct, format_number, format_p

__all__ = [
    "RESPONSE_CATEGORIES", "CATEGORY_LABELS", "ENDPOINTS", "ENDPOINT_LABELS", "DENOMINATORS",
    "DIFFERENCE_METHODS", "CATEGORY_COLOURS", "ResponseDataError", "MissingResponseWarning",
    "RateComparison", "prepare_responses", "count_best_response", "binomial_ci",
    "rate_difference", "conditional_odds_ratio", "compare_counts", "compare_response_rates",
    "make_response_table", "response_table_footnote", "plot_response_categories",
    "summarise_response", "load_published_statements", "make_published_response_table",
    "arm_key",
]

#: RECIST 1.1 best overall response categories, in table order.
RESPONSE_CATEGORIES: tuple[str, ...] = ("CR", "PR", "SD", "PD", "NE")
CATEGORY_LABELS = {"CR": "Complete response (CR)", "PR": "Partial response (PR)",
                   "SD": "Stable disease (SD)", "PD": "Progressive disease (PD)",
                   "NE": "Not evaluable (NE)"}
#: Endpoint -> categories counted as events.
ENDPOINTS = {"orr": ("CR", "PR"), "dcr": ("CR", "PR", "SD")}
ENDPOINT_LABELS = {"orr": "Objective response rate (CR + PR)",
                   "dcr": "Disease control rate (CR + PR + SD)"}
ENDPOINT_SHORT = {"orr": "ORR", "dcr": "DCR"}
#: Denominator code -> wording used in tables and text.
DENOMINATORS = {"all": "all treated patients (NE counted as non-responders)",
                "evaluable": "patients evaluable for response (NE excluded)"}
DIFFERENCE_METHODS = {"newcombe": "Newcombe hybrid score interval (Wilson limits, no continuity correction)",
                      "wald": "Wald interval (no continuity correction)"}
ODDS_RATIO_METHOD = "conditional maximum-likelihood estimate with exact conditional CI (as R fisher.test)"
RATE_CI_METHOD = "exact Clopper-Pearson (as R binom.test)"

#: Colours of the response categories: Okabe-Ito hues ordered from best to worst response
#: (bluish green, sky blue, yellow, reddish purple) and light grey for NE; chosen apart from the
#: arm colours (blue, vermillion) so that a category is never read as an arm.
CATEGORY_COLOURS = {"CR": "#009E73", "PR": "#56B4E9", "SD": "#F0E442", "PD": "#CC79A7",
                    "NE": "#D9D9D9"}

Denominator = Literal["all", "evaluable"]
Rule = Literal["paper", "modern"]


class ResponseDataError(ValueError):
    """The patient table lacks a needed column or holds a response code outside CR/PR/SD/PD/NE."""


class MissingResponseWarning(UserWarning):
    """Some patients have no best overall response recorded; they are counted as NE."""


def arm_key(arm: str) -> str:
    """Arm name usable in a dotted results path: "CMT+ICI" -> "CMT_ICI"."""
    return "".join(ch if ch.isalnum() else "_" for ch in str(arm)).strip("_")


# ----------------------------------------------------------------------------- validation
def prepare_responses(patients: pd.DataFrame, arm_col: str = "arm",
                      response_col: str = "best_response",
                      arm_order: Sequence[str] | None = None) -> pd.DataFrame:
    """Validated copy of ``patients[[arm, best_response]]`` with both columns Categorical.

    Missing responses become "NE" (with a :class:`MissingResponseWarning`). The arm order is the
    Categorical order of ``arm_col`` if it has one, else ``arm_order``, else sorted; the first arm
    is the reference.

    Raises
    ------
    ResponseDataError
        Missing columns, a missing arm, or response codes outside :data:`RESPONSE_CATEGORIES`
        (the message lists the offending rows).
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
    if na.any():
        warnings.warn(f"{int(na.sum())} patient(s) without a best overall response are counted as NE",
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
    if isinstance(patients[arm_col].dtype, pd.CategoricalDtype):
        order = list(patients[arm_col].cat.categories)
    elif arm_order is not None:
        order = list(arm_order)
    else:
        order = sorted(frame["arm"].astype(str).unique())
    unknown = sorted(set(frame["arm"].astype(str)) - set(order))
    if unknown:
        raise ResponseDataError(f"column {arm_col!r}: arms {unknown} not in the arm order {order}")
    if len(order) != 2:
        raise ResponseDataError(f"two arms are needed for the comparison, got {order}")
    frame["arm"] = pd.Categorical(frame["arm"].astype(str), categories=order)
    return frame


# ----------------------------------------------------------------------------- statistics
def count_best_response(patients: pd.DataFrame, **kwargs) -> pd.DataFrame:
    """Best overall response counts per arm, long format.

    Returns
    -------
    DataFrame
        Columns ``arm``, ``category``, ``n`` (patients), ``total`` (patients of the arm) and
        ``percent`` (of all patients of the arm), one row per arm x category (zeros included).
    """
    return _count_prepared(prepare_responses(patients, **kwargs))


def _count_prepared(frame: pd.DataFrame) -> pd.DataFrame:
    table = pd.crosstab(frame["best_response"], frame["arm"], dropna=False)
    table = table.reindex(index=list(RESPONSE_CATEGORIES), columns=list(frame["arm"].cat.categories),
                          fill_value=0)
    long = table.stack().rename("n").reset_index()
    long.columns = ["category", "arm", "n"]
    totals = frame["arm"].value_counts().reindex(frame["arm"].cat.categories)
    long["total"] = long["arm"].map(totals).astype(int)
    long["percent"] = np.where(long["total"] > 0, 100.0 * long["n"] / long["total"].clip(lower=1), np.nan)
    long["arm"] = pd.Categorical(long["arm"], categories=list(frame["arm"].cat.categories))
    long["category"] = pd.Categorical(long["category"], categories=list(RESPONSE_CATEGORIES))
    return long.sort_values(["arm", "category"], ignore_index=True)[["arm", "category", "n", "total", "percent"]]


def binomial_ci(k: int, n: int, level: float = 0.95) -> tuple[float, float, float]:
    """Rate k/n with its exact Clopper-Pearson CI (R ``binom.test(k, n)$conf.int``).

    Returns (rate, lower, upper) as proportions; lower is 0 when k = 0 and upper is 1 when k = n.
    All three are NaN when n = 0.
    """
    if n == 0:
        return (math.nan, math.nan, math.nan)
    lower, upper = proportion_confint(int(k), int(n), alpha=1 - level, method="beta")
    lower = 0.0 if k == 0 else float(lower)
    upper = 1.0 if k == n else float(upper)
    return (k / n, lower, upper)


def rate_difference(k1: int, n1: int, k2: int, n2: int, method: str = "newcombe",
                    level: float = 0.95) -> tuple[float, float, float]:
    """Difference of rates k1/n1 - k2/n2 with its CI, as proportions.

    ``method="newcombe"``: Newcombe (1998) hybrid score interval from Wilson limits without
    continuity correction (statsmodels ``confint_proportions_2indep(method="newcomb")``; R: computed
    from ``prop.test(k, n, correct = FALSE)$conf.int`` of each arm). ``method="wald"``: R
    ``prop.test(c(k1, k2), c(n1, n2), correct = FALSE)$conf.int``.
    """
    if method not in DIFFERENCE_METHODS:
        raise ValueError(f"method must be one of {list(DIFFERENCE_METHODS)}, got {method!r}")
    if n1 == 0 or n2 == 0:
        return (math.nan, math.nan, math.nan)
    sm_method = {"newcombe": "newcomb", "wald": "wald"}[method]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        lower, upper = confint_proportions_2indep(int(k1), int(n1), int(k2), int(n2), method=sm_method,
                                                  compare="diff", alpha=1 - level, correction=False)
    return (k1 / n1 - k2 / n2, float(lower), float(upper))


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


def conditional_odds_ratio(k1: int, n1: int, k2: int, n2: int,
                           level: float = 0.95) -> tuple[float, float, float]:
    """Odds ratio of the event in group 1 vs group 2: conditional MLE with exact CI.

    As R ``fisher.test(matrix(c(k1, k2, n1 - k1, n2 - k2), 2))`` (scipy
    ``odds_ratio(kind="conditional")``; above :data:`LOGSPACE_MIN_N` patients the same estimate and
    limits by :func:`_conditional_odds_ratio_logspace`, which scales to 100,000 patients). An arm
    without events gives 0 (lower limit 0), an arm with only events gives inf (upper limit inf); when
    neither arm has an event (or both have only events) the estimate is NaN and the CI (0, inf); R
    reports 0 there.
    """
    table = np.array([[k1, n1 - k1], [k2, n2 - k2]], dtype=np.int64)
    if (table < 0).any():
        raise ValueError("counts must satisfy 0 <= k <= n")
    if n1 + n2 > LOGSPACE_MIN_N:
        return _conditional_odds_ratio_logspace(int(k1), int(n1), int(k2), int(n2), float(level))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        res = _scipy_odds_ratio(table, kind="conditional")
        ci = res.confidence_interval(confidence_level=level)
    return (float(res.statistic), float(ci.low), float(ci.high))


@dataclass
class RateComparison:
    """ORR or DCR in two arms with every between-arm statistic and the methods that made them."""

    endpoint: str
    denominator: str
    arms: tuple[str, str]                 # (reference, experimental)
    k: dict[str, int]
    n: dict[str, int]
    rate: dict[str, tuple[float, float, float]]  # arm -> (rate, lower, upper), proportions
    difference: tuple[float, float, float]       # experimental - reference, proportions
    difference_method: str
    odds_ratio: tuple[float, float, float]
    p: float | None
    test: str
    statistic: float | None
    df: int | None
    min_expected: float | None
    rule: str
    level: float = 0.95
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """Results-file payload: {arm: {k, n, rate, lower, upper}, p, test, difference, odds_ratio}."""
        out: dict = {arm: {"k": self.k[arm], "n": self.n[arm], "rate": self.rate[arm][0],
                           "lower": self.rate[arm][1], "upper": self.rate[arm][2]}
                     for arm in self.arms}
        out.update({
            "endpoint": self.endpoint, "denominator": self.denominator,
            "reference_arm": self.arms[0], "experimental_arm": self.arms[1],
            "rate_ci_method": RATE_CI_METHOD,
            "p": self.p, "test": self.test, "statistic": self.statistic, "df": self.df,
            "min_expected": self.min_expected, "rule": self.rule,
            "difference": {"estimate": self.difference[0], "lower": self.difference[1],
                           "upper": self.difference[2],
                           "method": DIFFERENCE_METHODS[self.difference_method],
                           "direction": f"{self.arms[1]} minus {self.arms[0]}"},
            "odds_ratio": {"estimate": self.odds_ratio[0], "lower": self.odds_ratio[1],
                           "upper": self.odds_ratio[2], "method": ODDS_RATIO_METHOD,
                           "direction": f"{self.arms[1]} vs {self.arms[0]}"},
        })
        return out


def compare_counts(k: dict[str, int], n: dict[str, int], arms: Sequence[str], endpoint: str = "orr",
                   denominator: str = "all", rule: Rule = "paper", difference_method: str = "newcombe",
                   level: float = 0.95) -> RateComparison:
    """:class:`RateComparison` from event counts ``k`` and denominators ``n`` per arm.

    ``arms`` = (reference, experimental). The 2 x 2 table tested has rows experimental, reference
    and columns event, no event.
    """
    ref, exp = arms
    rates = {arm: binomial_ci(k[arm], n[arm], level) for arm in arms}
    diff = rate_difference(k[exp], n[exp], k[ref], n[ref], difference_method, level)
    orr = conditional_odds_ratio(k[exp], n[exp], k[ref], n[ref], level)
    table = np.array([[k[exp], n[exp] - k[exp]], [k[ref], n[ref] - k[ref]]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # an untestable table gets Fisher's P = 1 below
        res = test_association(table, rule=rule)
    p, test, statistic, df = res.p, res.test, res.statistic, res.df
    if res.key == "none":
        # an empty margin (no responder, or only responders) admits one table only: Fisher's P = 1,
        # as R's fisher.test; chi-square is undefined there
        p, test, statistic, df = 1.0, "Fisher's exact test", None, None
    return RateComparison(endpoint=endpoint, denominator=denominator, arms=(ref, exp),
                          k={a: int(k[a]) for a in arms}, n={a: int(n[a]) for a in arms},
                          rate=rates, difference=diff, difference_method=difference_method,
                          odds_ratio=orr, p=p, test=test, statistic=statistic,
                          df=df, min_expected=res.min_expected, rule=rule, level=level)


def compare_response_rates(patients: pd.DataFrame, endpoint: str = "orr",
                           denominator: Denominator = "all", rule: Rule = "paper",
                           difference_method: str = "newcombe", level: float = 0.95,
                           **kwargs) -> RateComparison:
    """ORR (``endpoint="orr"``) or DCR (``"dcr"``) per arm and their comparison.

    Parameters
    ----------
    patients : DataFrame
        One row per patient with ``arm`` and ``best_response`` (see :func:`prepare_responses`).
    denominator : {"all", "evaluable"}
        All treated patients (NE = non-responder) or only those evaluable (NE excluded).
    rule : {"paper", "modern"}
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


# ----------------------------------------------------------------------------- tables
def _rate_cell(comp: RateComparison, arm: str) -> str:
    rate, lo, hi = comp.rate[arm]
    return (f"{comp.k[arm]}/{comp.n[arm]}, {format_number(100 * rate, 1, '–')} "
            f"({format_ci(100 * lo, 100 * hi, 1, '–')})")


def _signed(value: float, digits: int = 1) -> str:
    """A signed number with a typographic minus ("−3.2"), "–" when missing."""
    return format_number(value, digits, "–").replace("-", "−")


def _signed_ci(lower: float, upper: float, digits: int = 1) -> str:
    """"−18.8 to 38.3": limits joined by "to", since a dash is ambiguous with negative limits."""
    return f"{_signed(lower, digits)} to {_signed(upper, digits)}"


def _difference_cell(comp: RateComparison) -> str:
    d, lo, hi = comp.difference
    return f"{_signed(100 * d)} ({_signed_ci(100 * lo, 100 * hi)})"


def _or_cell(comp: RateComparison) -> str:
    est, lo, hi = comp.odds_ratio
    if math.isnan(est):
        return "not estimable"
    return f"{format_number(est, 2)} ({format_ci(lo, hi, 2)})"


def _p_cell(comp: RateComparison) -> str:
    return format_p(comp.p)


def make_response_table(patients: pd.DataFrame, denominator: Denominator = "all",
                        rule: Rule = "paper", difference_method: str = "newcombe",
                        sensitivity: bool = True, level: float = 0.95, **kwargs) -> pd.DataFrame:
    """Best overall response per arm, then ORR and DCR with CIs and between-arm statistics.

    Rows: CR, PR, SD, PD, NE as n (%) of all patients of the arm; ORR and DCR with the chosen
    ``denominator`` as "k/n, % (95% CI)"; with ``sensitivity=True`` the same two rows with the other
    denominator. Columns: one per arm, difference (experimental - reference, percentage points,
    95% CI), odds ratio (95% CI), P and the test that produced it.
    """
    frame = prepare_responses(patients, **kwargs)
    arms = list(frame["arm"].cat.categories)
    counts = _count_prepared(frame)
    totals = counts.groupby("arm", observed=True)["total"].first()
    columns = ["Response"] + [f"{arm} (n = {totals[arm]})" for arm in arms] + [
        f"Difference, % points ({int(level * 100)}% CI)", f"Odds ratio ({int(level * 100)}% CI)",
        "P", "Test"]
    rows = []
    for cat in RESPONSE_CATEGORIES:
        cells = [CATEGORY_LABELS[cat]]
        for arm in arms:
            row = counts[(counts["arm"] == arm) & (counts["category"] == cat)].iloc[0]
            cells.append(format_n_pct(row["n"], row["total"]))
        rows.append(cells + ["", "", "", ""])
    denominators = [denominator] + ([d for d in DENOMINATORS if d != denominator] if sensitivity else [])
    for denom in denominators:
        for endpoint in ENDPOINTS:
            comp = _compare_prepared(frame, endpoint, denom, rule, difference_method, level)
            label = f"{ENDPOINT_SHORT[endpoint]}, k/n, % ({int(level * 100)}% CI)"
            if denom != denominator:
                label = f"{ENDPOINT_SHORT[endpoint]}, {denom} patients only (sensitivity)"
            elif denom == "evaluable":
                label += ", evaluable patients"
            rows.append([label] + [_rate_cell(comp, arm) for arm in arms]
                        + [_difference_cell(comp), _or_cell(comp), _p_cell(comp), comp.test])
    return pd.DataFrame(rows, columns=columns)


def response_table_footnote(denominator: Denominator = "all", rule: Rule = "paper",
                            difference_method: str = "newcombe", arms: Sequence[str] = ("CMT", "CMT+ICI")) -> str:
    """Footnote of :func:`make_response_table`, generated from the same method strings."""
    rule_text = {"paper": "the Table 1 rule (Pearson chi-square if every expected count is >= 5, "
                          "Yates-corrected chi-square if the smallest is 1 to < 5, Fisher's exact test "
                          "if it is < 1 or n < 40)",
                 "modern": "Fisher's exact test if any expected count is < 5, else Pearson chi-square"}[rule]
    return (f"Categories: n (%) of all patients of the arm. ORR = CR + PR; DCR = CR + PR + SD; "
            f"denominator: {DENOMINATORS[denominator]}. Rate CIs: {RATE_CI_METHOD}. "
            f"Difference: {arms[1]} minus {arms[0]}, {DIFFERENCE_METHODS[difference_method]}. "
            f"Odds ratio ({arms[1]} vs {arms[0]}): {ODDS_RATIO_METHOD}. P: two-sided, test chosen by "
            f"{rule_text}; the test is named in each row.")


# ----------------------------------------------------------------------------- figure
def plot_response_categories(patients: pd.DataFrame, ax=None, **kwargs):
    """100% stacked horizontal bars of the best overall response per arm.

    One bar per arm (reference arm on top), segments CR, PR, SD, PD, NE in
    :data:`CATEGORY_COLOURS` with the percentage printed inside segments of >= 6%, and ORR/DCR
    (all patients as denominator) at the bar's end. Returns the Figure.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    from helpers.report.figures import COLUMN_WIDTH_IN, style_context

    counts = count_best_response(patients, **kwargs)
    arms = list(counts["arm"].cat.categories)
    with style_context():
        if ax is None:
            fig, ax = plt.subplots(figsize=(COLUMN_WIDTH_IN * 1.45, 1.9))
        else:
            fig = ax.figure
        for pos, arm in enumerate(arms):
            y = len(arms) - 1 - pos
            left = 0.0
            sub = counts[counts["arm"] == arm].set_index("category")
            for cat in RESPONSE_CATEGORIES:
                pct = float(sub.loc[cat, "percent"]) if sub.loc[cat, "total"] else 0.0
                ax.barh(y, pct, left=left, height=0.6, color=CATEGORY_COLOURS[cat],
                        edgecolor="white", linewidth=0.6)
                if pct >= 6:
                    ax.text(left + pct / 2, y, f"{pct:.0f}", ha="center", va="center", fontsize=6.5)
                left += pct
            orr = 100 * sub.loc[list(ENDPOINTS["orr"]), "n"].sum() / max(sub["total"].iloc[0], 1)
            dcr = 100 * sub.loc[list(ENDPOINTS["dcr"]), "n"].sum() / max(sub["total"].iloc[0], 1)
            ax.text(101.5, y, f"ORR {orr:.0f}%\nDCR {dcr:.0f}%", ha="left", va="center", fontsize=6.5)
        ax.set_yticks(range(len(arms)))
        totals = counts.groupby("arm", observed=True)["total"].first()
        ax.set_yticklabels([f"{arm}\n(n = {totals[arm]})" for arm in reversed(arms)])
        ax.set_xlim(0, 100)
        ax.set_xlabel("Patients (%)")
        ax.spines["left"].set_visible(False)
        ax.tick_params(axis="y", length=0)
        handles = [Patch(facecolor=CATEGORY_COLOURS[c], edgecolor="white", label=c) for c in RESPONSE_CATEGORIES]
        ax.legend(handles=handles, ncol=5, loc="lower center", bbox_to_anchor=(0.5, 1.0),
                  handlelength=1.0, columnspacing=1.0)
        fig.subplots_adjust(right=0.82)
    return fig


# ----------------------------------------------------------------------------- results and published
def _significance(p: float | None, alpha: float = 0.05) -> str:
    """"statistically significant at the 5% level" or "not statistically significant ..."."""
    level = f"{100 * alpha:g}%"
    if p is None:
        return "not tested"
    return (f"statistically significant at the two-sided {level} level" if p < alpha
            else f"not statistically significant at the two-sided {level} level")


def _pct_ci_text(rate: tuple[float, float, float]) -> str:
    r, lo, hi = rate
    return f"{format_number(100 * r, 1, '–')}% (95% CI {format_ci(100 * lo, 100 * hi, 1, '–')})"


def summarise_response(patients: pd.DataFrame, denominator: Denominator = "all", rule: Rule = "paper",
                       difference_method: str = "newcombe", level: float = 0.95,
                       published: dict | None = None, **kwargs) -> dict:
    """Payload of the ``response`` section of results.json.

    Keys: ``orr``, ``dcr`` (chosen denominator; see :meth:`RateComparison.to_dict`),
    ``sensitivity`` {``orr``, ``dcr``} with the other denominator, ``categories`` {arm: {category:
    {n, percent}}}, ``denominator``, ``rule``, ``published`` (agreement with the abstract) and
    ``text``: ready-formatted strings for prose (arm names as :func:`arm_key`, e.g.
    ``orr_CMT_ICI``; ``orr_sensitivity_CMT`` with the other denominator; ``orr_direction``,
    ``orr_significance`` for neutral wording).
    """
    frame = prepare_responses(patients, **kwargs)
    counts = _count_prepared(frame)
    arms = list(counts["arm"].cat.categories)
    main = {ep: _compare_prepared(frame, ep, denominator, rule, difference_method, level)
            for ep in ENDPOINTS}
    other = [d for d in DENOMINATORS if d != denominator][0]
    sens = {ep: _compare_prepared(frame, ep, other, rule, difference_method, level)
            for ep in ENDPOINTS}
    categories = {arm: {row.category: {"n": int(row.n), "percent": float(row.percent)}
                        for row in counts[counts["arm"] == arm].itertuples()} for arm in arms}
    text: dict[str, str] = {}
    for ep, comp in main.items():
        for arm in arms:
            text[f"{ep}_{arm_key(arm)}"] = _pct_ci_text(comp.rate[arm])
            text[f"{ep}_k_{arm_key(arm)}"] = f"{comp.k[arm]}/{comp.n[arm]}"
            text[f"{ep}_sensitivity_{arm_key(arm)}"] = _pct_ci_text(sens[ep].rate[arm])
        d = comp.difference
        text[f"{ep}_difference"] = (f"{_signed(100 * d[0])} percentage points "
                                    f"(95% CI {_signed_ci(100 * d[1], 100 * d[2])})")
        o = comp.odds_ratio
        text[f"{ep}_odds_ratio"] = ("not estimable" if math.isnan(o[0]) else
                                    f"{format_number(o[0], 2)} (95% CI {format_ci(o[1], o[2], 2)})")
        text[f"{ep}_p"] = format_p(comp.p)
        text[f"{ep}_test"] = comp.test
        text[f"{ep}_sensitivity_p"] = format_p(sens[ep].p)
        ref, exp = comp.arms
        r_ref, r_exp = comp.rate[ref][0], comp.rate[exp][0]
        text[f"{ep}_direction"] = (f"higher with {exp}" if r_exp > r_ref else
                                   f"lower with {exp}" if r_exp < r_ref else "equal in the two arms")
        text[f"{ep}_significance"] = _significance(comp.p)
    for arm in arms:
        text[f"n_{arm_key(arm)}"] = str(int(counts[counts["arm"] == arm]["total"].iloc[0]))
        text[f"ne_{arm_key(arm)}"] = format_n_pct(categories[arm]["NE"]["n"],
                                                  int(counts[counts["arm"] == arm]["total"].iloc[0]))
    text["denominator"] = DENOMINATORS[denominator]
    text["sensitivity_denominator"] = DENOMINATORS[other]
    text["difference_method"] = DIFFERENCE_METHODS[difference_method]
    payload = {
        "orr": main["orr"].to_dict(), "dcr": main["dcr"].to_dict(),
        "sensitivity": {"denominator": other, "orr": sens["orr"].to_dict(), "dcr": sens["dcr"].to_dict()},
        "categories": categories, "denominator": denominator, "rule": rule,
        "difference_method": difference_method, "level": level,
    }
    agreement = _published_agreement(main, published if published is not None else load_published_statements())
    payload["published"] = agreement
    for ep, item in agreement.items():
        text[f"{ep}_published"] = item["statement"]
        text[f"{ep}_agrees"] = item["agrees"]
    payload["text"] = text
    return payload


def load_published_statements(path: str | Path | None = None) -> dict:
    """The abstract's statements on ORR, DCR and TRAE from ``data/published.yaml``.

    Returns {"orr": str, "dcr": str, "trae": str}; empty strings when the file is absent.
    """
    from helpers.analyses.reproduction import load_published

    try:
        abstract = (load_published(path) or {}).get("abstract", {})
    except FileNotFoundError:
        return {"orr": "", "dcr": "", "trae": ""}
    return {key: str(abstract.get(key, "")) for key in ("orr", "dcr", "trae")}


def _published_agreement(main: dict[str, RateComparison], published: dict, alpha: float = 0.05) -> dict:
    """Does each endpoint reproduce "significantly higher with the experimental arm"?"""
    out = {}
    for ep, comp in main.items():
        ref, exp = comp.arms
        higher = comp.rate[exp][0] > comp.rate[ref][0]
        significant = comp.p is not None and comp.p < alpha
        agrees = "yes" if (higher and significant) else (
            "no: higher but not significant" if higher else "no: not higher")
        out[ep] = {"statement": published.get(ep, ""), "higher": bool(higher),
                   "significant": bool(significant), "alpha": alpha, "agrees": agrees}
    return out


def make_published_response_table(summary: dict) -> pd.DataFrame:
    """Published statement beside the reproduced ORR/DCR (from :func:`summarise_response`)."""
    rows = []
    for ep in ENDPOINTS:
        res = summary[ep]
        ref, exp = res["reference_arm"], res["experimental_arm"]
        ours = (f"{ref} {format_number(100 * res[ref]['rate'], 1, '–')}% vs {exp} "
                f"{format_number(100 * res[exp]['rate'], 1, '–')}%; P = {format_p(res['p'])} "
                f"({res['test']})")
        pub = summary.get("published", {}).get(ep, {})
        rows.append([ENDPOINT_LABELS[ep], pub.get("statement", "") or "not available", ours,
                     pub.get("agrees", "")])
    return pd.DataFrame(rows, columns=["Endpoint", "Published (abstract)", "Reproduced", "Agrees"])
