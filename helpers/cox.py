"""Prognostic factors: univariable and multivariable Cox models, PH checks, sparse levels, MI.

Conventions (and their R equivalents)
-------------------------------------
- Engine: lifelines ``CoxPHFitter`` (Efron ties, Newton-Raphson run to a relative log-likelihood
  change below 1e-14), i.e. ``coxph(Surv(months, event) ~ ..., ties = "efron")``.
- Times in months (days / 30.4375). Categorical covariates are dummy-coded against their first
  category (the data dictionary's reference level); numeric covariates enter linearly (HR per unit).
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

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from helpers.firth import fit_firth, partial_likelihood

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
    """A factor level with very few patients or with no (or only) events: unstable HR."""


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
    """First column that is a linear combination of the intercept and earlier columns."""
    basis = np.ones((len(X), 1))
    kept: list[str] = []
    for column in X.columns:
        x = X[column].to_numpy(dtype=float)
        coef, *_ = np.linalg.lstsq(basis, x, rcond=None)
        resid = x - basis @ coef
        if np.linalg.norm(resid) <= 1e-8 * max(np.linalg.norm(x), 1.0):
            involved = [k for k, c in zip(["(intercept)"] + kept, coef) if abs(c) > 1e-8]
            return column, involved
        basis = np.column_stack([basis, x])
        kept.append(column)
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
                if n_lev < sparse_min_n or ev_lev == 0 or ev_lev == n_lev:
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
    fitter: object = None

    @property
    def lr_chisq(self) -> float:
        return 2 * (self.loglik - self.loglik_null)


def _monotone_columns(X: pd.DataFrame, time, event) -> list[str]:
    """Columns whose value, at every event time, is the maximum (or minimum) in the risk set.

    For such a column the partial likelihood increases monotonically in its coefficient (complete
    separation; Heinze and Schemper 2001), so the ML estimate is +/- infinity.
    """
    out = []
    t_events = np.unique(time[event == 1])
    for col in X.columns:
        x = X[col].to_numpy(dtype=float)
        high = low = True
        for t in t_events:
            risk = time >= t
            dying = (time == t) & (event == 1)
            if x[dying].min() < x[risk].max():
                high = False
            if x[dying].max() > x[risk].min():
                low = False
            if not (high or low):
                break
        if high or low:
            out.append(col)
    return out


def fit_cox(design: CoxDesign) -> CoxFit:
    """Fit ``coxph(Surv(time, event) ~ X, ties = "efron")`` with lifelines.

    Monotone likelihood (complete separation) is detected before fitting and after it (|coef| >
    SEPARATION_COEF); it raises SeparationWarning and the affected columns are listed in
    ``CoxFit.separated`` (their HRs are reported as not estimable, never as huge numbers).
    """
    from lifelines import CoxPHFitter
    from lifelines.exceptions import ConvergenceError, ConvergenceWarning

    X, time, event = design.X, design.time, design.event
    if event.sum() == 0:
        raise CoxModelError(f"no events among the {len(time)} analysed patients: no Cox model")
    separated = _monotone_columns(X, time, event)
    frame = X.copy()
    frame["_time"], frame["_event"] = time, event
    fitter = CoxPHFitter(baseline_estimation_method="breslow")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            fitter.fit(frame, "_time", "_event", fit_options=FIT_OPTIONS)
        except ConvergenceError as exc:
            raise CoxModelError(
                f"the Cox model did not converge ({str(exc).splitlines()[0]}); check for "
                "separation, collinearity or constant covariates") from exc
    coef = fitter.params_.copy()
    separated += [c for c in coef.index if abs(coef[c]) > SEPARATION_COEF and c not in separated]
    if separated:
        _warn(design.warnings, SeparationWarning,
              f"monotone likelihood for {separated}: every event occurs at the extreme value of "
              "the covariate in its risk set, so the maximum-likelihood HR is infinite or zero; "
              "the HR is reported as not estimable; use the Firth-penalized estimate")
    cov = fitter.variance_matrix_.copy()
    se = pd.Series(np.sqrt(np.diag(cov)), index=coef.index)
    null = partial_likelihood(np.zeros(X.shape[1]), X.to_numpy(dtype=float), time, event).loglik
    return CoxFit(design, coef, se, cov, float(fitter.log_likelihood_), float(null),
                  float(fitter.concordance_index_), separated, fitter)


def _lr_test(full: CoxFit, without: list[str]) -> tuple[float, int, float]:
    """LR test dropping ``without`` columns, refitted on the same patients (``anova(f0, f1)``)."""
    keep = [c for c in full.design.X.columns if c not in without]
    if not keep:
        chisq = full.lr_chisq
    else:
        sub = CoxDesign(full.design.X[keep], full.design.time, full.design.event, {}, None,
                        full.design.endpoint, 0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CoxWarning)
            chisq = 2 * (full.loglik - fit_cox(sub).loglik)
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
        fit = fit_cox(design)
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
    from helpers.formatting import format_ci, format_number
    if row["reference"]:
        return "1 (reference)"
    if row["note"].startswith("not estimable"):
        return "not estimable"
    return f"{format_number(row['hr'], digits)} ({format_ci(row['lower'], row['upper'], digits)})"


def make_cox_table(table: pd.DataFrame, show_factor_p: bool = True) -> pd.DataFrame:
    """Display table: Variable, Level, n, Events, HR (95% CI), P (Wald), P (LR, whole variable).

    The LR P is shown once per variable, only for variables with more than one level contrast.
    """
    from helpers.formatting import format_p
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
    from helpers.formatting import format_number, format_p
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
    from helpers.formatting import format_p
    try:
        from helpers.plots import COLUMN_WIDTH_IN, OKABE_ITO, style_context
    except ImportError:  # pragma: no cover
        import contextlib
        style_context, OKABE_ITO, COLUMN_WIDTH_IN = contextlib.nullcontext, {"blue": "C0"}, 3.35

    table = result.table
    lines = []  # (label, n, hr, lower, upper, text, kind)
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
            ax.text(-0.02, y, label, transform=ax.get_yaxis_transform(), ha="right", va="center",
                    fontweight=weight)
            ax.text(-0.005 - 0.0, y, "", transform=ax.get_yaxis_transform())
            if kind == "header" or row is None:
                continue
            n_text = str(int(row["n"])) if row["reference"] or n else ""
            ax.text(-0.005, y, n_text, transform=ax.get_yaxis_transform(), ha="right", va="center")
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
        ax.text(-0.02, top, "Variable", transform=ax.get_yaxis_transform(), ha="right",
                va="center", fontweight="bold")
        ax.text(-0.005, top, "n", transform=ax.get_yaxis_transform(), ha="right", va="center",
                fontweight="bold")
        ax.text(1.02, top, "HR (95% CI)", transform=ax.get_yaxis_transform(), ha="left",
                va="center", fontweight="bold")
        if title:
            ax.set_title(title)
        fig.subplots_adjust(left=0.42, right=0.62)
    return fig
