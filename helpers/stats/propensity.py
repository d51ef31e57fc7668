"""Propensity score, balancing weights, balance and weighted Cox models: estimation only.

Numbers and method names in, numbers and method names out: no sentences (``helpers.report.sensitivity``
writes the English) and no study-specific names (the treated arm, the model terms and the variables
measured after time zero are arguments; :mod:`helpers.analyses.sensitivity` takes them from the study
configuration and the analysis plan).

Conventions (and their R equivalents)
-------------------------------------
- Propensity score (PS): probability of the treated (experimental) arm given the baseline terms,
  logistic regression by maximum likelihood with statsmodels ``Logit`` (R ``glm(family = binomial)``;
  equal to R's fitted values at 1e-6 in ``tests/test_propensity.py``). Terms: ``"age"`` (numeric,
  linear), ``"sex:Female"`` (indicator of a level; several joined by ``|``: ``"histology:EAC|Other"``) or
  a categorical column name (one indicator per non-reference level). Variables measured after time zero
  (``post_baseline``) are refused.
- Common support: an indicator term whose level occurs in one arm only has no comparable patients in the
  other arm (a positivity violation, PS = 0 or 1). Those patients are excluded from every adjusted
  analysis and the term is dropped; the rule is iterated until stable. When it empties an arm, or when a
  term separates the arms (the maximum-likelihood PS is 0 or 1), the PS is a :class:`PropensityNotEstimable`
  naming the terms, never an exception.
- c-statistic: area under the ROC curve of the PS, Mann-Whitney form with mid-ranks for ties
  (R ``pROC::auc``).
- Weights (``T`` = 1 for the treated arm, ``p`` = proportion treated): stabilised inverse probability of
  treatment weights for the average treatment effect (ATE), ``p / e`` and ``(1 - p) / (1 - e)`` (Robins,
  Hernan and Brumback 2000; Xu et al. 2010), truncated at the ``trim_quantiles`` of the pooled weights
  (Cole and Hernan 2008; quantiles as R ``quantile(type = 7)``); overlap weights for the average
  treatment effect in the overlap population (ATO), ``1 - e`` and ``e`` (Li, Morgan and Zaslavsky 2018),
  bounded in [0, 1], never trimmed. With a logistic PS fitted by maximum likelihood, overlap weights
  balance the mean of every model term exactly and give equal total weight to both arms.
- Standardised mean difference (Austin 2009; weighted form of Austin and Stuart 2015, Stat Med
  34:3661): ``d = (m1 - m0) / sqrt((s1^2 + s0^2) / 2)`` with weighted means ``m = sum(w x) / sum(w)``;
  for an indicator ``s^2 = m (1 - m)``, for a numeric term ``s^2 = sum(w) / (sum(w)^2 - sum(w^2)) *
  sum(w (x - m)^2)``; unweighted SMDs are the same formula with w = 1. Missing values are left out per
  term. A term that is constant among the analysed patients has d = 0 (R ``cobalt::bal.tab`` likewise).
- Weighted Cox model of the arm indicator: Efron ties, weights as sampling weights, robust (sandwich)
  variance ``D'D`` from the weighted dfbeta residuals (R ``coxph(Surv(t, e) ~ arm, weights = w,
  robust = TRUE)``), fitted by the project's Cox engine :func:`helpers.stats.cox.fit_coxph` (as the
  multivariable models here). lifelines ``CoxPHFitter(weights_col=..., robust=True)`` gives the same
  coefficient but a robust SE about 0.2% different with tied event times (a cross-check in the tests).
  HAND-WRITTEN for speed: the bootstrap's one-coefficient Newton-Raphson on risk-set sums
  (:func:`cox_arm_coefficient`, vectorised over event times; thousands of fits per analysis), equal
  to the engine's coefficient to 1e-10 (tested).
- Bootstrap: ``n_boot`` resamples of patients with replacement (not stratified), drawn up front from
  ``np.random.default_rng(seed)``; each replicate repeats the whole pipeline (common support, PS model,
  weights and trimming, weighted Cox per endpoint); percentile CI of the log HR. HAND-WRITTEN for speed:
  the replicates fit the PS with a short Newton-Raphson (:func:`_logit_newton`, the same
  maximum-likelihood fit as statsmodels ``Logit``, checked in the tests against R's glm). Replicates
  are computed in a process pool; results do not depend on the number of workers.
- Weighted Kaplan-Meier: R ``survfit(Surv(t, e) ~ 1, weights = w)``, by the project's one Kaplan-Meier
  (:func:`helpers.stats.survival.fit_km` with ``weights``).
- Times in months (days / 30.4375).
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from helpers.parallel import map_tasks
from helpers.stats.types import NotEstimable

#: Endpoint -> (time column in months, event column): the core derived columns of every study.
ENDPOINTS = {"os": ("os_months", "os_event"), "pfs": ("pfs_months", "pfs_event")}

#: Core columns measured after time zero (outcomes): never allowed in a propensity or adjustment model.
OUTCOME_COLUMNS = ("progression_date", "death_date", "last_followup_date", "last_assessment_date",
                   "best_response", "os_months", "os_event", "pfs_months", "pfs_event")

#: Balance target for |SMD| (Austin 2009).
SMD_TARGET = 0.1

#: The weighting schemes (machine names; the report names them).
ESTIMANDS = ("ATE", "ATO")

#: With ``ci_method="auto"``, the percentile bootstrap runs up to this many patients; above it, the robust
#: (sandwich) CI. The bootstrap's cost is replicates x n log n (about 0.1 s per replicate at 100,000
#: patients); at that size the uncertainty of the estimated PS that the bootstrap adds is small next to
#: the sandwich's.
BOOTSTRAP_MAX_N = 5000

CI_METHODS = ("bootstrap", "robust", "auto")


class PropensityInputError(ValueError):
    """The data cannot enter the propensity analysis (missing column, missing values, post-baseline term)."""


@dataclass(frozen=True)
class PropensityNotEstimable(NotEstimable):
    """The propensity score (or a weighted estimate) cannot be computed; ``terms`` names the culprits.

    ``reason``: ``"separation"`` (a term, or a combination if ``terms`` is empty, predicts the arm
    perfectly), ``"empty_arm"`` (the common-support rule left no patient in an arm; ``terms`` are the
    terms whose one-arm levels excluded them), ``"no_events_in_arm"``.
    """

    terms: tuple = ()


# ----------------------------------------------------------------------------- design
def add_start_year(patients: pd.DataFrame) -> pd.DataFrame:
    """Copy of ``patients`` with ``start_year`` (calendar year of ``start_date``) if missing."""
    out = patients.copy()
    if "start_year" not in out.columns:
        if "start_date" not in out.columns:
            raise PropensityInputError("patients need 'start_date' (or 'start_year') for the era analysis")
        out["start_year"] = pd.to_datetime(out["start_date"]).dt.year.astype(int)
    return out


def term_column(term: str) -> str:
    """The data column of a term: ``"sex:Female"`` -> ``"sex"``."""
    return term.partition(":")[0]


def expand_terms(patients: pd.DataFrame, terms: Sequence[str], post_baseline: Sequence[str] = ()) -> list[str]:
    """Terms with every categorical column name replaced by one indicator per non-reference level."""
    refused = set(post_baseline) | set(OUTCOME_COLUMNS)
    out = []
    for term in terms:
        column, sep, _ = term.partition(":")
        if column in refused:
            raise PropensityInputError(f"'{column}' is measured after time zero and cannot enter the model")
        if column not in patients.columns:
            raise PropensityInputError(f"term '{term}': column '{column}' not in the data")
        s = patients[column]
        if not sep and not pd.api.types.is_numeric_dtype(s):
            levels = list(s.cat.categories) if isinstance(s.dtype, pd.CategoricalDtype) else sorted(s.dropna().unique())
            out += [f"{column}:{lv}" for lv in levels[1:]]
        else:
            out.append(term)
    return out


def make_design(patients: pd.DataFrame, terms: Sequence[str], allow_missing: bool = False,
                post_baseline: Sequence[str] = ()) -> pd.DataFrame:
    """Numeric design matrix, one column per (expanded) term, index as ``patients``.

    ``allow_missing`` False (model terms): a missing value raises :class:`PropensityInputError` listing
    the rows. True (balance display): missing values stay NaN. ``post_baseline``: columns measured after
    time zero (from the dictionary's ``timing``), refused like the outcome columns.
    """
    columns = {}
    for term in expand_terms(patients, terms, post_baseline):
        column, sep, levels = term.partition(":")
        s = patients[column]
        if sep:
            wanted = levels.split("|")
            known = set(s.cat.categories) if isinstance(s.dtype, pd.CategoricalDtype) else set(s.dropna().unique())
            unknown = [lv for lv in wanted if lv not in known]
            if unknown:
                raise PropensityInputError(f"term '{term}': level(s) {unknown} not in column '{column}'")
            x = s.isin(wanted).astype(float).where(s.notna())
        else:
            x = pd.to_numeric(s, errors="raise").astype(float)
        if not allow_missing and x.isna().any():
            rows = list(patients.index[x.isna()][:10])
            raise PropensityInputError(f"term '{term}' has {int(x.isna().sum())} missing value(s) (rows {rows}); "
                                       "impute or leave it out of the model")
        columns[term] = x
    return pd.DataFrame(columns, index=patients.index)


def treatment_indicator(patients: pd.DataFrame, treated_arm: str) -> np.ndarray:
    """1 for ``treated_arm``, 0 otherwise (the reference arm). An arm without patients gives all 0 or 1."""
    return (patients["arm"].astype(str) == str(treated_arm)).to_numpy().astype(float)


def _binary_columns(X: np.ndarray) -> np.ndarray:
    return np.array([set(np.unique(X[:, j][~np.isnan(X[:, j])])) <= {0.0, 1.0} for j in range(X.shape[1])], bool)


def _support_mask(X: np.ndarray, t: np.ndarray, binary: np.ndarray):
    """Rows kept and columns kept by the common-support rule (iterated until stable)."""
    keep = np.ones(len(t), bool)
    cols = np.ones(X.shape[1], bool)
    while True:
        xk, tk = X[keep], t[keep]
        ones_t = (xk[tk == 1] == 1).sum(axis=0)
        ones_c = (xk[tk == 0] == 1).sum(axis=0)
        zeros_t = (xk[tk == 1] == 0).sum(axis=0)
        zeros_c = (xk[tk == 0] == 0).sum(axis=0)
        check = cols & binary
        bad1 = check & ((ones_t == 0) != (ones_c == 0))    # level 1 occurs in one arm only
        bad0 = check & ((zeros_t == 0) != (zeros_c == 0))  # level 0 occurs in one arm only
        drop_rows = ((X[:, bad1] == 1).any(axis=1) | (X[:, bad0] == 0).any(axis=1)) & keep
        keep_new = keep & ~drop_rows
        xk = X[keep_new]
        constant = cols & (np.ptp(xk, axis=0) == 0) if len(xk) else cols.copy()
        if not drop_rows.any() and not constant.any():
            return keep, cols
        keep, cols = keep_new, cols & ~constant


def _logit_newton(X: np.ndarray, t: np.ndarray, tol: float = 1e-10, max_iter: int = 50) -> np.ndarray | None:
    """Fitted probabilities of a logistic regression with intercept by Newton-Raphson (bootstrap engine).

    The same maximum-likelihood fit as statsmodels ``Logit`` / R ``glm(family = binomial)`` (checked in
    the tests), without the model-object overhead; None if it does not converge (separation).
    """
    A = np.column_stack([np.ones(len(t)), X])
    beta = np.zeros(A.shape[1])
    for _ in range(max_iter):
        eta = A @ beta
        p = 1.0 / (1.0 + np.exp(-eta))
        grad = A.T @ (t - p)
        H = (A * (p * (1 - p))[:, None]).T @ A
        try:
            step = np.linalg.solve(H, grad)
        except np.linalg.LinAlgError:
            return None
        beta = beta + step
        if np.max(np.abs(step)) < tol * (1 + np.max(np.abs(beta))):
            p = 1.0 / (1.0 + np.exp(-(A @ beta)))
            return p
        if np.max(np.abs(beta)) > 50:
            return None
    return None


@dataclass
class CommonSupport:
    """Patients kept for the adjusted analyses and the model terms that remain estimable.

    ``dropped_terms``: indicator terms with a level seen in one arm only (their patients excluded) and
    terms made constant by the exclusion; ``excluded``: the excluded patients' ``arm``.
    """

    keep: pd.Series
    terms: list[str]
    dropped_terms: list[str]
    excluded: pd.DataFrame


def restrict_to_common_support(patients: pd.DataFrame, terms: Sequence[str], treated_arm: str,
                               post_baseline: Sequence[str] = ()) -> CommonSupport:
    """Exclude patients whose level of an indicator term occurs in one arm only; drop constant terms."""
    X = make_design(patients, terms, post_baseline=post_baseline)
    t = treatment_indicator(patients, treated_arm)
    values = X.to_numpy()
    keep, cols = _support_mask(values, t, _binary_columns(values))
    dropped = [c for c, k in zip(X.columns, cols) if not k]
    excluded = patients.loc[~keep, ["arm"]]
    return CommonSupport(pd.Series(keep, index=patients.index), [c for c, k in zip(X.columns, cols) if k],
                         dropped, excluded)


# ----------------------------------------------------------------------------- propensity score
def c_statistic(y, score) -> float:
    """Area under the ROC curve of ``score`` for binary ``y`` (Mann-Whitney, mid-ranks for ties)."""
    y = np.asarray(y, float)
    r = stats.rankdata(np.asarray(score, float))
    n1 = y.sum()
    n0 = len(y) - n1
    return float((r[y == 1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def _fit_logit(X: np.ndarray, t: np.ndarray):
    """statsmodels ``Logit`` with intercept, Newton to 1e-12 (R ``glm(family = binomial)``)."""
    from statsmodels.discrete.discrete_model import Logit
    exog = np.column_stack([np.ones(len(t)), X])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Logit(t, exog).fit(method="newton", disp=0, maxiter=100, tol=1e-12)


def separating_terms(X: pd.DataFrame, treated) -> list[str]:
    """Terms that alone predict the arm perfectly: the two arms' value ranges do not overlap.

    For an indicator this means every treated patient has one value and every control the other.
    """
    t = np.asarray(treated, float)
    out = []
    for term in X.columns:
        x = X[term].to_numpy(float)
        x1, x0 = x[(t == 1) & ~np.isnan(x)], x[(t == 0) & ~np.isnan(x)]
        if len(x1) and len(x0) and (x1.max() < x0.min() or x0.max() < x1.min()):
            out.append(term)
    return out


def one_arm_terms(X: pd.DataFrame, treated) -> list[str]:
    """Indicator terms with a level (1 or 0) seen in one arm only: the positivity violations."""
    t = np.asarray(treated, float)
    out = []
    for term in X.columns:
        x = X[term].to_numpy(float)
        if not set(np.unique(x[~np.isnan(x)])) <= {0.0, 1.0}:
            continue
        for level in (1.0, 0.0):
            in1, in0 = bool(((x == level) & (t == 1)).any()), bool(((x == level) & (t == 0)).any())
            if in1 != in0:
                out.append(term)
                break
    return out


@dataclass
class PropensityFit:
    """A fitted propensity model on the common-support population.

    ``coefficients``: term, log_odds, se, p (Wald), intercept first as ``"(Intercept)"``.
    """

    ps: pd.Series
    treated: pd.Series
    terms: list[str]
    coefficients: pd.DataFrame
    c_statistic: float
    support: CommonSupport
    converged: bool


def fit_propensity(patients: pd.DataFrame, terms: Sequence[str], treated_arm: str,
                   post_baseline: Sequence[str] = ()) -> PropensityFit | PropensityNotEstimable:
    """Logistic propensity score for ``treated_arm`` on ``terms`` (R ``glm(family = binomial)``).

    Patients outside the common support are excluded first (:func:`restrict_to_common_support`).

    Returns
    -------
    PropensityFit or PropensityNotEstimable
        The fitted PS (index as ``patients``, kept patients only), the coefficient table (log-odds, SE,
        Wald P) and the c-statistic; or, when an arm is empty after the common-support rule or the
        model separates the arms (fitted probabilities of 0 or 1, no convergence), a
        :class:`PropensityNotEstimable` whose ``terms`` names the terms responsible.
    """
    t_all = treatment_indicator(patients, treated_arm)
    if t_all.sum() == 0 or t_all.sum() == len(t_all):
        return PropensityNotEstimable("propensity_score", "empty_arm")
    support = restrict_to_common_support(patients, terms, treated_arm, post_baseline)
    kept = patients.loc[support.keep.to_numpy()]
    t = treatment_indicator(kept, treated_arm)
    if t.sum() == 0 or t.sum() == len(t):
        X_all = make_design(patients, terms, post_baseline=post_baseline)
        return PropensityNotEstimable("propensity_score", "empty_arm", tuple(one_arm_terms(X_all, t_all)))
    X = make_design(kept, support.terms, post_baseline=post_baseline)
    separated = separating_terms(X, t)
    if separated:
        return PropensityNotEstimable("propensity_score", "separation", tuple(separated))
    try:
        res = _fit_logit(X.to_numpy(), t)
        ps_values = np.asarray(res.predict(), float)
        converged = bool(res.mle_retvals.get("converged", True))
    except Exception:   # statsmodels raises on perfect separation or singular information
        return PropensityNotEstimable("propensity_score", "separation")
    if (not converged or not np.all(np.isfinite(ps_values)) or ps_values.min() < 1e-8
            or ps_values.max() > 1 - 1e-8):
        return PropensityNotEstimable("propensity_score", "separation")
    names = ["(Intercept)"] + list(X.columns)
    coef = pd.DataFrame({"term": names, "log_odds": res.params, "se": res.bse, "p": res.pvalues})
    ps = pd.Series(ps_values, index=kept.index, name="ps")
    return PropensityFit(ps, pd.Series(t, index=kept.index), list(support.terms), coef,
                         c_statistic(t, ps), support, converged)


def compute_weights(ps, treated, estimand: str = "ATE", trim_quantiles: tuple[float, float] | None = None) -> np.ndarray:
    """Balancing weights from the PS ``e``: stabilised IPTW (``"ATE"``) or overlap weights (``"ATO"``).

    ATE: ``p / e`` for treated, ``(1 - p) / (1 - e)`` for controls, then truncated at the pooled
    ``trim_quantiles`` (e.g. (0.01, 0.99); numpy linear quantiles = R type 7). ATO: ``1 - e`` and ``e``
    (no trimming needed, bounded in [0, 1]).
    """
    e = np.asarray(ps, float)
    t = np.asarray(treated, float)
    if estimand == "ATE":
        p = t.mean()
        w = np.where(t == 1, p / e, (1 - p) / (1 - e))
        if trim_quantiles is not None:
            lo, hi = np.quantile(w, trim_quantiles)
            w = np.clip(w, lo, hi)
        return w
    if estimand == "ATO":
        return np.where(t == 1, 1 - e, e)
    raise ValueError(f"estimand must be one of {sorted(ESTIMANDS)}, got {estimand!r}")


def effective_sample_size(w) -> float:
    """Kish's effective sample size ``(sum w)^2 / sum w^2``."""
    w = np.asarray(w, float)
    return float(w.sum() ** 2 / (w ** 2).sum())


def summarize_weights(weights: dict[str, np.ndarray], treated, arms: Sequence[str]) -> pd.DataFrame:
    """One row per weighting scheme and arm: n, sum, min, median, max and Kish effective sample size.

    ``arms``: (reference, treated) codes written in the ``arm`` column.
    """
    t = np.asarray(treated, float)
    rows = []
    for name, w in weights.items():
        w = np.asarray(w, float)
        for value, arm in ((0.0, arms[0]), (1.0, arms[1])):
            x = w[t == value]
            rows.append({"weights": name, "arm": arm, "n": int(len(x)), "sum": float(x.sum()),
                         "min": float(x.min()), "median": float(np.median(x)), "max": float(x.max()),
                         "ess": effective_sample_size(x)})
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- balance
def standardized_difference(x, treated, weights=None, binary: bool | None = None) -> float:
    """Weighted standardised mean difference of ``x`` (treated minus control; formula in the module doc).

    0 when ``x`` is constant among the non-missing values (before this rule, rounding in the weighted
    means of a constant such as a single start year gave |d| near 1 or 2); +/- inf when each arm is
    constant at a different value (complete separation).
    """
    x = np.asarray(x, float)
    t = np.asarray(treated, float)
    w = np.ones_like(x) if weights is None else np.asarray(weights, float)
    ok = ~np.isnan(x)
    x, t, w = x[ok], t[ok], w[ok]
    if len(x) == 0 or np.ptp(x) == 0:
        return 0.0
    if binary is None:
        binary = set(np.unique(x)) <= {0.0, 1.0}

    def mean_var(s):
        ws, xs = w[s], x[s]
        if len(xs) == 0 or ws.sum() <= 0:
            return float("nan"), float("nan")
        if np.ptp(xs) == 0:          # constant in this arm: exact mean, no variance (no rounding residue)
            return float(xs[0]), 0.0
        m = (ws * xs).sum() / ws.sum()
        if binary:
            return m, m * (1 - m)
        denom = ws.sum() ** 2 - (ws ** 2).sum()
        return m, (ws.sum() / denom * (ws * (xs - m) ** 2).sum()) if denom > 0 else 0.0

    m1, v1 = mean_var(t == 1)
    m0, v0 = mean_var(t == 0)
    if not (math.isfinite(m1) and math.isfinite(m0)):
        return float("nan")
    denom = math.sqrt((v1 + v0) / 2)
    if denom == 0:
        return 0.0 if m1 == m0 else float("inf")
    return float((m1 - m0) / denom)


def make_balance_table(patients: pd.DataFrame, terms: Sequence[str], treated, weights: dict[str, np.ndarray],
                       model_terms: Sequence[str] = (), arms: Sequence[str] = ("reference", "treated")
                       ) -> pd.DataFrame:
    """SMD of every term before weighting and under each weighting scheme (numbers only).

    Columns: ``term``, ``in_model`` (term in the PS model), ``binary``, ``mean_<reference>``,
    ``mean_<treated>`` (unweighted; proportions for indicators; ``arms`` gives the two codes),
    ``smd_unweighted`` and ``smd_<scheme>`` per weights entry.
    """
    X = make_design(patients, terms, allow_missing=True)
    t = np.asarray(treated, float)
    rows = []
    for term in X.columns:
        x = X[term].to_numpy()
        binary = set(np.unique(x[~np.isnan(x)])) <= {0.0, 1.0}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)   # an arm with only missing values: NaN
            row = {"term": term, "in_model": term in set(model_terms), "binary": binary,
                   f"mean_{arms[0]}": float(np.nanmean(x[t == 0])) if (t == 0).any() else float("nan"),
                   f"mean_{arms[1]}": float(np.nanmean(x[t == 1])) if (t == 1).any() else float("nan"),
                   "smd_unweighted": standardized_difference(x, t, None, binary)}
        for name, w in weights.items():
            row[f"smd_{name}"] = standardized_difference(x, t, w, binary)
        rows.append(row)
    return pd.DataFrame(rows, columns=["term", "in_model", "binary", f"mean_{arms[0]}", f"mean_{arms[1]}",
                                       "smd_unweighted"] + [f"smd_{k}" for k in weights])


