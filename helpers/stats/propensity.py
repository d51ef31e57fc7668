"""Confounding-adjusted comparison of the arms: propensity score, weighting, balance, weighted Cox.

The arms were not randomised, so the crude hazard ratio mixes the effect of adding an immune checkpoint
inhibitor with differences in who received it. This module estimates the arm effect in weighted
pseudo-populations in which the measured baseline covariates are balanced.

Conventions (and their R equivalents)
-------------------------------------
- Propensity score (PS): probability of CMT+ICI given the prespecified baseline covariates, logistic
  regression by maximum likelihood (statsmodels ``Logit``; R ``glm(family = binomial)``). Covariates are
  *terms*: ``"age"`` (numeric, linear), ``"sex:Female"`` (indicator of a level, several joined by ``|``:
  ``"histology:EAC|Other"``) or a categorical column name (one indicator per non-reference level).
  Post-baseline variables (``ici_cycles``, ``chemo_cycles``, response) are refused.
- Common support: an indicator term whose level occurs in one arm only has no comparable patients in
  the other arm (a positivity violation, PS = 0 or 1). Those patients are excluded from every adjusted
  analysis, the term is dropped, and a :class:`PositivityWarning` says so.
- c-statistic: area under the ROC curve of the PS, Mann-Whitney form with mid-ranks for ties.
- Weights (``T`` = 1 for CMT+ICI, ``p`` = proportion treated): stabilised inverse probability of
  treatment weights for the average treatment effect (ATE), ``p / e`` and ``(1 - p) / (1 - e)``
  (Robins, Hernan and Brumback 2000; Xu et al. 2010), truncated at the ``trim_quantiles`` of the pooled
  weights (Cole and Hernan 2008; quantiles as R ``quantile(type = 7)``); overlap weights for the average
  treatment effect in the overlap population (ATO), ``1 - e`` and ``e`` (Li, Morgan and Zaslavsky 2018),
  bounded in [0, 1], never trimmed. With a logistic PS fitted by maximum likelihood, overlap weights
  balance the mean of every model term exactly and give equal total weight to both arms.
- Standardised mean difference (Austin 2009; weighted form of Austin and Stuart 2015, Stat Med
  34:3661): ``d = (m1 - m0) / sqrt((s1^2 + s0^2) / 2)`` with weighted means ``m = sum(w x) / sum(w)``;
  for an indicator ``s^2 = m (1 - m)``, for a numeric term ``s^2 = sum(w) / (sum(w)^2 - sum(w^2)) *
  sum(w (x - m)^2)``; unweighted SMDs are the same formula with w = 1. Missing values are left out per
  term. Balance target |d| < 0.1.
- Weighted Cox model of the arm indicator: Efron ties, weights as sampling weights, robust (sandwich)
  variance ``D'D`` from the weighted dfbeta residuals (R ``coxph(Surv(t, e) ~ arm, weights = w,
  robust = TRUE)``), fitted here by Newton-Raphson to machine precision and checked against R to
  rounding error. (lifelines ``CoxPHFitter(weights_col=..., robust=True)`` gives the same coefficient but
  a robust SE about 0.2% different from R with tied event times, because its score residuals treat
  Efron ties differently; hence the own implementation, with lifelines kept as a cross-check.) The robust SE ignores the estimation of the PS and is
  shown for comparison only (Austin 2016, Stat Med 35:5642); the reported CI is the bootstrap one
  (``ci_method="auto"``: the bootstrap up to BOOTSTRAP_MAX_N patients, the robust CI above).
- Bootstrap: ``n_boot`` resamples of patients with replacement (not stratified), drawn up front from
  ``np.random.default_rng(seed)``; each replicate repeats the whole pipeline (common support, PS model,
  weights and trimming, weighted Cox for OS and PFS); percentile 95% CI of the log HR. For speed the
  replicates fit the PS with a short Newton-Raphson (same maximum-likelihood fit as statsmodels ``Logit``,
  checked in the tests) and the Cox model with the vectorised arm-only Newton-Raphson below. Replicates are
  computed in worker processes; results do not depend on the number of workers.
- Weighted Kaplan-Meier: R ``survfit(Surv(t, e) ~ arm, weights = w)``.
- Times in months (days / 30.4375).
"""
from __future__ import annotations

import math
import multiprocessing
import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats

# ----------------------------------------------------------------------------- constants
#: Endpoint -> (time column in months, event column, label).
ENDPOINTS = {"os": ("os_months", "os_event", "Overall survival"),
             "pfs": ("pfs_months", "pfs_event", "Progression-free survival")}

#: Columns measured after time zero: never allowed in a propensity or adjustment model.
POST_BASELINE = ("ici_cycles", "chemo_cycles", "best_response", "progression_date", "death_date",
                 "last_followup_date", "os_months", "os_event", "pfs_months", "pfs_event",
                 "ici_agent", "local_therapy_type")

#: Balance target for |SMD| (Austin 2009).
SMD_TARGET = 0.1

ESTIMANDS = {"ATE": "stabilised inverse probability of treatment weights (average treatment effect, ATE)",
             "ATO": "overlap weights (average treatment effect in the overlap population, ATO)"}

#: Short names of the weighting schemes used in tables, legends and sentences.
WEIGHT_NAMES = {"ATE": "IPTW (ATE)", "ATO": "overlap (ATO)"}

METHODS = {
    "ps": "logistic regression of CMT+ICI on the prespecified baseline covariates (R glm, binomial)",
    "c": "c-statistic (area under the ROC curve of the propensity score)",
    "smd": ("standardised mean difference: difference in (weighted) means divided by the square root of "
            "the mean of the two arms' (weighted) variances (Austin 2009; Austin and Stuart 2015)"),
    "cox_w": "weighted Cox model of the arm indicator, Efron ties (R coxph with weights)",
    "robust": "robust (sandwich) standard error, ignores estimation of the propensity score (R coxph robust = TRUE)",
    "boot": "percentile bootstrap of the whole pipeline (propensity model included)",
    "cox_mv": "multivariable Cox model with the propensity-score covariates, Efron ties, Wald 95% CI",
}


class PropensityInputError(ValueError):
    """The data cannot enter the propensity analysis (missing column, missing values, post-baseline term)."""


class PropensityCaveatWarning(UserWarning):
    """A statistical caveat of the confounding-adjusted analysis."""


class PositivityWarning(PropensityCaveatWarning):
    """A covariate level occurs in one arm only: its patients are outside the common support."""


class ImbalanceWarning(PropensityCaveatWarning):
    """After weighting some |SMD| is still >= 0.1."""


class BootstrapFailureWarning(PropensityCaveatWarning):
    """Some bootstrap replicates could not be estimated (no events in an arm, separation)."""


# ----------------------------------------------------------------------------- labels
def _dictionary_labels() -> dict:
    try:
        from helpers.data.load import load_dictionary
        d = load_dictionary()
    except Exception:  # pragma: no cover - labels are cosmetic
        return {}
    labels = {k: v.get("label", k) for k, v in d["files"]["cohort"]["columns"].items()}
    labels.update({k: v.get("label", k) for k, v in d.get("derived", {}).items()})
    return labels


def term_label(term: str, labels: dict | None = None) -> str:
    """Readable label of a term: ``"sex:Female"`` -> ``"Sex: Female"``."""
    labels = _dictionary_labels() if labels is None else labels
    column, _, levels = term.partition(":")
    text = labels.get(column, column)
    return f"{text}: {levels.replace('|', ' or ')}" if levels else text


# ----------------------------------------------------------------------------- design
def add_start_year(patients: pd.DataFrame) -> pd.DataFrame:
    """Copy of ``patients`` with ``start_year`` (calendar year of ``start_date``) if missing."""
    out = patients.copy()
    if "start_year" not in out.columns:
        if "start_date" not in out.columns:
            raise PropensityInputError("patients need 'start_date' (or 'start_year') for the era analysis")
        out["start_year"] = pd.to_datetime(out["start_date"]).dt.year.astype(int)
    return out


def _expand_terms(patients: pd.DataFrame, terms: Sequence[str]) -> list[str]:
    out = []
    for term in terms:
        column, sep, _ = term.partition(":")
        if column in POST_BASELINE:
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


def make_design(patients: pd.DataFrame, terms: Sequence[str], allow_missing: bool = False) -> pd.DataFrame:
    """Numeric design matrix, one column per (expanded) term, index as ``patients``.

    ``allow_missing`` False (model terms): a missing value raises :class:`PropensityInputError` listing
    the rows. True (balance display): missing values stay NaN.
    """
    columns = {}
    for term in _expand_terms(patients, terms):
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


