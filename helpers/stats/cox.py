"""Prognostic factors: univariable and multivariable Cox models, PH checks, sparse levels, MI.

Conventions (and their R equivalents)
-------------------------------------
- Engine: Newton-Raphson with step halving on the vectorised Efron partial likelihood of
  :mod:`helpers.stats.firth`, run until the largest coefficient change is below 1e-10, i.e.
  ``coxph(Surv(months, event) ~ ..., ties = "efron")``; the same engine fits counting-process
  data (start, stop] (time-varying cycle counts, the x log(t) terms of the PH remedy; strata as
  disjoint time axes); lifelines only for the concordance.
- Times in months (days / 30.4375). Categorical covariates are dummy-coded against their first
  category; :func:`set_reference_levels` chooses that reference (R ``relevel``) and merges levels;
  numeric covariates enter linearly (HR per unit).
- Per-level P: Wald z test (``summary(coxph)``). Per-variable P: likelihood-ratio test from nested
  fits on the same patients (``anova(fit0, fit1)``); the univariable LR test is against the null
  model (``anova(coxph(Surv ~ x))``).
- 95% CI: Wald, exp(b +/- 1.96 se) (``confint``).
- Concordance: Harrell's C as in lifelines (``concordance(fit)`` in R, see tests for agreement).
- PH: the exact score test of survival >= 3.0 ``cox.zph(fit, transform = "km")`` (computed here,
  per term and global) next to the Grambsch-Therneau (1994) approximation that lifelines'
  ``proportional_hazard_test(time_transform = "km")`` and survival 2.x implement.
- Complete-case analysis per model; multiple imputation (chained equations with predictive mean
  matching, outcome included as event indicator and Nelson-Aalen cumulative hazard; White and
  Royston 2009) as a sensitivity analysis, pooled by Rubin's rules.

Statistical caveats are warnings of named classes (below) and are also kept on the result objects
so that notebooks can print them next to the tables.
"""
from __future__ import annotations

import dataclasses
import re
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from helpers.stats.firth import (_efron_sums, _event_groups, _weighted_information, fit_firth,
                           partial_likelihood)

# ----------------------------------------------------------------------------- constants
#: Endpoint -> (time column in months, event column, label).
ENDPOINTS = {
    "os": ("os_months", "os_event", "Overall survival"),
    "pfs": ("pfs_months", "pfs_event", "Progression-free survival"),
}

#: Table labels of the candidate variables (Table 1 wording).
VARIABLE_LABELS = {
    "arm": "Treatment arm",
    "age": "Age (per year)",
    "age_group": "Age (years)",
    "sex": "Sex",
    "underlying_disease": "Underlying diseases",
    "symptoms": "Dysphagia or cancer-related symptoms",
    "kps": "KPS (per 10 points)",
    "kps_group": "KPS score",
    "histology": "Histology",
    "tumor_location": "Primary tumor location",
    "grade_group": "Tumor differentiation grade",
    "t_stage_group": "Tumor stage",
    "n_stage_group": "Nodal stage",
    "synchronous_liver_met": "Synchronous liver metastasis",
    "distant_ln_met": "Distant lymph node metastasis",
    "primary_surgery": "Primary lesion surgery",
    "primary_radiotherapy": "Primary lesion radiotherapy",
    "liver_met_number": "Number of liver metastases",
    "liver_met_max_diameter_cm": "Largest liver metastasis (per cm)",
    "local_therapy_liver": "Local therapy of liver metastases",
    "chemo_regimen": "Chemotherapy regimen",
    "chemo_cycles": "Chemotherapy cycles",
    "ici_cycles": "Immunotherapy cycles",
}

#: Unit shown in the level column of a numeric covariate.
NUMERIC_UNITS = {"age": "per year", "kps": "per point", "liver_met_max_diameter_cm": "per cm",
                 "chemo_cycles": "per cycle", "ici_cycles": "per cycle"}

#: Covariates known only after time zero (immortal-time bias when used as baseline covariates).
POST_BASELINE = ("chemo_cycles", "ici_cycles")

#: A level with fewer patients than this is flagged as sparse.
SPARSE_MIN_N = 5
#: Events per parameter below this raises LowEventsPerVariableWarning (Peduzzi et al. 1995).
EPV_MIN = 10
#: |coef| above this (HR beyond e^10) or a non-converged fit signals monotone likelihood.
SEPARATION_COEF = 10.0

#: lifelines Newton-Raphson options: stop on relative log-likelihood change (R uses 1e-9).
FIT_OPTIONS = {"precision": 1e-12, "r_precision": 1e-14, "step_size": 0.95, "max_steps": 200}

WALD_METHOD = "Wald z test"
LR_METHOD = "likelihood-ratio test (nested fits)"
CI_METHOD = "Wald 95% CI"


# ----------------------------------------------------------------------------- errors, warnings
class CoxModelError(ValueError):
    """A Cox model that cannot be fitted as specified (the message says why and what to do)."""


class ConstantCovariateError(CoxModelError):
    """A covariate takes a single value among the analysed patients."""


class CollinearCovariatesError(CoxModelError):
    """The model matrix is rank deficient: a column is a linear combination of others."""


class CoxWarning(UserWarning):
    """Base class of the statistical caveats raised by this module."""


class SparseLevelWarning(CoxWarning):
    """A factor level with very few patients (< SPARSE_MIN_N) or no events: unstable HR."""


class SeparationWarning(CoxWarning):
    """Monotone likelihood (complete separation): the ML hazard ratio is infinite or zero."""


class LowEventsPerVariableWarning(CoxWarning):
    """Fewer than EPV_MIN events per estimated parameter."""


class ProportionalHazardsWarning(CoxWarning):
    """The scaled Schoenfeld residual test rejects proportional hazards (P < 0.05)."""


class ImmortalTimeWarning(CoxWarning):
    """A covariate measured after time zero is used as a baseline covariate."""


def _warn(messages: list, category, text: str) -> None:
    messages.append(f"{category.__name__}: {text}")
    warnings.warn(text, category, stacklevel=3)


# ----------------------------------------------------------------------------- covariate coding
def code_cycles(patients: pd.DataFrame, coding: str = "per_cycle",
                cutpoints: dict | None = None) -> pd.DataFrame:
    """Code ``chemo_cycles`` and ``ici_cycles`` for the Cox models.

    Parameters
    ----------
    coding : "per_cycle" keeps the counts (HR per additional cycle, linear on the log-hazard scale);
        "categories" replaces each count by a two-level factor "< c" (reference) / ">= c".
    cutpoints : {"chemo_cycles": 4, "ici_cycles": 4} by default (four cycles is the usual length
        of induction chemotherapy before maintenance in the first-line trials).

    Returns
    -------
    A copy of ``patients``; column names are unchanged, so candidate lists do not depend on coding.
    """
    if coding not in ("per_cycle", "categories"):
        raise ValueError(f"CYCLES_CODING must be 'per_cycle' or 'categories', got {coding!r}")
    out = patients.copy()
    if coding == "categories":
        cuts = {"chemo_cycles": 4, "ici_cycles": 4, **(cutpoints or {})}
        for column, cut in cuts.items():
            if column in out:
                levels = [f"< {cut}", f">= {cut}"]
                out[column] = pd.Categorical(np.where(out[column] >= cut, levels[1], levels[0]),
                                             categories=levels)
    return out


def set_reference_levels(patients: pd.DataFrame, reference_levels: dict | None = None,
                         merged_levels: dict | None = None) -> pd.DataFrame:
    """Copy of ``patients`` with merged factor levels and the chosen reference level first.

    Parameters
    ----------
    reference_levels : {variable: level}; the level is moved to the front of the categories, so
        it becomes the reference (HR = 1) of every Cox model; the other levels keep their order.
        As R ``relevel(x, ref = level)``.
    merged_levels : {variable: {new level: [old levels]}}; the old levels are replaced by the new
        one, placed where the first of them was (``forcats::fct_collapse``). Applied first, so a
        merged level can be a reference.

    Raises
    ------
    CoxModelError listing every unknown variable or level.
    """
    out = patients.copy()
    problems = []
    for var, groups in (merged_levels or {}).items():
        if var not in out:
            problems.append(f"merged_levels: no column '{var}'")
            continue
        cats = [str(c) for c in (out[var].cat.categories if isinstance(out[var].dtype, pd.CategoricalDtype)
                                 else sorted(out[var].dropna().astype(str).unique()))]
        unknown = [old for olds in groups.values() for old in olds if old not in cats]
        if unknown:
            problems.append(f"merged_levels: '{var}' has no level(s) {unknown} (levels: {cats})")
            continue
        mapping = {old: new for new, olds in groups.items() for old in olds}
        new_cats = list(dict.fromkeys(mapping.get(c, c) for c in cats))
        values = out[var].astype(object).map(lambda v: mapping.get(str(v), v) if pd.notna(v) else v)
        out[var] = pd.Categorical(values, categories=new_cats)
    for var, ref in (reference_levels or {}).items():
        if var not in out:
            problems.append(f"reference_levels: no column '{var}'")
            continue
        if not isinstance(out[var].dtype, pd.CategoricalDtype):
            out[var] = pd.Categorical(out[var])
        cats = list(out[var].cat.categories)
        if ref not in cats:
            problems.append(f"reference_levels: '{var}' has no level '{ref}' (levels: {cats})")
            continue
        out[var] = out[var].cat.reorder_categories([ref] + [c for c in cats if c != ref])
    if problems:
        raise CoxModelError("; ".join(problems))
    return out


def _is_categorical(series: pd.Series) -> bool:
    return isinstance(series.dtype, pd.CategoricalDtype) or series.dtype == object or \
        series.dtype == bool


@dataclass
class CoxDesign:
    """Complete-case model matrix of one Cox model.

    ``X`` holds one column per estimated coefficient, named ``variable[level]`` for dummy columns
    and ``variable`` for numeric covariates; ``terms`` maps each variable to its columns;
    ``levels`` has one row per level (reference included) with n and events.
    """

    X: pd.DataFrame
    time: np.ndarray
    event: np.ndarray
    terms: dict
    levels: pd.DataFrame
    endpoint: str
    n_excluded: int
    patient_id: pd.Series | None = None
    warnings: list = field(default_factory=list)

    @property
    def n(self) -> int:
        return int(len(self.time))

    @property
    def events(self) -> int:
        return int(self.event.sum())