def balance_summary(balance: pd.DataFrame, target: float = SMD_TARGET, model_only: bool = True) -> dict:
    """Max |SMD| and number of terms with |SMD| >= target per column; ``achieved`` per weighting scheme."""
    b = balance[balance["in_model"]] if model_only else balance
    out = {}
    for col in [c for c in balance.columns if c.startswith("smd_")]:
        a = b[col].abs()
        name = col[4:]
        out[name] = {"max_abs_smd": float(a.max()) if len(a) else 0.0, "n_terms": int(len(a)),
                     "n_above_target": int((a >= target).sum()), "achieved": bool((a < target).all()),
                     "terms_above_target": list(b.loc[a >= target, "term"])}
    return out


# ----------------------------------------------------------------------------- weighted Cox (fast)
def _cox_pieces(time, event, z, w, ties: str = "efron"):
    """Risk-set sums per unique event time, expanded over Efron's tied-event fractions."""
    time = np.asarray(time, float)
    event = np.asarray(event, float)
    z = np.asarray(z, float)
    w = np.asarray(w, float)
    ut = np.unique(time[event == 1])
    order = np.argsort(-time, kind="stable")
    ts = time[order]
    # weight at risk (time >= u), per arm: cumulative sums over decreasing time
    c1 = np.cumsum((w * z)[order])
    c0 = np.cumsum((w * (1 - z))[order])
    pos = np.searchsorted(-ts, -ut, side="right") - 1   # last index with ts >= u
    a1, a0 = c1[pos], c0[pos]
    idx = np.searchsorted(ut, time)
    ev = event == 1
    d1 = np.bincount(idx[ev], weights=(w * z)[ev], minlength=len(ut))
    d0 = np.bincount(idx[ev], weights=(w * (1 - z))[ev], minlength=len(ut))
    nd = np.bincount(idx[ev], minlength=len(ut)).astype(float)
    if ties == "efron":
        rep = nd.astype(int)
        j = np.repeat(np.arange(len(ut)), rep)
        k = np.arange(rep.sum()) - np.repeat(np.cumsum(rep) - rep, rep)
        f = k / nd[j]
        mw = ((d0 + d1) / nd)[j]
        b0, b1 = a0[j] - f * d0[j], a1[j] - f * d1[j]
    elif ties == "breslow":
        b0, b1, mw = a0, a1, d0 + d1
    else:
        raise ValueError("ties must be 'efron' or 'breslow'")
    return float(d1.sum()), float(d0.sum()), b0, b1, mw