def treatment_indicator(patients: pd.DataFrame, treated_arm: str = "CMT+ICI") -> np.ndarray:
    """1 for ``treated_arm``, 0 otherwise (the reference arm)."""
    arm = patients["arm"].astype(str)
    if treated_arm not in set(arm):
        raise PropensityInputError(f"no patient in arm '{treated_arm}'")
    return (arm == treated_arm).to_numpy().astype(float)


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
    """Patients kept for the adjusted analyses and the model terms that remain estimable."""

    keep: pd.Series
    terms: list[str]
    dropped_terms: list[str]
    excluded: pd.DataFrame


def restrict_to_common_support(patients: pd.DataFrame, terms: Sequence[str],
                               treated_arm: str = "CMT+ICI") -> CommonSupport:
    """Exclude patients whose level of an indicator term occurs in one arm only; drop constant terms.

    Issues a :class:`PositivityWarning` naming the term and the number of patients excluded.
    """
    X = make_design(patients, terms)
    t = treatment_indicator(patients, treated_arm)
    values = X.to_numpy()
    binary = np.array([set(np.unique(values[:, j])) <= {0.0, 1.0} for j in range(values.shape[1])])
    keep, cols = _support_mask(values, t, binary)
    dropped = [c for c, k in zip(X.columns, cols) if not k]
    excluded = patients.loc[~keep, ["arm"]].assign(
        reason=[", ".join(f"{c} = {X.at[i, c]:g}" for c in dropped) or "outside common support"
                for i in patients.index[~keep]])
    if dropped or (~keep).any():
        names = "; ".join(term_label(c) for c in dropped) or "a covariate level"
        warnings.warn(f"positivity: {names} occurs in one arm only; {int((~keep).sum())} patient(s) "
                      "outside the common support are excluded from the adjusted analyses",
                      PositivityWarning, stacklevel=2)
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
    from statsmodels.discrete.discrete_model import Logit
    exog = np.column_stack([np.ones(len(t)), X])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Logit(t, exog).fit(method="newton", disp=0, maxiter=100, tol=1e-12)


@dataclass
class PropensityFit:
    """A fitted propensity model on the common-support population."""

    ps: pd.Series
    treated: pd.Series
    terms: list[str]
    coefficients: pd.DataFrame
    c_statistic: float
    support: CommonSupport
    converged: bool
    warnings: list[str] = field(default_factory=list)