def _collinear_columns(X: pd.DataFrame) -> tuple[str, list[str]] | None:
    """First column that is a linear combination of the intercept and earlier columns.

    One QR decomposition of [1, X] in column order: |R_jj| is the norm of column j's residual on
    the intercept and the columns before it; a residual below 1e-8 x max(|x_j|, 1) marks it.
    """
    A = np.column_stack([np.ones(len(X)), X.to_numpy(dtype=float)])
    if A.shape[0] < A.shape[1]:   # more columns than rows: the first surplus column is dependent
        A = np.vstack([A, np.zeros((A.shape[1] - A.shape[0], A.shape[1]))])
    residual = np.abs(np.diag(np.linalg.qr(A, mode="r")))
    scale = np.maximum(np.linalg.norm(A, axis=0), 1.0)
    for j, column in enumerate(X.columns, start=1):
        if residual[j] <= 1e-8 * scale[j]:
            coef, *_ = np.linalg.lstsq(A[:, :j], A[:, j], rcond=None)
            involved = [k for k, c in zip(["(intercept)", *X.columns[:j - 1]], coef) if abs(c) > 1e-8]
            return column, involved
    return None


def build_design(patients: pd.DataFrame, endpoint: str, covariates: list[str],
                 sparse_min_n: int = SPARSE_MIN_N) -> CoxDesign:
    """Complete-case, dummy-coded model matrix for ``covariates`` and one endpoint.

    Raises
    ------
    ConstantCovariateError, CollinearCovariatesError, KeyError (unknown column).
    Warns SparseLevelWarning for levels with < ``sparse_min_n`` patients or with 0 / only events.
    """
    if endpoint not in ENDPOINTS:
        raise KeyError(f"endpoint must be one of {list(ENDPOINTS)}, got {endpoint!r}")
    time_col, event_col, _ = ENDPOINTS[endpoint]
    missing_cols = [c for c in [time_col, event_col, *covariates] if c not in patients.columns]
    if missing_cols:
        raise KeyError(f"columns not in the patient table: {missing_cols}")
    data = patients[[time_col, event_col, *covariates]]
    complete = data.notna().all(axis=1)
    data = data[complete]
    messages: list[str] = []
    columns, terms, level_rows = {}, {}, []
    for var in covariates:
        s = data[var]
        observed = s.dropna().unique()
        if len(observed) < 2:
            raise ConstantCovariateError(
                f"covariate '{var}' takes a single value ({observed[0] if len(observed) else 'none'}) "
                f"among the {len(data)} analysed patients; it carries no information: remove it")
        if _is_categorical(s):
            cats = list(s.cat.categories) if isinstance(s.dtype, pd.CategoricalDtype) \
                else sorted(map(str, observed))
            present = [c for c in cats if (s == c).any()]
            reference, others = present[0], present[1:]
            terms[var] = []
            for lev in present:
                mask = (s == lev).to_numpy()
                n_lev, ev_lev = int(mask.sum()), int(data[event_col].to_numpy()[mask].sum())
                col = None if lev == reference else f"{var}[{lev}]"
                if col is not None:
                    columns[col] = mask.astype(float)
                    terms[var].append(col)
                level_rows.append({"variable": var, "level": str(lev), "column": col,
                                   "reference": col is None, "n": n_lev, "events": ev_lev})
                if n_lev < sparse_min_n or ev_lev == 0:
                    _warn(messages, SparseLevelWarning,
                          f"{var} = '{lev}' has {n_lev} patient(s) and {ev_lev} event(s) "
                          f"({ENDPOINTS[endpoint][2]}): its hazard ratio is unstable; see the "
                          "Firth-penalized estimate")
        else:
            x = s.to_numpy(dtype=float)
            columns[var] = x
            terms[var] = [var]
            level_rows.append({"variable": var, "level": NUMERIC_UNITS.get(var, "per unit"),
                               "column": var, "reference": False, "n": int(len(x)),
                               "events": int(data[event_col].sum())})
    X = pd.DataFrame(columns, index=data.index)
    found = _collinear_columns(X)
    if found:
        column, involved = found
        raise CollinearCovariatesError(
            f"column '{column}' is a linear combination of {involved}: the model cannot separate "
            "their effects; drop or merge one of these covariates")
    pid = patients.loc[data.index, "patient_id"] if "patient_id" in patients else None
    return CoxDesign(X=X, time=data[time_col].to_numpy(dtype=float),
                     event=data[event_col].to_numpy(dtype=int), terms=terms,
                     levels=pd.DataFrame(level_rows), endpoint=endpoint,
                     n_excluded=int((~complete).sum()), patient_id=pid, warnings=messages)


# ----------------------------------------------------------------------------- fitting
@dataclass
class CoxFit:
    """Coefficients, standard errors and likelihoods of one Cox model (Efron ties)."""

    design: CoxDesign
    coef: pd.Series
    se: pd.Series
    cov: pd.DataFrame
    loglik: float
    loglik_null: float
    concordance: float
    separated: list

    @property
    def lr_chisq(self) -> float:
        return 2 * (self.loglik - self.loglik_null)

    def lifelines_fitter(self):
        """The same model fitted by lifelines ``CoxPHFitter`` (for cross-checks; not used here)."""
        from lifelines import CoxPHFitter
        frame = self.design.X.copy()
        frame["_time"], frame["_event"] = self.design.time, self.design.event
        return CoxPHFitter().fit(frame, "_time", "_event", fit_options=FIT_OPTIONS)


def _monotone_columns(X: pd.DataFrame, time, event) -> list[str]:
    """Columns whose value, at every event time, is the maximum (or minimum) in the risk set.

    For such a column the partial likelihood increases monotonically in its coefficient (complete
    separation; Heinze and Schemper 2001), so the ML estimate is +/- infinity.
    """
    out = []
    if not (np.asarray(event) == 1).any():
        return out
    groups = _event_groups(time, event)
    g = groups.death_group
    for col in X.columns:
        x = X[col].to_numpy(dtype=float)
        # risk set of event time t = prefix of the decreasing-time order: running max / min
        risk_max = np.maximum.accumulate(x[groups.order])[groups.risk_end - 1]
        risk_min = np.minimum.accumulate(x[groups.order])[groups.risk_end - 1]
        dying_min = np.full(len(groups.times), np.inf)
        dying_max = np.full(len(groups.times), -np.inf)
        np.minimum.at(dying_min, g, x[groups.death_idx])
        np.maximum.at(dying_max, g, x[groups.death_idx])
        high = not (dying_min < risk_max).any()
        low = not (dying_max > risk_min).any()
        if high or low:
            out.append(col)
    return out


def _newton_cox(X: np.ndarray, time, event, ties: str = "efron", max_iter: int = 60,
                tol: float = 1e-10, entry=None, start=None):
    """Maximise the Cox partial likelihood by Newton-Raphson with step halving, as R ``coxph``.

    Starts at 0 (or at ``start``: a warm start for nested refits, same maximum); a step that
    lowers the log-likelihood is halved (``coxph.control``); stops when the largest coefficient
    change is below ``tol`` (R: relative log-likelihood change < 1e-9, i.e. this runs a few
    iterations further). ``entry``: interval starts of counting-process rows (entry, time].
    Returns (beta, PartialLikelihood, converged).
    """
    X = np.ascontiguousarray(X, dtype=float)     # row-major: the sparse risk-set products need it
    groups = _event_groups(time, event, entry)
    beta = np.zeros(X.shape[1]) if start is None else np.asarray(start, dtype=float).copy()
    pl = partial_likelihood(beta, X, time, event, ties, groups=groups)
    for _ in range(max_iter):
        try:
            step = np.linalg.solve(pl.information, pl.score)
        except np.linalg.LinAlgError:
            step = np.linalg.lstsq(pl.information, pl.score, rcond=None)[0]
        for _half in range(40):
            trial = partial_likelihood(beta + step, X, time, event, ties, groups=groups)
            if np.isfinite(trial.loglik) and trial.loglik >= pl.loglik - 1e-12 * abs(pl.loglik):
                break
            step = step / 2
        beta, pl = beta + step, trial
        if np.max(np.abs(step)) < tol:
            return beta, pl, True
    return beta, pl, False


def fit_cox(design: CoxDesign, concordance: bool = True, start: pd.Series | None = None) -> CoxFit:
    """Fit ``coxph(Surv(time, event) ~ X, ties = "efron")``.

    Newton-Raphson on the vectorised partial likelihood of :mod:`helpers.stats.firth` (the same
    algorithm as R ``coxph``); covariance = inverse observed information; concordance = Harrell's
    C as lifelines ``concordance_index`` (R ``concordance(fit)`` up to tied times).
    Monotone likelihood (complete separation) is detected before fitting and after it (|coef| >
    SEPARATION_COEF); it raises SeparationWarning and the affected columns are listed in
    ``CoxFit.separated`` (their HRs are reported as not estimable, never as huge numbers).
    ``concordance=False`` skips Harrell's C (NaN; for likelihood-ratio refits that only need the
    log-likelihood). ``start``: coefficients to start Newton-Raphson from (by column name; a warm
    start for refits of the same model, e.g. on imputed data; the maximum is the same).
    """
    from lifelines.utils import concordance_index

    X, time, event = design.X, design.time, design.event
    if event.sum() == 0:
        raise CoxModelError(f"no events among the {len(time)} analysed patients: no Cox model")
    separated = _monotone_columns(X, time, event)
    Xa = X.to_numpy(dtype=float)
    if start is not None and list(start.index) == list(X.columns) and np.all(np.isfinite(start)):
        beta, pl, converged = _newton_cox(Xa, time, event, start=start.to_numpy(dtype=float))
    else:
        beta, pl, converged = _newton_cox(Xa, time, event)
    coef = pd.Series(beta, index=X.columns)
    separated += [c for c in coef.index if abs(coef[c]) > SEPARATION_COEF and c not in separated]
    if not converged and not separated:
        raise CoxModelError(
            "the Cox model did not converge in 60 Newton-Raphson iterations; check for "
            "separation, collinearity or constant covariates")
    if separated:
        _warn(design.warnings, SeparationWarning,
              f"monotone likelihood for {separated}: every event occurs at the extreme value of "
              "the covariate in its risk set, so the maximum-likelihood HR is infinite or zero; "
              "the HR is reported as not estimable; use the Firth-penalized estimate")
    try:
        cov_a = np.linalg.inv(pl.information)
    except np.linalg.LinAlgError:
        cov_a = np.linalg.pinv(pl.information)
    cov = pd.DataFrame(cov_a, index=X.columns, columns=X.columns)
    se = pd.Series(np.sqrt(np.abs(np.diag(cov_a))), index=coef.index)
    null = partial_likelihood(np.zeros(X.shape[1]), Xa, time, event).loglik
    c_index = concordance_index(time, -(Xa @ beta), event) if concordance else np.nan
    return CoxFit(design, coef, se, cov, float(pl.loglik), float(null), float(c_index),
                  separated)