def _cox_newton(d1sum, b0, b1, mw, tol: float = 1e-12, max_iter: int = 60):
    """Newton-Raphson with step halving for the arm coefficient; returns (beta, info, loglik, loglik0)."""
    def pieces(beta):
        eb = math.exp(beta)
        s0 = b0 + eb * b1
        r = eb * b1 / s0
        ll = beta * d1sum - (mw * np.log(s0)).sum()
        return ll, d1sum - (mw * r).sum(), (mw * r * (1 - r)).sum()

    beta = 0.0
    ll, score, info = pieces(beta)
    ll0 = ll
    for _ in range(max_iter):
        if info <= 0:
            return float("nan"), float("nan"), ll, ll0
        step = score / info
        new = beta + step
        ll_new, score_new, info_new = pieces(new)
        halvings = 0
        while ll_new < ll - 1e-12 and halvings < 30:
            step /= 2
            new = beta + step
            ll_new, score_new, info_new = pieces(new)
            halvings += 1
        beta, ll, score, info = new, ll_new, score_new, info_new
        if abs(step) < tol * (1 + abs(beta)):
            return beta, info, ll, ll0
    return float("nan"), float("nan"), ll, ll0


def cox_arm_coefficient(time, event, z, weights=None, ties: str = "efron") -> float:
    """Weighted Cox log hazard ratio of binary ``z`` (R ``coef(coxph(Surv ~ z, weights = w, ties = ties))``).

    NaN when an arm has no (weighted) events: the partial likelihood then has no maximum.
    """
    w = np.ones(len(np.asarray(time))) if weights is None else weights
    d1sum, d0sum, b0, b1, mw = _cox_pieces(time, event, z, w, ties)
    if d1sum <= 0 or d0sum <= 0:
        return float("nan")
    return _cox_newton(d1sum, b0, b1, mw)[0]


