"""Sensitivity analyses of the treatment comparison: the study and the plan in, typed results out.

Orchestrates :mod:`helpers.stats.propensity` and :mod:`helpers.stats.evalue` for one study: the
propensity score (PS) of the experimental arm on the baseline covariates, IPTW and overlap weights,
covariate balance, weighted and multivariable Cox hazard ratios with bootstrap intervals, the
calendar-era analyses (restriction to the years in which both arms were treated; adjustment for the
start year) and E-values. Everything study-specific comes from the configuration: the treated arm is
``study.config.experimental_arm``, the variables measured after time zero come from the dictionary's
``timing``, the model terms from the plan's ``sensitivity`` block (``analysis.yaml``; default: every
baseline covariate of the dictionary). No English here: :mod:`helpers.report.sensitivity` renders the
results and their :class:`~helpers.stats.types.Caveat` objects in words.

R equivalents: ``glm(arm ~ ..., family = binomial)``, ``coxph(Surv(t, e) ~ arm, weights = w,
robust = TRUE)``, ``coxph(Surv(t, e) ~ arm + ...)``, ``EValue::evalues.HR(rare = FALSE)``.
Times in months.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from helpers.parallel import resolve_workers
from helpers.stats import propensity as P
from helpers.stats.evalue import evalue_hr
from helpers.stats.types import Caveat, NotEstimable, is_estimable

#: Events per parameter below which a multivariable Cox model gets a ``low_epv`` caveat.
MIN_EPV = 10


# ----------------------------------------------------------------------------- configuration adapters
@dataclass(frozen=True)
class CovariateInfo:
    """What the dictionary says about the covariates: labels, level labels and timing.

    ``baseline``: variables measured at time zero, as modelled (groupings included);
    ``post_baseline``: variables measured after time zero (never in a propensity or adjustment model).
    """

    labels: dict
    level_labels: dict
    baseline: tuple
    post_baseline: tuple

    def label(self, column: str) -> str:
        return self.labels.get(column, column)

    def level_label(self, column: str, level: str) -> str:
        return self.level_labels.get((column, str(level)), str(level))


def covariate_info(study) -> CovariateInfo:
    """Labels and timing of the study's covariates from ``study.dictionary``.

    Reads the typed dictionary (``.covariates[name].timing``, ``.label(name)``, ``.baseline()``,
    ``.groupings``, ``.exposures``); for the older dict-shaped dictionary it falls back to: labels of the
    cohort columns and derived variables; post-baseline = derived counts (unit ``cycles``) and columns
    recorded for one arm only (``required_when``/``empty_when`` on ``arm``).
    """
    d = getattr(study, "dictionary", None)
    labels: dict = {}
    level_labels: dict = {}
    baseline: list = []
    post: list = []
    if d is not None and hasattr(d, "covariates"):
        def _label(name):
            try:
                return d.label(name)
            except Exception:
                return name
        for name, cov in d.covariates.items():
            labels[name] = _label(name)
            for code in (getattr(cov, "levels", None) or {}):
                try:
                    level_labels[(name, str(code))] = d.level_label(name, code)
                except Exception:
                    pass
            (post if str(getattr(cov, "timing", "baseline")) != "baseline" else baseline).append(name)
        for name, grouping in (getattr(d, "groupings", None) or {}).items():
            labels[name] = _label(name)
            for code in (getattr(grouping, "levels", None) or {}):
                try:
                    level_labels[(name, str(code))] = d.level_label(name, code)
                except Exception:
                    pass
            if getattr(grouping, "source", None) in post or str(getattr(grouping, "timing", "baseline")) != "baseline":
                post.append(name)
        for name in (getattr(d, "exposures", None) or {}):
            labels[name] = _label(name)
            post.append(name)
        if hasattr(d, "post_baseline"):
            post += [n for n in d.post_baseline() if n not in post]
        if hasattr(d, "baseline"):
            baseline = [b for b in d.baseline() if b not in post]
        labels["start_year"] = _label("start_year")
    elif isinstance(d, dict):
        columns = d.get("files", {}).get("cohort", {}).get("columns", {})
        derived = d.get("derived", {})
        core = {"patient_id", "arm", "start_date", "progression_date", "death_date", "last_followup_date",
                "last_assessment_date", "best_response"}
        for name, spec in {**columns, **derived}.items():
            labels[name] = spec.get("label", name)
        for name, spec in columns.items():
            cond = f"{spec.get('required_when', '')} {spec.get('empty_when', '')}"
            if name in core:
                continue
            (post if "arm ==" in cond else baseline).append(name)
        post += [n for n, s in derived.items() if s.get("unit") == "cycles"]
        post += [n for n, s in columns.items() if s.get("required_when", "").split(" ")[0] in post]
    return CovariateInfo(labels, level_labels, tuple(baseline), tuple(dict.fromkeys(post)))


@dataclass(frozen=True)
class StudyArms:
    """The two arms: codes and labels; ``experimental`` is the treated arm of the PS model."""

    reference: str
    experimental: str
    reference_label: str
    experimental_label: str


def study_arms(study) -> StudyArms:
    """Reference and experimental arm of the study configuration (first arm = reference)."""
    cfg = study.config
    ref = str(cfg.reference_arm)
    exp = getattr(cfg, "experimental_arm", None)
    if exp is None:
        exp = next(str(a) for a in cfg.arm_order if str(a) != ref)

    def label(code):
        fn = getattr(cfg, "arm_label", None)
        try:
            return str(fn(code)) if fn else str(code)
        except Exception:
            return str(code)
    return StudyArms(ref, str(exp), label(ref), label(exp))


def study_design(study) -> str:
    """``"randomised"`` or ``"observational"`` (study.yaml ``design``; default observational)."""
    cfg = study.config
    design = getattr(cfg, "design", None) or getattr(cfg, "extra", {}).get("design") or "observational"
    return "randomised" if str(design).lower().startswith("random") else "observational"


# ----------------------------------------------------------------------------- choices
@dataclass(frozen=True)
class SensitivityChoices:
    """The plan's ``sensitivity`` block, typed (see ``analysis.yaml`` for each key's meaning).

    ``ps_covariates`` None: every baseline covariate of the dictionary (those with missing values left
    out with a caveat). ``balance_covariates``: extra terms shown for balance only (None: the baseline
    covariates not in the model, plus the start year).
    """

    ps_covariates: tuple | None = None
    balance_covariates: tuple | None = None
    estimand: str = "ATO"
    trim_quantiles: tuple | None = (0.01, 0.99)
    n_bootstrap: int = 1000
    ci_method: str = "auto"
    era_start_year: int | None = None
    era_end_year: int | None = None
    smd_target: float = P.SMD_TARGET
    start_year_c_threshold: float = 0.9
    rare_outcome: bool = False

    @classmethod
    def from_plan(cls, choices: dict | None) -> "SensitivityChoices":
        c = dict(choices or {})
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(c) - known)
        if unknown:
            raise ValueError(f"analysis.yaml, sensitivity: unknown key(s) {unknown}; known: {sorted(known)}")
        for key in ("ps_covariates", "balance_covariates", "trim_quantiles"):
            if c.get(key) is not None:
                c[key] = tuple(c[key])
        out = cls(**c)
        if out.estimand not in P.ESTIMANDS:
            raise ValueError(f"sensitivity.estimand must be one of {P.ESTIMANDS}, got {out.estimand!r}")
        P.resolve_ci_method(out.ci_method, 1)
        return out


# ----------------------------------------------------------------------------- typed results
@dataclass
class WeightedAnalysis:
    """PS, weights, balance and weighted HRs in one population (all patients, or the era).

    ``fits[estimand][endpoint]``: the :func:`~helpers.stats.propensity.fit_weighted_cox` dict plus
    ``boot_lower``/``boot_upper`` (the reported CI: bootstrap or robust), or a NotEstimable.
    """

    population: pd.DataFrame      # patients of the population before the common-support rule
    kept: pd.DataFrame            # common-support patients
    ps_fit: P.PropensityFit
    weights: dict
    fits: dict
    bootstrap: dict
    balance: pd.DataFrame

    @property
    def n_excluded(self) -> int:
        return int(len(self.population) - len(self.kept))


@dataclass
class StartYearAssociation:
    """How well the calendar year of treatment start predicts the arm.

    ``c_statistic``: AUC of the start year for the experimental arm, folded to >= 0.5;
    ``overlap``: some calendar year has patients of both arms; ``predicts_arm``: ``c_statistic`` above
    the plan's ``start_year_c_threshold`` or no overlap.
    """

    c_statistic: float
    overlap: bool
    predicts_arm: bool
    threshold: float
    smd: float


@dataclass
class EraAnalysis:
    """The comparison restricted to the calendar years in which both arms were treated."""

    years: tuple
    n_all: int
    n_by_arm: dict
    weighted: WeightedAnalysis | NotEstimable
    unadjusted: dict


@dataclass
class SensitivityResults:
    """Everything the notebook shows and ``results.json`` stores (rendered by helpers.report.sensitivity)."""

    choices: SensitivityChoices
    seed: int
    workers: int
    arms: StudyArms
    design: str
    covariates: CovariateInfo
    endpoints: tuple
    all_patients: pd.DataFrame
    ps_terms: tuple               # the requested PS terms (after the default and missing-value rule)
    balance_terms: tuple
    main: WeightedAnalysis | NotEstimable
    unadjusted: dict              # "all"|"support" -> endpoint -> dict | NotEstimable
    adjusted: dict                # endpoint -> dict | NotEstimable
    year_adjusted: dict           # endpoint -> dict | NotEstimable
    era: EraAnalysis | NotEstimable
    start_year: StartYearAssociation
    evalues: dict                 # endpoint -> dict | NotEstimable
    ci_method: str
    caveats: list = field(default_factory=list)

    # conveniences
    @property
    def estimable(self) -> bool:
        return isinstance(self.main, WeightedAnalysis)

    @property
    def patients(self) -> pd.DataFrame:
        return self.main.kept if self.estimable else self.all_patients

    @property
    def ps_fit(self):
        return self.main.ps_fit if self.estimable else self.main

    @property
    def weighted(self) -> dict:
        return self.main.fits if self.estimable else {}

    @property
    def balance(self) -> pd.DataFrame:
        return self.main.balance if self.estimable else self.unweighted_balance

    @property
    def weights(self) -> dict:
        return self.main.weights if self.estimable else {}

    unweighted_balance: pd.DataFrame | None = None

    def verdicts(self) -> dict:
        """Per endpoint: which estimates exclude no effect; ``balance_all``; ``robust`` (all hold).

        ``weighted``/``adjusted``/``era``: the CI of the primary weighted, the multivariable and the era
        HR lies below 1 (above 1 when the primary weighted HR is above 1); ``era_direction``: the era HR
        points the same way; ``balance_all``: |SMD| < target with the primary weights for every baseline
        term of the balance table (model and others, start year included); ``robust``: all of these.
        """
        est = self.choices.estimand
        balance_all = self.balance_achieved_all()
        out = {}
        for ep in self.endpoints:
            w = self.weighted.get(est, {}).get(ep) if self.estimable else None
            adj = self.adjusted.get(ep)
            era = (self.era.weighted.fits[est][ep] if isinstance(self.era, EraAnalysis)
                   and isinstance(self.era.weighted, WeightedAnalysis) else None)
            benefit = is_estimable(w) and w["hr"] < 1
            below = (lambda f, lo, hi: is_estimable(f) and (f[hi] < 1 if benefit else f[lo] > 1))
            checks = {"direction": "benefit" if benefit else "harm",
                      "weighted": below(w, "boot_lower", "boot_upper"),
                      "adjusted": below(adj, "lower", "upper"),
                      "era": below(era, "boot_lower", "boot_upper"),
                      "era_direction": is_estimable(era) and ((era["hr"] < 1) == benefit)}
            checks["era_available"] = is_estimable(era)
            checks["estimable"] = is_estimable(w) or is_estimable(adj)
            checks["consistent"] = (checks["weighted"] and checks["adjusted"]
                                    and (checks["era_direction"] or not checks["era_available"]))
            checks["robust"] = checks["consistent"] and balance_all
            out[ep] = checks
        return out

    def balance_achieved_all(self) -> bool:
        """|SMD| below target with the primary weights for every baseline term of the balance table."""
        if not self.estimable:
            return False
        b = self.main.balance
        b = b[~b["term"].map(P.term_column).isin(self.covariates.post_baseline)]
        a = b[f"smd_{self.choices.estimand}"].abs()
        return bool((a < self.choices.smd_target).all())


# ----------------------------------------------------------------------------- running
def default_ps_terms(study, patients: pd.DataFrame, info: CovariateInfo, caveats: list) -> list[str]:
    """Every baseline covariate of the dictionary present in the data without missing values."""
    out = []
    for name in info.baseline:
        if name not in patients.columns or name in P.OUTCOME_COLUMNS:
            continue
        if patients[name].isna().any():
            caveats.append(Caveat("excluded_missing", {"variable": name, "n": int(patients[name].isna().sum())}))
            continue
        out.append(name)
    return out


def _weighted_analysis(population: pd.DataFrame, terms, balance_terms, arms: StudyArms, endpoints,
                       choices: SensitivityChoices, ci_method: str, seed: int, workers: int, post,
                       caveats: list, where: str) -> WeightedAnalysis | NotEstimable:
    fit = P.fit_propensity(population, terms, arms.experimental, post)
    if not is_estimable(fit):
        caveats.append(Caveat("not_estimable", {"what": fit.what, "reason": fit.reason,
                                                "terms": list(getattr(fit, "terms", ())), "population": where}))
        return fit
    if fit.support.dropped_terms or len(fit.support.excluded):
        caveats.append(Caveat("positivity", {"terms": list(fit.support.dropped_terms),
                                             "n_excluded": int(len(fit.support.excluded)), "population": where}))
    kept = population.loc[fit.ps.index]
    t = fit.treated.to_numpy()
    weights = {"ATE": P.compute_weights(fit.ps, t, "ATE", choices.trim_quantiles),
               "ATO": P.compute_weights(fit.ps, t, "ATO")}
    fits = {est: {ep: P.fit_weighted_cox(kept[P.ENDPOINTS[ep][0]], kept[P.ENDPOINTS[ep][1]], t, w)
                  for ep in endpoints} for est, w in weights.items()}
    if ci_method == "bootstrap":
        boot = P.bootstrap_weighted_hr(population, terms, choices.n_bootstrap, seed, choices.trim_quantiles,
                                       arms.experimental, endpoints=endpoints, workers=workers,
                                       post_baseline=post)
        if boot["n_failed"]:
            caveats.append(Caveat("bootstrap_failures", {"n_failed": boot["n_failed"], "n_boot": boot["n_boot"],
                                                         "population": where}))
    else:
        boot = P.robust_interval(fits, len(population))
    for est in fits:
        for ep, f in fits[est].items():
            if is_estimable(f):
                b = boot[ep][est]
                f.update({"boot_lower": b["lower"], "boot_upper": b["upper"], "boot_se_log": b["se_log"],
                          "boot_n_valid": b["n_valid"]})
            else:
                caveats.append(Caveat("not_estimable", {"what": f.what, "reason": f.reason, "endpoint": ep,
                                                        "estimand": est, "population": where}))
    all_terms = list(terms) + [b for b in balance_terms if b not in terms]
    balance = P.make_balance_table(kept, all_terms, t, weights, fit.terms, (arms.reference, arms.experimental))
    # terms made constant by the common-support exclusion carry no information about balance
    balance = balance[~balance["term"].isin(fit.support.dropped_terms)].reset_index(drop=True)
    return WeightedAnalysis(population, kept, fit, weights, fits, boot, balance)


def _unadjusted(frame: pd.DataFrame, arms: StudyArms, endpoints) -> dict:
    z = P.treatment_indicator(frame, arms.experimental)
    return {ep: P.fit_weighted_cox(frame[P.ENDPOINTS[ep][0]], frame[P.ENDPOINTS[ep][1]], z) for ep in endpoints}


def _adjusted(frame, terms, ep, arms, post, caveats, model) -> dict | NotEstimable:
    fit = P.fit_adjusted_cox(frame, terms, ep, arms.experimental, post_baseline=post)
    if not is_estimable(fit):
        caveats.append(Caveat("not_estimable", {"what": fit.what, "reason": fit.reason, "endpoint": ep,
                                                "model": model}))
    elif fit["events"] < MIN_EPV * fit["n_parameters"]:
        caveats.append(Caveat("low_epv", {"endpoint": ep, "model": model, "events": fit["events"],
                                          "parameters": fit["n_parameters"]}))
    return fit


def uncovered_baseline(study, info: CovariateInfo, patients: pd.DataFrame, terms) -> list[str]:
    """Baseline covariates of the dictionary that no propensity or balance term covers.

    A term covers its column, the column's groupings and the grouping's source (``age`` covers
    ``age_group``). Balance is reported on every baseline covariate, so these are added to the balance
    table (shown for balance only) even when the plan lists its balance terms explicitly.
    """
    groupings = getattr(getattr(study, "dictionary", None), "groupings", None) or {}
    source = {name: getattr(g, "source", None) for name, g in groupings.items()}
    covered = {P.term_column(t) for t in terms}
    covered |= {source[c] for c in list(covered) if source.get(c)}
    covered |= {g for g, src in source.items() if src in covered}
    return [b for b in info.baseline if b not in covered and b in patients.columns
            and b not in P.OUTCOME_COLUMNS]


def era_window(patients: pd.DataFrame, treated_arm: str, start: int | None = None,
               end: int | None = None) -> tuple[int, int]:
    """Calendar years in which both arms started treatment: first treated-arm year to last reference-arm year."""
    p = P.add_start_year(patients)
    t = P.treatment_indicator(p, treated_arm) == 1
    lo = int(p.loc[t, "start_year"].min()) if start is None else int(start)
    hi = int(p.loc[~t, "start_year"].max()) if end is None else int(end)
    return lo, hi


def start_year_association(patients: pd.DataFrame, treated_arm: str, threshold: float) -> StartYearAssociation:
    """AUC of the start year for the arm (folded to >= 0.5), overlap of the arms' years and the verdict."""
    p = P.add_start_year(patients)
    t = P.treatment_indicator(p, treated_arm)
    year = p["start_year"].to_numpy(float)
    c = P.c_statistic(t, year)
    c = max(c, 1 - c)
    overlap = bool(len(set(year[t == 1]) & set(year[t == 0])))
    return StartYearAssociation(float(c), overlap, bool(c > threshold or not overlap), float(threshold),
                                P.standardized_difference(year, t))