def _lr_test(full: CoxFit, without: list[str]) -> tuple[float, int, float]:
    """LR test dropping ``without`` columns, refitted on the same patients (``anova(f0, f1)``)."""
    keep = [c for c in full.design.X.columns if c not in without]
    if not keep:
        chisq = full.lr_chisq
    else:
        # warm start at the full model's coefficients: the same maximum in fewer iterations
        X = full.design.X[keep].to_numpy(dtype=float)
        _, pl, converged = _newton_cox(X, full.design.time, full.design.event,
                                       start=full.coef[keep].to_numpy())
        if converged:
            loglik = pl.loglik
        else:   # e.g. monotone likelihood in the smaller model: the full fit flags it
            sub = CoxDesign(full.design.X[keep], full.design.time, full.design.event, {}, None,
                            full.design.endpoint, 0)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", CoxWarning)
                loglik = fit_cox(sub, concordance=False).loglik
        chisq = 2 * (full.loglik - loglik)
    df = len(without)
    return float(chisq), df, float(stats.chi2.sf(max(chisq, 0.0), df))


def _rows_for(fit: CoxFit, variables: list[str], lr: bool = True) -> list[dict]:
    """One row per level (reference included) of ``variables`` from a fitted model."""
    z = stats.norm.ppf(0.975)
    rows = []
    levels = fit.design.levels
    for var in variables:
        cols = fit.design.terms[var]
        p_lr = df = p_joint = np.nan
        if lr:
            _, df, p_lr = _lr_test(fit, cols)
        b = fit.coef[cols].to_numpy()
        V = fit.cov.loc[cols, cols].to_numpy()
        try:
            p_joint = float(stats.chi2.sf(b @ np.linalg.solve(V, b), len(cols)))
        except np.linalg.LinAlgError:
            p_joint = np.nan
        for _, lev in levels[levels["variable"] == var].iterrows():
            row = {"endpoint": fit.design.endpoint, "variable": var,
                   "label": VARIABLE_LABELS.get(var, var), "level": lev["level"],
                   "reference": bool(lev["reference"]), "n": lev["n"], "events": lev["events"],
                   "coef": np.nan, "se": np.nan, "hr": np.nan, "lower": np.nan, "upper": np.nan,
                   "p": np.nan, "df": df, "p_lr": p_lr, "p_wald_joint": p_joint, "note": ""}
            if lev["reference"]:
                row["hr"], row["note"] = 1.0, "reference"
            else:
                col = lev["column"]
                if col in fit.separated:
                    row["note"] = "not estimable (monotone likelihood): see Firth"
                    row["coef"] = fit.coef[col]
                else:
                    bb, ss = fit.coef[col], fit.se[col]
                    row.update(coef=bb, se=ss, hr=np.exp(bb), lower=np.exp(bb - z * ss),
                               upper=np.exp(bb + z * ss), p=2 * stats.norm.sf(abs(bb / ss)))
            rows.append(row)
    return rows


def fit_univariable(patients: pd.DataFrame, endpoint: str, covariates: list[str]) -> pd.DataFrame:
    """Univariable Cox models, one per covariate, each on its own complete cases.

    Returns
    -------
    DataFrame, one row per level (reference rows with hr = 1): endpoint, variable, label, level,
    reference, n, events (patients and events in the level), coef, se, hr, lower, upper (Wald 95%
    CI), p (Wald z, per level), df, p_lr (LR test of the whole variable vs the null model, as
    ``anova(coxph(Surv ~ x))``), p_wald_joint (joint Wald), n_model, events_model, n_missing, note.
    ``attrs["warnings"]`` lists the caveats raised.
    """
    rows, messages = [], []
    for var in covariates:
        design = build_design(patients, endpoint, [var])
        fit = fit_cox(design, concordance=False)     # a one-variable model's C is not reported
        messages += design.warnings
        for row in _rows_for(fit, [var]):
            row.update(n_model=design.n, events_model=design.events, n_missing=design.n_excluded)
            rows.append(row)
    out = pd.DataFrame(rows)
    out.attrs["warnings"] = messages
    return out


def select_covariates(univariable: pd.DataFrame, entry_p: float = 0.05,
                      entry_test: str = "lr") -> list[str]:
    """Variables whose univariable P is below ``entry_p``.

    ``entry_test``: "lr" (likelihood-ratio P of the whole variable, default) or "wald" (Wald P;
    joint Wald for multi-level factors). One decision per variable: a factor enters with all levels.
    """
    column = {"lr": "p_lr", "wald": "p_wald_joint"}[entry_test]
    per_var = univariable.groupby("variable", sort=False)[column].first()
    return [v for v, p in per_var.items() if pd.notna(p) and p < entry_p]


@dataclass
class MultivariableResult:
    """A multivariable Cox model with its selection rule and diagnostics."""

    table: pd.DataFrame
    fit: CoxFit
    selected: list
    entry_p: float
    entry_test: str
    lr_test: dict
    concordance: float
    n: int
    events: int
    n_params: int
    epv: float
    n_missing: int
    warnings: list

    @property
    def endpoint(self) -> str:
        return self.fit.design.endpoint


def fit_multivariable(patients: pd.DataFrame, endpoint: str, covariates: list[str],
                      univariable: pd.DataFrame | None = None, entry_p: float | None = 0.05,
                      entry_test: str = "lr", forced: tuple = ()) -> MultivariableResult:
    """Multivariable Cox model built by the univariable-screening rule.

    Parameters
    ----------
    covariates : candidate variables.
    univariable : output of :func:`fit_univariable` (computed when None).
    entry_p : variables with univariable P < entry_p enter (default 0.05; the alternative rule
        0.1); ``None`` enters all candidates.
    forced : variables entered regardless of P.

    Returns
    -------
    MultivariableResult: per-level table (Wald P per level, LR P per variable dropping it from the
    full model, ``drop1(fit, test = "Chisq")``), global LR test against the null model on the
    complete cases, concordance, complete-case n and events, events per parameter (EPV).
    Warns LowEventsPerVariableWarning (EPV < 10) and ImmortalTimeWarning (cycle counts).
    """
    if entry_p is None:
        selected = list(covariates)
    else:
        if univariable is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", CoxWarning)
                univariable = fit_univariable(patients, endpoint, covariates)
        selected = select_covariates(univariable[univariable["variable"].isin(covariates)],
                                     entry_p, entry_test)
    selected = list(dict.fromkeys([*selected, *forced]))
    if not selected:
        raise CoxModelError(f"no candidate variable has univariable P < {entry_p}: "
                            "no multivariable model")
    design = build_design(patients, endpoint, selected)
    fit = fit_cox(design)
    messages = list(design.warnings)
    rows = _rows_for(fit, selected)
    table = pd.DataFrame(rows)
    n_params = design.X.shape[1]
    epv = design.events / n_params
    if epv < EPV_MIN:
        _warn(messages, LowEventsPerVariableWarning,
              f"{design.events} events for {n_params} parameters: {epv:.1f} events per parameter "
              f"(< {EPV_MIN}); estimates may be biased and unstable")
    post = [v for v in selected if v in POST_BASELINE]
    if post:
        _warn(messages, ImmortalTimeWarning,
              f"{post} are counted over the whole follow-up but entered as baseline covariates: "
              "patients who live longer receive more cycles, which biases their HR towards benefit; "
              "see the landmark and time-varying analyses")
    chisq = fit.lr_chisq
    lr = {"chisq": chisq, "df": n_params, "p": float(stats.chi2.sf(chisq, n_params)),
          "method": "likelihood-ratio test against the null model"}
    return MultivariableResult(table, fit, selected, entry_p, entry_test, lr, fit.concordance,
                               design.n, design.events, n_params, epv, design.n_excluded, messages)


# ----------------------------------------------------------------------------- display tables
def _hr_text(row, digits=2) -> str:
    from helpers.report.formatting import format_ci, format_number
    if row["reference"]:
        return "1 (reference)"
    if row["note"].startswith("not estimable"):
        return "not estimable"
    return f"{format_number(row['hr'], digits)} ({format_ci(row['lower'], row['upper'], digits)})"


def make_cox_table(table: pd.DataFrame, show_factor_p: bool = True) -> pd.DataFrame:
    """Display table: Variable, Level, n, Events, HR (95% CI), P (Wald), P (LR, whole variable).

    The LR P is shown once per variable, only for variables with more than one level contrast.
    """
    from helpers.report.formatting import format_p
    out = []
    for var, block in table.groupby("variable", sort=False):
        for i, (_, row) in enumerate(block.iterrows()):
            rec = {"Variable": row["label"] if i == 0 else "", "Level": row["level"],
                   "n": int(row["n"]), "Events": int(row["events"]), "HR (95% CI)": _hr_text(row),
                   "P (Wald)": "" if row["reference"] or pd.isna(row["p"]) else format_p(row["p"])}
            if show_factor_p:
                rec["P (LR, variable)"] = format_p(row["p_lr"]) if (i == 0 and row["df"] > 1) else ""
            out.append(rec)
    return pd.DataFrame(out)


def describe_multivariable(result: MultivariableResult) -> pd.DataFrame:
    """One-row-per-statistic summary: n, events, parameters, EPV, global LR test, concordance."""
    from helpers.report.formatting import format_number, format_p
    lr = result.lr_test
    rows = [
        ("Endpoint", ENDPOINTS[result.endpoint][2]),
        ("Entry rule", f"univariable {'LR' if result.entry_test == 'lr' else 'Wald'} P < "
                       f"{result.entry_p}" if result.entry_p is not None else "all candidates"),
        ("Variables entered", ", ".join(VARIABLE_LABELS.get(v, v) for v in result.selected)),
        ("Patients (complete cases)", f"{result.n} ({result.n_missing} excluded for missing data)"),
        ("Events", str(result.events)),
        ("Parameters", str(result.n_params)),
        ("Events per parameter", format_number(result.epv, 1)),
        ("Global LR test", f"chi2 = {format_number(lr['chisq'], 2)}, df = {lr['df']}, "
                           f"P = {format_p(lr['p'])}"),
        ("Concordance (Harrell's C)", format_number(result.concordance, 3)),
    ]
    return pd.DataFrame(rows, columns=["Statistic", "Value"])