_HR_KEYS = ("coef", "hr", "se_naive", "se_robust", "lower", "upper", "p", "lower_naive", "upper_naive", "p_naive")


def fit_weighted_cox(time, event, z, weights=None, ties: str = "efron",
                     conf_level: float = 0.95) -> dict | PropensityNotEstimable:
    """Weighted Cox HR of binary ``z`` with model-based and robust SE (R ``coxph(..., weights, robust = TRUE)``).

    Returns
    -------
    dict or PropensityNotEstimable
        ``{"coef", "hr", "se_naive", "se_robust", "lower", "upper", "p", "lower_naive", "upper_naive",
        "p_naive"}``; ``lower``/``upper``/``p`` use the robust SE, the ``_naive`` ones the model-based SE
        (R ``fit$naive.var``; the usual Wald CI when all weights are 1). Not estimable
        (``"no_events_in_arm"``) when an arm has no (weighted) event: the partial likelihood has no maximum.
    """
    from helpers.stats.cox import fit_coxph
    time = np.asarray(time, float)
    event = np.asarray(event, float)
    z = np.asarray(z, float)
    w = np.ones(len(time)) if weights is None else np.asarray(weights, float)
    if (w * event * z).sum() <= 0 or (w * event * (1 - z)).sum() <= 0:
        return PropensityNotEstimable("hazard_ratio", "no_events_in_arm")
    fit = fit_coxph(time, event, z[:, None], weights=w, ties=ties, robust=True, names=["arm"])
    beta = float(fit.coef[0])
    if not fit.converged or fit.separated or not math.isfinite(beta):
        return PropensityNotEstimable("hazard_ratio", "non_convergence")
    se_naive, se_robust = float(fit.se[0]), float(fit.se_robust[0])
    q = stats.norm.ppf(1 - (1 - conf_level) / 2)
    return {"coef": beta, "hr": math.exp(beta), "se_naive": se_naive, "se_robust": se_robust,
            "lower": math.exp(beta - q * se_robust), "upper": math.exp(beta + q * se_robust),
            "p": float(2 * stats.norm.sf(abs(beta / se_robust))),
            "lower_naive": math.exp(beta - q * se_naive), "upper_naive": math.exp(beta + q * se_naive),
            "p_naive": float(2 * stats.norm.sf(abs(beta / se_naive)))}


