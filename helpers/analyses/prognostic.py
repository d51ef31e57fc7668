"""Prognostic factors: the study and the analysis plan in, typed Cox-model results out.

Every model is fitted by the one engine :func:`helpers.stats.cox.fit_coxph`; this module builds the
model matrices from the patient table (dummy coding against the reference level, complete cases),
applies the selection rule and runs the checks (proportional hazards and its remedy, events per
parameter, sparse levels and the Firth model, immortal time of post-baseline exposure counts, missing
data by multiple imputation). It returns numbers with their method in dataclasses that carry
:class:`~helpers.stats.types.Caveat` lists; :mod:`helpers.report.prognostic` writes the words.

Nothing here names a covariate of a particular study: candidates, labels, reference levels, timing
(baseline / post-baseline) and exposure counts come from the study's dictionary and the ``prognostic``
block of the analysis plan (``analysis.yaml``):

``candidates`` (null: the dictionary's baseline variables, groupings where they exist, and the arm; a
post-baseline variable is never a candidate of the multivariable model, it enters only the landmark and
time-varying models: ``post_baseline_covariates``, null = the post-baseline covariates recorded for every
patient), ``bootstrap_replicates`` (200: optimism-corrected C-index), ``calibration_months`` (12) and
``calibration_groups`` (4),
``reference_levels`` / ``merged_levels`` (overrides of the dictionary; ``{variable: level}`` and
``{variable: {new level: [old levels]}}``), ``entry_p`` (0.05; null enters every candidate),
``entry_test`` ("lr" or "wald"), ``exposure_coding`` ("per_cycle" or "categories") and
``exposure_cutpoints``, ``landmark_months``, ``endpoints``, ``mi_imputations``, ``sparse_min_n``,
``epv_min``, ``published_model`` (variables of a published model; fitted only with a replication part).

Conventions (R equivalents): Efron ties (``coxph`` default); Wald z test per level and Wald CI; LR test
per variable from nested fits on the same patients (``anova``/``drop1``); Harrell's C as R's
``concordance()``; ``cox.zph(transform = "km")`` score test; complete-case analysis per model; times in
months.
"""
from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from helpers.data.load import agent_codes
from helpers.parallel import POOL_MIN_PATIENTS, map_tasks
from helpers.stats.concordance import harrell_c
from helpers.stats.cox import (SEPARATION_COEF, TT_MAX_ROWS, CoxFit, fit_coxph, proportional_hazards_test,
                               scaled_schoenfeld, split_at_cuts, tt_cut_times)
from helpers.stats.firth import fit_firth
from helpers.stats.imputation import impute_chained, pool_rubin
from helpers.stats.timevarying import counting_process_intervals
from helpers.stats.types import Caveat, NotEstimable, TestResult, is_estimable

# ----------------------------------------------------------------------------- constants
#: Endpoint -> (time column in months, event column).
ENDPOINTS = {"os": ("os_months", "os_event"), "pfs": ("pfs_months", "pfs_event")}

#: Defaults of the ``prognostic`` block of the analysis plan.
DEFAULT_CHOICES = {
    "candidates": None, "reference_levels": {}, "merged_levels": {}, "entry_p": 0.05, "entry_test": "lr",
    "exposure_coding": "per_cycle", "exposure_cutpoints": {}, "exposure_cutpoint": 4, "landmark_months": 3.0,
    "endpoints": ["os", "pfs"], "mi_imputations": 20, "sparse_min_n": 5, "epv_min": 10,
    "published_model": None, "seed": None, "post_baseline_covariates": None,
    "bootstrap_replicates": 200, "calibration_months": 12, "calibration_groups": 4,
}

#: A level with fewer patients than this is flagged as sparse.
SPARSE_MIN_N = 5
#: Events per parameter below this gives a "low_epv" caveat (Peduzzi et al. 1995).
EPV_MIN = 10


# ----------------------------------------------------------------------------- errors, warnings
class CoxModelError(ValueError):
    """A Cox model that cannot be specified as asked (the message says why and what to do)."""


class ConstantCovariateError(CoxModelError):
    """A covariate takes a single value among the analysed patients."""


class CollinearCovariatesError(CoxModelError):
    """The model matrix is rank deficient: a column is a linear combination of others."""


class CoxWarning(UserWarning):
    """Base class of the statistical caveats (each also kept as a Caveat on the result)."""


class SparseLevelWarning(CoxWarning):
    """A factor level with very few patients or no events: unstable HR."""


class SeparationWarning(CoxWarning):
    """Monotone likelihood (complete separation): the ML hazard ratio is infinite or zero."""


class LowEventsPerVariableWarning(CoxWarning):
    """Fewer than EPV_MIN events per estimated parameter."""


class ProportionalHazardsWarning(CoxWarning):
    """The scaled Schoenfeld residual test rejects proportional hazards (P < 0.05)."""


class ImmortalTimeWarning(CoxWarning):
    """A covariate measured after time zero is used as a baseline covariate."""


_WARNING_OF = {"sparse_level": SparseLevelWarning, "monotone_likelihood": SeparationWarning,
               "low_epv": LowEventsPerVariableWarning, "ph_violation": ProportionalHazardsWarning,
               "immortal_time": ImmortalTimeWarning}


def _caveat(caveats: list, kind: str, **data) -> Caveat:
    """Record a caveat and raise it as a warning of its class (message: kind and data, no prose)."""
    caveat = Caveat(kind, data)
    caveats.append(caveat)
    warnings.warn(f"{kind}: {data}", _WARNING_OF.get(kind, CoxWarning), stacklevel=3)
    return caveat


# ----------------------------------------------------------------------------- the study's vocabulary
class _PlainDictionary:
    """Stand-in for ``study.dictionary`` when a study carries none (labels are the column names)."""

    covariates: dict = {}
    groupings: dict = {}
    exposures: dict = {}

    def label(self, name):
        return name

    def level_label(self, name, code):
        return str(code)

    def references(self):
        return {}

    def baseline(self, grouped=True):
        return []

    def post_baseline(self):
        return []


def dictionary_of(study) -> object:
    """The study's typed dictionary (``study.dictionary``), or a plain stand-in."""
    d = getattr(study, "dictionary", None)
    return d if d is not None and hasattr(d, "label") else _PlainDictionary()


def exposure_columns(dictionary) -> dict[str, str]:
    """{agent class in the cycles table: exposure count column} from the dictionary's exposures."""
    return {str(e.agent_class): name for name, e in getattr(dictionary, "exposures", {}).items()}


def post_baseline_variables(dictionary) -> list[str]:
    """Variables known only after time zero (dictionary timing ``post-baseline`` and every exposure)."""
    try:
        return list(dictionary.post_baseline())
    except AttributeError:
        return list(getattr(dictionary, "exposures", {}))


# ----------------------------------------------------------------------------- covariate coding
def code_cycles(patients: pd.DataFrame, coding: str = "per_cycle", cutpoints: dict | None = None,
                columns: list[str] | None = None, default_cutpoint: float = 4) -> pd.DataFrame:
    """Code the exposure counts ``columns`` for the Cox models.

    Parameters
    ----------
    coding : "per_cycle" keeps the counts (HR per additional cycle, linear on the log-hazard scale);
        "categories" replaces each count by a two-level factor "< c" (reference) / ">= c".
    cutpoints : {column: c}; ``default_cutpoint`` (4) for the others.
    columns : the exposure count columns (default: every key of ``cutpoints``).

    Returns
    -------
    A copy of ``patients``; column names are unchanged, so candidate lists do not depend on coding.
    """
    if coding not in ("per_cycle", "categories"):
        raise ValueError(f"exposure coding must be 'per_cycle' or 'categories', got {coding!r}")
    out = patients.copy()
    if coding == "categories":
        cuts = {c: default_cutpoint for c in (columns or [])}
        cuts.update(cutpoints or {})
        for column, cut in cuts.items():
            if column in out:
                levels = [f"< {cut:g}", f">= {cut:g}"]
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


# ----------------------------------------------------------------------------- the plan applied to a study
@dataclass
class PrognosticData:
    """The patient table coded for the Cox models, with the choices that apply.

    ``patients``: reference levels set, levels merged, exposure counts coded; ``cohort``: the same
    without the exposure coding (the landmark and time-varying models count exposures themselves).
    """

    patients: pd.DataFrame
    cohort: pd.DataFrame
    candidates: list
    endpoints: list
    references: dict
    choices: dict
    dictionary: object
    cycles: pd.DataFrame | None = None
    exposures: dict = field(default_factory=dict)      # agent class -> count column
    post_baseline: list = field(default_factory=list)
    published_model: list | None = None
    arm_only: dict = field(default_factory=dict)        # exposure column -> arms that receive it
    post_baseline_covariates: list = field(default_factory=list)   # timing unrecorded: landmark/TV only

    @property
    def has_exposure(self) -> bool:
        return self.cycles is not None and any(c in self.patients for c in self.exposures.values())