# ----------------------------------------------------------------------------- forest plot
def plot_forest(result: MultivariableResult, title: str | None = None):
    """Forest plot of a multivariable model: HR with 95% CI on a log axis, reference levels shown.

    Left columns: variable/level and n per level; right column: HR (95% CI) and Wald P.
    """
    import matplotlib.pyplot as plt
    from helpers.report.formatting import format_p
    try:
        from helpers.report.figures import COLUMN_WIDTH_IN, OKABE_ITO, style_context
    except ImportError:  # pragma: no cover
        import contextlib
        style_context, OKABE_ITO, COLUMN_WIDTH_IN = contextlib.nullcontext, {"blue": "C0"}, 3.35

    LABEL_X, N_X = -1.45, -0.06   # label and n columns, in axes-width units left of the axis
    table = result.table
    lines = []  # (label, n, row, kind)
    for var, block in table.groupby("variable", sort=False):
        numeric = len(block) == 1 and not block["reference"].iloc[0]
        if numeric:
            row = block.iloc[0]
            lines.append((f"{row['label']}", "", row, "level"))
            continue
        lines.append((block["label"].iloc[0], "", None, "header"))
        for _, row in block.iterrows():
            lines.append((f"   {row['level']}", str(int(row["n"])), row, "level"))
    finite = table.loc[~table["reference"], ["lower", "upper"]].to_numpy(dtype=float)
    finite = finite[np.isfinite(finite)]
    lo = min(0.1, np.nanmin(finite) * 0.8) if finite.size else 0.1
    hi = max(10.0, np.nanmax(finite) * 1.25) if finite.size else 10.0
    with style_context():
        height = 0.6 + 0.19 * len(lines)
        fig, ax = plt.subplots(figsize=(2.2 * COLUMN_WIDTH_IN, height))
        colour = OKABE_ITO.get("blue", "C0")
        for i, (label, n, row, kind) in enumerate(lines):
            y = len(lines) - i
            weight = "bold" if kind == "header" else "normal"
            ax.text(LABEL_X, y, label.replace("   ", "    "), transform=ax.get_yaxis_transform(),
                    ha="left", va="center", fontweight=weight)
            if kind == "header" or row is None:
                continue
            n_text = str(int(row["n"])) if row["reference"] or n else ""
            ax.text(N_X, y, n_text, transform=ax.get_yaxis_transform(), ha="right", va="center")
            if row["reference"]:
                ax.plot([1], [y], marker="D", color="0.5", markersize=3.5)
                text = "Reference"
            elif row["note"].startswith("not estimable"):
                text = "not estimable"
            else:
                ax.plot([row["lower"], row["upper"]], [y, y], color=colour, lw=1)
                ax.plot([row["hr"]], [y], marker="s", color=colour, markersize=4)
                text = f"{row['hr']:.2f} ({row['lower']:.2f}–{row['upper']:.2f})  P {format_p(row['p'])}"
            ax.text(1.02, y, text, transform=ax.get_yaxis_transform(), ha="left", va="center")
        ax.axvline(1, color="0.3", lw=0.6, ls="--")
        ax.set_xscale("log")
        ax.set_xlim(lo, hi)
        ax.set_ylim(0.3, len(lines) + 0.9)
        ax.set_yticks([])
        ax.spines["left"].set_visible(False)
        ax.set_xlabel("Hazard ratio (log scale)")
        ticks = [t for t in (0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50) if lo <= t <= hi]
        ax.set_xticks(ticks)
        ax.set_xticklabels([f"{t:g}" for t in ticks])
        ax.minorticks_off()
        top = len(lines) + 0.7
        ax.text(LABEL_X, top, "Variable", transform=ax.get_yaxis_transform(), ha="left",
                va="center", fontweight="bold")
        ax.text(N_X, top, "n", transform=ax.get_yaxis_transform(), ha="right", va="center",
                fontweight="bold")
        ax.text(1.02, top, "HR (95% CI)", transform=ax.get_yaxis_transform(), ha="left",
                va="center", fontweight="bold")
        if title:
            ax.set_title(title)
        fig.subplots_adjust(left=0.40, right=0.66)
    return fig


# ----------------------------------------------------------------------------- proportional hazards
def _km_transform(time, event) -> np.ndarray:
    """1 - KM(t-) for each subject, as ``cox.zph(transform = "km")`` (findInterval left.open)."""
    t_ev = np.unique(time[event == 1])
    at_risk = len(time) - np.searchsorted(np.sort(time), t_ev, side="left")
    d = np.bincount(np.searchsorted(t_ev, time[event == 1]), minlength=len(t_ev))
    surv = np.cumprod(1 - d / at_risk)
    idx = np.searchsorted(t_ev, time, side="left")      # number of event times strictly < t
    return 1 - np.concatenate([[1.0], surv])[idx]


def check_proportional_hazards(fit: CoxFit | MultivariableResult, alpha: float = 0.05) -> pd.DataFrame:
    """Scaled Schoenfeld residual tests of proportional hazards, per term and global, km time.

    Columns: term, label, df, chisq, p (the score test of survival >= 3.0, equal to R's
    ``cox.zph(fit, transform = "km")``: a score test for adding x * g(t), g = 1 - KM(t-), at the
    fitted coefficients, multi-level factors tested jointly), chisq_gt, p_gt (the Grambsch and
    Therneau 1994 approximation, as lifelines ``proportional_hazard_test(time_transform = "km")``
    and survival 2.x; per coefficient, so only for 1-df terms, and global).
    Warns ProportionalHazardsWarning for P < ``alpha``.
    """
    return _zph(fit, alpha)[0]


