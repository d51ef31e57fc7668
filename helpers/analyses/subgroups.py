"""The treatment effect within strata and subgroups: study and plan in, typed results out.

Two analyses of the experimental vs the reference arm beyond the crude comparison:

* **Stratified analyses** (:func:`run_stratified`): the plan's ``stratified.factors`` (``analysis.yaml``;
  default none) define strata, e.g. the calendar era of the start of treatment cut at a declared year.
  Per time-to-event endpoint the stratified log-rank test and the stratified Cox hazard ratio next to the
  unstratified ones; for tumour response (when the data have it) the Mantel-Haenszel common odds ratio
  and risk difference with the CMH test (:mod:`helpers.stats.stratified`).
* **Subgroups** (:func:`run_subgroups`): the hazard ratio within each level of the dictionary's
  ``subgroup: true`` baseline variables (``study.dictionary.subgroups()``), with the likelihood-ratio test
  of the arm-by-variable interaction (R ``anova(coxph(Surv ~ arm + v), coxph(Surv ~ arm * v))``). A level
  with fewer than ``min_events`` events in an arm gets no hazard ratio (NotEstimable ``few_events``).

No English here: :mod:`helpers.report.subgroups` renders the results. Times in months.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from helpers.parallel import POOL_MIN_PATIENTS, map_tasks
from helpers.stats.stratified import (CMHResult, StratifiedHazardRatio, StratifiedLogRank, cmh_binary,
                                      stratified_cox, stratified_logrank, stratum_labels)
from helpers.stats.types import Caveat, NotEstimable, TestResult

#: time-to-event endpoints: (time column, event column)
ENDPOINTS = {"os": ("os_months", "os_event"), "pfs": ("pfs_months", "pfs_event")}
#: binary response endpoints: best-response codes counted as a response
RESPONSE_ENDPOINTS = {"orr": ("CR", "PR"), "dcr": ("CR", "PR", "SD")}


def _arms(study) -> tuple[str, str]:
    cfg = study.config
    ref = str(cfg.reference_arm)
    exp = getattr(cfg, "experimental_arm", None) or next(a for a in cfg.arm_order if str(a) != ref)
    return ref, str(exp)


def _endpoints(patients: pd.DataFrame, wanted) -> tuple:
    return tuple(ep for ep in wanted if ep in ENDPOINTS and ENDPOINTS[ep][0] in patients.columns
                 and patients[ENDPOINTS[ep][0]].notna().any())


def _with_start_year(patients: pd.DataFrame) -> pd.DataFrame:
    if "start_year" in patients.columns or "start_date" not in patients.columns:
        return patients
    return patients.assign(start_year=pd.to_datetime(patients["start_date"]).dt.year)


# ============================================================================= stratified analyses
@dataclass(frozen=True)
class StratifiedChoices:
    """The plan's ``stratified`` block: ``factors`` (list of ``{variable, cuts}``; empty = no analysis),
    ``endpoints`` (time-to-event endpoints analysed when present), ``response_denominator``
    (``all``: not-evaluable patients count as non-responders; ``evaluable``) and ``level``."""

    factors: tuple = ()
    endpoints: tuple = ("os", "pfs")
    response_denominator: str = "all"
    level: float = 0.95

    @classmethod
    def from_plan(cls, block: dict | None) -> "StratifiedChoices":
        c = dict(block or {})
        unknown = sorted(set(c) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f"analysis.yaml, stratified: unknown key(s) {unknown}; "
                             f"known: {sorted(cls.__dataclass_fields__)}")
        factors = []
        for f in c.get("factors") or ():
            f = {"variable": f} if isinstance(f, str) else dict(f)
            if "variable" not in f:
                raise ValueError(f"analysis.yaml, stratified.factors: each factor needs a 'variable', got {f}")
            bad = sorted(set(f) - {"variable", "cuts", "label"})
            if bad:
                raise ValueError(f"analysis.yaml, stratified.factors: unknown key(s) {bad} in {f}")
            f["cuts"] = [float(x) for x in f.get("cuts") or []]
            factors.append(f)
        c["factors"] = tuple(factors)
        if "endpoints" in c:
            c["endpoints"] = tuple(c["endpoints"])
        out = cls(**c)
        if out.response_denominator not in ("all", "evaluable"):
            raise ValueError("stratified.response_denominator must be 'all' or 'evaluable'")
        return out


@dataclass
class StratifiedEndpoint:
    """One time-to-event endpoint: unstratified and stratified log-rank tests and Cox hazard ratios."""

    logrank: StratifiedLogRank | NotEstimable
    cox: StratifiedHazardRatio | NotEstimable
    logrank_unstratified: StratifiedLogRank | NotEstimable
    cox_unstratified: StratifiedHazardRatio | NotEstimable


@dataclass
class StratifiedResponse:
    """One response endpoint (ORR or DCR): Mantel-Haenszel over the strata and the crude (one-stratum) values."""

    cmh: CMHResult | NotEstimable
    crude: CMHResult | NotEstimable
    n: int
    responders: dict


@dataclass
class StratifiedResults:
    """Everything of the stratified analyses (rendered by :mod:`helpers.report.subgroups`).

    ``strata``: DataFrame with one row per stratum (``stratum``, patients per arm ``n_<arm>``, events per
    endpoint and arm); ``n_missing``: patients without a stratum (left out).
    """

    choices: StratifiedChoices
    arms: tuple
    strata: pd.DataFrame
    endpoints: dict
    response: dict
    n_missing: int
    caveats: list = field(default_factory=list)

    @property
    def active(self) -> bool:
        return bool(self.choices.factors)


def run_stratified(study, choices: dict | StratifiedChoices | None = None,
                   response: bool | None = None) -> StratifiedResults:
    """Stratified log-rank, stratified Cox and CMH analyses of the experimental arm.

    Parameters
    ----------
    study : helpers.data.load.Study
    choices : the plan's ``stratified`` block (``load_plan(study.folder)["stratified"]``).
    response : analyse tumour response (default: ``study.has("response")``).

    Returns
    -------
    StratifiedResults; with no factors declared, ``active`` is False and nothing is computed.
    R: ``survdiff(Surv(t, e) ~ arm + strata(s))``, ``coxph(Surv(t, e) ~ arm + strata(s))``,
    ``mantelhaen.test(table(arm, response, s))``.
    """
    if not isinstance(choices, StratifiedChoices):
        choices = StratifiedChoices.from_plan(choices)
    ref, exp = _arms(study)
    if not choices.factors:
        return StratifiedResults(choices, (ref, exp), pd.DataFrame(), {}, {}, 0)
    p = _with_start_year(study.patients)
    missing = [f["variable"] for f in choices.factors if f["variable"] not in p.columns]
    if missing:
        raise ValueError(f"analysis.yaml, stratified.factors: variable(s) {missing} not in the data")
    s = stratum_labels(p, choices.factors)
    keep = s.notna()
    caveats = []
    if (~keep).any():
        caveats.append(Caveat("missing_stratum", {"n": int((~keep).sum())}))
    p, s = p[keep], s[keep].astype(str)
    z = (p["arm"].astype(str) == exp).astype(int).to_numpy()
    eps = _endpoints(p, choices.endpoints)
    rows = []
    for k in sorted(set(s)):
        m = (s == k).to_numpy()
        row = {"stratum": k, f"n_{ref}": int((z[m] == 0).sum()), f"n_{exp}": int((z[m] == 1).sum())}
        for ep in eps:
            e = p[ENDPOINTS[ep][1]].to_numpy()
            row[f"events_{ep}_{ref}"] = int(np.nansum(e[m & (z == 0)]))
            row[f"events_{ep}_{exp}"] = int(np.nansum(e[m & (z == 1)]))
        if min(row[f"n_{ref}"], row[f"n_{exp}"]) == 0:
            caveats.append(Caveat("one_arm_stratum", {"stratum": k, "n": int(m.sum())}))
        rows.append(row)
    out = {}
    for ep in eps:
        tcol, ecol = ENDPOINTS[ep]
        ok = p[tcol].notna().to_numpy()
        t, e, zz, ss = p[tcol].to_numpy()[ok], p[ecol].to_numpy()[ok], z[ok], s.to_numpy()[ok]
        out[ep] = StratifiedEndpoint(stratified_logrank(t, e, zz, ss),
                                     stratified_cox(t, e, zz, ss, choices.level),
                                     stratified_logrank(t, e, zz, np.zeros(len(t))),
                                     stratified_cox(t, e, zz, None, choices.level))
    resp = {}
    do_response = study.has("response") if response is None else response
    if do_response and "best_response" in p.columns:
        br = p["best_response"].astype(object).where(p["best_response"].notna(), "NE").astype(str).str.upper()
        use = (br != "NE").to_numpy() if choices.response_denominator == "evaluable" else np.ones(len(br), bool)
        for name, codes in RESPONSE_ENDPOINTS.items():
            y = br.isin(codes).astype(int).to_numpy()[use]
            resp[name] = StratifiedResponse(
                cmh_binary(y, z[use], s.to_numpy()[use], choices.level),
                cmh_binary(y, z[use], np.zeros(int(use.sum())), choices.level),
                int(use.sum()), {ref: int(y[z[use] == 0].sum()), exp: int(y[z[use] == 1].sum())})
    return StratifiedResults(choices, (ref, exp), pd.DataFrame(rows), out, resp, int((~keep).sum()), caveats)


# ============================================================================= subgroups
@dataclass(frozen=True)
class SubgroupChoices:
    """The plan's ``subgroups`` block: ``variables`` (None = the dictionary's ``subgroup: true`` variables),
    ``endpoints``, ``min_events`` (fewer events in an arm of a level: no hazard ratio) and ``level``."""

    variables: tuple | None = None
    endpoints: tuple = ("os", "pfs")
    min_events: int = 5
    level: float = 0.95

    @classmethod
    def from_plan(cls, block: dict | None) -> "SubgroupChoices":
        c = dict(block or {})
        unknown = sorted(set(c) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f"analysis.yaml, subgroups: unknown key(s) {unknown}; "
                             f"known: {sorted(cls.__dataclass_fields__)}")
        for key in ("variables", "endpoints"):
            if c.get(key) is not None:
                c[key] = tuple(c[key])
        return cls(**c)


@dataclass
class SubgroupLevel:
    """The arm comparison within one level: patients and events per arm (arm code -> count) and the HR."""

    variable: str
    level: str
    n: dict
    events: dict
    hr: StratifiedHazardRatio | NotEstimable


@dataclass
class InteractionTest:
    """Likelihood-ratio test of the arm-by-variable interaction (R ``anova(fit_main, fit_interaction)``).

    ``test``: chi-square on ``df`` = number of estimable interaction terms; ``monotone``: the
    interaction model's likelihood had no finite maximum (a level with no events in an arm); the
    statistic is then the limit R also reports.
    """

    test: TestResult
    n: int
    monotone: bool = False


@dataclass
class SubgroupVariable:
    variable: str
    levels: list
    interaction: InteractionTest | NotEstimable
    n_missing: int = 0


@dataclass
class SubgroupResults:
    """Per endpoint the overall HR and one :class:`SubgroupVariable` per subgroup variable."""

    choices: SubgroupChoices
    arms: tuple
    variables: tuple
    endpoints: tuple
    overall: dict          # endpoint -> SubgroupLevel (variable "all")
    by_endpoint: dict      # endpoint -> list[SubgroupVariable]

    @property
    def active(self) -> bool:
        return bool(self.variables) and bool(self.endpoints)


def _level_order(study, variable: str, values: pd.Series) -> list[str]:
    if isinstance(values.dtype, pd.CategoricalDtype):
        order = [str(c) for c in values.cat.categories]
    else:
        order = []
        d = getattr(study, "dictionary", None)
        for table in ("covariates", "groupings"):
            spec = getattr(d, table, {}).get(variable) if d is not None else None
            if spec is not None and getattr(spec, "levels", None):
                order = [str(x) for x in spec.levels]
    present = set(values.dropna().astype(str))
    return [x for x in order if x in present] + sorted(present - set(order))


def _independent_columns(X: np.ndarray, tol: float = 1e-7) -> list[int]:
    """Columns kept in order, dropping any that is constant (zero after centring) or a linear combination
    of those before it (R's aliased coefficients, NA in ``coef(coxph)``)."""
    keep: list[int] = []
    Xc = X - X.mean(axis=0)
    for j in range(X.shape[1]):
        cand = keep + [j]
        if np.linalg.matrix_rank(Xc[:, cand], tol=tol * max(1.0, np.abs(Xc[:, cand]).max())) == len(cand):
            keep.append(j)
    return keep


def interaction_lr(time, event, treated, factor, levels) -> InteractionTest | NotEstimable:
    """Likelihood-ratio test of the treatment-by-factor interaction in a Cox model (Efron ties).

    Main model: arm + dummies of ``factor`` (first level = reference); interaction model: + arm x dummy.
    Aliased columns (a level with one arm only) are dropped as R does; df = interaction terms kept.
    R: ``anova(coxph(Surv(t, e) ~ arm + v), coxph(Surv(t, e) ~ arm * v))``.
    """
    from helpers.stats.cox import fit_coxph

    t = np.asarray(time, float)
    e = np.asarray(event, int)
    z = np.asarray(treated, float)
    f = np.asarray(factor).astype(str)
    dummies = np.column_stack([(f == lv).astype(float) for lv in levels[1:]]) if len(levels) > 1 else \
        np.zeros((len(t), 0))
    inter = dummies * z[:, None]
    main = np.column_stack([z, dummies])
    keep_main = _independent_columns(main)
    full = np.column_stack([main[:, keep_main], inter])
    keep_full = _independent_columns(full)
    df = len([j for j in keep_full if j >= len(keep_main)])
    if df == 0 or e.sum() == 0:
        return NotEstimable("interaction", "one_arm_per_level" if e.sum() else "no_events")
    f0 = fit_coxph(t, e, main[:, keep_main], ties="efron")
    f1 = fit_coxph(t, e, full[:, keep_full], ties="efron")
    if not f0.estimable:
        return NotEstimable("interaction", "non_convergence")
    chisq = max(2 * (f1.loglik - f0.loglik), 0.0)
    return InteractionTest(TestResult(float(chisq), df, float(stats.chi2.sf(chisq, df)), "lr"), len(t),
                           bool(f1.separated))


def _level_result(variable, level, t, e, z, arms, choices) -> SubgroupLevel:
    ref, exp = arms
    n = {ref: int((z == 0).sum()), exp: int((z == 1).sum())}
    ev = {ref: int(e[z == 0].sum()), exp: int(e[z == 1].sum())}
    if min(n.values()) == 0:
        hr = NotEstimable("hazard_ratio", "empty_arm")
    elif min(ev.values()) < choices.min_events:
        hr = NotEstimable("hazard_ratio", "few_events")
    else:
        hr = stratified_cox(t, e, z, None, choices.level)
    return SubgroupLevel(variable, level, n, ev, hr)


def _subgroup_variable(context, v: str) -> "SubgroupVariable":
    """The levels' hazard ratios and the interaction test of one subgroup variable (a task of
    :func:`helpers.parallel.map_tasks`)."""
    study, p, ok, t, e, z_all, arms, choices = context
    x = p[v]
    use = ok & x.notna().to_numpy()
    xs = x.astype(object).where(x.notna(), None).astype(str).to_numpy()
    levels = _level_order(study, v, x[use])
    rows = [_level_result(v, lv, t[use & (xs == lv)], e[use & (xs == lv)].astype(int),
                          z_all[use & (xs == lv)], arms, choices) for lv in levels]
    test = interaction_lr(t[use], e[use].astype(int), z_all[use], xs[use], levels)
    return SubgroupVariable(v, rows, test, int((ok & ~x.notna().to_numpy()).sum()))


def run_subgroups(study, choices: dict | SubgroupChoices | None = None, workers: int = 1) -> SubgroupResults:
    """Hazard ratio of the experimental arm within each level of every subgroup variable.

    Parameters
    ----------
    study : helpers.data.load.Study
    choices : the plan's ``subgroups`` block (``load_plan(study.folder)["subgroups"]``).
    workers : processes for the variables of a large cohort (the result does not depend on it).

    Returns
    -------
    SubgroupResults: per endpoint present (``os``, ``pfs``) the overall HR and, per variable, the HR of
    each level (NotEstimable ``few_events`` below ``min_events`` events in an arm, ``empty_arm`` when a
    level has one arm only) and the interaction LR test. Patients with a missing value of a variable are
    left out of that variable's rows and test. Variables measured after time zero are refused.
    """
    if not isinstance(choices, SubgroupChoices):
        choices = SubgroupChoices.from_plan(choices)
    ref, exp = _arms(study)
    p = study.patients
    d = getattr(study, "dictionary", None)
    if choices.variables is not None:
        variables = tuple(choices.variables)
    else:
        variables = tuple(d.subgroups()) if d is not None and hasattr(d, "subgroups") else ()
    post = set(d.post_baseline()) if d is not None and hasattr(d, "post_baseline") else set()
    bad = [v for v in variables if v in post]
    if bad:
        raise ValueError(f"subgroups: {bad} are measured after time zero (dictionary timing) and cannot define "
                         "subgroups")
    missing = [v for v in variables if v not in p.columns]
    if missing:
        raise ValueError(f"subgroups: variable(s) {missing} not in the data")
    eps = _endpoints(p, choices.endpoints)
    z_all = (p["arm"].astype(str) == exp).astype(int).to_numpy()
    overall, by_ep = {}, {}
    for ep in eps:
        tcol, ecol = ENDPOINTS[ep]
        ok = p[tcol].notna().to_numpy()
        t, e = p[tcol].to_numpy(float), p[ecol].to_numpy(float)
        overall[ep] = _level_result("all", "all", t[ok], e[ok].astype(int), z_all[ok], (ref, exp), choices)
        context = (study, p, ok, t, e, z_all, (ref, exp), choices)
        pool = workers if len(p) >= POOL_MIN_PATIENTS else 1
        by_ep[ep] = map_tasks(_subgroup_variable, variables, context, pool)
    return SubgroupResults(choices, (ref, exp), variables, eps, overall, by_ep)