def prepare(study, choices: dict | None = None) -> PrognosticData:
    """Apply the ``prognostic`` block of the analysis plan to ``study``.

    Candidates default to the dictionary's baseline variables (groupings replace their source) and the
    arm; reference levels are the dictionary's (the arm's: the study's reference arm), overridden by
    ``choices["reference_levels"]`` after ``merged_levels``. PFS is an endpoint only when the study has
    progression dates; the published model only with a replication part; exposure analyses only with
    a cycles table.
    """
    plan = {**DEFAULT_CHOICES, **(choices or {})}
    dictionary = dictionary_of(study)
    patients = study.patients
    candidates = plan["candidates"]
    if not candidates:
        candidates = ["arm", *[v for v in dictionary.baseline() if v in patients.columns]]
    post = post_baseline_variables(dictionary)
    # post-baseline variables never enter the headline model: only the landmark and time-dependent
    # analyses (see compare_immortal_time), however the plan lists them
    candidates = [c for c in dict.fromkeys(candidates) if c in patients.columns and c not in post]
    has = getattr(study, "has", lambda part: part != "replication")
    endpoints = [e for e in plan["endpoints"] if e == "os" or (e == "pfs" and has("pfs")
                                                               and "pfs_months" in patients)]
    references = {}
    config = getattr(study, "config", None)
    if config is not None and getattr(config, "reference_arm", None) is not None:
        references["arm"] = config.reference_arm
    try:
        references.update({v: r for v, r in dictionary.references().items() if v in patients.columns})
    except AttributeError:
        pass
    for var, groups in (plan["merged_levels"] or {}).items():   # a reference merged away: its new level
        for new_level, olds in groups.items():
            if references.get(var) in olds:
                references[var] = new_level
    references.update(plan["reference_levels"] or {})
    references = {v: r for v, r in references.items() if v in patients.columns}
    cohort = set_reference_levels(patients, references, plan["merged_levels"])
    exposures = {a: c for a, c in exposure_columns(dictionary).items() if c in patients.columns}
    coded = code_cycles(cohort, plan["exposure_coding"], plan["exposure_cutpoints"],
                        list(exposures.values()), plan["exposure_cutpoint"])
    cycles = getattr(study, "cycles", None) if has("exposure") else None
    published = plan["published_model"] if has("replication") else None
    if published:
        published = [v for v in published if v in coded.columns]
    arm_only = {name: list(e.arms) for name, e in getattr(dictionary, "exposures", {}).items()
                if getattr(e, "arms", None)}
    post_covariates = plan.get("post_baseline_covariates")
    if post_covariates is None:   # post-baseline covariates recorded for every patient (not exposures)
        post_covariates = [v for v in post if v in patients.columns and v not in exposures.values()
                           and v not in getattr(dictionary, "exposures", {}) and patients[v].notna().all()]
    return PrognosticData(coded, cohort, candidates, endpoints, references, plan, dictionary, cycles,
                          exposures, [v for v in post if v in patients.columns],
                          published or None, arm_only,
                          [v for v in post_covariates if v in patients.columns])


# ----------------------------------------------------------------------------- model matrix
@dataclass
class CoxDesign:
    """Complete-case model matrix of one Cox model.

    ``X`` holds one column per estimated coefficient, named ``variable[level]`` for dummy columns
    and ``variable`` for numeric covariates; ``terms`` maps each variable to its columns;
    ``levels`` has one row per level (reference included) with n and events; ``caveats`` lists the
    sparse levels.
    """

    X: pd.DataFrame
    time: np.ndarray
    event: np.ndarray
    terms: dict
    levels: pd.DataFrame
    endpoint: str
    n_excluded: int
    patient_id: pd.Series | None = None
    caveats: list = field(default_factory=list)

    @property
    def n(self) -> int:
        return int(len(self.time))

    @property
    def events(self) -> int:
        return int(self.event.sum())