def schoenfeld_residuals(fit: CoxFit | MultivariableResult) -> pd.DataFrame:
    """Scaled Schoenfeld residuals (R ``cox.zph(fit)$y``): column time (months) + one per coefficient."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CoxWarning)
        return _zph(fit, 0.0)[1]


def _zph(fit: CoxFit | MultivariableResult, alpha: float = 0.05):
    if isinstance(fit, MultivariableResult):
        messages = fit.warnings
        fit = fit.fit
    else:
        messages = fit.design.warnings
    X = np.ascontiguousarray(fit.design.X.to_numpy(dtype=float))
    time, event = fit.design.time, fit.design.event
    beta = fit.coef[fit.design.X.columns].to_numpy()
    p = X.shape[1]
    g_all = _km_transform(time, event)
    g_all = g_all - g_all[event == 1].mean()
    # Per event time k (Efron risk-set moments at the fitted beta, O(n p^2), no Python loop):
    # score U_k, information V_k, and g_k = centred 1 - KM(t_k-); imat is the information of
    # (beta, gamma) for the model with x * g(t) added.
    groups = _event_groups(time, event)
    sums = _efron_sums(beta, X, "efron", groups)
    deaths = groups._deaths_by_time                       # by event time, then subject index
    g_time = g_all[deaths[groups._group_starts]]
    mean_sum = sums.mean_sum()
    U = groups.group_sum(X) - mean_sum
    u2 = g_time @ U
    info = {power: _weighted_information(X, sums, g_time ** power) for power in (0, 1, 2)}
    imat = np.block([[info[0], info[1]], [info[1], info[2]]])
    m_bar = mean_sum / groups.d[:, None]
    death_time = np.repeat(np.arange(len(groups.times)), groups.d)
    sres = X[deaths] - m_bar[death_time]                   # Schoenfeld residuals, one row per death
    g_rows = g_time[death_time]
    cols = list(fit.design.X.columns)
    rows = []

    def score_test(idx):
        kk = list(range(p)) + [p + i for i in idx]
        u = np.concatenate([np.zeros(p), u2[idx]])
        return float(np.linalg.solve(imat[np.ix_(kk, kk)], u) @ u)

    # Grambsch-Therneau approximation (survival 2.x / lifelines)
    ndead = sres.shape[0]
    var = np.linalg.inv(imat[:p, :p])
    xx = np.asarray(g_rows)
    xx = xx - xx.mean()
    r2 = sres @ var * ndead
    test = xx @ r2
    gt_per = test ** 2 / (np.diag(var) * ndead * (xx ** 2).sum())
    tu = xx @ sres
    gt_global = float(tu @ var @ tu * ndead / (xx ** 2).sum())
    for var_name, term_cols in fit.design.terms.items():
        idx = [cols.index(c) for c in term_cols]
        chisq = score_test(idx)
        gt = float(gt_per[idx[0]]) if len(idx) == 1 else np.nan
        rows.append({"term": var_name, "label": VARIABLE_LABELS.get(var_name, var_name),
                     "df": len(idx), "chisq": chisq, "p": float(stats.chi2.sf(chisq, len(idx))),
                     "chisq_gt": gt, "p_gt": float(stats.chi2.sf(gt, 1)) if len(idx) == 1 else np.nan})
    glob = float(np.linalg.solve(imat, np.concatenate([np.zeros(p), u2])) @
                 np.concatenate([np.zeros(p), u2]))
    rows.append({"term": "GLOBAL", "label": "Global", "df": p, "chisq": glob,
                 "p": float(stats.chi2.sf(glob, p)), "chisq_gt": gt_global,
                 "p_gt": float(stats.chi2.sf(gt_global, p))})
    out = pd.DataFrame(rows)
    for _, row in out.iterrows():
        if row["p"] < alpha:
            _warn(messages, ProportionalHazardsWarning,
                  f"proportional hazards rejected for {row['label']} (cox.zph km, "
                  f"chi2 = {row['chisq']:.2f}, df = {row['df']}, P = {row['p']:.2g})")
    # scaled Schoenfeld residuals for the plots: ndead * s V + beta (R cox.zph$y)
    resid = pd.DataFrame(sres @ var * ndead + beta, columns=cols)
    resid.insert(0, "time", np.asarray(time, dtype=float)[deaths])
    return out, resid


def make_ph_table(ph: pd.DataFrame) -> pd.DataFrame:
    """Display table of :func:`check_proportional_hazards`."""
    from helpers.report.formatting import format_number, format_p
    return pd.DataFrame({
        "Term": ph["label"], "df": ph["df"].astype(int),
        "Chi-square (score test, R cox.zph)": [format_number(v, 2) for v in ph["chisq"]],
        "P": [format_p(v) for v in ph["p"]],
        "Chi-square (G-T approximation, lifelines)": [format_number(v, 2, "–") for v in ph["chisq_gt"]],
        "P (approx.)": [format_p(v) for v in ph["p_gt"]],
    })


def plot_schoenfeld(ph: pd.DataFrame, fit: CoxFit | MultivariableResult):
    """Scaled Schoenfeld residuals against time (months) per coefficient, with a lowess smoother.

    A flat smoother at the coefficient (dashed line) is consistent with proportional hazards;
    a trend means the log hazard ratio changes with time. The P value is the cox.zph score test.
    """
    import matplotlib.pyplot as plt
    from statsmodels.nonparametric.smoothers_lowess import lowess
    from helpers.report.formatting import format_p
    try:
        from helpers.report.figures import COLUMN_WIDTH_IN, OKABE_ITO, style_context
    except ImportError:  # pragma: no cover
        import contextlib
        style_context, OKABE_ITO, COLUMN_WIDTH_IN = contextlib.nullcontext, {"blue": "C0", "vermillion": "C1"}, 3.35
    if isinstance(fit, MultivariableResult):
        fit = fit.fit
    res = schoenfeld_residuals(fit)
    times = res.pop("time").to_numpy()
    cols = list(res.columns)
    ncol = 2 if len(cols) > 1 else 1
    nrow = int(np.ceil(len(cols) / ncol))
    term_of = {c: v for v, cs in fit.design.terms.items() for c in cs}
    p_of = dict(zip(ph["term"], ph["p"]))
    with style_context():
        fig, axes = plt.subplots(nrow, ncol, figsize=(2 * COLUMN_WIDTH_IN, 1.9 * nrow), squeeze=False)
        for ax, col in zip(axes.ravel(), cols):
            y = res[col].to_numpy()
            ax.scatter(times, y, s=6, color="0.55", alpha=0.7, linewidths=0)
            sm = lowess(y, times, frac=2 / 3, return_sorted=True)
            ax.plot(sm[:, 0], sm[:, 1], color=OKABE_ITO.get("blue", "C0"))
            ax.axhline(fit.coef[col], color=OKABE_ITO.get("vermillion", "C1"), ls="--", lw=0.8)
            name = col.replace("[", ": ").replace("]", "")
            ax.set_title(f"{name} (P {format_p(p_of[term_of[col]])})")
            ax.set_xlabel("Months")
            ax.set_ylabel("Beta(t)")
        for ax in axes.ravel()[len(cols):]:
            ax.set_visible(False)
        fig.tight_layout()
    return fig


#: Largest counting-process data set built for the x log(t) terms of the PH remedy (rows); above it
#: x log(t) is evaluated on a grid of event-time quantiles instead of at every event time.
TT_MAX_ROWS = 1_000_000


def _tt_cut_times(time: np.ndarray, event: np.ndarray, max_rows: int = TT_MAX_ROWS) -> tuple[np.ndarray, bool]:
    """Split times for x log(t): every event time (exact, as R ``tt()``) if the split data have at
    most ``max_rows`` rows, else about 2 max_rows / n quantiles of the event times (at least 20).
    Returns (increasing cut times, exact)."""
    event_times = np.unique(time[event == 1])
    rows = int(np.searchsorted(event_times, time, side="left").sum()) + len(time)
    if rows <= max_rows:
        return event_times, True
    m = max(20, int(2 * max_rows / len(time)))
    return np.unique(np.quantile(event_times, np.linspace(0, 1, m + 1)[1:])), False


def _split_at(time: np.ndarray, event: np.ndarray, cuts: np.ndarray):
    """Episode splitting (R ``survSplit``): subject i gets rows (a, b] at the cuts below its time and
    a last row ending at its time (event there). Returns (subject index, start, stop, event)."""
    below = np.searchsorted(cuts, time, side="left")           # cuts strictly below t_i
    n_rows = below + 1
    subject = np.repeat(np.arange(len(time)), n_rows)
    first = np.cumsum(n_rows) - n_rows
    j = np.arange(n_rows.sum()) - first[subject]                # row index within the subject
    last = j == below[subject]
    stop = np.where(last, time[subject], cuts[np.minimum(j, len(cuts) - 1)] if len(cuts) else 0.0)
    start = np.where(j == 0, 0.0, cuts[np.maximum(j - 1, 0)] if len(cuts) else 0.0)
    keep = stop > start                                          # follow-up 0: no row
    return subject[keep], start[keep], stop[keep], (last & (event[subject] == 1))[keep].astype(int)


def fit_ph_remedy(result: MultivariableResult, patients: pd.DataFrame,
                  terms: list[str] | None = None, max_rows: int = TT_MAX_ROWS) -> pd.DataFrame:
    """Refit the model allowing non-proportional hazards for ``terms`` (default: PH P < 0.05).

    A categorical (or 0/1) term is moved to the strata (``coxph(... + strata(x))``); a numeric term
    gets a time interaction x * log(t) (``coxph(... + tt(x), tt = function(x, t, ...) x * log(t))``)
    by episode splitting at every event time, which is exact. When the split data would exceed
    ``max_rows`` rows, x log(t) is evaluated on a grid of event-time quantiles (constant between
    cuts, equal to x log(the cut ending the interval) for everyone at risk): an approximation for
    large cohorts, named in ``model``.
    Fitted with the Newton-Raphson of this module on counting-process data (Efron ties; strata as
    disjoint time axes, so each risk set holds one stratum). Checked against R in the tests.
    Returns the coefficient table of the remedied model (term, coef, hr, lower, upper, p, model).
    """
    columns = ["term", "coef", "hr", "lower", "upper", "p", "model"]
    design = result.fit.design
    if terms is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CoxWarning)
            ph = check_proportional_hazards(result.fit)
        terms = [t for t, p in zip(ph["term"], ph["p"]) if t != "GLOBAL" and p < 0.05]
    if not terms:
        return pd.DataFrame(columns=columns)
    strata = [t for t in terms if t not in design.X.columns or len(design.terms[t]) > 1
              or set(np.unique(design.X[design.terms[t][0]])) <= {0.0, 1.0}]
    numeric = [t for t in terms if t not in strata]
    base = design.X.drop(columns=[c for t in strata for c in design.terms[t]])
    label = [f"stratified by {VARIABLE_LABELS.get(t, t)}" for t in strata]
    time = np.asarray(design.time, dtype=float)
    event = np.asarray(design.event, dtype=int)
    if strata:
        codes = patients.loc[design.X.index, strata].astype(str).agg("\x1f".join, axis=1)
        stratum = pd.factorize(codes, sort=True)[0]
    else:
        stratum = np.zeros(len(time), dtype=int)
    if numeric:
        cuts, exact = _tt_cut_times(time, event, max_rows)
        subject, start, stop, row_event = _split_at(time, event, cuts)
        label += [f"{VARIABLE_LABELS.get(t, t)} x log(months)" for t in numeric]
        if not exact:
            label.append(f"x log(t) on {len(cuts)} event-time quantiles (more than {max_rows:,} rows "
                         "for every event time)")
    else:
        subject, start, stop, row_event = np.arange(len(time)), np.zeros(len(time)), time, event
    X = base.to_numpy(dtype=float)[subject]
    names = list(base.columns)
    if numeric:
        # log t at the cut that ends the row's interval: the same value for everyone at risk at an
        # event time (with every event time a cut, this is log of the event time itself)
        log_t = np.log(cuts[np.minimum(np.searchsorted(cuts, stop, side="left"), len(cuts) - 1)])
        X = np.column_stack([X] + [design.X[t].to_numpy(dtype=float)[subject] * log_t for t in numeric])
        names += [f"{t}:log(t)" for t in numeric]
    # strata as disjoint time axes: stratum s lives on (s * offset, s * offset + max time]
    offset = 2.0 * (float(time.max()) + 1.0)
    shift = stratum[subject] * offset
    beta, pl, converged = _newton_cox(X, stop + shift, row_event, entry=start + shift)
    if not converged:
        raise CoxModelError("the PH-remedy model did not converge in 60 Newton-Raphson iterations")
    se = np.sqrt(np.abs(np.diag(np.linalg.pinv(pl.information))))
    z = stats.norm.ppf(0.975)
    return pd.DataFrame({"term": names, "coef": beta, "hr": np.exp(beta), "lower": np.exp(beta - z * se),
                         "upper": np.exp(beta + z * se), "p": 2 * stats.norm.sf(np.abs(beta / se)),
                         "model": "; ".join(label)})[columns]


# ----------------------------------------------------------------------------- Firth sensitivity
def find_sparse_levels(patients: pd.DataFrame, endpoint: str, covariates: list[str],
                       min_n: int = SPARSE_MIN_N) -> pd.DataFrame:
    """Levels with fewer than ``min_n`` patients or with 0 / only events (variable, level, n, events)."""
    time_col, event_col, _ = ENDPOINTS[endpoint]
    rows = []
    for var in covariates:
        s = patients[var]
        if not _is_categorical(s):
            continue
        for lev in (s.cat.categories if isinstance(s.dtype, pd.CategoricalDtype) else s.dropna().unique()):
            mask = (s == lev) & patients[event_col].notna()
            n, ev = int(mask.sum()), int(patients.loc[mask, event_col].sum())
            if 0 < n and (n < min_n or ev == 0):
                rows.append({"variable": var, "label": VARIABLE_LABELS.get(var, var),
                             "level": str(lev), "n": n, "events": ev})
    return pd.DataFrame(rows, columns=["variable", "label", "level", "n", "events"])


def with_sparse_variables(result: MultivariableResult, patients: pd.DataFrame,
                          sparse: pd.DataFrame) -> MultivariableResult:
    """The model with the variables that have a sparse level added (``result`` itself if none is new)."""
    extra = [v for v in dict.fromkeys(sparse["variable"]) if v not in result.selected]
    if not extra:
        return result
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CoxWarning)
        return fit_multivariable(patients, result.endpoint, [*result.selected, *extra], entry_p=None)


def fit_firth_sensitivity(result: MultivariableResult, profile_columns: list | None = None) -> pd.DataFrame:
    """Firth-penalized refit of a multivariable model, next to the ML estimates.

    ``profile_columns``: model columns (e.g. ``"kps_group[< 70]"``) whose CIs are profile
    penalized-likelihood intervals with penalized LR P values (default: the sparse levels, fewer
    than SPARSE_MIN_N patients or no events, and any separated column); the others get Wald
    intervals at the Firth estimate (``ci_method`` column): profiling costs one constrained fit
    per evaluation and matters only where the likelihood is far from quadratic.

    Columns: term, hr_ml, lower_ml, upper_ml, p_ml (Wald), hr_firth, lower_firth, upper_firth,
    p_firth, ci_method. Efron ties (see helpers.stats.firth).
    With no sparse level and no separated column (and ``profile_columns`` not given) the Firth
    model is not fitted: the table is empty (see :func:`sparse_note`).
    """
    design = result.fit.design
    if profile_columns is None:
        levels = design.levels
        sparse = levels[~levels["reference"] & ((levels["n"] < SPARSE_MIN_N) | (levels["events"] == 0))]
        profile_columns = list(sparse["column"])
    cols = list(dict.fromkeys([*profile_columns, *result.fit.separated]))
    if not cols:   # no sparse level, no separation: the ML fit needs no remedy, and none is run
        return pd.DataFrame(columns=["term", "hr_ml", "lower_ml", "upper_ml", "p_ml", "hr_firth",
                                     "lower_firth", "upper_firth", "p_firth", "ci_method"])
    firth = fit_firth(design.X, design.time, design.event, profile=cols)
    z = stats.norm.ppf(0.975)
    ml = result.fit
    rows = []
    for _, r in firth.table.iterrows():
        col = r["term"]
        b, s = ml.coef[col], ml.se[col]
        est = col not in ml.separated
        rows.append({"term": col, "hr_ml": np.exp(b) if est else np.nan,
                     "lower_ml": np.exp(b - z * s) if est else np.nan,
                     "upper_ml": np.exp(b + z * s) if est else np.nan,
                     "p_ml": 2 * stats.norm.sf(abs(b / s)) if est else np.nan,
                     "hr_firth": r["hr"], "lower_firth": r["lower"], "upper_firth": r["upper"],
                     "p_firth": r["p"], "ci_method": r["ci_method"]})
    return pd.DataFrame(rows)


def make_firth_table(firth: pd.DataFrame) -> pd.DataFrame:
    """Display table: term, ML HR (Wald CI), P, Firth HR (profile CI), P (penalized LR)."""
    from helpers.report.formatting import format_ci, format_number, format_p

    def hr(e, lo, hi):
        if pd.isna(e):
            return "not estimable"
        return f"{format_number(e, 2)} ({format_ci(lo, hi, 2)})"
    return pd.DataFrame({
        "Term": [term_label(t) for t in firth["term"]],
        "ML HR (Wald 95% CI)": [hr(*v) for v in firth[["hr_ml", "lower_ml", "upper_ml"]].to_numpy()],
        "P (Wald)": [format_p(p) for p in firth["p_ml"]],
        "Firth HR (95% CI)": [hr(*v) for v in firth[["hr_firth", "lower_firth", "upper_firth"]].to_numpy()],
        "P (Firth)": [format_p(p) for p in firth["p_firth"]],
        "CI and P": ["profile penalized likelihood, penalized LR" if m == "profile" else "Wald at Firth estimate"
                     for m in firth["ci_method"]],
    })


# ----------------------------------------------------------------------------- multiple imputation
def _nelson_aalen(time, event) -> np.ndarray:
    """Nelson-Aalen cumulative hazard at each subject's own time (White and Royston 2009)."""
    time = np.asarray(time, dtype=float)
    event = np.asarray(event, dtype=int)
    t_ev = np.unique(time[event == 1])
    deaths = np.bincount(np.searchsorted(t_ev, time[event == 1]), minlength=len(t_ev))
    at_risk = len(time) - np.searchsorted(np.sort(time), t_ev, side="left")
    values = np.cumsum(deaths / at_risk)
    idx = np.searchsorted(t_ev, time, side="right")
    return np.concatenate([[0.0], values])[idx]