def fit_weighted_cox_lifelines(time, event, z, weights) -> dict:
    """The same model with lifelines ``CoxPHFitter(robust=True)`` (cross-check): coef and robust SE."""
    from lifelines import CoxPHFitter
    df = pd.DataFrame({"t": time, "e": event, "z": z, "w": weights})
    cph = CoxPHFitter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cph.fit(df, "t", "e", weights_col="w", robust=True,
                fit_options={"precision": 1e-12, "r_precision": 1e-14, "step_size": 0.95, "max_steps": 200})
    return {"coef": float(cph.params_["z"]), "se_robust": float(cph.standard_errors_["z"])}


# ----------------------------------------------------------------------------- weighted Kaplan-Meier
def fit_weighted_km(time, event, weights=None) -> pd.DataFrame:
    """Weighted Kaplan-Meier step function from time 0 (R ``survfit(Surv(t, e) ~ 1, weights = w)``).

    The project's one Kaplan-Meier, :func:`helpers.stats.survival.km_steps`; columns ``time, surv``.
    """
    from helpers.stats.survival import km_steps
    return km_steps(time, event, weights=weights)[["time", "surv"]]


def weighted_km_at(time, event, weights, times) -> np.ndarray:
    """Weighted KM survival at ``times`` (R ``summary(..., times, extend = TRUE)``): :func:`helpers.stats.survival.km_at`."""
    from helpers.stats.survival import km_at
    return km_at(time, event, times, weights=weights)