def _collinear_columns(X: pd.DataFrame) -> tuple[str, list[str]] | None:
    """First column that is a linear combination of the intercept and earlier columns (one QR of [1, X])."""
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

    Numeric covariates enter linearly (level "per unit"); a factor gets one column per non-reference
    level present. A level with fewer than ``sparse_min_n`` patients or without events gives a
    ``sparse_level`` caveat.

    Raises
    ------
    ConstantCovariateError, CollinearCovariatesError, KeyError (unknown column).
    """
    if endpoint not in ENDPOINTS:
        raise KeyError(f"endpoint must be one of {list(ENDPOINTS)}, got {endpoint!r}")
    time_col, event_col = ENDPOINTS[endpoint]
    missing_cols = [c for c in [time_col, event_col, *covariates] if c not in patients.columns]
    if missing_cols:
        raise KeyError(f"columns not in the patient table: {missing_cols}")
    data = patients[[time_col, event_col, *covariates]]
    complete = data.notna().all(axis=1)
    data = data[complete]
    caveats: list = []
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
            reference = present[0]
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
                    _caveat(caveats, "sparse_level", variable=var, level=str(lev), n=n_lev, events=ev_lev,
                            endpoint=endpoint)
        else:
            x = s.to_numpy(dtype=float)
            columns[var] = x
            terms[var] = [var]
            level_rows.append({"variable": var, "level": "per unit", "column": var, "reference": False,
                               "n": int(len(x)), "events": int(data[event_col].sum())})
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
                     n_excluded=int((~complete).sum()), patient_id=pid, caveats=caveats)


# ----------------------------------------------------------------------------- fitting
@dataclass
class ModelFit:
    """A Cox model fitted to a :class:`CoxDesign` (coefficients by column name)."""

    design: CoxDesign
    engine: CoxFit
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

    @property
    def estimable(self) -> bool:
        return self.engine.estimable

    def lifelines_fitter(self):
        """The same model fitted by lifelines ``CoxPHFitter`` (for cross-checks; not used here)."""
        from lifelines import CoxPHFitter
        frame = self.design.X.copy()
        frame["_time"], frame["_event"] = self.design.time, self.design.event
        return CoxPHFitter().fit(frame, "_time", "_event",
                                 fit_options={"precision": 1e-12, "r_precision": 1e-14, "step_size": 0.95,
                                              "max_steps": 200})


def fit_model(design: CoxDesign, concordance: bool = True, start: pd.Series | None = None) -> ModelFit:
    """Fit ``coxph(Surv(time, event) ~ X, ties = "efron")`` with :func:`helpers.stats.cox.fit_coxph`.

    Monotone likelihood (complete separation, e.g. no events in a level) is detected before and after
    fitting (|coef| > SEPARATION_COEF): the columns are listed in ``separated`` and a
    ``monotone_likelihood`` caveat is added to ``design.caveats`` (their HRs are reported as not
    estimable, never as huge numbers). ``concordance=False`` skips Harrell's C (NaN). ``start``:
    coefficients (by column name) to start Newton-Raphson from (a warm start; same maximum).
    """
    X = design.X
    init = None
    if start is not None and list(start.index) == list(X.columns) and np.all(np.isfinite(start)):
        init = start.to_numpy(dtype=float)
    fit = fit_coxph(design.time, design.event, X, init=init)
    coef = pd.Series(fit.coef, index=X.columns)
    separated = list(fit.separated)
    if separated:
        _caveat(design.caveats, "monotone_likelihood", terms=separated, endpoint=design.endpoint)
    for c in fit.caveats:
        if c.kind != "monotone_likelihood":
            design.caveats.append(c)
    cov = pd.DataFrame(fit.cov, index=X.columns, columns=X.columns)
    se = pd.Series(fit.se, index=X.columns)
    c_index = np.nan
    if concordance and fit.estimable and design.events > 0:
        c_index = harrell_c(design.time, design.event, X.to_numpy(dtype=float) @ fit.coef)
    return ModelFit(design, fit, coef, se, cov, float(fit.loglik), float(fit.loglik_null), c_index, separated)


def _lr_test(full: ModelFit, without: list[str]) -> tuple[float, int, float]:
    """LR test dropping ``without`` columns, refitted on the same patients (``anova(f0, f1)``)."""
    keep = [c for c in full.design.X.columns if c not in without]
    if not keep:
        chisq = full.lr_chisq
    else:
        # warm start at the full model's coefficients: the same maximum in fewer iterations
        X = full.design.X[keep].to_numpy(dtype=float)
        sub = fit_coxph(full.design.time, full.design.event, X, init=full.coef[keep].to_numpy())
        if not sub.converged:   # e.g. monotone likelihood in the smaller model: refit from 0
            sub = fit_coxph(full.design.time, full.design.event, X)
        chisq = 2 * (full.loglik - sub.loglik)
    df = len(without)
    return float(chisq), df, float(stats.chi2.sf(max(chisq, 0.0), df))


def _drop_one(fit: ModelFit, variable: str) -> tuple[float, int, float]:
    """LR test of ``variable`` in ``fit`` (a task of :func:`helpers.parallel.map_tasks`)."""
    return _lr_test(fit, fit.design.terms[variable])


def _rows_for(fit: ModelFit, variables: list[str], lr: bool = True, workers: int = 1) -> list[dict]:
    """One row per level (reference included) of ``variables`` from a fitted model; the drop-one LR
    refits in ``workers`` processes for a large cohort (:data:`helpers.parallel.POOL_MIN_PATIENTS`)."""
    z = stats.norm.ppf(0.975)
    rows = []
    levels = fit.design.levels
    tests = {}
    if lr:
        pool = workers if fit.design.n >= POOL_MIN_PATIENTS and len(variables) > 1 else 1
        tests = dict(zip(variables, map_tasks(_drop_one, variables, fit, pool)))
    for var in variables:
        cols = fit.design.terms[var]
        p_lr = df = p_joint = np.nan
        if lr:
            _, df, p_lr = tests[var]
        b = fit.coef[cols].to_numpy()
        V = fit.cov.loc[cols, cols].to_numpy()
        try:
            p_joint = float(stats.chi2.sf(b @ np.linalg.solve(V, b), len(cols)))
        except np.linalg.LinAlgError:
            p_joint = np.nan
        for _, lev in levels[levels["variable"] == var].iterrows():
            row = {"endpoint": fit.design.endpoint, "variable": var, "level": lev["level"],
                   "reference": bool(lev["reference"]), "n": lev["n"], "events": lev["events"],
                   "coef": np.nan, "se": np.nan, "hr": np.nan, "lower": np.nan, "upper": np.nan,
                   "p": np.nan, "df": df, "p_lr": p_lr, "p_wald_joint": p_joint, "note": ""}
            if lev["reference"]:
                row["hr"], row["note"] = 1.0, "reference"
            else:
                col = lev["column"]
                if col in fit.separated or not fit.estimable:
                    row["note"] = "monotone_likelihood" if col in fit.separated \
                        else "non_convergence"
                    row["coef"] = fit.coef[col]
                else:
                    bb, ss = fit.coef[col], fit.se[col]
                    row.update(coef=bb, se=ss, hr=np.exp(bb), lower=np.exp(bb - z * ss),
                               upper=np.exp(bb + z * ss), p=2 * stats.norm.sf(abs(bb / ss)))
            rows.append(row)
    return rows


# ----------------------------------------------------------------------------- univariable
@dataclass
class UnivariableResult:
    """Univariable Cox models, one per candidate, each on its own complete cases.

    ``table``: one row per level (reference rows with hr = 1): endpoint, variable, level, reference,
    n, events (in the level), coef, se, hr, lower, upper (Wald 95% CI), p (Wald z, per level), df,
    p_lr (LR test of the variable vs the null model, ``anova(coxph(Surv ~ x))``), p_wald_joint,
    n_model, events_model, n_missing, note. ``not_estimable``: {variable: NotEstimable}.
    """

    endpoint: str
    table: pd.DataFrame
    caveats: list = field(default_factory=list)
    not_estimable: dict = field(default_factory=dict)
    method: str = "efron; wald ci; lr per variable"

    @property
    def variables(self) -> list:
        return list(dict.fromkeys(self.table["variable"])) if not self.table.empty else []


UNIVARIABLE_COLUMNS = ["endpoint", "variable", "level", "reference", "n", "events", "coef", "se", "hr",
                       "lower", "upper", "p", "df", "p_lr", "p_wald_joint", "note", "n_model",
                       "events_model", "n_missing"]


def fit_univariable(patients: pd.DataFrame, endpoint: str, covariates: list[str],
                    sparse_min_n: int = SPARSE_MIN_N) -> UnivariableResult:
    """Univariable Cox models, one per covariate (R ``coxph(Surv ~ x)`` each), on complete cases.

    A covariate that is constant among its complete cases, or whose model has no events, is
    reported in ``not_estimable`` instead of stopping the others.
    """
    rows, caveats, failed = [], [], {}
    for var in covariates:
        try:
            design = build_design(patients, endpoint, [var], sparse_min_n)
        except ConstantCovariateError:
            failed[var] = NotEstimable(var, "constant_covariate")
            continue
        if design.events == 0:
            failed[var] = NotEstimable(var, "no_events")
            continue
        fit = fit_model(design, concordance=False)     # a one-variable model's C is not reported
        caveats += design.caveats
        for row in _rows_for(fit, [var]):
            row.update(n_model=design.n, events_model=design.events, n_missing=design.n_excluded)
            rows.append(row)
    return UnivariableResult(endpoint, pd.DataFrame(rows, columns=UNIVARIABLE_COLUMNS), caveats, failed)


def select_covariates(univariable: UnivariableResult | pd.DataFrame, entry_p: float = 0.05,
                      entry_test: str = "lr") -> list[str]:
    """Variables whose univariable P is below ``entry_p``.

    ``entry_test``: "lr" (likelihood-ratio P of the whole variable, default) or "wald" (Wald P;
    joint Wald for multi-level factors). One decision per variable: a factor enters with all levels.
    """
    table = univariable.table if isinstance(univariable, UnivariableResult) else univariable
    column = {"lr": "p_lr", "wald": "p_wald_joint"}[entry_test]
    per_var = table.groupby("variable", sort=False)[column].first()
    return [v for v, p in per_var.items() if pd.notna(p) and p < entry_p]


# ----------------------------------------------------------------------------- multivariable
@dataclass
class MultivariableResult:
    """A multivariable Cox model with its selection rule and diagnostics.

    ``lr_test``: {chisq, df, p, method} against the null model; ``test``: the same as a TestResult.
    """

    table: pd.DataFrame
    fit: ModelFit
    selected: list
    entry_p: float | None
    entry_test: str
    lr_test: dict
    concordance: float
    n: int
    events: int
    n_params: int
    epv: float
    n_missing: int
    caveats: list = field(default_factory=list)

    @property
    def endpoint(self) -> str:
        return self.fit.design.endpoint

    @property
    def test(self) -> TestResult:
        return TestResult(self.lr_test["chisq"], self.lr_test["df"], self.lr_test["p"], "lr")


def fit_multivariable(patients: pd.DataFrame, endpoint: str, covariates: list[str],
                      univariable: UnivariableResult | None = None, entry_p: float | None = 0.05,
                      entry_test: str = "lr", forced: tuple = (), post_baseline: list | tuple = (),
                      epv_min: float = EPV_MIN, sparse_min_n: int = SPARSE_MIN_N, workers: int = 1
                      ) -> MultivariableResult | NotEstimable:
    """Multivariable Cox model built by the univariable-screening rule.

    Parameters
    ----------
    covariates : candidate variables.
    univariable : :func:`fit_univariable` result (computed when None).
    entry_p : variables with univariable P < entry_p enter (default 0.05); ``None`` enters all.
    forced : variables entered regardless of P.
    post_baseline : variables known only after time zero: an ``immortal_time`` caveat when selected.
    workers : processes for the drop-one LR refits of a large cohort (the result does not depend on it).

    Returns
    -------
    MultivariableResult: per-level table (Wald P per level, LR P per variable dropping it from the
    full model, ``drop1(fit, test = "Chisq")``), global LR test, concordance, complete-case n and
    events, events per parameter; or NotEstimable ("no_variable_selected", "no_events",
    "constant_covariate", "collinear_covariates": a selected variable is constant, or a linear combination
    of others, among the complete cases).
    """
    if entry_p is None:
        selected = list(covariates)
    else:
        if univariable is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", CoxWarning)
                univariable = fit_univariable(patients, endpoint, covariates, sparse_min_n)
        table = univariable.table if isinstance(univariable, UnivariableResult) else univariable
        selected = select_covariates(table[table["variable"].isin(covariates)], entry_p, entry_test)
    selected = list(dict.fromkeys([*selected, *forced]))
    if not selected:
        return NotEstimable("multivariable_model", "no_variable_selected")
    try:
        design = build_design(patients, endpoint, selected, sparse_min_n)
    except ConstantCovariateError:
        return NotEstimable("multivariable_model", "constant_covariate")
    except CollinearCovariatesError:
        return NotEstimable("multivariable_model", "collinear_covariates")
    if design.events == 0:
        return NotEstimable("multivariable_model", "no_events")
    fit = fit_model(design)
    caveats = list(design.caveats)
    table = pd.DataFrame(_rows_for(fit, selected, workers=workers))
    n_params = design.X.shape[1]
    epv = design.events / n_params
    if epv < epv_min:
        _caveat(caveats, "low_epv", events=design.events, parameters=n_params, epv=epv, threshold=epv_min,
                endpoint=endpoint)
    post = [v for v in selected if v in post_baseline]
    if post:
        _caveat(caveats, "immortal_time", variables=post, endpoint=endpoint)
    chisq = fit.lr_chisq
    lr = {"chisq": chisq, "df": n_params, "p": float(stats.chi2.sf(chisq, n_params)),
          "method": "likelihood-ratio test against the null model"}
    return MultivariableResult(table, fit, selected, entry_p, entry_test, lr, fit.concordance,
                               design.n, design.events, n_params, epv, design.n_excluded, caveats)


# ----------------------------------------------------------------------------- proportional hazards
@dataclass
class PHTest:
    """Scaled Schoenfeld residual tests (``cox.zph(fit, transform = "km")``) of a model.

    ``table``: term, df, chisq, p (exact score test, survival >= 3.0), chisq_gt, p_gt (Grambsch-Therneau
    approximation, survival 2.x / lifelines); last row "GLOBAL". ``violated``: terms with P < alpha.
    """

    table: pd.DataFrame
    fit: ModelFit
    alpha: float = 0.05
    caveats: list = field(default_factory=list)

    @property
    def violated(self) -> list:
        t = self.table
        return [r for r, p in zip(t["term"], t["p"]) if r != "GLOBAL" and p < self.alpha]

    @property
    def global_p(self) -> float:
        return float(self.table.loc[self.table["term"] == "GLOBAL", "p"].iloc[0])

    def residuals(self) -> pd.DataFrame:
        """Scaled Schoenfeld residuals: column ``time`` (months) and one per coefficient."""
        return scaled_schoenfeld(self.fit.engine)

    def __getitem__(self, key):          # table-like access for older callers
        return self.table[key]


def check_proportional_hazards(fit: ModelFit | MultivariableResult, alpha: float = 0.05) -> PHTest | NotEstimable:
    """PH tests per variable (factors jointly) and global; ``ph_violation`` caveats for P < ``alpha``."""
    if isinstance(fit, NotEstimable):
        return fit
    model = fit.fit if isinstance(fit, MultivariableResult) else fit
    if not model.estimable:
        return NotEstimable("ph_test", "non_convergence")
    if model.separated:   # an infinite coefficient: its residuals say nothing about proportionality
        return NotEstimable("ph_test", "separation")
    table = proportional_hazards_test(model.engine, model.design.terms)
    caveats = []
    for _, row in table.iterrows():
        if row["p"] < alpha:
            _caveat(caveats, "ph_violation", term=row["term"], chisq=float(row["chisq"]), df=int(row["df"]),
                    p=float(row["p"]))
    if isinstance(fit, MultivariableResult):
        fit.caveats.extend(caveats)
    return PHTest(table, model, alpha, caveats)


def schoenfeld_residuals(fit: ModelFit | MultivariableResult) -> pd.DataFrame:
    """Scaled Schoenfeld residuals (R ``cox.zph(fit)$y``): column time (months) + one per coefficient."""
    model = fit.fit if isinstance(fit, MultivariableResult) else fit
    return scaled_schoenfeld(model.engine)


@dataclass
class PHRemedy:
    """The model refitted allowing non-proportional hazards for the terms that failed the PH test.

    ``strata``: categorical terms moved to the strata; ``time_terms``: numeric terms with an x log(t)
    interaction; ``exact``: log(t) at every event time (else on ``n_cuts`` event-time quantiles);
    ``table``: term, coef, se, hr, lower, upper, p (Wald) of the remaining coefficients (may be empty
    when every term went to the strata).
    """

    table: pd.DataFrame
    strata: list
    time_terms: list
    exact: bool = True
    n_cuts: int | None = None
    max_rows: int = TT_MAX_ROWS
    n: int = 0
    events: int = 0
    caveats: list = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.strata and not self.time_terms


REMEDY_COLUMNS = ["term", "coef", "se", "hr", "lower", "upper", "p"]


def fit_ph_remedy(result: MultivariableResult, patients: pd.DataFrame, terms: list[str] | None = None,
                  max_rows: int = TT_MAX_ROWS) -> PHRemedy | NotEstimable:
    """Refit the model allowing non-proportional hazards for ``terms`` (default: PH P < 0.05).

    A categorical (or 0/1) term is moved to the strata (``coxph(... + strata(x))``); a numeric term
    gets a time interaction x log(t) (``coxph(... + tt(x), tt = function(x, t, ...) x * log(t))``)
    by episode splitting at every event time, which is exact; when the split data would exceed
    ``max_rows`` rows, x log(t) is evaluated on a grid of event-time quantiles (``exact`` False).
    Fitted by :func:`helpers.stats.cox.fit_coxph` on counting-process data with strata. With every
    failing term in the strata and nothing else in the model, only the strata remain (empty table).
    """
    if isinstance(result, NotEstimable):
        return result
    design = result.fit.design
    if terms is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CoxWarning)
            ph = check_proportional_hazards(result.fit)
        terms = ph.violated if is_estimable(ph) else []
    if not terms:
        return PHRemedy(pd.DataFrame(columns=REMEDY_COLUMNS), [], [], n=design.n, events=design.events)
    strata = [t for t in terms if t not in design.X.columns or len(design.terms[t]) > 1
              or set(np.unique(design.X[design.terms[t][0]])) <= {0.0, 1.0}]
    numeric = [t for t in terms if t not in strata]
    base = design.X.drop(columns=[c for t in strata for c in design.terms[t]])
    time = np.asarray(design.time, dtype=float)
    event = np.asarray(design.event, dtype=int)
    stratum = (patients.loc[design.X.index, strata].astype(str).agg("\x1f".join, axis=1).to_numpy()
               if strata else None)
    exact, cuts = True, None
    if numeric:
        cuts, exact = tt_cut_times(time, event, max_rows)
        subject, start, stop, row_event = split_at_cuts(time, event, cuts)
    else:
        subject, start, stop, row_event = np.arange(len(time)), None, time, event
    X = base.to_numpy(dtype=float)[subject]
    names = list(base.columns)
    if numeric:
        # log t at the cut that ends the row's interval: the same value for everyone at risk at an
        # event time (with every event time a cut, this is log of the event time itself)
        log_t = np.log(cuts[np.minimum(np.searchsorted(cuts, stop, side="left"), len(cuts) - 1)])
        X = np.column_stack([X] + [design.X[t].to_numpy(dtype=float)[subject] * log_t for t in numeric])
        names += [f"{t}:log(t)" for t in numeric]
    caveats: list = []
    fit = fit_coxph(stop, row_event, X, entry=start if numeric else None,
                    strata=None if stratum is None else stratum[subject], names=names)
    if not fit.estimable:
        return NotEstimable("ph_remedy", "non_convergence")
    if fit.separated:
        _caveat(caveats, "monotone_likelihood", terms=list(fit.separated), endpoint=design.endpoint)
    table = fit.wald()[REMEDY_COLUMNS] if names else pd.DataFrame(columns=REMEDY_COLUMNS)
    return PHRemedy(table, strata, numeric, exact, None if cuts is None else len(cuts), max_rows,
                    design.n, design.events, caveats)


# ----------------------------------------------------------------------------- exposures and immortal time
def count_cycles_until(patients: pd.DataFrame, cycles: pd.DataFrame, months: float,
                       exposures: dict[str, str]) -> pd.DataFrame:
    """Copy of ``patients`` with each exposure column counted over cycle_month <= ``months``.

    ``exposures``: {agent class of the cycles table: count column}.
    """
    out = patients.copy()
    early = (cycles["cycle_month"] <= months).to_numpy()
    group = _exposure_codes(cycles["agent_class"], exposures)
    ids = cycles["patient_id"].to_numpy()
    for g, column in enumerate(exposures.values()):
        counts = pd.Series(ids[early & (group == g)]).value_counts()
        out[column] = out["patient_id"].map(counts).fillna(0).astype(int)
    return out


def _exposure_codes(agent: pd.Series, exposures: dict[str, str]) -> np.ndarray:
    """Per cycle: the position of its agent class among the keys of ``exposures`` (-1: another agent
    or none), from :func:`helpers.data.load.agent_codes` (no string per cycle)."""
    codes, names = agent_codes(agent)
    exposure_of = np.full(len(names), -1)
    for g, agent_name in enumerate(exposures):
        exposure_of[[i for i, name in enumerate(names) if name == agent_name]] = g
    return exposure_of[codes]


def fit_landmark(patients: pd.DataFrame, cycles: pd.DataFrame, endpoint: str, covariates: list[str],
                 exposures: dict[str, str], landmark: float = 3.0, cycles_coding: str = "per_cycle",
                 cutpoints: dict | None = None, concordance: bool = True) -> ModelFit:
    """Landmark Cox model at ``landmark`` months.

    At risk at the landmark: endpoint time > landmark. Exposures counted with cycle_month <= landmark;
    time is measured from the landmark (R ``coxph(Surv(time - L, event) ~ ..., subset = time > L)``).
    ``concordance=False`` skips Harrell's C (NaN), as :func:`fit_model`.
    """
    time_col, _ = ENDPOINTS[endpoint]
    at_risk = patients[patients[time_col] > landmark]
    data = count_cycles_until(at_risk, cycles, landmark, exposures)
    data = code_cycles(data, cycles_coding, cutpoints, list(exposures.values()))
    data[time_col] = data[time_col] - landmark
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CoxWarning)
        return fit_model(build_design(data, endpoint, covariates), concordance=concordance)


def build_cycles_long(patients: pd.DataFrame, cycles: pd.DataFrame, endpoint: str, covariates: list[str],
                      exposures: dict[str, str], cycles_coding: str = "per_cycle",
                      cutpoints: dict | None = None) -> pd.DataFrame:
    """Counting-process data: one row per patient and interval (start, stop] in months.

    Intervals break at each cycle date before the end of follow-up; on (start, stop] the cumulative
    counts include every cycle given at or before ``start``. Baseline covariates (those not among the
    exposure columns) are dummy-coded as in the Cox models. Columns: id, start, stop, event, the
    exposure columns among ``covariates``, then the baseline model-matrix columns. O(rows log rows).
    """
    columns, cyc_vars, base_names, base, row = _cycles_long_columns(patients, cycles, endpoint, covariates,
                                                                    exposures, cycles_coding, cutpoints)
    base_rows = base[row]
    # one frame built at once, in its final column order (a column at a time copies a registry's
    # million intervals again for every column)
    frame = {k: columns[k] for k in ("id", "start", "stop", "event", *cyc_vars)}
    frame.update({column: base_rows[:, j] for j, column in enumerate(base_names)})
    return pd.DataFrame(frame)


def _cycles_long_columns(patients, cycles, endpoint, covariates, exposures, cycles_coding, cutpoints):
    """The pieces of :func:`build_cycles_long`: ({id, start, stop, event and exposure column: array per
    interval}, exposure columns among ``covariates``, baseline model-matrix column names, baseline
    model matrix per patient (patients x columns), the patient (row of that matrix) of each interval)."""
    time_col, event_col = ENDPOINTS[endpoint]
    exposure_cols = list(exposures.values())
    baseline = [c for c in covariates if c not in exposure_cols]
    cyc_vars = [c for c in covariates if c in exposure_cols]
    if baseline:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CoxWarning)
            base = build_design(patients, endpoint, baseline).X
    else:
        base = pd.DataFrame(index=patients.index[patients[[time_col, event_col]].notna().all(axis=1)])
    pids = patients.loc[base.index, "patient_id"].to_numpy()
    T_all = patients.loc[base.index, time_col].to_numpy(float)
    E_all = patients.loc[base.index, event_col].to_numpy(int)
    n = len(pids)
    row_of = pd.Series(np.arange(n), index=pd.Index(pids))
    k_cyc = pd.Series(cycles["patient_id"].to_numpy()).map(row_of).to_numpy()
    known = ~pd.isna(k_cyc)
    k_cyc = k_cyc[known].astype(np.int64)
    month = cycles["cycle_month"].to_numpy(float)[known]
    group = _exposure_codes(cycles["agent_class"], exposures)[known]
    # cycles given at or before each start, per exposure
    cut_k, start, stop, row_event, counts = counting_process_intervals(T_all, E_all, k_cyc, month, group,
                                                                       len(exposures))
    ids = pd.Categorical.from_codes(cut_k, pd.Index(pids).astype(str)) if pd.Index(pids).is_unique \
        else pids[cut_k]          # one code per interval, not a string object per row
    columns = {"id": ids, "start": start, "stop": stop, "event": row_event}
    for g, column in enumerate(exposures.values()):
        columns[column] = counts[:, g]
    if cycles_coding == "categories":
        coded = code_cycles(pd.DataFrame({c: columns[c] for c in exposure_cols if c in columns}), "categories",
                            cutpoints, exposure_cols)
        for c in exposure_cols:
            levels = coded[c].cat.categories
            columns[c] = (coded[c] == levels[1]).to_numpy(dtype=float)
    return columns, cyc_vars, list(base.columns), base.to_numpy(dtype=float), cut_k


def fit_time_varying(patients: pd.DataFrame, cycles: pd.DataFrame, endpoint: str, covariates: list[str],
                     exposures: dict[str, str], cycles_coding: str = "per_cycle",
                     start: pd.Series | None = None, cutpoints: dict | None = None) -> pd.DataFrame:
    """Time-varying Cox model with cumulative exposure counts, Efron ties.

    R ``coxph(Surv(start, stop, event) ~ ..., ties = "efron")`` via :func:`fit_coxph` with ``entry``.
    Returns one row per coefficient: term, coef, se, hr, lower, upper (Wald 95% CI), p (Wald), note
    (note ``"monotone_likelihood"`` with NaN HR, CI and P, and a ``monotone_likelihood``
    caveat in ``attrs["caveats"]``); ``attrs``: n (patients), events, intervals, loglik.
    """
    # the columns of build_cycles_long's frame, without the frame (a registry's million intervals
    # would be copied into it and out again)
    columns, cyc_vars, base_names, base, row = _cycles_long_columns(patients, cycles, endpoint, covariates,
                                                                    exposures, cycles_coding, cutpoints)
    terms = [*cyc_vars, *base_names]
    per_patient = np.zeros((len(base), len(terms)))           # the model matrix's rows, gathered at once
    per_patient[:, len(cyc_vars):] = base
    X = np.take(per_patient, row, axis=0)
    for j, column in enumerate(cyc_vars):
        X[:, j] = columns[column]
    stop, entry, event = columns["stop"], columns["start"], columns["event"]
    initial = None
    if start is not None and set(terms) <= set(start.index) and np.all(np.isfinite(start[terms])):
        initial = start[terms].to_numpy(dtype=float)
    fit = fit_coxph(stop.astype(float), event.astype(int), X, entry=entry.astype(float), init=initial,
                    names=terms)
    caveats: list = []
    out = fit.wald()[["term", "coef", "se", "hr", "lower", "upper", "p"]].assign(note="")
    separated = [t for t, b in zip(terms, fit.coef) if abs(b) > SEPARATION_COEF]
    if not fit.estimable:
        out.loc[:, ["se", "hr", "lower", "upper", "p"]] = np.nan
        out["note"] = "non_convergence"
    elif separated:   # monotone likelihood: the HR is infinite or zero, never a huge number
        gone = out["term"].isin(separated)
        out.loc[gone, ["se", "hr", "lower", "upper", "p"]] = np.nan
        out.loc[gone, "note"] = "monotone_likelihood"
        _caveat(caveats, "monotone_likelihood", terms=separated, endpoint=endpoint, model="time_varying")
    out.attrs.update(n=int(pd.Series(columns["id"]).nunique()), events=int(event.sum()), intervals=int(len(X)),
                     loglik=float(fit.loglik), caveats=caveats)
    return out


@dataclass
class ImmortalTimeComparison:
    """HRs of the exposure counts three ways, each adjusted for the same other covariates.

    ``table``: approach ("baseline": counts over the whole treatment as baseline covariates, biased;
    "landmark"; "time_varying"), term, variable, hr, lower, upper, p, n, events. ``time_varying``: the
    whole time-varying model (every term).
    """

    table: pd.DataFrame
    time_varying: pd.DataFrame
    landmark_months: float
    coding: str
    caveats: list = field(default_factory=list)


def _term_rows(fit: ModelFit, terms, approach):
    z = stats.norm.ppf(0.975)
    rows = []
    for var in terms:
        for col in fit.design.terms.get(var, []):
            b, s = fit.coef[col], fit.se[col]
            est = col not in fit.separated and fit.estimable
            rows.append({"approach": approach, "term": col, "variable": var,
                         "hr": np.exp(b) if est else np.nan, "lower": np.exp(b - z * s) if est else np.nan,
                         "upper": np.exp(b + z * s) if est else np.nan,
                         "p": 2 * stats.norm.sf(abs(b / s)) if est else np.nan, "n": fit.design.n,
                         "events": fit.design.events})
    return rows


def exposure_populations(data: PrognosticData) -> list[tuple[tuple | None, list[str]]]:
    """The models of the landmark and time-dependent analyses: [(arms or None for every patient,
    exposure columns)].

    The arm and an exposure that is zero by design in one arm never share a model: an exposure given only
    in some arms (dictionary ``exposures.<name>.arms``) is analysed within those arms (without the arm
    term, constant there), next to the exposures given in every arm; the exposures given in every arm are
    analysed in all patients, adjusted for the arm.
    """
    columns = list(data.exposures.values())
    restricted = {c: tuple(str(a) for a in data.arm_only[c]) for c in columns if data.arm_only.get(c)}
    out = []
    everywhere = [c for c in columns if c not in restricted]
    if everywhere:
        out.append((None, everywhere))
    for arms in dict.fromkeys(restricted.values()):
        out.append((arms, [c for c in columns if c not in restricted or set(arms) <= set(restricted[c])]))
    return out


def _exposure_population_models(context, population):
    """Baseline, landmark and time-varying models of one population of :func:`compare_immortal_time`:
    (table rows, caveats, time-varying table), or None when a model cannot be fitted."""
    data, endpoint, covariates, exposure_cols, coding, cutpoints, landmark, post_covs = context
    arms, exposures = population
    cohort = data.cohort if arms is None else data.cohort[data.cohort["arm"].astype(str).isin(arms)]
    base = [c for c in covariates if c not in exposure_cols and c not in data.post_baseline]
    if arms is not None and len(arms) == 1:
        base = [c for c in base if c != "arm"]
    covs = [c for c in dict.fromkeys([*base, *post_covs, *exposures]) if cohort[c].dropna().nunique() > 1]
    shown = [c for c in [*exposures, *post_covs] if c in covs]
    agents = {a: c for a, c in data.exposures.items() if c in exposures}
    label = None if arms is None else list(arms)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CoxWarning)
            # the comparison reports hazard ratios only: no Harrell's C (two O(n log^2 n) counts)
            baseline = fit_model(build_design(code_cycles(cohort, coding, cutpoints, exposure_cols),
                                              endpoint, covs), concordance=False)
            lm = fit_landmark(cohort, data.cycles, endpoint, covs, agents, landmark, coding, cutpoints,
                              concordance=False)
            tv = fit_time_varying(cohort, data.cycles, endpoint, covs, agents, coding,
                                  start=baseline.coef, cutpoints=cutpoints)
    except CoxModelError:
        return None
    rows = []
    for approach, fit in (("baseline", baseline), ("landmark", lm)):
        rows += [{**r, "population": label} for r in _term_rows(fit, shown, approach)]
    for var in shown:
        for _, r in tv[(tv["term"] == var) | tv["term"].str.startswith(f"{var}[")].iterrows():
            rows.append({"approach": "time_varying", "term": r["term"], "variable": var, "hr": r["hr"],
                         "lower": r["lower"], "upper": r["upper"], "p": r["p"], "n": tv.attrs["n"],
                         "events": tv.attrs["events"], "population": label})
    return rows, list(tv.attrs.get("caveats", [])), tv.assign(population=[label] * len(tv))


def compare_immortal_time(data: PrognosticData, endpoint: str,
                          covariates: list[str]) -> ImmortalTimeComparison | NotEstimable | None:
    """The exposure counts as baseline covariates (biased), in a landmark model and as time-varying counts.

    None when the study has neither the optional exposure part nor post-baseline covariates (an absent
    part, not a failure: the notebook cell then has no output).

    Each model (see :func:`exposure_populations`) holds the exposures of its population, the baseline
    ``covariates`` (the headline model's variables; the arm only when the population has more than one
    arm) and the post-baseline covariates of unrecorded timing (``data.post_baseline_covariates``; these
    cannot be dated, so they enter as fixed covariates with an ``immortal_time`` caveat). ``table`` has one
    row per approach, population and exposure or post-baseline term (column ``population``: arm codes, or
    None for every patient).
    """
    if not data.has_exposure and not data.post_baseline_covariates:
        return None   # no optional exposure part and nothing known only after time zero: nothing to compare
    if not data.has_exposure:
        return NotEstimable("immortal_time_comparison", "no_exposure_data")
    exposure_cols = list(data.exposures.values())
    coding = data.choices["exposure_coding"]
    cutpoints = data.choices["exposure_cutpoints"]
    landmark = float(data.choices["landmark_months"])
    post_covs = [c for c in data.post_baseline_covariates if c in data.cohort]
    caveats: list = []
    rows: list = []
    tv_tables = []
    context = (data, endpoint, covariates, exposure_cols, coding, cutpoints, landmark, post_covs)
    # one population after the other: in a process pool the unequal populations gained nothing at 100,000
    # patients and the peak memory grew by 60% (the time-varying data of both at once)
    for population in exposure_populations(data):
        result = _exposure_population_models(context, population)
        if result is None:
            continue
        population_rows, population_caveats, tv = result
        rows += population_rows
        caveats += population_caveats
        tv_tables.append(tv)
    if not rows:
        return NotEstimable("immortal_time_comparison", "non_convergence")
    caveats.append(Caveat("immortal_time", {"variables": exposure_cols, "approach": "landmark_time_varying",
                                            "landmark_months": landmark, "endpoint": endpoint}))
    if post_covs:
        caveats.append(Caveat("immortal_time", {"variables": post_covs, "timing": "unrecorded",
                                                "endpoint": endpoint}))
    tv_all = pd.concat(tv_tables, ignore_index=True) if tv_tables else pd.DataFrame()
    return ImmortalTimeComparison(pd.DataFrame(rows), tv_all, landmark, coding, caveats)


# ----------------------------------------------------------------------------- sparse levels and Firth
def find_sparse_levels(patients: pd.DataFrame, endpoint: str, covariates: list[str],
                       min_n: int = SPARSE_MIN_N) -> pd.DataFrame:
    """Levels with fewer than ``min_n`` patients or with no events (variable, level, n, events)."""
    _, event_col = ENDPOINTS[endpoint]
    rows = []
    for var in covariates:
        s = patients[var]
        if not _is_categorical(s):
            continue
        for lev in (s.cat.categories if isinstance(s.dtype, pd.CategoricalDtype) else s.dropna().unique()):
            mask = (s == lev) & patients[event_col].notna()
            n, ev = int(mask.sum()), int(patients.loc[mask, event_col].sum())
            if 0 < n and (n < min_n or ev == 0):
                rows.append({"variable": var, "level": str(lev), "n": n, "events": ev})
    return pd.DataFrame(rows, columns=["variable", "level", "n", "events"])


def with_sparse_variables(result: MultivariableResult, patients: pd.DataFrame,
                          sparse: pd.DataFrame) -> MultivariableResult:
    """The model with the variables that have a sparse level added (``result`` itself if none is new)."""
    if isinstance(result, NotEstimable):
        return result
    extra = [v for v in dict.fromkeys(sparse["variable"]) if v not in result.selected]
    if not extra:
        return result
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CoxWarning)
        return fit_multivariable(patients, result.endpoint, [*result.selected, *extra], entry_p=None)


FIRTH_COLUMNS = ["term", "hr_ml", "lower_ml", "upper_ml", "p_ml", "hr_firth", "lower_firth", "upper_firth",
                 "p_firth", "ci_method"]


def fit_firth_sensitivity(result: MultivariableResult, profile_columns: list | None = None,
                          sparse_min_n: int = SPARSE_MIN_N) -> pd.DataFrame:
    """Firth-penalized refit of a multivariable model, next to the ML estimates.

    ``profile_columns``: model columns whose CIs are profile penalized-likelihood intervals with
    penalized LR P values (default: the sparse levels and any separated column); the others get Wald
    intervals at the Firth estimate (``ci_method``). Columns: FIRTH_COLUMNS. With no sparse level and
    no separated column the Firth model is not fitted (empty table). R: ``coxphf(pl = TRUE)`` (Efron
    ties here).
    """
    if isinstance(result, NotEstimable):
        return pd.DataFrame(columns=FIRTH_COLUMNS)
    design = result.fit.design
    if profile_columns is None:
        levels = design.levels
        sparse = levels[~levels["reference"] & ((levels["n"] < sparse_min_n) | (levels["events"] == 0))]
        profile_columns = list(sparse["column"])
    cols = list(dict.fromkeys([*profile_columns, *result.fit.separated]))
    if not cols:
        return pd.DataFrame(columns=FIRTH_COLUMNS)
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
    return pd.DataFrame(rows, columns=FIRTH_COLUMNS)


# ----------------------------------------------------------------------------- multiple imputation
def imputation_covariates(patients: pd.DataFrame, selected: list[str], candidates: list[str]) -> list[str]:
    """The multivariable variables plus every candidate with missing values (for the MI sensitivity)."""
    return list(dict.fromkeys([*selected, *[c for c in candidates if patients[c].isna().any()]]))


def fit_multiple_imputation(patients: pd.DataFrame, endpoint: str, covariates: list[str],
                            m: int = 20, seed: int = 0, workers: int = 1) -> pd.DataFrame:
    """Cox model for ``covariates`` on ``m`` imputed data sets, pooled by Rubin's rules.

    Imputation: :func:`helpers.stats.imputation.impute_chained` (chained equations, predictive mean
    matching, event indicator and Nelson-Aalen cumulative hazard in the imputation model). Returns one
    row per coefficient: term, hr, lower, upper, p, fmi (pooled) and hr_cc, lower_cc, upper_cc, p_cc
    (complete cases); ``attrs``: n_cc, events_cc, n_mi, events_mi, m, seed. The imputations are drawn in
    turn from one stream; the ``m`` Cox fits run in ``workers`` processes (the result does not depend on it).
    """
    time_col, event_col = ENDPOINTS[endpoint]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CoxWarning)
        cc = fit_model(build_design(patients, endpoint, covariates), concordance=False)   # HRs only
        imputed = impute_chained(patients, time_col, event_col, covariates, m=m, seed=seed)
        first = build_design(imputed[0], endpoint, covariates)
        filled = [c for c in covariates if patients[c].isna().any() and c in first.X.columns]
        context = (first, {c: [d.loc[first.X.index, c].to_numpy(dtype=float) for d in imputed] for c in filled},
                   cc.coef)
        fits = map_tasks(_imputed_fit, range(len(imputed)), context, workers)
    z = stats.norm.ppf(0.975)
    rows = []
    for col in fits[0][0].index:
        pooled = pool_rubin([f[0][col] for f in fits], [f[1][col] ** 2 for f in fits])
        b, s = cc.coef.get(col, np.nan), cc.se.get(col, np.nan)
        rows.append({"term": col, "hr": np.exp(pooled["estimate"]), "lower": np.exp(pooled["lower"]),
                     "upper": np.exp(pooled["upper"]), "p": pooled["p"], "fmi": pooled["fmi"],
                     "hr_cc": np.exp(b), "lower_cc": np.exp(b - z * s), "upper_cc": np.exp(b + z * s),
                     "p_cc": 2 * stats.norm.sf(abs(b / s))})
    out = pd.DataFrame(rows)
    out.attrs.update(n_cc=cc.design.n, events_cc=cc.design.events, n_mi=first.n,
                     events_mi=first.events, m=m, seed=seed)
    return out


def _imputed_fit(context, k: int):
    """(coefficients, standard errors) of the Cox model on imputed data set ``k`` (a task of map_tasks)."""
    first, filled, start = context
    X = first.X.copy()
    for c, values in filled.items():
        X[c] = values[k]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CoxWarning)
        fit = fit_model(dataclasses.replace(first, X=X, caveats=[]), concordance=False, start=start)
    return fit.coef, fit.se


# ----------------------------------------------------------------------------- the whole section
def fit_published_model(data: PrognosticData, endpoint: str = "os") -> MultivariableResult | None:
    """The published model's variables entered together (only with a replication part; else None)."""
    if not data.published_model:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CoxWarning)   # the same caveats are listed under the tables
        return fit_multivariable(data.patients, endpoint, data.published_model, entry_p=None,
                                 post_baseline=data.post_baseline)