def _nearest_donors(pred_obs: np.ndarray, pred_mis: np.ndarray, donors: int) -> np.ndarray:
    """For each missing value: indices of the ``donors`` observed predictions closest to its own.

    Ordered by distance, ties by index: row r equals
    ``np.argsort(np.abs(pred_obs - pred_mis[r]), kind="stable")[:donors]``, computed in
    O((n_obs + n_mis) log n_obs) from two sorted copies of ``pred_obs`` (values ascending, ties by
    index descending for the candidates below and ascending for those above), so that the
    ``donors`` candidates on each side of the insertion point always contain the answer.
    """
    n_obs = len(pred_obs)
    k = min(donors, n_obs)
    index = np.arange(n_obs)
    below = np.lexsort((-index, pred_obs))
    above = np.lexsort((index, pred_obs))
    pos = np.searchsorted(pred_obs[above], pred_mis, side="left")
    offsets = np.arange(1, k + 1)
    left = pos[:, None] - offsets[None, :]                 # nearest first
    right = pos[:, None] + offsets[None, :] - 1
    cand = np.concatenate([below[np.clip(left, 0, n_obs - 1)], above[np.clip(right, 0, n_obs - 1)]], axis=1)
    valid = np.concatenate([left >= 0, right < n_obs], axis=1)
    dist = np.where(valid, np.abs(pred_obs[cand] - pred_mis[:, None]), np.inf)
    rows = np.repeat(np.arange(len(pred_mis)), cand.shape[1])
    flat = np.lexsort((cand.ravel(), dist.ravel(), rows)).reshape(cand.shape)   # row-major blocks
    column = flat - (np.arange(len(pred_mis)) * cand.shape[1])[:, None]
    return np.take_along_axis(cand, column, axis=1)[:, :k]


def impute_chained(patients: pd.DataFrame, endpoint: str, covariates: list[str], m: int = 20,
                   seed: int = 0, n_iter: int = 10, donors: int = 5) -> list[pd.DataFrame]:
    """Multiple imputation by chained equations with predictive mean matching (numeric columns).

    Each incomplete numeric covariate is imputed from all other covariates (dummy-coded), the event
    indicator and the Nelson-Aalen cumulative hazard (White and Royston, Stat Med 2009): a normal
    linear model is fitted to the observed values, its coefficients are drawn from their posterior
    (proper imputation, Rubin 1987), and each missing value takes the observed value of one of the
    ``donors`` closest predicted means (type-1 PMM, as R ``mice(method = "pmm")``).
    Returns ``m`` completed copies of ``patients``. Deterministic for a given ``seed``.
    """
    rng = np.random.default_rng(seed)
    time_col, event_col, _ = ENDPOINTS[endpoint]
    data = patients.copy()
    incomplete = [c for c in covariates if data[c].isna().any()]
    bad = [c for c in incomplete if _is_categorical(data[c])]
    if bad:
        raise CoxModelError(f"imputation of categorical covariates is not implemented: {bad}")
    complete_part = data[[time_col, event_col]].notna().all(axis=1)
    data = data[complete_part]
    H = _nelson_aalen(data[time_col].to_numpy(float), data[event_col].to_numpy(int))
    miss = {c: data[c].isna().to_numpy() for c in incomplete}
    out = []
    for _ in range(m):
        current = data.copy()
        for c in incomplete:   # start from random draws of observed values
            obs = current.loc[~miss[c], c].to_numpy(float)
            current.loc[miss[c], c] = rng.choice(obs, miss[c].sum())
        for _it in range(n_iter if len(incomplete) > 1 else 1):
            for c in incomplete:
                others = [v for v in covariates if v != c]
                Z = [np.ones(len(current)), current[event_col].to_numpy(float), H]
                for v in others:
                    s = current[v]
                    if _is_categorical(s):
                        cats = list(s.cat.categories) if isinstance(s.dtype, pd.CategoricalDtype) \
                            else sorted(s.dropna().unique())
                        Z += [(s == lev).to_numpy(float) for lev in cats[1:]]
                    else:
                        Z.append(s.to_numpy(float))
                Z = np.column_stack(Z)
                keep = np.linalg.matrix_rank(Z) == Z.shape[1]
                if not keep:   # drop aliased columns
                    q, r = np.linalg.qr(Z)
                    Z = Z[:, np.abs(np.diag(r)) > 1e-8]
                y = current[c].to_numpy(float)
                o = ~miss[c]
                Zo, yo = Z[o], y[o]
                XtX_inv = np.linalg.inv(Zo.T @ Zo)
                bhat = XtX_inv @ Zo.T @ yo
                resid = yo - Zo @ bhat
                dof = max(len(yo) - Z.shape[1], 1)
                sigma2 = resid @ resid / rng.chisquare(dof)
                bdraw = rng.multivariate_normal(bhat, sigma2 * XtX_inv)
                pred_obs = Zo @ bhat
                pred_mis = Z[~o] @ bdraw
                # type-1 PMM: a random one of the nearest donors (one draw per missing value, in order)
                nearest = _nearest_donors(pred_obs, pred_mis, donors)
                pick = rng.integers(0, nearest.shape[1], size=len(pred_mis))
                y = y.copy()
                y[~o] = yo[nearest[np.arange(len(pred_mis)), pick]]
                current[c] = y
        out.append(current)
    return out


def pool_rubin(estimates: np.ndarray, variances: np.ndarray) -> dict:
    """Rubin's rules for one coefficient: pooled estimate, total variance, df, FMI.

    ``estimates`` and ``variances`` (squared SEs) over m imputations. Degrees of freedom by
    Rubin (1987), nu = (m - 1) (1 + W / ((1 + 1/m) B))^2; as R ``mice::pool`` with infinite
    complete-data df. Returns {estimate, se, df, lower, upper, p, fmi} (95% t interval).
    """
    q = np.asarray(estimates, float)
    u = np.asarray(variances, float)
    m = len(q)
    qbar, W = q.mean(), u.mean()
    B = q.var(ddof=1) if m > 1 else 0.0
    T = W + (1 + 1 / m) * B
    if B > 0:
        r = (1 + 1 / m) * B / W
        df = (m - 1) * (1 + 1 / r) ** 2
        fmi = (r + 2 / (df + 3)) / (r + 1)
    else:
        df, fmi = np.inf, 0.0
    se = np.sqrt(T)
    tq = stats.t.ppf(0.975, df) if np.isfinite(df) else stats.norm.ppf(0.975)
    pval = 2 * (stats.t.sf(abs(qbar / se), df) if np.isfinite(df) else stats.norm.sf(abs(qbar / se)))
    return {"estimate": qbar, "se": se, "df": df, "lower": qbar - tq * se,
            "upper": qbar + tq * se, "p": pval, "fmi": fmi}


