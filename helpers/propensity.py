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
  robust = TRUE)``), fitted here by Newton-Raphson to machine precision (checked against R and
  lifelines ``CoxPHFitter(robust = True)``). The robust SE ignores the estimation of the PS and is
  shown for comparison only (Austin 2016, Stat Med 35:5642); the reported CI is the bootstrap one.
- Bootstrap: ``n_boot`` resamples of patients with replacement (not stratified), drawn up front from
  ``np.random.default_rng(seed)``; each replicate repeats the whole pipeline (common support, PS model,
  weights and trimming, weighted Cox for OS and PFS); percentile 95% CI of the log HR. Replicates are
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
        from helpers.data import load_dictionary
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
        changed = False
        for j in np.flatnonzero(cols & binary):
            x = X[keep, j]
            tt = t[keep]
            ones_t, ones_c = (x[tt == 1] == 1).sum(), (x[tt == 0] == 1).sum()
            zeros_t, zeros_c = (x[tt == 1] == 0).sum(), (x[tt == 0] == 0).sum()
            for a, b, value in ((ones_t, ones_c, 1.0), (zeros_t, zeros_c, 0.0)):
                if (a == 0) != (b == 0):   # the level occurs in one arm only
                    keep &= ~(X[:, j] == value)
                    changed = True
            if np.ptp(X[keep, j]) == 0:
                cols[j] = False
                changed = True
        if not changed:
            return keep, cols


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
        warnings.warn(f"positivity: term(s) {dropped} occur(s) in one arm only; {int((~keep).sum())} patient(s) "
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
    import statsmodels.api as sm
    exog = np.column_stack([np.ones(len(t)), X])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sm.Logit(t, exog).fit(method="newton", disp=0, maxiter=100, tol=1e-12)


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
    """Per-subject score residuals of the arm coefficient (R ``residuals(fit, "score")``, unweighted)."""
    time = np.asarray(time, float)
    event = np.asarray(event, float)
    z = np.asarray(z, float)
    w = np.asarray(w, float)
    risk = np.exp(beta * z)
    resid = np.zeros(len(time))
    for u in np.unique(time[event == 1]):
        at_risk = time >= u
        dead = at_risk & (time == u) & (event == 1)
        d = int(dead.sum())
        s0 = (w * risk)[at_risk].sum()
        s1 = (w * risk * z)[at_risk].sum()
        e0 = (w * risk)[dead].sum()
        e1 = (w * risk * z)[dead].sum()
        mw = w[dead].sum() / d
        fr = np.arange(d) / d if ties == "efron" else np.zeros(1)
        nterm = d if ties == "efron" else 1
        den = s0 - fr * e0
        zbar = (s1 - fr * e1) / den
        haz = (mw if ties == "efron" else w[dead].sum()) / den
        # deaths: z_i - zbar, averaged over the Efron terms
        resid[dead] += z[dead] - zbar.mean() if ties == "efron" else z[dead] - zbar[0]
        alive = at_risk & ~dead
        resid[alive] -= risk[alive] * ((z[alive, None] - zbar[None, :]) * haz[None, :]).sum(axis=1)
        down = (1 - fr) if ties == "efron" else np.ones(nterm)
        resid[dead] -= risk[dead] * ((z[dead, None] - zbar[None, :]) * (haz * down)[None, :]).sum(axis=1)
    return resid


def fit_weighted_cox(time, event, z, weights=None, ties: str = "efron", conf_level: float = 0.95) -> dict:
    """Weighted Cox HR of binary ``z`` with model-based and robust SE (R ``coxph(..., weights, robust = TRUE)``).

    Returns
    -------
    dict
        ``{"coef", "hr", "se_naive", "se_robust", "lower", "upper", "p"}``; CI and Wald P use the robust SE.
    """
    time = np.asarray(time, float)
    w = np.ones(len(time)) if weights is None else np.asarray(weights, float)
    d1sum, d0sum, b0, b1, mw = _cox_pieces(time, event, z, w, ties)
    if d1sum <= 0 or d0sum <= 0:
        warnings.warn("no events in one arm: the weighted Cox HR is not estimable", PropensityCaveatWarning,
                      stacklevel=2)
        return {k: None for k in ("coef", "hr", "se_naive", "se_robust", "lower", "upper", "p")}
    beta, info, _, _ = _cox_newton(d1sum, b0, b1, mw)
    resid = _score_residuals(time, event, z, w, beta, ties)
    se_robust = math.sqrt(((w * resid / info) ** 2).sum())
    q = stats.norm.ppf(1 - (1 - conf_level) / 2)
    return {"coef": beta, "hr": math.exp(beta), "se_naive": 1 / math.sqrt(info), "se_robust": se_robust,
            "lower": math.exp(beta - q * se_robust), "upper": math.exp(beta + q * se_robust),
            "p": float(2 * stats.norm.sf(abs(beta / se_robust)))}


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
    try:
        res = _fit_logit(X, t)
        e = res.predict()
    except Exception:
        return np.full(n_out, np.nan)
    if not np.all(np.isfinite(e)) or e.min() <= 0 or e.max() >= 1:
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
    if n_jobs <= 1:
        coefs = _bootstrap_chunk(spec, indices)
    else:
        chunks = np.array_split(indices, n_jobs * 4)
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
    """Arm HR from a multivariable Cox model with ``terms`` (lifelines; R ``coxph(Surv ~ arm + ...)``, Efron).

    Returns ``{"hr", "lower", "upper", "p", "n", "events", "n_parameters"}`` (Wald CI and P).
    """
    from lifelines import CoxPHFitter
    tcol, ecol, _ = ENDPOINTS[endpoint]
    X = make_design(patients, terms)
    X = X.loc[:, X.nunique() > 1]
    df = X.assign(_arm=treatment_indicator(patients, treated_arm), _t=patients[tcol].to_numpy(float),
                  _e=patients[ecol].to_numpy(float))
    df.columns = [f"x{i}" for i in range(X.shape[1])] + ["_arm", "_t", "_e"]
    cph = CoxPHFitter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cph.fit(df, "_t", "_e", fit_options={"precision": 1e-12, "r_precision": 1e-14, "step_size": 0.95,
                                              "max_steps": 200})
    b, se = float(cph.params_["_arm"]), float(cph.standard_errors_["_arm"])
    q = stats.norm.ppf(1 - (1 - conf_level) / 2)
    events = int(df["_e"].sum())
    if events < 10 * (X.shape[1] + 1):
        warnings.warn(f"{endpoint}: {events} events for {X.shape[1] + 1} parameters (< 10 per parameter)",
                      PropensityCaveatWarning, stacklevel=2)
    return {"hr": math.exp(b), "lower": math.exp(b - q * se), "upper": math.exp(b + q * se),
            "p": float(2 * stats.norm.sf(abs(b / se))), "n": int(len(df)), "events": events,
            "n_parameters": int(X.shape[1] + 1)}