def fit_univariables(data: PrognosticData) -> dict[str, UnivariableResult]:
    """{endpoint: univariable models of every candidate} for the study's endpoints."""
    return {ep: fit_univariable(data.patients, ep, data.candidates, data.choices["sparse_min_n"])
            for ep in data.endpoints}


def fit_selected_model(data: PrognosticData, univariable: dict, endpoint: str = "os"):
    """The multivariable model the plan's entry rule builds for ``endpoint`` (None: endpoint absent)."""
    if endpoint not in data.endpoints:
        return None
    c = data.choices
    return fit_multivariable(data.patients, endpoint, data.candidates, univariable[endpoint],
                             entry_p=c["entry_p"], entry_test=c["entry_test"], post_baseline=data.post_baseline,
                             epv_min=c["epv_min"], sparse_min_n=c["sparse_min_n"], workers=c.get("workers", 1))


def sparse_analysis(data: PrognosticData, model: MultivariableResult, endpoint: str = "os"):
    """(sparse levels of the candidates, Firth table of the model with their variables added)."""
    sparse = find_sparse_levels(data.patients, endpoint, data.candidates, data.choices["sparse_min_n"])
    return sparse, fit_firth_sensitivity(with_sparse_variables(model, data.patients, sparse),
                                         sparse_min_n=data.choices["sparse_min_n"])