def fit_propensity(patients: pd.DataFrame, terms: Sequence[str], treated_arm: str = "CMT+ICI") -> PropensityFit:
    """Logistic propensity score for ``treated_arm`` on ``terms`` (R ``glm(family = binomial)``).

    Patients outside the common support are excluded first (:func:`restrict_to_common_support`).
    Returns the fitted PS (index as ``patients``, kept patients only), the coefficient table
    (log-odds, SE, Wald P) and the c-statistic.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        support = restrict_to_common_support(patients, terms, treated_arm)
    for w in caught:
        warnings.warn(w.message, w.category, stacklevel=2)
    kept = patients.loc[support.keep.to_numpy()]
    X = make_design(kept, support.terms)
    t = treatment_indicator(kept, treated_arm)
    res = _fit_logit(X.to_numpy(), t)
    names = ["(Intercept)"] + list(X.columns)
    coef = pd.DataFrame({"term": names, "log_odds": res.params, "se": res.bse, "p": res.pvalues})
    ps = pd.Series(res.predict(), index=kept.index, name="ps")
    converged = bool(res.mle_retvals.get("converged", True))
    notes = [str(w.message) for w in caught]
    if not converged or ps.min() < 1e-6 or ps.max() > 1 - 1e-6:
        msg = "the propensity model did not converge or fitted probabilities of 0 or 1 (separation)"
        warnings.warn(msg, PositivityWarning, stacklevel=2)
        notes.append(msg)
    return PropensityFit(ps, pd.Series(t, index=kept.index), list(support.terms), coef,
                         c_statistic(t, ps), support, converged, notes)


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


def summarize_weights(weights: dict[str, np.ndarray], treated, arm_labels=("CMT", "CMT+ICI")) -> pd.DataFrame:
    """One row per weighting scheme and arm: n, sum, min, median, max and Kish effective sample size."""
    t = np.asarray(treated, float)
    rows = []
    for name, w in weights.items():
        w = np.asarray(w, float)
        for value, arm in ((0.0, arm_labels[0]), (1.0, arm_labels[1])):
            x = w[t == value]
            rows.append({"weights": name, "arm": arm, "n": int(len(x)), "sum": float(x.sum()),
                         "min": float(x.min()), "median": float(np.median(x)), "max": float(x.max()),
                         "ess": effective_sample_size(x)})
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- balance
def standardized_difference(x, treated, weights=None, binary: bool | None = None) -> float:
    """Weighted standardised mean difference of ``x`` (treated minus control; formula in the module doc)."""
    x = np.asarray(x, float)
    t = np.asarray(treated, float)
    w = np.ones_like(x) if weights is None else np.asarray(weights, float)
    ok = ~np.isnan(x)
    x, t, w = x[ok], t[ok], w[ok]
    if binary is None:
        binary = set(np.unique(x)) <= {0.0, 1.0}

    def mean_var(s):
        ws, xs = w[s], x[s]
        m = (ws * xs).sum() / ws.sum()
        if binary:
            return m, m * (1 - m)
        return m, ws.sum() / (ws.sum() ** 2 - (ws ** 2).sum()) * (ws * (xs - m) ** 2).sum()

    m1, v1 = mean_var(t == 1)
    m0, v0 = mean_var(t == 0)
    denom = math.sqrt((v1 + v0) / 2)
    if denom == 0:
        return 0.0 if m1 == m0 else float("inf")
    return float((m1 - m0) / denom)


def make_balance_table(patients: pd.DataFrame, terms: Sequence[str], treated, weights: dict[str, np.ndarray],
                       model_terms: Sequence[str] = ()) -> pd.DataFrame:
    """SMD of every term before weighting and under each weighting scheme.

    Columns: ``term``, ``label``, ``in_model`` (term in the PS model), ``mean_CMT``, ``mean_CMT+ICI``
    (unweighted; proportions for indicators), ``smd_unweighted`` and ``smd_<scheme>`` per weights entry.
    """
    X = make_design(patients, terms, allow_missing=True)
    t = np.asarray(treated, float)
    labels = _dictionary_labels()
    rows = []
    for term in X.columns:
        x = X[term].to_numpy()
        binary = set(np.unique(x[~np.isnan(x)])) <= {0.0, 1.0}
        row = {"term": term, "label": term_label(term, labels), "in_model": term in set(model_terms),
               "binary": binary,
               "mean_CMT": float(np.nanmean(x[t == 0])), "mean_CMT+ICI": float(np.nanmean(x[t == 1])),
               "smd_unweighted": standardized_difference(x, t, None, binary)}
        for name, w in weights.items():
            row[f"smd_{name}"] = standardized_difference(x, t, w, binary)
        rows.append(row)
    return pd.DataFrame(rows)


def balance_summary(balance: pd.DataFrame, target: float = SMD_TARGET, model_only: bool = True) -> dict:
    """Max |SMD| and number of terms with |SMD| >= target per column; ``achieved`` per weighting scheme."""
    b = balance[balance["in_model"]] if model_only else balance
    out = {}
    for col in [c for c in balance.columns if c.startswith("smd_")]:
        a = b[col].abs()
        name = col[4:]
        out[name] = {"max_abs_smd": float(a.max()), "n_terms": int(len(a)),
                     "n_above_target": int((a >= target).sum()), "achieved": bool((a < target).all()),
                     "terms_above_target": list(b.loc[a >= target, "term"])}
    return out


def format_balance_table(balance: pd.DataFrame, weight_names: dict[str, str]) -> pd.DataFrame:
    """Display version of :func:`make_balance_table`: labels, unweighted means, SMDs to 2 decimals."""
    out = pd.DataFrame({"Covariate": balance["label"] + np.where(balance["in_model"], "", " †")})

    def mean_text(v, binary):
        return f"{100 * v:.1f}%" if binary else f"{v:.1f}"

    out["CMT"] = [mean_text(v, b) for v, b in zip(balance["mean_CMT"], balance["binary"])]
    out["CMT+ICI"] = [mean_text(v, b) for v, b in zip(balance["mean_CMT+ICI"], balance["binary"])]
    out["SMD unweighted"] = balance["smd_unweighted"].map(lambda v: f"{v:.2f}")
    for key, name in weight_names.items():
        out[f"SMD {name}"] = balance[f"smd_{key}"].map(lambda v: f"{v:.2f}")
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


def _score_residuals(time, event, z, w, beta, ties):
    """Per-subject score residuals of the arm coefficient (R ``residuals(fit, "score")``, unweighted).

    Whole-array form, O(n log n): with, per Efron term e of event time u, zbar_e (weighted mean of z
    in the term's risk set), haz_e (hazard increment) and down_e (1 - j/d, the weight of a dying
    subject in the term), subject i's residual is

        delta_i (z_i - mean_e zbar_e) - r_i sum_{u <= t_i} sum_e (z_i - zbar_e) haz_e c_ie,

    with r_i = exp(beta z_i) and c_ie = down_e when i dies at u, else 1 (Breslow: one term, down = 1).
    """
    time = np.asarray(time, float)
    event = np.asarray(event, float)
    z = np.asarray(z, float)
    w = np.asarray(w, float)
    risk = np.exp(beta * z)
    ut = np.unique(time[event == 1])
    order = np.argsort(-time, kind="stable")
    pos = len(time) - np.searchsorted(np.sort(time), ut, side="left") - 1   # last index with time >= u
    s0 = np.cumsum((w * risk)[order])[pos]
    s1 = np.cumsum((w * risk * z)[order])[pos]
    dead = event == 1
    k_dead = np.searchsorted(ut, time[dead])
    e0 = np.bincount(k_dead, weights=(w * risk)[dead], minlength=len(ut))
    e1 = np.bincount(k_dead, weights=(w * risk * z)[dead], minlength=len(ut))
    nd = np.bincount(k_dead, minlength=len(ut))
    wd = np.bincount(k_dead, weights=w[dead], minlength=len(ut))
    if ties == "efron":
        term_k = np.repeat(np.arange(len(ut)), nd)
        starts = np.cumsum(nd) - nd
        frac = (np.arange(nd.sum()) - starts[term_k]) / nd[term_k]
        haz = (wd / nd)[term_k] / (s0[term_k] - frac * e0[term_k])
        down = 1 - frac
    else:
        term_k, frac = np.arange(len(ut)), np.zeros(len(ut))
        haz, down = wd / s0, np.ones(len(ut))
    zbar = (s1[term_k] - frac * e1[term_k]) / (s0[term_k] - frac * e0[term_k])
    # per event time: sums over its terms (full weight, and the dying subjects' down-weighted)
    h0 = np.bincount(term_k, weights=haz, minlength=len(ut))
    h1 = np.bincount(term_k, weights=zbar * haz, minlength=len(ut))
    h0_down = np.bincount(term_k, weights=haz * down, minlength=len(ut))
    h1_down = np.bincount(term_k, weights=zbar * haz * down, minlength=len(ut))
    zbar_mean = np.bincount(term_k, weights=zbar, minlength=len(ut)) / np.bincount(term_k, minlength=len(ut))
    # cumulative over event times u <= t_i
    upto = np.searchsorted(ut, time, side="right")
    H0 = np.concatenate([[0.0], np.cumsum(h0)])[upto]
    H1 = np.concatenate([[0.0], np.cumsum(h1)])[upto]
    resid = -risk * (z * H0 - H1)
    # a dying subject carries the down-weighted terms at its own event time
    rd, zd = risk[dead], z[dead]
    resid[dead] += zd - zbar_mean[k_dead]
    resid[dead] += rd * (zd * h0[k_dead] - h1[k_dead]) - rd * (zd * h0_down[k_dead] - h1_down[k_dead])
    return resid


def fit_weighted_cox(time, event, z, weights=None, ties: str = "efron", conf_level: float = 0.95) -> dict:
    """Weighted Cox HR of binary ``z`` with model-based and robust SE (R ``coxph(..., weights, robust = TRUE)``).

    Returns
    -------
    dict
        ``{"coef", "hr", "se_naive", "se_robust", "lower", "upper", "p", "lower_naive", "upper_naive",
        "p_naive"}``; ``lower``/``upper``/``p`` use the robust SE, the ``_naive`` ones the model-based SE
        (R ``fit$naive.var``; the usual Wald CI when all weights are 1).
    """
    time = np.asarray(time, float)
    w = np.ones(len(time)) if weights is None else np.asarray(weights, float)
    d1sum, d0sum, b0, b1, mw = _cox_pieces(time, event, z, w, ties)
    if d1sum <= 0 or d0sum <= 0:
        warnings.warn("no events in one arm: the weighted Cox HR is not estimable", PropensityCaveatWarning,
                      stacklevel=2)
        return {k: None for k in ("coef", "hr", "se_naive", "se_robust", "lower", "upper", "p",
                                  "lower_naive", "upper_naive", "p_naive")}
    beta, info, _, _ = _cox_newton(d1sum, b0, b1, mw)
    resid = _score_residuals(time, event, z, w, beta, ties)
    se_robust = math.sqrt(((w * resid / info) ** 2).sum())
    q = stats.norm.ppf(1 - (1 - conf_level) / 2)
    se_naive = 1 / math.sqrt(info)
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
    """Weighted Kaplan-Meier curve (R ``survfit(Surv(t, e) ~ 1, weights = w)``): columns time, surv."""
    time = np.asarray(time, float)
    event = np.asarray(event, float)
    w = np.ones(len(time)) if weights is None else np.asarray(weights, float)
    ut = np.unique(time)
    idx = np.searchsorted(ut, time)
    deaths = np.bincount(idx, weights=w * event, minlength=len(ut))
    leaving = np.bincount(idx, weights=w, minlength=len(ut))
    at_risk = leaving[::-1].cumsum()[::-1]
    surv = np.cumprod(1 - deaths / at_risk)
    return pd.DataFrame({"time": np.r_[0.0, ut], "surv": np.r_[1.0, surv]})


def weighted_km_at(time, event, weights, times) -> np.ndarray:
    """Weighted KM survival at ``times`` (step function, carried forward; R ``summary(..., extend = TRUE)``)."""
    km = fit_weighted_km(time, event, weights)
    pos = np.searchsorted(km["time"].to_numpy(), np.asarray(times, float), side="right") - 1
    return km["surv"].to_numpy()[pos]


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


def bootstrap_weighted_hr(patients: pd.DataFrame, terms: Sequence[str], n_boot: int = 1000, seed: int = 0,
                          trim_quantiles: tuple[float, float] | None = None, treated_arm: str = "CMT+ICI",
                          endpoints: Sequence[str] = ("os", "pfs"), n_jobs: int = 2, ties: str = "efron",
                          conf_level: float = 0.95) -> dict:
    """Percentile bootstrap of the IPTW (ATE) and overlap-weighted (ATO) Cox HRs, whole pipeline resampled.

    Every replicate resamples all ``patients`` (before the common-support restriction), re-applies the
    common-support rule, refits the PS, recomputes (and trims) the weights and refits the weighted Cox
    models. Indices come from :func:`draw_bootstrap_indices`, so the result is identical for any
    ``n_jobs``. Replicates that cannot be estimated are counted and left out (a
    :class:`BootstrapFailureWarning` if any).

    Returns
    -------
    dict
        ``{endpoint: {"ATE"|"ATO": {"lower", "upper", "se_log", "n_valid"}}, "coefs": ndarray, ...}``.
    """
    X = make_design(patients, terms).to_numpy()
    binary = np.array([set(np.unique(X[:, j])) <= {0.0, 1.0} for j in range(X.shape[1])])
    t = treatment_indicator(patients, treated_arm)
    times = tuple((patients[ENDPOINTS[ep][0]].to_numpy(float), patients[ENDPOINTS[ep][1]].to_numpy(float))
                  for ep in endpoints)
    spec = _PipelineSpec(X, binary, t, times, tuple(trim_quantiles) if trim_quantiles else None, ties)
    indices = draw_bootstrap_indices(len(t), n_boot, seed)
    if n_boot < 1:
        raise ValueError("n_boot must be at least 1")
    if n_jobs <= 1 or n_boot < 8 * n_jobs:
        coefs = _bootstrap_chunk(spec, indices)
    else:
        chunks = [c for c in np.array_split(indices, n_jobs * 4) if len(c)]
        ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else None)
        with ProcessPoolExecutor(max_workers=n_jobs, mp_context=ctx) as pool:
            coefs = np.vstack(list(pool.map(_bootstrap_chunk, [spec] * len(chunks), chunks)))
    alpha = 1 - conf_level
    out: dict = {"n_boot": int(n_boot), "seed": int(seed), "coefs": coefs,
                 "method": f"percentile bootstrap, {n_boot} resamples of patients, whole pipeline (seed {seed})"}
    failures = 0
    for k, ep in enumerate(endpoints):
        out[ep] = {}
        for m, est in enumerate(("ATE", "ATO")):
            c = coefs[:, 2 * k + m]
            ok = c[np.isfinite(c)]
            failures = max(failures, len(c) - len(ok))
            lo, hi = np.quantile(ok, [alpha / 2, 1 - alpha / 2]) if len(ok) else (np.nan, np.nan)
            out[ep][est] = {"lower": float(np.exp(lo)), "upper": float(np.exp(hi)),
                            "se_log": float(np.std(ok, ddof=1)) if len(ok) > 1 else None,
                            "n_valid": int(len(ok))}
    out["n_failed"] = int(failures)
    if failures:
        warnings.warn(f"{failures} of {n_boot} bootstrap replicates could not be estimated and were left out",
                      BootstrapFailureWarning, stacklevel=2)
    return out


# ----------------------------------------------------------------------------- multivariable Cox
def fit_adjusted_cox(patients: pd.DataFrame, terms: Sequence[str], endpoint: str, treated_arm: str = "CMT+ICI",
                     conf_level: float = 0.95) -> dict:
    """Arm HR from a multivariable Cox model with ``terms`` (R ``coxph(Surv ~ arm + ...)``, Efron ties).

    Fitted by the Newton-Raphson of :mod:`helpers.stats.cox` (the engine tested against R's coxph).
    Returns ``{"hr", "lower", "upper", "p", "n", "events", "n_parameters"}`` (Wald CI and P).
    """
    from helpers.stats.cox import _newton_cox
    tcol, ecol, _ = ENDPOINTS[endpoint]
    X = make_design(patients, terms)
    X = X.loc[:, X.nunique() > 1]
    df = X.assign(_arm=treatment_indicator(patients, treated_arm), _t=patients[tcol].to_numpy(float),
                  _e=patients[ecol].to_numpy(float))
    df.columns = [f"x{i}" for i in range(X.shape[1])] + ["_arm", "_t", "_e"]
    design = df[[f"x{i}" for i in range(X.shape[1])] + ["_arm"]].to_numpy(float)
    beta, pl, converged = _newton_cox(design, df["_t"].to_numpy(float), df["_e"].to_numpy(int))
    if not converged:
        warnings.warn(f"multivariable Cox, {endpoint}: Newton-Raphson did not converge (separation?)",
                      PropensityCaveatWarning, stacklevel=2)
    b, se = float(beta[-1]), float(math.sqrt(np.linalg.pinv(pl.information)[-1, -1]))
    q = stats.norm.ppf(1 - (1 - conf_level) / 2)
    events = int(df["_e"].sum())
    if events < 10 * (X.shape[1] + 1):
        warnings.warn(f"multivariable Cox, {endpoint}: {events} events for {X.shape[1] + 1} parameters "
                      f"({events / (X.shape[1] + 1):.1f} per parameter, below the usual 10)",
                      PropensityCaveatWarning, stacklevel=2)
    return {"hr": math.exp(b), "lower": math.exp(b - q * se), "upper": math.exp(b + q * se),
            "p": float(2 * stats.norm.sf(abs(b / se))), "n": int(len(df)), "events": events,
            "n_parameters": int(X.shape[1] + 1)}


# ----------------------------------------------------------------------------- the whole analysis
@dataclass
class SensitivityConfig:
    """Author choices of the confounding-adjusted analysis (set in the notebook's first cell)."""

    ps_covariates: Sequence[str]
    estimand: str = "ATO"
    trim_quantiles: tuple[float, float] | None = (0.01, 0.99)
    n_bootstrap: int = 1000
    seed: int = 0
    ci_method: str = "auto"        # "bootstrap", "robust" or "auto" (see resolve_ci_method)
    era_start_year: int | None = None
    era_end_year: int | None = None
    balance_extra: Sequence[str] = ()
    treated_arm: str = "CMT+ICI"
    reference_arm: str = "CMT"
    n_jobs: int = 2


@dataclass
class SensitivityResults:
    """Everything the notebook shows and ``results.json`` stores (see :func:`sensitivity_payload`)."""

    config: SensitivityConfig
    patients: pd.DataFrame        # common-support population (with start_year)
    all_patients: pd.DataFrame
    ps_fit: PropensityFit
    weights: dict
    balance: pd.DataFrame
    weighted: dict                # estimand -> endpoint -> fit_weighted_cox dict (+ bootstrap CI)
    bootstrap: dict
    unadjusted: dict              # "all"|"support" -> endpoint -> fit_weighted_cox dict (w = 1)
    adjusted: dict                # endpoint -> fit_adjusted_cox dict
    year_adjusted: dict           # endpoint -> fit_adjusted_cox dict (+ start_year)
    era: dict
    evalues: dict
    caveats: list[str] = field(default_factory=list)
    ci_method: str = "bootstrap"  # the CI method that ran for the weighted HRs: "bootstrap" or "robust"

    @property
    def ci_label(self) -> str:
        """Short name of the weighted HRs' CI, for table cells and headers."""
        if self.ci_method == "bootstrap":
            return f"percentile bootstrap ({self.config.n_bootstrap} replicates)"
        return "robust (sandwich) SE, ignores PS estimation"

    @property
    def ci_sentence(self) -> str:
        """The methods sentence(s) on the weighted HRs' confidence interval."""
        if self.ci_method == "bootstrap":
            return (f"Its 95% confidence interval is a percentile bootstrap interval from "
                    f"{self.config.n_bootstrap:,} resamples of all patients (with replacement); every resample "
                    "repeats the whole pipeline (common-support exclusion, propensity model, weights and "
                    "truncation, Cox model), so the interval reflects the uncertainty of the estimated "
                    f"propensity score. The resamples were drawn before any computation from a single seed "
                    f"({self.config.seed}) and computed in parallel, with results identical for any number of "
                    "worker processes. The robust (sandwich) confidence interval of the weighted Cox model "
                    "(R `coxph(..., weights = w, robust = TRUE)`) is shown for comparison: it treats the "
                    "weights as known and can be biased [@austin2016].")
        reason = (f"with {len(self.all_patients):,} patients (more than {BOOTSTRAP_MAX_N:,}, the limit of the "
                  "automatic choice) the percentile bootstrap of the whole pipeline was not run"
                  if self.config.ci_method == "auto" else "the analysis was set to use it")
        return ("Its 95% confidence interval uses the robust (sandwich) variance of the weighted Cox model "
                "(R `coxph(..., weights = w, robust = TRUE)`); it treats the weights as known, which ignores "
                f"the uncertainty of the estimated propensity score [@austin2016]; {reason}.")


#: With ``ci_method="auto"``, the percentile bootstrap runs up to this many patients; above it, the robust
#: (sandwich) CI. The bootstrap's cost is replicates x n log n (about 0.1 s per replicate at 100,000
#: patients, so 1,000 replicates of the main and the era analysis would take minutes); at that size the
#: uncertainty of the estimated propensity score that the bootstrap adds is small next to the sandwich's.
BOOTSTRAP_MAX_N = 5000

CI_METHODS = ("bootstrap", "robust", "auto")


def resolve_ci_method(ci_method: str, n_patients: int) -> str:
    """The CI method that runs: "bootstrap" or "robust"; "auto" is bootstrap up to BOOTSTRAP_MAX_N patients."""
    if ci_method not in CI_METHODS:
        raise ValueError(f"ci_method must be one of {CI_METHODS}, got {ci_method!r}")
    if ci_method == "auto":
        return "bootstrap" if n_patients <= BOOTSTRAP_MAX_N else "robust"
    return ci_method


def robust_interval(fits: dict, n_patients: int) -> dict:
    """The robust (sandwich) CI in the structure of :func:`bootstrap_weighted_hr`'s result (no replicates)."""
    out: dict = {"n_boot": 0, "seed": None, "coefs": None, "n_failed": 0,
                 "method": f"robust (sandwich) variance of the weighted Cox model, {n_patients:,} patients"}
    for est in fits:
        for ep, f in fits[est].items():
            out.setdefault(ep, {})[est] = {"lower": f["lower"], "upper": f["upper"],
                                           "se_log": f["se_robust"], "n_valid": 0}
    return out


def era_window(patients: pd.DataFrame, start: int | None = None, end: int | None = None,
               treated_arm: str = "CMT+ICI") -> tuple[int, int]:
    """Calendar years in which both arms started treatment: first CMT+ICI year to last CMT year by default."""
    p = add_start_year(patients)
    t = treatment_indicator(p, treated_arm) == 1
    lo = int(p.loc[t, "start_year"].min()) if start is None else int(start)
    hi = int(p.loc[~t, "start_year"].max()) if end is None else int(end)
    return lo, hi


def _weighted_fits(patients, ps_fit, trim_quantiles):
    t = ps_fit.treated.to_numpy()
    weights = {"ATE": compute_weights(ps_fit.ps, t, "ATE", trim_quantiles),
               "ATO": compute_weights(ps_fit.ps, t, "ATO")}
    fits = {}
    for est, w in weights.items():
        fits[est] = {}
        for ep, (tcol, ecol, _) in ENDPOINTS.items():
            fits[est][ep] = fit_weighted_cox(patients[tcol], patients[ecol], t, w)
    return weights, fits


def _attach_bootstrap(fits: dict, boot: dict) -> None:
    for est in fits:
        for ep in fits[est]:
            b = boot[ep][est]
            fits[est][ep].update({"boot_lower": b["lower"], "boot_upper": b["upper"],
                                  "boot_se_log": b["se_log"], "boot_n_valid": b["n_valid"]})


def run_sensitivity(patients: pd.DataFrame, config: SensitivityConfig) -> SensitivityResults:
    """Run the confounding-adjusted comparison: PS, weights, balance, weighted/adjusted Cox, era, E-values.

    Caveat warnings (positivity, imbalance, bootstrap failures) are re-issued and kept in ``caveats``.
    """
    from helpers.stats.evalue import evalue_hr

    if config.estimand not in ESTIMANDS:
        raise ValueError(f"estimand must be one of {sorted(ESTIMANDS)}, got {config.estimand!r}")
    ci_method = resolve_ci_method(config.ci_method, len(patients))
    allp = add_start_year(patients)
    caveats: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ps_fit = fit_propensity(allp, config.ps_covariates, config.treated_arm)
        kept = allp.loc[ps_fit.ps.index]
        weights, fits = _weighted_fits(kept, ps_fit, config.trim_quantiles)
        balance_terms = list(config.ps_covariates) + [b for b in config.balance_extra
                                                      if b not in config.ps_covariates]
        balance = make_balance_table(kept, balance_terms, ps_fit.treated, weights, ps_fit.terms)
        # terms made constant by the common-support exclusion carry no information about balance
        balance = balance[~balance["term"].isin(ps_fit.support.dropped_terms)].reset_index(drop=True)
        summary = balance_summary(balance)
        for est in ("ATE", "ATO"):
            if not summary[est]["achieved"]:
                warnings.warn(f"{WEIGHT_NAMES[est]} weights: |SMD| >= {SMD_TARGET} after weighting for "
                              + "; ".join(term_label(x) for x in summary[est]["terms_above_target"]),
                              ImbalanceWarning)
        if ci_method == "bootstrap":
            boot = bootstrap_weighted_hr(allp, config.ps_covariates, config.n_bootstrap, config.seed,
                                         config.trim_quantiles, config.treated_arm, n_jobs=config.n_jobs)
        else:
            boot = robust_interval(fits, len(allp))
        _attach_bootstrap(fits, boot)
        unadjusted = {}
        for name, frame in (("all", allp), ("support", kept)):
            z = treatment_indicator(frame, config.treated_arm)
            unadjusted[name] = {ep: fit_weighted_cox(frame[tc], frame[ec], z) for ep, (tc, ec, _) in ENDPOINTS.items()}
        adjusted = {ep: fit_adjusted_cox(kept, ps_fit.terms, ep, config.treated_arm) for ep in ENDPOINTS}
        year_adjusted = {ep: fit_adjusted_cox(kept, list(ps_fit.terms) + ["start_year"], ep, config.treated_arm)
                         for ep in ENDPOINTS}
        # calendar era: restrict to the years in which both arms were treated and repeat the pipeline
    with warnings.catch_warnings(record=True) as caught_era:
        warnings.simplefilter("always")
        lo, hi = era_window(allp, config.era_start_year, config.era_end_year, config.treated_arm)
        era_p = allp[(allp["start_year"] >= lo) & (allp["start_year"] <= hi)]
        era_ps = fit_propensity(era_p, config.ps_covariates, config.treated_arm)
        era_kept = era_p.loc[era_ps.ps.index]
        era_w, era_fits = _weighted_fits(era_kept, era_ps, config.trim_quantiles)
        if ci_method == "bootstrap":
            era_boot = bootstrap_weighted_hr(era_p, config.ps_covariates, config.n_bootstrap, config.seed,
                                             config.trim_quantiles, config.treated_arm, n_jobs=config.n_jobs)
        else:
            era_boot = robust_interval(era_fits, len(era_p))
        _attach_bootstrap(era_fits, era_boot)
        era_balance = balance_summary(make_balance_table(era_kept, era_ps.terms, era_ps.treated, era_w, era_ps.terms))
        era_t = era_ps.treated.to_numpy()
        era = {"years": [lo, hi], "n": int(len(era_kept)), "n_excluded_support": int(len(era_p) - len(era_kept)),
               "n_by_arm": {config.reference_arm: int((era_t == 0).sum()), config.treated_arm: int((era_t == 1).sum())},
               "c_statistic": era_ps.c_statistic, "weighted": era_fits, "balance": era_balance,
               "bootstrap_failed": era_boot["n_failed"],
               "unadjusted": {ep: fit_weighted_cox(era_p[tc], era_p[ec], treatment_indicator(era_p, config.treated_arm))
                              for ep, (tc, ec, _) in ENDPOINTS.items()}}
    for w in caught_era:
        caught.append(warnings.WarningMessage(f"era {lo}-{hi} analysis: {w.message}", w.category, w.filename,
                                              w.lineno))
    seen = set()
    for w in caught:
        text = str(w.message)
        if issubclass(w.category, PropensityCaveatWarning) and text not in seen:
            seen.add(text)
            caveats.append(text)
            warnings.warn(w.message, w.category, stacklevel=2)
    evalues = {}
    for ep in ENDPOINTS:
        f = fits[config.estimand][ep]
        evalues[ep] = evalue_hr(f["hr"], f["boot_lower"], f["boot_upper"], rare=False)
    return SensitivityResults(config, kept, allp, ps_fit, weights, balance, fits, boot, unadjusted, adjusted,
                              year_adjusted, era, evalues, caveats, ci_method)


# ----------------------------------------------------------------------------- tables
def _fmt_hr(hr, lo, hi) -> str:
    from helpers.report.formatting import format_estimate_ci
    if hr is None:
        return "NE"
    return format_estimate_ci(hr, lo, hi, digits=2).replace("95% CI ", "")


def make_ps_model_table(res: SensitivityResults) -> pd.DataFrame:
    """Propensity model coefficients as odds ratios with Wald 95% CI (R ``exp(confint.default(glm))``)."""
    from helpers.report.formatting import format_p
    c = res.ps_fit.coefficients
    c = c[c["term"] != "(Intercept)"]
    labels = _dictionary_labels()
    q = stats.norm.ppf(0.975)
    return pd.DataFrame({
        "Covariate": [term_label(t, labels) for t in c["term"]],
        "Odds ratio for CMT+ICI (95% CI)": [_fmt_hr(math.exp(b), math.exp(b - q * s), math.exp(b + q * s))
                                            for b, s in zip(c["log_odds"], c["se"])],
        "P (Wald)": [format_p(p) for p in c["p"]]})


def make_weight_table(res: SensitivityResults) -> pd.DataFrame:
    """Weight distribution per scheme and arm (sum, min, median, max, Kish effective sample size)."""
    s = summarize_weights(res.weights, res.ps_fit.treated, (res.config.reference_arm, res.config.treated_arm))
    names = {"ATE": "Stabilised IPTW (ATE)", "ATO": "Overlap (ATO)"}
    return pd.DataFrame({"Weights": s["weights"].map(names), "Arm": s["arm"], "n": s["n"],
                         "Sum": s["sum"].map(lambda v: f"{v:.1f}"), "Min": s["min"].map(lambda v: f"{v:.2f}"),
                         "Median": s["median"].map(lambda v: f"{v:.2f}"), "Max": s["max"].map(lambda v: f"{v:.2f}"),
                         "Effective n": s["ess"].map(lambda v: f"{v:.1f}")})


def make_balance_display(res: SensitivityResults) -> pd.DataFrame:
    """Balance table for display: unweighted means/proportions by arm and SMD unweighted, IPTW, overlap."""
    return format_balance_table(res.balance, WEIGHT_NAMES)


def balance_footnote(res: SensitivityResults) -> str:
    """Footnote of the balance table: SMD formula, target, dagger meaning, dropped terms."""
    dropped = res.ps_fit.support.dropped_terms
    text = ("SMD: standardised mean difference, CMT+ICI minus CMT, (weighted) mean difference over the square root "
            "of the mean of the two arms' (weighted) variances (Austin 2009; Austin and Stuart 2015); target "
            f"|SMD| < {SMD_TARGET}. Means and percentages are unweighted. † Not in the propensity model "
            "(shown for balance only).")
    if dropped:
        text += (f" Not shown: {'; '.join(term_label(t) for t in dropped)}, a level seen in one arm only; its "
                 f"{len(res.ps_fit.support.excluded)} patient(s) were excluded from the weighted analyses "
                 "(no common support).")
    return text


def _hr_row(name, n, os_, pfs, ci, lo="lower", hi="upper"):
    return {"Analysis": name, "Patients": n,
            "OS HR (95% CI)": _fmt_hr(os_["hr"], os_[lo], os_[hi]) if os_ else "NE",
            "PFS HR (95% CI)": _fmt_hr(pfs["hr"], pfs[lo], pfs[hi]) if pfs else "NE", "CI": ci}


def make_hr_table(res: SensitivityResults) -> pd.DataFrame:
    """Arm hazard ratios (CMT+ICI vs CMT) of every analysis, with the CI method of each row."""
    n_all, n = len(res.all_patients), len(res.patients)
    u, a, y, wt, era = res.unadjusted, res.adjusted, res.year_adjusted, res.weighted, res.era
    boot = res.ci_label
    rows = [_hr_row("Unadjusted Cox, all patients", n_all, u["all"]["os"], u["all"]["pfs"], "Wald",
                    "lower_naive", "upper_naive"),
            _hr_row("Unadjusted Cox, common support", n, u["support"]["os"], u["support"]["pfs"], "Wald",
                    "lower_naive", "upper_naive"),
            _hr_row("Multivariable Cox (propensity covariates)", n, a["os"], a["pfs"], "Wald")]
    for est in ("ATE", "ATO"):
        name = "IPTW (ATE), stabilised" + (", truncated" if res.config.trim_quantiles else "") if est == "ATE" \
            else "Overlap weights (ATO)"
        rows.append(_hr_row(name, n, wt[est]["os"], wt[est]["pfs"], boot, "boot_lower", "boot_upper"))
        if res.ci_method == "bootstrap":   # the sandwich CI for comparison (it is the main one otherwise)
            rows.append(_hr_row(name, n, wt[est]["os"], wt[est]["pfs"], "robust (sandwich) SE, ignores PS estimation"))
    rows.append(_hr_row("Multivariable Cox + start year", n, y["os"], y["pfs"], "Wald"))
    lo, hi = era["years"]
    era_name = f"Era {lo}–{hi}: " + ("overlap weights" if res.config.estimand == "ATO" else "IPTW")
    rows.append(_hr_row(f"Era {lo}–{hi}: unadjusted Cox", sum(era["n_by_arm"].values()) + era["n_excluded_support"],
                        era["unadjusted"]["os"], era["unadjusted"]["pfs"], "Wald", "lower_naive", "upper_naive"))
    rows.append(_hr_row(era_name, era["n"], era["weighted"][res.config.estimand]["os"],
                        era["weighted"][res.config.estimand]["pfs"], boot, "boot_lower", "boot_upper"))
    return pd.DataFrame(rows)


def make_evalue_table(res: SensitivityResults) -> pd.DataFrame:
    """E-values of the primary weighted OS and PFS hazard ratios (point estimate and CI limit)."""
    rows = []
    for ep, (_, _, label) in ENDPOINTS.items():
        e = res.evalues[ep]
        header = "HR (95% bootstrap CI)" if res.ci_method == "bootstrap" else "HR (95% robust CI)"
        rows.append({"Endpoint": label, header: _fmt_hr(e["hr"], e["lower"], e["upper"]),
                     "Risk-ratio scale": f"{e['rr']:.2f}", "E-value, estimate": f"{e['evalue_point']:.2f}",
                     "E-value, CI limit": f"{e['evalue_ci']:.2f}"})
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- figures
def plot_ps_overlap(res: SensitivityResults, bins: int = 20):
    """Mirrored histogram of the propensity score: CMT+ICI above the axis, CMT below."""
    import matplotlib.pyplot as plt
    from helpers.report.figures import COLUMN_WIDTH_IN, arm_colour, style_context
    ps, t = res.ps_fit.ps.to_numpy(), res.ps_fit.treated.to_numpy()
    edges = np.linspace(0, 1, bins + 1)
    with style_context():
        fig, ax = plt.subplots(figsize=(COLUMN_WIDTH_IN, COLUMN_WIDTH_IN * 0.8))
        h1, _ = np.histogram(ps[t == 1], edges)
        h0, _ = np.histogram(ps[t == 0], edges)
        width = np.diff(edges)
        ax.bar(edges[:-1], h1, width, align="edge", color=arm_colour(res.config.treated_arm),
               edgecolor="white", linewidth=0.4, label=f"{res.config.treated_arm} (n = {int(t.sum())})")
        ax.bar(edges[:-1], -h0, width, align="edge", color=arm_colour(res.config.reference_arm),
               edgecolor="white", linewidth=0.4, label=f"{res.config.reference_arm} (n = {int((t == 0).sum())})")
        ax.axhline(0, color="black", linewidth=0.6)
        ax.set_xlim(0, 1)
        ax.set_xlabel("Propensity score (probability of CMT+ICI)")
        ax.set_ylabel("Patients")
        ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{abs(v):g}"))
        ax.legend(loc="upper right")
        ax.set_title(f"c-statistic {res.ps_fit.c_statistic:.2f}", loc="left")
        fig.tight_layout()
    return fig


def plot_love(res: SensitivityResults):
    """Love plot: |SMD| of each covariate unweighted and under IPTW and overlap weights; line at 0.1."""
    import matplotlib.pyplot as plt
    from helpers.report.figures import COLUMN_WIDTH_IN, OKABE_ITO, style_context
    b = res.balance.iloc[::-1]
    labels = (b["label"] + np.where(b["in_model"], "", " †")).tolist()
    y = np.arange(len(b))
    series = [("smd_unweighted", "Unweighted", "o", OKABE_ITO["black"]),
              ("smd_ATE", "IPTW (ATE)", "s", OKABE_ITO["orange"]),
              ("smd_ATO", "Overlap (ATO)", "^", OKABE_ITO["bluish_green"])]
    with style_context():
        fig, ax = plt.subplots(figsize=(COLUMN_WIDTH_IN * 1.6, 0.22 * len(b) + 1.0))
        for col, name, marker, colour in series:
            ax.scatter(b[col].abs(), y, marker=marker, s=16, color=colour, label=name, zorder=3,
                       facecolors="none" if marker == "o" else colour)
        ax.axvline(SMD_TARGET, color="grey", linestyle="--", linewidth=0.8)
        ax.set_yticks(y, labels)
        ax.set_xlabel("Absolute standardised mean difference")
        ax.grid(axis="y", color="0.9", linewidth=0.5)
        ax.legend(loc="upper right", frameon=True, framealpha=1.0, edgecolor="white")
        fig.tight_layout()
    return fig


def plot_weighted_km(res: SensitivityResults, estimand: str | None = None):
    """Weighted Kaplan-Meier curves of OS and PFS by arm (solid), unweighted curves dotted for reference."""
    import matplotlib.pyplot as plt
    from helpers.report.figures import WIDE_WIDTH_IN, arm_colour, style_context
    est = estimand or res.config.estimand
    p, t, w = res.patients, res.ps_fit.treated.to_numpy(), res.weights[est]
    with style_context():
        fig, axes = plt.subplots(1, 2, figsize=(WIDE_WIDTH_IN * 1.3, WIDE_WIDTH_IN * 0.6), sharey=True)
        for ax, (ep, (tcol, ecol, label)) in zip(axes, ENDPOINTS.items()):
            for value, arm in ((0, res.config.reference_arm), (1, res.config.treated_arm)):
                s = t == value
                km_w = fit_weighted_km(p[tcol].to_numpy()[s], p[ecol].to_numpy()[s], w[s])
                km_u = fit_weighted_km(p[tcol].to_numpy()[s], p[ecol].to_numpy()[s])
                ax.step(km_w["time"], km_w["surv"], where="post", color=arm_colour(arm),
                        label=f"{arm}, {WEIGHT_NAMES[est]}")
                ax.step(km_u["time"], km_u["surv"], where="post", color=arm_colour(arm), linestyle=":",
                        linewidth=0.8, label=f"{arm}, unweighted")
            f = res.weighted[est][ep]
            ax.set_title(f"{label}\nweighted HR {_fmt_hr(f['hr'], f['boot_lower'], f['boot_upper'])}", loc="left")
            ax.set_xlabel("Months since start of first-line treatment")
            ax.set_ylim(0, 1.02)
            ax.set_xlim(left=0)
        axes[0].set_ylabel("Probability")
        axes[1].legend(loc="upper right")
        fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- results.json and text
def _hr_payload(f: dict, ci: str) -> dict:
    if f is None or f.get("hr") is None:
        return {"hr": None}
    out = {"hr": f["hr"], "coef": f["coef"], "ci_method": ci}
    if "boot_lower" in f:
        out.update({"lower": f["boot_lower"], "upper": f["boot_upper"], "boot_se_log": f["boot_se_log"],
                    "boot_n_valid": f["boot_n_valid"], "robust_lower": f["lower"], "robust_upper": f["upper"],
                    "robust_se_log": f["se_robust"], "p_robust": f["p"]})
    else:
        out.update({"lower": f["lower_naive"], "upper": f["upper_naive"], "p": f["p_naive"]})
    return out


def _text_hr(f: dict, boot: bool = True) -> str:
    if f.get("hr") is None:
        return "not estimable"
    lo, hi = (f["boot_lower"], f["boot_upper"]) if boot and "boot_lower" in f else (
        (f["lower_naive"], f["upper_naive"]) if "lower_naive" in f else (f["lower"], f["upper"]))
    from helpers.report.formatting import format_estimate_ci
    return format_estimate_ci(f["hr"], lo, hi, digits=2)


def describe_overlap(res: SensitivityResults) -> dict:
    """Sentences on the propensity model's discrimination and the overlap of the arms' scores."""
    c = res.ps_fit.c_statistic
    grade = ("little" if c < 0.6 else "modestly" if c < 0.7 else "moderately" if c < 0.8 else "strongly")
    ps, t = res.ps_fit.ps.to_numpy(), res.ps_fit.treated.to_numpy()
    lo, hi = max(ps[t == 1].min(), ps[t == 0].min()), min(ps[t == 1].max(), ps[t == 0].max())
    inside = int(((ps >= lo) & (ps <= hi)).sum())
    return {"ps_discrimination": f"discriminated {grade} between the arms (c-statistic {c:.2f})",
            "ps_overlap": (f"{inside} of {len(ps)} patients had a propensity score within the range shared by "
                           f"both arms ({lo:.2f} to {hi:.2f})"),
            "ps_range": f"{lo:.2f} to {hi:.2f}"}


def describe_robustness(res: SensitivityResults) -> dict:
    """Plain-language statements generated from the results: per endpoint and overall conclusion."""
    est = res.config.estimand
    out = {}
    verdicts = {}
    for ep, (_, _, label) in ENDPOINTS.items():
        w = res.weighted[est][ep]
        adj = res.adjusted[ep]
        era = res.era["weighted"][est][ep]
        ev = res.evalues[ep]
        checks = {"weighted": w["boot_upper"] < 1, "adjusted": adj["upper"] < 1,
                  "era": era["hr"] is not None and era["boot_upper"] < 1,
                  "era_direction": era["hr"] is not None and era["hr"] < 1}
        verdicts[ep] = checks
        name = label.lower()
        wname = "overlap-weighted" if est == "ATO" else "IPTW"
        hrs = f"{wname} HR {_text_hr(w)}, multivariable Cox HR {_text_hr(adj)}"
        if checks["weighted"] and checks["adjusted"]:
            first = f"The {name} benefit of CMT+ICI persisted after adjustment for the measured baseline covariates: {hrs}."
        elif checks["weighted"] or checks["adjusted"]:
            first = f"The {name} benefit of CMT+ICI was not consistent across adjustment methods: {hrs}."
        else:
            first = f"After adjustment for the measured baseline covariates the {name} difference was compatible with no effect: {hrs}."
        lo, hi = res.era["years"]
        where = f"in patients who started treatment in {lo}–{hi}, when both regimens were in use"
        if checks["era"]:
            second = f"The benefit was also seen {where}: {wname} HR {_text_hr(era)}."
        elif checks["era_direction"]:
            second = (f"Restricted {where}, the estimate pointed the same way but its CI included 1: "
                      f"{wname} HR {_text_hr(era)}.")
        else:
            second = f"Restricted {where}, no benefit was seen: {wname} HR {_text_hr(era)}."
        sentence = f"{first} {second}"
        out[f"statement_{ep}"] = sentence
        if ev["evalue_ci"] > 1:
            out[f"evalue_{ep}"] = (f"To explain away the {name} hazard ratio, an unmeasured confounder would need to be "
                                   f"associated with both receiving an ICI and the outcome by a risk ratio of at least "
                                   f"{ev['evalue_point']:.2f} each, beyond the measured covariates; a weaker confounder "
                                   f"(risk ratio {ev['evalue_ci']:.2f} each) could move the 95% CI to include 1.")
        else:
            out[f"evalue_{ep}"] = (f"The 95% CI of the {name} hazard ratio already includes 1; an unmeasured confounder "
                                   f"associated with treatment and outcome by a risk ratio of {ev['evalue_point']:.2f} "
                                   f"each could explain away the point estimate.")
    robust = {ep: c["weighted"] and c["adjusted"] and c["era_direction"] for ep, c in verdicts.items()}
    full = {ep: robust[ep] and verdicts[ep]["era"] for ep in verdicts}
    bal = balance_summary(res.balance)[est]
    bal_text = (f"with {WEIGHT_NAMES[est]} weights the {bal['n_terms']} propensity-model covariates were balanced"
                if bal["achieved"] else f"although with {WEIGHT_NAMES[est]} weights balance was not achieved for "
                + ", ".join(term_label(x) for x in bal["terms_above_target"]))

    def ep_names(eps):
        return " and ".join({"os": "overall survival", "pfs": "progression-free survival"}[e] for e in eps)

    yes = [ep for ep in robust if robust[ep]]
    no = [ep for ep in robust if not robust[ep]]
    if yes and not no:
        core = f"The {ep_names(yes)} benefit of adding an ICI is robust to the measured confounders"
    elif yes:
        core = (f"The {ep_names(yes)} benefit of adding an ICI is robust to the measured confounders, "
                f"whereas the {ep_names(no)} benefit is not")
    else:
        core = "The benefit of adding an ICI is not robust to adjustment for the measured confounders"
    era_note = (" and to restricting the comparison to the years in which both regimens were in use"
                if yes and all(full[e] for e in yes) else
                "; in the contemporaneous era alone the smaller sample gave less precise estimates whose CI included 1"
                if yes else "")
    out["conclusion"] = (f"{core}{era_note} ({bal_text}). Unmeasured confounding (for example by PD-L1 expression "
                         "or by changes in supportive care over time) cannot be excluded in a non-randomised "
                         "cohort; the E-values give the strength it would need.")
    out["robust_os"] = "yes" if robust["os"] else "no"
    out["robust_pfs"] = "yes" if robust["pfs"] else "no"
    return out


def _ordinal(x: float) -> str:
    n = f"{x:g}"
    if not float(x).is_integer():
        return f"{n}th"
    k = int(x)
    suffix = "th" if 10 <= k % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(k % 10, "th")
    return f"{k}{suffix}"


def sensitivity_payload(res: SensitivityResults) -> dict:
    """The ``sensitivity`` section of results.json (numbers plus ready-formatted ``text`` strings)."""
    from helpers.report.formatting import format_number
    cfg = res.config
    boot_ci = (f"percentile bootstrap, {cfg.n_bootstrap} replicates (seed {cfg.seed})" if res.ci_method == "bootstrap"
               else "robust (sandwich) variance")
    support = res.ps_fit.support
    t = res.ps_fit.treated.to_numpy()
    weights_summary = summarize_weights(res.weights, t, (cfg.reference_arm, cfg.treated_arm))
    bal = balance_summary(res.balance)
    bal_all = balance_summary(res.balance, model_only=False)
    payload = {
        "config": {"ps_covariates": list(cfg.ps_covariates), "estimand": cfg.estimand,
                   "trim_quantiles": list(cfg.trim_quantiles) if cfg.trim_quantiles else None,
                   "n_bootstrap": cfg.n_bootstrap, "seed": cfg.seed, "era_years": res.era["years"],
                   "ci_method": cfg.ci_method, "ci_method_used": res.ci_method,
                   "bootstrap_max_n": BOOTSTRAP_MAX_N},
        "population": {"n_all": int(len(res.all_patients)), "n": int(len(res.patients)),
                       "n_excluded": int(len(support.excluded)),
                       "excluded_by_arm": support.excluded["arm"].astype(str).value_counts().to_dict(),
                       "dropped_terms": support.dropped_terms,
                       "n_by_arm": {cfg.reference_arm: int((t == 0).sum()), cfg.treated_arm: int((t == 1).sum())}},
        "ps": {"terms": res.ps_fit.terms, "c_statistic": res.ps_fit.c_statistic,
               "coefficients": res.ps_fit.coefficients, "converged": res.ps_fit.converged},
        "iptw": {"weights": weights_summary[weights_summary["weights"] == "ATE"],
                 **{ep: _hr_payload(res.weighted["ATE"][ep], boot_ci) for ep in ENDPOINTS}},
        "overlap": {"weights": weights_summary[weights_summary["weights"] == "ATO"],
                    **{ep: _hr_payload(res.weighted["ATO"][ep], boot_ci) for ep in ENDPOINTS}},
        "unadjusted": {k: {ep: _hr_payload(v[ep], "Wald") for ep in ENDPOINTS} for k, v in res.unadjusted.items()},
        "adjusted": {ep: {**res.adjusted[ep], "ci_method": "Wald"} for ep in ENDPOINTS},
        "evalue": {ep: {**res.evalues[ep], "estimand": cfg.estimand} for ep in ENDPOINTS},
        "balance": {"model_terms": bal, "all_terms": bal_all, "target": SMD_TARGET,
                    "table": res.balance.drop(columns=["binary"])},
        "era": {"years": res.era["years"], "n": res.era["n"], "n_by_arm": res.era["n_by_arm"],
                "n_excluded_support": res.era["n_excluded_support"], "c_statistic": res.era["c_statistic"],
                "iptw": {ep: _hr_payload(res.era["weighted"]["ATE"][ep], boot_ci) for ep in ENDPOINTS},
                "overlap": {ep: _hr_payload(res.era["weighted"]["ATO"][ep], boot_ci) for ep in ENDPOINTS},
                "unadjusted": {ep: _hr_payload(res.era["unadjusted"][ep], "Wald") for ep in ENDPOINTS},
                "balance": res.era["balance"], "bootstrap_failed": res.era["bootstrap_failed"],
                "start_year_adjusted": {ep: {**res.year_adjusted[ep], "ci_method": "Wald"} for ep in ENDPOINTS}},
        "bootstrap": {"n": cfg.n_bootstrap, "seed": cfg.seed, "failed": res.bootstrap["n_failed"],
                      "method": res.bootstrap["method"]},
        "methods": {**METHODS, "weights": ESTIMANDS, "primary": ESTIMANDS[cfg.estimand],
                    "evalue_conversion": res.evalues["os"]["conversion"]},
        "caveats": res.caveats,
    }
    est = cfg.estimand
    lo, hi = res.era["years"]
    text = {
        "c_statistic": format_number(res.ps_fit.c_statistic, 2),
        "n_analysed": str(len(res.patients)),
        "n_all": str(len(res.all_patients)),
        "n_excluded": str(len(support.excluded)),
        "excluded_reason": (", ".join(term_label(x) for x in support.dropped_terms) or "none"),
        "ps_covariates": "; ".join(term_label(x) for x in res.ps_fit.terms),
        "n_ps_terms": str(len(res.ps_fit.terms)),
        "trim": (f"{_ordinal(100 * cfg.trim_quantiles[0])} and {_ordinal(100 * cfg.trim_quantiles[1])} percentiles"
                 if cfg.trim_quantiles else "no truncation"),
        "n_bootstrap": f"{cfg.n_bootstrap:,}",
        "seed": str(cfg.seed),
        "bootstrap_failed": str(res.bootstrap["n_failed"]),
        "primary": WEIGHT_NAMES[est],
        "era_years": f"{lo}–{hi}",
        "era_n": str(res.era["n"]),
        "era_n_cmt": str(res.era["n_by_arm"][cfg.reference_arm]),
        "era_n_ici": str(res.era["n_by_arm"][cfg.treated_arm]),
        "evalue_conversion": res.evalues["os"]["conversion"],
        "ci_sentence": res.ci_sentence,
        "ci_name": "bootstrap" if res.ci_method == "bootstrap" else "robust",
    }
    for key in ("ATE", "ATO"):
        s = bal[key]
        text[f"max_smd_{key}"] = format_number(s["max_abs_smd"], 2)
        text[f"balance_{key}"] = (f"all {s['n_terms']} model covariates had |SMD| < {SMD_TARGET}" if s["achieved"] else
                                  f"{s['n_above_target']} of {s['n_terms']} model covariates had |SMD| ≥ {SMD_TARGET} "
                                  f"(maximum {s['max_abs_smd']:.2f}: "
                                  f"{', '.join(term_label(x) for x in s['terms_above_target'])})")
    text["max_smd_unweighted"] = format_number(bal["unweighted"]["max_abs_smd"], 2)
    others = res.balance[~res.balance["in_model"]]
    above = others[others["smd_" + est].abs() >= SMD_TARGET]
    text["balance_other"] = (f"none had |SMD| ≥ {SMD_TARGET}" if above.empty else
                             ", ".join(f"{r.label} (SMD {r[f'smd_{est}']:.2f})" for _, r in above.iterrows())
                             + f" had |SMD| ≥ {SMD_TARGET} with {WEIGHT_NAMES[est]} weights")
    for ep in ENDPOINTS:
        text[f"hr_{ep}_unadjusted"] = _text_hr(res.unadjusted["all"][ep])
        text[f"hr_{ep}_adjusted"] = _text_hr({**res.adjusted[ep], "lower_naive": res.adjusted[ep]["lower"],
                                              "upper_naive": res.adjusted[ep]["upper"]})
        text[f"hr_{ep}_year_adjusted"] = _text_hr({**res.year_adjusted[ep],
                                                   "lower_naive": res.year_adjusted[ep]["lower"],
                                                   "upper_naive": res.year_adjusted[ep]["upper"]})
        for key in ("ATE", "ATO"):
            f = res.weighted[key][ep]
            text[f"hr_{ep}_{key}"] = _text_hr(f)
            text[f"hr_{ep}_{key}_robust"] = _text_hr({"hr": f["hr"], "lower": f["lower"], "upper": f["upper"]},
                                                     boot=False)
            text[f"hr_{ep}_era_{key}"] = _text_hr(res.era["weighted"][key][ep])
        ev = res.evalues[ep]
        text[f"evalue_{ep}_point"] = format_number(ev["evalue_point"], 2)
        text[f"evalue_{ep}_ci"] = format_number(ev["evalue_ci"], 2)
    other = "ATE" if est == "ATO" else "ATO"
    adjective = {"ATO": "overlap-weighted", "ATE": "IPTW-weighted"}
    text["primary_weighted"], text["secondary_weighted"] = adjective[est], adjective[other]
    for ep in ENDPOINTS:
        text[f"hr_{ep}_primary"] = text[f"hr_{ep}_{est}"]
        text[f"hr_{ep}_secondary"] = text[f"hr_{ep}_{other}"]
        text[f"hr_{ep}_era"] = text[f"hr_{ep}_era_{est}"]
    n_ex = len(support.excluded)
    text["support"] = (f"All {len(res.all_patients)} patients lay within the common support" if n_ex == 0 else
                       f"Of the {len(res.all_patients)} patients, {n_ex} lay outside the common support (a level "
                       f"seen in one arm only: {text['excluded_reason']}) and were excluded from the adjusted "
                       f"analyses, leaving {len(res.patients)}")
    text.update(describe_overlap(res))
    text.update(describe_robustness(res))
    payload["text"] = text
    return payload


def hr_footnote(res: SensitivityResults) -> str:
    """Footnote of the hazard-ratio table: population, weights, CI methods, era window."""
    lo, hi = res.era["years"]
    trim = res.config.trim_quantiles
    return ("HR: hazard ratio of CMT+ICI vs CMT from Cox models with Efron ties. Common support: patients "
            f"with a covariate level seen in one arm only excluded ({len(res.ps_fit.support.excluded)} patients). "
            "IPTW: stabilised inverse probability of treatment weights"
            + (f", truncated at the {_ordinal(100 * trim[0])} and {_ordinal(100 * trim[1])} percentiles" if trim else "")
            + "; overlap weights: 1 − PS for CMT+ICI and PS for CMT. "
            + (("Bootstrap: percentile 95% CI from "
                f"{res.config.n_bootstrap} resamples of all patients repeating common support, propensity model, "
                f"weights and Cox model (seed {res.config.seed}; replicates not estimable: {res.bootstrap['n_failed']}, "
                f"{res.era['bootstrap_failed']} in the era analysis). "
                "Robust SE: sandwich variance of the weighted Cox model, which treats the weights as known and is "
                "shown for comparison only. ") if res.ci_method == "bootstrap" else
               ("Robust SE: sandwich variance of the weighted Cox model, which treats the weights as known; the "
                f"percentile bootstrap was not run ({len(res.all_patients):,} patients; ci_method "
                f"{res.config.ci_method!r}). "))
            + "Start year: calendar year of the start of first-line treatment, linear. "
            f"Era {lo}–{hi}: patients who started treatment in the years in which both regimens were given, "
            "propensity model refitted in that subset."
            + (" Caveats: " + "; ".join(res.caveats) + "." if res.caveats else ""))


def evalue_footnote(res: SensitivityResults) -> str:
    """Footnote of the E-value table: source, conversion, CI limit used."""
    return (f"E-values (VanderWeele and Ding 2017) of the {WEIGHT_NAMES[res.config.estimand]}-weighted hazard "
            f"ratios with their {'bootstrap' if res.ci_method == 'bootstrap' else 'robust'} 95% CI; "
            f"{res.evalues['os']['conversion']}. The E-value of the CI is "
            "computed for the limit closer to 1 (1 if the CI includes 1). It is the minimum risk ratio that an "
            "unmeasured confounder would need with both treatment and outcome, beyond the measured covariates, "
            "to explain the estimate away.")