def run_sensitivity(study, choices: dict | SensitivityChoices | None = None, seed: int | None = None,
                    workers: int | None = None) -> SensitivityResults:
    """Run the sensitivity analyses of the treatment comparison for ``study``.

    Parameters
    ----------
    study : helpers.data.load.Study
        The validated study (patients with ``os_months``/``os_event``, optionally ``pfs_*``).
    choices : dict or SensitivityChoices
        The plan's ``sensitivity`` block (``load_plan(study.folder)["sensitivity"]``).
    seed, workers : int, optional
        The plan's top-level ``seed`` and ``workers`` (default: ``load_plan``'s, else the project seed and 1).
        The bootstrap draws every resample from ``seed`` up front, so results do not depend on ``workers``.

    Returns
    -------
    SensitivityResults
        Typed results; statistics that cannot be computed are NotEstimable and listed as caveats.
    """
    if not isinstance(choices, SensitivityChoices):
        choices = SensitivityChoices.from_plan(choices)
    if seed is None or workers is None:
        plan = _top_level_plan(study)
        seed = int(plan.get("seed")) if seed is None else int(seed)
        workers = plan.get("workers", 1) if workers is None else workers
    workers = resolve_workers(workers)
    arms = study_arms(study)
    info = covariate_info(study)
    post = info.post_baseline
    allp = P.add_start_year(study.patients)
    endpoints = tuple(ep for ep in P.ENDPOINTS if P.ENDPOINTS[ep][0] in allp.columns
                      and allp[P.ENDPOINTS[ep][0]].notna().any())
    caveats: list = []
    terms = list(choices.ps_covariates) if choices.ps_covariates is not None else \
        default_ps_terms(study, allp, info, caveats)
    # a covariate constant in the analysed patients (a single start year) carries no information: it is
    # left out of the propensity, balance and outcome models, and the era analysis is not estimable
    one_year = bool(allp["start_year"].dropna().nunique() <= 1)
    if one_year:
        terms = [t for t in terms if P.term_column(t) != "start_year"]
    if choices.balance_covariates is not None:
        balance_terms = list(choices.balance_covariates)
    else:
        balance_terms = [b for b in info.baseline if b in allp.columns and b not in terms
                         and b not in P.OUTCOME_COLUMNS] + ["start_year"]
        balance_terms = [b for b in balance_terms if not _constant(allp, b)]
    balance_terms += [b for b in uncovered_baseline(study, info, allp, list(terms) + balance_terms)
                      if not _constant(allp, b)]
    ci_method = P.resolve_ci_method(choices.ci_method, len(allp))
    main = _weighted_analysis(allp, terms, balance_terms, arms, endpoints, choices, ci_method, seed, workers,
                              post, caveats, "all")
    unweighted = None
    if is_estimable(main):
        kept = main.kept
        model_terms = main.ps_fit.terms
        est_summary = P.balance_summary(main.balance, choices.smd_target, model_only=False)[choices.estimand]
        if not est_summary["achieved"]:
            caveats.append(Caveat("imbalance", {"estimand": choices.estimand,
                                                "terms": est_summary["terms_above_target"]}))
    else:
        kept = allp
        model_terms = [t for t in P.expand_terms(allp, terms, post) if t not in getattr(main, "terms", ())]
        t = P.treatment_indicator(allp, arms.experimental)
        unweighted = P.make_balance_table(allp, list(terms) + [b for b in balance_terms if b not in terms], t, {},
                                          model_terms, (arms.reference, arms.experimental))
    unadjusted = {"all": _unadjusted(allp, arms, endpoints), "support": _unadjusted(kept, arms, endpoints)}
    adjusted = {ep: _adjusted(kept, model_terms, ep, arms, post, caveats, "adjusted") for ep in endpoints}
    if one_year:
        year_adjusted = {ep: NotEstimable("year_adjusted", "one_start_year") for ep in endpoints}
    else:
        year_adjusted = {ep: _adjusted(kept, list(model_terms) + ["start_year"], ep, arms, post, caveats,
                                       "year_adjusted") for ep in endpoints}
    # calendar era: the years in which both arms were treated; the pipeline repeated there
    assoc = start_year_association(allp, arms.experimental, choices.start_year_c_threshold)
    lo, hi = era_window(allp, arms.experimental, choices.era_start_year, choices.era_end_year)
    era_p = allp[(allp["start_year"] >= lo) & (allp["start_year"] <= hi)]
    t_era = P.treatment_indicator(era_p, arms.experimental)
    if one_year:
        era = P.PropensityNotEstimable("era", "one_start_year")      # said once, in the table and prose
    elif lo > hi or t_era.sum() == 0 or t_era.sum() == len(t_era):
        era = P.PropensityNotEstimable("era", "no_common_years")
        caveats.append(Caveat("not_estimable", {"what": "era", "reason": "no_common_years",
                                                "years": [lo, hi], "population": "era"}))
    else:
        era_weighted = _weighted_analysis(era_p, terms, [], arms, endpoints, choices, ci_method, seed, workers,
                                          post, caveats, "era")
        era = EraAnalysis((lo, hi), int(len(era_p)),
                          {arms.reference: int((t_era == 0).sum()), arms.experimental: int((t_era == 1).sum())},
                          era_weighted, _unadjusted(era_p, arms, endpoints))
    evalues = {}
    for ep in endpoints:
        f = main.fits[choices.estimand][ep] if is_estimable(main) else main
        if is_estimable(f) and f.get("boot_lower") is not None and np.isfinite(f["boot_lower"]):
            evalues[ep] = evalue_hr(f["hr"], f["boot_lower"], f["boot_upper"], rare=choices.rare_outcome)
        else:
            evalues[ep] = NotEstimable("evalue", "hazard_ratio_not_estimable")
    return SensitivityResults(choices, int(seed), int(workers), arms, study_design(study), info, endpoints, allp,
                              tuple(terms), tuple(balance_terms), main, unadjusted, adjusted, year_adjusted, era,
                              assoc, evalues, ci_method, caveats, unweighted)


def _constant(patients: pd.DataFrame, term: str) -> bool:
    """Whether the column of ``term`` takes at most one value among ``patients`` (missing values ignored)."""
    column = P.term_column(term)
    return column in patients.columns and patients[column].dropna().nunique() <= 1


def _top_level_plan(study) -> dict:
    """The plan's top-level ``seed`` and ``workers`` (``helpers.config.load_plan``), else defaults."""
    from helpers import config
    plan: dict[str, Any] = {}
    load_plan = getattr(config, "load_plan", None)
    if load_plan is not None:
        try:
            plan = load_plan(getattr(study, "folder", None)) or {}
        except Exception:
            plan = {}
    return {"seed": plan.get("seed", config.SEED), "workers": plan.get("workers", "auto")}