def multiple_imputation(data: PrognosticData, model: MultivariableResult, endpoint: str = "os", seed: int = 0,
                        workers: int = 1):
    """The model with the incompletely recorded candidates added, CC and MI (None: no model, or no numeric
    candidate with missing values).

    Predictive mean matching imputes numeric columns only. A categorical candidate with missing values is
    not imputed: outside the model it is left out; in the model it stays in and the MI analysis uses the
    patients with it recorded (complete cases for that variable; the numeric ones imputed among them).
    Either way a ``categorical_not_imputed`` caveat (``attrs["caveats"]``) names the variables.
    """
    if isinstance(model, NotEstimable) or model is None:
        return None
    patients = data.patients
    missing = [c for c in data.candidates if patients[c].isna().any() and not _is_categorical(patients[c])]
    if not missing:
        return None
    categorical = [c for c in data.candidates if patients[c].isna().any() and _is_categorical(patients[c])]
    covariates = list(dict.fromkeys([*model.selected, *missing]))
    in_model = [c for c in categorical if c in covariates]
    caveats = []
    if categorical:
        complete = patients[in_model].notna().all(axis=1)
        caveats.append(Caveat("categorical_not_imputed",
                              {"variables": categorical, "in_model": in_model, "left_out":
                               [c for c in categorical if c not in in_model], "n_excluded": int((~complete).sum())}))
        patients = patients[complete]
    out = fit_multiple_imputation(patients, endpoint, covariates, m=int(data.choices["mi_imputations"]),
                                  seed=seed, workers=workers)
    out.attrs["imputed"] = missing
    out.attrs["caveats"] = caveats
    return out