# ----------------------------------------------------------------------------- bootstrap
@dataclass(frozen=True)
class _PipelineSpec:
    X: np.ndarray            # full design of the PS terms (all patients)
    binary: np.ndarray
    t: np.ndarray
    times: tuple             # per endpoint (time, event)
    trim_quantiles: tuple | None
    ties: str


def _pipeline_coefs(spec: _PipelineSpec, idx: np.ndarray) -> np.ndarray:
    """Log HRs [endpoint x (ATE, ATO)] of one resample; NaN where not estimable."""
    n_out = 2 * len(spec.times)
    X, t = spec.X[idx], spec.t[idx]
    keep, cols = _support_mask(X, t, spec.binary)
    X, t = X[keep][:, cols], t[keep]
    if t.sum() == 0 or t.sum() == len(t):
        return np.full(n_out, np.nan)
    e = _logit_newton(X, t)
    if e is None or not np.all(np.isfinite(e)) or e.min() <= 0 or e.max() >= 1:
        return np.full(n_out, np.nan)
    w_ate = compute_weights(e, t, "ATE", spec.trim_quantiles)
    w_ato = compute_weights(e, t, "ATO")
    out = []
    for time, event in spec.times:
        tm, ev = time[idx][keep], event[idx][keep]
        for w in (w_ate, w_ato):
            out.append(cox_arm_coefficient(tm, ev, t, w, spec.ties))
    return np.asarray(out)