def fit_multiple_imputation(patients: pd.DataFrame, endpoint: str, covariates: list[str],
                            m: int = 20, seed: int = 0) -> pd.DataFrame:
    """Cox model for ``covariates`` on ``m`` imputed data sets, pooled by Rubin's rules.

    Returns one row per coefficient: term, hr, lower, upper, p, fmi (fraction of missing
    information) pooled, and hr_cc, lower_cc, upper_cc, p_cc from the complete-case fit;
    ``attrs``: n_cc, n_mi, m, seed.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CoxWarning)
        cc = fit_cox(build_design(patients, endpoint, covariates))
        imputed = impute_chained(patients, endpoint, covariates, m=m, seed=seed)
        # The imputed data sets differ only in the imputed numeric columns: one design, those
        # columns replaced per imputation. No concordance (not reported); each fit starts from the
        # complete-case coefficients.
        first = build_design(imputed[0], endpoint, covariates)
        filled = [c for c in covariates if patients[c].isna().any() and c in first.X.columns]
        fits = []
        for d in imputed:
            X = first.X.copy()
            for c in filled:
                X[c] = d.loc[X.index, c].to_numpy(dtype=float)
            design = dataclasses.replace(first, X=X, warnings=[])
            fits.append(fit_cox(design, concordance=False, start=cc.coef))
    z = stats.norm.ppf(0.975)
    rows = []
    for col in fits[0].coef.index:
        pooled = pool_rubin([f.coef[col] for f in fits], [f.se[col] ** 2 for f in fits])
        b, s = cc.coef.get(col, np.nan), cc.se.get(col, np.nan)
        rows.append({"term": col, "hr": np.exp(pooled["estimate"]), "lower": np.exp(pooled["lower"]),
                     "upper": np.exp(pooled["upper"]), "p": pooled["p"], "fmi": pooled["fmi"],
                     "hr_cc": np.exp(b), "lower_cc": np.exp(b - z * s), "upper_cc": np.exp(b + z * s),
                     "p_cc": 2 * stats.norm.sf(abs(b / s))})
    out = pd.DataFrame(rows)
    out.attrs.update(n_cc=cc.design.n, events_cc=cc.design.events, n_mi=fits[0].design.n,
                     events_mi=fits[0].design.events, m=m, seed=seed)
    return out


def make_mi_table(mi: pd.DataFrame) -> pd.DataFrame:
    """Display table: term, complete-case HR (95% CI) and P, pooled MI HR (95% CI), P and FMI."""
    from helpers.report.formatting import format_ci, format_number, format_p
    return pd.DataFrame({
        "Term": [term_label(t) for t in mi["term"]],
        f"Complete cases (n = {mi.attrs.get('n_cc')}) HR (95% CI)":
            [f"{format_number(h, 2)} ({format_ci(l, u, 2)})" for h, l, u in mi[["hr_cc", "lower_cc", "upper_cc"]].to_numpy()],
        "P (CC)": [format_p(p) for p in mi["p_cc"]],
        f"Multiple imputation (n = {mi.attrs.get('n_mi')}, m = {mi.attrs.get('m')}) HR (95% CI)":
            [f"{format_number(h, 2)} ({format_ci(l, u, 2)})" for h, l, u in mi[["hr", "lower", "upper"]].to_numpy()],
        "P (MI)": [format_p(p) for p in mi["p"]],
        "FMI": [format_number(f, 2) for f in mi["fmi"]],
    })


# ----------------------------------------------------------------------------- published comparison
#: The paper's independent OS factors (abstract; no HRs published) -> our variable names.
PUBLISHED_FACTORS = {
    "KPS score >= 70": "kps_group",
    "local therapy for liver metastases": "local_therapy_liver",
    "number of chemotherapy cycles received": "chemo_cycles",
    "number of immunotherapy cycles received": "ici_cycles",
}


def make_model_comparison_table(models: dict, published: dict | None = None) -> pd.DataFrame:
    """Several multivariable models side by side, one row per variable level.

    Parameters
    ----------
    models : {column heading: MultivariableResult}, e.g. the paper-style model and the
        rule-selected model.
    published : {published factor wording: variable}; default :data:`PUBLISHED_FACTORS`. Adds a
        column saying whether the paper named the variable as an independent factor.

    Returns
    -------
    DataFrame: Variable, Level, Published, then "<model>: HR (95% CI)" and "<model>: P" per model
    ("not in model" when a model lacks the variable), and closing rows with the patients/events,
    events per parameter, global LR test and concordance of each model.
    """
    from helpers.report.formatting import format_number, format_p
    published = PUBLISHED_FACTORS if published is None else published
    named = set(published.values())
    keys = []
    for result in models.values():
        for _, row in result.table.iterrows():
            if (row["variable"], row["level"]) not in keys:
                keys.append((row["variable"], row["level"]))
    first = {}
    for i, (v, _) in enumerate(keys):
        first.setdefault(v, i)
    keys.sort(key=lambda k: first[k[0]])   # stable: keeps a variable's levels together, in order
    rows, previous = [], None
    for var, level in keys:
        rec = {"Variable": VARIABLE_LABELS.get(var, var) if var != previous else "", "Level": level,
               "Published": ("independent factor" if var in named else "not named")
               if var != previous else ""}
        previous = var
        for name, result in models.items():
            hit = result.table[(result.table["variable"] == var) & (result.table["level"] == level)]
            if hit.empty:
                rec[f"{name}: HR (95% CI)"], rec[f"{name}: P"] = "not in model", ""
            else:
                row = hit.iloc[0]
                rec[f"{name}: HR (95% CI)"] = _hr_text(row)
                rec[f"{name}: P"] = "" if row["reference"] or pd.isna(row["p"]) else format_p(row["p"])
        rows.append(rec)
    summary = {"Patients / events": lambda r: f"{r.n} / {r.events}",
               "Events per parameter": lambda r: format_number(r.epv, 1),
               "Global LR test P": lambda r: format_p(r.lr_test["p"]),
               "Concordance (Harrell's C)": lambda r: format_number(r.concordance, 2)}
    for label, get in summary.items():
        rec = {"Variable": label, "Level": "", "Published": ""}
        for name, result in models.items():
            rec[f"{name}: HR (95% CI)"], rec[f"{name}: P"] = get(result), ""
        rows.append(rec)
    return pd.DataFrame(rows)


def result_key(term: str) -> str:
    """results.json key of a model term: ``kps_group[< 70]`` -> ``kps_group_lt_70``."""
    for old, new in ((">=", "_ge_"), ("<=", "_le_"), (">", "_gt_"), ("<", "_lt_"), ("+", "_plus_")):
        term = term.replace(old, new)
    term = re.sub(r"[^0-9A-Za-z]+", "_", term)
    return term.strip("_")


def _hr_string(h, lo, hi, p=None) -> str:
    """'HR 0.41 (95% CI 0.25-0.66), P < 0.001' for prose."""
    from helpers.report.formatting import format_ci, format_number, format_p
    text = f"HR {format_number(h, 2)} (95% CI {format_ci(lo, hi, 2)})"
    if p is None:
        return text
    shown = format_p(p)
    return text + (f", P {shown[0]} {shown[1:]}" if shown.startswith("<") else f", P = {shown}")


def _lr_string(lr: dict) -> str:
    from helpers.report.formatting import format_number, format_p
    shown = format_p(lr["p"])
    return (f"chi-square {format_number(lr['chisq'], 1)} on {lr['df']} df, "
            + (f"P < {shown[1:]}" if shown.startswith("<") else f"P = {shown}"))


def _term_name(row) -> str:
    return row["variable"] if row["level"].startswith("per ") else f"{row['variable']}[{row['level']}]"


def _model_terms(result: MultivariableResult) -> list[dict]:
    """results.json rows {term, hr, lower, upper, p} of the non-reference levels of a model."""
    multi = result.table[~result.table["reference"]]
    return [{"term": _term_name(r), "hr": r["hr"], "lower": r["lower"], "upper": r["upper"],
             "p": r["p"]} for _, r in multi.iterrows()]


def _model_summary(result: MultivariableResult) -> dict:
    return {"n": result.n, "events": result.events, "n_missing": result.n_missing,
            "n_params": result.n_params, "selected": result.selected, "global_lr": result.lr_test,
            "concordance": result.concordance, "entry_p": result.entry_p,
            "entry_test": result.entry_test, "epv": result.epv}


def in_sentence(label: str) -> str:
    """A label inside a sentence: first letter lower-cased unless it starts an acronym ("KPS score")."""
    if len(label) > 1 and label[:2].isupper():
        return label
    return label[:1].lower() + label[1:]


def _model_text(result: MultivariableResult, prefix: str) -> dict:
    """Prose strings of one model: n, events, EPV, global LR, C and one HR string per term."""
    from helpers.report.formatting import format_number
    text = {f"{prefix}n": str(result.n), f"{prefix}events": str(result.events),
            f"{prefix}n_missing": str(result.n_missing), f"{prefix}epv": format_number(result.epv, 1),
            f"{prefix}n_params": str(result.n_params),
            f"{prefix}concordance": format_number(result.concordance, 2),
            f"{prefix}global_lr": _lr_string(result.lr_test),
            f"{prefix}selected": ", ".join(in_sentence(VARIABLE_LABELS.get(v, v)) for v in result.selected)}
    for _, row in result.table[~result.table["reference"]].iterrows():
        key = f"{prefix}{result_key(_term_name(row))}"
        text[key] = ("not estimable" if row["note"].startswith("not estimable")
                     else _hr_string(row["hr"], row["lower"], row["upper"], row["p"]))
        if pd.notna(row["n"]):   # patients in a factor level (e.g. pm_kps_group_lt_70_n)
            text[f"{key}_n"] = str(int(row["n"]))
    return text


def compare_selection(result: MultivariableResult, paper: MultivariableResult) -> str:
    """One or two sentences: what the rule-selected model keeps of, adds to and leaves out of the
    paper-style model (HR of each kept factor level), for any cohort."""
    def names(variables):
        labels = [in_sentence(VARIABLE_LABELS.get(v, v)) for v in variables]
        return labels[0] if len(labels) == 1 else ", ".join(labels[:-1]) + " and " + labels[-1]

    kept = [v for v in paper.selected if v in result.selected]
    added = [v for v in result.selected if v not in paper.selected]
    dropped = [v for v in paper.selected if v not in result.selected]
    parts = []
    if kept:
        hrs = [f"{term_label(_term_name(r))} {_hr_string(r['hr'], r['lower'], r['upper'], r['p'])}"
               for _, r in result.table[~result.table["reference"] & result.table["variable"].isin(kept)].iterrows()
               if not r["note"].startswith("not estimable")]
        parts.append(f"keeps {names(kept)}" + (f" ({'; '.join(hrs)})" if hrs else ""))
    if added:
        parts.append(f"adds {names(added)}")
    if dropped:
        parts.append(f"leaves out {names(dropped)}")
    text = "The rule-selected model " + (", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else parts[0]) + "."
    if "arm" in result.selected and "ici_cycles" in result.selected:
        text += (" The arm coefficient in that model is hard to interpret: only patients in the CMT + ICI arm "
                 "receive immunotherapy cycles, so once those cycles are in the model, the arm term compares "
                 "the arms at an equal number of immunotherapy cycles.")
    return text


def summarise_for_results(univariable: pd.DataFrame, result: MultivariableResult, ph: pd.DataFrame,
                          immortal: pd.DataFrame | None = None, time_varying: pd.DataFrame | None = None,
                          firth: pd.DataFrame | None = None, mi: pd.DataFrame | None = None,
                          landmark_months: float | None = None, choices: dict | None = None,
                          paper: MultivariableResult | None = None,
                          pfs: MultivariableResult | None = None,
                          reference_levels: dict | None = None,
                          sparse: pd.DataFrame | None = None) -> dict:
    """The ``cox`` section of results.json, with ready-formatted strings under ``text``.

    ``result`` is the rule-selected OS model (keys ``multivariable``, ``model``, text ``mv_*``);
    ``paper`` the paper-style model (``multivariable_paper``, ``model_paper``, text ``pm_*``);
    ``pfs`` the rule-selected PFS model (``multivariable_pfs``, ``model_pfs``, text ``pfs_mv_*``).
    """
    from helpers.report.formatting import format_p

    uni_cols = ["endpoint", "variable", "level", "reference", "n", "events", "hr", "lower", "upper",
                "p", "df", "p_lr", "n_model", "events_model"]
    summary_keys = ("n", "events", "n_missing", "epv", "n_params", "concordance", "global_lr",
                    "selected")
    text = {(k[3:] if k[3:] in summary_keys else k): v for k, v in _model_text(result, "mv_").items()}
    text.update({
        "entry_p": f"{result.entry_p:g}" if result.entry_p is not None else "none",
        "n_candidates": str(univariable["variable"].nunique()),
        "ph_global_p": format_p(ph.loc[ph["term"] == "GLOBAL", "p"].iloc[0]),
        "ph_violated": ", ".join(in_sentence(VARIABLE_LABELS.get(t, t)) for t, p in zip(ph["term"], ph["p"])
                                 if t != "GLOBAL" and p < 0.05) or "none",
    })
    if reference_levels:
        text["reference_levels"] = "; ".join(f"{in_sentence(VARIABLE_LABELS.get(v, v))}: {lev}"
                                             for v, lev in reference_levels.items())
    for _, row in univariable[~univariable["reference"]].iterrows():
        text[f"uv_{result_key(_term_name(row))}"] = _hr_string(row["hr"], row["lower"], row["upper"], row["p"])
    payload = {
        "choices": choices or {},
        "reference_levels": reference_levels or {},
        "univariable": univariable[uni_cols].to_dict(orient="records"),
        "multivariable": _model_terms(result),
        "model": _model_summary(result),
        "epv": result.epv,
        "ph_test": ph.to_dict(orient="records"),
        "warnings": result.warnings,
    }
    if paper is not None:
        payload["multivariable_paper"] = _model_terms(paper)
        payload["model_paper"] = _model_summary(paper)
        text.update(_model_text(paper, "pm_"))
        text["selected_vs_paper"] = compare_selection(result, paper)
    if pfs is not None:
        payload["multivariable_pfs"] = _model_terms(pfs)
        payload["model_pfs"] = _model_summary(pfs)
        text.update(_model_text(pfs, "pfs_mv_"))
    if immortal is not None:
        payload["landmark"] = immortal[immortal["approach"].str.startswith("Landmark")].to_dict(orient="records")
        payload["paper_style"] = immortal[immortal["approach"].str.startswith("Baseline")].to_dict(orient="records")
        payload["landmark_months"] = landmark_months
        for _, r in immortal.iterrows():
            kind = {"B": "paper", "L": "landmark", "T": "tv"}[r["approach"][0]]
            text[f"{kind}_{r['term'].split('[')[0]}"] = _hr_string(r["hr"], r["lower"], r["upper"], r["p"])
            text[f"{kind}_n"] = str(int(r["n"]))
            text[f"{kind}_events"] = str(int(r["events"]))
        if landmark_months is not None:
            text["landmark_months"] = f"{landmark_months:g}"
    if time_varying is not None:
        payload["time_varying"] = time_varying.to_dict(orient="records")
    if sparse is not None:
        for _, r in sparse.iterrows():   # e.g. sparse_kps_group_lt_70_n = "2"
            text[f"sparse_{result_key(r['variable'] + '[' + r['level'] + ']')}_n"] = str(int(r["n"]))
    if firth is not None:
        payload["firth"] = firth.to_dict(orient="records")
        for _, r in firth.iterrows():
            text[f"firth_{result_key(r['term'])}"] = _hr_string(r["hr_firth"], r["lower_firth"], r["upper_firth"], r["p_firth"])
    if sparse is not None:
        text.update(sparse_sentences(sparse, firth))
    if mi is not None:
        payload["mice"] = {"m": mi.attrs.get("m"), "seed": mi.attrs.get("seed"), "n": mi.attrs.get("n_mi"),
                           "n_complete_case": mi.attrs.get("n_cc"), "terms": mi.to_dict(orient="records")}
        text["mi_m"] = str(mi.attrs.get("m"))
        text["mi_n"] = str(mi.attrs.get("n_mi"))
        for _, r in mi.iterrows():
            text[f"mi_{result_key(r['term'])}"] = _hr_string(r["hr"], r["lower"], r["upper"], r["p"])
    payload["text"] = text
    return payload


def markdown_notes(summary: pd.DataFrame, caveats: list[str]) -> str:
    """Table footnote: the model summary statistics and the caveats raised while fitting."""
    parts = ["; ".join(f"{a}: {b}" for a, b in summary.to_numpy())]
    parts += [f"Warning ({c.split(':', 1)[0]}):{c.split(':', 1)[1]}" for c in caveats]
    return "\n\n".join(parts)


def sparse_sentences(sparse: pd.DataFrame, firth: pd.DataFrame | None) -> dict:
    """Prose on the sparse levels for any cohort: ``sparse_levels`` (what was flagged) and
    ``firth_sentence`` (the Firth estimates of the sparse levels, or why no Firth model was fitted)."""
    if sparse.empty:
        return {"sparse_levels": "none in this cohort",
                "firth_sentence": ("No level had fewer than 5 patients or no events, and no term separated, "
                                   "so the maximum-likelihood estimates needed no Firth correction")}
    items = [f"{r['label']} {r['level']} has {r['n']} patient{'s' if r['n'] != 1 else ''}"
             + (" and no events" if r["events"] == 0 else "") for _, r in sparse.iterrows()]
    text = {"sparse_levels": "; ".join(items)}
    profiled = firth[firth["ci_method"] == "profile"] if firth is not None and not firth.empty else None
    if profiled is None or profiled.empty:
        text["firth_sentence"] = "Only " + "; ".join(items) + "; no Firth model was fitted"
        return text
    estimates = [f"{term_label(r['term'])}, {_hr_string(r['hr_firth'], r['lower_firth'], r['upper_firth'], r['p_firth'])}"
                 for _, r in profiled.iterrows()]
    text["firth_sentence"] = (
        "Only " + "; ".join(items) + ". With the variables that have a sparse level added to the rule-selected "
        f"model, the Firth-penalized estimate{'s were' if len(estimates) > 1 else ' was'} "
        + "; ".join(estimates) + "; the width of such an interval shows how little so few patients can tell")
    return text


def sparse_note(sparse: pd.DataFrame, firth: pd.DataFrame | None = None) -> str:
    """Footnote naming the sparse levels that motivated the Firth model (and saying when none was fitted)."""
    if sparse.empty:
        text = "No sparse level (all levels have at least 5 patients and one event)."
        if firth is not None and firth.empty:
            text += (" No separation either: the maximum-likelihood model needs no Firth correction, "
                     "which was not fitted.")
        return text
    items = [f"{r['label']} {r['level']} (n = {r['n']}, {r['events']} events)" for _, r in sparse.iterrows()]
    return "Sparse levels: " + "; ".join(items) + ". Firth model with Efron ties."


def term_label(term: str) -> str:
    """Readable name of a model column: ``arm[CMT+ICI]`` -> "Treatment arm: CMT+ICI",
    ``chemo_cycles`` -> "Chemotherapy cycles (per cycle)", ``x:log(t)`` -> "... x log(months)"."""
    if term.endswith(":log(t)"):
        base = term[: -len(":log(t)")]
        return f"{VARIABLE_LABELS.get(base, base)} x log(months)"
    m = re.fullmatch(r"(.+)\[(.+)\]", term)
    if m:
        return f"{VARIABLE_LABELS.get(m.group(1), m.group(1))}: {m.group(2)}"
    label = VARIABLE_LABELS.get(term, term)
    unit = NUMERIC_UNITS.get(term)
    return label if unit is None or "per" in label else f"{label} ({unit})"


def make_remedy_table(remedy: pd.DataFrame) -> pd.DataFrame:
    """Display table of :func:`fit_ph_remedy` (the model description is :func:`remedy_note`)."""
    from helpers.report.formatting import format_ci, format_number, format_p
    if remedy.empty:
        return pd.DataFrame({"Note": ["No term violated proportional hazards (P >= 0.05)."]})
    return pd.DataFrame({
        "Term": [term_label(t) for t in remedy["term"]],
        "HR (95% CI)": [f"{format_number(h, 2)} ({format_ci(l, u, 2)})"
                        for h, l, u in remedy[["hr", "lower", "upper"]].to_numpy()],
        "P (Wald)": [format_p(p) for p in remedy["p"]],
    })


def remedy_note(remedy: pd.DataFrame) -> str:
    """Footnote of the PH-remedy table: how the model was changed."""
    if remedy.empty:
        return ""
    return ("Model: " + remedy["model"].iloc[0] + ". A term x log(months) is the change in log HR "
            "per unit of log(time): HR(t) = HR x (its HR)^log(t).")


def imputation_covariates(patients: pd.DataFrame, selected: list[str], candidates: list[str]) -> list[str]:
    """The multivariable variables plus every candidate with missing values (for the MI sensitivity)."""
    return list(dict.fromkeys([*selected, *[c for c in candidates if patients[c].isna().any()]]))