def selected_of(model) -> list:
    """The variables of a fitted multivariable model ([] when it is not estimable or absent)."""
    return list(model.selected) if is_estimable(model) else []


# ----------------------------------------------------------------------------- discrimination and calibration
def _candidate_columns(patients: pd.DataFrame, candidates: list[str]) -> dict:
    """{variable: (column names, values n x k with NaN where missing)} coded as :func:`build_design`
    codes the whole data (dummy columns against the first present level)."""
    out = {}
    for var in candidates:
        s = patients[var]
        if _is_categorical(s):
            cats = list(s.cat.categories) if isinstance(s.dtype, pd.CategoricalDtype) \
                else sorted(map(str, s.dropna().unique()))
            present = [c for c in cats if (s == c).any()]
            names = [f"{var}[{lev}]" for lev in present[1:]]
            values = np.column_stack([(s == lev).to_numpy(dtype=float) for lev in present[1:]]) \
                if len(present) > 1 else np.zeros((len(s), 0))
            values[s.isna().to_numpy()] = np.nan
        else:
            names, values = [var], s.to_numpy(dtype=float)[:, None]
        out[var] = (names, values)
    return out


def _varying(X: np.ndarray) -> np.ndarray:
    """Columns that are not constant (a level absent from a resample, or the only level left)."""
    return np.flatnonzero(X.max(axis=0) > X.min(axis=0)) if X.shape[0] else np.zeros(0, dtype=int)