def _bootstrap_chunk(spec: _PipelineSpec, indices: np.ndarray) -> np.ndarray:
    return np.vstack([_pipeline_coefs(spec, idx) for idx in indices])


def draw_bootstrap_indices(n: int, n_boot: int, seed: int) -> np.ndarray:
    """All resample indices drawn up front: ``np.random.default_rng(seed).integers(0, n, (n_boot, n))``."""
    return np.random.default_rng(seed).integers(0, n, size=(n_boot, n))


def bootstrap_weighted_hr(patients: pd.DataFrame, terms: Sequence[str], n_boot: int, seed: int,
                          trim_quantiles: tuple[float, float] | None, treated_arm: str,
                          endpoints: Sequence[str] = ("os", "pfs"), workers: int = 1, ties: str = "efron",
                          conf_level: float = 0.95, post_baseline: Sequence[str] = ()) -> dict:
    """Percentile bootstrap of the IPTW (ATE) and overlap-weighted (ATO) Cox HRs, whole pipeline resampled.

    Every replicate resamples all ``patients`` (before the common-support restriction), re-applies the
    common-support rule, refits the PS, recomputes (and trims) the weights and refits the weighted Cox
    models. Indices come from :func:`draw_bootstrap_indices`, so the result is identical for any number
    of ``workers`` (processes). Replicates that cannot be estimated (an arm emptied, separation, no
    events in an arm) are counted in ``n_failed`` and left out.

    Returns
    -------
    dict
        ``{endpoint: {"ATE"|"ATO": {"lower", "upper", "se_log", "n_valid"}}, "coefs": ndarray (n_boot x
        2 per endpoint, log HRs, NaN where failed), "n_boot", "seed", "n_failed", "method": "percentile"}``.
    """
    if n_boot < 1:
        raise ValueError("n_boot must be at least 1")
    X = make_design(patients, terms, post_baseline=post_baseline).to_numpy()
    t = treatment_indicator(patients, treated_arm)
    times = tuple((patients[ENDPOINTS[ep][0]].to_numpy(float), patients[ENDPOINTS[ep][1]].to_numpy(float))
                  for ep in endpoints)
    spec = _PipelineSpec(X, _binary_columns(X), t, times, tuple(trim_quantiles) if trim_quantiles else None, ties)
    indices = draw_bootstrap_indices(len(t), n_boot, seed)
    workers = max(1, int(workers or 1))
    if workers == 1 or n_boot < 8 * workers:
        coefs = _bootstrap_chunk(spec, indices)
    else:
        chunks = [c for c in np.array_split(indices, workers * 4) if len(c)]
        coefs = np.vstack(map_tasks(_bootstrap_chunk, chunks, spec, workers))
    alpha = 1 - conf_level
    out: dict = {"n_boot": int(n_boot), "seed": int(seed), "coefs": coefs, "method": "percentile"}
    failures = 0
    for k, ep in enumerate(endpoints):
        out[ep] = {}
        for m, est in enumerate(ESTIMANDS):
            c = coefs[:, 2 * k + m]
            ok = c[np.isfinite(c)]
            failures = max(failures, len(c) - len(ok))
            lo, hi = np.quantile(ok, [alpha / 2, 1 - alpha / 2]) if len(ok) else (np.nan, np.nan)
            out[ep][est] = {"lower": float(np.exp(lo)), "upper": float(np.exp(hi)),
                            "se_log": float(np.std(ok, ddof=1)) if len(ok) > 1 else None,
                            "n_valid": int(len(ok))}
    out["n_failed"] = int(failures)
    return out