@dataclass
class ConcordanceValidation:
    """Apparent and optimism-corrected Harrell's C of a model-building procedure (Harrell's bootstrap).

    ``optimism``: mean over the bootstrap replicates of C(training resample) - C(original data) of the
    procedure refitted on each resample (``selection``: the whole univariable screening and the
    multivariable fit; else the fixed model). ``used``: replicates in which the model could be fitted
    (R's ``validate`` likewise drops failed fits); a replicate in which no variable is selected counts
    with C = 1/2 on both (Dxy 0). ``times_selected``: {variable: replicates that selected it}.
    ``replicates``: replicates drawn; ``mcse``: Monte Carlo standard error of the optimism; ``precision``,
    ``max_replicates``, ``batch``: the stopping rule (None: a fixed number of replicates).
    R: ``rms::validate(cph(...), B = replicates)`` (fixed model; C = (Dxy + 1) / 2).
    """

    apparent: float
    optimism: float
    corrected: float
    replicates: int
    used: int
    seed: int | None
    selection: bool
    times_selected: dict = field(default_factory=dict)
    mcse: float = float("nan")
    precision: float | None = None
    max_replicates: int | None = None
    batch: int | None = None
    method: str = "bootstrap optimism correction (Harrell)"


def _procedure_c(blocks, variables, time, event, idx, entry_p, entry_test, selection: bool):
    """(C on the resample, C on the original data, selected variables) of one replicate; None: failed."""
    chosen = []
    if selection:
        for var in variables:
            names, values = blocks[var]
            rows = idx[~np.isnan(values[idx]).any(axis=1)] if values.shape[1] else idx[:0]
            Xv = values[rows]
            cols = _varying(Xv)
            if not len(cols) or event[rows].sum() == 0:
                continue
            fit = fit_coxph(time[rows], event[rows], Xv[:, cols])
            if entry_test == "wald":
                try:
                    p = float(stats.chi2.sf(fit.coef @ np.linalg.solve(fit.cov, fit.coef), len(cols)))
                except np.linalg.LinAlgError:
                    p = np.nan
            else:
                p = fit.lr.p
            if np.isfinite(p) and p < entry_p:
                chosen.append(var)
    else:
        chosen = list(variables)
    if not chosen:
        return 0.5, 0.5, chosen
    values = np.column_stack([blocks[v][1] for v in chosen])
    complete = ~np.isnan(values).any(axis=1)
    rows = idx[complete[idx]]
    Xb = values[rows]
    cols = _varying(Xb)
    if not len(cols) or event[rows].sum() == 0:
        return None
    fit = fit_coxph(time[rows], event[rows], Xb[:, cols])
    if not fit.estimable:
        return None
    beta = np.zeros(values.shape[1])
    beta[cols] = fit.coef
    train = harrell_c(time[rows], event[rows], Xb @ beta)
    test = harrell_c(time[complete], event[complete], values[complete] @ beta)
    return train, test, chosen


#: Bootstrap replicates of the C-index validation are drawn in batches of this size; the stopping rule
#: (``precision``) is checked after each batch, so the replicates used never depend on the worker count.
VALIDATION_BATCH = 10


def _validation_replicate(context, idx):
    """One bootstrap replicate of :func:`validate_concordance` (a task of :func:`helpers.parallel.map_tasks`)."""
    blocks, candidates, time, event, entry_p, entry_test, selection = context
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _procedure_c(blocks, candidates, time, event, idx, entry_p, entry_test, selection)


def validate_concordance(patients: pd.DataFrame, endpoint: str, candidates: list[str],
                         entry_p: float | None = 0.05, entry_test: str = "lr", replicates: int = 200,
                         seed: int | None = 0, indices: np.ndarray | None = None, precision: float | None = None,
                         workers: int = 1) -> ConcordanceValidation | NotEstimable:
    """Harrell's C of the model-building procedure, apparent and corrected for optimism by the bootstrap.

    Each replicate draws n patients with replacement (``np.random.default_rng(seed)``, one row of n
    indices per replicate in turn; or the rows of ``indices``, 0-based, replicates x n), reruns the WHOLE
    procedure on the resample (univariable screening of ``candidates`` at ``entry_p`` with ``entry_test``,
    then the multivariable fit; with ``entry_p`` None the fixed model of all ``candidates``), and records the
    C of the refitted model on the resample minus its C on the original patients; the mean is the optimism
    (Harrell, Lee and Mark 1996; Steyerberg 2019, ch. 17). Factor levels absent from a resample get
    coefficient 0. Efron ties; Harrell's C as :func:`helpers.stats.concordance.harrell_c`.
    R: ``rms::validate(fit, B = replicates)`` for a fixed model.

    Parameters
    ----------
    replicates : int
        The number of replicates, or with ``precision`` the most that are drawn.
    precision : float, optional
        Replicates are drawn in batches of :data:`VALIDATION_BATCH` and drawing stops after the first
        batch at which the Monte Carlo standard error of the optimism (SD of the replicates' optimism /
        sqrt(replicates used)) is below ``precision`` (Koehler, Brown and Haneuse 2009). None: all
        ``replicates``. A large cohort then needs few replicates; a small one uses them all.
    workers : int
        Processes that run the replicates (:func:`helpers.parallel.map_tasks`); the result does not
        depend on it.
    """

    time_col, event_col = ENDPOINTS[endpoint]
    data = patients[patients[[time_col, event_col]].notna().all(axis=1)]
    time = data[time_col].to_numpy(dtype=float)
    event = data[event_col].to_numpy(dtype=int)
    n = len(time)
    if event.sum() == 0:
        return NotEstimable("concordance_validation", "no_events")
    blocks = _candidate_columns(data, candidates)
    selection = entry_p is not None
    everyone = np.arange(n)
    original = _procedure_c(blocks, candidates, time, event, everyone, entry_p, entry_test, selection)
    if original is None or not original[2]:
        return NotEstimable("concordance_validation", "no_variable_selected" if original else "non_convergence")
    apparent = original[1]
    context = (blocks, candidates, time, event, entry_p, entry_test, selection)
    if indices is not None:
        batches = [np.asarray(indices, dtype=int)]
        precision = None
    else:
        rng = np.random.default_rng(seed)
        sizes = [min(VALIDATION_BATCH, int(replicates) - k) for k in range(0, int(replicates), VALIDATION_BATCH)]
        batches = ([rng.integers(0, n, size=n) for _ in range(size)] for size in sizes)
    results: list = []
    drawn = 0
    mcse = np.nan
    for batch in batches:
        batch = list(batch)
        drawn += len(batch)
        results += map_tasks(_validation_replicate, batch, context, workers)
        optimism = [r[0] - r[1] for r in results if r is not None]
        if len(optimism) > 1:
            mcse = float(np.std(optimism, ddof=1) / np.sqrt(len(optimism)))
        if precision is not None and np.isfinite(mcse) and mcse < precision:
            break
    optimism, counts = [], {v: 0 for v in candidates}
    for res in results:
        if res is None:
            continue
        optimism.append(res[0] - res[1])
        for v in res[2]:
            counts[v] += 1
    if not optimism:
        return NotEstimable("concordance_validation", "non_convergence")
    opt = float(np.mean(optimism))
    return ConcordanceValidation(float(apparent), opt, float(apparent - opt), int(drawn), len(optimism),
                                 seed, selection, counts, mcse=mcse, precision=precision,
                                 max_replicates=int(replicates) if indices is None else int(drawn),
                                 batch=VALIDATION_BATCH)


def baseline_cumulative_hazard(fit: CoxFit) -> tuple[np.ndarray, np.ndarray]:
    """(event times, cumulative baseline hazard at x = 0) of an unweighted right-censored Cox fit.

    Efron-corrected increments for an Efron fit (d deaths at t: sum over j = 0..d-1 of
    1 / (S0 - j/d D0)), Breslow's for a Breslow fit: R ``survfit(fit)`` (``ctype`` 2 or 1) with the
    hazard for covariates 0 (``basehaz(fit, centered = FALSE)``).
    """
    from helpers.stats.cox import _efron_sums, _event_groups
    groups = _event_groups(fit.time, fit.event)
    sums = _efron_sums(np.asarray(fit.coef, dtype=float), fit.X, fit.ties, groups)
    shift = float((fit.X @ fit.coef).max())          # _efron_sums shifts eta by its maximum
    per_term = 1.0 / sums.s0
    inc = np.bincount(groups.term_group, weights=per_term, minlength=len(groups.times)) * np.exp(-shift)
    return groups.times, np.cumsum(inc)


def predicted_survival(fit: CoxFit, months: float, X: np.ndarray | None = None) -> np.ndarray:
    """S(months | x) = exp(-H0(months) exp(x b)) for the rows of ``X`` (default: the fit's own patients).
    R: ``summary(survfit(fit, newdata), times = months)$surv``."""
    times, H0 = baseline_cumulative_hazard(fit)
    h = H0[np.searchsorted(times, months, side="right") - 1] if (times <= months).any() else 0.0
    X = fit.X if X is None else np.asarray(X, dtype=float)
    return np.exp(-h * np.exp(X @ fit.coef))


@dataclass
class Calibration:
    """Predicted against observed survival at ``months`` in groups of predicted risk (apparent).

    ``table``: group, n, events, predicted (mean predicted survival S(months | x) of the group),
    observed (Kaplan-Meier at ``months``), lower, upper (its log-transformed 95% CI, as ``survfit``).
    """

    months: float
    table: pd.DataFrame
    endpoint: str
    method: str = "Cox predicted S(t | x) (Efron baseline hazard) vs Kaplan-Meier in quantile groups"


def calibration_at(result: "MultivariableResult", months: float = 12.0, groups: int = 4) -> Calibration | NotEstimable:
    """Calibration of the multivariable model at ``months``: patients grouped by quantiles of predicted
    survival, mean predicted S(months | x) against the Kaplan-Meier estimate of each group (as
    ``rms::calibrate(u = months, cmethod = "KM")`` without its bootstrap; R: ``survfit(fit, newdata)``)."""
    if isinstance(result, NotEstimable):
        return result
    fit = result.fit.engine
    design = result.fit.design
    if not fit.estimable or fit.separated or months >= float(np.max(design.time)):
        return NotEstimable("calibration", "non_convergence" if not fit.estimable
                            else ("separation" if fit.separated else "beyond_last_followup"))
    from helpers.stats.survival import km_table
    predicted = predicted_survival(fit, months)
    k = max(1, min(int(groups), len(np.unique(predicted))))
    codes = pd.qcut(pd.Series(-predicted).rank(method="first"), k, labels=False).to_numpy()
    rows = []
    for g in range(k):
        m = codes == g
        r = km_table(design.time[m], design.event[m], [months]).iloc[0]
        obs = {k: (np.nan if r[c] is None else float(r[c])) for k, c in
               (("observed", "surv"), ("lower", "lower"), ("upper", "upper"))}
        rows.append({"group": g + 1, "n": int(m.sum()), "events": int(design.event[m].sum()),
                     "predicted": float(predicted[m].mean()), **obs})
    return Calibration(float(months), pd.DataFrame(rows), design.endpoint)


# ----------------------------------------------------------------------------- REMARK profile
def candidate_parameters(patients: pd.DataFrame, candidates: list[str]) -> int:
    """Parameters the candidates would take in one model (levels - 1 per factor, 1 per number)."""
    return int(sum(len(names) for names, _ in _candidate_columns(patients, candidates).values()))


def events_per_candidate_parameter(data: PrognosticData, endpoint: str = "os") -> dict:
    """{events, parameters, epv, threshold}: events of ``endpoint`` per candidate parameter (Riley et al.
    2019: the events per parameter of the selection, not of the selected model); threshold: the plan's
    ``epv_min``."""
    _, event_col = ENDPOINTS[endpoint]
    events = int(data.patients[event_col].sum())
    k = candidate_parameters(data.patients, data.candidates)
    return {"events": events, "parameters": k, "epv": events / k if k else np.nan,
            "threshold": float(data.choices.get("epv_min", EPV_MIN))}


def remark_profile(data: PrognosticData, models: dict) -> pd.DataFrame:
    """REMARK profile (McShane et al. 2005, Altman et al. 2012): one row per model with patients,
    events, candidate variables and parameters, the selection rule and missing data.

    ``models``: {name: MultivariableResult | NotEstimable | UnivariableResult}. Columns: model, endpoint,
    patients_total, patients, events, excluded_missing, candidates, candidate_parameters, selection,
    entry_p, entry_test, parameters, variables.
    """
    rows = []
    k = candidate_parameters(data.patients, data.candidates)
    for name, m in models.items():
        if m is None:
            continue
        if isinstance(m, UnivariableResult):
            t = m.table
            rows.append({"model": name, "endpoint": m.endpoint, "patients_total": int(len(data.patients)),
                         "patients": int(t["n_model"].max()) if len(t) else 0,
                         "events": int(t["events_model"].max()) if len(t) else 0,
                         "excluded_missing": int(t.groupby("variable")["n_missing"].first().max()) if len(t) else 0,
                         "candidates": len(data.candidates), "candidate_parameters": k, "selection": "none",
                         "entry_p": None, "entry_test": None, "parameters": None, "variables": m.variables})
            continue
        if isinstance(m, NotEstimable):
            rows.append({"model": name, "endpoint": None, "patients_total": int(len(data.patients)),
                         "patients": None, "events": None, "excluded_missing": None,
                         "candidates": len(data.candidates), "candidate_parameters": k, "selection": m.reason,
                         "entry_p": None, "entry_test": None, "parameters": None, "variables": []})
            continue
        rows.append({"model": name, "endpoint": m.endpoint, "patients_total": int(len(data.patients)),
                     "patients": m.n, "events": m.events, "excluded_missing": m.n_missing,
                     "candidates": len(data.candidates), "candidate_parameters": k,
                     "selection": "univariable_screening" if m.entry_p is not None else "fixed",
                     "entry_p": m.entry_p, "entry_test": m.entry_test, "parameters": m.n_params,
                     "variables": list(m.selected)})
    return pd.DataFrame(rows)


def published_specification_caveats(paper: "MultivariableResult", data: PrognosticData) -> list:
    """The biases of a published specification: immortal time (post-baseline terms) and extrapolation
    (an exposure given in some arms only, compared across arms where it is zero by design)."""
    if not is_estimable(paper):
        return []
    out = []
    post = [v for v in paper.selected if v in data.post_baseline]
    if post:
        out.append(Caveat("immortal_time", {"variables": post, "endpoint": paper.endpoint}))
    for var, arms in data.arm_only.items():
        if var in paper.selected and arms:
            out.append(Caveat("extrapolation", {"variable": var, "arms": list(arms),
                                                "with_arm": "arm" in paper.selected}))
    return out