def resolve_ci_method(ci_method: str, n_patients: int) -> str:
    """The CI method that runs: "bootstrap" or "robust"; "auto" is bootstrap up to BOOTSTRAP_MAX_N patients."""
    if ci_method not in CI_METHODS:
        raise ValueError(f"ci_method must be one of {CI_METHODS}, got {ci_method!r}")
    if ci_method == "auto":
        return "bootstrap" if n_patients <= BOOTSTRAP_MAX_N else "robust"
    return ci_method


def robust_interval(fits: dict, n_patients: int) -> dict:
    """The robust (sandwich) CI in the structure of :func:`bootstrap_weighted_hr`'s result (no replicates)."""
    out: dict = {"n_boot": 0, "seed": None, "coefs": None, "n_failed": 0, "method": "robust",
                 "n_patients": int(n_patients)}
    for est in fits:
        for ep, f in fits[est].items():
            ok = isinstance(f, dict)
            out.setdefault(ep, {})[est] = {"lower": f["lower"] if ok else None, "upper": f["upper"] if ok else None,
                                           "se_log": f["se_robust"] if ok else None, "n_valid": 0}
    return out


# ----------------------------------------------------------------------------- multivariable Cox
def fit_adjusted_cox(patients: pd.DataFrame, terms: Sequence[str], endpoint: str, treated_arm: str,
                     conf_level: float = 0.95, post_baseline: Sequence[str] = ()) -> dict | PropensityNotEstimable:
    """Arm HR from a multivariable Cox model with ``terms`` (R ``coxph(Surv ~ arm + ...)``, Efron ties).

    Fitted by the Newton-Raphson of the project's Cox engine (:mod:`helpers.stats.cox`, tested against
    R's coxph); terms constant in ``patients`` are left out.

    Returns
    -------
    dict or PropensityNotEstimable
        ``{"hr", "lower", "upper", "p", "n", "events", "n_parameters", "converged"}`` (Wald CI and P);
        not estimable when an arm has no event or the fit does not converge.
    """
    from helpers.stats.cox import fit_coxph
    tcol, ecol = ENDPOINTS[endpoint]
    X = make_design(patients, terms, post_baseline=post_baseline)
    X = X.loc[:, X.nunique() > 1]
    z = treatment_indicator(patients, treated_arm)
    time = patients[tcol].to_numpy(float)
    event = patients[ecol].to_numpy(float)
    if event[z == 1].sum() == 0 or event[z == 0].sum() == 0:
        return PropensityNotEstimable("hazard_ratio", "no_events_in_arm")
    fit = fit_coxph(time, event.astype(int), np.column_stack([X.to_numpy(float), z]),
                    names=list(X.columns) + ["arm"])
    b, se = float(fit.coef[-1]), float(fit.se[-1])
    converged = fit.converged
    if not converged or "arm" in fit.separated or not math.isfinite(b) or not se > 0:
        return PropensityNotEstimable("hazard_ratio", "non_convergence")
    q = stats.norm.ppf(1 - (1 - conf_level) / 2)
    return {"hr": math.exp(b), "lower": math.exp(b - q * se), "upper": math.exp(b + q * se),
            "p": float(2 * stats.norm.sf(abs(b / se))), "n": int(len(time)), "events": int(event.sum()),
            "n_parameters": int(X.shape[1] + 1), "converged": bool(converged)}
